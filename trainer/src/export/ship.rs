//! `neuroscreen-train export`: trained runs to the shipped model set —
//! f32 and int8 ONNX files, the manifest with hashes, contract, provenance
//! and measured metrics, and the model card.

use super::calibrate::calibrate;
use super::lower::lower;
use super::onnx_f32::to_onnx_f32;
use super::operating_point::{self, OperatingPoint};
use super::quantize::{to_onnx_int8, QuantSettings};
use super::tract_check;
use crate::train::checkpoint::{load_best, load_run_data, write_atomic, TrainedRun};
use crate::train::config::FitConfig;
use crate::train::dataset::{DataSplit, Prepared};
use crate::{Error, Result};
use models::integrity::sha256_file;
use models::manifest::{
    mask_stands, InputSpec, Layout, ModelFile, OutputKind, OutputSpec, Pipeline, Precision,
    Provenance, FORMAT_VERSION,
};
use models::metrics::{MaskCounts, SliceSummary};
use models::{Manifest, ModelEntry, Preprocessing, Role};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

/// Accuracy gate for shipping the int8 file (export issue): Dice may drop by
/// at most this much against f32 on held-out slices...
pub const MAX_DICE_DROP: f64 = 0.005;
/// ...and filter accuracy by at most this many points...
pub const MAX_ACCURACY_DROP_POINTS: f64 = 0.5;
/// ...and, at the threshold the filter runs at, int8 must keep every tumour
/// slice f32 keeps (a slice the filter drops is never segmented) and may
/// pass at most this share more clear slices (each costs one segmenter run).
pub const MAX_SPECIFICITY_DROP: f64 = 0.05;

/// Whether the int8 file ships: `None` when it passes, else why not.
/// Accuracy at P = 0.5 alone missed what matters for a filter run at a low
/// threshold: there int8 may drop tumour slices that f32 keeps.
pub fn int8_refusal(
    f32_score: f64,
    int8_score: f64,
    filter: Option<&FilterOperation>,
) -> Option<String> {
    let Some(op) = filter else {
        return (f32_score - int8_score > MAX_DICE_DROP).then(|| {
            format!("Dice {int8_score:.4} in int8 against {f32_score:.4} in f32 (at most {MAX_DICE_DROP} lower)")
        });
    };
    if f32_score - int8_score > MAX_ACCURACY_DROP_POINTS {
        return Some(format!(
            "accuracy {int8_score:.1} % in int8 against {f32_score:.1} % in f32 at P = 0.5 \
             (at most {MAX_ACCURACY_DROP_POINTS} points lower)"
        ));
    }
    let (f, q) = (&op.eval_f32, &op.eval_int8);
    if q.tumour_passed < f.tumour_passed {
        return Some(format!(
            "at threshold {:.3} int8 keeps {} of {} tumour slices, f32 {}",
            f.threshold, q.tumour_passed, q.tumour_slices, f.tumour_passed
        ));
    }
    if f.specificity - q.specificity > MAX_SPECIFICITY_DROP {
        return Some(format!(
            "at threshold {:.3} int8's specificity is {:.3} against f32's {:.3} (at most \
             {MAX_SPECIFICITY_DROP} lower)",
            f.threshold, q.specificity, f.specificity
        ));
    }
    None
}

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub out: PathBuf,
    pub quant: QuantSettings,
    /// Calibration slices drawn (evenly) from the run's training part.
    pub calibration_slices: usize,
    /// Share of the calibration slices (segmenters) drawn from clear slices
    /// of the training part; the rest carry tumour. 0 = tumour slices only.
    pub calibration_clear_share: f64,
    /// The data root, when it is not where the run's config says (the
    /// config holds the path `fit` was given, often relative).
    pub data: Option<PathBuf>,
    /// Held-out test slices evaluated in f32 and int8 (tract's int8 is slow
    /// on x86, so this is capped).
    pub eval_slices: usize,
    pub trained_on: String,
    /// The code revision recorded in the provenance: read once before
    /// anything is written, so the files `export` writes itself do not mark
    /// the later models' revision `+uncommitted`.
    pub code_revision: String,
    /// Share of the validation patients' tumour slices the filter's
    /// threshold must keep (with `pair_with`: of those the segmenter finds).
    pub filter_sensitivity: f64,
    /// Pick the filter's threshold beside this segmenter (the pair the
    /// appliance runs) instead of for the filter alone.
    pub pair_with: Option<PairSegmenter>,
    /// The segmenter's `min_mask_px` (0: any pixel); a pair threshold counts
    /// only masks it keeps as found.
    pub min_mask_px: usize,
    /// Which patients the exported files are scored on.
    pub scored_on: ScoredOn,
}

/// Which patients an export scores its files on. A candidate being weighed
/// against the shipped set is scored on the validation patients, so that
/// choosing among candidates never shows their test figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScoredOn {
    #[default]
    Test,
    Validation,
}

impl ScoredOn {
    /// How the patients are named in what `export` prints and writes.
    pub fn label(self) -> &'static str {
        match self {
            ScoredOn::Test => "held-out test",
            ScoredOn::Validation => "validation",
        }
    }
}

/// The exported segmenter a filter's threshold is picked beside.
#[derive(Debug, Clone)]
pub struct PairSegmenter {
    pub f32_path: PathBuf,
    pub shape: Vec<usize>,
    /// Per-pixel P(tumour) at or above which its mask is set.
    pub threshold: f32,
}

/// On the validation patients: the tumour slices the segmenter finds, and
/// how many of them the filter passes at its threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairFigures {
    pub found: usize,
    pub kept: usize,
}

/// A filter's threshold and how it does there.
#[derive(Debug, Clone)]
pub struct FilterOperation {
    /// Picked here, on every slice of the validation patients (tract f32).
    pub validation: OperatingPoint,
    /// The same threshold on every slice of the patients scored (held-out
    /// test, or validation for a candidate), tract f32...
    pub test_f32: OperatingPoint,
    /// ...and on the scored subset of them in f32 and int8.
    pub eval_f32: OperatingPoint,
    pub eval_int8: OperatingPoint,
    /// Set when the threshold was picked for the pair.
    pub pair: Option<PairFigures>,
}

/// What an exported model measured.
#[derive(Debug, Clone)]
pub struct ExportReport {
    pub entry: ModelEntry,
    pub f32_score: f64,
    pub int8_score: f64,
    /// Why the int8 file did not ship (`int8_refusal`); None: it shipped.
    pub int8_refused: Option<String>,
    pub max_abs_f32_vs_tch: f32,
    /// tract int8 vs tract f32 output over the held-out slices scored.
    pub int8_vs_f32: LogitDiff,
    pub eval_slices: usize,
    /// How the int8 file was made: settings, calibration slices used and
    /// how many of them were clear.
    pub quant: QuantSettings,
    pub calibration_slices: usize,
    pub calibration_clear_slices: usize,
    /// Filters only.
    pub filter: Option<FilterOperation>,
    /// The patients the figures above come from.
    pub scored_on: ScoredOn,
}

impl ExportReport {
    pub fn int8_shipped(&self) -> bool {
        self.int8_refused.is_none()
    }
}

/// How far one model's output is from another's, over all pixels of all
/// scored slices.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LogitDiff {
    pub max_abs: f32,
    pub mean_abs: f64,
    /// Share of pixels where the two disagree on the sign (the mask).
    pub sign_flips: f64,
}

impl LogitDiff {
    pub fn between(a: &[Vec<f32>], b: &[Vec<f32>]) -> Self {
        let (mut max_abs, mut sum, mut flips, mut n) = (0.0f32, 0.0f64, 0usize, 0usize);
        for (x, y) in a.iter().zip(b) {
            assert_eq!(x.len(), y.len(), "outputs of one shape");
            for (&u, &v) in x.iter().zip(y) {
                let d = (u - v).abs();
                max_abs = max_abs.max(d);
                sum += f64::from(d);
                flips += usize::from((u > 0.0) != (v > 0.0));
                n += 1;
            }
        }
        let n = n.max(1) as f64;
        Self {
            max_abs,
            mean_abs: sum / n,
            sign_flips: flips as f64 / n,
        }
    }
}

fn evenly(len: usize, k: usize) -> Vec<usize> {
    if len == 0 || k == 0 {
        return Vec::new();
    }
    let k = k.min(len);
    (0..k).map(|i| i * len / k).collect()
}

fn write_model(model: &tract_onnx::pb::ModelProto, path: &Path) -> Result<()> {
    write_atomic(path, &prost::Message::encode_to_vec(model))
}

/// The slices that calibrate the int8 activation ranges, drawn evenly from
/// the run's training part. Segmenters: `n` slices of which a share
/// `clear_share` (rounded) come from clear slices and the rest from tumour
/// slices, so the ranges see both what the gate scores and what the
/// appliance mostly meets. Filters: `n` slices over the whole part.
pub fn calibration_set(train: &Prepared, n: usize, segmenter: bool, clear_share: f64) -> Prepared {
    if !segmenter {
        return train.subset(&evenly(train.len(), n));
    }
    let (tumour, clear): (Vec<usize>, Vec<usize>) =
        (0..train.len()).partition(|&i| train.labels[i]);
    let want_clear = ((n as f64 * clear_share.clamp(0.0, 1.0)).round() as usize).min(clear.len());
    let want_tumour = (n - want_clear).min(tumour.len());
    let pick = |from: &[usize], k: usize| -> Vec<usize> {
        evenly(from.len(), k).into_iter().map(|i| from[i]).collect()
    };
    let mut idx = pick(&tumour, want_tumour);
    idx.extend(pick(&clear, want_clear));
    train.subset(&idx)
}

/// The held-out slices scored in f32 and int8: segmenters on tumour slices
/// (Dice is what the gate limits), filters on every slice; `n` evenly spread.
pub fn eval_set(test: &Prepared, n: usize, segmenter: bool) -> Prepared {
    let set = if segmenter {
        test.tumour_only()
    } else {
        test.clone()
    };
    set.subset(&evenly(set.len(), n))
}

/// The run's data split; `data` replaces the config's data root when given.
pub fn run_data(cfg: &FitConfig, data: Option<&Path>) -> Result<DataSplit> {
    match data {
        Some(root) => {
            let mut cfg = cfg.clone();
            cfg.data = root.to_path_buf();
            cfg.sources.clear();
            load_run_data(&cfg)
        }
        None => load_run_data(cfg),
    }
}

/// Every slice of `data` through `plan`.
pub fn outputs(
    plan: &tract_check::TractPlan,
    shape: &[usize],
    data: &Prepared,
) -> Result<Vec<Vec<f32>>> {
    (0..data.len())
        .map(|i| tract_check::run(plan, shape, data.image(i)))
        .collect()
}

/// Segmenter score: mean per-slice Dice over tumour slices, model resolution,
/// logit > 0 (sigmoid > 0.5). Filter score: accuracy in percent.
pub fn score(outputs: &[Vec<f32>], data: &Prepared, segmenter: bool) -> f64 {
    let mut counts = Vec::new();
    let mut correct = 0;
    for (i, out) in outputs.iter().enumerate() {
        if segmenter {
            let pred: Vec<bool> = out.iter().map(|&v| v > 0.0).collect();
            let truth: Vec<bool> = data.mask(i).iter().map(|&m| m != 0).collect();
            counts.push(MaskCounts::from_masks(&pred, &truth));
        } else {
            correct += usize::from((out[1] > out[0]) == data.labels[i]);
        }
    }
    if segmenter {
        SliceSummary::from_slices(&counts).mean_dice_tumour
    } else {
        100.0 * correct as f64 / outputs.len().max(1) as f64
    }
}

pub fn code_revision() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(rev) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{rev}+uncommitted")
            } else {
                rev
            }
        }
        None => "unknown".into(),
    }
}

/// Exports one run as `<name>.f32.onnx` and, when it passes the accuracy
/// gate, `<name>.int8.onnx`, and returns its manifest entry.
pub fn export_run(run: &Path, name: &str, opts: &ExportOptions) -> Result<ExportReport> {
    let TrainedRun { state, net, .. } = load_best(run, Device::Cpu)?;
    let cfg = &state.config;
    let size = i64::from(cfg.input_size);
    let lowered = lower(&net, size);
    let segmenter = cfg.model.is_segmenter();
    let (input_name, output_name) = (
        "image",
        if segmenter {
            "mask_logits"
        } else {
            "class_logits"
        },
    );
    let provenance = Provenance {
        data: format!(
            "{} (patient-level split seed {}, test {:.0} %)",
            cfg.data_label(),
            cfg.seed,
            cfg.split.test * 100.0
        ),
        seed: cfg.seed,
        epochs: state.epoch,
        code_revision: opts.code_revision.clone(),
        trained_on: opts.trained_on.clone(),
        created: chrono_free_date(),
    };
    let metadata = vec![
        (
            "neuroscreen.role".to_string(),
            if segmenter { "segmenter" } else { "filter" }.to_string(),
        ),
        ("neuroscreen.architecture".into(), cfg.model.label()),
        (
            "neuroscreen.provenance".into(),
            serde_json::to_string(&provenance).expect("serialises"),
        ),
    ];
    std::fs::create_dir_all(&opts.out).map_err(|e| Error::io(&opts.out, e))?;
    let f32_file = format!("{name}.f32.onnx");
    let f32_path = opts.out.join(&f32_file);
    write_model(
        &to_onnx_f32(&lowered, name, input_name, output_name, &metadata),
        &f32_path,
    )?;

    let data = run_data(cfg, opts.data.as_deref())?;
    let calib_set = calibration_set(
        &data.train,
        opts.calibration_slices,
        segmenter,
        opts.calibration_clear_share,
    );
    let calib: Vec<Vec<f32>> = (0..calib_set.len())
        .map(|i| calib_set.image(i).to_vec())
        .collect();
    let ranges = calibrate(&lowered, &calib, opts.quant.method);
    let int8_file = format!("{name}.int8.onnx");
    let int8_path = opts.out.join(&int8_file);
    write_model(
        &to_onnx_int8(
            &lowered,
            &ranges,
            &opts.quant,
            name,
            input_name,
            output_name,
            &metadata,
        ),
        &int8_path,
    )?;

    let shape: Vec<usize> = lowered.input_shape.iter().map(|&d| d as usize).collect();
    let f32_plan = tract_check::load(&f32_path, &shape)?;
    let int8_plan = tract_check::load(&int8_path, &shape)?;
    let scored = match opts.scored_on {
        ScoredOn::Test => &data.test,
        ScoredOn::Validation => &data.val,
    };
    let eval = eval_set(scored, opts.eval_slices, segmenter);
    let f32_out = outputs(&f32_plan, &shape, &eval)?;
    let int8_out = outputs(&int8_plan, &shape, &eval)?;
    let f32_score = score(&f32_out, &eval, segmenter);
    let int8_score = score(&int8_out, &eval, segmenter);
    let int8_vs_f32 = LogitDiff::between(&f32_out, &int8_out);
    let mut max_abs = 0.0f32;
    for (i, got) in f32_out.iter().enumerate().take(4) {
        let x = Tensor::from_slice(eval.image(i)).view(lowered.input_shape);
        let reference =
            Vec::<f32>::try_from(tch::no_grad(|| net.forward_t(&x, false)).flatten(0, -1))
                .map_err(|e| Error::Invalid(e.to_string()))?;
        max_abs = reference
            .iter()
            .zip(got)
            .map(|(a, b)| (a - b).abs())
            .fold(max_abs, f32::max);
    }
    let filter = if segmenter {
        None
    } else {
        let p_of = |outs: &[Vec<f32>]| -> Vec<f32> {
            outs.iter().map(|o| operating_point::p_tumour(o)).collect()
        };
        let val_p = p_of(&outputs(&f32_plan, &shape, &data.val)?);
        let groups: Vec<u16> = (0..data.val.len()).map(|i| data.val.source(i)).collect();
        let (validation, pair) = match &opts.pair_with {
            None => (
                operating_point::for_sensitivity_per_group(
                    &val_p,
                    &data.val.labels,
                    &groups,
                    opts.filter_sensitivity,
                )?,
                None,
            ),
            Some(seg) => {
                if seg.shape != shape {
                    return Err(Error::Invalid(format!(
                        "the segmenter's input {:?} is not the filter's {:?}; the pair's threshold is picked on slices prepared once",
                        seg.shape, shape
                    )));
                }
                let plan = tract_check::load(&seg.f32_path, &shape)?;
                let cut = operating_point::logit_at(seg.threshold);
                let found: Vec<bool> = outputs(&plan, &shape, &data.val)?
                    .iter()
                    .map(|logits| {
                        mask_stands(
                            logits.iter().filter(|&&l| l >= cut).count(),
                            opts.min_mask_px,
                        )
                    })
                    .collect();
                let op = operating_point::for_pair_per_group(
                    &val_p,
                    &data.val.labels,
                    &found,
                    &groups,
                    opts.filter_sensitivity,
                )?;
                let found_tumour: Vec<usize> = (0..found.len())
                    .filter(|&i| found[i] && data.val.labels[i])
                    .collect();
                let kept = found_tumour
                    .iter()
                    .filter(|&&i| val_p[i] >= op.threshold)
                    .count();
                let figures = PairFigures {
                    found: found_tumour.len(),
                    kept,
                };
                (op, Some(figures))
            }
        };
        let t = validation.threshold;
        // A candidate is scored on the validation slices the threshold was
        // just picked on: their probabilities are at hand.
        let test_p = match opts.scored_on {
            ScoredOn::Test => p_of(&outputs(&f32_plan, &shape, scored)?),
            ScoredOn::Validation => val_p,
        };
        Some(FilterOperation {
            validation,
            test_f32: operating_point::at(&test_p, &scored.labels, t),
            eval_f32: operating_point::at(&p_of(&f32_out), &eval.labels, t),
            eval_int8: operating_point::at(&p_of(&int8_out), &eval.labels, t),
            pair,
        })
    };
    // With several sources the int8 file must hold up on each: a loss on
    // a small source can hide in the pooled mean.
    let per_source: Vec<(String, f64, f64)> = if data.sources.len() > 1 {
        data.sources
            .iter()
            .enumerate()
            .filter_map(|(k, source)| {
                let idx: Vec<usize> = (0..eval.len())
                    .filter(|&i| usize::from(eval.source(i)) == k)
                    .collect();
                if idx.is_empty() {
                    return None;
                }
                let sub = eval.subset(&idx);
                let pick = |outs: &[Vec<f32>]| -> Vec<Vec<f32>> {
                    idx.iter().map(|&i| outs[i].clone()).collect()
                };
                Some((
                    source.name.clone(),
                    score(&pick(&f32_out), &sub, segmenter),
                    score(&pick(&int8_out), &sub, segmenter),
                ))
            })
            .collect()
    } else {
        Vec::new()
    };
    let int8_refused = int8_refusal(f32_score, int8_score, filter.as_ref()).or_else(|| {
        per_source.iter().find_map(|(source, f, q)| {
            int8_refusal(*f, *q, None)
                .filter(|_| segmenter)
                .map(|why| format!("on {source}'s held-out slices: {why}"))
        })
    });
    let mut files = vec![ModelFile {
        precision: Precision::F32,
        path: f32_file,
        sha256: sha256_file(&f32_path)?,
    }];
    if int8_refused.is_none() {
        files.push(ModelFile {
            precision: Precision::Int8,
            path: int8_file,
            sha256: sha256_file(&int8_path)?,
        });
    } else {
        std::fs::remove_file(&int8_path).map_err(|e| Error::io(&int8_path, e))?;
    }
    let key = if segmenter {
        "dice_per_slice_tumour_only_model_res"
    } else {
        "accuracy_percent"
    };
    let mut metrics = BTreeMap::new();
    metrics.insert(format!("{key}_f32_tract"), f32_score);
    metrics.insert(format!("{key}_int8_tract"), int8_score);
    metrics.insert("eval_slices_held_out".into(), eval.len() as f64);
    if opts.scored_on == ScoredOn::Validation {
        metrics.insert("scored_on_validation_patients".into(), 1.0);
    }
    // NaN (a source without a tumour slice left at the model's size) would
    // be written as null, which the manifest's reader refuses.
    for (source, f, q) in per_source
        .iter()
        .filter(|(_, f, q)| f.is_finite() && q.is_finite())
    {
        metrics.insert(format!("{key}_f32_tract_{source}"), *f);
        metrics.insert(format!("{key}_int8_tract_{source}"), *q);
    }
    metrics.insert("calibration_slices".into(), calib_set.len() as f64);
    if segmenter {
        metrics.insert(
            "calibration_clear_share".into(),
            opts.calibration_clear_share,
        );
    }
    metrics.insert(
        "max_abs_logit_diff_tract_int8_vs_f32".into(),
        f64::from(int8_vs_f32.max_abs),
    );
    metrics.insert(
        "mean_abs_logit_diff_tract_int8_vs_f32".into(),
        int8_vs_f32.mean_abs,
    );
    metrics.insert(
        "max_abs_logit_diff_tract_f32_vs_tch".into(),
        f64::from(max_abs),
    );
    metrics.insert("gmac_per_slice".into(), lowered.macs() as f64 / 1e9);
    if let Some(op) = &filter {
        metrics.insert(
            "threshold_target_sensitivity".into(),
            opts.filter_sensitivity,
        );
        if let Some(pair) = op.pair {
            // 1: the threshold keeps the target share of the tumour slices
            // the segmenter finds (picked for the pair, not the filter).
            metrics.insert("threshold_for_pair".into(), 1.0);
            metrics.insert("threshold_pair_found_validation".into(), pair.found as f64);
            metrics.insert("threshold_pair_kept_validation".into(), pair.kept as f64);
        }
        for (part, p) in [
            ("val", &op.validation),
            (
                match opts.scored_on {
                    ScoredOn::Test => "test_f32_tract",
                    ScoredOn::Validation => "val_all_f32_tract",
                },
                &op.test_f32,
            ),
            ("eval_f32_tract", &op.eval_f32),
            ("eval_int8_tract", &op.eval_int8),
        ] {
            // NaN (no slice of that class) would not survive the JSON.
            for (what, v) in [
                ("sensitivity", p.sensitivity),
                ("specificity", p.specificity),
            ] {
                if v.is_finite() {
                    metrics.insert(format!("{part}_{what}_at_threshold"), v);
                }
            }
            metrics.insert(format!("{part}_tumour_slices"), p.tumour_slices as f64);
            metrics.insert(format!("{part}_clear_slices"), p.clear_slices as f64);
        }
    }
    if let Some(best) = state
        .history
        .iter()
        .find(|r| r.epoch == state.early.best_epoch)
    {
        if let Some(d) = best.val_dice {
            metrics.insert("val_dice_per_slice_tumour_only_at_best_epoch".into(), d);
        }
        if let Some(a) = best.val_accuracy {
            metrics.insert("val_accuracy_at_best_epoch".into(), a);
        }
    }
    let entry = ModelEntry {
        name: name.to_string(),
        role: if segmenter {
            Role::Segmenter
        } else {
            Role::Filter
        },
        architecture: cfg.model.label(),
        files,
        input: InputSpec {
            name: input_name.into(),
            shape: [1, 3, cfg.input_size as usize, cfg.input_size as usize],
            layout: Layout::Nchw,
            channels: vec!["t1_pre".into(), "flair".into(), "t1_post".into()],
            preprocessing: Preprocessing::default(),
        },
        output: OutputSpec {
            name: output_name.into(),
            shape: lowered.output_shape.iter().map(|&d| d as usize).collect(),
            kind: OutputKind::Logits,
            classes: if segmenter {
                vec!["tumour".into()]
            } else {
                vec!["clear".into(), "tumour".into()]
            },
        },
        threshold: filter.as_ref().map_or(0.5, |op| op.validation.threshold),
        min_mask_px: if segmenter { opts.min_mask_px } else { 0 },
        provenance: Some(provenance),
        metrics,
    };
    Ok(ExportReport {
        entry,
        f32_score,
        int8_score,
        int8_refused,
        max_abs_f32_vs_tch: max_abs,
        int8_vs_f32,
        eval_slices: eval.len(),
        quant: opts.quant,
        calibration_slices: calib_set.len(),
        calibration_clear_slices: calib_set.labels.iter().filter(|&&l| !l).count(),
        filter,
        scored_on: opts.scored_on,
    })
}

/// Writes `manifest.json` for the exported entries.
pub fn write_manifest(
    out: &Path,
    segmenter: ModelEntry,
    filter: Option<ModelEntry>,
) -> Result<Manifest> {
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        pipeline: Pipeline {
            filter: filter.as_ref().map(|f| f.name.clone()),
            segmenter: segmenter.name.clone(),
        },
        models: std::iter::once(segmenter).chain(filter).collect(),
    };
    manifest.validate()?;
    manifest.verify_files(out)?;
    write_atomic(
        &out.join("manifest.json"),
        (manifest.to_json() + "\n").as_bytes(),
    )?;
    Ok(manifest)
}

/// UTC date as YYYY-MM-DD from the system clock (no date crate needed).
fn chrono_free_date() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0) as i64;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evenly_spreads_indices() {
        assert_eq!(evenly(10, 3), [0, 3, 6]);
        assert_eq!(evenly(2, 5), [0, 1]);
        assert!(evenly(0, 3).is_empty());
    }

    /// `n` one-pixel slices; image value = index, label from `tumour`.
    fn slices(tumour: &[bool]) -> Prepared {
        Prepared {
            size: 1,
            images: (0..tumour.len()).flat_map(|i| [i as f32; 3]).collect(),
            masks: tumour.iter().map(|&t| u8::from(t)).collect(),
            patients: (0..tumour.len()).map(|i| format!("p{i}")).collect(),
            labels: tumour.to_vec(),
            true_area: tumour.iter().map(|&t| usize::from(t)).collect(),
            sources: vec![0; tumour.len()],
        }
    }

    fn ids(p: &Prepared) -> Vec<usize> {
        (0..p.len()).map(|i| p.image(i)[0] as usize).collect()
    }

    #[test]
    fn calibration_mixes_tumour_and_clear_slices_by_share() {
        // Tumour at even indices 0..20, clear at odd ones.
        let train = slices(&(0..20).map(|i| i % 2 == 0).collect::<Vec<_>>());
        let half = calibration_set(&train, 8, true, 0.5);
        assert_eq!(ids(&half), [0, 4, 10, 14, 1, 5, 11, 15]);
        assert_eq!(half.labels.iter().filter(|&&l| l).count(), 4);
        let tumour_only = calibration_set(&train, 4, true, 0.0);
        assert!(tumour_only.labels.iter().all(|&l| l));
        assert_eq!(tumour_only.len(), 4);
        let clear_only = calibration_set(&train, 4, true, 1.0);
        assert!(clear_only.labels.iter().all(|&l| !l));
        // Filters: evenly over everything, labels ignored.
        assert_eq!(ids(&calibration_set(&train, 4, false, 0.5)), [0, 5, 10, 15]);
    }

    #[test]
    fn calibration_takes_what_there_is_when_a_kind_runs_short() {
        let train = slices(&[true, false, false, false]);
        let c = calibration_set(&train, 4, true, 0.25);
        // One clear slice wanted, three tumour slices wanted but only one
        // exists: two slices, never a repeat.
        assert_eq!(ids(&c), [0, 1]);
        assert!(calibration_set(&slices(&[]), 4, true, 0.5).is_empty());
    }

    #[test]
    fn eval_set_keeps_tumour_slices_for_segmenters_only() {
        let test = slices(&[true, false, true, false, true]);
        assert_eq!(ids(&eval_set(&test, 10, true)), [0, 2, 4]);
        assert_eq!(ids(&eval_set(&test, 2, true)), [0, 2]);
        assert_eq!(eval_set(&test, 10, false).len(), 5);
    }

    #[test]
    fn logit_diff_counts_sign_flips_and_extremes() {
        let a = vec![vec![1.0, -1.0, 0.5], vec![2.0]];
        let b = vec![vec![1.5, 0.5, 0.5], vec![-2.0]];
        let d = LogitDiff::between(&a, &b);
        assert_eq!(d.max_abs, 4.0);
        assert!((d.mean_abs - (0.5 + 1.5 + 0.0 + 4.0) / 4.0).abs() < 1e-12);
        assert!((d.sign_flips - 0.5).abs() < 1e-12);
        assert_eq!(LogitDiff::between(&a, &a).max_abs, 0.0);
    }

    #[test]
    fn score_is_mean_dice_over_tumour_slices() {
        let data = slices(&[true, false]);
        // Slice 0: predicted tumour, true tumour -> Dice 1. Slice 1 is clear
        // and does not count, whatever is predicted there.
        assert_eq!(score(&[vec![3.0], vec![1.0]], &data, true), 1.0);
        assert_eq!(score(&[vec![-3.0], vec![1.0]], &data, true), 0.0);
    }

    fn operation(f32: (usize, usize), int8: (usize, usize)) -> FilterOperation {
        // (tumour slices kept of 40, clear slices passed of 60)
        let point = |(kept, passed): (usize, usize)| OperatingPoint {
            threshold: 0.15,
            sensitivity: kept as f64 / 40.0,
            specificity: (60 - passed) as f64 / 60.0,
            tumour_slices: 40,
            tumour_passed: kept,
            clear_slices: 60,
        };
        FilterOperation {
            validation: point(f32),
            test_f32: point(f32),
            eval_f32: point(f32),
            eval_int8: point(int8),
            pair: None,
        }
    }

    #[test]
    fn int8_gate_for_segmenters_is_the_dice_drop() {
        assert_eq!(int8_refusal(0.4325, 0.4314, None), None);
        let why = int8_refusal(0.43, 0.42, None).unwrap();
        assert!(why.contains("Dice 0.4200 in int8"), "{why}");
    }

    #[test]
    fn int8_filter_must_keep_every_tumour_slice_at_its_threshold() {
        // Same accuracy at P = 0.5, same clear slices passed, one tumour
        // slice fewer at the operating threshold: refused.
        let why = int8_refusal(81.0, 81.0, Some(&operation((36, 30), (35, 30)))).unwrap();
        assert!(
            why.contains("keeps 35 of 40 tumour slices, f32 36"),
            "{why}"
        );
        // One more tumour slice kept is no reason to refuse.
        assert_eq!(
            int8_refusal(81.0, 81.0, Some(&operation((36, 30), (37, 30)))),
            None
        );
    }

    #[test]
    fn int8_filter_may_pass_a_few_more_clear_slices() {
        // 3 more of 60 clear slices (5 points): still ships; 4 more: refused.
        assert_eq!(
            int8_refusal(81.0, 80.9, Some(&operation((36, 30), (36, 33)))),
            None
        );
        let why = int8_refusal(81.0, 80.9, Some(&operation((36, 30), (36, 34)))).unwrap();
        assert!(why.contains("specificity"), "{why}");
        // And accuracy at P = 0.5 still counts on its own.
        let why = int8_refusal(81.0, 80.0, Some(&operation((36, 30), (36, 30)))).unwrap();
        assert!(why.contains("accuracy 80.0 %"), "{why}");
    }

    #[test]
    fn date_is_plausible() {
        let d = chrono_free_date();
        assert_eq!(d.len(), 10);
        assert!(d.as_str() >= "2024-01-01", "{d}");
    }
}
