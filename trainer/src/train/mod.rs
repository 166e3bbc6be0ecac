//! Training: config, in-memory dataset with threaded augmented batches,
//! the fit loop with early stopping and checkpoints.

pub mod adam;
pub mod amp;
pub mod checkpoint;
pub mod config;
pub mod dataset;
pub mod early_stop;
pub mod evaluate;
pub mod fit;
pub mod speed;

pub use config::FitConfig;
pub use fit::{fit, EpochRecord, FitOutcome};
