//! `neuroscreen`: the scanner-side screening appliance.

mod demo;
mod engine;
mod error;
mod inputs;
mod inspect;
mod scan;
mod store;

use anyhow::Result;
use clap::{Parser, Subcommand};
use engine::{Engine, EngineConfig, PrecisionChoice};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "neuroscreen",
    version,
    about = "Offline brain-tumour screening appliance"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check that slices decode and map to the model input the way the appliance will see them
    Inspect {
        /// Slice files (PNG, TIFF, JPEG) or folders of them
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Model input side in pixels
        #[arg(long, default_value_t = 256)]
        size: u32,
        /// One JSON object per line instead of a table
        #[arg(long)]
        json: bool,
    },
    /// The main job on the shipped data: the shipped models over models/samples, results and
    /// screen snapshots in --out, a table of verdicts beside the known truth
    Demo {
        /// Results folder
        #[arg(long, default_value = "out/demo")]
        out: PathBuf,
        /// Folder holding manifest.json and the models [default as for scan]
        #[arg(long)]
        models: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = PrecisionChoice::Auto)]
        precision: PrecisionChoice,
    },
    /// Screen slices: filter, segment the flagged ones, store masks, overlays and results.jsonl
    Scan {
        /// Slice files (PNG, TIFF, JPEG) or folders of them
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Results folder (created if missing; results.jsonl is appended to)
        #[arg(long)]
        out: PathBuf,
        /// Folder holding manifest.json and the models [default: ./models, else the
        /// models/ folder of the repository this binary was built from]
        #[arg(long)]
        models: Option<PathBuf>,
        /// Which model files to run; auto takes int8 on aarch64 and f32 elsewhere
        #[arg(long, value_enum, default_value_t = PrecisionChoice::Auto)]
        precision: PrecisionChoice,
        /// Drop mask components smaller than this many pixels (0 keeps all)
        #[arg(long, default_value_t = 0)]
        min_component_px: usize,
    },
}

/// Exit codes: 0 all inputs done, 1 some inputs failed (each has an error
/// line), 2 the command could not run at all (bad models, unwritable folder).
fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse().command) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("neuroscreen: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Returns how many inputs failed.
fn run(command: Command) -> Result<usize> {
    match command {
        Command::Inspect { paths, size, json } => {
            let files = inputs::expand(&paths)?;
            Ok(inspect::run(
                &files,
                size,
                json,
                &mut std::io::stdout().lock(),
            )?)
        }
        Command::Demo {
            out,
            models,
            precision,
        } => {
            let models = models.unwrap_or_else(default_models_dir);
            let samples = models.join("samples");
            let truths = demo::read_truth(&samples)?;
            let files: Vec<PathBuf> = truths.iter().map(|t| samples.join(&t.file)).collect();
            let config = EngineConfig {
                precision,
                ..EngineConfig::default()
            };
            let engine = Engine::load(&models.join("manifest.json"), config)
                .map_err(|e| anyhow::anyhow!(e).context("refusing to start"))?;
            let store = store::ResultsStore::open(&out)?;
            let summary = scan::run(&engine, &store, &files, &mut std::io::stdout().lock())?;
            let rows = demo::review(store.dir(), &samples, &truths)?;
            demo::print_table(&rows, &mut std::io::stdout().lock())?;
            println!("screens, masks and overlays: {}", store.dir().display());
            Ok(summary.errors)
        }
        Command::Scan {
            paths,
            out,
            models,
            precision,
            min_component_px,
        } => {
            let files = inputs::expand(&paths)?;
            let manifest = models
                .unwrap_or_else(default_models_dir)
                .join("manifest.json");
            let config = EngineConfig {
                precision,
                min_component_px,
                ..EngineConfig::default()
            };
            let engine = Engine::load(&manifest, config)
                .map_err(|e| anyhow::anyhow!(e).context("refusing to start"))?;
            let store = store::ResultsStore::open(&out)?;
            tracing::info!(inputs = files.len(), out = %store.dir().display(), "scanning");
            let summary = scan::run(&engine, &store, &files, &mut std::io::stdout().lock())?;
            Ok(summary.errors)
        }
    }
}

fn default_models_dir() -> PathBuf {
    let here = Path::new("models");
    if here.join("manifest.json").exists() {
        here.to_path_buf()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
    }
}
