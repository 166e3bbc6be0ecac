//! `report.md`: every table says what a number was averaged over.

use super::classification::ClassificationMetrics;
use super::pipeline::PipelineSummary;
use super::segmentation::SegmentationSummary;
use crate::{Error, Result};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// The report's file name inside its folder.
pub const REPORT_FILE: &str = "report.md";

/// PNGs to link; a missing one is left out of the report.
#[derive(Debug, Clone, Default)]
pub struct ReportImages {
    pub training_curves: Option<PathBuf>,
    pub roc: Option<PathBuf>,
    pub confusion_matrix: Option<PathBuf>,
    pub montage: Option<PathBuf>,
}

/// What went into the evaluation; sections without input are left out.
#[derive(Debug, Clone, Copy)]
pub struct ReportInputs<'a> {
    /// Names the data evaluated, e.g. "test split of data/phantoms, seed 0".
    pub dataset: &'a str,
    pub classification: Option<&'a ClassificationMetrics>,
    /// The segmenter run on every slice.
    pub segmentation: Option<&'a SegmentationSummary>,
    /// The segmenter run on the slices the filter flags.
    pub pipeline: Option<&'a PipelineSummary>,
    pub images: &'a ReportImages,
}

/// Writes `dir/report.md` and returns its path; image links are relative to `dir`.
pub fn write_report(inputs: &ReportInputs, dir: &Path) -> Result<PathBuf> {
    let path = dir.join(REPORT_FILE);
    std::fs::write(&path, render_report(inputs, dir)).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

/// The report text, image links relative to `report_dir` where they lie under it.
pub fn render_report(inputs: &ReportInputs, report_dir: &Path) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Evaluation report\n\nData: {}.\n", inputs.dataset);
    let link = |title: &str, p: &Option<PathBuf>| {
        p.as_ref().map(|p| {
            let shown = p.strip_prefix(report_dir).unwrap_or(p);
            format!("![{title}]({})\n\n", shown.display())
        })
    };
    if let Some(c) = inputs.classification {
        classification_section(&mut md, c);
        md.extend(link("ROC curve", &inputs.images.roc));
        md.extend(link("confusion matrix", &inputs.images.confusion_matrix));
    }
    if let Some(s) = inputs.segmentation {
        md.push_str("## Segmenter alone\n\nThe segmenter's mask on every slice, whatever the filter says.\n\n");
        segmentation_tables(&mut md, s);
    }
    if let Some(p) = inputs.pipeline {
        pipeline_section(&mut md, p, inputs.classification.map(|c| c.threshold));
    }
    if let Some(l) = link("training curves", &inputs.images.training_curves) {
        md.push_str("## Training\n\nLoss per epoch (train and validation) and validation Dice; the circle marks the best validation Dice.\n\n");
        md.push_str(&l);
    }
    if let Some(l) = link("example slices", &inputs.images.montage) {
        md.push_str("## Examples\n\nPer row one slice: the image, the true mask in green, the predicted mask in red.\n\n");
        md.push_str(&l);
    }
    md
}

fn classification_section(md: &mut String, c: &ClassificationMetrics) {
    let k = c.counts;
    let t = c.threshold;
    let _ = write!(
        md,
        "## Filter (per slice)\n\n\
         Each slice counts once: a tumour slice has at least one true mask pixel. \
         The filter calls tumour when its probability is >= {t}. \
         {n} slices: {tumour} tumour, {clear} clear.\n\n\
         | metric | value | computed as |\n|---|---|---|\n\
         | accuracy | {acc} | (TP + TN) / all slices, at threshold {t} |\n\
         | precision | {prec} | TP / (TP + FP), at threshold {t} |\n\
         | sensitivity (recall) | {rec} | TP / (TP + FN), at threshold {t} |\n\
         | specificity | {spec} | TN / (TN + FP), at threshold {t} |\n\
         | F1 | {f1} | 2 TP / (2 TP + FP + FN), at threshold {t} |\n\
         | ROC AUC | {auc} | area under the ROC over all thresholds (trapezoids, ties count half) |\n\n\
         Confusion matrix (slices, threshold {t}):\n\n\
         | | called tumour | called clear |\n|---|---|---|\n\
         | truth: tumour | TP {tp} | FN {fn_} |\n\
         | truth: clear | FP {fp} | TN {tn} |\n\n",
        n = c.slices,
        tumour = c.tumour_slices,
        clear = c.clear_slices,
        acc = num(c.accuracy),
        prec = opt(c.precision, "no slice called tumour"),
        rec = opt(c.recall, "no tumour slices"),
        spec = opt(c.specificity, "no clear slices"),
        f1 = opt(c.f1, "no tumour slices and none called"),
        auc = opt(c.roc_auc, "needs tumour and clear slices"),
        tp = k.tp,
        fp = k.fp,
        fn_ = k.fn_,
        tn = k.tn,
    );
}

fn pipeline_section(md: &mut String, p: &PipelineSummary, threshold: Option<f32>) {
    let at = threshold.map_or(String::new(), |t| format!(" (probability >= {t})"));
    let _ = write!(
        md,
        "## Two-stage pipeline, as the appliance shows it\n\n\
         The segmenter runs only on slices the filter flags{at}; an unflagged slice gets an \
         empty mask, so a tumour slice the filter misses scores Dice 0.\n\n\
         | slices | flagged | tumour slices not flagged | clear slices flagged |\n|---|---|---|---|\n\
         | {} | {} | {} | {} |\n\n",
        p.slices, p.flagged_slices, p.tumour_slices_not_flagged, p.clear_slices_flagged
    );
    segmentation_tables(md, &p.segmentation);
}

fn segmentation_tables(md: &mut String, s: &SegmentationSummary) {
    let sl = &s.per_slice;
    let pp = &s.per_patient;
    let _ = write!(
        md,
        "Dice = 2TP / (2TP + FP + FN), IoU = TP / (TP + FP + FN) over mask pixels. \
         A slice (or patient) with neither true nor predicted tumour scores 1; \
         it is counted in the \"all\" rows and listed apart.\n\n\
         | scope | averaged over | count | mean Dice | mean IoU |\n|---|---|---|---|---|\n\
         | per slice | tumour slices only | {} | {} | {} |\n\
         | per slice | all slices | {} | {} | {} |\n\
         | per patient (3D: pixels pooled per patient) | patients with tumour | {} | {} | {} |\n\
         | per patient (3D: pixels pooled per patient) | all patients | {} | {} | {} |\n\n\
         Slices with neither true nor predicted tumour: {}; clear slices with a predicted mask \
         (false alarms): {}. Patients without tumour and without prediction: {}; with a \
         predicted mask: {}.\n\n\
         By true lesion area (tumour slices only, mean of per-slice scores):\n\n\
         | lesion size | tumour slices | mean Dice | mean IoU |\n|---|---|---|---|\n",
        sl.tumour_slices,
        num(sl.mean_dice_tumour),
        num(sl.mean_iou_tumour),
        sl.total_slices,
        num(sl.mean_dice_all),
        num(sl.mean_iou_all),
        pp.tumour_patients,
        num(pp.mean_dice_tumour),
        num(pp.mean_iou_tumour),
        pp.patients,
        num(pp.mean_dice_all),
        num(pp.mean_iou_all),
        sl.both_empty_slices,
        sl.false_alarm_slices,
        pp.both_empty_patients,
        pp.false_alarm_patients,
    );
    for st in &s.by_lesion_size {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            st.size.label(),
            st.slices,
            num(st.mean_dice),
            num(st.mean_iou)
        );
    }
    md.push_str(
        "\nPer patient (pixels pooled over the patient's slices):\n\n\
         | patient | slices | TP | FP | FN | Dice | IoU |\n|---|---|---|---|---|---|---|\n",
    );
    for p in &s.patients {
        let c = p.counts;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            p.patient,
            p.slices,
            c.tp,
            c.fp,
            c.fn_,
            num(p.dice),
            num(p.iou)
        );
    }
    md.push('\n');
}

// NaN is the shared metrics' "nothing to average", not a score.
fn num(v: f64) -> String {
    if v.is_nan() {
        "n/a (none)".into()
    } else {
        format!("{v:.4}")
    }
}

fn opt(v: Option<f64>, why: &str) -> String {
    v.map_or_else(|| format!("undefined ({why})"), num)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::classification::classification_metrics;
    use crate::report::pipeline::{summarise_pipeline, PipelineSlice};
    use crate::report::segmentation::summarise_segmentation;
    use crate::report::segmentation::tests::cohort;

    fn images(dir: &Path) -> ReportImages {
        ReportImages {
            training_curves: Some(dir.join("curves.png")),
            roc: Some(dir.join("roc.png")),
            confusion_matrix: Some(dir.join("confusion.png")),
            montage: Some(PathBuf::from("/elsewhere/montage.png")),
        }
    }

    #[test]
    fn report_holds_the_numbers_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let p = [0.9, 0.8, 0.6, 0.4, 0.3, 0.2, 0.1];
        let t = [true, true, false, true, false, false, false];
        let c = classification_metrics(&p, &t, 0.5).unwrap();
        let s = summarise_segmentation(&cohort());
        let flags = [true, false, false, true, true];
        let pipeline = summarise_pipeline(
            &cohort()
                .into_iter()
                .zip(flags)
                .map(|(slice, flagged)| PipelineSlice { slice, flagged })
                .collect::<Vec<_>>(),
        );
        let imgs = images(dir.path());
        let inputs = ReportInputs {
            dataset: "unit cohort",
            classification: Some(&c),
            segmentation: Some(&s),
            pipeline: Some(&pipeline),
            images: &imgs,
        };
        let path = write_report(&inputs, dir.path()).unwrap();
        assert_eq!(path, dir.path().join("report.md"));
        let md = std::fs::read_to_string(&path).unwrap();

        for expected in [
            "Data: unit cohort.",
            "7 slices: 3 tumour, 4 clear",
            "| accuracy | 0.7143 | (TP + TN) / all slices, at threshold 0.5 |",
            "| precision | 0.6667 |",
            "| sensitivity (recall) | 0.6667 |",
            "| specificity | 0.7500 |",
            "| ROC AUC | 0.9167 |",
            "| truth: tumour | TP 2 | FN 1 |",
            "| truth: clear | FP 1 | TN 3 |",
            // Segmenter alone: tumour-only (2/3 + 1 + 0) / 3, all (2/3+1+1+0+0) / 5.
            "| per slice | tumour slices only | 3 | 0.5556 | 0.5000 |",
            "| per slice | all slices | 5 | 0.5333 | 0.5000 |",
            // Patients A 2/3 and B 400/2410 -> 0.4163; IoU (1/2 + 200/2210) / 2.
            "| per patient (3D: pixels pooled per patient) | patients with tumour | 2 | 0.4163 | 0.2952 |",
            "| small (1-99 px) | 1 | 0.6667 | 0.5000 |",
            "| medium (100-999 px) | 1 | 1.0000 | 1.0000 |",
            "| large (>= 1000 px) | 1 | 0.0000 | 0.0000 |",
            "| B | 3 | 200 | 10 | 2000 | 0.1660 | 0.0905 |",
            // Pipeline: the filter missed B1, so medium drops to 0.
            "| 5 | 3 | 1 | 1 |",
            "| medium (100-999 px) | 1 | 0.0000 | 0.0000 |",
            "| B | 3 | 0 | 10 | 2200 | 0.0000 | 0.0000 |",
            "(probability >= 0.5)",
            "![ROC curve](roc.png)",
            "![confusion matrix](confusion.png)",
            "![training curves](curves.png)",
            "![example slices](/elsewhere/montage.png)",
        ] {
            assert!(md.contains(expected), "missing {expected:?} in\n{md}");
        }
    }

    #[test]
    fn undefined_and_missing_parts_say_so() {
        let c = classification_metrics(&[0.1, 0.2], &[false, false], 0.5).unwrap();
        let s = summarise_segmentation(&[]);
        let imgs = ReportImages::default();
        let md = render_report(
            &ReportInputs {
                dataset: "clear only",
                classification: Some(&c),
                segmentation: Some(&s),
                pipeline: None,
                images: &imgs,
            },
            Path::new("out"),
        );
        assert!(md.contains("| precision | undefined (no slice called tumour) |"));
        assert!(md.contains("| ROC AUC | undefined (needs tumour and clear slices) |"));
        assert!(md.contains("| per slice | all slices | 0 | n/a (none) | n/a (none) |"));
        assert!(!md.contains("## Two-stage") && !md.contains("!["));
    }
}
