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
use crate::store::series::SeriesRow;
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
    /// The series of the result shown, so far (the service's); drawn under
    /// the result so an earlier tumour slice of it stays in view.
    pub series: Option<SeriesRow>,
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
/// Tumour in words on the dark background (the banner's red is too dark).
const ALERT: Rgb888 = Rgb888::new(255, 90, 74);

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
    let mut latency_line = None;
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
            let latency = format!("{:.0} ms  {}", record.latency_ms.total, record.precision);
            latency_line = Some(Extra::new(text::fit(&latency, chars), DIM, 4, 6));
        }
    }
    // Below the figures, in reading order, what fits between them and the
    // counters; when a small panel has no room for all of it, the least
    // important lines go first (the file name, then the latency), never the
    // series' tumour.
    let mut extras: Vec<Extra> = Vec::new();
    if record.verdict != RecordVerdict::Error {
        if let Some(caution) = &record.caution {
            // Amber like an error: the verdict stands, but on an input the
            // models were not made for.
            let lines = if l.kind == LayoutKind::Compact { 2 } else { 3 };
            let shown = caution
                .strip_prefix(crate::caution::PREFIX)
                .map_or(format!("caution: {caution}"), |reasons| {
                    format!("outside training: {reasons}")
                });
            let wrapped = text::wrap(&shown, chars, lines);
            let last = wrapped.len().saturating_sub(1);
            for (i, line) in wrapped.into_iter().enumerate() {
                let advance = if i == last { 4 } else { 2 };
                extras.push(Extra::new(line, AMBER, advance, if i == 0 { 2 } else { 5 }));
            }
        }
    }
    extras.extend(latency_line);
    let name = record
        .input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    extras.push(Extra::new(
        text::fit(&name, chars),
        DIM,
        line_h as i32 / 2,
        7,
    ));
    if let Some(series) = &state.counters.series {
        // Label, then what it holds so far: "tumour 7-8 of 20".
        let (status, colour) = if series.tumour > 0 {
            (format!("tumour {}", series.flagged_text()), ALERT)
        } else {
            (format!("clear so far: {}", series.flagged_text()), DIM)
        };
        extras.push(Extra::new(text::fit(&series.label, chars), DIM, 2, 4));
        extras.push(Extra::new(text::fit(&status, chars), colour, 4, 1));
    }
    for note in &state.notes {
        extras.push(Extra::new(text::fit(note, chars), DIM, 2, 3));
    }
    let room = counters_top(&l, counter_lines(&l, &state.counters).len()) - y;
    let glyph = f.character_size.height as i32;
    let mut by_importance: Vec<usize> = (0..extras.len()).collect();
    by_importance.sort_by_key(|&i| extras[i].rank);
    let mut used = 0;
    let mut kept = vec![false; extras.len()];
    for i in by_importance {
        let cost = glyph + extras[i].advance;
        if used + cost <= room {
            used += cost;
            kept[i] = true;
        }
    }
    for (e, _) in extras.iter().zip(&kept).filter(|(_, &k)| k) {
        y += text::draw(&mut screen, &e.text, Point::new(x, y), f, 1, e.colour) + e.advance;
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

/// A line of the column below the figures: its text and colour, the space
/// after it, and how much it matters (1 first) when not all of them fit.
struct Extra {
    text: String,
    colour: Rgb888,
    advance: i32,
    rank: u8,
}

impl Extra {
    fn new(text: String, colour: Rgb888, advance: i32, rank: u8) -> Self {
        Self {
            text,
            colour,
            advance,
            rank,
        }
    }
}

/// The counters' lines: one, or two where the column is too narrow.
fn counter_lines(l: &Layout, c: &Counters) -> Vec<String> {
    let chars = Layout::chars_in(l.column.size.width, l.figure_font, 1);
    let one = format!(
        "seen {}  flagged {}  errors {}",
        c.seen, c.flagged, c.errors
    );
    if one.chars().count() <= chars {
        vec![one]
    } else {
        vec![
            format!("seen {}  flagged {}", c.seen, c.flagged),
            format!("errors {}", c.errors),
        ]
    }
}

/// Where `lines` lines of counters start (the column's content must end
/// above).
fn counters_top(l: &Layout, lines: usize) -> i32 {
    let line_h = l.figure_font.character_size.height as i32 + 2;
    let col = l.column;
    col.top_left.y + col.size.height as i32 - line_h * lines as i32 + 2
}

/// Slices seen, flagged and failed, at the bottom of the column.
fn counters(screen: &mut PngSnapshot, l: &Layout, c: &Counters) {
    let f = l.figure_font;
    let col = l.column;
    let chars = Layout::chars_in(col.size.width, f, 1);
    // A narrow column takes two lines rather than cutting a count off.
    let lines = counter_lines(l, c);
    let colour = if c.errors > 0 { AMBER } else { TEXT };
    let mut y = counters_top(l, lines.len());
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

    #[test]
    fn the_series_so_far_is_drawn_under_the_result_in_red_once_it_holds_a_tumour() {
        use crate::store::series::CurrentSeries;
        let alert = |r: &Record, state: &ScreenState, size| {
            let screen = draw_result(r, state, size).unwrap();
            screen
                .to_image()
                .pixels()
                .filter(|p| p.0 == [ALERT.r(), ALERT.g(), ALERT.b()])
                .count()
        };
        let mut now = CurrentSeries::default();
        let mut slice = |i: usize, verdict| {
            let mut r = Record::new(
                format!("/in/s/{i}.png").into(),
                "f32".into(),
                Default::default(),
            );
            r.verdict = verdict;
            r.tumour_probability = Some(0.1);
            r.area_px = Some(0);
            let row = now.add(&r).clone();
            (r, row)
        };
        let (first, row) = slice(1, RecordVerdict::Clear);
        let mut state = ScreenState::default();
        state.counters.series = Some(row);
        for size in [(320, 240), (800, 480), (1024, 600)] {
            assert_eq!(alert(&first, &state, size), 0, "{size:?}");
        }
        slice(2, RecordVerdict::Tumour);
        let (last, row) = slice(3, RecordVerdict::Clear);
        assert_eq!(row.flagged_text(), "2 of 3");
        state.counters.series = Some(row);
        // The last slice reads clear; the series' tumour is still in red,
        // also where a caution and notes crowd the smallest panel.
        let mut crowded = last.clone();
        crowded.caution = Some(format!(
            "{}diffusion-weighted EPI (b=1000); a mosaic of slices in one image",
            crate::caution::PREFIX
        ));
        let mut busy = state.clone();
        busy.notes = vec!["truth: tumour".into(), "sample 3 of 8".into()];
        for size in [(320, 240), (800, 480), (1024, 600)] {
            assert!(alert(&last, &state, size) > 30, "{size:?}");
            assert!(alert(&crowded, &busy, size) > 30, "{size:?}");
        }
    }
}
