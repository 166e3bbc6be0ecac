//! `neuroscreen-train`: phantoms, training, evaluation and export.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use trainer::data::phantom::render::{CohortSettings, Contrast};
use trainer::data::phantom::{self, FormChoice};

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

#[derive(Clone, Copy, ValueEnum)]
enum ContrastArg {
    /// RGB = pre-contrast T1, FLAIR, post-contrast T1 (the LGG form)
    Stacked,
    T1,
    T1c,
    T2,
    Flair,
    /// Half the patients stacked, the rest one single contrast each
    Mixed,
}

impl From<ContrastArg> for FormChoice {
    fn from(c: ContrastArg) -> Self {
        match c {
            ContrastArg::Stacked => FormChoice::Stacked,
            ContrastArg::T1 => FormChoice::Single(Contrast::T1),
            ContrastArg::T1c => FormChoice::Single(Contrast::T1c),
            ContrastArg::T2 => FormChoice::Single(Contrast::T2),
            ContrastArg::Flair => FormChoice::Single(Contrast::Flair),
            ContrastArg::Mixed => FormChoice::Mixed,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Generate phantom patients (synthetic lesions on real anatomy) in the LGG layout
    Phantoms {
        /// Output folder; patients go to OUT/kaggle_3m/
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 110)]
        patients: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Form of the slices
        #[arg(long, value_enum, default_value = "stacked")]
        contrast: ContrastArg,
        /// Mean share of slices carrying tumour (LGG: 0.35)
        #[arg(long, default_value_t = 0.35)]
        tumour_fraction: f64,
        /// Share of patients without any lesion
        #[arg(long, default_value_t = 0.0)]
        clear_patients: f64,
    },
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
        Command::Phantoms {
            out,
            patients,
            seed,
            contrast,
            tumour_fraction,
            clear_patients,
        } => {
            anyhow::ensure!(patients > 0, "--patients must be at least 1");
            anyhow::ensure!(
                (0.0..=1.0).contains(&tumour_fraction) && (0.0..=1.0).contains(&clear_patients),
                "--tumour-fraction and --clear-patients are shares between 0 and 1"
            );
            let settings = CohortSettings {
                tumour_fraction,
                clear_patients,
                forms: contrast.into(),
            };
            let bar = ProgressBar::new(patients as u64).with_style(
                ProgressStyle::with_template(
                    "phantoms {bar:30} {pos}/{len} patients  {elapsed} (eta {eta})",
                )
                .expect("valid template"),
            );
            let summary = phantom::generate_cohort(&out, patients, seed, &settings, |done, _| {
                bar.set_position(done as u64)
            })
            .with_context(|| format!("generating phantoms into {}", out.display()))?;
            bar.finish_and_clear();
            println!(
                "{} patients, {} slices, {} with tumour ({:.1} %), seed {} -> {}",
                summary.patients.len(),
                summary.slices(),
                summary.tumour_slices(),
                100.0 * summary.tumour_slices() as f64 / summary.slices().max(1) as f64,
                seed,
                summary.root.display()
            );
        }
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
