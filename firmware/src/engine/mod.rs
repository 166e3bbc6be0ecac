//! The inference engine: the filter decides tumour / no tumour per slice, the
//! segmenter draws the mask on the slices it flags.

pub mod model;
pub mod postprocess;
pub mod precision;

#[cfg(test)]
#[path = "../../tests/common/mod.rs"]
pub(crate) mod test_models;

#[cfg(test)]
mod tests;

use crate::error::{Error, Result};
use model::LoadedModel;
use models::manifest::Precision;
use models::preprocess::Window;
use models::{preprocess, Manifest, ModelEntry, ModelInput, SliceImage};
use postprocess::MaskSummary;
pub use precision::PrecisionChoice;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;
use tract_linalg::multithread::Executor;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub precision: PrecisionChoice,
    /// Connected components smaller than this are dropped from masks; 0 keeps
    /// all of them.
    pub min_component_px: usize,
    /// Threads for tract's matrix products; 1 runs on the calling thread.
    pub threads: usize,
    /// When set, the manifest must carry a valid signature by this key
    /// (`manifest.json.sig`), or the engine does not load.
    pub public_key: Option<models::signature::VerifyingKey>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            precision: PrecisionChoice::Auto,
            min_component_px: 0,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            public_key: None,
        }
    }
}

struct Stage {
    entry: ModelEntry,
    model: LoadedModel,
}

pub struct Engine {
    filter: Option<Stage>,
    segmenter: Stage,
    config: EngineConfig,
    /// The segmenter takes the filter's input tensor (same contract), so a
    /// passed slice is resized and normalised once.
    segmenter_takes_filter_input: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Tumour,
    Clear,
}

/// The segmenter's result at the slice's own resolution.
#[derive(Debug, Clone)]
pub struct Segmentation {
    /// Row-major, the slice's width by its height.
    pub mask: Vec<bool>,
    pub summary: MaskSummary,
}

/// Milliseconds per stage; `None` where the stage did not run. Each stage
/// includes its own preprocessing and postprocessing.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageLatency {
    pub filter_ms: Option<f64>,
    pub segment_ms: Option<f64>,
}

/// Where `screen_marked` stops after the filter.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Gate {
    /// Clear a slice the filter scores below its threshold (`screen`).
    Filter,
    /// Every slice to the segmenter, the filter not run.
    Skip,
    /// The filter run, every slice to the segmenter anyway (`time_steps`).
    PassAll,
}

/// Called as each step of the pipeline ends: stage, step, whether it is a
/// model's own run, when the step started.
type Mark<'a> = &'a mut dyn FnMut(&'static str, &'static str, bool, Instant);

/// One step of [`Engine::time_steps`]: ms per run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StepTimes {
    pub stage: String,
    pub step: String,
    /// The model itself, not the appliance's work around it.
    pub model: bool,
    pub ms: Vec<f64>,
}

#[derive(Debug, Clone)]
pub struct Screening {
    pub verdict: Verdict,
    pub tumour_probability: f32,
    /// `None` when the filter cleared the slice and the segmenter never ran.
    pub segmentation: Option<Segmentation>,
    pub latency: StageLatency,
    /// The slice's percentiles per channel as the models' normalisation
    /// measured them, for the overlay's windowing ([`crate::look`]).
    pub window: Option<Window>,
}

impl Engine {
    /// Loads the manifest's pipeline. Refuses to start when any listed file
    /// differs from its recorded sha256, before tract sees a byte of it.
    pub fn load(manifest_path: &Path, config: EngineConfig) -> Result<Self> {
        // One read: the bytes whose signature is checked are the ones parsed.
        let bytes = std::fs::read(manifest_path).map_err(|e| Error::io(manifest_path, e))?;
        if let Some(key) = &config.public_key {
            models::signature::verify(manifest_path, &bytes, key)?;
        }
        let text = String::from_utf8(bytes).map_err(|e| models::Error::Manifest {
            path: manifest_path.to_path_buf(),
            reason: format!("not UTF-8: {e}"),
        })?;
        let manifest = Manifest::from_json(&text, manifest_path)?;
        let dir = manifest_path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        manifest.verify_files(dir)?;
        let executor = if config.threads > 1 {
            Executor::multithread_with_name(config.threads, "neuroscreen-mm")
        } else {
            Executor::SingleThread
        };
        let executor_for = |entry: &ModelEntry| {
            if splits_well(entry) {
                executor.clone()
            } else {
                Executor::SingleThread
            }
        };
        let preferred = precision::preferred_on_this_cpu();
        let load = |entry: &ModelEntry| -> Result<Stage> {
            let chosen = precision::resolve(entry, config.precision, preferred)?;
            let started = Instant::now();
            let model = LoadedModel::load(entry, dir, chosen, executor_for(entry))?;
            tracing::info!(
                model = %entry.name,
                role = ?entry.role,
                precision = precision::name(chosen),
                file = %model.path.display(),
                ms = started.elapsed().as_millis() as u64,
                "model loaded and optimised"
            );
            Ok(Stage {
                entry: entry.clone(),
                model,
            })
        };
        let filter = manifest.filter().map(load).transpose()?;
        let segmenter = load(manifest.segmenter())?;
        let segmenter_takes_filter_input = filter
            .as_ref()
            .is_some_and(|f| same_input(&f.entry.input, &segmenter.entry.input));
        Ok(Self {
            filter,
            segmenter,
            config,
            segmenter_takes_filter_input,
        })
    }

    pub fn screen(&self, slice: &SliceImage) -> Result<Screening> {
        self.screen_with(slice, true)
    }

    /// As `screen`, but every slice goes to the segmenter even when the set
    /// has a filter: what the filter saves is measured against this.
    pub fn screen_without_filter(&self, slice: &SliceImage) -> Result<Screening> {
        self.screen_with(slice, false)
    }

    /// The segmenter's input (width, height): what every slice is brought
    /// to before the models see it.
    pub fn input_size(&self) -> (u32, u32) {
        let input = &self.segmenter.entry.input;
        (input.width(), input.height())
    }

    pub fn has_filter(&self) -> bool {
        self.filter.is_some()
    }

    fn screen_with(&self, slice: &SliceImage, use_filter: bool) -> Result<Screening> {
        let gate = if use_filter { Gate::Filter } else { Gate::Skip };
        self.screen_marked(slice, gate, &mut |_, _, _, _| {})
    }

    /// The screening pipeline; `mark(stage, step, is_model, started)` is
    /// called as each step ends, so [`time_steps`](Self::time_steps) times
    /// the very steps `screen` runs.
    fn screen_marked(&self, slice: &SliceImage, gate: Gate, mark: Mark<'_>) -> Result<Screening> {
        let mut latency = StageLatency::default();
        let mut filter_probability = None;
        let mut prepared = None;
        if let Some(filter) = self.filter.as_ref().filter(|_| gate != Gate::Skip) {
            let started = Instant::now();
            let input = prepare(&filter.entry, slice)?;
            mark("filter", "prepare", false, started);
            let t = Instant::now();
            let output = filter.model.run(&input.data)?;
            mark("filter", "model", true, t);
            let t = Instant::now();
            let p = postprocess::tumour_probability(&output, &filter.entry.output)
                .map_err(|source| output_error(&filter.entry, source))?;
            mark("filter", "probability", false, t);
            latency.filter_ms = Some(ms_since(started));
            if gate == Gate::Filter && p < filter.entry.threshold {
                return Ok(Screening {
                    verdict: Verdict::Clear,
                    tumour_probability: p,
                    segmentation: None,
                    latency,
                    window: input.window,
                });
            }
            if self.segmenter_takes_filter_input {
                prepared = Some(input);
            }
            filter_probability = Some(p);
        }
        let started = Instant::now();
        let (segmentation, max_pixel, window) = self.segment(slice, prepared, mark)?;
        latency.segment_ms = Some(ms_since(started));
        let verdict = if segmentation.summary.area_px > 0 {
            Verdict::Tumour
        } else {
            Verdict::Clear
        };
        Ok(Screening {
            verdict,
            tumour_probability: filter_probability.unwrap_or(max_pixel),
            segmentation: Some(segmentation),
            latency,
            window,
        })
    }

    /// The mask at the slice's resolution and the highest pixel probability;
    /// `prepared`: the slice already prepared to the segmenter's contract.
    fn segment(
        &self,
        slice: &SliceImage,
        prepared: Option<ModelInput>,
        mark: Mark<'_>,
    ) -> Result<(Segmentation, f32, Option<Window>)> {
        let stage = &self.segmenter;
        let input = match prepared {
            Some(input) => input,
            None => {
                let t = Instant::now();
                let input = prepare(&stage.entry, slice)?;
                mark("segmenter", "prepare", false, t);
                input
            }
        };
        let t = Instant::now();
        let output = stage.model.run(&input.data)?;
        mark("segmenter", "model", true, t);
        let t = Instant::now();
        let plane =
            postprocess::probability_plane(&output, &stage.entry.output, input.width, input.height)
                .map_err(|source| output_error(&stage.entry, source))?;
        mark("segmenter", "sigmoid plane", false, t);
        let t = Instant::now();
        let source = input.geometry.to_source(&plane);
        mark("segmenter", "back to slice size", false, t);
        let t = Instant::now();
        let (w, h) = (slice.width, slice.height);
        let mut mask: Vec<bool> = source.iter().map(|&p| p >= stage.entry.threshold).collect();
        // The manifest's minimum is counted where the model drew the mask (its
        // input size), as the exporter's evaluation chose it, not at the
        // slice's size.
        // Without a minimum there is nothing to count on this per-slice path.
        if stage.entry.min_mask_px > 0 {
            let drawn = plane
                .iter()
                .filter(|&&p| p >= stage.entry.threshold)
                .count();
            if !stage.entry.keeps_mask(drawn) {
                mask.fill(false);
            }
        }
        postprocess::remove_small_components(&mut mask, w, h, self.config.min_component_px);
        mark("segmenter", "threshold, components", false, t);
        let t = Instant::now();
        let summary = postprocess::summarise(&mask, &source, w);
        let max_pixel = source.iter().copied().fold(0.0f32, f32::max);
        mark("segmenter", "summary", false, t);
        Ok((Segmentation { mask, summary }, max_pixel, input.window))
    }

    /// Model name to the precision it runs at.
    pub fn precisions(&self) -> BTreeMap<String, Precision> {
        self.filter
            .iter()
            .chain([&self.segmenter])
            .map(|s| (s.entry.name.clone(), s.model.precision))
            .collect()
    }

    /// `f32` or `int8` when every model runs at it, else `mixed` (auto falls
    /// back per model when a manifest lacks one precision for one model).
    pub fn precision_label(&self) -> &'static str {
        let all: Vec<Precision> = self.precisions().into_values().collect();
        if all.iter().all(|p| *p == all[0]) {
            precision::name(all[0])
        } else {
            "mixed"
        }
    }

    /// Model-only latencies in ms (no pre- or post-processing), `runs`
    /// times per model on `slice`: the figure comparable with another
    /// runtime given the same ONNX file.
    pub fn time_models(&self, slice: &SliceImage, runs: usize) -> Result<Vec<(String, Vec<f64>)>> {
        let mut out = Vec::new();
        for stage in self.filter.iter().chain([&self.segmenter]) {
            let input = prepare(&stage.entry, slice)?;
            stage.model.run(&input.data)?; // warm-up: first-run allocations
            let mut times = Vec::with_capacity(runs);
            for _ in 0..runs {
                let started = Instant::now();
                stage.model.run(&input.data)?;
                times.push(ms_since(started));
            }
            out.push((stage.entry.name.clone(), times));
        }
        Ok(out)
    }

    /// The appliance's own work around the models, step by step: `screen`'s
    /// own steps, `runs` times on `slice` (the segmenter's as if the filter
    /// had passed the slice), ms per run for each `(stage, step, is_model)`.
    pub fn time_steps(&self, slice: &SliceImage, runs: usize) -> Result<Vec<StepTimes>> {
        let mut steps: Vec<StepTimes> = Vec::new();
        for run in 0..=runs {
            // The first pass warms the models and allocators; it is not kept.
            self.screen_marked(slice, Gate::PassAll, &mut |stage, step, model, started| {
                if run == 0 {
                    return;
                }
                let ms = ms_since(started);
                match steps
                    .iter_mut()
                    .find(|s| s.stage == stage && s.step == step)
                {
                    Some(s) => s.ms.push(ms),
                    None => steps.push(StepTimes {
                        stage: stage.into(),
                        step: step.into(),
                        model,
                        ms: vec![ms],
                    }),
                }
            })?;
        }
        Ok(steps)
    }

    pub fn filter_runs(&self) -> usize {
        self.filter.as_ref().map_or(0, |f| f.model.runs())
    }

    pub fn segmenter_runs(&self) -> usize {
        self.segmenter.model.runs()
    }
}

/// Below this many multiply-accumulates per slice (billions, the export's
/// `gmac_per_slice`) a model runs on one thread whatever `threads` says.
/// The shipped filter (0.044) took 0.79-0.93x its one-thread time on two
/// threads in every run of docs/TRACT_SPEED.md: its products are too small
/// for the split to pay for the hand-over. The segmenter (0.236) gains.
const SPLIT_MIN_GMAC: f64 = 0.1;

/// Whether a model is worth splitting over the engine's threads; one whose
/// manifest does not say its size is split, as before.
fn splits_well(entry: &ModelEntry) -> bool {
    entry
        .metrics
        .get("gmac_per_slice")
        .is_none_or(|&gmac| gmac >= SPLIT_MIN_GMAC)
}

/// Whether two models take the same tensor from a slice (names aside).
fn same_input(a: &models::manifest::InputSpec, b: &models::manifest::InputSpec) -> bool {
    a.shape == b.shape
        && a.layout == b.layout
        && a.channels == b.channels
        && a.preprocessing == b.preprocessing
}

fn prepare(entry: &ModelEntry, slice: &SliceImage) -> Result<ModelInput> {
    Ok(preprocess::prepare(
        slice,
        &entry.input.preprocessing,
        entry.input.width(),
        entry.input.height(),
    )?)
}

fn output_error(entry: &ModelEntry, source: postprocess::OutputError) -> Error {
    Error::Output {
        model: entry.name.clone(),
        source,
    }
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}
