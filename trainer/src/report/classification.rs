//! The filter's per-slice tumour / no-tumour decision, scored with linfa.
//!
//! A slice is called "tumour" when its probability is `>= threshold`. Ratios
//! whose denominator is zero are `None`, never NaN or a made-up 0 or 1:
//! precision without any "tumour" call, recall (sensitivity) without tumour
//! slices, specificity without clear slices, ROC AUC unless both classes occur.

use crate::{Error, Result};
use linfa::prelude::{BinaryClassification, Pr, ToConfusionMatrix};
use ndarray::Array1;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// Slice counts at the decision threshold; "positive" means tumour.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionCounts {
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
    pub tn: usize,
}

impl ConfusionCounts {
    pub fn total(&self) -> usize {
        self.tp + self.fp + self.fn_ + self.tn
    }
}

/// One point of the ROC curve, ordered from (0, 0) to (1, 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RocPoint {
    pub fpr: f64,
    pub tpr: f64,
}

/// Per-slice filter metrics at one threshold, plus the threshold-free ROC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationMetrics {
    /// Tumour when probability >= threshold.
    pub threshold: f32,
    pub slices: usize,
    pub tumour_slices: usize,
    pub clear_slices: usize,
    pub counts: ConfusionCounts,
    pub accuracy: f64,
    pub precision: Option<f64>,
    /// Recall of tumour slices, i.e. sensitivity.
    pub recall: Option<f64>,
    pub specificity: Option<f64>,
    pub f1: Option<f64>,
    pub roc_auc: Option<f64>,
    /// Empty when the ROC is undefined (one class only).
    pub roc: Vec<RocPoint>,
}

/// Scores per-slice tumour probabilities against the truth at `threshold`.
pub fn classification_metrics(
    probabilities: &[f32],
    truth: &[bool],
    threshold: f32,
) -> Result<ClassificationMetrics> {
    validate(probabilities, truth, threshold)?;
    let decisions: Vec<bool> = probabilities.iter().map(|&p| p >= threshold).collect();
    let counts = count(&decisions, truth);
    let ratio = |num: usize, den: usize| (den > 0).then(|| num as f64 / den as f64);

    // linfa's binary precision and recall are taken along the rows of its
    // matrix, and the rows belong to the receiver: the truth must be the
    // receiver for precision to mean TP / (TP + FP) (checked by a test).
    let cm = Array1::from(truth.to_vec())
        .confusion_matrix(Array1::from(decisions))
        .map_err(|e| Error::Invalid(format!("confusion matrix: {e}")))?;
    // When truth and decisions hold one label only, linfa builds a 1x1
    // matrix and answers for whichever label that is, so definedness comes
    // from our counts and linfa supplies the value only where it exists.
    let from_linfa = |den: usize, v: f32| (den > 0).then_some(v as f64);
    let f1 = if 2 * counts.tp + counts.fp + counts.fn_ == 0 {
        None
    } else if counts.tp == 0 {
        // linfa computes 2PR/(P+R) = 0/0 here; 2TP/(2TP+FP+FN) is 0.
        Some(0.0)
    } else {
        Some(cm.f1_score() as f64)
    };
    let (roc_auc, roc) = roc(probabilities, truth)?;

    Ok(ClassificationMetrics {
        threshold,
        slices: truth.len(),
        tumour_slices: counts.tp + counts.fn_,
        clear_slices: counts.fp + counts.tn,
        accuracy: cm.accuracy() as f64,
        precision: from_linfa(counts.tp + counts.fp, cm.precision()),
        recall: from_linfa(counts.tp + counts.fn_, cm.recall()),
        specificity: ratio(counts.tn, counts.tn + counts.fp),
        f1,
        roc_auc,
        roc,
        counts,
    })
}

fn validate(probabilities: &[f32], truth: &[bool], threshold: f32) -> Result<()> {
    if probabilities.len() != truth.len() {
        return Err(Error::Invalid(format!(
            "{} probabilities but {} truth labels",
            probabilities.len(),
            truth.len()
        )));
    }
    if truth.is_empty() {
        return Err(Error::Invalid("no slices to score".into()));
    }
    if !threshold.is_finite() {
        return Err(Error::Invalid(format!(
            "threshold {threshold} is not finite"
        )));
    }
    if let Some((i, p)) = probabilities
        .iter()
        .enumerate()
        .find(|(_, p)| !(0.0..=1.0).contains(*p))
    {
        return Err(Error::Invalid(format!(
            "probability {p} of slice {i} is outside 0..=1"
        )));
    }
    Ok(())
}

// linfa keeps its matrix private, so the counts are taken here.
fn count(decisions: &[bool], truth: &[bool]) -> ConfusionCounts {
    let mut c = ConfusionCounts::default();
    for (&d, &t) in decisions.iter().zip(truth) {
        match (d, t) {
            (true, true) => c.tp += 1,
            (true, false) => c.fp += 1,
            (false, true) => c.fn_ += 1,
            (false, false) => c.tn += 1,
        }
    }
    c
}

/// ROC AUC and curve from linfa, or `(None, [])` when a class is missing.
fn roc(probabilities: &[f32], truth: &[bool]) -> Result<(Option<f64>, Vec<RocPoint>)> {
    if truth.iter().all(|&t| t) || truth.iter().all(|&t| !t) {
        return Ok((None, Vec::new()));
    }
    let ranks = dense_ranks(probabilities)?;
    let roc = ranks
        .as_slice()
        .roc(truth)
        .map_err(|e| Error::Invalid(format!("ROC: {e}")))?;
    // linfa walks the scores upwards and records, per threshold, the share
    // of tumour and of clear slices *below* it: (1 - TPR, 1 - FPR). That is
    // the ROC mirrored in the anti-diagonal, which keeps the area, so only
    // the points need turning back.
    let mut points: Vec<RocPoint> = roc
        .get_curve()
        .into_iter()
        .map(|(below_pos, below_neg)| RocPoint {
            fpr: 1.0 - below_neg as f64,
            tpr: 1.0 - below_pos as f64,
        })
        .collect();
    points.reverse();
    Ok((Some(roc.area_under_curve() as f64), points))
}

/// Replaces each probability by its dense rank mapped into (0, 1).
///
/// linfa merges scores closer than 1e-10 (sigmoid outputs of confident clear
/// slices are often that close to 0 and yet ordered) and drops its (0, 0)
/// start when the lowest score is 0.0, which loses area. The ROC depends
/// only on the order of the scores, and ranks keep order and ties exactly
/// while staying far apart and above 0.
fn dense_ranks(probabilities: &[f32]) -> Result<Vec<Pr>> {
    let by_value = |a: &f32, b: &f32| a.partial_cmp(b).unwrap_or(Ordering::Equal);
    let mut distinct = probabilities.to_vec();
    distinct.sort_by(by_value);
    distinct.dedup();
    // Ranks k/(m+1) stay distinct in f32 only while m is well below 2^24.
    if distinct.len() >= 1 << 22 {
        return Err(Error::Invalid(format!(
            "{} distinct probabilities: too many for an f32 ROC",
            distinct.len()
        )));
    }
    let scale = (distinct.len() + 1) as f32;
    Ok(probabilities
        .iter()
        .map(|p| {
            let rank = distinct.partition_point(|q| by_value(q, p) == Ordering::Less) + 1;
            Pr::new(rank as f32 / scale)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    fn some_close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| close(a, b))
    }

    /// Independent AUC: the probability that a random tumour slice scores
    /// above a random clear one, ties counting half (Mann-Whitney U / n1 n0).
    fn mann_whitney_auc(p: &[f32], t: &[bool]) -> f64 {
        let (mut wins, mut pairs) = (0.0, 0.0);
        for (&pp, _) in p.iter().zip(t).filter(|(_, &t)| t) {
            for (&pn, _) in p.iter().zip(t).filter(|(_, &t)| !t) {
                pairs += 1.0;
                wins += match pp.partial_cmp(&pn).unwrap() {
                    Ordering::Greater => 1.0,
                    Ordering::Equal => 0.5,
                    Ordering::Less => 0.0,
                };
            }
        }
        wins / pairs
    }

    #[test]
    fn hand_computed_threshold_metrics() {
        // At 0.5: slices 0.9 T, 0.8 T, 0.6 F, 0.4 T, 0.3 F, 0.2 F, 0.1 F
        // -> TP 2, FP 1, FN 1, TN 3; FP != FN so a precision/recall swap shows.
        let p = [0.9, 0.8, 0.6, 0.4, 0.3, 0.2, 0.1];
        let t = [true, true, false, true, false, false, false];
        let m = classification_metrics(&p, &t, 0.5).unwrap();
        assert_eq!(
            m.counts,
            ConfusionCounts {
                tp: 2,
                fp: 1,
                fn_: 1,
                tn: 3
            }
        );
        assert_eq!((m.slices, m.tumour_slices, m.clear_slices), (7, 3, 4));
        assert!(close(m.accuracy, 5.0 / 7.0));
        assert!(some_close(m.precision, 2.0 / 3.0));
        assert!(some_close(m.recall, 2.0 / 3.0));
        assert!(some_close(m.specificity, 3.0 / 4.0));
        assert!(some_close(m.f1, 2.0 / 3.0));
        // Pairs (tumour above clear): 0.9 and 0.8 beat all 4, 0.4 beats 3 -> 11/12.
        assert!(some_close(m.roc_auc, 11.0 / 12.0));
    }

    #[test]
    fn precision_and_recall_are_not_swapped() {
        // TP 1, FP 3, FN 0: precision 1/4, recall 1.
        let p = [0.9, 0.8, 0.7, 0.6, 0.1];
        let t = [true, false, false, false, false];
        let m = classification_metrics(&p, &t, 0.5).unwrap();
        assert!(some_close(m.precision, 0.25));
        assert!(some_close(m.recall, 1.0));
        assert!(some_close(m.f1, 2.0 / 5.0));
        assert!(some_close(m.specificity, 0.25));
    }

    #[test]
    fn roc_points_run_from_origin_in_fpr_tpr_order() {
        let p = [0.1, 0.4, 0.35, 0.8];
        let t = [false, false, true, true];
        let m = classification_metrics(&p, &t, 0.5).unwrap();
        let pts: Vec<(f64, f64)> = m.roc.iter().map(|r| (r.fpr, r.tpr)).collect();
        assert_eq!(
            pts,
            vec![(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]
        );
        assert!(some_close(m.roc_auc, 0.75));
    }

    #[test]
    fn ties_count_half() {
        let m = classification_metrics(&[0.5, 0.5], &[true, false], 0.5).unwrap();
        assert!(some_close(m.roc_auc, 0.5));
        let pts: Vec<(f64, f64)> = m.roc.iter().map(|r| (r.fpr, r.tpr)).collect();
        assert_eq!(pts, vec![(0.0, 0.0), (1.0, 1.0)]);
    }

    #[test]
    fn scores_of_exactly_zero_keep_the_full_area() {
        // Tumour {0.0, 0.7} vs clear {0.0}: (0.5 + 1) / 2.
        let m = classification_metrics(&[0.0, 0.0, 0.7], &[false, true, true], 0.5).unwrap();
        assert!(some_close(m.roc_auc, 0.75));
        assert_eq!(m.roc.first(), Some(&RocPoint { fpr: 0.0, tpr: 0.0 }));
        assert_eq!(m.roc.last(), Some(&RocPoint { fpr: 1.0, tpr: 1.0 }));
    }

    #[test]
    fn tiny_but_ordered_scores_are_not_ties() {
        let m = classification_metrics(&[1e-12, 5e-11], &[false, true], 0.5).unwrap();
        assert!(some_close(m.roc_auc, 1.0));
    }

    #[test]
    fn auc_matches_mann_whitney_on_random_data() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for quantised in [false, true] {
            let n = 400;
            let t: Vec<bool> = (0..n).map(|_| rng.random_bool(0.35)).collect();
            let p: Vec<f32> = t
                .iter()
                .map(|&t| {
                    let base: f32 = rng.random::<f32>() * 0.8 + if t { 0.2 } else { 0.0 };
                    // Quantising to 0.05 steps makes many cross-class ties.
                    if quantised {
                        (base * 20.0).round() / 20.0
                    } else {
                        base
                    }
                })
                .collect();
            let m = classification_metrics(&p, &t, 0.5).unwrap();
            let expected = mann_whitney_auc(&p, &t);
            let auc = m.roc_auc.unwrap();
            assert!(
                (auc - expected).abs() < 1e-4,
                "quantised {quantised}: linfa {auc} vs Mann-Whitney {expected}"
            );
            // Trapezoids over our own (fpr, tpr) points give the same area.
            let area: f64 = m
                .roc
                .windows(2)
                .map(|w| (w[1].fpr - w[0].fpr) * (w[1].tpr + w[0].tpr) / 2.0)
                .sum();
            assert!((area - expected).abs() < 1e-4);
            assert!(m
                .roc
                .windows(2)
                .all(|w| w[1].fpr >= w[0].fpr && w[1].tpr >= w[0].tpr));
        }
    }

    #[test]
    fn all_tumour_slices_leave_specificity_and_auc_undefined() {
        let m = classification_metrics(&[0.9, 0.7, 0.2], &[true; 3], 0.5).unwrap();
        assert_eq!((m.roc_auc, m.specificity), (None, None));
        assert!(m.roc.is_empty());
        assert!(some_close(m.recall, 2.0 / 3.0));
        assert!(some_close(m.precision, 1.0));
        assert!(close(m.accuracy, 2.0 / 3.0));
    }

    #[test]
    fn all_clear_and_all_cleared_leaves_tumour_ratios_undefined() {
        // One label everywhere: linfa's 1x1 matrix would call precision 1.
        let m = classification_metrics(&[0.1, 0.2], &[false, false], 0.5).unwrap();
        assert_eq!(
            (m.precision, m.recall, m.f1, m.roc_auc),
            (None, None, None, None)
        );
        assert!(some_close(m.specificity, 1.0));
        assert!(close(m.accuracy, 1.0));
    }

    #[test]
    fn all_tumour_all_found_is_perfect() {
        let m = classification_metrics(&[0.9, 0.8], &[true, true], 0.5).unwrap();
        assert!(some_close(m.precision, 1.0) && some_close(m.recall, 1.0));
        assert!(some_close(m.f1, 1.0));
        assert_eq!(m.specificity, None);
    }

    #[test]
    fn no_tumour_call_gives_no_precision_and_zero_f1() {
        let m = classification_metrics(&[0.1, 0.2, 0.3], &[true, false, false], 0.5).unwrap();
        assert_eq!(m.precision, None);
        assert!(some_close(m.recall, 0.0));
        assert!(some_close(m.f1, 0.0));
        assert!(some_close(m.roc_auc, 0.0));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(classification_metrics(&[], &[], 0.5).is_err());
        assert!(classification_metrics(&[0.5], &[true, false], 0.5).is_err());
        assert!(classification_metrics(&[f32::NAN], &[true], 0.5).is_err());
        assert!(classification_metrics(&[1.5], &[true], 0.5).is_err());
        assert!(classification_metrics(&[0.5], &[true], f32::NAN).is_err());
    }
}
