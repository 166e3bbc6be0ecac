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
    /// a few outliers no longer stretch the scale for everyone else.
    Percentile { low: f64, high: f64 },
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
            if let RangeMethod::Percentile { .. } = method {
                let stride = (vals.len() / per_image_cap.max(1)).max(1);
                samples[k].extend(vals.iter().step_by(stride));
            }
        }
    }
    match method {
        RangeMethod::MinMax => minmax,
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
