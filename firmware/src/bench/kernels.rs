//! `neuroscreen bench --kernels`: every convolution of the shipped models,
//! cut out as a one-node ONNX file of the same shape (seeded weights) and
//! timed alone in tract and in onnxruntime, so the gap between the two
//! runtimes can be pinned on the kernel tract picks for each shape. The
//! files (`--write DIR`) are the reproducer to hand to tract's authors:
//! one operator, no model of ours needed to run them.
//!
//! A convolution alone is not the same work as inside the model (there the
//! input comes warm from the node before, and tract may fuse what follows),
//! so the kernel tract picks in the model is shown beside the one it picks
//! for the file alone.

use super::profile::{executor, input, node_ms, whole_runs};
use super::OrtError;
use crate::engine::model::{into_plan, keep_tract_off_amx_int8, typed_model};
use crate::error::{Error, Result};
use models::manifest::Precision;
use models::ModelEntry;
use prost::Message;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tract_onnx::pb;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::format_err;
use tract_onnx::tract_core::ops::cnn::Conv;

/// One convolution's shape, as ONNX's `Conv` states it, at a fixed input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ConvShape {
    pub cin: usize,
    pub cout: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Top, left, bottom, right.
    pub pads: [usize; 4],
    pub group: usize,
    /// Input height and width.
    pub input: [usize; 2],
}

impl ConvShape {
    pub fn output(&self) -> [usize; 2] {
        let out = |i: usize| {
            (self.input[i] + self.pads[i] + self.pads[i + 2]).saturating_sub(self.kernel[i])
                / self.stride[i]
                + 1
        };
        [out(0), out(1)]
    }

    /// Multiply-accumulates per run.
    pub fn macs(&self) -> u64 {
        let [oh, ow] = self.output();
        (self.cout * (self.cin / self.group) * self.kernel[0] * self.kernel[1] * oh * ow) as u64
    }

    /// `24->8 3x3/1 128x128` (and `g4` when grouped).
    pub fn label(&self) -> String {
        let group = if self.group > 1 {
            format!(" g{}", self.group)
        } else {
            String::new()
        };
        format!(
            "{}->{} {}x{}/{}{group} {}x{}",
            self.cin,
            self.cout,
            self.kernel[0],
            self.kernel[1],
            self.stride[0],
            self.input[0],
            self.input[1]
        )
    }

    fn file_name(&self, model: &str) -> String {
        format!(
            "{model}_{}to{}_k{}x{}_s{}x{}_p{}_{}_{}_{}_g{}_{}x{}.onnx",
            self.cin,
            self.cout,
            self.kernel[0],
            self.kernel[1],
            self.stride[0],
            self.stride[1],
            self.pads[0],
            self.pads[1],
            self.pads[2],
            self.pads[3],
            self.group,
            self.input[0],
            self.input[1]
        )
    }
}

/// A convolution node of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvNode {
    pub node: String,
    pub shape: ConvShape,
}

/// Every convolution of `model` (`entry`'s f32 file, read from `path`, at
/// its shipped input size), in graph order.
pub fn conv_nodes(entry: &ModelEntry, path: &Path, model: &TypedModel) -> Result<Vec<ConvNode>> {
    let fail = |why: String| Error::ModelLoad {
        model: entry.name.clone(),
        path: path.to_path_buf(),
        reason: why,
    };
    let mut found = Vec::new();
    for node in model.nodes() {
        let Some(conv) = node.op_as::<Conv>() else {
            continue;
        };
        let spec = &conv.pool_spec;
        let dims = model
            .outlet_fact(node.inputs[0])
            .ok()
            .and_then(|f| f.shape.as_concrete().map(|d| d.to_vec()))
            .filter(|d| d.len() == 4 && spec.kernel_shape.len() == 2)
            .ok_or_else(|| {
                fail(format!(
                    "{}: not a 2-D convolution at a fixed size",
                    node.name
                ))
            })?;
        if (0..2).any(|i| spec.dilation(i) != 1) {
            return Err(fail(format!("{}: dilated convolution", node.name)));
        }
        let input = [dims[2], dims[3]];
        // tract's own reading of the padding (explicit or SAME) at this size.
        let padded = spec.computed_padding(&input);
        let pads = [
            padded[0].pad_before,
            padded[1].pad_before,
            padded[0].pad_after,
            padded[1].pad_after,
        ];
        let stride = [spec.stride(0), spec.stride(1)];
        let kernel = [spec.kernel_shape[0], spec.kernel_shape[1]];
        found.push(ConvNode {
            node: node.name.clone(),
            shape: ConvShape {
                cin: spec.input_channels,
                cout: spec.output_channels,
                kernel,
                stride,
                pads,
                group: conv.group,
                input,
            },
        });
    }
    Ok(found)
}

/// Deterministic weights in [-0.5, 0.5): latency does not depend on them.
fn seeded(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect()
}

fn value_info(name: &str, dims: &[usize]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: pb::tensor_proto::DataType::Float as i32,
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            value: Some(Value::DimValue(d as i64)),
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

fn ints(name: &str, values: &[usize]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: values.iter().map(|&v| v as i64).collect(),
        ..Default::default()
    }
}

fn floats(name: &str, dims: &[usize], data: Vec<f32>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: pb::tensor_proto::DataType::Float as i32,
        float_data: data,
        ..Default::default()
    }
}

/// One ONNX `Conv` (with bias) of `shape`: input `x`, output `y`.
pub fn conv_onnx(shape: &ConvShape, seed: u64) -> Vec<u8> {
    let w_dims = [
        shape.cout,
        shape.cin / shape.group,
        shape.kernel[0],
        shape.kernel[1],
    ];
    let weights = seeded(w_dims.iter().product(), seed);
    let bias = seeded(shape.cout, seed ^ 0x5eed);
    let [oh, ow] = shape.output();
    let node = pb::NodeProto {
        op_type: "Conv".into(),
        name: "conv".into(),
        input: vec!["x".into(), "w".into(), "b".into()],
        output: vec!["y".into()],
        attribute: vec![
            ints("kernel_shape", &shape.kernel),
            ints("strides", &shape.stride),
            ints("pads", &shape.pads),
            ints("dilations", &[1, 1]),
            pb::AttributeProto {
                name: "group".into(),
                r#type: pb::attribute_proto::AttributeType::Int as i32,
                i: shape.group as i64,
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        producer_name: "neuroscreen bench --kernels".into(),
        graph: Some(pb::GraphProto {
            name: shape.label(),
            node: vec![node],
            initializer: vec![
                floats("w", &w_dims, weights),
                floats("b", &[shape.cout], bias),
            ],
            input: vec![value_info(
                "x",
                &[1, shape.cin, shape.input[0], shape.input[1]],
            )],
            output: vec![value_info("y", &[1, shape.cout, oh, ow])],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// The nodes of a plan that do work: its inputs and constants left out.
fn working<'a>(
    nodes: impl IntoIterator<Item = &'a TypedNode>,
) -> impl Iterator<Item = &'a TypedNode> {
    nodes
        .into_iter()
        .filter(|n| !matches!(n.op.name().as_ref(), "Source" | "Const"))
}

/// What tract runs, its operators in order (`DirectSpatialConv`,
/// `Pad+LazyIm2col+OptMatMul+IntoShape`, ...).
fn joined(ops: impl IntoIterator<Item = String>) -> String {
    let names: Vec<String> = ops.into_iter().collect();
    if names.is_empty() {
        "(none)".into()
    } else {
        names.join("+")
    }
}

/// A one-convolution file in tract, timed as the appliance runs models.
#[derive(Debug, Clone)]
pub struct TractAlone {
    /// Median ms of one run, without per-node timing.
    pub ms: f64,
    /// What tract runs for it (`DirectSpatialConv`, `Pad+LazyIm2col+OptMatMul+...`).
    pub kernels: String,
    /// ms per run of each of those operators, in plan order.
    pub parts: Vec<(String, f64)>,
    /// The output of the first run.
    pub output: Vec<f32>,
}

/// Loads `bytes` as the appliance loads a model (the input fixed at
/// `shape`, tract's optimised plan), runs it `runs` times whole, then as
/// many again with a clock around each node.
pub fn tract_alone(
    bytes: &[u8],
    shape: &ConvShape,
    threads: usize,
    runs: usize,
) -> TractResult<TractAlone> {
    // The kernels the appliance's tract may pick, whichever model loads first.
    keep_tract_off_amx_int8();
    let mut model = tract_onnx::onnx().model_for_read(&mut &*bytes)?;
    let dims = [1, shape.cin, shape.input[0], shape.input[1]];
    model.set_input_fact(0, f32::fact(dims).into())?;
    let plan = model.into_optimized()?.into_runnable()?;
    let x = input(dims).map_err(|e| format_err!("{e}"))?;
    let executor = executor(threads);
    let runs = runs.max(1);
    let (out, times) = whole_runs(&plan, &executor, &x, runs)?;
    let output: Vec<f32> = out[0]
        .to_plain_array_view::<f32>()?
        .iter()
        .copied()
        .collect();
    let per_node = node_ms(&plan, &executor, &x, runs)?;
    let parts: Vec<(String, f64)> = working(plan.model().nodes())
        .map(|n| (n.op.name().to_string(), per_node[n.id]))
        .collect();
    Ok(TractAlone {
        ms: super::Stats::median(&times).unwrap_or(f64::NAN),
        kernels: joined(parts.iter().map(|(op, _)| op.clone())),
        parts,
        output,
    })
}

/// One distinct convolution shape of one model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KernelRow {
    pub model: String,
    pub shape: ConvShape,
    /// The model's nodes of this shape.
    pub nodes: Vec<String>,
    pub macs: u64,
    pub file: String,
    /// Median ms of one run of the file alone.
    pub tract_ms: f64,
    pub onnxruntime_ms: Option<f64>,
    /// What tract runs for the file alone.
    pub tract_kernel: String,
    /// Its operators' ms per run (timed node by node, apart from `tract_ms`).
    pub tract_parts: Vec<(String, f64)>,
    /// What tract runs for the first node of this shape in the model.
    pub tract_kernel_in_model: String,
}

/// Per model and tract kernel, every node counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelTotal {
    pub model: String,
    pub tract_kernel: String,
    pub nodes: usize,
    pub tract_ms: f64,
    /// Summed over the same nodes; `None` when any of them has no peer figure.
    pub onnxruntime_ms: Option<f64>,
}

/// A whole model beside the sum of its convolutions timed alone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WholeModel {
    pub model: String,
    /// Median ms of the shipped f32 file, same threads and runs.
    pub tract_ms: f64,
    pub onnxruntime_ms: Option<f64>,
    #[serde(skip)]
    file: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KernelReport {
    pub date: String,
    pub arch: String,
    pub threads: usize,
    pub runs: usize,
    pub onnxruntime: Option<String>,
    pub onnxruntime_skipped: Option<String>,
    pub rows: Vec<KernelRow>,
    pub totals: Vec<KernelTotal>,
    pub whole: Vec<WholeModel>,
}

/// The line of `totals` that sums every convolution of a model.
const ALL_CONVOLUTIONS: &str = "all convolutions";

/// Sums rows per model and tract kernel (each row times its node count),
/// slowest first within a model, then an `all convolutions` line per model.
pub fn totals(rows: &[KernelRow]) -> Vec<KernelTotal> {
    let mut models: Vec<&str> = Vec::new();
    for r in rows {
        if !models.contains(&r.model.as_str()) {
            models.push(&r.model);
        }
    }
    let mut out = Vec::new();
    for model in models {
        let mine: Vec<&KernelRow> = rows.iter().filter(|r| r.model == model).collect();
        let sum = |rs: &[&KernelRow]| {
            let n = |r: &KernelRow| r.nodes.len() as f64;
            KernelTotal {
                model: model.to_string(),
                tract_kernel: String::new(),
                nodes: rs.iter().map(|r| r.nodes.len()).sum(),
                tract_ms: rs.iter().map(|r| r.tract_ms * n(r)).sum(),
                onnxruntime_ms: rs
                    .iter()
                    .map(|r| r.onnxruntime_ms.map(|o| o * n(r)))
                    .sum::<Option<f64>>(),
            }
        };
        let mut by: BTreeMap<&str, Vec<&KernelRow>> = BTreeMap::new();
        for r in &mine {
            by.entry(r.tract_kernel.as_str()).or_default().push(r);
        }
        let mut per: Vec<KernelTotal> = by
            .into_iter()
            .map(|(kernel, rs)| KernelTotal {
                tract_kernel: kernel.to_string(),
                ..sum(&rs)
            })
            .collect();
        per.sort_by(|a, b| b.tract_ms.total_cmp(&a.tract_ms));
        out.extend(per);
        out.push(KernelTotal {
            tract_kernel: ALL_CONVOLUTIONS.into(),
            ..sum(&mine)
        });
    }
    out
}

pub struct KernelOptions {
    pub models: PathBuf,
    pub threads: usize,
    pub runs: usize,
    /// Python with onnxruntime and `scripts/ort_bench.py`; `None` skips it.
    pub ort: Option<(PathBuf, PathBuf)>,
    /// Where the one-convolution files go (kept); else a temporary folder.
    pub write: Option<PathBuf>,
}

#[derive(Deserialize)]
struct OrtFiles {
    runtime: String,
    files: BTreeMap<String, f64>,
}

pub fn run(opts: &KernelOptions) -> Result<KernelReport> {
    let manifest = models::Manifest::load(&opts.models.join("manifest.json"))?;
    manifest.verify_files(&opts.models)?;
    let scratch;
    let folder = match &opts.write {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            dir.clone()
        }
        None => {
            scratch = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
            scratch.path().to_path_buf()
        }
    };
    let mut rows = Vec::new();
    let mut whole = Vec::new();
    for entry in &manifest.models {
        if entry.file(Precision::F32).is_none() {
            continue;
        }
        let (path, typed) = typed_model(entry, &opts.models, Precision::F32, entry.input.shape)?;
        let convs = conv_nodes(entry, &path, &typed)?;
        let plan = into_plan(entry, &path, typed)?;
        // The shipped file goes beside the one-convolution files, so the
        // peer times it in the same call.
        let file = format!("{}_whole.onnx", entry.name);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        crate::store::write_file_atomically(&folder.join(&file), &bytes)?;
        let tract_ms = time_plan(&plan, entry.input.shape, opts.threads, opts.runs)
            .map_err(|e| Error::Bench(format!("{} in tract: {e:#}", path.display())))?;
        whole.push(WholeModel {
            model: entry.name.clone(),
            tract_ms,
            onnxruntime_ms: None,
            file,
        });
        let mut shapes: Vec<(ConvShape, Vec<String>)> = Vec::new();
        for conv in convs {
            match shapes.iter_mut().find(|(s, _)| *s == conv.shape) {
                Some((_, names)) => names.push(conv.node),
                None => shapes.push((conv.shape, vec![conv.node])),
            }
        }
        for (k, (shape, nodes)) in shapes.into_iter().enumerate() {
            let file = shape.file_name(&entry.name);
            let path = folder.join(&file);
            let bytes = conv_onnx(&shape, k as u64);
            crate::store::write_file_atomically(&path, &bytes)?;
            tracing::debug!(model = %entry.name, shape = %shape.label(), "timing in tract");
            let alone = tract_alone(&bytes, &shape, opts.threads, opts.runs)
                .map_err(|e| Error::Bench(format!("{} in tract: {e:#}", path.display())))?;
            // The plan names a convolution's nodes after the ONNX node, with
            // a suffix per part (`conv_153.matmatmul`).
            let first = &nodes[0];
            let prefix = format!("{first}.");
            let tract_kernel_in_model = joined(
                working(plan.model().nodes())
                    .filter(|n| n.name == *first || n.name.starts_with(&prefix))
                    .map(|n| n.op.name().to_string()),
            );
            rows.push(KernelRow {
                model: entry.name.clone(),
                macs: shape.macs(),
                shape,
                nodes,
                file,
                tract_ms: alone.ms,
                onnxruntime_ms: None,
                tract_kernel: alone.kernels,
                tract_parts: alone.parts,
                tract_kernel_in_model,
            });
        }
    }
    let (onnxruntime, onnxruntime_skipped) = match &opts.ort {
        None => (None, Some("not asked for (--no-ort)".to_string())),
        Some((python, script)) => match super::ort_script(
            (python, script),
            &folder,
            opts.threads,
            opts.runs,
            &["--each-file".to_string()],
        )
        .and_then(|out| serde_json::from_slice::<OrtFiles>(&out).map_err(OrtError::Output))
        {
            Ok(ort) => {
                for row in &mut rows {
                    row.onnxruntime_ms = ort.files.get(&row.file).copied();
                }
                for w in &mut whole {
                    w.onnxruntime_ms = ort.files.get(&w.file).copied();
                }
                (Some(ort.runtime), None)
            }
            Err(why) => {
                tracing::warn!("onnxruntime peer skipped: {why}");
                (None, Some(why.to_string()))
            }
        },
    };
    let totals = totals(&rows);
    let report = KernelReport {
        date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        arch: std::env::consts::ARCH.into(),
        threads: opts.threads,
        runs: opts.runs,
        onnxruntime,
        onnxruntime_skipped,
        rows,
        totals,
        whole,
    };
    if opts.write.is_some() {
        // The folder is the reproducer: it says what it holds and what the
        // files took in the run that wrote them.
        let mut text = "One ONNX Conv node per file (opset 13, f32, batch 1, seeded weights and bias),\n\
             the shape of a convolution of the named model, written by `neuroscreen bench\n\
             --kernels --write`. Names: MODEL_CINtoCOUT_kKHxKW_sSHxSW_pTOP_LEFT_BOTTOM_RIGHT_gGROUP_HxW.onnx;\n\
             MODEL_whole.onnx is the model itself. What each took, in the run that wrote them:\n\n"
            .as_bytes()
            .to_vec();
        print(&report, &mut text).map_err(|e| Error::io(&folder, e))?;
        crate::store::write_file_atomically(&folder.join("README.txt"), &text)?;
    }
    Ok(report)
}

/// Median ms of `runs` runs of a plan, on the profiler's input.
fn time_plan(
    plan: &Arc<TypedRunnableModel>,
    shape: [usize; 4],
    threads: usize,
    runs: usize,
) -> TractResult<f64> {
    let x = input(shape).map_err(|e| format_err!("{e}"))?;
    let (_, times) = whole_runs(plan, &executor(threads), &x, runs.max(1))?;
    Ok(super::Stats::median(&times).unwrap_or(f64::NAN))
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.3}"))
}

/// `Pad 0.021 + OptMatMul 1.502`: the operators with their ms, or their
/// names alone where they were not timed one by one.
fn parts(r: &KernelRow) -> String {
    if r.tract_parts.is_empty() {
        return r.tract_kernel.clone();
    }
    r.tract_parts
        .iter()
        .map(|(op, ms)| format!("{op} {ms:.3}"))
        .collect::<Vec<_>>()
        .join(" + ")
}

fn ratio(t: f64, o: Option<f64>) -> String {
    o.map_or("-".into(), |o| format!("{:.2}x", t / o))
}

pub fn print(report: &KernelReport, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "each convolution of the models alone (one Conv node, seeded weights, f32), {} thread(s), median of {} runs, {}; {}",
        report.threads,
        report.runs,
        report.arch,
        report.onnxruntime.as_deref().map_or_else(
            || format!(
                "no onnxruntime: {}",
                report.onnxruntime_skipped.as_deref().unwrap_or("-")
            ),
            |r| format!("peer {r}")
        )
    )?;
    writeln!(
        out,
        "{:<10} {:>5} {:<24} {:>8} {:>9} {:>9} {:>9} {:>7}  tract's operators alone, ms each | in the model",
        "model", "nodes", "in->out kernel/stride", "MMAC", "tract ms", "ort ms", "tract/ort", "GFLOP/s"
    )?;
    let mut rows: Vec<&KernelRow> = report.rows.iter().collect();
    rows.sort_by(|a, b| {
        a.model.cmp(&b.model).then(
            (b.tract_ms * b.nodes.len() as f64).total_cmp(&(a.tract_ms * a.nodes.len() as f64)),
        )
    });
    for r in rows {
        let in_model = if r.tract_kernel_in_model == r.tract_kernel {
            "same".to_string()
        } else {
            r.tract_kernel_in_model.clone()
        };
        writeln!(
            out,
            "{:<10} {:>5} {:<24} {:>8.2} {:>9.3} {:>9} {:>9} {:>7.1}  {} | {}",
            r.model,
            r.nodes.len(),
            r.shape.label(),
            r.macs as f64 / 1e6,
            r.tract_ms,
            ms(r.onnxruntime_ms),
            ratio(r.tract_ms, r.onnxruntime_ms),
            2.0 * r.macs as f64 / (r.tract_ms * 1e6),
            parts(r),
            in_model
        )?;
    }
    writeln!(
        out,
        "per tract kernel, every node counted (ms per run summed over the nodes):"
    )?;
    writeln!(
        out,
        "{:<10} {:<34} {:>5} {:>9} {:>9} {:>9} {:>6}",
        "model", "tract's kernel (file alone)", "nodes", "tract ms", "ort ms", "tract/ort", "share"
    )?;
    let mut whole: BTreeMap<&str, f64> = BTreeMap::new();
    for t in report
        .totals
        .iter()
        .filter(|t| t.tract_kernel == ALL_CONVOLUTIONS)
    {
        whole.insert(&t.model, t.tract_ms);
    }
    for t in &report.totals {
        let share = whole
            .get(t.model.as_str())
            .filter(|w| **w > 0.0)
            .map_or("-".into(), |w| format!("{:.0} %", 100.0 * t.tract_ms / w));
        writeln!(
            out,
            "{:<10} {:<34} {:>5} {:>9.3} {:>9} {:>9} {:>6}",
            t.model,
            t.tract_kernel,
            t.nodes,
            t.tract_ms,
            ms(t.onnxruntime_ms),
            ratio(t.tract_ms, t.onnxruntime_ms),
            share
        )?;
    }
    for w in &report.whole {
        let convs = report
            .totals
            .iter()
            .find(|t| t.model == w.model && t.tract_kernel == ALL_CONVOLUTIONS);
        let Some(convs) = convs else { continue };
        writeln!(
            out,
            "{}: the whole model tract {:.3} ms, onnxruntime {} ({}); its convolutions timed alone {:.0} % of tract's whole, {} of onnxruntime's",
            w.model,
            w.tract_ms,
            ms(w.onnxruntime_ms),
            ratio(w.tract_ms, w.onnxruntime_ms),
            100.0 * convs.tract_ms / w.tract_ms,
            match (convs.onnxruntime_ms, w.onnxruntime_ms) {
                (Some(c), Some(o)) if o > 0.0 => format!("{:.0} %", 100.0 * c / o),
                _ => "-".into(),
            }
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct definition of a grouped 2-D convolution, NCHW, batch 1.
    fn reference(shape: &ConvShape, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
        let [h, wd] = shape.input;
        let [oh, ow] = shape.output();
        let [kh, kw] = shape.kernel;
        let per = shape.cin / shape.group;
        let outs = shape.cout / shape.group;
        let mut y = vec![0.0f32; shape.cout * oh * ow];
        for o in 0..shape.cout {
            let g = o / outs;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = b[o];
                    for c in 0..per {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy =
                                    (oy * shape.stride[0] + ky) as isize - shape.pads[0] as isize;
                                let ix =
                                    (ox * shape.stride[1] + kx) as isize - shape.pads[1] as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                    continue;
                                }
                                let ci = g * per + c;
                                acc += w[((o * per + c) * kh + ky) * kw + kx]
                                    * x[(ci * h + iy as usize) * wd + ix as usize];
                            }
                        }
                    }
                    y[(o * oh + oy) * ow + ox] = acc;
                }
            }
        }
        y
    }

    #[test]
    fn the_one_convolution_file_computes_that_convolution() {
        let shapes = [
            ConvShape {
                cin: 3,
                cout: 4,
                kernel: [3, 3],
                stride: [1, 1],
                pads: [1, 1, 1, 1],
                group: 1,
                input: [9, 7],
            },
            // The filter's stem: 7x7, stride 2, padding 3.
            ConvShape {
                cin: 3,
                cout: 2,
                kernel: [7, 7],
                stride: [2, 2],
                pads: [3, 3, 3, 3],
                group: 1,
                input: [12, 12],
            },
            ConvShape {
                cin: 4,
                cout: 6,
                kernel: [1, 3],
                stride: [1, 2],
                pads: [0, 1, 0, 0],
                group: 2,
                input: [5, 8],
            },
        ];
        for (seed, shape) in shapes.iter().enumerate() {
            let seed = seed as u64;
            let alone = tract_alone(&conv_onnx(shape, seed), shape, 1, 1).unwrap();
            assert!(alone.ms > 0.0, "{}", shape.label());
            assert_eq!(
                alone.kernels,
                alone
                    .parts
                    .iter()
                    .map(|(op, _)| op.as_str())
                    .collect::<Vec<_>>()
                    .join("+")
            );
            let y = alone.output;
            let x = input([1, shape.cin, shape.input[0], shape.input[1]]).unwrap();
            let x: Vec<f32> = x
                .to_plain_array_view::<f32>()
                .unwrap()
                .iter()
                .copied()
                .collect();
            let w = seeded(
                shape.cout * shape.cin / shape.group * shape.kernel[0] * shape.kernel[1],
                seed,
            );
            let b = seeded(shape.cout, seed ^ 0x5eed);
            let want = reference(shape, &x, &w, &b);
            assert_eq!(y.len(), want.len(), "{}", shape.label());
            for (i, (a, e)) in y.iter().zip(&want).enumerate() {
                assert!((a - e).abs() < 1e-4, "{} at {i}: {a} vs {e}", shape.label());
            }
        }
    }

    #[test]
    fn output_size_and_work_follow_onnx() {
        let stem = ConvShape {
            cin: 3,
            cout: 16,
            kernel: [7, 7],
            stride: [2, 2],
            pads: [3, 3, 3, 3],
            group: 1,
            input: [128, 128],
        };
        assert_eq!(stem.output(), [64, 64]);
        assert_eq!(stem.macs(), 16 * 3 * 49 * 64 * 64);
        assert_eq!(stem.label(), "3->16 7x7/2 128x128");
    }

    /// The shipped models' convolutions, read back from tract's graph, add
    /// up to the work the exporter counted into the manifest (which counts
    /// the filter's dense head too, a few thousand MACs).
    #[test]
    fn the_shipped_models_convolutions_add_up_to_the_manifests_work() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
        let manifest = models::Manifest::load(&dir.join("manifest.json")).unwrap();
        for entry in &manifest.models {
            let (path, typed) =
                typed_model(entry, &dir, Precision::F32, entry.input.shape).unwrap();
            let convs = conv_nodes(entry, &path, &typed).unwrap();
            assert!(convs.len() > 5, "{}: {convs:?}", entry.name);
            assert_eq!(convs[0].shape.cin, entry.input.shape[1]);
            assert_eq!(
                convs[0].shape.input,
                [entry.input.shape[2], entry.input.shape[3]]
            );
            let macs: u64 = convs.iter().map(|c| c.shape.macs()).sum();
            let stated = entry.metrics["gmac_per_slice"] * 1e9;
            let off = (macs as f64 - stated).abs() / stated;
            assert!(off < 0.01, "{}: {macs} MACs vs {stated}", entry.name);
        }
    }

    fn row(model: &str, kernel: &str, nodes: usize, tract: f64, ort: Option<f64>) -> KernelRow {
        KernelRow {
            model: model.into(),
            shape: ConvShape {
                cin: 8,
                cout: 8,
                kernel: [3, 3],
                stride: [1, 1],
                pads: [1; 4],
                group: 1,
                input: [16, 16],
            },
            nodes: (0..nodes).map(|i| format!("conv_{i}")).collect(),
            macs: 1,
            file: String::new(),
            tract_ms: tract,
            onnxruntime_ms: ort,
            tract_kernel: kernel.into(),
            tract_parts: Vec::new(),
            tract_kernel_in_model: kernel.into(),
        }
    }

    #[test]
    fn totals_count_every_node_per_kernel_and_per_model() {
        let rows = [
            row("seg", "DirectSpatialConv", 2, 1.0, Some(0.5)),
            row("seg", "OptMatMul", 1, 3.0, Some(1.0)),
            row("seg", "DirectSpatialConv", 1, 0.5, Some(0.25)),
            row("filter", "OptMatMul", 3, 0.1, None),
        ];
        let t = totals(&rows);
        let line = |m: &str, k: &str| {
            t.iter()
                .find(|t| t.model == m && t.tract_kernel == k)
                .unwrap()
        };
        assert_eq!(t[0].tract_kernel, "OptMatMul", "slowest first: {t:?}");
        let direct = line("seg", "DirectSpatialConv");
        assert_eq!(direct.nodes, 3);
        assert!((direct.tract_ms - 2.5).abs() < 1e-9);
        assert_eq!(direct.onnxruntime_ms, Some(1.25));
        let all = line("seg", "all convolutions");
        assert_eq!(all.nodes, 4);
        assert!((all.tract_ms - 5.5).abs() < 1e-9);
        assert_eq!(all.onnxruntime_ms, Some(2.25));
        // A node without a peer figure leaves the peer's sum unknown.
        assert_eq!(line("filter", "all convolutions").onnxruntime_ms, None);
        let mut text = Vec::new();
        print(
            &KernelReport {
                date: String::new(),
                arch: "x86_64".into(),
                threads: 1,
                runs: 3,
                onnxruntime: Some("onnxruntime 1.0".into()),
                onnxruntime_skipped: None,
                rows: rows.to_vec(),
                totals: t,
                whole: vec![WholeModel {
                    model: "seg".into(),
                    tract_ms: 11.0,
                    onnxruntime_ms: Some(4.5),
                    file: String::new(),
                }],
            },
            &mut text,
        )
        .unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("2.44x"), "{text}");
        assert!(text.contains(" 45 %"), "{text}");
        assert!(
            text.contains("seg: the whole model tract 11.000 ms, onnxruntime 4.500 (2.44x); its convolutions timed alone 50 % of tract's whole, 50 % of onnxruntime's"),
            "{text}"
        );
    }
}
