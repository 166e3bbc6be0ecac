//! `neuroscreen demo`: the shipped models over the shipped sample slices,
//! results in the store, a screen snapshot per slice, and a table that puts
//! each verdict next to the sample's known truth.

use crate::error::{Error, Result};
use crate::store::{Record, RecordVerdict};
use board::PngSnapshot;
use embedded_graphics::mono_font::ascii::{FONT_10X20, FONT_7X13};
use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::text::Text;
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
    let img = image::open(path).map_err(|e| Error::Demo(format!("{}: {e}", path.display())))?;
    Ok(img.to_luma8().pixels().map(|p| p[0] != 0).collect())
}

/// Draws the radiographer's view of one result and saves it.
fn draw_screen(record: &Record, truth: &SampleTruth, path: &Path) -> Result<()> {
    let mut screen = PngSnapshot::new(SCREEN.0, SCREEN.1);
    let picture = match (&record.overlay, &record.input) {
        (Some(overlay), _) => image::open(overlay),
        (None, input) => image::open(input),
    }
    .map_err(|e| Error::Demo(format!("{}: {e}", record.input.display())))?
    .to_rgb8();
    let side = SCREEN.1 - 16;
    let fitted =
        image::imageops::resize(&picture, side, side, image::imageops::FilterType::Triangle);
    let pixels = fitted.enumerate_pixels().map(|(x, y, p)| {
        Pixel(
            Point::new(8 + x as i32, 8 + y as i32),
            Rgb888::new(p[0], p[1], p[2]),
        )
    });
    let _ = screen.draw_iter(pixels);
    let (verdict, colour) = match record.verdict {
        RecordVerdict::Tumour => ("TUMOUR", Rgb888::new(255, 70, 60)),
        RecordVerdict::Clear => ("CLEAR", Rgb888::new(80, 220, 110)),
        RecordVerdict::Error => ("ERROR", Rgb888::new(255, 200, 0)),
    };
    let x = side as i32 + 20;
    let big = MonoTextStyle::new(&FONT_10X20, colour);
    let small = MonoTextStyle::new(&FONT_7X13, Rgb888::WHITE);
    let _ = Text::new(verdict, Point::new(x, 34), big).draw(&mut screen);
    let lines = [
        format!("p(tumour) {:.2}", record.tumour_probability.unwrap_or(0.0)),
        format!("area {} px", record.area_px.unwrap_or(0)),
        format!("{:.0} ms", record.latency_ms.total),
        format!("model {}", record.precision),
        String::new(),
        format!("truth: {}", truth.truth),
        format!("true area {} px", truth.lesion_px),
    ];
    for (i, l) in lines.iter().enumerate() {
        let _ = Text::new(l, Point::new(x, 64 + 18 * i as i32), small).draw(&mut screen);
    }
    screen.save(path).map_err(|e| Error::Demo(e.to_string()))
}

/// Reads the scan's records, scores them against the truth and draws screens.
pub fn review(out: &Path, samples: &Path, truths: &[SampleTruth]) -> Result<Vec<DemoRow>> {
    let log = out.join(crate::store::RESULTS_LOG);
    let text = std::fs::read_to_string(&log).map_err(|e| Error::Io {
        path: log.clone(),
        source: e,
    })?;
    let records: Vec<Record> = text
        .lines()
        .map(|l| {
            serde_json::from_str(l).map_err(|e| Error::Demo(format!("{}: {e}", log.display())))
        })
        .collect::<Result<_>>()?;
    let mut rows = Vec::new();
    for truth in truths {
        // The newest record of this sample (a rerun appends).
        let Some(record) = records
            .iter()
            .rev()
            .find(|r| r.input.file_name() == Some(truth.file.as_ref()))
        else {
            return Err(Error::Demo(format!("no result for sample {}", truth.file)));
        };
        let dice = match (&truth.mask, &record.mask) {
            (Some(t), Some(p)) => {
                let (t, p) = (grey_mask(&samples.join(t))?, grey_mask(p)?);
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
        draw_screen(record, truth, &screen)?;
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
