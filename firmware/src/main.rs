//! `neuroscreen`: the scanner-side screening appliance.

mod inputs;
mod inspect;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
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
}

fn main() -> Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Inspect { paths, size, json } => {
            let files = inputs::expand(&paths)?;
            let failed = inspect::run(&files, size, json, &mut std::io::stdout().lock())?;
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
