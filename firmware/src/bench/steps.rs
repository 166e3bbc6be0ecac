//! The appliance's own work around the models, step by step: decoding the
//! file, preparing each model's input, reading its output, mapping the mask
//! back to the slice, components, summary, and encoding what the store
//! writes. Each step is timed alone on every shipped sample; the models'
//! own runs are timed in the same loop so the shares add up.

use crate::engine::Engine;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// One step: its mean over the samples of the median over the runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepStat {
    pub stage: String,
    pub step: String,
    /// A model's own run, not the appliance's work around it.
    pub model: bool,
    pub ms: f64,
}

fn median(v: &[f64]) -> f64 {
    super::Stats::median(v).unwrap_or(0.0)
}

/// Times every step on each file in `samples`, `runs` times each.
pub fn measure(engine: &Engine, samples: &[&Path], runs: usize) -> Result<Vec<StepStat>> {
    let runs = runs.max(1);
    let mut per_sample: Vec<Vec<StepStat>> = Vec::new();
    for path in samples {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let mut steps = Vec::new();
        let mut times = Vec::with_capacity(runs);
        let mut slice = crate::screener::decode(&bytes, path)?;
        for _ in 0..runs {
            let t = Instant::now();
            slice = crate::screener::decode(&bytes, path)?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        steps.push(StepStat {
            stage: "input".into(),
            step: "decode the file".into(),
            model: false,
            ms: median(&times),
        });
        for s in engine.time_steps(&slice, runs)? {
            steps.push(StepStat {
                stage: s.stage,
                step: s.step,
                model: s.model,
                ms: median(&s.ms),
            });
        }
        // What the store encodes for a slice the segmenter ran on.
        let screening = engine.screen_without_filter(&slice)?;
        let mask = screening.segmentation.map(|g| g.mask);
        let (mut render, mut encode) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
        for _ in 0..runs {
            let t = Instant::now();
            let overlay = crate::store::overlay::render_with(
                &slice,
                mask.as_deref(),
                screening.window.as_ref(),
            );
            render.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            if let Some(m) = &mask {
                crate::store::overlay::mask_png(m, slice.width, slice.height)
                    .map_err(|e| Error::Bench(format!("mask PNG: {e}")))?;
            }
            crate::store::overlay::encode_rgb(&overlay)
                .map_err(|e| Error::Bench(format!("overlay PNG: {e}")))?;
            encode.push(t.elapsed().as_secs_f64() * 1e3);
        }
        for (step, times) in [
            ("draw the overlay", &mut render),
            ("encode the PNGs", &mut encode),
        ] {
            steps.push(StepStat {
                stage: "store".into(),
                step: step.into(),
                model: false,
                ms: median(times),
            });
        }
        per_sample.push(steps);
    }
    let Some(first) = per_sample.first() else {
        return Ok(Vec::new());
    };
    let n = per_sample.len() as f64;
    Ok(first
        .iter()
        .enumerate()
        .map(|(k, s)| StepStat {
            ms: per_sample.iter().map(|steps| steps[k].ms).sum::<f64>() / n,
            ..s.clone()
        })
        .collect())
}

/// The models' time and the rest, in ms per slice.
pub fn split(steps: &[StepStat]) -> (f64, f64) {
    let models = steps.iter().filter(|s| s.model).map(|s| s.ms).sum();
    let rest = steps.iter().filter(|s| !s.model).map(|s| s.ms).sum();
    (models, rest)
}

pub fn print(precision: &str, steps: &[StepStat], out: &mut impl Write) -> std::io::Result<()> {
    let (models, rest) = split(steps);
    let total = (models + rest).max(f64::EPSILON);
    writeln!(
        out,
        "the appliance's own work around the models, tract {precision} (each step alone, median over runs, mean over the samples; both models run):"
    )?;
    writeln!(
        out,
        "{:<10} {:<24} {:>9} {:>6}",
        "stage", "step", "ms", "share"
    )?;
    for s in steps {
        writeln!(
            out,
            "{:<10} {:<24} {:>9.3} {:>5.1} %{}",
            s.stage,
            s.step,
            s.ms,
            100.0 * s.ms / total,
            if s.model { "  (model)" } else { "" }
        )?;
    }
    writeln!(
        out,
        "around the models: {rest:.2} ms of {total:.2} ms per slice ({:.1} %); the models: {models:.2} ms",
        100.0 * rest / total
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_separates_the_models_from_the_rest() {
        let step = |model, ms| StepStat {
            stage: "s".into(),
            step: "t".into(),
            model,
            ms,
        };
        assert_eq!(
            split(&[step(false, 1.0), step(true, 6.0), step(false, 0.5)]),
            (6.0, 1.5)
        );
    }
}
