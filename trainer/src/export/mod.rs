//! Export: trained weights to ONNX (f32 and int8), checked with tract.

pub mod calibrate;
pub mod graph;
pub mod lower;
pub mod onnx_f32;
pub mod quantize;
pub mod tract_check;
