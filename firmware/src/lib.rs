//! The appliance as a library: the `neuroscreen` binary is a thin CLI over
//! it, and the fuzz targets and benches reach the same code paths.

pub mod bench;
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
pub mod scan;
pub mod screen;
pub mod service;
pub mod signing;
pub mod soak;
pub mod store;
pub mod watchdog;
