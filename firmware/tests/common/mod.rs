//! Tiny ONNX models, manifests and slices for the engine and CLI tests.
//!
//! The shipped models' answers depend on their training, so these tests
//! build models whose answers are known by construction: brightness is
//! "tumour".
//! - segmenter: a 1x1 Conv, logit = gain * mean(r, g, b) + bias per pixel;
//! - filter: GlobalAveragePool -> Flatten -> Gemm to the logits
//!   [clear, tumour] = [0, gain * mean of the whole input + bias].
//!
//! The int8 files compute the same: the segmenter as a QLinearConv (tract
//! runs it on its int8 matmul kernels), the filter with int8 weights behind
//! DequantizeLinear and a QuantizeLinear/DequantizeLinear pair on the input
//! (tract keeps that one in float).
//!
//! Shared by the unit tests (`engine::test_models`) and the integration
//! tests; each uses part of it.
#![allow(dead_code)]

use image::{GrayImage, Luma};
use models::integrity::sha256_file;
use prost::Message;
use std::path::{Path, PathBuf};
use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;

/// Side of the square model input.
pub const INPUT: i64 = 64;

/// A segmenter logit of `SEG_GAIN * x + SEG_BIAS` puts the mask edge at
/// x = 0.5, half way between the slices' background and blob intensities.
pub const SEG_GAIN: f32 = 10.0;
pub const SEG_BIAS: f32 = -5.0;
/// The filter flags a slice whose mean input (padding included) exceeds
/// 0.11: a 20-px blob on a 100x80 slice gives about 0.165, the dark slice
/// about 0.06.
pub const FILTER_GAIN: f32 = 100.0;
pub const FILTER_BIAS: f32 = -11.0;

pub const BACKGROUND: u8 = 20;
pub const BLOB: u8 = 230;

#[derive(Debug, Clone)]
pub struct ModelSet {
    pub filter: bool,
    pub segmenter_bias: f32,
    pub f32_files: bool,
    pub int8_files: bool,
    /// The segmenter's `min_mask_px` in the manifest (0: left out).
    pub min_mask_px: usize,
}

impl Default for ModelSet {
    fn default() -> Self {
        Self {
            filter: true,
            segmenter_bias: SEG_BIAS,
            f32_files: true,
            int8_files: false,
            min_mask_px: 0,
        }
    }
}

/// Writes the models and `manifest.json` (with their sha256) into `dir`;
/// returns the manifest's path.
pub fn write_model_set(dir: &Path, set: &ModelSet) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut entries = Vec::new();
    let mut write = |name: &str, role: &str, f32_bytes: Vec<u8>, int8_bytes: Vec<u8>| {
        let mut files = Vec::new();
        for (on, precision, bytes) in [
            (set.f32_files, "f32", f32_bytes),
            (set.int8_files, "int8", int8_bytes),
        ] {
            if on {
                let file = format!("{name}_{precision}.onnx");
                std::fs::write(dir.join(&file), bytes).unwrap();
                let sha = sha256_file(&dir.join(&file)).unwrap();
                files
                    .push(serde_json::json!({"precision": precision, "path": file, "sha256": sha}));
            }
        }
        let (output, shape, classes) = if role == "filter" {
            ("class_logits", vec![1, 2], vec!["clear", "tumour"])
        } else {
            ("mask_logits", vec![1, 1, INPUT, INPUT], vec!["tumour"])
        };
        entries.push(serde_json::json!({
            "name": name,
            "role": role,
            "architecture": format!("test_{role}"),
            "files": files,
            "input": {
                "name": "image",
                "shape": [1, 3, INPUT, INPUT],
                "layout": "NCHW",
                "channels": ["t1_pre", "flair", "t1_post"],
                "preprocessing": {"resize": "letterbox", "normalisation": {"kind": "unit_range"}},
            },
            "output": {"name": output, "shape": shape, "kind": "logits", "classes": classes},
            "threshold": 0.5,
        }));
        if role == "segmenter" && set.min_mask_px > 0 {
            entries.last_mut().unwrap()["min_mask_px"] = set.min_mask_px.into();
        }
    };
    write(
        "seg",
        "segmenter",
        segmenter_onnx(SEG_GAIN, set.segmenter_bias, false),
        segmenter_onnx(SEG_GAIN, set.segmenter_bias, true),
    );
    if set.filter {
        write(
            "filter",
            "filter",
            filter_onnx(FILTER_GAIN, FILTER_BIAS, false),
            filter_onnx(FILTER_GAIN, FILTER_BIAS, true),
        );
    }
    let manifest = serde_json::json!({
        "format_version": 1,
        "pipeline": {"filter": set.filter.then_some("filter"), "segmenter": "seg"},
        "models": entries,
    });
    let path = dir.join("manifest.json");
    std::fs::write(&path, serde_json::to_string_pretty(&manifest).unwrap()).unwrap();
    path
}

pub fn segmenter_onnx(gain: f32, bias: f32, int8: bool) -> Vec<u8> {
    let weights = vec![gain / 3.0; 3];
    if int8 {
        return segmenter_qlinear(weights, bias);
    }
    let init = vec![
        tensor_f32("w", &[1, 3, 1, 1], weights),
        tensor_f32("b", &[1], vec![bias]),
    ];
    let nodes = vec![node("Conv", &["image", "w", "b"], "mask_logits", vec![])];
    encode(graph(nodes, init, "mask_logits", &[1, 1, INPUT, INPUT]))
}

/// The segmenter as a static-quantisation exporter writes it in operator
/// form: quantise the input, an integer QLinearConv, dequantise the logits.
/// This is the form tract runs on integer kernels (Q/DQ pairs around a float
/// Conv stay float in tract).
fn segmenter_qlinear(weights: Vec<f32>, bias: f32) -> Vec<u8> {
    let x_scale = 1.0 / 127.0;
    let (w_q, w_scale) = quantise(&weights);
    // Logits span about -5..+5 here; +-20 leaves headroom.
    let y_scale = 20.0 / 127.0;
    let init = vec![
        tensor_f32("x_scale", &[], vec![x_scale]),
        tensor_i8("x_zero", &[], vec![0]),
        tensor_i8("w_q", &[1, 3, 1, 1], w_q),
        tensor_f32("w_scale", &[], vec![w_scale]),
        tensor_i8("w_zero", &[], vec![0]),
        tensor_f32("y_scale", &[], vec![y_scale]),
        tensor_i8("y_zero", &[], vec![0]),
        pb::TensorProto {
            name: "b_q".into(),
            dims: vec![1],
            data_type: DataType::Int32 as i32,
            int32_data: vec![(bias / (x_scale * w_scale)).round() as i32],
            ..Default::default()
        },
    ];
    let nodes = vec![
        node(
            "QuantizeLinear",
            &["image", "x_scale", "x_zero"],
            "x_q",
            vec![],
        ),
        node(
            "QLinearConv",
            &[
                "x_q", "x_scale", "x_zero", "w_q", "w_scale", "w_zero", "y_scale", "y_zero", "b_q",
            ],
            "y_q",
            vec![],
        ),
        node(
            "DequantizeLinear",
            &["y_q", "y_scale", "y_zero"],
            "mask_logits",
            vec![],
        ),
    ];
    encode(graph(nodes, init, "mask_logits", &[1, 1, INPUT, INPUT]))
}

/// Symmetric per-tensor int8: the largest magnitude maps to 127.
fn quantise(values: &[f32]) -> (Vec<i8>, f32) {
    let max = values
        .iter()
        .fold(0.0f32, |m, v| m.max(v.abs()))
        .max(f32::MIN_POSITIVE);
    let scale = max / 127.0;
    (
        values.iter().map(|v| (v / scale).round() as i8).collect(),
        scale,
    )
}

pub fn filter_onnx(gain: f32, bias: f32, int8: bool) -> Vec<u8> {
    // Column 0 (clear) is all zeros, column 1 (tumour) averages the channels.
    let weights = (0..3).flat_map(|_| [0.0, gain / 3.0]).collect();
    let mut nodes = Vec::new();
    let mut init = vec![tensor_f32("c", &[2], vec![0.0, bias])];
    let x = quantised_input(int8, &mut nodes, &mut init);
    let w = weight(int8, "w", &[3, 2], weights, &mut nodes, &mut init);
    nodes.push(node("GlobalAveragePool", &[&x], "pooled", vec![]));
    nodes.push(node(
        "Flatten",
        &["pooled"],
        "flat",
        vec![int_attr("axis", 1)],
    ));
    nodes.push(node("Gemm", &["flat", &w, "c"], "class_logits", vec![]));
    encode(graph(nodes, init, "class_logits", &[1, 2]))
}

/// The input as the graph uses it: `image` itself, or for int8 `image`
/// quantised to int8 in steps of 1/127 and dequantised again.
fn quantised_input(
    int8: bool,
    nodes: &mut Vec<pb::NodeProto>,
    init: &mut Vec<pb::TensorProto>,
) -> String {
    if !int8 {
        return "image".into();
    }
    init.push(tensor_f32("x_scale", &[], vec![1.0 / 127.0]));
    init.push(tensor_i8("x_zero", &[], vec![0]));
    nodes.push(node(
        "QuantizeLinear",
        &["image", "x_scale", "x_zero"],
        "image_q",
        vec![],
    ));
    nodes.push(node(
        "DequantizeLinear",
        &["image_q", "x_scale", "x_zero"],
        "image_dq",
        vec![],
    ));
    "image_dq".into()
}

/// A weight initializer: f32 as is, or int8 behind a DequantizeLinear.
fn weight(
    int8: bool,
    name: &str,
    dims: &[i64],
    values: Vec<f32>,
    nodes: &mut Vec<pb::NodeProto>,
    init: &mut Vec<pb::TensorProto>,
) -> String {
    if !int8 {
        init.push(tensor_f32(name, dims, values));
        return name.into();
    }
    let (q, scale) = quantise(&values);
    let (qn, sn, zn) = (
        format!("{name}_q"),
        format!("{name}_scale"),
        format!("{name}_zero"),
    );
    init.push(tensor_i8(&qn, dims, q));
    init.push(tensor_f32(&sn, &[], vec![scale]));
    init.push(tensor_i8(&zn, &[], vec![0]));
    nodes.push(node("DequantizeLinear", &[&qn, &sn, &zn], name, vec![]));
    name.into()
}

fn tensor_f32(name: &str, dims: &[i64], data: Vec<f32>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Float as i32,
        float_data: data,
        ..Default::default()
    }
}

fn tensor_i8(name: &str, dims: &[i64], data: Vec<i8>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Int8 as i32,
        raw_data: data.iter().map(|v| *v as u8).collect(),
        ..Default::default()
    }
}

fn node(
    op: &str,
    inputs: &[&str],
    output: &str,
    attribute: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.into(),
        name: format!("{op}_{output}"),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute,
        ..Default::default()
    }
}

fn int_attr(name: &str, value: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i: value,
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[i64]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            value: Some(Value::DimValue(*d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn graph(
    node: Vec<pb::NodeProto>,
    initializer: Vec<pb::TensorProto>,
    output: &str,
    out_dims: &[i64],
) -> pb::GraphProto {
    pb::GraphProto {
        name: "neuroscreen_test".into(),
        node,
        initializer,
        input: vec![value_info("image", &[1, 3, INPUT, INPUT])],
        output: vec![value_info(output, out_dims)],
        ..Default::default()
    }
}

fn encode(graph: pb::GraphProto) -> Vec<u8> {
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        producer_name: "neuroscreen-tests".into(),
        graph: Some(graph),
        ..Default::default()
    }
    .encode_to_vec()
}

/// A disc in slice pixels: centre x, centre y, radius.
pub type Disc = (f32, f32, f32);

fn inside(discs: &[Disc], x: u32, y: u32) -> bool {
    discs
        .iter()
        .any(|&(cx, cy, r)| (x as f32 + 0.5 - cx).powi(2) + (y as f32 + 0.5 - cy).powi(2) <= r * r)
}

/// A grey slice: `BACKGROUND` with bright `BLOB` discs.
pub fn blob_slice(width: u32, height: u32, discs: &[Disc]) -> GrayImage {
    GrayImage::from_fn(width, height, |x, y| {
        Luma([if inside(discs, x, y) {
            BLOB
        } else {
            BACKGROUND
        }])
    })
}

/// The discs as a truth mask in row-major order.
pub fn blob_truth(width: u32, height: u32, discs: &[Disc]) -> Vec<bool> {
    (0..height)
        .flat_map(|y| (0..width).map(move |x| (x, y)))
        .map(|(x, y)| inside(discs, x, y))
        .collect()
}

/// A dark slice with a faint gradient, so it is not flat: values 10..30.
pub fn dark_slice(width: u32, height: u32) -> GrayImage {
    GrayImage::from_fn(width, height, |x, y| {
        Luma([10 + ((x + y) * 20 / (width + height)) as u8])
    })
}

/// The standard bright-blob case: a 100x80 slice with a 20-px disc.
pub const BLOB_W: u32 = 100;
pub const BLOB_H: u32 = 80;
pub const BLOB_DISC: Disc = (55.0, 38.0, 20.0);

/// The rows `scan` prints per series, between "per series" and "results:".
pub fn per_series_rows(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("per series"))
        .skip(1)
        .take_while(|l| !l.starts_with("results:"))
        .collect()
}
