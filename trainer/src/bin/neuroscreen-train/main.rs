//! `neuroscreen-train`: phantoms, training, evaluation and export. Each
//! command with more than a few lines lives in its own module here; the
//! work itself is in the `trainer` library.

mod arch_bench;
mod args;
mod compare;
mod eval_set;
mod experiment;
mod export;
mod fit;
mod misses;
mod phantoms;
mod speed;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use trainer::data::phantom;

#[derive(Parser)]
#[command(
    name = "neuroscreen-train",
    version,
    about = "Train, evaluate and export the neuroscreen models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate phantom patients (synthetic lesions on real anatomy) in the LGG layout
    Phantoms(phantoms::PhantomsArgs),
    /// Write a montage PNG: real base slice beside phantoms in every contrast and the mask outline
    Montage {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long, default_value_t = 6)]
        rows: usize,
    },
    /// Write the shipped sample slices (tumour and clear, several forms) with samples.json
    Samples {
        #[arg(long, default_value = "models/samples")]
        out: PathBuf,
        #[arg(long, default_value_t = 2026)]
        seed: u64,
    },
    /// Train a segmenter or filter on an LGG-layout folder (real Kaggle data or phantoms)
    Fit(fit::FitArgs),
    /// Score a run's best checkpoint on its held-out patients; writes report.md with plots
    Eval {
        /// Run folder (from `fit`)
        #[arg(long)]
        run: PathBuf,
        /// Report folder (default: RUN/eval)
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Score a shipped model set per data source as the appliance runs it
    /// (tract, f32 and int8) on a run's held-out patients and on folders of
    /// real clear slices
    EvalSet(eval_set::EvalSetArgs),
    /// Each figure of an eval-set slices.csv with a 95 % interval over its
    /// patients; with two files of the same slices, the paired difference
    /// and whether the data can tell the sets apart
    Compare(compare::CompareArgs),
    /// Why an eval-set run missed its missed tumour slices (the filter, or
    /// no outline), per cohort and patient, and how its outlines err
    Misses(misses::MissesArgs),
    /// Export trained runs to ONNX (f32 and int8) with manifest and model card
    Export(export::ExportArgs),
    /// Write the calibration and held-out slices `export` uses as .npy files
    /// (for onnxruntime's quantiser in scripts/ort_quantize.py)
    DumpSlices(export::DumpSlicesArgs),
    /// Size, tract latency (f32 vs int8) and int8 Dice of a shipped set, with
    /// onnxruntime's static quantiser as a peer (scripts/ort_quantize.py)
    QuantBench(export::QuantBenchArgs),
    /// Training and inference images/s of the ResUNet and the ResNet-50
    /// filter, beside the same architectures in PyTorch (Python) in the same
    /// run, as a ratio (a benchmark: the reference file stays outside the repo)
    Speed(speed::SpeedArgs),
    /// The seed's experiment: segmenter architectures x losses x seeds on one
    /// patient-level split, scored per slice, per patient and by lesion size
    /// (filter on vs off with --filter); writes docs/RESULTS.md and its chart
    Experiment(experiment::ExperimentArgs),
    /// FLOPs, single-thread tract f32 latency and GFLOP/s of each
    /// architecture (seeded weights) against tract's measured matmul peak,
    /// and whether a filter saves time at a given tumour prevalence
    ArchBench(arch_bench::ArchBenchArgs),
    /// Report what this build can use: libtorch version, CUDA devices
    Info,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Phantoms(args) => phantoms::run(args)?,
        Command::Montage { out, seed, rows } => {
            let volumes = phantom::anatomy::embedded_volumes()?;
            let img = phantom::montage::phantom_montage(&volumes, seed, rows);
            img.save(&out)
                .with_context(|| format!("writing {}", out.display()))?;
            println!(
                "{} rows: real T1 | stacked RGB | T1 | T1c | T2 | FLAIR | FLAIR + mask outline -> {}",
                rows,
                out.display()
            );
        }
        Command::Samples { out, seed } => {
            let volumes = phantom::anatomy::embedded_volumes()?;
            let infos = phantom::samples::write_samples(&volumes, seed, &out)?;
            for s in &infos {
                println!(
                    "{:<44} {:<6} {:>6} px  {}",
                    s.file, s.truth, s.lesion_px, s.source
                );
            }
        }
        Command::Fit(args) => fit::run(args)?,
        Command::Export(args) => export::run(args)?,
        Command::EvalSet(args) => eval_set::run(args)?,
        Command::Compare(args) => compare::run(args)?,
        Command::Misses(args) => misses::run(args)?,
        Command::Eval { run, out } => {
            let out = out.unwrap_or_else(|| run.join("eval"));
            let report = trainer::train::evaluate::evaluate_run(&run, &out)
                .with_context(|| format!("evaluating {}", run.display()))?;
            print!("{}", std::fs::read_to_string(&report)?);
            println!("\nreport: {}", report.display());
        }
        Command::DumpSlices(args) => export::dump_slices(args)?,
        Command::QuantBench(args) => export::quant_bench(args)?,
        Command::Speed(args) => speed::run(args)?,
        Command::ArchBench(args) => arch_bench::run(args)?,
        Command::Experiment(args) => experiment::run(args)?,
        Command::Info => {
            println!(
                "tch / libtorch: cuda available = {}",
                tch::Cuda::is_available()
            );
            println!("cuda devices: {}", tch::Cuda::device_count());
            println!("cudnn available = {}", tch::Cuda::cudnn_is_available());
        }
    }
    Ok(())
}
