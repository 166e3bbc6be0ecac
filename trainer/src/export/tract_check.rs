//! Running an exported ONNX model with tract, as the appliance will.

use crate::{Error, Result};
use std::path::Path;
use tract_onnx::prelude::*;

pub type TractPlan = std::sync::Arc<TypedRunnableModel>;

/// Loads `path`, fixes the input shape, optimises.
pub fn load(path: &Path, input_shape: &[usize]) -> Result<TractPlan> {
    keep_off_amx_int8();
    let err = |e: TractError| Error::Data {
        path: path.to_path_buf(),
        reason: format!("tract: {e:#}"),
    };
    tract_onnx::onnx()
        .model_for_path(path)
        .and_then(|m| m.with_input_fact(0, f32::fact(input_shape).into()))
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .map_err(err)
}

/// tract 0.23.9's AMX int8 kernel crashes (SIGSEGV) on CPUs with AMX; the
/// appliance keeps tract off it (firmware's `engine::model::
/// keep_tract_off_amx_int8` says how it was found), and so must the
/// exporter, which scores the int8 files the appliance runs.
fn keep_off_amx_int8() {
    #[cfg(target_arch = "x86_64")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            if std::env::var_os("TRACT_CPU_ISA").is_none() {
                tract_onnx::prelude::tract_linalg::knobs::TRACT_CPU_ISA
                    .set(Some("-amx-int8".to_string()));
            }
        });
    }
}

/// Runs one input ([1,3,H,W] floats) and returns the first output's floats.
pub fn run(plan: &TractPlan, input_shape: &[usize], data: &[f32]) -> Result<Vec<f32>> {
    let t = tract_ndarray::ArrayD::from_shape_vec(input_shape, data.to_vec())
        .map_err(|e| Error::Invalid(format!("input shape: {e}")))?;
    let out = plan
        .run(tvec!(Tensor::from(t).into()))
        .map_err(|e| Error::Invalid(format!("tract run: {e:#}")))?;
    let view = out[0]
        .to_plain_array_view::<f32>()
        .map_err(|e| Error::Invalid(format!("tract output: {e:#}")))?;
    Ok(view.iter().copied().collect())
}

/// Names of the ops in the optimised graph, to check what tract executes.
pub fn optimised_ops(plan: &TractPlan) -> Vec<String> {
    plan.model()
        .nodes()
        .iter()
        .map(|n| n.op().name().to_string())
        .collect()
}

/// Whether the optimised graph runs convolutions as integer matmuls: im2col
/// packing and QSumB (the int8 weight sums for the zero-point correction),
/// which only tract's integer path needs. A graph that dequantised
/// everything and ran float convolutions would have neither.
pub fn runs_integer_matmuls(ops: &[String]) -> bool {
    ops.iter().any(|o| o == "QSumB") && ops.iter().any(|o| o == "Im2col")
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::manifest::Precision;
    use models::Manifest;

    fn shipped() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
    }

    #[test]
    fn shipped_int8_files_run_integer_matmuls_and_f32_files_do_not() {
        let dir = shipped();
        let manifest = Manifest::load(&dir.join("manifest.json")).unwrap();
        let mut int8_files = 0;
        for m in &manifest.models {
            let shape = m.input.shape.to_vec();
            for f in &m.files {
                let plan = load(&dir.join(&f.path), &shape).unwrap();
                let ops = optimised_ops(&plan);
                match f.precision {
                    Precision::Int8 => {
                        int8_files += 1;
                        assert!(runs_integer_matmuls(&ops), "{}: {ops:?}", f.path);
                    }
                    Precision::F32 => {
                        assert!(!runs_integer_matmuls(&ops), "{}: {ops:?}", f.path);
                    }
                }
            }
        }
        // The segmenter's int8 file passed the accuracy gate and ships.
        assert!(
            manifest.segmenter().file(Precision::Int8).is_some(),
            "the shipped segmenter has no int8 file"
        );
        assert!(int8_files >= 1);
    }

    #[test]
    fn integer_path_needs_both_markers() {
        let ops = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(runs_integer_matmuls(&ops(&[
            "Im2col",
            "QSumB",
            "OptMatMul"
        ])));
        assert!(!runs_integer_matmuls(&ops(&["Im2col", "OptMatMul"])));
        assert!(!runs_integer_matmuls(&ops(&["QSumB"])));
    }
}
