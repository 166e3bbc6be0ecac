//! `neuroscreen-train arch-bench`: what each architecture costs in tract,
//! before any training: FLOPs per image counted from the exported graph,
//! single-thread f32 latency, the GFLOP/s that makes, and how far that is
//! from the peak of tract's own f32 matmul kernel on this machine, measured
//! in the same run on a large 1x1 convolution (a pure matrix product).
//!
//! Latency does not depend on the weights, so the networks are seeded
//! random initialisations exported exactly as `export` writes trained ones.
//! From the filter's and the segmenter's latency it works out whether the
//! filter saves time at a given tumour prevalence.

use super::graph::GraphBuilder;
use super::lower::lower;
use super::onnx_f32::{conv_attrs, to_onnx_f32};
use super::tract_check;
use crate::nets::{parameter_count, Architecture, Net};
use crate::{Error, Result};
use serde::Serialize;
use std::path::Path;
use std::time::Instant;
use tch::{nn, Device};

#[derive(Debug, Clone, Serialize)]
pub struct ArchRow {
    pub model: String,
    pub input: i64,
    pub params: i64,
    /// Multiply-accumulates per image (a FLOP count is twice this).
    pub macs: u64,
    pub ms_median: f64,
    pub ms_min: f64,
    pub gflops: f64,
    /// onnxruntime's median on the same file, same thread count, when asked.
    pub ort_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Peak {
    /// The matrix product timed: M x K x N.
    pub shape: [usize; 3],
    pub ms_min: f64,
    pub gflops: f64,
}

fn write_model(model: &tract_onnx::pb::ModelProto, path: &Path) -> Result<()> {
    std::fs::write(path, prost::Message::encode_to_vec(model)).map_err(|e| Error::io(path, e))
}

fn time(plan: &tract_check::TractPlan, shape: &[usize], runs: usize) -> Result<Vec<f64>> {
    let input = vec![0.5f32; shape.iter().product()];
    tract_check::run(plan, shape, &input)?;
    (0..runs.max(1))
        .map(|_| {
            let t = Instant::now();
            tract_check::run(plan, shape, &input)?;
            Ok(t.elapsed().as_secs_f64() * 1e3)
        })
        .collect()
}

fn median_min(v: &[f64]) -> (f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    (s[s.len() / 2], s[0])
}

/// Exports `arch` at `size` px with seeded weights and times it in tract.
pub fn bench_arch(
    name: &str,
    arch: &Architecture,
    size: i64,
    runs: usize,
    work: &Path,
) -> Result<ArchRow> {
    let seeded = crate::train::fit::seeded(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = Net::new(&vs.root(), arch);
    drop(seeded);
    let lowered = lower(&net, size);
    let macs = lowered.macs();
    let output = if arch.is_segmenter() {
        "mask_logits"
    } else {
        "class_logits"
    };
    let model = to_onnx_f32(&lowered, name, "image", output, &[]);
    let path = exported_path(work, name, size);
    write_model(&model, &path)?;
    let shape = [1usize, 3, size as usize, size as usize];
    let plan = tract_check::load(&path, &shape)?;
    let (ms_median, ms_min) = median_min(&time(&plan, &shape, runs)?);
    Ok(ArchRow {
        model: name.to_string(),
        input: size,
        params: parameter_count(&vs),
        macs,
        ms_median,
        ms_min,
        gflops: 2.0 * macs as f64 / (ms_median * 1e-3) / 1e9,
        ort_ms: None,
    })
}

/// The file [`bench_arch`] wrote for `name` at `size`.
pub fn exported_path(work: &Path, name: &str, size: i64) -> std::path::PathBuf {
    work.join(format!("{name}_{size}.onnx"))
}

/// tract's f32 matmul throughput on a [C x C] x [C x H*W] product written as
/// a 1x1 convolution (the form the networks' convolutions reach the kernel
/// in); the best of `runs`, as a peak should be.
pub fn measure_peak(channels: usize, side: usize, runs: usize, work: &Path) -> Result<Peak> {
    let c = channels as i64;
    let s = side as i64;
    let mut g = GraphBuilder::new();
    let w: Vec<f32> = (0..channels * channels)
        .map(|i| ((i % 17) as f32 - 8.0) / 64.0)
        .collect();
    let w = g.f32s("w", &[c, c, 1, 1], &w);
    let y = g.node("Conv", &["image", &w], conv_attrs(1, 1, 0), "conv");
    g.rename_output(&y, "out");
    let model = g.finish(
        "peak",
        ("image", &[1, c, s, s]),
        &[("out", &[1, c, s, s])],
        &[],
    );
    let path = work.join("peak.onnx");
    write_model(&model, &path)?;
    let shape = [1, channels, side, side];
    let plan = tract_check::load(&path, &shape)?;
    let (_, ms_min) = median_min(&time(&plan, &shape, runs)?);
    let flops = 2.0 * (channels * channels * side * side) as f64;
    Ok(Peak {
        shape: [channels, channels, side * side],
        ms_min,
        gflops: flops / (ms_min * 1e-3) / 1e9,
    })
}

/// Matrix products (channels, side) tried for the peak: from cache-resident
/// to memory-bound. One large product alone under-reads the peak: on this
/// machine 512x512x4096 gave 113 GFLOP/s while ResNet-50's convolutions ran
/// at 143.
pub const PEAK_SHAPES: [(usize, usize); 7] = [
    (64, 64),
    (128, 32),
    (128, 64),
    (256, 16),
    (256, 32),
    (512, 16),
    (512, 64),
];

/// The best of [`measure_peak`] over `shapes`.
pub fn measure_best_peak(shapes: &[(usize, usize)], runs: usize, work: &Path) -> Result<Peak> {
    let mut best: Option<Peak> = None;
    for &(channels, side) in shapes {
        let peak = measure_peak(channels, side, runs, work)?;
        if best.as_ref().is_none_or(|b| peak.gflops > b.gflops) {
            best = Some(peak);
        }
    }
    best.ok_or_else(|| Error::Invalid("no matrix product to measure the peak with".into()))
}

/// Mean time per slice with and without a filter in front of the segmenter.
#[derive(Debug, Clone, Serialize)]
pub struct FilterEconomy {
    pub filter: String,
    pub prevalence: f64,
    /// Share of slices the filter passes on (an ideal filter: the prevalence).
    pub flagged_share: f64,
    pub filter_ms: f64,
    pub segmenter_ms: f64,
    pub with_filter_ms: f64,
    pub without_filter_ms: f64,
}

impl FilterEconomy {
    pub fn new(filter: &ArchRow, segmenter: &ArchRow, prevalence: f64, flagged_share: f64) -> Self {
        Self {
            filter: format!("{} @ {} px", filter.model, filter.input),
            prevalence,
            flagged_share,
            filter_ms: filter.ms_median,
            segmenter_ms: segmenter.ms_median,
            with_filter_ms: filter.ms_median + flagged_share * segmenter.ms_median,
            without_filter_ms: segmenter.ms_median,
        }
    }

    /// Above 1: the filter makes the appliance faster.
    pub fn speedup(&self) -> f64 {
        self.without_filter_ms / self.with_filter_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(model: &str, ms: f64) -> ArchRow {
        ArchRow {
            model: model.into(),
            input: 256,
            params: 1,
            macs: 1,
            ms_median: ms,
            ms_min: ms,
            gflops: 1.0,
            ort_ms: None,
        }
    }

    #[test]
    fn a_filter_pays_only_when_it_costs_less_than_the_segmenting_it_saves() {
        let seg = row("resunet", 10.0);
        // Ideal filter at 35 % prevalence saves 6.5 ms of segmenting.
        let cheap = FilterEconomy::new(&row("small", 2.0), &seg, 0.35, 0.35);
        assert!((cheap.with_filter_ms - 5.5).abs() < 1e-9);
        assert!(cheap.speedup() > 1.0);
        let dear = FilterEconomy::new(&row("big", 9.0), &seg, 0.35, 0.35);
        assert!(dear.speedup() < 1.0);
    }

    #[test]
    fn counts_and_times_a_tiny_segmenter() {
        let work = tempfile::tempdir().unwrap();
        let arch = Architecture::ResUnet { widths: vec![4, 8] };
        let r = bench_arch("resunet", &arch, 32, 2, work.path()).unwrap();
        assert!(r.macs > 0 && r.ms_median > 0.0 && r.gflops > 0.0, "{r:?}");
        // Encoder block 3->4 at 32x32 alone: (27*4 + 36*4 + 3*4) MACs per pixel.
        assert!(r.macs > (27 * 4 + 36 * 4 + 3 * 4) * 32 * 32);
        let peak = measure_peak(32, 16, 2, work.path()).unwrap();
        assert!(peak.gflops > 0.0);
    }
}
