//! `phantoms`: synthetic patients in the LGG layout.

use crate::args::ContrastArg;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use trainer::data::phantom;
use trainer::data::phantom::render::CohortSettings;

#[derive(clap::Args)]
pub struct PhantomsArgs {
    /// Output folder; patients go to OUT/kaggle_3m/
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 110)]
    pub patients: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Form of the slices
    #[arg(long, value_enum, default_value = "stacked")]
    pub contrast: ContrastArg,
    /// Mean share of slices carrying tumour (LGG: 0.35)
    #[arg(long, default_value_t = 0.35)]
    pub tumour_fraction: f64,
    /// Share of patients without any lesion
    #[arg(long, default_value_t = 0.0)]
    pub clear_patients: f64,
}

pub fn run(args: PhantomsArgs) -> Result<()> {
    let PhantomsArgs {
        out,
        patients,
        seed,
        contrast,
        tumour_fraction,
        clear_patients,
    } = args;
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
    Ok(())
}
