//! The contract between the neuroscreen trainer and the appliance.
//!
//! Everything that must agree on both sides lives here so that train-time and
//! run-time cannot drift: the model manifest, image decoding and the mapping
//! of a slice to a model input (and of a mask back to the slice), and the mask
//! metrics used in evaluation reports.

pub mod components;
mod error;
pub mod integrity;
pub mod manifest;
pub mod metrics;
pub mod preprocess;
pub mod resample;
pub mod signature;
pub mod slice;

pub use error::{Error, Result};
pub use manifest::{Manifest, ModelEntry, Role};
pub use metrics::MaskCounts;
pub use preprocess::{Geometry, ModelInput, Normalisation, Preprocessing, ResizePolicy};
pub use slice::SliceImage;
