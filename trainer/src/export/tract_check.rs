//! Running an exported ONNX model with tract, as the appliance will.

use crate::{Error, Result};
use std::path::Path;
use tract_onnx::prelude::*;

pub type TractPlan = std::sync::Arc<TypedRunnableModel>;

/// Loads `path`, fixes the input shape, optimises.
pub fn load(path: &Path, input_shape: &[usize]) -> Result<TractPlan> {
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
