//! `neuroscreen demo`: the shipped models over the shipped samples.

use crate::settings::{load_engine, ModelArgs};
use anyhow::Result;
use firmware::{demo, screener, store};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// Results folder
    #[arg(long, default_value = "out/demo")]
    out: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
}

pub fn run(args: Args) -> Result<usize> {
    let appliance = args.model.resolve()?;
    let samples = appliance.models.dir.join("samples");
    let truths = demo::read_truth(&samples)?;
    let files: Vec<PathBuf> = truths.iter().map(|t| samples.join(&t.file)).collect();
    let engine = load_engine(&appliance)?;
    let store = store::ResultsStore::open(&args.out)?;
    let screener = screener::Screener::new(Arc::new(engine), &store)
        .with_limits(appliance.inputs)
        .with_pictures();
    let batch = screener::run(&screener, &files, &mut std::io::stdout().lock())?;
    let rows = demo::review(
        &batch.records,
        &batch.pictures,
        store.dir(),
        &samples,
        &truths,
    )?;
    demo::print_table(&rows, &mut std::io::stdout().lock())?;
    println!("screens, masks and overlays: {}", store.dir().display());
    Ok(batch.summary.errors)
}
