//! `export`, `dump-slices` and `quant-bench`: trained runs to the shipped
//! ONNX files, the slice sets they were checked on, and the int8 files
//! beside onnxruntime's.

use crate::args::{CalibrationArg, SliceSelection};
use anyhow::{Context, Result};
use std::path::PathBuf;
use trainer::export::calibrate::RangeMethod;
use trainer::export::quantize::QuantSettings;
use trainer::export::ship::{self, ExportOptions, ScoredOn};
use trainer::export::{bench, model_card, npy};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ThresholdFor {
    Filter,
    Pair,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Run folder of the segmenter (from `fit`)
    #[arg(long)]
    pub segmenter: PathBuf,
    /// Run folder of the filter; without it the appliance segments every slice
    #[arg(long)]
    pub filter: Option<PathBuf>,
    #[arg(long, default_value = "models")]
    pub out: PathBuf,
    #[command(flatten)]
    pub slices: SliceSelection,
    /// Activation ranges: min-max, percentile (0.01..99.99) or mse
    #[arg(long, value_enum, default_value = "min-max")]
    pub calibration: CalibrationArg,
    /// Keep the first convolution in float
    #[arg(long)]
    pub float_first: bool,
    /// Quantise the last convolution too (default keeps it in float)
    #[arg(long)]
    pub int8_last: bool,
    /// Where the models were trained, for the provenance
    #[arg(long, default_value = "CPU")]
    pub trained_on: String,
    /// The filter's threshold keeps at least this share of the tumour
    /// slices of the validation patients (never above P = 0.5); with
    /// `--filter-threshold pair`, of the tumour slices the segmenter finds
    #[arg(long, default_value_t = 0.95)]
    pub filter_sensitivity: f64,
    /// What the filter's threshold is picked for: the filter alone, or the
    /// pair the appliance runs (filter, then the exported segmenter's
    /// mask: tumour slices the segmenter misses do not hold it down)
    #[arg(long, value_enum, default_value = "filter")]
    pub filter_threshold: ThresholdFor,
    /// The segmenter's minimum mask (pixels at its input size): a slice
    /// whose mask is smaller is called clear; 0 keeps any pixel. Pick it
    /// with `eval-set --validation --min-mask-px N`
    #[arg(long, default_value_t = 0)]
    pub min_mask_px: usize,
    /// Markdown on the training data and its terms for the model card
    /// (without it the card says the set was trained on phantoms)
    #[arg(long)]
    pub data_note: Option<PathBuf>,
    /// A candidate weighed against the shipped set, not a set to ship: its
    /// int8 gate, filter figures and card use the run's validation patients,
    /// so that choosing among candidates never shows their test figures
    #[arg(long)]
    pub candidate: bool,
}

pub fn run(args: ExportArgs) -> Result<()> {
    let ExportArgs {
        segmenter,
        filter,
        out,
        slices,
        calibration,
        float_first,
        int8_last,
        trained_on,
        filter_sensitivity,
        filter_threshold,
        min_mask_px,
        data_note,
        candidate,
    } = args;
    let scored_on = if candidate {
        ScoredOn::Validation
    } else {
        ScoredOn::Test
    };
    let data_note = data_note
        .map(|p| std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display())))
        .transpose()?;
    slices.check()?;
    anyhow::ensure!(
        (0.0..=1.0).contains(&filter_sensitivity),
        "--filter-sensitivity is a share between 0 and 1"
    );
    let SliceSelection {
        calibration_slices,
        calibration_clear_share,
        eval_slices,
        data,
    } = slices;
    let opts = ExportOptions {
        out: out.clone(),
        quant: QuantSettings {
            method: match calibration {
                CalibrationArg::MinMax => RangeMethod::MinMax,
                CalibrationArg::Percentile => RangeMethod::Percentile {
                    low: 0.01,
                    high: 99.99,
                },
                CalibrationArg::Mse => RangeMethod::Mse,
            },
            float_first,
            float_last: !int8_last,
        },
        calibration_slices,
        calibration_clear_share,
        data,
        eval_slices,
        trained_on,
        code_revision: ship::code_revision(),
        filter_sensitivity,
        pair_with: None,
        min_mask_px,
        scored_on,
    };
    let mut opts = opts;
    let mut reports = Vec::new();
    for (run, name) in
        std::iter::once((&segmenter, "segmenter")).chain(filter.as_ref().map(|f| (f, "filter")))
    {
        eprintln!(
            "exporting {} from {} (tract scores f32 and int8 on {} slices)",
            name,
            run.display(),
            scored_on.label()
        );
        let r = ship::export_run(run, name, &opts)
            .with_context(|| format!("exporting {}", run.display()))?;
        if name == "segmenter" && filter_threshold == ThresholdFor::Pair {
            let f32_file = r
                .entry
                .file(models::manifest::Precision::F32)
                .context("the segmenter has no f32 file")?;
            opts.pair_with = Some(ship::PairSegmenter {
                f32_path: out.join(&f32_file.path),
                shape: r.entry.input.shape.to_vec(),
                threshold: r.entry.threshold,
            });
        }
        println!(
            "{:<10} {:<16} f32 {:.4}  int8 {:.4}  on {} {} slices  int8 {}  tract-vs-tch max |diff| {:.2e}  int8-vs-f32 |logit diff| max {:.3} mean {:.4}, sign flips {:.4} %",
            name,
            r.entry.architecture,
            r.f32_score,
            r.int8_score,
            r.eval_slices,
            scored_on.label(),
            match &r.int8_refused {
                None => "shipped".to_string(),
                Some(why) => format!("NOT shipped ({why})"),
            },
            r.max_abs_f32_vs_tch,
            r.int8_vs_f32.max_abs,
            r.int8_vs_f32.mean_abs,
            100.0 * r.int8_vs_f32.sign_flips
        );
        if let Some(op) = &r.filter {
            let rule = match op.pair {
                None => format!("for sensitivity >= {filter_sensitivity} on each source"),
                Some(p) => format!(
                    "to keep >= {filter_sensitivity} of the tumour slices the segmenter finds on each source: {} of {}",
                    p.kept, p.found
                ),
            };
            println!(
                "{:<10} threshold {:.4} (P(tumour), picked on {} validation slices {rule}): validation sensitivity {:.3} specificity {:.3}; {} (f32, {} tumour / {} clear slices) sensitivity {:.3} specificity {:.3}",
                name,
                op.validation.threshold,
                op.validation.tumour_slices + op.validation.clear_slices,
                op.validation.sensitivity,
                op.validation.specificity,
                scored_on.label(),
                op.test_f32.tumour_slices,
                op.test_f32.clear_slices,
                op.test_f32.sensitivity,
                op.test_f32.specificity
            );
        }
        reports.push(r);
    }
    let seg = reports.remove(0);
    let filt = reports.pop();
    let manifest = ship::write_manifest(
        &out,
        seg.entry.clone(),
        filt.as_ref().map(|f| f.entry.clone()),
    )?;
    let card = model_card::render(&manifest, &seg, filt.as_ref(), data_note.as_deref());
    trainer::train::checkpoint::write_atomic(&out.join("MODEL_CARD.md"), card.as_bytes())?;
    println!("wrote {}/manifest.json and MODEL_CARD.md", out.display());
    Ok(())
}

#[derive(clap::Args)]
pub struct DumpSlicesArgs {
    /// Run folder (from `fit`)
    #[arg(long)]
    pub run: PathBuf,
    /// Output folder: calibration.npy, eval_images.npy, eval_masks.npy
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub slices: SliceSelection,
}

pub fn dump_slices(args: DumpSlicesArgs) -> Result<()> {
    let DumpSlicesArgs { run, out, slices } = args;
    slices.check()?;
    let state = trainer::train::checkpoint::RunState::load(&run)?;
    let cfg = &state.config;
    let segmenter = cfg.model.is_segmenter();
    let split = ship::run_data(cfg, slices.data.as_deref())?;
    let calib = ship::calibration_set(
        &split.train,
        slices.calibration_slices,
        segmenter,
        slices.calibration_clear_share,
    );
    let eval = ship::eval_set(&split.test, slices.eval_slices, segmenter);
    npy::write_slice_sets(&out, &calib, &eval)?;
    println!(
        "{} calibration slices ({} with tumour), {} held-out slices -> {}",
        calib.len(),
        calib.labels.iter().filter(|&&l| l).count(),
        eval.len(),
        out.display()
    );
    Ok(())
}

#[derive(clap::Args)]
pub struct QuantBenchArgs {
    /// Folder with manifest.json and the model files
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
    /// The segmenter's run folder (from `fit`)
    #[arg(long)]
    pub run: PathBuf,
    /// The filter's run folder, when the set has a filter (without it
    /// the filter is only timed)
    #[arg(long)]
    pub filter_run: Option<PathBuf>,
    /// Data root of the segmenter's run, when not where its config says
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Timed tract runs per file (median reported), after one warm-up
    #[arg(long, default_value_t = 15)]
    pub runs: usize,
    /// Python with onnxruntime
    #[arg(long, default_value = ".venv/bin/python3")]
    pub python: PathBuf,
    /// The onnxruntime peer script
    #[arg(long, default_value = "scripts/ort_quantize.py")]
    pub script: PathBuf,
    /// Skip the onnxruntime peer (sizes and latency only)
    #[arg(long)]
    pub no_peer: bool,
    /// Scratch folder (dumped slices, onnxruntime's int8 file)
    #[arg(long, default_value = "out/quant-bench")]
    pub work: PathBuf,
    /// Calibration slices (default: as the manifest records the export)
    #[arg(long)]
    pub calibration_slices: Option<usize>,
    /// Share of clear calibration slices (default: as the manifest records)
    #[arg(long)]
    pub calibration_clear_share: Option<f64>,
    /// Held-out slices scored (default: as the manifest records)
    #[arg(long)]
    pub eval_slices: Option<usize>,
}

pub fn quant_bench(args: QuantBenchArgs) -> Result<()> {
    let QuantBenchArgs {
        models,
        run,
        filter_run,
        data,
        runs,
        python,
        script,
        no_peer,
        work,
        calibration_slices,
        calibration_clear_share,
        eval_slices,
    } = args;
    let opts = bench::BenchOptions {
        models,
        run,
        filter_run,
        data,
        runs,
        python: (!no_peer).then_some(python),
        script,
        work,
        calibration_slices,
        calibration_clear_share,
        eval_slices,
    };
    eprintln!(
        "quant-bench: tract single-threaded (its default executor) for f32 and int8, {} timed runs each after a warm-up",
        opts.runs.max(1)
    );
    let rows = bench::bench(&opts)?;
    print!("{}", bench::render(&rows));
    Ok(())
}
