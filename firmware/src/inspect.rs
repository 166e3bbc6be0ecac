//! `neuroscreen inspect`: decode each slice and map it to the model input
//! through the shared preprocessing, reporting what the models would see.

use crate::error::{Error, Result};
use models::{preprocess, Preprocessing};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Serialize)]
pub struct Report {
    pub input: PathBuf,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bit_depth: Option<u8>,
    /// Share of the model input that is image content (not letterbox padding).
    /// Raw intensity range and mean after decoding (DICOM: after the
    /// modality LUT), before normalisation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pixel_spacing_mm: Option<[f64; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_share: Option<f32>,
    /// Why the input is unlike the models' training slices, from its
    /// DICOM header and its size (as a screening result would carry it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caution: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub fn inspect_one(path: &Path, size: u32) -> Report {
    let mut r = Report {
        input: path.to_path_buf(),
        ok: false,
        width: None,
        height: None,
        channels: None,
        bit_depth: None,
        min: None,
        max: None,
        mean: None,
        pixel_spacing_mm: None,
        content_share: None,
        caution: None,
        error: None,
    };
    let prepared =
        crate::screener::open_slice_with_caution(path, (size, size)).and_then(|(s, caution)| {
            r.caution = caution;
            r.width = Some(s.width);
            r.height = Some(s.height);
            r.channels = Some(s.channels);
            r.bit_depth = Some(s.bit_depth);
            r.pixel_spacing_mm = s.pixel_spacing_mm;
            r.min = s.data.iter().copied().reduce(f32::min);
            r.max = s.data.iter().copied().reduce(f32::max);
            r.mean = Some(s.data.iter().map(|v| f64::from(*v)).sum::<f64>() / s.data.len() as f64);
            Ok(preprocess::prepare(
                &s,
                &Preprocessing::default(),
                size,
                size,
            )?)
        });
    match prepared {
        Ok(input) => {
            let [_, _, w, h] = input.geometry.content;
            r.content_share = Some((w * h) as f32 / (size * size) as f32);
            r.ok = true;
        }
        Err(e) => r.error = Some(e.to_string()),
    }
    r
}

/// Writes one line per file and returns how many failed.
pub fn run(files: &[PathBuf], size: u32, json: bool, out: &mut impl Write) -> Result<usize> {
    let mut failed = 0;
    for f in files {
        let r = inspect_one(f, size);
        failed += usize::from(!r.ok);
        let line = if json {
            serde_json::to_string(&r)?
        } else if let Some(e) = &r.error {
            format!("error  {e}")
        } else {
            format!(
                "ok     {}  {}x{} {}ch {}-bit, {:.0}% of the {size}x{size} input is image",
                f.display(),
                r.width.unwrap_or(0),
                r.height.unwrap_or(0),
                r.channels.unwrap_or(0),
                r.bit_depth.unwrap_or(0),
                100.0 * r.content_share.unwrap_or(0.0)
            ) + &r
                .caution
                .as_ref()
                .map_or(String::new(), |c| format!("\n       caution: {c}"))
        };
        writeln!(out, "{line}").map_err(Error::Report)?;
    }
    if !json {
        writeln!(out, "{} inspected, {} failed", files.len(), failed).map_err(Error::Report)?;
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_and_bad_files_each_get_a_line() {
        let d = tempfile::tempdir().unwrap();
        let good = d.path().join("good.png");
        image::GrayImage::from_fn(300, 200, |x, _| image::Luma([x as u8]))
            .save(&good)
            .unwrap();
        let bad = d.path().join("bad.png");
        std::fs::write(&bad, b"\x89PNG\r\n\x1a\nbroken").unwrap();
        let mut out = Vec::new();
        let failed = run(&[good.clone(), bad.clone()], 256, true, &mut out).unwrap();
        assert_eq!(failed, 1);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["ok"], true);
        assert_eq!(lines[0]["width"], 300);
        let share = lines[0]["content_share"].as_f64().unwrap();
        assert!((share - 2.0 / 3.0).abs() < 0.01, "{share}");
        assert_eq!(lines[1]["ok"], false);
        assert!(lines[1]["error"].as_str().unwrap().contains("bad.png"));
    }
}
