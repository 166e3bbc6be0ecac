//! `neuroscreen-train eval`: a trained run scored on its held-out patients,
//! with the report's figures and pictures.

use super::checkpoint::{load_best, load_run_data, TrainedRun};
use super::dataset::Prepared;
use crate::nets::Net;
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

/// Slices per forward pass when scoring.
const SCORE_BATCH: usize = 16;

/// Runs `net` over every slice of `data` in eval mode, `SCORE_BATCH` at a
/// time, handing `each` the outputs of one batch and its first index.
fn for_each_output(
    net: &Net,
    data: &Prepared,
    device: Device,
    mut each: impl FnMut(usize, Tensor) -> Result<()>,
) -> Result<()> {
    let s = i64::from(data.size);
    let per = 3 * (data.size * data.size) as usize;
    let mut start = 0;
    while start < data.len() {
        let n = SCORE_BATCH.min(data.len() - start);
        let x = Tensor::from_slice(&data.images[start * per..(start + n) * per])
            .view([n as i64, 3, s, s])
            .to_device(device);
        let out = tch::no_grad(|| net.forward_t(&x, false))
            .to_device(Device::Cpu)
            .to_kind(Kind::Float);
        each(start, out)?;
        start += n;
    }
    Ok(())
}

/// A segmenter's masks (logit > 0, i.e. probability > 0.5) for every slice.
pub fn predict_masks(net: &Net, data: &Prepared, device: Device) -> Result<Vec<Vec<bool>>> {
    let plane = (data.size * data.size) as usize;
    let mut masks = Vec::with_capacity(data.len());
    for_each_output(net, data, device, |_, out| {
        let v =
            Vec::<f32>::try_from(out.flatten(0, -1)).map_err(|e| Error::Invalid(e.to_string()))?;
        masks.extend(
            v.chunks(plane)
                .map(|c| c.iter().map(|&l| l > 0.0).collect()),
        );
        Ok(())
    })?;
    Ok(masks)
}

/// A filter's tumour probability for every slice.
pub fn tumour_probabilities(net: &Net, data: &Prepared, device: Device) -> Result<Vec<f32>> {
    let mut probs = Vec::with_capacity(data.len());
    for_each_output(net, data, device, |_, out| {
        let p = out.softmax(1, Kind::Float).select(1, 1);
        probs.extend(Vec::<f32>::try_from(p).map_err(|e| Error::Invalid(e.to_string()))?);
        Ok(())
    })?;
    Ok(probs)
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
            cfg.data_label()
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let plane = (test.size * test.size) as usize;
    let mut images = ReportImages::default();
    let curves: Vec<EpochRecord> = state
        .history
        .iter()
        .map(|r| EpochRecord {
            epoch: r.epoch as usize,
            train_loss: r.train_loss,
            val_loss: r.val_loss,
            train_score: r.train_dice.or(r.train_accuracy).unwrap_or(f64::NAN),
            val_score: r.val_dice.or(r.val_accuracy).unwrap_or(f64::NAN),
        })
        .collect();
    let curves_path = out.join("training_curves.png");
    plot_training_curves(&curves, state.config.model.score_name(), &curves_path)?;
    images.training_curves = Some(curves_path);

    let dataset = format!(
        "{}: {} held-out slices from {} test patients (patient-level split, seed {})",
        cfg.data_label(),
        test.len(),
        data.split.test.len(),
        cfg.seed
    );
    if cfg.model.is_segmenter() {
        let masks = predict_masks(&net, test, device)?;
        let mut records = Vec::with_capacity(test.len());
        let mut rows = Vec::new();
        for (i, p) in masks.into_iter().enumerate() {
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
        let probs = tumour_probabilities(&net, test, device)?;
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
