//! Segmentation losses on mask logits, each averaged over the samples of a
//! batch (per-sample, so a small lesion weighs as much as a large one).
//!
//! Tversky index TI = (TP + s) / (TP + alpha FN + beta FP + s) with soft
//! counts from sigmoid probabilities; with alpha > beta a missed tumour
//! pixel costs more than a false alarm (seed: alpha 0.7, beta 0.3). The
//! smoothing s = 1 keeps empty masks defined: an empty truth predicted empty
//! scores TI = 1, loss 0.

use serde::{Deserialize, Serialize};
use tch::{Kind, Reduction, Tensor};

pub const SMOOTH: f64 = 1.0;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SegLoss {
    Tversky {
        alpha: f64,
        beta: f64,
    },
    FocalTversky {
        alpha: f64,
        beta: f64,
        gamma: f64,
    },
    Dice,
    Bce,
    BceDice,
    /// For a segmenter that sees clear slices as well as tumour slices (the
    /// appliance's segmenter gets every slice the filter passes): Tversky
    /// per sample over the batch's tumour slices only (on a clear slice
    /// Tversky's only way down is to predict nothing anywhere, which is how
    /// per-slice Tversky on all slices collapsed), plus `bce` times pixel
    /// BCE over every slice, plus `detect` times a slice-level BCE on the
    /// mean of each slice's `TOP_K` largest logits against "has tumour":
    /// the appliance calls a slice tumour when its mask is not empty, and
    /// this term trains exactly that decision.
    AllSlices {
        alpha: f64,
        beta: f64,
        bce: f64,
        detect: f64,
    },
}

/// Pixels whose logits make a slice's detection score: fewer than the
/// smallest lesions at 128 px, so a tiny lesion can score "tumour" without
/// growing its mask, more than one so a lone hot pixel is not the verdict.
pub const TOP_K: i64 = 4;

impl SegLoss {
    /// `AllSlices` with the seed's Tversky weights, BCE and detection at 1.
    pub fn all_slices() -> Self {
        SegLoss::AllSlices {
            alpha: 0.7,
            beta: 0.3,
            bce: 1.0,
            detect: 1.0,
        }
    }
}

/// Per slice: the mean of its `TOP_K` largest logits ([N]).
pub fn detection_logit(logits: &Tensor) -> Tensor {
    let flat = logits.flatten(1, -1);
    let k = TOP_K.min(flat.size()[1]);
    flat.topk(k, 1, true, false)
        .0
        .mean_dim(1, false, Kind::Float)
}

impl Default for SegLoss {
    fn default() -> Self {
        SegLoss::Tversky {
            alpha: 0.7,
            beta: 0.3,
        }
    }
}

/// Soft TP, FN, FP per sample: each [N].
fn soft_counts(logits: &Tensor, target: &Tensor) -> (Tensor, Tensor, Tensor) {
    let p = logits.sigmoid().flatten(1, -1);
    let g = target.flatten(1, -1).to_kind(Kind::Float);
    let tp = (&p * &g).sum_dim_intlist(1, false, Kind::Float);
    let fn_ = (one_minus(&p) * &g).sum_dim_intlist(1, false, Kind::Float);
    let fp = (&p * one_minus(&g)).sum_dim_intlist(1, false, Kind::Float);
    (tp, fn_, fp)
}

fn one_minus(t: &Tensor) -> Tensor {
    t.neg() + 1.0
}

pub fn tversky_index(logits: &Tensor, target: &Tensor, alpha: f64, beta: f64) -> Tensor {
    let (tp, fn_, fp) = soft_counts(logits, target);
    (&tp + SMOOTH) / (&tp + fn_ * alpha + fp * beta + SMOOTH)
}

impl SegLoss {
    /// Scalar loss for [N,1,H,W] logits against a 0/1 target of the same shape.
    pub fn compute(&self, logits: &Tensor, target: &Tensor) -> Tensor {
        match *self {
            SegLoss::Tversky { alpha, beta } => {
                one_minus(&tversky_index(logits, target, alpha, beta)).mean(Kind::Float)
            }
            SegLoss::FocalTversky { alpha, beta, gamma } => {
                one_minus(&tversky_index(logits, target, alpha, beta))
                    .clamp_min(0.0)
                    .pow_tensor_scalar(gamma)
                    .mean(Kind::Float)
            }
            SegLoss::Dice => one_minus(&tversky_index(logits, target, 0.5, 0.5)).mean(Kind::Float),
            SegLoss::Bce => logits.binary_cross_entropy_with_logits::<Tensor>(
                &target.to_kind(Kind::Float),
                None,
                None,
                Reduction::Mean,
            ),
            SegLoss::BceDice => {
                SegLoss::Bce.compute(logits, target) + SegLoss::Dice.compute(logits, target)
            }
            SegLoss::AllSlices {
                alpha,
                beta,
                bce,
                detect,
            } => {
                let has = target
                    .flatten(1, -1)
                    .amax(1, false)
                    .gt(0.5)
                    .to_kind(Kind::Float);
                let tumour_slices = has.sum(Kind::Float).clamp_min(1.0);
                let tversky = (one_minus(&tversky_index(logits, target, alpha, beta)) * &has)
                    .sum(Kind::Float)
                    / tumour_slices;
                let pixels = SegLoss::Bce.compute(logits, target);
                let slices = detection_logit(logits).binary_cross_entropy_with_logits::<Tensor>(
                    &has,
                    None,
                    None,
                    Reduction::Mean,
                );
                tversky + pixels * bce + slices * detect
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Logits so large that sigmoid is 0 or 1 to float precision.
    fn hard(p: &[f32]) -> Tensor {
        Tensor::from_slice(
            &p.iter()
                .map(|&v| if v > 0.5 { 40.0 } else { -40.0 })
                .collect::<Vec<f32>>(),
        )
        .view([1, 1, 1, p.len() as i64])
    }

    fn mask(g: &[f32]) -> Tensor {
        Tensor::from_slice(g).view([1, 1, 1, g.len() as i64])
    }

    fn value(t: Tensor) -> f64 {
        t.double_value(&[])
    }

    #[test]
    fn tversky_matches_hand_computation() {
        // pred 1 1 1 0 0, truth 0 1 1 1 1: TP 2, FN 2, FP 1.
        let (p, g) = (hard(&[1., 1., 1., 0., 0.]), mask(&[0., 1., 1., 1., 1.]));
        let expected = 1.0 - (2.0 + 1.0) / (2.0 + 0.7 * 2.0 + 0.3 * 1.0 + 1.0);
        assert!((value(SegLoss::default().compute(&p, &g)) - expected).abs() < 1e-6);
        let dice = 1.0 - (2.0 + 1.0) / (2.0 + 0.5 * 2.0 + 0.5 * 1.0 + 1.0);
        assert!((value(SegLoss::Dice.compute(&p, &g)) - dice).abs() < 1e-6);
        let focal = SegLoss::FocalTversky {
            alpha: 0.7,
            beta: 0.3,
            gamma: 0.75,
        };
        assert!((value(focal.compute(&p, &g)) - expected.powf(0.75)).abs() < 1e-6);
    }

    #[test]
    fn soft_probabilities_hand_computed() {
        // p = sigmoid(0) = 0.5 everywhere, truth 1 0: TP .5, FN .5, FP .5.
        let p = Tensor::zeros([1, 1, 1, 2], (Kind::Float, tch::Device::Cpu));
        let g = mask(&[1., 0.]);
        let ti = (0.5 + 1.0) / (0.5 + 0.7 * 0.5 + 0.3 * 0.5 + 1.0);
        assert!((value(SegLoss::default().compute(&p, &g)) - (1.0 - ti)).abs() < 1e-6);
        let bce = -(0.5f64).ln();
        assert!((value(SegLoss::Bce.compute(&p, &g)) - bce).abs() < 1e-6);
        let dice = 1.0 - (0.5 + 1.0) / (0.5 + 0.25 + 0.25 + 1.0);
        assert!((value(SegLoss::BceDice.compute(&p, &g)) - (bce + dice)).abs() < 1e-6);
    }

    #[test]
    fn missed_tumour_costs_more_than_false_alarm() {
        // Both predictions get 2 tumour pixels right and 2 pixels wrong:
        // A misses 2 tumour pixels, B raises 2 false alarms.
        let missed = (
            hard(&[1., 1., 0., 0., 0., 0.]),
            mask(&[1., 1., 1., 1., 0., 0.]),
        );
        let false_alarm = (
            hard(&[1., 1., 1., 1., 0., 0.]),
            mask(&[1., 1., 0., 0., 0., 0.]),
        );
        let loss = |l: SegLoss, (p, g): &(Tensor, Tensor)| value(l.compute(p, g));
        let (m, f) = (
            loss(SegLoss::default(), &missed),
            loss(SegLoss::default(), &false_alarm),
        );
        assert!((m - (1.0 - 3.0 / 4.4)).abs() < 1e-6 && (f - (1.0 - 3.0 / 3.6)).abs() < 1e-6);
        assert!(m > f, "missed {m} should cost more than false alarm {f}");
        // Dice weighs both the same.
        let (dm, df) = (
            loss(SegLoss::Dice, &missed),
            loss(SegLoss::Dice, &false_alarm),
        );
        assert!((dm - df).abs() < 1e-6 && (dm - 0.25).abs() < 1e-6);
    }

    #[test]
    fn empty_truth_predicted_empty_is_free_and_losses_have_gradients() {
        let g = mask(&[0., 0., 0.]);
        assert!(value(SegLoss::default().compute(&hard(&[0., 0., 0.]), &g)).abs() < 1e-6);
        let logits =
            Tensor::zeros([2, 1, 4, 4], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
        let target = Tensor::ones([2, 1, 4, 4], (Kind::Float, tch::Device::Cpu));
        for loss in [
            SegLoss::default(),
            SegLoss::FocalTversky {
                alpha: 0.7,
                beta: 0.3,
                gamma: 0.75,
            },
            SegLoss::Dice,
            SegLoss::Bce,
            SegLoss::BceDice,
            SegLoss::all_slices(),
        ] {
            let l = loss.compute(&logits, &target);
            let grads = Tensor::run_backward(&[l], &[&logits], false, false);
            // Raising a logit of a tumour pixel must lower every loss.
            assert!(grads[0].max().double_value(&[]) < 0.0, "{loss:?}");
        }
    }

    #[test]
    fn all_slices_loss_by_hand_and_a_false_alarm_on_a_clear_slice_costs() {
        // Two 1x20 slices: a tumour slice predicted exactly, a clear slice
        // predicted clear. Tversky 0 (only the tumour slice counts), BCE
        // about 0, detection about 0.
        let tumour: Vec<f32> = (0..20).map(|i| f32::from(i < 5)).collect();
        let clear = vec![0.0f32; 20];
        let t = Tensor::cat(&[mask(&tumour), mask(&clear)], 0);
        let perfect = Tensor::cat(&[hard(&tumour), hard(&clear)], 0);
        assert!(value(SegLoss::all_slices().compute(&perfect, &t)) < 1e-4);
        // The same with 3 false-alarm pixels on the clear slice: its
        // detection score is the mean of its 4 largest logits, (3 x 40 -
        // 40) / 4 = 20, "tumour", which costs BCE(20, 0) = 20 over the
        // two slices, 10; pixel BCE adds 3 x 40 / 40 pixels = 3.
        let mut alarm = clear.clone();
        alarm[..3].fill(1.0);
        let noisy = Tensor::cat(&[hard(&tumour), hard(&alarm)], 0);
        let v = value(SegLoss::all_slices().compute(&noisy, &t));
        assert!((v - 13.0).abs() < 1e-3, "{v}");
        // Half the tumour slice missed: Tversky of that slice alone.
        let mut half = tumour.clone();
        half[3..5].fill(0.0);
        let miss = Tensor::cat(&[hard(&half), hard(&clear)], 0);
        let ti = (3.0 + 1.0) / (3.0 + 0.7 * 2.0 + 1.0);
        let bce = 2.0 * 40.0 / 40.0;
        let v = value(SegLoss::all_slices().compute(&miss, &t));
        assert!((v - (1.0 - ti + bce)).abs() < 1e-3, "{v}");
        assert_eq!(
            value(detection_logit(&Tensor::cat(&[hard(&tumour), hard(&alarm)], 0)).select(0, 1)),
            20.0
        );
    }
}
