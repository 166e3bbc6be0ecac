//! Test tools that ride in the binary but are not the product: `soak` (a
//! long run through the real service) and `bench-worker` (one precision of
//! `bench` in its own process, so each gets its own peak RSS).

use crate::settings::{default_models_dir, write_json, ModelArgs};
use anyhow::Result;
use firmware::engine::PrecisionChoice;
use firmware::{bench, soak};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct SoakArgs {
    /// Fresh (or empty) folder for the box: inbox, results, config, service log
    #[arg(long)]
    dir: PathBuf,
    /// Slices to feed (copies of the samples, made as it goes)
    #[arg(long, default_value_t = 10_000)]
    slices: usize,
    /// Slices per sample row
    #[arg(long, default_value_t = 1_000)]
    window: usize,
    /// Folder holding manifest.json and samples/ [default as for scan]
    #[arg(long)]
    models: Option<PathBuf>,
    /// models.threads of the service
    #[arg(long, default_value_t = 1)]
    threads: usize,
    #[arg(long, value_enum, default_value_t = PrecisionChoice::Auto)]
    precision: PrecisionChoice,
    /// Also write every figure as JSON here
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct BenchWorkerArgs {
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long)]
    models: PathBuf,
    #[arg(long, value_enum)]
    precision: PrecisionChoice,
    #[arg(long)]
    threads: usize,
    #[arg(long)]
    runs: usize,
    #[arg(long)]
    slices: Option<PathBuf>,
}

pub fn soak(args: SoakArgs) -> Result<usize> {
    let models = args.models.unwrap_or_else(default_models_dir);
    let options = soak::SoakOptions {
        dir: args.dir,
        models: std::path::absolute(&models)?,
        slices: args.slices.max(1),
        window: args.window.max(1),
        threads: args.threads.max(1),
        precision: clap::ValueEnum::to_possible_value(&args.precision)
            .map_or("auto".into(), |v| v.get_name().to_string()),
    };
    let report = soak::run(&options, &mut std::io::stdout().lock())?;
    println!(
        "soak: {} slices ({} errors) in {:.0} s; service exit code {:?}",
        report.slices, report.errors, report.seconds, report.service_exit_code
    );
    if let Some(path) = args.json {
        write_json(&path, &report)?;
    }
    let clean = report.errors == 0 && report.service_exit_code == Some(0);
    Ok(usize::from(!clean))
}

pub fn bench_worker(args: BenchWorkerArgs) -> Result<usize> {
    let appliance = ModelArgs {
        config: args.config,
        models: Some(args.models),
        precision: Some(args.precision),
    }
    .resolve()?;
    let mut engine = appliance.engine();
    engine.threads = args.threads.max(1);
    let report = bench::worker(
        &appliance.models.dir,
        engine,
        args.runs.max(1),
        args.slices.as_deref(),
    )?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(0)
}
