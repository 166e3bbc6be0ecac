//! The appliance as a library: the `neuroscreen` binary is a thin CLI over
//! it, and the fuzz targets and benches reach the same code paths. What a
//! program embedding the appliance needs is re-exported here
//! (`firmware/examples/screen_one.rs` uses it).

pub mod bench;
pub mod caution;
pub mod check;
pub mod config;
pub mod demo;
pub mod dicom;
pub mod engine;
pub mod error;
pub mod hil;
pub mod input_file;
pub mod inputs;
pub mod inspect;
pub mod look;
pub mod screen;
pub mod screener;
pub mod service;
pub mod signing;
pub mod soak;
pub mod store;
pub mod watchdog;

pub use config::ApplianceConfig;
pub use engine::{Engine, EngineConfig, PrecisionChoice, Screening, Verdict};
pub use error::{Error, Result};
pub use screener::{open_slice, Screener};
pub use store::{Record, RecordVerdict, ResultsStore};
