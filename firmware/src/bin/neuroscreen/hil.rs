//! `neuroscreen hil`: hardware in the loop. `serve` is the product side on
//! the board; `drive` is the bench's test tool.

use crate::settings::{load_engine, write_json, ModelArgs};
use anyhow::Result;
use firmware::hil::{drive, serve};
use firmware::{inputs, screener, store};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Subcommand)]
pub enum Command {
    /// On the board: screen the slices a bench sends over TCP and answer each with its result
    /// and stage latencies (listens only when started)
    Serve(ServeArgs),
    /// On the host: send slices to a board, print results, p50/p95 per stage and throughput
    Drive(DriveArgs),
}

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on, e.g. 0.0.0.0:7878 (port 0: any free port, printed)
    #[arg(long)]
    listen: String,
    #[command(flatten)]
    model: ModelArgs,
    /// Inference threads [default: models.threads of --config, else every core]
    #[arg(long)]
    threads: Option<usize>,
    /// Results store for the slices received (each is kept under received/)
    #[arg(long, default_value = "hil-results")]
    out: PathBuf,
    /// Stop after the first bench disconnects
    #[arg(long)]
    once: bool,
}

#[derive(clap::Args)]
pub struct DriveArgs {
    /// The board's address, HOST:PORT
    #[arg(long)]
    board: String,
    /// Slice files or folders of them
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Send every slice this many times
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Write every figure and answer as JSON here
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write one CSV row per answer here
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Keep trying to connect this long (a board still starting)
    #[arg(long, default_value_t = 30)]
    connect_wait_s: u64,
}

pub fn run(command: Command) -> Result<usize> {
    match command {
        Command::Serve(args) => {
            let mut appliance = args.model.resolve()?;
            if let Some(t) = args.threads {
                appliance.models.threads = t.max(1);
            }
            let engine = load_engine(&appliance)?;
            let store = store::ResultsStore::open(&args.out)?;
            let screener =
                screener::Screener::new(Arc::new(engine), &store).with_limits(appliance.inputs);
            serve::serve(&screener, &args.listen, args.once)?;
            Ok(0)
        }
        Command::Drive(args) => {
            let files = inputs::expand(&args.paths)?;
            let result = drive::drive(&drive::DriveOptions {
                board: args.board,
                files,
                repeat: args.repeat,
                connect_wait: std::time::Duration::from_secs(args.connect_wait_s),
            })?;
            drive::print(&result, &mut std::io::stdout().lock())?;
            if let Some(path) = args.report {
                write_json(&path, &result)?;
            }
            if let Some(path) = args.csv {
                drive::write_csv(&result, &path)?;
            }
            Ok(result.errors)
        }
    }
}
