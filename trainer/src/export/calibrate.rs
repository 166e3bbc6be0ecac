//! Activation ranges for static int8 quantisation, from the lowered IR run
//! in tch over calibration slices.

use super::lower::Lowered;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RangeMethod {
    /// Smallest and largest value seen.
    MinMax,
    /// The `low`..`high` percentiles of the values seen (e.g. 0.01 / 99.99):
    /// a few outliers no longer stretch the scale for everyone else. On the
    /// segmenter this clips exactly what matters (hyperintense lesions are
    /// the rare large activations) and costs Dice; see docs/QUANTISATION.md.
    Percentile { low: f64, high: f64 },
    /// The min-max range shrunk by the factor (0.30..=1.00, steps of 0.025)
    /// whose uint8 rounding and clipping error (sum of squares over the
    /// values seen) is smallest; ties keep the wider range.
    Mse,
}

/// Shrink factors tried by [`RangeMethod::Mse`], widest first.
fn mse_factors() -> impl Iterator<Item = f32> {
    (0..=28).map(|i| 1.0 - 0.025 * i as f32)
}

/// Squared error of storing `values` as uint8 over `range`.
pub fn quantisation_sse(values: &[f32], range: (f32, f32)) -> f64 {
    let (scale, zp) = super::quantize::activation_params(range);
    let zp = f32::from(zp);
    values
        .iter()
        .map(|&v| {
            let q = ((v / scale).round() + zp).clamp(0.0, 255.0);
            let back = (q - zp) * scale;
            f64::from(back - v).powi(2)
        })
        .sum()
}

/// The range from `minmax` (shrunk by one of [`mse_factors`]) with the least
/// uint8 error over `values`.
pub fn mse_range(values: &[f32], (lo, hi): (f32, f32)) -> (f32, f32) {
    let mut best = ((lo, hi), f64::INFINITY);
    for f in mse_factors() {
        let r = (lo * f, hi * f);
        let e = quantisation_sse(values, r);
        if e < best.1 {
            best = (r, e);
        }
    }
    best.0
}

/// At most this many values kept per tensor for percentiles (evenly strided).
const SAMPLE_CAP: usize = 1 << 20;

/// Per-value observed range (index = `Val`); always contains zero so that
/// zero is exactly representable (padding, ReLU).
pub fn calibrate(l: &Lowered, inputs: &[Vec<f32>], method: RangeMethod) -> Vec<(f32, f32)> {
    let n_vals = l.ops.len() + 1;
    let mut samples: Vec<Vec<f32>> = vec![Vec::new(); n_vals];
    let mut minmax = vec![(0.0f32, 0.0f32); n_vals];
    let shape = l.input_shape;
    let per_image_cap = SAMPLE_CAP / inputs.len().max(1);
    for input in inputs {
        let x = Tensor::from_slice(input).view(shape);
        for (k, v) in l.evaluate_all(&x).iter().enumerate() {
            let flat = v.to_device(Device::Cpu).to_kind(Kind::Float).flatten(0, -1);
            let vals = Vec::<f32>::try_from(&flat).expect("float values");
            let (lo, hi) = vals
                .iter()
                .fold(minmax[k], |(a, b), &x| (a.min(x), b.max(x)));
            minmax[k] = (lo, hi);
            if method != RangeMethod::MinMax {
                let stride = (vals.len() / per_image_cap.max(1)).max(1);
                samples[k].extend(vals.iter().step_by(stride));
            }
        }
    }
    match method {
        RangeMethod::MinMax => minmax,
        RangeMethod::Mse => samples
            .iter()
            .zip(&minmax)
            .map(|(s, &r)| mse_range(s, r))
            .collect(),
        RangeMethod::Percentile { low, high } => samples
            .into_iter()
            .map(|mut s| {
                if s.is_empty() {
                    return (0.0, 0.0);
                }
                s.sort_by(f32::total_cmp);
                let at = |p: f64| s[((p / 100.0) * (s.len() - 1) as f64).round() as usize];
                (at(low).min(0.0), at(high).max(0.0))
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mse_keeps_the_full_range_for_evenly_spread_values() {
        let v: Vec<f32> = (0..=1000).map(|i| i as f32 / 100.0).collect();
        let (lo, hi) = mse_range(&v, (0.0, 10.0));
        assert_eq!(lo, 0.0);
        assert!((hi - 10.0).abs() < 1e-6, "{hi}");
    }

    #[test]
    fn mse_clips_a_lone_outlier() {
        // 400k values in 0..1 and one at 100: over a range of 100 every
        // value loses more to rounding, summed, than clipping the one
        // outlier costs (with far fewer values the full range would win).
        let mut v: Vec<f32> = (0..400_000).map(|i| (i % 1000) as f32 / 1000.0).collect();
        v.push(100.0);
        let (_, hi) = mse_range(&v, (0.0, 100.0));
        assert!(hi < 100.0, "{hi}");
        assert!(
            quantisation_sse(&v, (0.0, hi)) < quantisation_sse(&v, (0.0, 100.0)),
            "the chosen range must lose less than min-max"
        );
    }

    #[test]
    fn sse_is_zero_on_the_grid_and_grows_when_clipping() {
        let v = [0.0f32, 1.0, 2.0, 255.0];
        assert!(quantisation_sse(&v, (0.0, 255.0)) < 1e-6);
        assert!(quantisation_sse(&v, (0.0, 127.5)) > 1e3);
    }
}
