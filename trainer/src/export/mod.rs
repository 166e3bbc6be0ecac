//! Export: trained weights to ONNX (f32 and int8), checked with tract.

pub mod arch_bench;
pub mod bench;
pub mod calibrate;
pub mod graph;
pub mod lower;
pub mod model_card;
pub mod npy;
pub mod onnx_f32;
pub mod operating_point;
pub mod per_source;
pub mod quantize;
pub mod ship;
pub mod tract_check;
