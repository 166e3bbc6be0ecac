//! Dice / IoU summaries of the segmenter, in the cuts reports need.
//!
//! Every score comes from [`models::metrics`]: per slice, a both-empty
//! slice scores 1 and is counted apart; per patient (3D), pixel counts are
//! pooled over the patient's slices before dividing; means over an empty set
//! are NaN (`null` in JSON), never a score.

use models::metrics::{MaskCounts, SliceSummary};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Lesions with fewer true pixels than this are "small".
///
/// At the 256x256 model input 100 px is a blob about 11 px across, where a
/// one-pixel boundary error already costs a large share of the Dice.
pub const SMALL_LESION_MAX_PX: usize = 100;
/// Lesions with at least this many true pixels are "large" (about 36 px
/// across); between the two they are "medium".
pub const LARGE_LESION_MIN_PX: usize = 1000;

/// One evaluated slice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliceRecord {
    pub patient: String,
    pub counts: MaskCounts,
    /// Tumour pixels in the true mask; selects the lesion-size stratum.
    pub true_area_px: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LesionSize {
    Small,
    Medium,
    Large,
}

impl LesionSize {
    pub const ALL: [LesionSize; 3] = [LesionSize::Small, LesionSize::Medium, LesionSize::Large];

    /// The stratum of a true lesion area; `None` for a slice without tumour.
    pub fn of(true_area_px: usize) -> Option<Self> {
        match true_area_px {
            0 => None,
            a if a < SMALL_LESION_MAX_PX => Some(LesionSize::Small),
            a if a < LARGE_LESION_MIN_PX => Some(LesionSize::Medium),
            _ => Some(LesionSize::Large),
        }
    }

    /// Name with its pixel range, as printed in reports.
    pub fn label(self) -> String {
        match self {
            LesionSize::Small => format!("small (1-{} px)", SMALL_LESION_MAX_PX - 1),
            LesionSize::Medium => {
                format!(
                    "medium ({SMALL_LESION_MAX_PX}-{} px)",
                    LARGE_LESION_MIN_PX - 1
                )
            }
            LesionSize::Large => format!("large (>= {LARGE_LESION_MIN_PX} px)"),
        }
    }
}

/// Mean per-slice scores over the tumour slices of one size stratum.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StratumSummary {
    pub size: LesionSize,
    pub slices: usize,
    pub mean_dice: f64,
    pub mean_iou: f64,
}

/// One patient's pooled (3D) score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatientScore {
    pub patient: String,
    pub slices: usize,
    pub counts: MaskCounts,
    pub dice: f64,
    pub iou: f64,
}

/// Means over patients of their pooled (3D) scores.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PatientSummary {
    pub patients: usize,
    /// Patients with at least one tumour pixel in the truth.
    pub tumour_patients: usize,
    /// Patients without tumour for whom nothing was predicted either.
    pub both_empty_patients: usize,
    /// Patients without tumour for whom something was predicted.
    pub false_alarm_patients: usize,
    pub mean_dice_tumour: f64,
    pub mean_iou_tumour: f64,
    pub mean_dice_all: f64,
    pub mean_iou_all: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentationSummary {
    /// Means of per-slice scores: over tumour slices only and over all.
    pub per_slice: SliceSummary,
    pub per_patient: PatientSummary,
    /// Tumour slices only, by true lesion area; always small, medium, large.
    pub by_lesion_size: Vec<StratumSummary>,
    /// Sorted by patient id.
    pub patients: Vec<PatientScore>,
}

pub fn summarise_segmentation(records: &[SliceRecord]) -> SegmentationSummary {
    let per_slice = SliceSummary::from_slices(records.iter().map(|r| &r.counts));
    let patients = patient_scores(records);
    SegmentationSummary {
        per_slice,
        per_patient: patient_summary(&patients),
        by_lesion_size: LesionSize::ALL
            .into_iter()
            .map(|size| stratum(records, size))
            .collect(),
        patients,
    }
}

fn patient_scores(records: &[SliceRecord]) -> Vec<PatientScore> {
    let mut pooled: BTreeMap<&str, (usize, MaskCounts)> = BTreeMap::new();
    for r in records {
        let (slices, counts) = pooled.entry(&r.patient).or_default();
        *slices += 1;
        counts.merge(&r.counts);
    }
    pooled
        .into_iter()
        .map(|(patient, (slices, counts))| PatientScore {
            patient: patient.to_string(),
            slices,
            dice: counts.dice(),
            iou: counts.iou(),
            counts,
        })
        .collect()
}

// A patient's pooled counts behave like one big slice, so the slice summary
// gives the tumour-only / all split for patients too.
fn patient_summary(patients: &[PatientScore]) -> PatientSummary {
    let s = SliceSummary::from_slices(patients.iter().map(|p| &p.counts));
    PatientSummary {
        patients: s.total_slices,
        tumour_patients: s.tumour_slices,
        both_empty_patients: s.both_empty_slices,
        false_alarm_patients: s.false_alarm_slices,
        mean_dice_tumour: s.mean_dice_tumour,
        mean_iou_tumour: s.mean_iou_tumour,
        mean_dice_all: s.mean_dice_all,
        mean_iou_all: s.mean_iou_all,
    }
}

/// A stratum is chosen by the lesion's area in the source mask, but scored
/// on the masks at the model's resolution, where a small lesion can vanish
/// (a 60 px lesion at 256 px is under 4 px at 64 px). Such a slice has no
/// tumour left to find and is not a tumour slice in the other scores; here
/// it would count as a perfect empty prediction (Dice 1), so it is left out
/// of its stratum too.
fn stratum(records: &[SliceRecord], size: LesionSize) -> StratumSummary {
    let s = SliceSummary::from_slices(
        records
            .iter()
            .filter(|r| LesionSize::of(r.true_area_px) == Some(size) && !r.counts.truth_empty())
            .map(|r| &r.counts),
    );
    StratumSummary {
        size,
        slices: s.total_slices,
        mean_dice: s.mean_dice_all,
        mean_iou: s.mean_iou_all,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn counts(tp: u64, fp: u64, fn_: u64, tn: u64) -> MaskCounts {
        MaskCounts { tp, fp, fn_, tn }
    }

    pub(crate) fn record(patient: &str, c: MaskCounts) -> SliceRecord {
        SliceRecord {
            patient: patient.into(),
            true_area_px: (c.tp + c.fn_) as usize,
            counts: c,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// Patient A: a 50 px lesion half found and a clear slice; patient B: a
    /// 200 px lesion found exactly, a 2000 px lesion missed, a false alarm.
    pub(crate) fn cohort() -> Vec<SliceRecord> {
        vec![
            // A1: TP 25, FP 0, FN 25 -> Dice 50/75 = 2/3, IoU 25/50 = 1/2.
            record("A", counts(25, 0, 25, 974)),
            // A2: both empty -> Dice = IoU = 1, counted apart.
            record("A", counts(0, 0, 0, 1024)),
            // B1: TP 200 exact -> 1, 1.
            record("B", counts(200, 0, 0, 824)),
            // B2: FN 2000 -> 0, 0.
            record("B", counts(0, 0, 2000, 48)),
            // B3: FP 10 on a clear slice -> 0, 0 (false alarm).
            record("B", counts(0, 10, 0, 1014)),
        ]
    }

    #[test]
    fn per_slice_means_split_tumour_and_all() {
        let s = summarise_segmentation(&cohort());
        let p = s.per_slice;
        assert_eq!(
            (
                p.tumour_slices,
                p.both_empty_slices,
                p.false_alarm_slices,
                p.total_slices
            ),
            (3, 1, 1, 5)
        );
        assert!(close(p.mean_dice_tumour, (2.0 / 3.0 + 1.0 + 0.0) / 3.0));
        assert!(close(p.mean_iou_tumour, (0.5 + 1.0 + 0.0) / 3.0));
        assert!(close(
            p.mean_dice_all,
            (2.0 / 3.0 + 1.0 + 1.0 + 0.0 + 0.0) / 5.0
        ));
        assert!(close(p.mean_iou_all, (0.5 + 1.0 + 1.0 + 0.0 + 0.0) / 5.0));
    }

    #[test]
    fn per_patient_pools_pixels_then_averages_patients() {
        let s = summarise_segmentation(&cohort());
        // A: TP 25, FP 0, FN 25 -> Dice 2/3, IoU 1/2.
        // B: TP 200, FP 10, FN 2000 -> Dice 400/2410, IoU 200/2210.
        let (da, ia) = (2.0 / 3.0, 0.5);
        let (db, ib) = (400.0 / 2410.0, 200.0 / 2210.0);
        let names: Vec<&str> = s.patients.iter().map(|p| p.patient.as_str()).collect();
        assert_eq!(names, ["A", "B"]);
        assert_eq!(s.patients[1].slices, 3);
        assert_eq!(s.patients[1].counts, counts(200, 10, 2000, 1886));
        assert!(close(s.patients[0].dice, da) && close(s.patients[1].dice, db));
        let pp = s.per_patient;
        assert_eq!(
            (pp.patients, pp.tumour_patients, pp.both_empty_patients),
            (2, 2, 0)
        );
        assert!(close(pp.mean_dice_tumour, (da + db) / 2.0));
        assert!(close(pp.mean_iou_tumour, (ia + ib) / 2.0));
        assert!(close(pp.mean_dice_all, (da + db) / 2.0));
    }

    #[test]
    fn tumour_free_patient_counts_apart() {
        let mut records = cohort();
        records.push(record("C", counts(0, 0, 0, 1024)));
        records.push(record("D", counts(0, 5, 0, 1019)));
        let pp = summarise_segmentation(&records).per_patient;
        assert_eq!(
            (
                pp.patients,
                pp.tumour_patients,
                pp.both_empty_patients,
                pp.false_alarm_patients
            ),
            (4, 2, 1, 1)
        );
        let (da, db) = (2.0 / 3.0, 400.0 / 2410.0);
        assert!(close(pp.mean_dice_tumour, (da + db) / 2.0));
        assert!(close(pp.mean_dice_all, (da + db + 1.0 + 0.0) / 4.0));
    }

    #[test]
    fn a_lesion_gone_at_model_resolution_is_not_scored_in_its_stratum() {
        // Small in the source mask, nothing left of it at the model's size,
        // nothing predicted: not a found lesion.
        let vanished = SliceRecord {
            patient: "A".into(),
            counts: counts(0, 0, 0, 1024),
            true_area_px: 40,
        };
        let missed = SliceRecord {
            patient: "A".into(),
            counts: counts(0, 0, 5, 1019),
            true_area_px: 60,
        };
        let small = summarise_segmentation(&[vanished, missed]).by_lesion_size[0];
        assert_eq!(small.slices, 1);
        assert_eq!(small.mean_dice, 0.0);
    }

    #[test]
    fn strata_by_true_area_use_named_thresholds() {
        assert_eq!(LesionSize::of(0), None);
        assert_eq!(LesionSize::of(1), Some(LesionSize::Small));
        assert_eq!(
            LesionSize::of(SMALL_LESION_MAX_PX - 1),
            Some(LesionSize::Small)
        );
        assert_eq!(
            LesionSize::of(SMALL_LESION_MAX_PX),
            Some(LesionSize::Medium)
        );
        assert_eq!(
            LesionSize::of(LARGE_LESION_MIN_PX - 1),
            Some(LesionSize::Medium)
        );
        assert_eq!(LesionSize::of(LARGE_LESION_MIN_PX), Some(LesionSize::Large));

        let mut records = cohort();
        // A second small lesion, 99 px, all found plus 1 FP: Dice 198/199.
        records.push(record("C", counts(99, 1, 0, 924)));
        let strata = summarise_segmentation(&records).by_lesion_size;
        let sizes: Vec<LesionSize> = strata.iter().map(|s| s.size).collect();
        assert_eq!(sizes, LesionSize::ALL);
        let [small, medium, large] = [strata[0], strata[1], strata[2]];
        assert_eq!((small.slices, medium.slices, large.slices), (2, 1, 1));
        assert!(close(small.mean_dice, (2.0 / 3.0 + 198.0 / 199.0) / 2.0));
        assert!(close(small.mean_iou, (0.5 + 99.0 / 100.0) / 2.0));
        assert!(close(medium.mean_dice, 1.0) && close(medium.mean_iou, 1.0));
        assert!(close(large.mean_dice, 0.0) && close(large.mean_iou, 0.0));
    }

    #[test]
    fn empty_stratum_and_empty_input_are_nan() {
        let s = summarise_segmentation(&[record("A", counts(5, 0, 0, 10))]);
        assert_eq!(s.by_lesion_size[0].slices, 1);
        assert!(s.by_lesion_size[2].mean_dice.is_nan());
        let none = summarise_segmentation(&[]);
        assert!(none.per_slice.mean_dice_all.is_nan());
        assert!(none.per_patient.mean_dice_all.is_nan());
        assert!(none.patients.is_empty());
    }

    #[test]
    fn labels_name_the_ranges() {
        assert_eq!(LesionSize::Small.label(), "small (1-99 px)");
        assert_eq!(LesionSize::Medium.label(), "medium (100-999 px)");
        assert_eq!(LesionSize::Large.label(), "large (>= 1000 px)");
    }
}
