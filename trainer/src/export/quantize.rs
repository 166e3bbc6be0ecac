//! Static post-training int8 quantisation of the lowered IR, written in the
//! ONNX operator form tract executes with integer kernels: QLinearConv with
//! per-channel symmetric int8 weights, per-tensor asymmetric uint8
//! activations and int32 biases. Only standard ONNX ops (no QLinearAdd,
//! which tract lacks): residual adds, concatenations and the dense head run
//! in float between DequantizeLinear and QuantizeLinear.

use super::calibrate::RangeMethod;
use super::graph::{attr_int, GraphBuilder};
use super::lower::{Lowered, Op, Val};
use super::onnx_f32::{conv_attrs, relu_if, upsample};
use serde::{Deserialize, Serialize};
use tract_onnx::pb::ModelProto;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QuantSettings {
    pub method: RangeMethod,
    /// Keep the first convolution in float (it sees raw intensities).
    pub float_first: bool,
    /// Keep the last convolution in float (it writes the logits).
    pub float_last: bool,
}

impl Default for QuantSettings {
    /// Min-max ranges: percentile clipping cost the segmenter 0.02 Dice (it
    /// saturates the rare large activations that lesions produce);
    /// docs/QUANTISATION.md has the measurements.
    fn default() -> Self {
        Self {
            method: RangeMethod::MinMax,
            float_first: false,
            float_last: true,
        }
    }
}

/// uint8 affine parameters for a range that contains zero.
pub fn activation_params((lo, hi): (f32, f32)) -> (f32, u8) {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let scale = ((hi - lo) / 255.0).max(1e-8);
    let zp = (-lo / scale).round().clamp(0.0, 255.0) as u8;
    (scale, zp)
}

/// Symmetric per-output-channel int8 weights: (values, scale per channel).
pub fn quantise_weights(weight: &[f32], out_channels: usize) -> (Vec<i8>, Vec<f32>) {
    let per = weight.len() / out_channels;
    let mut q = Vec::with_capacity(weight.len());
    let mut scales = Vec::with_capacity(out_channels);
    for o in 0..out_channels {
        let w = &weight[o * per..(o + 1) * per];
        let max = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let s = if max > 0.0 { max / 127.0 } else { 1.0 };
        scales.push(s);
        q.extend(w.iter().map(|v| (v / s).round().clamp(-127.0, 127.0) as i8));
    }
    (q, scales)
}

/// Largest bias magnitude stored, in units of `x_scale * w_scale`: a margin
/// below `i32::MAX` so the accumulator (bias plus products) has room.
const BIAS_LIMIT: f32 = (1u32 << 30) as f32;

/// A QLinearConv's int8 weights, per-channel weight scales and int32 bias
/// for an input scale `x_scale`. The bias is stored in units of
/// `x_scale * w_scale[o]`; where a channel's weights are tiny (or all zero)
/// next to its bias, that unit is so small that the bias would overflow
/// int32 and be clamped — a silently wrong output. There the weight scale is
/// raised until the bias fits (the weights, near zero, lose nothing that
/// matters).
pub fn quantise_conv(
    weight: &[f32],
    bias: &[f32],
    out_channels: usize,
    x_scale: f32,
) -> (Vec<i8>, Vec<f32>, Vec<i32>) {
    assert_eq!(bias.len(), out_channels, "one bias per output channel");
    let per = weight.len() / out_channels;
    let mut q = Vec::with_capacity(weight.len());
    let mut scales = Vec::with_capacity(out_channels);
    let mut bq = Vec::with_capacity(out_channels);
    for (o, &b) in bias.iter().enumerate() {
        let w = &weight[o * per..(o + 1) * per];
        let max = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let for_bias = b.abs() / (x_scale * BIAS_LIMIT);
        let s = (max / 127.0).max(for_bias);
        let s = if s > 0.0 && s.is_finite() { s } else { 1.0 };
        scales.push(s);
        q.extend(w.iter().map(|v| (v / s).round().clamp(-127.0, 127.0) as i8));
        bq.push((b / (x_scale * s)).round().clamp(-BIAS_LIMIT, BIAS_LIMIT) as i32);
    }
    (q, scales, bq)
}

/// Where a value lives in the int8 graph.
#[derive(Debug, Clone, Default)]
struct Slot {
    float: Option<String>,
    quant: Option<(String, f32, u8)>,
}

struct Writer<'a> {
    g: GraphBuilder,
    slots: Vec<Slot>,
    ranges: &'a [(f32, f32)],
}

impl Writer<'_> {
    fn quantised(&mut self, v: Val) -> (String, f32, u8) {
        if let Some(q) = &self.slots[v].quant {
            return q.clone();
        }
        let (scale, zp) = activation_params(self.ranges[v]);
        let f = self.float(v);
        let s = self.g.f32s("q_scale", &[], &[scale]);
        let z = self.g.u8s("q_zp", &[], &[zp]);
        let name = self.g.node("QuantizeLinear", &[&f, &s, &z], vec![], "q");
        let q = (name, scale, zp);
        self.slots[v].quant = Some(q.clone());
        q
    }

    fn float(&mut self, v: Val) -> String {
        if let Some(f) = &self.slots[v].float {
            return f.clone();
        }
        let (q, scale, zp) = self.slots[v]
            .quant
            .clone()
            .expect("value is float or quantised");
        let s = self.g.f32s("dq_scale", &[], &[scale]);
        let z = self.g.u8s("dq_zp", &[], &[zp]);
        let name = self.g.node("DequantizeLinear", &[&q, &s, &z], vec![], "dq");
        self.slots[v].float = Some(name.clone());
        name
    }

    fn set_float(&mut self, name: String) {
        self.slots.push(Slot {
            float: Some(name),
            quant: None,
        });
    }

    fn set_quant(&mut self, q: (String, f32, u8)) {
        self.slots.push(Slot {
            float: None,
            quant: Some(q),
        });
    }
}

/// Writes the int8 graph; `ranges[v]` is the calibrated range of value `v`.
pub fn to_onnx_int8(
    l: &Lowered,
    ranges: &[(f32, f32)],
    settings: &QuantSettings,
    graph_name: &str,
    input_name: &str,
    output_name: &str,
    metadata: &[(String, String)],
) -> ModelProto {
    assert_eq!(ranges.len(), l.ops.len() + 1, "one range per value");
    let convs: Vec<usize> = l
        .ops
        .iter()
        .enumerate()
        .filter(|(_, o)| matches!(o, Op::Conv { .. }))
        .map(|(k, _)| k)
        .collect();
    let (first, last) = (convs.first().copied(), convs.last().copied());
    let mut w = Writer {
        g: GraphBuilder::new(),
        slots: vec![Slot {
            float: Some(input_name.to_string()),
            quant: None,
        }],
        ranges,
    };
    for (k, op) in l.ops.iter().enumerate() {
        let out_val = k + 1;
        match op {
            Op::Conv {
                input,
                weight,
                shape,
                bias,
                stride,
                pad,
                relu,
            } => {
                let keep_float = (settings.float_first && Some(k) == first)
                    || (settings.float_last && Some(k) == last);
                if keep_float {
                    let x = w.float(*input);
                    let wt = w.g.f32s("w", shape, weight);
                    let b = w.g.f32s("b", &[shape[0]], bias);
                    let y = w.g.node(
                        "Conv",
                        &[&x, &wt, &b],
                        conv_attrs(shape[2], *stride, *pad),
                        "conv",
                    );
                    let y = relu_if(&mut w.g, y, *relu);
                    w.set_float(y);
                    continue;
                }
                let (x, xs, xz) = w.quantised(*input);
                let o = shape[0] as usize;
                let (wq, ws, bq) = quantise_conv(weight, bias, o, xs);
                // A fused ReLU clips at zero: quantising the output over the
                // post-ReLU range makes saturation do the clipping.
                let (ys, yz) = activation_params(ranges[out_val]);
                let xs_n = w.g.f32s("x_scale", &[], &[xs]);
                let xz_n = w.g.u8s("x_zp", &[], &[xz]);
                let w_n = w.g.i8s("w_q", shape, &wq);
                let ws_n = w.g.f32s("w_scale", &[shape[0]], &ws);
                let wz_n = w.g.i8s("w_zp", &[shape[0]], &vec![0i8; o]);
                let ys_n = w.g.f32s("y_scale", &[], &[ys]);
                let yz_n = w.g.u8s("y_zp", &[], &[yz]);
                let b_n = w.g.i32s("b_q", &[shape[0]], &bq);
                let y = w.g.node(
                    "QLinearConv",
                    &[&x, &xs_n, &xz_n, &w_n, &ws_n, &wz_n, &ys_n, &yz_n, &b_n],
                    conv_attrs(shape[2], *stride, *pad),
                    "qconv",
                );
                w.set_quant((y, ys, yz));
            }
            Op::Add { a, b, relu } => {
                let (fa, fb) = (w.float(*a), w.float(*b));
                let y = w.g.node("Add", &[&fa, &fb], vec![], "add");
                let y = relu_if(&mut w.g, y, *relu);
                w.set_float(y);
            }
            Op::MaxPool {
                input,
                kernel,
                stride,
                pad,
            } => {
                // Max commutes with a monotonic affine map: pool the bytes.
                let (x, s, z) = w.quantised(*input);
                let y = w.g.node(
                    "MaxPool",
                    &[&x],
                    conv_attrs(*kernel, *stride, *pad),
                    "qpool",
                );
                w.set_quant((y, s, z));
            }
            Op::Upsample2x { input } => {
                let x = w.float(*input);
                let y = upsample(&mut w.g, &x);
                w.set_float(y);
            }
            Op::Concat { a, b } => {
                let (fa, fb) = (w.float(*a), w.float(*b));
                let y =
                    w.g.node("Concat", &[&fa, &fb], vec![attr_int("axis", 1)], "cat");
                w.set_float(y);
            }
            Op::GlobalAvgPool { input } => {
                let x = w.float(*input);
                let p = w.g.node("GlobalAveragePool", &[&x], vec![], "gap");
                let y =
                    w.g.node("Flatten", &[&p], vec![attr_int("axis", 1)], "flat");
                w.set_float(y);
            }
            Op::Dense {
                input,
                weight,
                shape,
                bias,
                relu,
            } => {
                let x = w.float(*input);
                let wt = w.g.f32s("fc_w", shape, weight);
                let b = w.g.f32s("fc_b", &[shape[0]], bias);
                let y =
                    w.g.node("Gemm", &[&x, &wt, &b], vec![attr_int("transB", 1)], "gemm");
                let y = relu_if(&mut w.g, y, *relu);
                w.set_float(y);
            }
        }
    }
    let out = w.float(l.output);
    w.g.rename_output(&out, output_name);
    w.g.finish(
        graph_name,
        (input_name, &l.input_shape),
        &[(output_name, &l.output_shape)],
        metadata,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_params_keep_zero_exact() {
        let (s, z) = activation_params((-1.0, 3.0));
        assert!((s - 4.0 / 255.0).abs() < 1e-7);
        assert_eq!(z, 64);
        assert_eq!(activation_params((0.0, 5.0)).1, 0);
        let (s, z) = activation_params((0.0, 0.0));
        assert!(s > 0.0 && z == 0);
    }

    #[test]
    fn per_channel_weights_use_the_full_int8_range() {
        let w = [0.5, -1.0, 0.25, 0.01, 0.02, -0.04];
        let (q, s) = quantise_weights(&w, 2);
        assert_eq!(&q[..3], &[64, -127, 32]);
        assert_eq!(q[5], -127);
        assert!((s[0] - 1.0 / 127.0).abs() < 1e-9 && (s[1] - 0.04 / 127.0).abs() < 1e-9);
        let back: Vec<f32> = q
            .iter()
            .enumerate()
            .map(|(i, &v)| v as f32 * s[i / 3])
            .collect();
        for (a, b) in back.iter().zip(&w) {
            assert!((a - b).abs() <= 0.5 * s[0] + 1e-9);
        }
    }

    fn dequantised_bias(bq: &[i32], ws: &[f32], xs: f32) -> Vec<f32> {
        bq.iter()
            .zip(ws)
            .map(|(&b, &s)| b as f32 * xs * s)
            .collect()
    }

    #[test]
    fn conv_quantisation_matches_the_weight_quantiser_on_ordinary_channels() {
        let w = [0.5, -1.0, 0.25, 0.01, 0.02, -0.04];
        let b = [0.3, -0.2];
        let xs = 1.0 / 255.0;
        let (q, s, bq) = quantise_conv(&w, &b, 2, xs);
        assert_eq!((q.clone(), s.clone()), quantise_weights(&w, 2));
        // Within half a unit of each channel's own bias scale.
        for ((got, want), ws) in dequantised_bias(&bq, &s, xs).iter().zip(&b).zip(&s) {
            assert!(
                (got - want).abs() <= 0.5 * xs * ws + 1e-6,
                "{got} vs {want}"
            );
        }
    }

    #[test]
    fn bias_of_a_near_zero_channel_does_not_overflow_int32() {
        // Channel 0: weights of 1e-12 beside a bias of 2 would need a bias
        // of ~2e16 weight-scale units; channel 1 is all zero with a bias.
        let w = [1e-12, -1e-12, 0.0, 0.0];
        let b = [2.0, -0.7];
        let xs = 0.01;
        let (q, s, bq) = quantise_conv(&w, &b, 2, xs);
        assert!(s.iter().all(|v| v.is_finite() && *v > 0.0), "{s:?}");
        assert!(bq.iter().all(|v| v.unsigned_abs() <= 1 << 30), "{bq:?}");
        let back = dequantised_bias(&bq, &s, xs);
        assert!((back[0] - 2.0).abs() < 1e-4, "{back:?}");
        assert!((back[1] + 0.7).abs() < 1e-4, "{back:?}");
        // The tiny weights round to zero rather than to garbage.
        assert!(q.iter().all(|&v| v == 0), "{q:?}");
    }

    #[test]
    fn all_zero_channel_without_bias_gets_a_unit_scale() {
        let (q, s, bq) = quantise_conv(&[0.0; 4], &[0.0], 1, 0.1);
        assert_eq!((q, s, bq), (vec![0; 4], vec![1.0], vec![0]));
    }
}
