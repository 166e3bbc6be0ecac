//! What is stored per input: one line in `results.jsonl` and the same
//! fields, pretty-printed, in `<stem>.json`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordVerdict {
    Tumour,
    Clear,
    Error,
}

impl From<crate::engine::Verdict> for RecordVerdict {
    fn from(v: crate::engine::Verdict) -> Self {
        match v {
            crate::engine::Verdict::Tumour => RecordVerdict::Tumour,
            crate::engine::Verdict::Clear => RecordVerdict::Clear,
        }
    }
}

/// Milliseconds; a stage that did not run is `null`. `total` runs from
/// opening the file to the finished mask (storing it is not included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub filter: Option<f64>,
    pub segment: Option<f64>,
    pub total: f64,
}

/// Every key is always present (`null` where it does not apply), so a
/// reader never has to tell a missing key from a missing value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub input: PathBuf,
    /// sha256 of the input's bytes: with `input` it tells a later run (or a
    /// restarted service) that this exact file already has a result.
    pub input_sha256: Option<String>,
    pub verdict: RecordVerdict,
    pub tumour_probability: Option<f32>,
    /// The 0/255 mask PNG at the input's size, when the segmenter ran.
    pub mask: Option<PathBuf>,
    pub overlay: Option<PathBuf>,
    pub record: Option<PathBuf>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub area_px: Option<u64>,
    /// The tumour area in mm², when the pixel spacing is known.
    pub area_mm2: Option<f64>,
    /// [between rows, between columns] in mm: from the slice (DICOM) or
    /// stated in the configuration.
    pub pixel_spacing_mm: Option<[f64; 2]>,
    /// [x, y, width, height] in input pixels.
    pub bbox: Option<[u32; 4]>,
    /// Mean tumour probability inside the mask.
    pub confidence: Option<f32>,
    pub latency_ms: Latency,
    /// `f32`, `int8`, or `mixed` (see `precision_by_model`).
    pub precision: String,
    pub precision_by_model: BTreeMap<String, String>,
    pub error: Option<String>,
    /// UTC, RFC 3339, when the result was stored, by the wall clock: for
    /// people. A box without a battery-backed clock may have it wrong.
    pub finished_at: Option<String>,
    /// The result's place in the store's log, from 1: results are ordered
    /// by it, never by a clock. Logs from before it lack the key.
    #[serde(default)]
    pub seq: Option<u64>,
    /// Seconds the appliance had been running with this store when the
    /// result was stored (`store::clock`): retention ages results by it, so
    /// a wall clock that jumps cannot delete or keep them wrongly.
    #[serde(default)]
    pub running_s: Option<f64>,
    /// For DICOM inputs: what the image is in the scanner's world, and the
    /// DICOM result objects written for it. Logs written before DICOM
    /// output existed lack the key.
    #[serde(default)]
    pub dicom: Option<DicomRef>,
    /// Why the input is unlike the slices the models were trained on, from
    /// its DICOM header (diffusion EPI, a mosaic, a localiser, not MR...):
    /// the verdict stands, to be read with that in mind. Logs from before
    /// it lack the key.
    #[serde(default)]
    pub caution: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DicomRef {
    pub study_instance_uid: Option<String>,
    pub series_instance_uid: Option<String>,
    pub sop_instance_uid: Option<String>,
    /// The frame (from 1) of a multi-frame file; `null` for single-frame.
    pub frame: Option<u32>,
    /// The binary Segmentation (`<stem>.seg.dcm`), when the mask was drawn.
    pub seg: Option<PathBuf>,
    /// The Secondary Capture with the overlay burned in (`<stem>.sc.dcm`),
    /// when configured.
    pub secondary_capture: Option<PathBuf>,
    /// Why a DICOM result object could not be written (the screening
    /// result above still stands).
    pub output_error: Option<String>,
    /// SeriesDescription and SeriesNumber, for the per-series summary.
    /// Logs from before them lack the keys.
    #[serde(default)]
    pub series_description: Option<String>,
    #[serde(default)]
    pub series_number: Option<i64>,
}

impl Record {
    pub fn new(input: PathBuf, precision: String, by_model: BTreeMap<String, String>) -> Self {
        Self {
            input,
            input_sha256: None,
            verdict: RecordVerdict::Error,
            tumour_probability: None,
            mask: None,
            overlay: None,
            record: None,
            width: None,
            height: None,
            area_px: None,
            area_mm2: None,
            pixel_spacing_mm: None,
            bbox: None,
            confidence: None,
            latency_ms: Latency::default(),
            precision,
            precision_by_model: by_model,
            error: None,
            finished_at: None,
            seq: None,
            running_s: None,
            dicom: None,
            caution: None,
        }
    }

    /// What the verdict rests on, in words that agree with it: the
    /// filter's probability when a filter ran (else the segmenter's
    /// highest pixel probability), and for a clear slice the filter passed
    /// whether the segmenter found nothing. A slice reads "clear" only with
    /// an empty mask, so a high filter probability beside "clear" always
    /// says why.
    pub fn verdict_basis(&self) -> String {
        let p = self.tumour_probability.unwrap_or(0.0);
        let source = self.probability_label();
        match self.verdict {
            RecordVerdict::Error => String::new(),
            RecordVerdict::Clear if self.mask.is_some() => format!("{source}={p:.3}, mask empty"),
            _ => format!("{source}={p:.3}"),
        }
    }

    /// What `tumour_probability` is: the filter's P(tumour) when a filter
    /// ran, else the segmenter's highest pixel probability.
    pub fn probability_label(&self) -> &'static str {
        if self.latency_ms.filter.is_some() {
            "filter p"
        } else {
            "peak p"
        }
    }
}

/// Latencies to the microsecond: finer digits are noise.
pub fn round_ms(ms: f64) -> f64 {
    (ms * 1e3).round() / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_basis_agrees_with_the_verdict() {
        let mut r = Record::new("s.png".into(), "f32".into(), BTreeMap::new());
        r.verdict = RecordVerdict::Clear;
        r.tumour_probability = Some(0.861);
        r.latency_ms.filter = Some(1.0);
        r.mask = Some("s_mask.png".into());
        assert_eq!(r.verdict_basis(), "filter p=0.861, mask empty");
        r.mask = None;
        r.tumour_probability = Some(0.012);
        assert_eq!(r.verdict_basis(), "filter p=0.012");
        r.verdict = RecordVerdict::Tumour;
        r.latency_ms.filter = None;
        r.tumour_probability = Some(0.97);
        assert_eq!(r.verdict_basis(), "peak p=0.970");
        r.verdict = RecordVerdict::Error;
        assert_eq!(r.verdict_basis(), "");
    }
}
