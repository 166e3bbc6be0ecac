//! Where a model's time goes, operator by operator: tract's optimised plan
//! timed node by node, beside onnxruntime's own profiler on the same file
//! (`scripts/ort_bench.py --profile`), at the shipped input size and at
//! larger ones.
//!
//! Timing each node adds a clock read around it; the whole-model time is
//! measured apart, without the hooks, so the two can be compared.

use crate::engine::model::optimised_plan;
use crate::engine::precision;
use crate::error::{Error, Result};
use models::manifest::Precision;
use models::ModelEntry;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tract_linalg::multithread::{multithread_tract_scope, Executor};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::plan::{eval, SimpleState};

/// One kind of operator: how many nodes of it and their time per run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OpTime {
    pub op: String,
    pub nodes: usize,
    pub ms: f64,
}

/// One runtime's view of one model at one size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuntimeProfile {
    /// Median time of the whole model per run, without per-node timing.
    pub whole_ms: f64,
    /// Per operator kind, slowest first; the sum is the time inside nodes.
    pub ops: Vec<OpTime>,
    /// The slowest nodes (tract only): name, op, what the op says of itself
    /// (kernel, shapes), ms per run.
    #[serde(default)]
    pub slowest: Vec<NodeTime>,
    /// ms per run by ONNX node name (onnxruntime only).
    #[serde(default)]
    pub nodes: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeTime {
    pub node: String,
    pub op: String,
    pub info: String,
    pub ms: f64,
}

/// Slowest nodes listed per model.
const SLOWEST: usize = 6;

impl RuntimeProfile {
    pub fn ops_ms(&self) -> f64 {
        self.ops.iter().map(|o| o.ms).sum()
    }
}

/// Both runtimes on one file of one model at one input size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelProfile {
    pub model: String,
    pub precision: String,
    pub size: usize,
    pub tract: RuntimeProfile,
    pub onnxruntime: Option<RuntimeProfile>,
    /// Why onnxruntime has no figures here, when it has none.
    pub onnxruntime_skipped: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileReport {
    pub date: String,
    pub arch: String,
    pub threads: usize,
    pub runs: usize,
    pub onnxruntime: Option<String>,
    pub profiles: Vec<ModelProfile>,
}

pub struct ProfileOptions {
    pub models: PathBuf,
    pub precisions: Vec<Precision>,
    /// Input sizes in px; empty: each model's shipped size.
    pub sizes: Vec<usize>,
    pub threads: usize,
    pub runs: usize,
    /// Python with onnxruntime, and the script; `None` skips the peer.
    pub ort: Option<(PathBuf, PathBuf)>,
}

#[derive(Deserialize)]
struct OrtRaw {
    runtime: String,
    profiles: Vec<OrtRow>,
}

#[derive(Deserialize)]
struct OrtRow {
    model: String,
    precision: String,
    size: usize,
    whole_ms: Option<f64>,
    #[serde(default)]
    ops: Vec<OpTime>,
    #[serde(default)]
    nodes: BTreeMap<String, f64>,
    error: Option<String>,
}

/// Profiles every model of the set at every precision and size, tract in
/// this process, onnxruntime through its script.
pub fn run(opts: &ProfileOptions) -> Result<ProfileReport> {
    let manifest = models::Manifest::load(&opts.models.join("manifest.json"))?;
    manifest.verify_files(&opts.models)?;
    let (ort_rows, ort_runtime, ort_skipped) = match &opts.ort {
        None => (Vec::new(), None, Some("not asked for".to_string())),
        Some((python, script)) => {
            let mut extra = vec!["--profile".to_string()];
            for size in &opts.sizes {
                extra.extend(["--size".to_string(), size.to_string()]);
            }
            match super::ort_script(
                (python, script),
                &opts.models,
                opts.threads,
                opts.runs,
                &extra,
            )
            .and_then(|out| serde_json::from_slice::<OrtRaw>(&out).map_err(super::OrtError::Output))
            {
                Ok(raw) => (raw.profiles, Some(raw.runtime), None),
                Err(why) => {
                    tracing::warn!("onnxruntime peer skipped: {why}");
                    (Vec::new(), None, Some(why.to_string()))
                }
            }
        }
    };
    let mut profiles = Vec::new();
    for entry in &manifest.models {
        for &p in &opts.precisions {
            if entry.file(p).is_none() {
                continue;
            }
            let name = precision::name(p);
            let sizes = if opts.sizes.is_empty() {
                vec![entry.input.shape[2]]
            } else {
                opts.sizes.clone()
            };
            for size in sizes {
                tracing::info!(model = %entry.name, precision = name, size, "profiling tract");
                let tract = tract(entry, &opts.models, p, size, opts.threads, opts.runs)?;
                let peer = ort_rows
                    .iter()
                    .find(|r| r.model == entry.name && r.precision == name && r.size == size);
                let (onnxruntime, onnxruntime_skipped) = match peer {
                    Some(OrtRow {
                        whole_ms: Some(whole_ms),
                        ops,
                        nodes,
                        error: None,
                        ..
                    }) => (
                        Some(RuntimeProfile {
                            whole_ms: *whole_ms,
                            ops: ops.clone(),
                            slowest: Vec::new(),
                            nodes: nodes.clone(),
                        }),
                        None,
                    ),
                    Some(r) => (None, r.error.clone().or(Some("no figures".into()))),
                    None => (None, ort_skipped.clone()),
                };
                profiles.push(ModelProfile {
                    model: entry.name.clone(),
                    precision: name.into(),
                    size,
                    tract,
                    onnxruntime,
                    onnxruntime_skipped,
                });
            }
        }
    }
    Ok(ProfileReport {
        date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        arch: std::env::consts::ARCH.into(),
        threads: opts.threads,
        runs: opts.runs,
        onnxruntime: ort_runtime,
        profiles,
    })
}

/// Operator kinds shown per runtime; the rest are summed on one line.
const SHOWN: usize = 8;

pub fn print(report: &ProfileReport, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "profile {} ({} thread{}, {} timed runs each; ms per run; tract: its optimised plan node by node; {})",
        report.arch,
        report.threads,
        if report.threads == 1 { "" } else { "s" },
        report.runs,
        report
            .onnxruntime
            .as_deref()
            .map_or("no onnxruntime".to_string(), |r| format!("{r}: its own profiler"))
    )?;
    for p in &report.profiles {
        writeln!(out)?;
        let ort_whole = p.onnxruntime.as_ref().map(|o| o.whole_ms);
        writeln!(
            out,
            "{} {} at {} px: tract {:.2} ms{}",
            p.model,
            p.precision,
            p.size,
            p.tract.whole_ms,
            match ort_whole {
                Some(o) => format!(
                    ", onnxruntime {o:.2} ms, ratio tract/onnxruntime {:.2}",
                    p.tract.whole_ms / o
                ),
                None => format!(
                    " (onnxruntime: {})",
                    p.onnxruntime_skipped.as_deref().unwrap_or("-")
                ),
            }
        )?;
        let columns = |prof: Option<&RuntimeProfile>| -> Vec<String> {
            let Some(prof) = prof else {
                return Vec::new();
            };
            let total = prof.ops_ms().max(f64::EPSILON);
            let mut lines: Vec<String> = prof
                .ops
                .iter()
                .take(SHOWN)
                .map(|o| {
                    format!(
                        "{:<22} {:>3} {:>8.3} {:>4.0} %",
                        truncate(&o.op, 22),
                        o.nodes,
                        o.ms,
                        100.0 * o.ms / total
                    )
                })
                .collect();
            let rest: &[OpTime] = prof.ops.get(SHOWN..).unwrap_or(&[]);
            if !rest.is_empty() {
                let ms: f64 = rest.iter().map(|o| o.ms).sum();
                let nodes: usize = rest.iter().map(|o| o.nodes).sum();
                lines.push(format!(
                    "{:<22} {:>3} {:>8.3} {:>4.0} %",
                    format!("({} other kinds)", rest.len()),
                    nodes,
                    ms,
                    100.0 * ms / total
                ));
            }
            lines.push(format!(
                "{:<22} {:>3} {:>8.3}",
                "sum inside nodes", "", total
            ));
            lines
        };
        let left = columns(Some(&p.tract));
        let right = columns(p.onnxruntime.as_ref());
        writeln!(
            out,
            "  {:<22} {:>3} {:>8} {:>6} | {:<22} {:>3} {:>8} {:>6}",
            "tract op", "n", "ms", "share", "onnxruntime op", "n", "ms", "share"
        )?;
        for k in 0..left.len().max(right.len()) {
            writeln!(
                out,
                "  {:<42} | {}",
                left.get(k).map_or("", String::as_str),
                right.get(k).map_or("", String::as_str)
            )?;
        }
        writeln!(out, "  slowest tract nodes:")?;
        for n in &p.tract.slowest {
            writeln!(
                out,
                "  {:>8.3} ms  {} ({}) {}",
                n.ms,
                n.node,
                n.op,
                truncate(&n.info, 100)
            )?;
        }
        if let Some(o) = &p.onnxruntime {
            // onnxruntime names a fused node after one of its parts (a
            // convolution fused with its ReLU is `relu_N_nchwc`).
            let mut nodes: Vec<(&String, &f64)> = o.nodes.iter().collect();
            nodes.sort_by(|a, b| b.1.total_cmp(a.1));
            let listed: Vec<String> = nodes
                .iter()
                .take(SLOWEST)
                .map(|(name, ms)| format!("{name} {ms:.3}"))
                .collect();
            writeln!(
                out,
                "  slowest onnxruntime nodes (ms): {}",
                listed.join(", ")
            )?;
        }
    }
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('~');
        t
    }
}

/// Sums per-node times (ms per run) by operator kind, slowest first.
pub fn by_op(nodes: impl IntoIterator<Item = (String, f64)>) -> Vec<OpTime> {
    let mut kinds: BTreeMap<String, OpTime> = BTreeMap::new();
    for (op, ms) in nodes {
        let k = kinds.entry(op.clone()).or_insert(OpTime {
            op,
            nodes: 0,
            ms: 0.0,
        });
        k.nodes += 1;
        k.ms += ms;
    }
    let mut ops: Vec<OpTime> = kinds.into_values().collect();
    ops.sort_by(|a, b| b.ms.total_cmp(&a.ms).then_with(|| a.op.cmp(&b.op)));
    ops
}

/// A fixed pseudo-random input in [0, 1): a CNN's time does not depend on
/// the pixel values.
pub(crate) fn input(shape: [usize; 4]) -> Result<Tensor> {
    let mut x = 0x2545_f491_u32;
    let values: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 8) as f32 / (1u32 << 24) as f32
        })
        .collect();
    Tensor::from_shape(&shape, &values).map_err(|e| Error::Bench(format!("input: {e:#}")))
}

/// tract's executor for `threads` (one: no pool at all).
pub(crate) fn executor(threads: usize) -> Executor {
    if threads > 1 {
        Executor::multithread_with_name(threads, "neuroscreen-prof")
    } else {
        Executor::SingleThread
    }
}

/// One warm-up run of `plan` on `x` (its outputs returned), then `runs`
/// timed runs, each in ms.
pub(crate) fn whole_runs(
    plan: &Arc<TypedRunnableModel>,
    executor: &Executor,
    x: &Tensor,
    runs: usize,
) -> TractResult<(TVec<TValue>, Vec<f64>)> {
    let once = || {
        multithread_tract_scope(executor.clone(), || {
            plan.run(tvec!(x.clone().into_tvalue()))
        })
    };
    let first = once()?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        once()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok((first, times))
}

/// ms per run of each node of `plan` (indexed by node id) over `runs` runs
/// with a clock read around every node.
pub(crate) fn node_ms(
    plan: &Arc<TypedRunnableModel>,
    executor: &Executor,
    x: &Tensor,
    runs: usize,
) -> TractResult<Vec<f64>> {
    let mut per_node = vec![Duration::ZERO; plan.model().nodes().len()];
    let mut state = SimpleState::new(plan)?;
    for _ in 0..runs {
        multithread_tract_scope(executor.clone(), || {
            state.run_plan_with_eval(
                tvec!(x.clone().into_tvalue()),
                |ctx, op_state, node, inputs| {
                    let t = Instant::now();
                    let out = eval(ctx, op_state, node, inputs);
                    per_node[node.id] += t.elapsed();
                    out
                },
            )
        })?;
    }
    Ok(per_node
        .iter()
        .map(|d| d.as_secs_f64() * 1e3 / runs.max(1) as f64)
        .collect())
}

/// Profiles `entry`'s `precision` file in tract at `size` x `size` px.
pub fn tract(
    entry: &ModelEntry,
    dir: &Path,
    precision: Precision,
    size: usize,
    threads: usize,
    runs: usize,
) -> Result<RuntimeProfile> {
    let shape = [1, entry.input.shape[1], size, size];
    let (_, plan) = optimised_plan(entry, dir, precision, shape)?;
    let executor = executor(threads);
    let x = input(shape)?;
    let fail = |e: TractError| Error::Bench(format!("{} in tract: {e:#}", entry.name));
    let (_, times) = whole_runs(&plan, &executor, &x, runs).map_err(fail)?;
    let per_node = node_ms(&plan, &executor, &x, runs).map_err(fail)?;
    let nodes = plan.model().nodes();
    let mut slowest: Vec<NodeTime> = nodes
        .iter()
        .map(|node| NodeTime {
            node: node.name.clone(),
            op: node.op.name().to_string(),
            info: node.op.info().map(|i| i.join("; ")).unwrap_or_default(),
            ms: per_node[node.id],
        })
        .collect();
    slowest.sort_by(|a, b| b.ms.total_cmp(&a.ms));
    slowest.truncate(SLOWEST);
    let by_node = nodes
        .iter()
        .filter(|node| per_node[node.id] > 0.0)
        .map(|node| (node.op.name().to_string(), per_node[node.id]));
    Ok(RuntimeProfile {
        whole_ms: super::Stats::median(&times).unwrap_or(f64::NAN),
        ops: by_op(by_node),
        slowest,
        nodes: BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_summed_per_operator_slowest_first() {
        let ops = by_op([
            ("Conv".to_string(), 2.0),
            ("Add".to_string(), 0.5),
            ("Conv".to_string(), 1.0),
            ("Max".to_string(), 0.5),
        ]);
        let got: Vec<(&str, usize, f64)> =
            ops.iter().map(|o| (o.op.as_str(), o.nodes, o.ms)).collect();
        assert_eq!(got, [("Conv", 2, 3.0), ("Add", 1, 0.5), ("Max", 1, 0.5)]);
    }

    #[test]
    fn the_input_is_the_same_every_time_and_in_range() {
        let a = input([1, 3, 8, 8]).unwrap();
        let b = input([1, 3, 8, 8]).unwrap();
        assert_eq!(a, b);
        let v = a.to_plain_array_view::<f32>().unwrap();
        assert!(v.iter().all(|x| (0.0..1.0).contains(x)));
        assert!(v.iter().any(|&x| x > 0.5) && v.iter().any(|&x| x < 0.5));
    }
}
