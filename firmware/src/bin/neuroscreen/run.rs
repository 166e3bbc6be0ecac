//! `neuroscreen run`: the service.

use crate::settings::load_engine;
use anyhow::Result;
use firmware::engine::PrecisionChoice;
use firmware::{config, service};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// appliance.toml (every key optional; see --print-config)
    #[arg(long, required_unless_present = "print_config")]
    config: Option<PathBuf>,
    /// Files or folders to screen besides the inbox
    paths: Vec<PathBuf>,
    /// Screen the PATHs and the inbox backlog, then stop instead of watching
    #[arg(long)]
    once: bool,
    /// Overrides models.precision
    #[arg(long, value_enum)]
    precision: Option<PrecisionChoice>,
    /// Print a commented config with every default and exit
    #[arg(long)]
    print_config: bool,
}

pub fn run(args: Args) -> Result<usize> {
    if args.print_config {
        print!("{}", config::EXAMPLE);
        return Ok(0);
    }
    let path = args.config.expect("clap requires --config");
    let mut config = config::ApplianceConfig::load(&path)?;
    if let Some(p) = args.precision {
        config.models.precision = p;
    }
    let engine = load_engine(&config)?;
    let options = service::RunOptions {
        paths: args.paths,
        once: args.once,
    };
    let report = service::run(&config, engine, options)?;
    let s = &report.summary;
    tracing::info!(
        screened = s.inputs,
        tumour = s.tumour,
        clear = s.clear,
        errors = s.errors,
        already_done = report.skipped_as_done,
        left_for_next_start = report.left_queued,
        not_stored = report.store_failures,
        "stopped"
    );
    if let Some(html) = &report.session_html {
        println!("session summary: {}", html.display());
    }
    // An input that could not be stored failed as much as a bad one did.
    Ok(s.errors + report.store_failures)
}
