//! `experiment`: the seed's grid of architectures x losses x seeds, written
//! up as docs/RESULTS.md.

use crate::args::{threads_label, LossArg, SegArch};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use trainer::data::phantom;
use trainer::data::phantom::render::CohortSettings;
use trainer::nets::Architecture;
use trainer::train::FitConfig;

#[derive(clap::Args)]
pub struct ExperimentArgs {
    /// Data root in the LGG layout
    #[arg(long, default_value = "data/phantoms")]
    data: PathBuf,
    /// Generate this many phantom patients (seed 0) into --data first, if it has none
    #[arg(long)]
    phantoms: Option<usize>,
    /// Runs and results.jsonl (an interrupted experiment resumes from it)
    #[arg(long, default_value = "runs/experiment")]
    out: PathBuf,
    /// The document to write; its chart goes beside it
    #[arg(long, default_value = "docs/RESULTS.md")]
    doc: PathBuf,
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "resunet,unet"
    )]
    archs: Vec<SegArch>,
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "tversky,focal-tversky,dice,bce"
    )]
    losses: Vec<LossArg>,
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    seeds: Vec<u64>,
    #[arg(long, default_value_t = 100)]
    epochs: u32,
    #[arg(long, default_value_t = 16)]
    batch: usize,
    #[arg(long, default_value_t = 256)]
    input_size: u32,
    /// Early-stopping patience in epochs (seed: 30)
    #[arg(long, default_value_t = 30)]
    patience: u32,
    /// Encoder widths of both architectures (default 16,32,64,128,256)
    #[arg(long, value_delimiter = ',')]
    widths: Option<Vec<i64>>,
    /// Use at most this many slices (whole patients)
    #[arg(long)]
    max_slices: Option<usize>,
    /// A trained filter run (from `fit --model resnet50|resnet18`) for "filter on";
    /// it must have been trained on the same split (same --data, --max-slices, seed)
    #[arg(long)]
    filter: Option<PathBuf>,
    /// The filter's threshold keeps at least this share of its validation
    /// patients' tumour slices, as `export` picks the appliance's
    #[arg(long, default_value_t = 0.95)]
    filter_sensitivity: f64,
    /// Seed of the patient split, the same for every run
    #[arg(long, default_value_t = 0)]
    split_seed: u64,
    /// How to name this configuration in the document (e.g. "reduced CPU configuration")
    #[arg(long, default_value = "full configuration")]
    label: String,
}

pub fn run(a: ExperimentArgs) -> Result<()> {
    use trainer::experiment::{self, chart, results_doc, Plan};
    anyhow::ensure!(
        !a.archs.is_empty() && !a.losses.is_empty() && !a.seeds.is_empty(),
        "need at least one architecture, loss and seed"
    );
    if let Some(n) = a.phantoms {
        if !a.data.join("kaggle_3m").is_dir() {
            let summary =
                phantom::generate_cohort(&a.data, n, 0, &CohortSettings::default(), |_, _| {})
                    .with_context(|| format!("generating phantoms into {}", a.data.display()))?;
            println!(
                "{} phantom patients -> {}",
                summary.patients.len(),
                summary.root.display()
            );
        }
    }
    let widths = a
        .widths
        .clone()
        .unwrap_or_else(|| vec![16, 32, 64, 128, 256]);
    let base = FitConfig {
        data: a.data.clone(),
        epochs: a.epochs,
        batch: a.batch,
        input_size: a.input_size,
        patience: a.patience,
        max_slices: a.max_slices,
        seed: a.split_seed,
        ..FitConfig::default()
    };
    let data = crate::fit::load_data(&base)?;
    let plan = Plan {
        out: a.out.clone(),
        archs: a
            .archs
            .iter()
            .map(|m| match m {
                SegArch::Resunet => (
                    "resunet".to_string(),
                    Architecture::ResUnet {
                        widths: widths.clone(),
                    },
                ),
                SegArch::Unet => (
                    "unet".to_string(),
                    Architecture::Unet {
                        widths: widths.clone(),
                    },
                ),
            })
            .collect(),
        losses: a.losses.iter().map(|l| (l.name(), l.loss())).collect(),
        seeds: a.seeds.clone(),
        base,
        filter: a.filter.clone(),
    };
    let device = tch::Device::cuda_if_available();
    let gate = match &a.filter {
        Some(run) => Some(experiment::filter_gate(
            run,
            &data,
            a.filter_sensitivity,
            device,
        )?),
        None => None,
    };
    let test_tumour = data.test.labels.iter().filter(|&&l| l).count();
    // Below the source resolution a small lesion can vanish from the mask;
    // the segmentation scores count tumour slices at the model's size.
    let test_tumour_at_input = (0..data.test.len())
        .filter(|&i| data.test.mask(i).iter().any(|&m| m != 0))
        .count();
    println!(
        "{} runs on {:?}: {} train / {} val / {} test slices ({} test patients, {} tumour slices)",
        plan.cells().len(),
        device,
        data.train.len(),
        data.val.len(),
        data.test.len(),
        data.split.test.len(),
        test_tumour
    );
    let progress = ProgressBar::new(plan.cells().len() as u64).with_style(
        ProgressStyle::with_template(
            "experiment {bar:30} {pos}/{len} runs  {elapsed} (eta {eta})  {msg}",
        )
        .expect("valid template"),
    );
    let results = experiment::run(&plan, &data, gate.as_ref(), |done, _, cell| {
        progress.set_position(done as u64);
        progress.set_message(cell.dir_name());
    })?;
    progress.finish_and_clear();
    let rows = results_doc::aggregate(&results);
    let doc_dir = a
        .doc
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(doc_dir).with_context(|| format!("creating {}", doc_dir.display()))?;
    let stem = a
        .doc
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("RESULTS")
        .to_lowercase();
    let chart_name = format!("{stem}_dice.png");
    chart::plot_results(&rows, &doc_dir.join(&chart_name))?;
    let machine = if device.is_cuda() {
        "CUDA".to_string()
    } else {
        format!(
            "{}, libtorch {}",
            std::fs::read_to_string("/proc/cpuinfo")
                .ok()
                .and_then(
                    |t| t.lines().find(|l| l.starts_with("model name")).map(|l| l
                        .split(':')
                        .nth(1)
                        .unwrap_or("")
                        .trim()
                        .to_string())
                )
                .unwrap_or_else(|| "CPU".into()),
            threads_label(tch::get_num_threads())
        )
    };
    let command = std::env::args()
        .map(|s| {
            if s.contains(' ') {
                format!("\"{s}\"")
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    let command = command.replacen(
        &std::env::args().next().unwrap_or_default(),
        "neuroscreen-train",
        1,
    );
    let provenance = results_doc::Provenance {
        // The phantom generator names its patients PHANTOM_<template>_<n>.
        phantoms: data.split.test.iter().all(|p| p.starts_with("PHANTOM_")),
        command,
        date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        machine,
        configuration: format!(
            "{}: {} px input, widths {:?}, up to {} epochs (patience {}), batch {}, seeds {:?}.",
            a.label, a.input_size, widths, a.epochs, a.patience, a.batch, a.seeds
        ),
        data: format!(
            "{}: {} train / {} val / {} test slices; {} test patients with {} tumour slices \
             (patient-level split, seed {}); {} of those tumour slices still have tumour \
             pixels at {} px, and the segmentation scores (tumour slices, missed slices, \
             false alarms) count at that size.",
            a.data.display(),
            data.train.len(),
            data.val.len(),
            data.test.len(),
            data.split.test.len(),
            test_tumour,
            a.split_seed,
            test_tumour_at_input,
            a.input_size
        ),
        filter: match &gate {
            Some(gate) => {
                // The filter's own record on these held-out slices, so a
                // reader can tell a weak filter from a weak segmenter.
                let labels = &data.test.labels;
                let flagged = |tumour: bool| {
                    labels
                        .iter()
                        .zip(&gate.flags)
                        .filter(|&(&l, &f)| l == tumour && f)
                        .count()
                };
                let (tp, fp) = (flagged(true), flagged(false));
                let clear = labels.len() - test_tumour;
                let v = &gate.validation;
                format!(
                    "the run in `{}` ({}), at threshold {:.3} on P(tumour): the highest that \
                     keeps at least {:.0} % of the tumour slices of its validation patients \
                     (there: sensitivity {:.3} on {} tumour slices, specificity {:.3} on {} \
                     clear), as `export` picks the appliance's. On these held-out slices it \
                     flags {tp} of {test_tumour} tumour slices (sensitivity {:.3}) and {fp} of \
                     {clear} clear slices (specificity {:.3}).",
                    gate.run.display(),
                    gate.model,
                    v.threshold,
                    a.filter_sensitivity * 100.0,
                    v.sensitivity,
                    v.tumour_slices,
                    v.specificity,
                    v.clear_slices,
                    tp as f64 / test_tumour.max(1) as f64,
                    (clear - fp) as f64 / clear.max(1) as f64,
                )
            }
            _ => "none given (--filter RUN), so only the segmenter alone is scored".into(),
        },
        chart: chart_name,
    };
    std::fs::write(&a.doc, results_doc::render(&provenance, &rows))
        .with_context(|| format!("writing {}", a.doc.display()))?;
    for r in &rows {
        let (m, sd) = r
            .stat(|s| Some(s.slice_dice_tumour))
            .unwrap_or((f64::NAN, f64::NAN));
        println!(
            "{:<8} {:<14} Dice per slice (tumour) {m:.3} ± {sd:.3} over {} seeds",
            r.arch,
            r.loss,
            r.runs.len()
        );
    }
    println!("-> {}", a.doc.display());
    Ok(())
}
