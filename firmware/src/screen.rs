//! The radiographer's view of one result: the slice with its overlay, the
//! verdict in words and colour, and a few lines of figures. Drawn with
//! embedded-graphics so the same code drives a PNG snapshot or a panel.

use crate::error::{Error, Result};
use crate::store::{Record, RecordVerdict};
use board::PngSnapshot;
use embedded_graphics::mono_font::ascii::{FONT_10X20, FONT_7X13};
use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::text::Text;
use std::path::Path;

/// Draws `record` on a `width` x `height` screen; `notes` go under the
/// figures (the demo's known truth, the service's counters).
pub fn draw_result(
    record: &Record,
    notes: &[String],
    (width, height): (u32, u32),
) -> Result<PngSnapshot> {
    let mut screen = PngSnapshot::new(width, height);
    let side = height.saturating_sub(16).min(width / 2);
    // Only our own overlay is drawn: an input that failed to decode has no
    // picture (the text says why), and reopening it with the image crate's
    // default limits would decode a hostile file a second time.
    if let Some(picture) = record.overlay.as_deref().and_then(|p| image::open(p).ok()) {
        let fitted = image::imageops::resize(
            &picture.to_rgb8(),
            side,
            side,
            image::imageops::FilterType::Triangle,
        );
        let pixels = fitted.enumerate_pixels().map(|(x, y, p)| {
            Pixel(
                Point::new(8 + x as i32, 8 + y as i32),
                Rgb888::new(p[0], p[1], p[2]),
            )
        });
        let _ = screen.draw_iter(pixels);
    }
    let (verdict, colour) = match record.verdict {
        RecordVerdict::Tumour => ("TUMOUR", Rgb888::new(255, 70, 60)),
        RecordVerdict::Clear => ("CLEAR", Rgb888::new(80, 220, 110)),
        RecordVerdict::Error => ("ERROR", Rgb888::new(255, 200, 0)),
    };
    let x = side as i32 + 20;
    let big = MonoTextStyle::new(&FONT_10X20, colour);
    let small = MonoTextStyle::new(&FONT_7X13, Rgb888::WHITE);
    let _ = Text::new(verdict, Point::new(x, 34), big).draw(&mut screen);
    let mut lines = match record.verdict {
        RecordVerdict::Error => wrap(record.error.as_deref().unwrap_or(""), 30),
        _ => vec![
            format!("p(tumour) {:.2}", record.tumour_probability.unwrap_or(0.0)),
            format!("area {} px", record.area_px.unwrap_or(0)),
            format!("{:.0} ms", record.latency_ms.total),
            format!("model {}", record.precision),
        ],
    };
    lines.push(String::new());
    lines.extend(notes.iter().cloned());
    for (i, l) in lines.iter().enumerate() {
        let _ = Text::new(l, Point::new(x, 64 + 18 * i as i32), small).draw(&mut screen);
    }
    Ok(screen)
}

/// The screen between slices: who is running and what it watches.
pub fn draw_idle(lines: &[String], (width, height): (u32, u32)) -> Result<PngSnapshot> {
    let mut screen = PngSnapshot::new(width, height);
    let style = MonoTextStyle::new(&FONT_7X13, Rgb888::WHITE);
    for (i, l) in lines.iter().enumerate() {
        let _ = Text::new(l, Point::new(12, 30 + 18 * i as i32), style).draw(&mut screen);
    }
    Ok(screen)
}

/// Written like a result (whole or not at all, owner-only): the screen
/// shows a patient's slice.
pub fn save(screen: &PngSnapshot, path: &Path) -> Result<()> {
    let mut png = std::io::Cursor::new(Vec::new());
    screen
        .to_image()
        .write_to(&mut png, image::ImageFormat::Png)
        .map_err(|e| Error::Encode {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    crate::store::write_file_atomically(path, png.get_ref())
}

/// Splits an error message into screen lines of at most `width` characters.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(width)
        .take(8)
        .map(|c| c.iter().collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_screen_is_drawn_without_a_picture() {
        let mut r = Record::new("/nowhere/x.png".into(), "f32".into(), Default::default());
        r.error = Some("/nowhere/x.png: No such file or directory".into());
        let screen = draw_result(&r, &["seen 1".into()], (320, 240)).unwrap();
        let img = screen.to_image();
        assert_eq!(img.dimensions(), (320, 240));
        // Some amber verdict text is on it.
        assert!(img.pixels().any(|p| p.0 == [255, 200, 0]));
    }

    #[test]
    fn long_errors_wrap() {
        assert_eq!(wrap("abcdefg", 3), ["abc", "def", "g"]);
    }
}
