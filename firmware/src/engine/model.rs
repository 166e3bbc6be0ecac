//! One ONNX model loaded into tract, fixed to the manifest's input shape and
//! optimised once at start.

use crate::engine::precision;
use crate::error::{Error, Result};
use models::manifest::Precision;
use models::ModelEntry;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tract_linalg::multithread::{multithread_tract_scope, Executor};
use tract_onnx::prelude::*;
// tract's errors are anyhow errors; its own re-export keeps anyhow out of
// the engine's dependencies.
use tract_onnx::tract_core::internal::{bail, format_err};

pub struct LoadedModel {
    pub name: String,
    pub precision: Precision,
    pub path: PathBuf,
    input_shape: [usize; 4],
    plan: Arc<TypedRunnableModel>,
    executor: Executor,
    runs: AtomicUsize,
}

/// A model's first output as plain floats, with its shape.
#[derive(Debug, Clone)]
pub struct Output {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

impl LoadedModel {
    /// One file of `entry` at the manifest's input shape ([`optimised_plan`]).
    pub fn load(
        entry: &ModelEntry,
        dir: &Path,
        precision: Precision,
        executor: Executor,
    ) -> Result<Self> {
        let (path, plan) = optimised_plan(entry, dir, precision, entry.input.shape)?;
        Ok(Self {
            name: entry.name.clone(),
            precision,
            path,
            input_shape: entry.input.shape,
            plan,
            executor,
            runs: AtomicUsize::new(0),
        })
    }

    /// Runs the model on one NCHW input of the manifest's shape.
    pub fn run(&self, data: &[f32]) -> Result<Output> {
        let fail = |reason: String| Error::Inference {
            model: self.name.clone(),
            reason,
        };
        let expected: usize = self.input_shape.iter().product();
        if data.len() != expected {
            return Err(fail(format!(
                "input holds {} values, the shape {:?} needs {expected}",
                data.len(),
                self.input_shape
            )));
        }
        self.runs.fetch_add(1, Ordering::Relaxed);
        let input =
            Tensor::from_shape(&self.input_shape, data).map_err(|e| fail(format!("{e:#}")))?;
        // Scoped to this call, not process-wide, so two engines with
        // different thread counts do not change each other's.
        let outputs = multithread_tract_scope(self.executor.clone(), || {
            self.plan.run(tvec!(input.into_tvalue()))
        });
        clear_upper_vector_state();
        let outputs = outputs.map_err(|e| fail(format!("{e:#}")))?;
        let first = outputs
            .first()
            .ok_or_else(|| fail("the model produced no output".into()))?;
        let as_f32 = first
            .cast_to::<f32>()
            .map_err(|e| fail(format!("output is not numeric: {e:#}")))?;
        let view = as_f32
            .to_plain_array_view::<f32>()
            .map_err(|e| fail(format!("{e:#}")))?;
        Ok(Output {
            shape: view.shape().to_vec(),
            values: view.iter().copied().collect(),
        })
    }

    /// How often this model has run: lets tests prove a stage was skipped.
    pub fn runs(&self) -> usize {
        self.runs.load(Ordering::Relaxed)
    }
}

/// Reads, checks and optimises one file of `entry` for a fixed input
/// `shape` (the manifest's; the profiler also asks for larger slices). The
/// sha256 is checked again on the very bytes handed to tract, so a file
/// swapped after `Manifest::verify_files` still cannot run.
pub fn optimised_plan(
    entry: &ModelEntry,
    dir: &Path,
    precision: Precision,
    shape: [usize; 4],
) -> Result<(PathBuf, Arc<TypedRunnableModel>)> {
    let (path, model) = typed_model(entry, dir, precision, shape)?;
    let plan = into_plan(entry, &path, model)?;
    Ok((path, plan))
}

/// `entry`'s typed graph (read from `path`) optimised for its fixed input
/// shape and made runnable: tract picks its kernels here.
pub fn into_plan(
    entry: &ModelEntry,
    path: &Path,
    model: TypedModel,
) -> Result<Arc<TypedRunnableModel>> {
    model
        .into_optimized()
        .and_then(|m| m.into_runnable())
        .map_err(|e| Error::ModelLoad {
            model: entry.name.clone(),
            path: path.to_path_buf(),
            reason: format!("cannot optimise for the fixed input shape: {e:#}"),
        })
}

/// The checked file of `entry` as tract's typed graph at `shape`, before
/// tract picks its kernels: the operators as the file states them (the
/// kernel bench reads each convolution's shape from it).
pub fn typed_model(
    entry: &ModelEntry,
    dir: &Path,
    precision: Precision,
    shape: [usize; 4],
) -> Result<(PathBuf, TypedModel)> {
    keep_tract_off_amx_int8();
    let file = entry
        .file(precision)
        .ok_or_else(|| Error::PrecisionUnavailable {
            model: entry.name.clone(),
            wanted: precision::name(precision).into(),
            available: entry
                .files
                .iter()
                .map(|f| precision::name(f.precision))
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let path = dir.join(&file.path);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if !actual.eq_ignore_ascii_case(file.sha256.trim()) {
        return Err(models::Error::HashMismatch {
            path,
            expected: file.sha256.trim().to_ascii_lowercase(),
            actual,
        }
        .into());
    }
    let fail = |stage: &str, e: TractError| Error::ModelLoad {
        model: entry.name.clone(),
        path: path.clone(),
        reason: format!("{stage}: {e:#}"),
    };
    let onnx = tract_onnx::onnx();
    let proto = onnx
        .proto_model_for_read(&mut bytes.as_slice())
        .map_err(|e| fail("not an ONNX model", e))?;
    // The folder lets tract find external-data files next to the model.
    let parsed = onnx
        .parse(&proto, path.parent().and_then(Path::to_str))
        .map_err(|e| fail("cannot import", e))?;
    if !parsed.unresolved_inputs.is_empty() {
        return Err(fail(
            "cannot import",
            format_err!("unresolved inputs {:?}", parsed.unresolved_inputs),
        ));
    }
    let mut model = parsed.model;
    select_input(&mut model, entry, shape).map_err(|e| fail("input", e))?;
    select_output(&mut model, entry).map_err(|e| fail("output", e))?;
    let typed = model
        .into_typed()
        .map_err(|e| fail("cannot type for the fixed input shape", e))?;
    Ok((path, typed))
}

/// Keeps only the manifest's input and fixes its shape and type, so the
/// optimiser can specialise every kernel for it.
fn select_input(
    model: &mut InferenceModel,
    entry: &ModelEntry,
    shape: [usize; 4],
) -> TractResult<()> {
    let names: Vec<String> = model
        .input_outlets()?
        .iter()
        .map(|o| model.node(o.node).name.clone())
        .collect();
    if !names.contains(&entry.input.name) {
        bail!(
            "the manifest names input '{}', the model has {names:?}",
            entry.input.name
        );
    }
    if names.len() > 1 {
        bail!(
            "the model has {} inputs {names:?}; the appliance feeds one",
            names.len()
        );
    }
    model.set_input_fact(0, f32::fact(shape).into())
}

fn select_output(model: &mut InferenceModel, entry: &ModelEntry) -> TractResult<()> {
    let wanted = &entry.output.name;
    if model.find_outlet_label(wanted).is_none() && model.node_by_name(wanted).is_err() {
        let have: Vec<String> = model
            .output_outlets()?
            .iter()
            .map(|o| {
                model
                    .outlet_label(*o)
                    .map(str::to_string)
                    .unwrap_or_else(|| model.node(o.node).name.clone())
            })
            .collect();
        bail!("the manifest names output '{wanted}', the model has {have:?}");
    }
    model.select_outputs_by_name([wanted])
}

/// tract 0.23.9's Intel AMX int8 matrix kernel (`avx512amx_mmm_i32_8x8`,
/// chosen on CPUs with AMX such as Sapphire Rapids Xeons) crashed the
/// appliance with SIGSEGV in 4 of 6 `neuroscreen scan --precision int8`
/// runs over the samples on such a machine, and in none of 6 with it taken
/// out of tract's kernel pool (docs/TRACT_SPEED.md); tract then picks one of
/// its other int8 kernels. Must run before tract first probes
/// the CPU (its feature set is fixed then); a `TRACT_CPU_ISA` the user set
/// is left as it is. The board (aarch64) has no such kernel.
pub fn keep_tract_off_amx_int8() {
    #[cfg(target_arch = "x86_64")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            if std::env::var_os("TRACT_CPU_ISA").is_none() {
                tract_linalg::knobs::TRACT_CPU_ISA.set(Some("-amx-int8".to_string()));
            }
        });
    }
}

/// tract 0.23's x86 kernels return with the upper halves of the vector
/// registers dirty (no `vzeroupper`), and on the Xeons we measured every
/// legacy-SSE instruction that runs after them (the baseline x86_64 build of
/// our own code, libm's `expf`) then pays a state-transition penalty: the
/// segmenter's sigmoid over 128x128 logits took 2.7 ms after a model run and
/// 0.04 ms after a `vzeroupper` (`neuroscreen bench` prints the steps;
/// `examples/avx_transition.rs` reproduces it). Clearing the state once after
/// each run gives the appliance's own work its normal speed.
#[inline]
pub fn clear_upper_vector_state() {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the CPU has AVX (checked just above), all `vzeroupper` needs.
            unsafe { zero_upper() }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn zero_upper() {
    std::arch::x86_64::_mm256_zeroupper();
}
