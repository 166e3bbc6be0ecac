//! Mask metrics, one definition for trainer reports and appliance checks.
//!
//! Conventions (write them next to any number they produce):
//! - Counts are over pixels; a pixel is positive when the mask value is set.
//! - Dice = 2TP / (2TP + FP + FN); IoU = TP / (TP + FP + FN).
//! - Both masks empty (a correctly clear slice): Dice = IoU = 1, and
//!   [`MaskCounts::both_empty`] is true so reports can count such slices
//!   separately; averaging them in with tumour slices inflates scores.
//! - Precision = TP / (TP + FP) is undefined (`None`) when nothing was
//!   predicted; recall = TP / (TP + FN) is undefined when the truth is empty.
//! - Per-patient (3D) figures add the counts of all the patient's slices
//!   before dividing ([`MaskCounts::merge`]), they are not means of slices.

use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskCounts {
    pub tp: u64,
    pub fp: u64,
    pub fn_: u64,
    pub tn: u64,
}

impl MaskCounts {
    /// Counts agreement between a predicted and a true mask of equal length.
    pub fn from_masks(pred: &[bool], truth: &[bool]) -> Self {
        assert_eq!(pred.len(), truth.len(), "masks of different sizes");
        let mut c = Self::default();
        for (&p, &t) in pred.iter().zip(truth) {
            c.add(p, t);
        }
        c
    }

    /// Same, for 0/255 (or any zero / non-zero) byte masks as stored in files.
    pub fn from_bytes(pred: &[u8], truth: &[u8]) -> Self {
        assert_eq!(pred.len(), truth.len(), "masks of different sizes");
        let mut c = Self::default();
        for (&p, &t) in pred.iter().zip(truth) {
            c.add(p != 0, t != 0);
        }
        c
    }

    pub fn add(&mut self, pred: bool, truth: bool) {
        match (pred, truth) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, true) => self.fn_ += 1,
            (false, false) => self.tn += 1,
        }
    }

    pub fn merge(&mut self, other: &MaskCounts) {
        self.tp += other.tp;
        self.fp += other.fp;
        self.fn_ += other.fn_;
        self.tn += other.tn;
    }

    pub fn truth_empty(&self) -> bool {
        self.tp + self.fn_ == 0
    }

    pub fn pred_empty(&self) -> bool {
        self.tp + self.fp == 0
    }

    pub fn both_empty(&self) -> bool {
        self.truth_empty() && self.pred_empty()
    }

    pub fn dice(&self) -> f64 {
        let denom = 2 * self.tp + self.fp + self.fn_;
        if denom == 0 {
            1.0
        } else {
            2.0 * self.tp as f64 / denom as f64
        }
    }

    pub fn iou(&self) -> f64 {
        let denom = self.tp + self.fp + self.fn_;
        if denom == 0 {
            1.0
        } else {
            self.tp as f64 / denom as f64
        }
    }

    pub fn precision(&self) -> Option<f64> {
        (!self.pred_empty()).then(|| self.tp as f64 / (self.tp + self.fp) as f64)
    }

    pub fn recall(&self) -> Option<f64> {
        (!self.truth_empty()).then(|| self.tp as f64 / (self.tp + self.fn_) as f64)
    }
}

/// Mean per-slice Dice and IoU, split the ways reports need them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SliceSummary {
    /// Slices whose true mask is not empty.
    pub tumour_slices: usize,
    /// Slices whose true and predicted masks are both empty.
    pub both_empty_slices: usize,
    /// Slices with an empty truth but a predicted mask (false alarms).
    pub false_alarm_slices: usize,
    pub total_slices: usize,
    pub mean_dice_tumour: f64,
    pub mean_iou_tumour: f64,
    pub mean_dice_all: f64,
    pub mean_iou_all: f64,
}

impl SliceSummary {
    pub fn from_slices<'a>(slices: impl IntoIterator<Item = &'a MaskCounts>) -> Self {
        let mut s = Self::default();
        let (mut dt, mut it, mut da, mut ia) = (0.0, 0.0, 0.0, 0.0);
        for c in slices {
            s.total_slices += 1;
            da += c.dice();
            ia += c.iou();
            if c.truth_empty() {
                if c.pred_empty() {
                    s.both_empty_slices += 1;
                } else {
                    s.false_alarm_slices += 1;
                }
            } else {
                s.tumour_slices += 1;
                dt += c.dice();
                it += c.iou();
            }
        }
        let mean = |sum: f64, n: usize| if n == 0 { f64::NAN } else { sum / n as f64 };
        s.mean_dice_tumour = mean(dt, s.tumour_slices);
        s.mean_iou_tumour = mean(it, s.tumour_slices);
        s.mean_dice_all = mean(da, s.total_slices);
        s.mean_iou_all = mean(ia, s.total_slices);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pred: &[u8], truth: &[u8]) -> MaskCounts {
        MaskCounts::from_bytes(pred, truth)
    }

    #[test]
    fn hand_computed_values() {
        // pred: 1 1 1 0 0 0 ; truth: 0 1 1 1 1 0 -> TP 2, FP 1, FN 2, TN 1
        let c = counts(&[1, 1, 1, 0, 0, 0], &[0, 1, 1, 1, 1, 0]);
        assert_eq!((c.tp, c.fp, c.fn_, c.tn), (2, 1, 2, 1));
        assert!((c.dice() - 4.0 / 7.0).abs() < 1e-12);
        assert!((c.iou() - 2.0 / 5.0).abs() < 1e-12);
        assert_eq!(c.precision(), Some(2.0 / 3.0));
        assert_eq!(c.recall(), Some(0.5));
    }

    #[test]
    fn both_empty_is_perfect_but_flagged() {
        let c = counts(&[0, 0, 0], &[0, 0, 0]);
        assert!(c.both_empty());
        assert_eq!((c.dice(), c.iou()), (1.0, 1.0));
        assert_eq!((c.precision(), c.recall()), (None, None));
    }

    #[test]
    fn false_alarm_on_clear_slice_scores_zero() {
        let c = counts(&[0, 255, 0], &[0, 0, 0]);
        assert_eq!((c.dice(), c.iou()), (0.0, 0.0));
        assert_eq!(c.precision(), Some(0.0));
        assert_eq!(c.recall(), None);
    }

    #[test]
    fn missed_tumour_scores_zero() {
        let c = counts(&[0, 0, 0], &[0, 1, 1]);
        assert_eq!((c.dice(), c.iou()), (0.0, 0.0));
        assert_eq!(c.precision(), None);
        assert_eq!(c.recall(), Some(0.0));
    }

    #[test]
    fn patient_counts_pool_pixels_not_slice_scores() {
        // Slice A: perfect 1-pixel lesion; slice B: 3 pixels, none found.
        let a = counts(&[1, 0], &[1, 0]);
        let b = counts(&[0, 0, 0], &[1, 1, 1]);
        let mut p = a;
        p.merge(&b);
        assert!((p.dice() - 2.0 / 5.0).abs() < 1e-12);
        let per_slice = SliceSummary::from_slices([&a, &b]);
        assert!((per_slice.mean_dice_tumour - 0.5).abs() < 1e-12);
    }

    #[test]
    fn summary_separates_empty_slices() {
        let slices = [
            counts(&[1, 1], &[1, 0]), // tumour, dice 2/3
            counts(&[0, 0], &[0, 0]), // both empty
            counts(&[1, 0], &[0, 0]), // false alarm
        ];
        let s = SliceSummary::from_slices(&slices);
        assert_eq!(
            (
                s.tumour_slices,
                s.both_empty_slices,
                s.false_alarm_slices,
                s.total_slices
            ),
            (1, 1, 1, 3)
        );
        assert!((s.mean_dice_tumour - 2.0 / 3.0).abs() < 1e-12);
        assert!((s.mean_dice_all - (2.0 / 3.0 + 1.0 + 0.0) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn summary_of_nothing_is_nan_not_a_score() {
        let s = SliceSummary::from_slices(&[]);
        assert!(s.mean_dice_tumour.is_nan() && s.mean_dice_all.is_nan());
    }
}
