//! The radiographer's view: the slice with its mask (translucent fill and
//! outline), the verdict in words and colour, probability, area, latency,
//! the running counters, and a status strip (models and their versions,
//! input sources, last error); an idle screen between slices. Drawn with
//! embedded-graphics into a frame in memory that any panel shows, in one of
//! three layouts chosen from the panel's size.

pub mod layout;
mod picture;
mod text;

use crate::engine::precision;
use crate::error::{Error, Result};
use crate::store::{Record, RecordVerdict};
use board::PngSnapshot;
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Line, PrimitiveStyle, Rectangle};
use layout::{Layout, LayoutKind};
pub use picture::Picture;
use std::collections::BTreeMap;
use std::path::Path;

/// What the screen shows besides the slice: running counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    pub seen: usize,
    pub flagged: usize,
    pub errors: usize,
}

/// Everything on screen that is not the result itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScreenState {
    pub counters: Counters,
    /// One line per model: name, architecture, precision, file hash prefix.
    pub models: Vec<String>,
    /// Where slices come from: the inbox, a camera and its state.
    pub sources: Vec<String>,
    pub last_error: Option<String>,
    /// Extra lines under the figures (the demo's known truth).
    pub notes: Vec<String>,
}

const BACKGROUND: Rgb888 = Rgb888::new(8, 10, 14);
const TEXT: Rgb888 = Rgb888::new(235, 235, 235);
const DIM: Rgb888 = Rgb888::new(150, 155, 165);
const AMBER: Rgb888 = Rgb888::new(255, 190, 40);
const STATUS_BG: Rgb888 = Rgb888::new(28, 30, 40);

/// The verdict's word, the line under it, and its colours (banner, text).
fn verdict_look(v: RecordVerdict) -> (&'static str, &'static str, Rgb888, Rgb888) {
    match v {
        RecordVerdict::Tumour => (
            "TUMOUR",
            "suspected: review",
            Rgb888::new(200, 30, 30),
            Rgb888::WHITE,
        ),
        RecordVerdict::Clear => (
            "CLEAR",
            "no tumour found",
            Rgb888::new(20, 125, 60),
            Rgb888::WHITE,
        ),
        RecordVerdict::Error => (
            "ERROR",
            "slice not screened",
            Rgb888::new(235, 165, 0),
            Rgb888::BLACK,
        ),
    }
}

/// Draws `record` on a `width` x `height` screen.
pub fn draw_result(record: &Record, state: &ScreenState, size: (u32, u32)) -> Result<PngSnapshot> {
    draw_result_with(record, Picture::of_record(record).as_ref(), state, size)
}

/// As [`draw_result`], with the picture already in memory (the demo has
/// the slice and mask it just screened; nothing is read back from disk).
pub fn draw_result_with(
    record: &Record,
    picture: Option<&Picture>,
    state: &ScreenState,
    (width, height): (u32, u32),
) -> Result<PngSnapshot> {
    let l = Layout::for_size(width, height);
    let mut screen = blank(&l);
    picture::draw(&mut screen, picture, l.picture, l.outline);
    if picture.is_none() {
        centred_note(&mut screen, &l, "no picture");
    }
    let (word, meaning, banner, ink) = verdict_look(record.verdict);
    let mut y = banner_with(&mut screen, &l, word, banner, ink);
    let col = l.column;
    let x = col.top_left.x;
    let f = l.figure_font;
    let chars = Layout::chars_in(col.size.width, f, 1);
    let line_h = f.character_size.height + 4;
    y += text::draw(
        &mut screen,
        &text::fit(meaning, chars),
        Point::new(x, y),
        f,
        1,
        TEXT,
    ) + 8;
    // The figures a radiographer reads first are larger on a big panel.
    let big = if l.kind == LayoutKind::Compact { 1 } else { 2 };
    let big_chars = Layout::chars_in(col.size.width, f, big);
    match record.verdict {
        RecordVerdict::Error => {
            let message = record.error.as_deref().unwrap_or("unknown error");
            for line in text::wrap(message, chars, 6) {
                y += text::draw(&mut screen, &line, Point::new(x, y), f, 1, AMBER) + 2;
            }
        }
        _ => {
            let p = record.tumour_probability.unwrap_or(0.0);
            // The verdict follows the mask: a clear slice the filter passed
            // says its mask is empty rather than showing a bare high p.
            let area = match (record.verdict, record.area_mm2, record.area_px) {
                (RecordVerdict::Clear, _, _) if record.mask.is_some() => "mask empty".into(),
                (_, Some(mm2), _) => format!("area {mm2:.1} mm²"),
                (_, None, Some(px)) => format!("area {px} px"),
                (_, None, None) => "area -".into(),
            };
            let p_line = format!("{} {p:.2}", record.probability_label());
            for line in [p_line, area] {
                y += text::draw(
                    &mut screen,
                    &text::fit(&line, big_chars),
                    Point::new(x, y),
                    f,
                    big,
                    TEXT,
                ) + 6;
            }
            // Amber like an error: the verdict stands, but on an input the
            // models were not made for.
            if let Some(caution) = &record.caution {
                for line in text::wrap(&format!("caution: {caution}"), chars, 3) {
                    y += text::draw(&mut screen, &line, Point::new(x, y), f, 1, AMBER) + 2;
                }
                y += 2;
            }
            let latency = format!("{:.0} ms  {}", record.latency_ms.total, record.precision);
            y += text::draw(
                &mut screen,
                &text::fit(&latency, chars),
                Point::new(x, y),
                f,
                1,
                DIM,
            ) + 4;
        }
    }
    let name = record
        .input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    y += text::draw(
        &mut screen,
        &text::fit(&name, chars),
        Point::new(x, y),
        f,
        1,
        DIM,
    ) + line_h as i32 / 2;
    for note in &state.notes {
        y += text::draw(
            &mut screen,
            &text::fit(note, chars),
            Point::new(x, y),
            f,
            1,
            DIM,
        ) + 2;
    }
    counters(&mut screen, &l, &state.counters);
    status(&mut screen, &l, state);
    Ok(screen)
}

/// The screen between slices: ready, what it watches, what it has done.
pub fn draw_idle(state: &ScreenState, (width, height): (u32, u32)) -> Result<PngSnapshot> {
    let l = Layout::for_size(width, height);
    let mut screen = blank(&l);
    picture::draw(&mut screen, None, l.picture, l.outline);
    centred_note(&mut screen, &l, "waiting for a slice");
    let mut y = banner_with(
        &mut screen,
        &l,
        "READY",
        Rgb888::new(35, 80, 160),
        Rgb888::WHITE,
    );
    let col = l.column;
    let f = l.figure_font;
    let chars = Layout::chars_in(col.size.width, f, 1);
    for line in ["neuroscreen", "screening aid, not a diagnosis"] {
        y += text::draw(
            &mut screen,
            &text::fit(line, chars),
            Point::new(col.top_left.x, y),
            f,
            1,
            TEXT,
        ) + 4;
    }
    counters(&mut screen, &l, &state.counters);
    status(&mut screen, &l, state);
    Ok(screen)
}

/// Written like a result (whole or not at all, owner-only): the screen
/// shows a patient's slice.
pub fn save(screen: &PngSnapshot, path: &Path) -> Result<()> {
    let mut png = std::io::Cursor::new(Vec::new());
    screen
        .to_image()
        .write_to(&mut png, image::ImageFormat::Png)
        .map_err(|source| Error::Encode {
            path: path.to_path_buf(),
            source,
        })?;
    crate::store::write_file_atomically(path, png.get_ref())
}

/// One status line per model: `name architecture precision sha256-prefix`,
/// the file that actually runs (`by_model`: model name to precision name).
pub fn model_versions(
    manifest: &models::Manifest,
    by_model: &BTreeMap<String, String>,
) -> Vec<String> {
    manifest
        .filter()
        .into_iter()
        .chain([manifest.segmenter()])
        .map(|m| {
            let running = by_model.get(&m.name).map(String::as_str).unwrap_or("?");
            let hash = m
                .files
                .iter()
                .find(|f| precision::name(f.precision) == running)
                .map(|f| f.sha256.get(..8).unwrap_or(&f.sha256))
                .unwrap_or("-");
            format!("{} {} {running} {hash}", m.name, m.architecture)
        })
        .collect()
}

fn blank(l: &Layout) -> PngSnapshot {
    let mut screen = PngSnapshot::new(l.size.width, l.size.height);
    let _ = screen.clear(BACKGROUND);
    screen
}

/// The verdict banner across the top of the column; returns the y below it.
fn banner_with(screen: &mut PngSnapshot, l: &Layout, word: &str, fill: Rgb888, ink: Rgb888) -> i32 {
    let col = l.column;
    let font = l.verdict_font;
    let pad = 4 * l.verdict_scale;
    let h = font.character_size.height * l.verdict_scale + 2 * pad;
    let banner = Rectangle::new(col.top_left, Size::new(col.size.width, h));
    let _ = banner
        .into_styled(PrimitiveStyle::with_fill(fill))
        .draw(screen);
    text::draw(
        screen,
        word,
        col.top_left + Point::new(pad as i32, pad as i32),
        font,
        l.verdict_scale,
        ink,
    );
    col.top_left.y + h as i32 + 2 * l.margin as i32
}

fn centred_note(screen: &mut PngSnapshot, l: &Layout, note: &str) {
    let f = l.figure_font;
    let w = note.chars().count() as u32 * (f.character_size.width + f.character_spacing);
    let c = l.picture.center();
    let at = Point::new(c.x - w as i32 / 2, c.y - f.character_size.height as i32 / 2);
    text::draw(screen, note, at, f, 1, DIM);
}

/// Slices seen, flagged and failed, at the bottom of the column.
fn counters(screen: &mut PngSnapshot, l: &Layout, c: &Counters) {
    let f = l.figure_font;
    let col = l.column;
    let chars = Layout::chars_in(col.size.width, f, 1);
    let one = format!(
        "seen {}  flagged {}  errors {}",
        c.seen, c.flagged, c.errors
    );
    // A narrow column takes two lines rather than cutting a count off.
    let lines = if one.chars().count() <= chars {
        vec![one]
    } else {
        vec![
            format!("seen {}  flagged {}", c.seen, c.flagged),
            format!("errors {}", c.errors),
        ]
    };
    let colour = if c.errors > 0 { AMBER } else { TEXT };
    let line_h = f.character_size.height as i32 + 2;
    let mut y = col.top_left.y + col.size.height as i32 - line_h * lines.len() as i32 + 2;
    for line in lines {
        y += text::draw(
            screen,
            &text::fit(&line, chars),
            Point::new(col.top_left.x, y),
            f,
            1,
            colour,
        ) + 2;
    }
}

/// Models, sources and the last error along the bottom.
fn status(screen: &mut PngSnapshot, l: &Layout, state: &ScreenState) {
    let s = l.status;
    let _ = s
        .into_styled(PrimitiveStyle::with_fill(STATUS_BG))
        .draw(screen);
    let _ = Line::new(s.top_left, s.top_left + Point::new(s.size.width as i32, 0))
        .into_styled(PrimitiveStyle::with_stroke(Rgb888::new(70, 75, 90), 1))
        .draw(screen);
    let f = l.status_font;
    let chars = Layout::chars_in(s.size.width.saturating_sub(2 * l.margin), f, 1);
    let models = if state.models.is_empty() {
        "models: -".to_string()
    } else {
        format!("models: {}", state.models.join("; "))
    };
    let sources = format!("source: {}", state.sources.join(" | "));
    let (error, error_colour) = match &state.last_error {
        Some(e) => (format!("last error: {e}"), AMBER),
        None => ("last error: none".to_string(), DIM),
    };
    let mut y = s.top_left.y + 4;
    for (line, colour) in [(models, DIM), (sources, DIM), (error, error_colour)] {
        y += text::draw(
            screen,
            &text::fit(&line, chars),
            Point::new(l.margin as i32, y),
            f,
            1,
            colour,
        ) + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_screen_is_drawn_without_a_picture() {
        let mut r = Record::new("/nowhere/x.png".into(), "f32".into(), Default::default());
        r.error = Some("/nowhere/x.png: No such file or directory".into());
        let screen = draw_result(&r, &ScreenState::default(), (320, 240)).unwrap();
        let img = screen.to_image();
        assert_eq!(img.dimensions(), (320, 240));
        // The amber verdict banner is on it.
        assert!(img.pixels().any(|p| p.0 == [235, 165, 0]));
    }

    #[test]
    fn a_caution_is_written_in_amber_beside_the_verdict() {
        let amber = |r: &Record, size| {
            let screen = draw_result(r, &ScreenState::default(), size).unwrap();
            screen
                .to_image()
                .pixels()
                .filter(|p| p.0 == [AMBER.r(), AMBER.g(), AMBER.b()])
                .count()
        };
        let mut r = Record::new("/in/dwi.dcm".into(), "f32".into(), Default::default());
        r.verdict = RecordVerdict::Clear;
        r.tumour_probability = Some(0.02);
        for size in [(320, 240), (800, 480)] {
            assert_eq!(amber(&r, size), 0, "{size:?}");
            r.caution = Some("outside the models' training: diffusion-weighted EPI".into());
            assert!(amber(&r, size) > 50, "{size:?}");
            r.caution = None;
        }
    }
}
