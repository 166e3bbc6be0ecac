//! `neuroscreen demo`: the shipped models over the shipped sample slices,
//! results in the store, a screen snapshot per slice, and a table that puts
//! each verdict next to the sample's known truth.

use crate::error::{Error, Result};
use crate::screen::Picture;
use crate::store::Record;
use models::metrics::MaskCounts;
use serde::Deserialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The screen the demo draws: a small HDMI panel.
pub const SCREEN: (u32, u32) = (480, 320);

/// What `samples.json` (written by `neuroscreen-train samples`) says of a sample.
#[derive(Debug, Clone, Deserialize)]
pub struct SampleTruth {
    pub file: String,
    pub mask: Option<String>,
    pub truth: String,
    pub lesion_px: usize,
}

pub fn read_truth(samples: &Path) -> Result<Vec<SampleTruth>> {
    let path = samples.join("samples.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::Io {
        path: path.clone(),
        source: e,
    })?;
    serde_json::from_str(&text).map_err(|e| Error::Demo(format!("{}: {e}", path.display())))
}

/// One row of the demo table.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoRow {
    pub file: String,
    pub truth: String,
    pub verdict: String,
    pub area_px: u64,
    pub true_px: usize,
    /// Dice against the true mask, where the sample has one.
    pub dice: Option<f64>,
    pub screen: PathBuf,
}

fn grey_mask(path: &Path) -> Result<Vec<bool>> {
    crate::inputs::read_mask(path).map_err(|e| Error::Demo(format!("{}: {e}", path.display())))
}

fn draw_screen(
    record: &Record,
    picture: Option<&Picture>,
    truth: &SampleTruth,
    mut state: crate::screen::ScreenState,
    path: &Path,
) -> Result<()> {
    state = crate::screen::ScreenState {
        notes: vec![
            format!("truth: {}", truth.truth),
            format!("true area {} px", truth.lesion_px),
        ],
        sources: vec!["demo: models/samples".into()],
        ..state
    };
    let screen = crate::screen::draw_result_with(record, picture, &state, SCREEN)?;
    crate::screen::save(&screen, path)
}

/// Scores the scan's `records` against the truth and draws a screen per
/// sample into `out` from the `pictures` screened beside them (a record
/// without one is drawn from its stored files).
pub fn review(
    records: &[Record],
    pictures: &[Option<Picture>],
    out: &Path,
    samples: &Path,
    truths: &[SampleTruth],
) -> Result<Vec<DemoRow>> {
    let mut rows = Vec::new();
    // The models folder is the samples folder's parent.
    let manifest = models::Manifest::load(&samples.join("../manifest.json")).ok();
    let mut counters = crate::screen::Counters::default();
    for truth in truths {
        // The newest record of this sample.
        let Some(at) = records
            .iter()
            .rposition(|r| r.input.file_name() == Some(truth.file.as_ref()))
        else {
            return Err(Error::Demo(format!("no result for sample {}", truth.file)));
        };
        let record = &records[at];
        let stored;
        let picture = match pictures.get(at) {
            Some(p) => p.as_ref(),
            None => {
                stored = Picture::of_record(record);
                stored.as_ref()
            }
        };
        let predicted = picture
            .and_then(|p| p.mask.as_ref())
            .map(|m| m.pixels().map(|px| px[0] >= 128).collect::<Vec<bool>>());
        let dice = match (&truth.mask, predicted) {
            (Some(t), Some(p)) => {
                let t = grey_mask(&samples.join(t))?;
                (t.len() == p.len()).then(|| MaskCounts::from_masks(&p, &t).dice())
            }
            (Some(_), None) => Some(0.0),
            _ => None,
        };
        let stem = Path::new(&truth.file)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("slice");
        let screen = out.join(format!("screen_{stem}.png"));
        counters.seen += 1;
        counters.flagged += usize::from(record.verdict == crate::store::RecordVerdict::Tumour);
        counters.errors += usize::from(record.verdict == crate::store::RecordVerdict::Error);
        let state = crate::screen::ScreenState {
            counters: counters.clone(),
            models: manifest.as_ref().map_or_else(Vec::new, |m| {
                crate::screen::model_versions(m, &record.precision_by_model)
            }),
            ..Default::default()
        };
        draw_screen(record, picture, truth, state, &screen)?;
        rows.push(DemoRow {
            file: truth.file.clone(),
            truth: truth.truth.clone(),
            verdict: format!("{:?}", record.verdict).to_lowercase(),
            area_px: record.area_px.unwrap_or(0),
            true_px: truth.lesion_px,
            dice,
            screen,
        });
    }
    Ok(rows)
}

pub fn print_table(rows: &[DemoRow], out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "\n{:<40} {:<7} {:<8} {:>8} {:>8} {:>6}",
        "sample", "truth", "verdict", "area px", "true px", "Dice"
    )?;
    for r in rows {
        let dice = r.dice.map_or("-".to_string(), |d| format!("{d:.2}"));
        writeln!(
            out,
            "{:<40} {:<7} {:<8} {:>8} {:>8} {:>6}",
            r.file, r.truth, r.verdict, r.area_px, r.true_px, dice
        )?;
    }
    let agree = rows.iter().filter(|r| r.truth == r.verdict).count();
    writeln!(
        out,
        "verdicts matching the truth: {agree} of {}",
        rows.len()
    )
}
