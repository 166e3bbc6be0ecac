//! The filter's threshold, picked on the validation patients for a target
//! sensitivity. A screening filter that drops a tumour slice loses it for
//! good (the segmenter never sees it), while a false alarm only costs one
//! segmenter run; so the operating point favours sensitivity, and it is
//! chosen on patients the model did not train on and the test set does not
//! contain.

use crate::{Error, Result};

/// Where the filter runs: slices with P(tumour) at or above `threshold` go
/// on to the segmenter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OperatingPoint {
    pub threshold: f32,
    /// On the slices the threshold was picked on.
    pub sensitivity: f64,
    pub specificity: f64,
    pub tumour_slices: usize,
    /// Tumour slices at or above the threshold (the count behind
    /// `sensitivity`).
    pub tumour_passed: usize,
    pub clear_slices: usize,
}

/// The highest threshold that keeps at least `target` of the tumour slices,
/// capped at 0.5: a slice the model itself calls tumour always passes.
pub fn for_sensitivity(p_tumour: &[f32], labels: &[bool], target: f64) -> Result<OperatingPoint> {
    if p_tumour.len() != labels.len() {
        return Err(Error::Invalid(format!(
            "{} probabilities for {} labels",
            p_tumour.len(),
            labels.len()
        )));
    }
    if !(0.0..=1.0).contains(&target) {
        return Err(Error::Invalid(format!(
            "target sensitivity {target} is not a share between 0 and 1"
        )));
    }
    let mut tumour: Vec<f32> = p_tumour
        .iter()
        .zip(labels)
        .filter(|(_, &l)| l)
        .map(|(&p, _)| p)
        .collect();
    if tumour.is_empty() {
        return Err(Error::Invalid(
            "no tumour slice to pick the filter's threshold on".into(),
        ));
    }
    tumour.sort_by(f32::total_cmp);
    let keep = (target * tumour.len() as f64).ceil() as usize;
    let may_miss = tumour.len() - keep.min(tumour.len());
    let threshold = tumour[may_miss].min(0.5);
    Ok(at(p_tumour, labels, threshold))
}

/// As [`for_sensitivity`], but every group (data source) with tumour slices
/// must keep `target` of its own: the lowest of the groups' thresholds.
/// Pooled, a large source whose tumours the filter finds easily would set
/// a threshold that drops a smaller source's tumours.
pub fn for_sensitivity_per_group(
    p_tumour: &[f32],
    labels: &[bool],
    groups: &[u16],
    target: f64,
) -> Result<OperatingPoint> {
    if groups.len() != labels.len() {
        return Err(Error::Invalid(format!(
            "{} groups for {} labels",
            groups.len(),
            labels.len()
        )));
    }
    let mut ids: Vec<u16> = groups.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut threshold: Option<f32> = None;
    for g in ids {
        let (p, l): (Vec<f32>, Vec<bool>) = p_tumour
            .iter()
            .zip(labels)
            .zip(groups)
            .filter(|(_, &k)| k == g)
            .map(|((&p, &l), _)| (p, l))
            .unzip();
        if !l.iter().any(|&t| t) {
            continue;
        }
        let t = for_sensitivity(&p, &l, target)?.threshold;
        threshold = Some(threshold.map_or(t, |u: f32| u.min(t)));
    }
    match threshold {
        Some(t) => Ok(at(p_tumour, labels, t)),
        None => for_sensitivity(p_tumour, labels, target),
    }
}

/// The filter's threshold for the pair the appliance runs (filter, then
/// the segmenter's mask): the highest one at which the filter keeps at least
/// `target` of the tumour slices the segmenter finds (`found`: its mask is
/// not empty), in every group (data source) on its own. A tumour slice the
/// segmenter misses is lost whatever the filter does, so it does not hold
/// the threshold down; and no cap at 0.5, since what the filter stops above
/// 0.5 is what the segmenter would have marked. Returns the filter's own
/// figures at that threshold, as [`for_sensitivity`] does.
pub fn for_pair_per_group(
    p_tumour: &[f32],
    labels: &[bool],
    found: &[bool],
    groups: &[u16],
    target: f64,
) -> Result<OperatingPoint> {
    if found.len() != labels.len() || groups.len() != labels.len() || p_tumour.len() != labels.len()
    {
        return Err(Error::Invalid(format!(
            "{} probabilities, {} segmenter answers and {} groups for {} labels",
            p_tumour.len(),
            found.len(),
            groups.len(),
            labels.len()
        )));
    }
    if !(0.0..=1.0).contains(&target) {
        return Err(Error::Invalid(format!(
            "target sensitivity {target} is not a share between 0 and 1"
        )));
    }
    let mut per_group: std::collections::BTreeMap<u16, Vec<f32>> = Default::default();
    for i in 0..labels.len() {
        if labels[i] && found[i] {
            per_group.entry(groups[i]).or_default().push(p_tumour[i]);
        }
    }
    if per_group.is_empty() {
        return Err(Error::Invalid(
            "the segmenter finds no tumour slice to pick the filter's threshold on".into(),
        ));
    }
    let threshold = per_group
        .into_values()
        .map(|mut p| {
            p.sort_by(f32::total_cmp);
            let keep = ((target * p.len() as f64).ceil() as usize).clamp(1, p.len());
            p[p.len() - keep]
        })
        .fold(f32::INFINITY, f32::min);
    Ok(at(p_tumour, labels, threshold))
}

/// Sensitivity and specificity of `threshold` on these slices.
pub fn at(p_tumour: &[f32], labels: &[bool], threshold: f32) -> OperatingPoint {
    let (mut tp, mut tumour, mut tn, mut clear) = (0, 0, 0, 0);
    for (&p, &l) in p_tumour.iter().zip(labels) {
        if l {
            tumour += 1;
            tp += usize::from(p >= threshold);
        } else {
            clear += 1;
            tn += usize::from(p < threshold);
        }
    }
    let share = |k: usize, n: usize| {
        if n == 0 {
            f64::NAN
        } else {
            k as f64 / n as f64
        }
    };
    OperatingPoint {
        threshold,
        sensitivity: share(tp, tumour),
        specificity: share(tn, clear),
        tumour_slices: tumour,
        tumour_passed: tp,
        clear_slices: clear,
    }
}

/// The logit at or above which a sigmoid output reaches `threshold`
/// (sigmoid(l) >= t  <=>  l >= ln(t / (1 - t))), so a mask is cut on the
/// raw logits; `threshold` is kept off 0 and 1.
pub fn logit_at(threshold: f32) -> f32 {
    let t = f64::from(threshold).clamp(1e-6, 1.0 - 1e-6);
    (t / (1.0 - t)).ln() as f32
}

/// P(tumour) from a filter's two logits (clear, tumour).
pub fn p_tumour(logits: &[f32]) -> f32 {
    // softmax over two classes = sigmoid of the difference
    1.0 / (1.0 + (logits[0] - logits[1]).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logit_cut_matches_the_sigmoid_threshold() {
        assert_eq!(logit_at(0.5), 0.0);
        for t in [0.1f32, 0.3, 0.7, 0.9] {
            let l = logit_at(t);
            assert!((1.0 / (1.0 + (-l).exp()) - t).abs() < 1e-6, "{t}");
        }
        assert!(logit_at(1.0).is_finite() && logit_at(0.0).is_finite());
    }

    #[test]
    fn every_group_keeps_its_share() {
        // Group 0: ten easy tumour slices (0.9..1.0); group 1: two hard
        // ones (0.2, 0.3) and a clear slice at 0.1.
        let mut p: Vec<f32> = (0..10).map(|i| 0.9 + i as f32 / 100.0).collect();
        p.extend([0.2, 0.3, 0.1]);
        let labels: Vec<bool> = (0..13).map(|i| i < 12).collect();
        let groups: Vec<u16> = (0..13).map(|i| u16::from(i >= 10)).collect();
        let pooled = for_sensitivity(&p, &labels, 0.8).unwrap();
        assert_eq!(pooled.threshold, 0.5, "pooled: group 1 loses both");
        let op = for_sensitivity_per_group(&p, &labels, &groups, 0.8).unwrap();
        assert_eq!(op.threshold, 0.2);
        assert_eq!((op.tumour_passed, op.specificity), (12, 1.0));
        assert!(for_sensitivity_per_group(&p, &labels, &groups[..3], 0.8).is_err());
    }

    #[test]
    fn the_pair_threshold_ignores_what_the_segmenter_misses() {
        // Group 0: tumour slices at 0.3 (the segmenter misses it), 0.7, 0.8,
        // 0.9; clear at 0.6. Group 1: tumour at 0.95 and 0.85.
        let p = [0.3, 0.7, 0.8, 0.9, 0.6, 0.95, 0.85];
        let labels = [true, true, true, true, false, true, true];
        let found = [false, true, true, true, true, true, true];
        let groups = [0, 0, 0, 0, 0, 1, 1];
        let op = for_pair_per_group(&p, &labels, &found, &groups, 1.0).unwrap();
        // All of group 0's found slices (lowest 0.7) and group 1's (0.85).
        assert_eq!(op.threshold, 0.7);
        assert_eq!((op.tumour_passed, op.specificity), (5, 1.0));
        // Keeping two thirds of group 0's found slices lets it rise to 0.8;
        // group 1 (two found) must keep both at ceil(2 * 2/3) = 2.
        let op = for_pair_per_group(&p, &labels, &found, &groups, 2.0 / 3.0).unwrap();
        assert_eq!(op.threshold, 0.8);
        // Above 0.5 where the data say so, unlike the filter-alone rule.
        assert!(
            for_sensitivity_per_group(&p, &labels, &groups, 1.0)
                .unwrap()
                .threshold
                <= 0.5
        );
        assert!(for_pair_per_group(&p, &labels, &[false; 7], &groups, 0.9).is_err());
        assert!(for_pair_per_group(&p, &labels, &found[..3], &groups, 0.9).is_err());
    }

    #[test]
    fn keeps_the_target_share_of_tumour_slices() {
        // Tumour slices at 0.1, 0.2, ..., 1.0 (ten); clear at 0.05 and 0.15.
        let mut p: Vec<f32> = (1..=10).map(|i| i as f32 / 10.0).collect();
        let mut l = vec![true; 10];
        p.extend([0.05, 0.15]);
        l.extend([false, false]);
        // 90 %: nine of ten must pass -> the threshold is the second lowest
        // tumour probability, 0.2; one clear slice (0.15) falls below it.
        let op = for_sensitivity(&p, &l, 0.9).unwrap();
        assert_eq!(op.threshold, 0.2);
        assert_eq!(op.sensitivity, 0.9);
        assert_eq!(op.specificity, 1.0);
        // 100 %: every tumour slice -> 0.1; the clear slice at 0.15 passes.
        let op = for_sensitivity(&p, &l, 1.0).unwrap();
        assert_eq!(op.threshold, 0.1);
        assert_eq!(op.sensitivity, 1.0);
        assert_eq!(op.specificity, 0.5);
    }

    #[test]
    fn never_above_one_half() {
        // A confident filter: every tumour slice at 0.9 or more.
        let p = [0.9, 0.95, 0.99, 0.1];
        let l = [true, true, true, false];
        let op = for_sensitivity(&p, &l, 0.5).unwrap();
        assert_eq!(op.threshold, 0.5);
        assert_eq!((op.sensitivity, op.specificity), (1.0, 1.0));
    }

    #[test]
    fn ties_at_the_threshold_pass() {
        let p = [0.3, 0.3, 0.3, 0.3];
        let l = [true, true, false, false];
        let op = for_sensitivity(&p, &l, 0.5).unwrap();
        assert_eq!(op.threshold, 0.3);
        assert_eq!((op.sensitivity, op.specificity), (1.0, 0.0));
    }

    #[test]
    fn refuses_what_it_cannot_pick_on() {
        assert!(for_sensitivity(&[0.2, 0.4], &[false, false], 0.95).is_err());
        assert!(for_sensitivity(&[0.2], &[true, false], 0.95).is_err());
        assert!(for_sensitivity(&[0.2], &[true], 1.5).is_err());
    }

    #[test]
    fn two_logits_give_the_softmax_tumour_share() {
        assert!((p_tumour(&[0.0, 0.0]) - 0.5).abs() < 1e-6);
        let (a, b) = (0.3f32, 2.1f32);
        let softmax = b.exp() / (a.exp() + b.exp());
        assert!((p_tumour(&[a, b]) - softmax).abs() < 1e-6);
    }
}
