//! `docs/RESULTS.md`: the experiment's table (mean ± sample standard
//! deviation over seeds), the chart, the per-run lines, and how our
//! protocol relates to the seed paper's headline numbers.

use super::scores::Scores;
use super::CellResult;
use std::fmt::Write;

/// The runs of one architecture and loss over its seeds.
#[derive(Debug, Clone)]
pub struct Aggregate {
    pub arch: String,
    pub loss: String,
    pub runs: Vec<CellResult>,
}

impl Aggregate {
    fn values(&self, pick: fn(&Scores) -> Option<f64>) -> Vec<f64> {
        self.runs
            .iter()
            .filter_map(|r| pick(&r.filter_off))
            .filter(|v| v.is_finite())
            .collect()
    }

    /// Mean and sample standard deviation (0 for one run) of a score with
    /// the filter off; None when no run has it.
    pub fn stat(&self, pick: fn(&Scores) -> Option<f64>) -> Option<(f64, f64)> {
        mean_sd(&self.values(pick))
    }

    pub fn range(&self, pick: fn(&Scores) -> Option<f64>) -> Option<(f64, f64)> {
        let v = self.values(pick);
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (!v.is_empty()).then_some((lo, hi))
    }

    /// As `stat`, for the filter-gated scores.
    pub fn stat_filtered(&self, pick: fn(&Scores) -> Option<f64>) -> Option<(f64, f64)> {
        let v: Vec<f64> = self
            .runs
            .iter()
            .filter_map(|r| r.filter_on.as_ref().and_then(pick))
            .collect();
        mean_sd(&v)
    }
}

pub fn mean_sd(v: &[f64]) -> Option<(f64, f64)> {
    if v.is_empty() {
        return None;
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let sd = if v.len() > 1 {
        (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    Some((mean, sd))
}

/// Groups results by (architecture, loss) in the order they first appear.
pub fn aggregate(results: &[CellResult]) -> Vec<Aggregate> {
    let mut out: Vec<Aggregate> = Vec::new();
    for r in results {
        match out
            .iter_mut()
            .find(|a| a.arch == r.cell.arch && a.loss == r.cell.loss)
        {
            Some(a) => a.runs.push(r.clone()),
            None => out.push(Aggregate {
                arch: r.cell.arch.clone(),
                loss: r.cell.loss.clone(),
                runs: vec![r.clone()],
            }),
        }
    }
    out
}

/// What the document says about how the numbers were made.
#[derive(Debug, Clone)]
pub struct Provenance {
    /// The command line that produced the document.
    pub command: String,
    pub date: String,
    pub machine: String,
    /// E.g. "reduced CPU configuration: 64 px, 12 epochs".
    pub configuration: String,
    pub data: String,
    /// The filter run gating "filter on", or why there is none.
    pub filter: String,
    /// The chart's path relative to the document.
    pub chart: String,
    /// The data are phantoms (synthetic lesions), not patients.
    pub phantoms: bool,
}

fn cell(s: Option<(f64, f64)>) -> String {
    s.map_or("-".into(), |(m, sd)| format!("{m:.3} ± {sd:.3}"))
}

pub fn render(p: &Provenance, rows: &[Aggregate]) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Results: the seed's experiment on {}\n",
        if p.phantoms {
            "phantoms"
        } else {
            "real patients"
        }
    );
    let _ = writeln!(
        md,
        "Produced by `{}` on {} ({}). {}\n",
        p.command, p.date, p.machine, p.configuration
    );
    let _ = writeln!(md, "Data: {}\n", p.data);
    let _ = writeln!(
        md,
        "Every run trains on the same training patients (segmenters on their tumour slices, \
         early stopping on the validation patients) and is scored on the same held-out test \
         patients. Cells are mean ± sample standard deviation over seeds (seeds change the \
         initialisation and the augmentation, not the split).\n"
    );
    let _ = writeln!(md, "## Segmentation, filter off\n");
    let _ = writeln!(
        md,
        "| architecture | loss | seeds | Dice per slice (tumour slices) | IoU per slice | \
         Dice pooled (tumour slices) | Dice per patient (3D) | IoU per patient | \
         Dice small | Dice medium | Dice large | false alarms / clear slices |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for a in rows {
        let fa = mean_sd(
            &a.runs
                .iter()
                .map(|r| r.filter_off.false_alarm_slices as f64)
                .collect::<Vec<_>>(),
        );
        let clear = a.runs.first().map_or(0, |r| r.filter_off.clear_slices);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} |",
            a.arch,
            a.loss,
            a.runs.len(),
            cell(a.stat(|s| Some(s.slice_dice_tumour))),
            cell(a.stat(|s| Some(s.slice_iou_tumour))),
            cell(a.stat(|s| Some(s.pooled_dice_tumour))),
            cell(a.stat(|s| Some(s.patient_dice))),
            cell(a.stat(|s| Some(s.patient_iou))),
            cell(a.stat(|s| s.small_dice)),
            cell(a.stat(|s| s.medium_dice)),
            cell(a.stat(|s| s.large_dice)),
            fa.map_or("-".into(), |(m, _)| format!("{m:.1}")),
            clear
        );
    }
    let _ = writeln!(md, "\n![Dice by loss and architecture]({})\n", p.chart);
    let _ = writeln!(md, "## Filter on vs off\n");
    let _ = writeln!(md, "Filter: {}\n", p.filter);
    if rows
        .iter()
        .any(|a| a.runs.iter().any(|r| r.filter_on.is_some()))
    {
        let _ = writeln!(
            md,
            "With the filter on, a slice it does not flag is never segmented: a missed tumour \
             slice scores 0 and a clear slice cannot raise a false alarm.\n"
        );
        let _ = writeln!(
            md,
            "| architecture | loss | Dice per slice, off | on | Dice per patient, off | on | \
             missed tumour slices, off | on | false alarms, off | on |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
        let count = |a: &Aggregate, on: bool, f: fn(&Scores) -> usize| {
            let v: Vec<f64> = a
                .runs
                .iter()
                .filter_map(|r| {
                    if on {
                        r.filter_on.as_ref()
                    } else {
                        Some(&r.filter_off)
                    }
                })
                .map(|s| f(s) as f64)
                .collect();
            mean_sd(&v).map_or("-".into(), |(m, _)| format!("{m:.1}"))
        };
        for a in rows {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                a.arch,
                a.loss,
                cell(a.stat(|s| Some(s.slice_dice_tumour))),
                cell(a.stat_filtered(|s| Some(s.slice_dice_tumour))),
                cell(a.stat(|s| Some(s.patient_dice))),
                cell(a.stat_filtered(|s| Some(s.patient_dice))),
                count(a, false, |s| s.missed_tumour_slices),
                count(a, true, |s| s.missed_tumour_slices),
                count(a, false, |s| s.false_alarm_slices),
                count(a, true, |s| s.false_alarm_slices),
            );
        }
        md.push('\n');
    }
    let _ = writeln!(md, "## Beside the seed's Dice 0.98 / IoU 0.95\n");
    let _ = writeln!(
        md,
        "Figures like the seed's are usually computed on the Kaggle LGG set with a \
         *slice-level* random split (slices of one patient land in both training and test, so \
         neighbouring, nearly identical slices are seen in training), on *tumour slices only*, \
         and *pooled over a batch* (one Dice over all pixels of many slices, which large lesions \
         dominate). Our protocol splits by patient, and reports per-slice means (every lesion \
         counts once, small ones included), the pooled figure for comparison, per-patient 3D \
         scores, and the false alarms on clear slices that a tumour-slices-only score never \
         sees. {}\n",
        if p.phantoms {
            "The data here are phantoms (synthetic lesions on real anatomy, see docs/TRAINING.md), \
             not patients: the numbers compare methods under one protocol; they say nothing about \
             clinical accuracy."
        } else {
            "The data here are real patients' scans; the numbers compare methods under one \
             protocol on the held-out patients named above, at the reduced size stated, and \
             are not a clinical accuracy."
        }
    );
    let _ = writeln!(md, "## Every run\n");
    let _ = writeln!(
        md,
        "| run | epochs (best) | training s | Dice per slice | Dice pooled | Dice per patient | small |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    for a in rows {
        for r in &a.runs {
            let s = &r.filter_off;
            let _ = writeln!(
                md,
                "| {} | {} ({}) | {:.0} | {:.3} | {:.3} | {:.3} | {} |",
                r.cell.dir_name(),
                r.epochs_run,
                r.best_epoch,
                r.train_seconds,
                s.slice_dice_tumour,
                s.pooled_dice_tumour,
                s.patient_dice,
                s.small_dice.map_or("-".into(), |v| format!("{v:.3}"))
            );
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::Cell;

    fn result(arch: &str, loss: &str, seed: u64, dice: f64) -> CellResult {
        let s = Scores {
            slice_dice_tumour: dice,
            slice_iou_tumour: dice / 2.0,
            pooled_dice_tumour: dice,
            patient_dice: dice,
            patient_iou: dice / 2.0,
            small_dice: None,
            medium_dice: Some(dice),
            large_dice: Some(dice),
            tumour_slices: 10,
            missed_tumour_slices: 1,
            clear_slices: 20,
            false_alarm_slices: 3,
        };
        CellResult {
            cell: Cell {
                arch: arch.into(),
                loss: loss.into(),
                seed,
            },
            epochs_run: 5,
            best_epoch: 4,
            train_seconds: 10.0,
            filter_off: s.clone(),
            filter_on: None,
            gate: None,
        }
    }

    #[test]
    fn mean_and_sample_sd() {
        let (m, sd) = mean_sd(&[0.5, 0.7, 0.9]).unwrap();
        assert!((m - 0.7).abs() < 1e-12);
        assert!((sd - 0.2).abs() < 1e-12);
        assert_eq!(mean_sd(&[0.4]), Some((0.4, 0.0)));
        assert_eq!(mean_sd(&[]), None);
    }

    #[test]
    fn groups_by_architecture_and_loss_and_renders_the_table() {
        let rows = aggregate(&[
            result("resunet", "tversky", 0, 0.5),
            result("unet", "tversky", 0, 0.3),
            result("resunet", "tversky", 1, 0.7),
        ]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].runs.len(), 2);
        assert_eq!(
            rows[0].range(|s| Some(s.slice_dice_tumour)),
            Some((0.5, 0.7))
        );
        let mut provenance = Provenance {
            command: "neuroscreen-train experiment".into(),
            date: "2026-11-27".into(),
            machine: "test".into(),
            configuration: "tiny".into(),
            data: "phantoms".into(),
            filter: "none".into(),
            chart: "results.png".into(),
            phantoms: true,
        };
        let md = render(&provenance, &rows);
        assert!(md.starts_with("# Results: the seed's experiment on phantoms"));
        assert!(md.contains("The data here are phantoms"));
        provenance.phantoms = false;
        let real = render(&provenance, &rows);
        assert!(real.starts_with("# Results: the seed's experiment on real patients"));
        assert!(!real.contains("phantoms (synthetic"), "{real}");
        assert!(
            md.contains("| resunet | tversky | 2 | 0.600 ± 0.141 |"),
            "{md}"
        );
        assert!(
            md.contains("| unet | tversky | 1 | 0.300 ± 0.000 |"),
            "{md}"
        );
        assert!(!md.contains("## Filter on vs off\n\nFilter: none\n\n| architecture"));
    }
}
