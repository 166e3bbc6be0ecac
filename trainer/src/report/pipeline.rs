//! Segmentation as the appliance shows it: the filter gates the segmenter.
//!
//! A slice the filter does not flag is never segmented, so its prediction
//! is empty: a missed tumour slice scores Dice 0 however good the segmenter
//! would have been, and a clear slice cannot raise a false alarm.

use super::segmentation::{summarise_segmentation, SegmentationSummary, SliceRecord};
use models::metrics::MaskCounts;
use serde::{Deserialize, Serialize};

/// One slice through both stages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineSlice {
    /// Counts of the segmenter's own mask, as if it ran on every slice.
    pub slice: SliceRecord,
    /// The filter's decision: tumour, so the segmenter runs.
    pub flagged: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineSummary {
    pub slices: usize,
    pub flagged_slices: usize,
    /// Tumour slices (true mask not empty) the filter let through unsegmented.
    pub tumour_slices_not_flagged: usize,
    /// Clear slices the filter sent to the segmenter.
    pub clear_slices_flagged: usize,
    /// Scores of the masks the appliance would show.
    pub segmentation: SegmentationSummary,
}

/// The records with an empty prediction wherever the filter said no.
pub fn gate_by_filter(slices: &[PipelineSlice]) -> Vec<SliceRecord> {
    slices
        .iter()
        .map(|s| {
            let mut record = s.slice.clone();
            if !s.flagged {
                record.counts = nothing_predicted(&s.slice.counts);
            }
            record
        })
        .collect()
}

pub fn summarise_pipeline(slices: &[PipelineSlice]) -> PipelineSummary {
    let has_tumour = |s: &&PipelineSlice| !s.slice.counts.truth_empty();
    PipelineSummary {
        slices: slices.len(),
        flagged_slices: slices.iter().filter(|s| s.flagged).count(),
        tumour_slices_not_flagged: slices
            .iter()
            .filter(has_tumour)
            .filter(|s| !s.flagged)
            .count(),
        clear_slices_flagged: slices
            .iter()
            .filter(|s| !has_tumour(s))
            .filter(|s| s.flagged)
            .count(),
        segmentation: summarise_segmentation(&gate_by_filter(slices)),
    }
}

// Same truth, empty prediction: every true pixel is missed, every other
// pixel is a true negative.
fn nothing_predicted(c: &MaskCounts) -> MaskCounts {
    MaskCounts {
        tp: 0,
        fp: 0,
        fn_: c.tp + c.fn_,
        tn: c.fp + c.tn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::segmentation::tests::{cohort, counts, record};

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    fn through_filter(flags: &[bool]) -> Vec<PipelineSlice> {
        cohort()
            .into_iter()
            .zip(flags)
            .map(|(slice, &flagged)| PipelineSlice { slice, flagged })
            .collect()
    }

    #[test]
    fn perfect_filter_leaves_tumour_scores_and_clears_false_alarms() {
        // Cohort: A1 tumour, A2 clear, B1 tumour, B2 tumour, B3 clear (FP 10).
        let s = summarise_pipeline(&through_filter(&[true, false, true, true, false]));
        assert_eq!(
            (
                s.slices,
                s.flagged_slices,
                s.tumour_slices_not_flagged,
                s.clear_slices_flagged
            ),
            (5, 3, 0, 0)
        );
        let p = s.segmentation.per_slice;
        assert_eq!((p.both_empty_slices, p.false_alarm_slices), (2, 0));
        assert!(close(p.mean_dice_tumour, (2.0 / 3.0 + 1.0 + 0.0) / 3.0));
        // The B3 false alarm is gone: 1 instead of 0 in the all-slice mean.
        assert!(close(
            p.mean_dice_all,
            (2.0 / 3.0 + 1.0 + 1.0 + 0.0 + 1.0) / 5.0
        ));
    }

    #[test]
    fn unflagged_tumour_slice_becomes_all_missed() {
        // Filter misses B1 (200 px found exactly by the segmenter) and flags B3.
        let slices = through_filter(&[true, false, false, true, true]);
        let gated = gate_by_filter(&slices);
        assert_eq!(gated[1].counts, counts(0, 0, 0, 1024));
        assert_eq!(gated[2].counts, counts(0, 0, 200, 824));
        assert_eq!(gated[4].counts, counts(0, 10, 0, 1014));
        let s = summarise_pipeline(&slices);
        assert_eq!(
            (s.tumour_slices_not_flagged, s.clear_slices_flagged),
            (1, 1)
        );
        let p = s.segmentation.per_slice;
        assert!(close(p.mean_dice_tumour, (2.0 / 3.0 + 0.0 + 0.0) / 3.0));
        let medium = s.segmentation.by_lesion_size[1];
        assert_eq!(medium.slices, 1);
        assert!(close(medium.mean_dice, 0.0));
        // Patient B pooled: TP 0, FP 10, FN 2200 -> Dice 0.
        assert!(close(s.segmentation.patients[1].dice, 0.0));
        assert_eq!(s.segmentation.patients[1].counts, counts(0, 10, 2200, 1886));
    }

    #[test]
    fn flagging_everything_equals_the_segmenter_alone() {
        let slices = through_filter(&[true; 5]);
        let alone = summarise_segmentation(&cohort());
        assert_eq!(
            summarise_pipeline(&slices).segmentation.patients,
            alone.patients
        );
        let gated = gate_by_filter(&[PipelineSlice {
            slice: record("X", counts(3, 1, 2, 4)),
            flagged: true,
        }]);
        assert_eq!(gated[0].counts, counts(3, 1, 2, 4));
    }
}
