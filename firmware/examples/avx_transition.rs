//! Reproducer for a tract 0.23 slowdown on x86_64: after a model run, plain
//! (SSE-compiled) code in the same thread runs many times slower until a
//! `vzeroupper`, because tract's kernels return with the upper halves of the
//! vector registers dirty. The appliance clears the state after every run
//! (`engine::model::clear_upper_vector_state`); this example shows why.
//!
//!     cargo run --release -p firmware --example avx_transition [-- MODELS_DIR]
//!
//! It times the same sigmoid over 128x128 values before any model run, right
//! after a tract run of the shipped segmenter, and after clearing the state.

use firmware::engine::model::{clear_upper_vector_state, optimised_plan};
use models::manifest::Precision;
use std::path::PathBuf;
use std::time::Instant;
use tract_onnx::prelude::*;

/// Best of five runs of a sigmoid over `v`, in ms.
fn sigmoid_ms(v: &[f32]) -> f64 {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            let p: Vec<f32> = v.iter().map(|&x| 1.0 / (1.0 + (-x).exp())).collect();
            std::hint::black_box(&p);
            t.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models"));
    let manifest = models::Manifest::load(&dir.join("manifest.json"))?;
    let entry = manifest.segmenter();
    let (_, plan) = optimised_plan(entry, &dir, Precision::F32, entry.input.shape)?;
    let input = Tensor::zero::<f32>(&entry.input.shape)?;
    let values: Vec<f32> = (0..128 * 128)
        .map(|i| -3.0 - (i % 150) as f32 * 0.1)
        .collect();

    let before = sigmoid_ms(&values);
    // Only the run itself, as the appliance makes it (one thread).
    plan.run(tvec!(input.clone().into_tvalue()))?;
    let after = sigmoid_ms(&values);
    clear_upper_vector_state();
    let cleared = sigmoid_ms(&values);
    println!("sigmoid over {} values, best of 5:", values.len());
    println!("  before any model run        {before:.3} ms");
    println!("  right after a tract run     {after:.3} ms");
    println!("  after clearing the state    {cleared:.3} ms");
    println!(
        "after a run / before: {:.1}x (about 1x on a CPU without the penalty)",
        after / before
    );
    Ok(())
}
