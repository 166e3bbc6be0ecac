//! `neuroscreen`: the scanner-side screening appliance. The command line
//! only: each command's flags and its few lines of wiring live in a module
//! of their own; the work is the `firmware` library's.

mod bench;
mod check;
mod demo;
mod hil;
mod inspect;
mod manifest;
mod run;
mod scan;
mod settings;
mod tools;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
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
    Inspect(inspect::Args),
    /// The main job on the shipped data: the shipped models over models/samples, results and
    /// screen snapshots in --out, a table of verdicts beside the known truth
    Demo(demo::Args),
    /// Screen slices: filter, segment the flagged ones, store masks, overlays and results.jsonl
    Scan(scan::Args),
    /// The service: screen what arrives in the inbox (and any PATHs given) until SIGTERM or Ctrl-C
    Run(run::Args),
    /// Latency per stage with tract at f32 and int8, beside onnxruntime on the same files; start-up; peak RSS
    Bench(bench::Args),
    /// One precision of `bench`, in its own process (used by bench)
    #[command(hide = true)]
    BenchWorker(tools::BenchWorkerArgs),
    /// Boot self-test: verify model hashes and screen the known sample against its recorded result
    Check(check::Args),
    /// Hardware in the loop: `serve` on the board, `drive` it from a test bench (docs/DEPLOY.md)
    Hil {
        #[command(subcommand)]
        command: hil::Command,
    },
    /// Signed model sets: make keys, sign a manifest, verify one
    Manifest {
        #[command(subcommand)]
        action: manifest::Action,
    },
    /// Long run through the real service (`run` on a fresh box, slices renamed into its
    /// inbox): RSS, open fds and latency percentiles per window
    Soak(tools::SoakArgs),
}

/// Exit codes: 0 all inputs done, 1 some inputs failed (each has an error
/// line), 2 the command could not run at all (bad models, unwritable folder).
fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,jpeg2k=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // When the log cannot be written (its disk full), tracing would say
        // so with eprintln!, which panics on that same failed stderr: the
        // soak's service died that way. A lost log line is not worth the box.
        .log_internal_errors(false)
        .init();
    firmware::store::fail_oversized_writes_instead_of_dying();
    match run(Cli::parse().command) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "neuroscreen: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Returns how many inputs failed.
fn run(command: Command) -> Result<usize> {
    match command {
        Command::Inspect(args) => inspect::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Scan(args) => scan::run(args),
        Command::Run(args) => run::run(args),
        Command::Bench(args) => bench::run(args),
        Command::BenchWorker(args) => tools::bench_worker(args),
        Command::Check(args) => check::run(args),
        Command::Hil { command } => hil::run(command),
        Command::Manifest { action } => manifest::run(action),
        Command::Soak(args) => tools::soak(args),
    }
}
