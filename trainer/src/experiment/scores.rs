//! One run's scores on the held-out patients, under the protocols the
//! results table names: per slice (tumour slices), pooled over all tumour
//! slices (how the seed-style 0.98 Dice figures are usually computed), per
//! patient (3D), by lesion size, and the false alarms on clear slices.

use crate::report::pipeline::{gate_by_filter, PipelineSlice};
use crate::report::segmentation::{summarise_segmentation, LesionSize, SliceRecord};
use crate::train::dataset::Prepared;
use models::metrics::MaskCounts;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Mean per-slice Dice / IoU over slices whose truth has tumour.
    pub slice_dice_tumour: f64,
    pub slice_iou_tumour: f64,
    /// Dice of all tumour slices' pixels pooled together.
    pub pooled_dice_tumour: f64,
    /// Mean over patients with tumour of each patient's pooled (3D) Dice / IoU.
    pub patient_dice: f64,
    pub patient_iou: f64,
    /// Mean per-slice Dice per lesion-size stratum (None: no such slices).
    pub small_dice: Option<f64>,
    pub medium_dice: Option<f64>,
    pub large_dice: Option<f64>,
    pub tumour_slices: usize,
    /// Tumour slices left with an empty mask.
    pub missed_tumour_slices: usize,
    pub clear_slices: usize,
    /// Clear slices given a mask.
    pub false_alarm_slices: usize,
}

impl Scores {
    /// `masks[i]` is the segmenter's mask for `test` slice i; with `flags`,
    /// slices the filter did not flag count as predicted empty.
    pub fn of(test: &Prepared, masks: &[Vec<bool>], flags: Option<&[bool]>) -> Self {
        let records: Vec<SliceRecord> = masks
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let t: Vec<bool> = test.mask(i).iter().map(|&m| m != 0).collect();
                SliceRecord {
                    patient: test.patients[i].clone(),
                    counts: MaskCounts::from_masks(p, &t),
                    true_area_px: test.true_area[i],
                }
            })
            .collect();
        let records = match flags {
            Some(f) => gate_by_filter(
                &records
                    .into_iter()
                    .zip(f)
                    .map(|(slice, &flagged)| PipelineSlice { slice, flagged })
                    .collect::<Vec<_>>(),
            ),
            None => records,
        };
        let summary = summarise_segmentation(&records);
        let mut pooled = MaskCounts::default();
        for r in records.iter().filter(|r| !r.counts.truth_empty()) {
            pooled.merge(&r.counts);
        }
        let stratum = |size: LesionSize| {
            summary
                .by_lesion_size
                .iter()
                .find(|s| s.size == size && s.slices > 0)
                .map(|s| s.mean_dice)
        };
        let tumour = records.iter().filter(|r| !r.counts.truth_empty());
        let clear = records.iter().filter(|r| r.counts.truth_empty());
        Scores {
            slice_dice_tumour: summary.per_slice.mean_dice_tumour,
            slice_iou_tumour: summary.per_slice.mean_iou_tumour,
            pooled_dice_tumour: pooled.dice(),
            patient_dice: summary.per_patient.mean_dice_tumour,
            patient_iou: summary.per_patient.mean_iou_tumour,
            small_dice: stratum(LesionSize::Small),
            medium_dice: stratum(LesionSize::Medium),
            large_dice: stratum(LesionSize::Large),
            tumour_slices: tumour.clone().count(),
            missed_tumour_slices: tumour.filter(|r| r.counts.pred_empty()).count(),
            clear_slices: clear.clone().count(),
            false_alarm_slices: clear.filter(|r| !r.counts.pred_empty()).count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three 2x2 slices: patient a has a tumour slice and a clear one,
    /// patient b a tumour slice.
    fn test_set() -> Prepared {
        Prepared {
            size: 2,
            images: vec![0.0; 3 * 3 * 4],
            masks: vec![1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0],
            patients: vec!["a".into(), "a".into(), "b".into()],
            labels: vec![true, false, true],
            true_area: vec![2, 0, 1],
            sources: vec![0; 3],
        }
    }

    #[test]
    fn scores_follow_the_hand_computed_values() {
        let masks = vec![
            vec![true, false, false, false], // Dice 2*1/(1+2) = 2/3
            vec![false, false, true, false], // false alarm
            vec![true, false, false, false], // Dice 1
        ];
        let s = Scores::of(&test_set(), &masks, None);
        assert!((s.slice_dice_tumour - (2.0 / 3.0 + 1.0) / 2.0).abs() < 1e-9);
        // Pooled over tumour slices: TP 2, FN 1, FP 0 -> 4/5.
        assert!((s.pooled_dice_tumour - 0.8).abs() < 1e-9);
        // Patient a pooled: TP 1, FN 1, FP 1 -> 2/4; b: 1.
        assert!((s.patient_dice - 0.75).abs() < 1e-9);
        assert_eq!((s.tumour_slices, s.missed_tumour_slices), (2, 0));
        assert_eq!((s.clear_slices, s.false_alarm_slices), (1, 1));
        assert!(s.small_dice.is_some());
    }

    #[test]
    fn the_filter_gate_empties_unflagged_slices() {
        let masks = vec![
            vec![true, true, false, false],
            vec![false, false, true, false],
            vec![true, false, false, false],
        ];
        let s = Scores::of(&test_set(), &masks, Some(&[true, false, false]));
        assert_eq!(s.false_alarm_slices, 0, "the clear slice was not flagged");
        assert_eq!(s.missed_tumour_slices, 1, "slice 3 was not flagged");
        assert!((s.slice_dice_tumour - 0.5).abs() < 1e-9);
    }
}
