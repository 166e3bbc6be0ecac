//! Hardware in the loop: the board screens slices a test bench sends it and
//! answers with the result and per-stage latencies, so the same check runs
//! on a real Pi or Jetson (real speed) and here against the emulated build.
//!
//! `neuroscreen hil serve` runs on the board; `neuroscreen hil drive` on the
//! host sends slices, collects the answers and reports p50/p95 per stage
//! and throughput. Nothing listens unless `hil serve` is started by hand.
//!
//! The protocol (TCP, one connection at a time, any number of slices per
//! connection): the host sends a JSON line `{"name": "...", "bytes": N}`
//! followed by the N bytes of the slice file; the board answers with one
//! JSON line, a [`Reply`]. The host closes the connection when done.

pub mod drive;
pub mod serve;
pub mod stats;

use serde::{Deserialize, Serialize};

/// Larger than any slice file (a 16-bit 1024x1024 DICOM is 2 MiB).
pub const MAX_SLICE_BYTES: u64 = 64 << 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub name: String,
    pub bytes: u64,
}

/// Milliseconds per stage on the board; `None` where a stage did not run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Stages {
    /// Reading the slice's bytes off the socket.
    pub receive: f64,
    /// The filter model, pre- and post-processing included.
    pub filter: Option<f64>,
    /// The segmenter, pre- and post-processing included.
    pub segment: Option<f64>,
    /// Decoding and every model: the appliance's `latency_ms.total`.
    pub screen: f64,
    /// Writing mask, overlay, record and log line (fsynced).
    pub store: f64,
    /// From the first byte of the slice to the answer being ready.
    pub board: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    pub name: String,
    /// `tumour`, `clear` or `error`.
    pub verdict: String,
    pub tumour_probability: Option<f32>,
    pub area_px: Option<u64>,
    pub area_mm2: Option<f64>,
    pub precision: String,
    pub error: Option<String>,
    pub stages_ms: Stages,
    /// `std::env::consts::ARCH` of the board, so a report says where it ran.
    pub arch: String,
}
