//! Drawing through the board's one seam: embedded-graphics draws a frame
//! into memory (`PngSnapshot`, a `DrawTarget`) and a `Panel` shows it, here
//! the PNG file a headless box or a kiosk browser displays. A framebuffer
//! or an SPI LCD takes the same frame.
//!
//!     cargo run -p board --example panel_png -- out/panel.png

use board::panel::{Panel, SnapshotFile};
use board::PngSnapshot;
use embedded_graphics::mono_font::{ascii::FONT_10X20, MonoTextStyle};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Circle, PrimitiveStyle, Rectangle};
use embedded_graphics::text::Text;
use std::path::PathBuf;

fn main() -> board::Result<()> {
    let out = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("panel.png"), PathBuf::from);
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| board::Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let mut panel = SnapshotFile::new(&out, 480, 320);
    let (w, h) = panel.size();
    let mut frame = PngSnapshot::new(w, h);
    // Infallible drawing into memory: the frame is a plain pixel buffer.
    let _ = frame.clear(Rgb888::BLACK);
    let _ = Rectangle::new(Point::new(20, 20), Size::new(280, 280))
        .into_styled(PrimitiveStyle::with_stroke(Rgb888::CSS_GRAY, 2))
        .draw(&mut frame);
    // A stand-in for a mask outline on the slice.
    let _ = Circle::new(Point::new(130, 110), 60)
        .into_styled(PrimitiveStyle::with_stroke(Rgb888::RED, 3))
        .draw(&mut frame);
    let style = MonoTextStyle::new(&FONT_10X20, Rgb888::RED);
    let _ = Text::new("TUMOUR", Point::new(320, 60), style).draw(&mut frame);
    let style = MonoTextStyle::new(&FONT_10X20, Rgb888::WHITE);
    let _ = Text::new("p = 0.97", Point::new(320, 100), style).draw(&mut frame);
    panel.show(&frame)?;
    println!("{}: {w}x{h}", panel.describe());
    Ok(())
}
