//! Where an `eval-set` run goes wrong, from its `slices.csv`: why each
//! missed tumour slice was missed (the filter stopped it though the
//! segmenter outlined it, the filter stopped it and there was no outline
//! either, or the filter passed it and no outline stood), which patients the
//! misses come from, and how the outlines err on tumour slices (too small:
//! low recall; too large or misplaced: low precision). What to change next
//! follows from it: a filter threshold cannot bring back a slice the
//! segmenter leaves empty.

use super::compare::SliceRow;
use std::collections::BTreeMap;

/// The missed tumour slices of one cohort and precision, by cause.
#[derive(Debug, Clone, PartialEq)]
pub struct MissCounts {
    pub cohort: String,
    pub precision: String,
    pub tumour_slices: usize,
    pub missed: usize,
    /// The filter stopped it; the segmenter's mask (after the minimum)
    /// would have stood.
    pub stopped_with_mask: usize,
    /// The filter stopped it, and no mask stood either.
    pub stopped_without_mask: usize,
    /// The filter passed it; no mask of the minimum size stood.
    pub passed_without_mask: usize,
    /// How the outlines err on the tumour slices with a true mask at the
    /// model's size: mean share of truth pixels inside the mask, mean share
    /// of mask pixels inside the truth (slices with a mask), and the median
    /// of mask area over true area.
    pub recall: Option<f64>,
    pub precision_px: Option<f64>,
    pub median_mask_over_truth: Option<f64>,
    /// Of those slices, the ones whose outline scores Dice under
    /// [`POOR_DICE`] (mostly drawn in the wrong place), how many of them
    /// share no pixel with the truth, and the mean Dice of the others:
    /// whether a cohort's Dice is held down by a few wrong outlines or by
    /// every edge.
    pub poor: usize,
    pub poor_without_overlap: usize,
    pub dice_of_the_rest: Option<f64>,
}

/// Below this Dice an outline is counted as wrong rather than rough.
pub const POOR_DICE: f64 = 0.2;

/// One patient's missed tumour slices.
#[derive(Debug, Clone, PartialEq)]
pub struct PatientMisses {
    pub cohort: String,
    pub precision: String,
    pub patient: String,
    pub tumour_slices: usize,
    pub missed: usize,
}

pub struct Misses {
    pub cohorts: Vec<MissCounts>,
    /// Patients with at least one missed slice, most missed first.
    pub patients: Vec<PatientMisses>,
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn median(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| crate::export::bench::median(v))
}

pub fn misses(rows: &[SliceRow]) -> Misses {
    let mut groups: BTreeMap<(&str, &str), Vec<&SliceRow>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.tumour) {
        groups
            .entry((r.cohort.as_str(), r.precision.as_str()))
            .or_default()
            .push(r);
    }
    let mut cohorts = Vec::new();
    let mut patients = Vec::new();
    for ((cohort, precision), slices) in groups {
        let missed: Vec<&&SliceRow> = slices.iter().filter(|r| !r.flagged()).collect();
        let outlined: Vec<&&SliceRow> = slices.iter().filter(|r| r.truth_px > 0).collect();
        let recall: Vec<f64> = outlined
            .iter()
            .map(|r| r.overlap_px as f64 / r.truth_px as f64)
            .collect();
        let precision_px: Vec<f64> = outlined
            .iter()
            .filter(|r| r.mask_area_px > 0)
            .map(|r| r.overlap_px as f64 / r.mask_area_px as f64)
            .collect();
        let ratio: Vec<f64> = outlined
            .iter()
            .map(|r| r.mask_area_px as f64 / r.truth_px as f64)
            .collect();
        let (poor, rest): (Vec<&&SliceRow>, Vec<&&SliceRow>) =
            outlined.iter().partition(|r| r.counts().dice() < POOR_DICE);
        let rest: Vec<f64> = rest.iter().map(|r| r.counts().dice()).collect();
        cohorts.push(MissCounts {
            cohort: cohort.to_string(),
            precision: precision.to_string(),
            tumour_slices: slices.len(),
            missed: missed.len(),
            stopped_with_mask: missed
                .iter()
                .filter(|r| !r.passed && r.mask_area_px > 0)
                .count(),
            stopped_without_mask: missed
                .iter()
                .filter(|r| !r.passed && r.mask_area_px == 0)
                .count(),
            passed_without_mask: missed.iter().filter(|r| r.passed).count(),
            recall: mean(&recall),
            precision_px: mean(&precision_px),
            median_mask_over_truth: median(&ratio),
            poor: poor.len(),
            poor_without_overlap: poor.iter().filter(|r| r.overlap_px == 0).count(),
            dice_of_the_rest: mean(&rest),
        });
        let mut by_patient: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for r in &slices {
            let e = by_patient.entry(r.patient.as_str()).or_default();
            e.0 += 1;
            e.1 += usize::from(!r.flagged());
        }
        patients.extend(by_patient.into_iter().filter(|(_, (_, m))| *m > 0).map(
            |(patient, (n, m))| PatientMisses {
                cohort: cohort.to_string(),
                precision: precision.to_string(),
                patient: patient.to_string(),
                tumour_slices: n,
                missed: m,
            },
        ));
    }
    // Most missed first; ties keep cohort and patient order (stable sort).
    patients.sort_by_key(|p| std::cmp::Reverse(p.missed));
    Misses { cohorts, patients }
}

pub fn render_markdown(m: &Misses) -> String {
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    let mut md = String::from(
        "Missed tumour slices (the appliance flags a slice when the filter passes it and a mask \
         of the set's minimum stands), by cause; then how the segmenter's outlines err on the \
         tumour slices (segmenter on every slice; model resolution).\n\n\
         | cohort | precision | tumour slices | missed | filter stopped, mask stood | filter stopped, \
         no mask | filter passed, no mask | recall (truth inside mask) | precision (mask inside truth) \
         | mask / truth, median | outlines under Dice 0.2 (no overlap) | Dice of the rest |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for c in &m.cohorts {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} ({}) | {} |\n",
            c.cohort,
            c.precision,
            c.tumour_slices,
            c.missed,
            c.stopped_with_mask,
            c.stopped_without_mask,
            c.passed_without_mask,
            f(c.recall),
            f(c.precision_px),
            c.median_mask_over_truth
                .map_or("-".to_string(), |v| format!("{v:.2}")),
            c.poor,
            c.poor_without_overlap,
            f(c.dice_of_the_rest),
        ));
    }
    md.push_str(
        "\nPatients with missed tumour slices, most first:\n\n\
         | cohort | precision | patient | missed | of tumour slices |\n|---|---|---|---|---|\n",
    );
    for p in &m.patients {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            p.cohort, p.precision, p.patient, p.missed, p.tumour_slices
        ));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        patient: &str,
        tumour: bool,
        passed: bool,
        mask: u64,
        truth: u64,
        overlap: u64,
    ) -> SliceRow {
        SliceRow {
            cohort: "lgg".into(),
            precision: "f32".into(),
            patient: patient.into(),
            tumour,
            true_area_px: truth * 4,
            p_tumour: Some(if passed { 0.9 } else { 0.1 }),
            passed,
            mask_area_px: mask,
            truth_px: truth,
            overlap_px: overlap,
        }
    }

    #[test]
    fn each_miss_gets_its_cause_and_patients_are_ranked_by_misses() {
        let rows = vec![
            // Found.
            row("a", true, true, 100, 80, 60),
            // Filter stopped it; the segmenter had it.
            row("a", true, false, 50, 40, 30),
            // Filter stopped it; no mask either.
            row("b", true, false, 0, 30, 0),
            // Filter passed it; no mask stood.
            row("b", true, true, 0, 20, 0),
            row("b", true, true, 0, 10, 0),
            // A clear slice, flagged or not, is no miss.
            row("c", false, true, 40, 0, 0),
        ];
        let m = misses(&rows);
        assert_eq!(m.cohorts.len(), 1);
        let c = &m.cohorts[0];
        assert_eq!(
            (
                c.tumour_slices,
                c.missed,
                c.stopped_with_mask,
                c.stopped_without_mask,
                c.passed_without_mask
            ),
            (5, 4, 1, 1, 2)
        );
        // Recall over the five: 60/80, 30/40, 0, 0, 0.
        assert!((c.recall.unwrap() - 1.5 / 5.0).abs() < 1e-12);
        // Precision over the two with a mask: 60/100, 30/50.
        assert!((c.precision_px.unwrap() - 0.6).abs() < 1e-12);
        // Mask / truth: 1.25, 1.25, 0, 0, 0 -> median 0.
        assert_eq!(c.median_mask_over_truth, Some(0.0));
        // Dice 120/180 and 60/90; the three without a mask score 0.
        assert_eq!((c.poor, c.poor_without_overlap), (3, 3));
        assert!((c.dice_of_the_rest.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            m.patients
                .iter()
                .map(|p| (p.patient.as_str(), p.missed, p.tumour_slices))
                .collect::<Vec<_>>(),
            [("b", 3, 3), ("a", 1, 2)]
        );
        let md = render_markdown(&m);
        assert!(
            md.contains("| lgg | f32 | 5 | 4 | 1 | 1 | 2 | 0.300 | 0.600 | 0.00 | 3 (3) | 0.667 |"),
            "{md}"
        );
        assert!(md.contains("| lgg | f32 | b | 3 | 3 |"), "{md}");
    }

    #[test]
    fn a_cohort_without_misses_or_outlines_says_so() {
        let rows = vec![row("a", true, true, 10, 0, 0)];
        let m = misses(&rows);
        let c = &m.cohorts[0];
        assert_eq!(
            (c.missed, c.recall, c.median_mask_over_truth),
            (0, None, None)
        );
        assert!(m.patients.is_empty());
        assert!(render_markdown(&m)
            .contains("| lgg | f32 | 1 | 0 | 0 | 0 | 0 | - | - | - | 0 (0) | - |"));
        assert!(misses(&[row("x", false, true, 5, 0, 0)]).cohorts.is_empty());
    }

    #[test]
    fn a_wrong_outline_is_told_from_a_rough_one() {
        let rows = vec![
            // Found, but elsewhere: 2*5/200 = 0.05, five pixels shared.
            row("a", true, true, 100, 100, 5),
            // Found and in place, edges rough: 2*30/80 = 0.75.
            row("a", true, true, 40, 40, 30),
            // Just over the line: 2*10/90 = 0.222.
            row("a", true, true, 50, 40, 10),
        ];
        let c = &misses(&rows).cohorts[0];
        assert_eq!((c.poor, c.poor_without_overlap), (1, 0));
        let rest = (0.75 + 20.0 / 90.0) / 2.0;
        assert!((c.dice_of_the_rest.unwrap() - rest).abs() < 1e-12);
    }
}
