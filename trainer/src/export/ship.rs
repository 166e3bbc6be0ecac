//! `neuroscreen-train export`: trained runs to the shipped model set —
//! f32 and int8 ONNX files, the manifest with hashes, contract, provenance
//! and measured metrics, and the model card.

use super::calibrate::calibrate;
use super::lower::{lower, Lowered};
use super::onnx_f32::to_onnx_f32;
use super::quantize::{to_onnx_int8, QuantSettings};
use super::tract_check;
use crate::train::checkpoint::{load_best, load_run_data, write_atomic, TrainedRun};
use crate::train::dataset::Prepared;
use crate::{Error, Result};
use models::integrity::sha256_file;
use models::manifest::{
    InputSpec, Layout, ModelFile, OutputKind, OutputSpec, Pipeline, Precision, Provenance,
    FORMAT_VERSION,
};
use models::metrics::{MaskCounts, SliceSummary};
use models::{Manifest, ModelEntry, Preprocessing, Role};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

/// Accuracy gate for shipping the int8 file (export issue): Dice may drop by
/// at most this much against f32 on held-out slices...
pub const MAX_DICE_DROP: f64 = 0.005;
/// ...and filter accuracy by at most this many points.
pub const MAX_ACCURACY_DROP_POINTS: f64 = 0.5;

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub out: PathBuf,
    pub quant: QuantSettings,
    /// Calibration slices drawn (evenly) from the run's training part.
    pub calibration_slices: usize,
    /// Held-out test slices evaluated in f32 and int8 (tract's int8 is slow
    /// on x86, so this is capped).
    pub eval_slices: usize,
    pub trained_on: String,
}

/// What an exported model measured.
#[derive(Debug, Clone)]
pub struct ExportReport {
    pub entry: ModelEntry,
    pub f32_score: f64,
    pub int8_score: f64,
    pub int8_shipped: bool,
    pub max_abs_f32_vs_tch: f32,
    pub eval_slices: usize,
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

/// Segmenter score: mean per-slice Dice over tumour slices, model resolution.
/// Filter score: accuracy in percent.
fn score(
    plan: &tract_check::TractPlan,
    l: &Lowered,
    data: &Prepared,
    idx: &[usize],
    segmenter: bool,
) -> Result<f64> {
    let shape: Vec<usize> = l.input_shape.iter().map(|&d| d as usize).collect();
    let mut counts = Vec::new();
    let mut correct = 0;
    for &i in idx {
        let out = tract_check::run(plan, &shape, data.image(i))?;
        if segmenter {
            let pred: Vec<bool> = out.iter().map(|&v| v > 0.0).collect();
            let truth: Vec<bool> = data.mask(i).iter().map(|&m| m != 0).collect();
            counts.push(MaskCounts::from_masks(&pred, &truth));
        } else {
            correct += usize::from((out[1] > out[0]) == data.labels[i]);
        }
    }
    Ok(if segmenter {
        SliceSummary::from_slices(&counts).mean_dice_tumour
    } else {
        100.0 * correct as f64 / idx.len().max(1) as f64
    })
}

fn code_revision() -> String {
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
            cfg.data.display(),
            cfg.seed,
            cfg.split.test * 100.0
        ),
        seed: cfg.seed,
        epochs: state.epoch,
        code_revision: code_revision(),
        trained_on: opts.trained_on.clone(),
        created: chrono_free_date(),
    };
    let metadata = vec![
        (
            "neuroscreen.role".to_string(),
            if segmenter { "segmenter" } else { "filter" }.to_string(),
        ),
        ("neuroscreen.architecture".into(), cfg.model.name().into()),
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

    let data = load_run_data(cfg)?;
    let calib_set = if segmenter {
        data.train.tumour_only()
    } else {
        data.train.clone()
    };
    let calib: Vec<Vec<f32>> = evenly(calib_set.len(), opts.calibration_slices)
        .into_iter()
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
    // Segmenters are scored on held-out tumour slices (Dice is what the gate
    // limits); filters on every held-out slice.
    let eval_set = if segmenter {
        data.test.tumour_only()
    } else {
        data.test.clone()
    };
    let idx = evenly(eval_set.len(), opts.eval_slices);
    let f32_score = score(&f32_plan, &lowered, &eval_set, &idx, segmenter)?;
    let int8_score = score(&int8_plan, &lowered, &eval_set, &idx, segmenter)?;
    let mut max_abs = 0.0f32;
    for &i in idx.iter().take(4) {
        let x = Tensor::from_slice(eval_set.image(i)).view(lowered.input_shape);
        let reference =
            Vec::<f32>::try_from(tch::no_grad(|| net.forward_t(&x, false)).flatten(0, -1))
                .map_err(|e| Error::Invalid(e.to_string()))?;
        let got = tract_check::run(&f32_plan, &shape, eval_set.image(i))?;
        max_abs = reference
            .iter()
            .zip(&got)
            .map(|(a, b)| (a - b).abs())
            .fold(max_abs, f32::max);
    }
    let drop_ok = if segmenter {
        f32_score - int8_score <= MAX_DICE_DROP
    } else {
        f32_score - int8_score <= MAX_ACCURACY_DROP_POINTS
    };
    let mut files = vec![ModelFile {
        precision: Precision::F32,
        path: f32_file,
        sha256: sha256_file(&f32_path)?,
    }];
    if drop_ok {
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
    metrics.insert("eval_slices_held_out".into(), idx.len() as f64);
    metrics.insert(
        "max_abs_logit_diff_tract_f32_vs_tch".into(),
        f64::from(max_abs),
    );
    metrics.insert("gmac_per_slice".into(), lowered.macs() as f64 / 1e9);
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
        architecture: cfg.model.name().into(),
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
        threshold: 0.5,
        provenance: Some(provenance),
        metrics,
    };
    Ok(ExportReport {
        entry,
        f32_score,
        int8_score,
        int8_shipped: drop_ok,
        max_abs_f32_vs_tch: max_abs,
        eval_slices: idx.len(),
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
    manifest.validate().map_err(Error::Invalid)?;
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

    #[test]
    fn date_is_plausible() {
        let d = chrono_free_date();
        assert_eq!(d.len(), 10);
        assert!(d.as_str() >= "2024-01-01", "{d}");
    }
}
