//! `neuroscreen demo`: the shipped models over the shipped samples.

use crate::settings::{appliance_config, load_engine};
use anyhow::Result;
use firmware::engine::PrecisionChoice;
use firmware::{demo, screener, store};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// Results folder
    #[arg(long, default_value = "out/demo")]
    out: PathBuf,
    /// appliance.toml: its [models] settings (dir, precision, threads, pinned public_key);
    /// flags given here win
    #[arg(long)]
    config: Option<PathBuf>,
    /// Folder holding manifest.json and the models [default as for scan]
    #[arg(long)]
    models: Option<PathBuf>,
    /// [default: models.precision of --config, else auto]
    #[arg(long, value_enum)]
    precision: Option<PrecisionChoice>,
}

pub fn run(args: Args) -> Result<usize> {
    let appliance = appliance_config(args.config.as_deref(), args.models, args.precision)?;
    let samples = appliance.models.dir.join("samples");
    let truths = demo::read_truth(&samples)?;
    let files: Vec<PathBuf> = truths.iter().map(|t| samples.join(&t.file)).collect();
    let engine = load_engine(&appliance)?;
    let store = store::ResultsStore::open(&args.out)?;
    let screener = screener::Screener::new(Arc::new(engine), &store);
    let batch = screener::run(&screener, &files, &mut std::io::stdout().lock())?;
    let rows = demo::review(&batch.records, store.dir(), &samples, &truths)?;
    demo::print_table(&rows, &mut std::io::stdout().lock())?;
    println!("screens, masks and overlays: {}", store.dir().display());
    Ok(batch.summary.errors)
}
