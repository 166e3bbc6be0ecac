//! `neuroscreen-train eval`: a trained run scored on its held-out patients,
//! with the report's figures and pictures.

use super::checkpoint::{load_best, load_run_data, TrainedRun};
use super::dataset::Prepared;
use crate::report::{
    classification_metrics, plot_confusion_matrix, plot_roc, plot_training_curves,
    summarise_segmentation, write_montage, write_report, EpochRecord, MontageRow, ReportImages,
    ReportInputs, SliceRecord,
};
use crate::{Error, Result};
use image::{GrayImage, RgbImage};
use models::metrics::MaskCounts;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Rows in the montage: the largest held-out lesions, then the smallest.
const MONTAGE_ROWS: usize = 6;

fn to_rgb(p: &Prepared, i: usize) -> RgbImage {
    let s = p.size;
    let n = (s * s) as usize;
    let img = p.image(i);
    RgbImage::from_fn(s, s, |x, y| {
        let k = (y * s + x) as usize;
        let v = |c: usize| (img[c * n + k].clamp(0.0, 1.0) * 255.0).round() as u8;
        image::Rgb([v(0), v(1), v(2)])
    })
}

fn to_grey(mask: &[bool], s: u32) -> GrayImage {
    GrayImage::from_fn(s, s, |x, y| {
        image::Luma([if mask[(y * s + x) as usize] { 255 } else { 0 }])
    })
}

/// Scores `run`'s best checkpoint on its test patients and writes
/// `report.md` with figures into `out`; returns the report's path.
pub fn evaluate_run(run: &Path, out: &Path) -> Result<PathBuf> {
    let device = Device::cuda_if_available();
    let TrainedRun { state, net, .. } = load_best(run, device)?;
    let cfg = &state.config;
    let data = load_run_data(cfg)?;
    let test = &data.test;
    if test.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: the split leaves no test slices",
            cfg.data.display()
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let s = i64::from(test.size);
    let plane = (test.size * test.size) as usize;
    let mut images = ReportImages::default();
    let curves: Vec<EpochRecord> = state
        .history
        .iter()
        .map(|r| EpochRecord {
            epoch: r.epoch as usize,
            train_loss: r.train_loss,
            val_loss: r.val_loss,
            val_dice: r.val_dice.or(r.val_accuracy).unwrap_or(f64::NAN),
        })
        .collect();
    let curves_path = out.join("training_curves.png");
    plot_training_curves(&curves, &curves_path)?;
    images.training_curves = Some(curves_path);

    let dataset = format!(
        "{}: {} held-out slices from {} test patients (patient-level split, seed {})",
        cfg.data.display(),
        test.len(),
        data.split.test.len(),
        cfg.seed
    );
    if cfg.model.is_segmenter() {
        let mut records = Vec::with_capacity(test.len());
        let mut rows = Vec::new();
        for i in 0..test.len() {
            let x = Tensor::from_slice(test.image(i))
                .view([1, 3, s, s])
                .to_device(device);
            let logits = tch::no_grad(|| net.forward_t(&x, false));
            let pred = Vec::<f32>::try_from(
                logits
                    .to_device(Device::Cpu)
                    .to_kind(Kind::Float)
                    .flatten(0, -1),
            )
            .map_err(|e| Error::Invalid(e.to_string()))?;
            let p: Vec<bool> = pred.iter().map(|&v| v > 0.0).collect();
            let t: Vec<bool> = test.mask(i).iter().map(|&m| m != 0).collect();
            debug_assert_eq!(p.len(), plane);
            records.push(SliceRecord {
                patient: test.patients[i].clone(),
                counts: MaskCounts::from_masks(&p, &t),
                true_area_px: test.true_area[i],
            });
            rows.push((test.true_area[i], i, p, t));
        }
        let summary = summarise_segmentation(&records);
        rows.retain(|r| r.0 > 0);
        rows.sort_by_key(|r| std::cmp::Reverse(r.0));
        let half = MONTAGE_ROWS / 2;
        let picked: Vec<_> = rows
            .iter()
            .take(half)
            .chain(rows.iter().rev().take(half))
            .collect();
        let montage: Vec<MontageRow> = picked
            .iter()
            .map(|(_, i, p, t)| MontageRow {
                image: to_rgb(test, *i),
                truth: to_grey(t, test.size),
                prediction: to_grey(p, test.size),
            })
            .collect();
        if !montage.is_empty() {
            let path = out.join("montage.png");
            write_montage(&montage, &path)?;
            images.montage = Some(path);
        }
        write_report(
            &ReportInputs {
                dataset: &dataset,
                classification: None,
                segmentation: Some(&summary),
                pipeline: None,
                images: &images,
            },
            out,
        )
    } else {
        let mut probs = Vec::with_capacity(test.len());
        for i in 0..test.len() {
            let x = Tensor::from_slice(test.image(i))
                .view([1, 3, s, s])
                .to_device(device);
            let p = tch::no_grad(|| net.forward_t(&x, false).softmax(1, Kind::Float));
            probs.push(p.double_value(&[0, 1]) as f32);
        }
        let metrics = classification_metrics(&probs, &test.labels, 0.5)?;
        let roc = out.join("roc.png");
        plot_roc(&metrics.roc, metrics.roc_auc, &roc)?;
        let cm = out.join("confusion_matrix.png");
        plot_confusion_matrix(&metrics.counts, 0.5, &cm)?;
        images.roc = Some(roc);
        images.confusion_matrix = Some(cm);
        write_report(
            &ReportInputs {
                dataset: &dataset,
                classification: Some(&metrics),
                segmentation: None,
                pipeline: None,
                images: &images,
            },
            out,
        )
    }
}
