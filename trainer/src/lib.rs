//! neuroscreen-train: everything between raw data and the shipped models.
//!
//! `data` reads the LGG layout, splits by patient, augments, and generates
//! phantoms on real anatomy. Training, evaluation and export build on it.

pub mod data;
mod error;
pub mod experiment;
pub mod export;
pub mod losses;
pub mod nets;
pub mod report;
pub mod train;

pub use error::{Error, Result};
