//! The slice as the radiographer sees it: windowed grey (or the RGB stack),
//! the mask as a translucent red fill with a solid yellow outline drawn at
//! the screen's own resolution, so the edge stays sharp at any size.

use crate::look;
use crate::store::Record;
use board::PngSnapshot;
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use image::imageops::FilterType;
use image::{GrayImage, RgbImage};
use models::preprocess::Window;
use models::SliceImage;

const FRAME: Rgb888 = Rgb888::new(70, 70, 70);

/// The slice and its mask at the slice's own size, windowed for display.
pub struct Picture {
    pub slice: RgbImage,
    pub mask: Option<GrayImage>,
}

impl Picture {
    /// From a slice in memory and its mask (the slice's size), windowed
    /// with the percentiles already measured on it, if any.
    pub fn of_slice(slice: &SliceImage, mask: Option<&[bool]>, window: Option<&Window>) -> Self {
        Self {
            slice: look::windowed_with(slice, window),
            mask: mask.map(|m| look::mask_image(m, slice.width, slice.height)),
        }
    }

    /// From a stored record: the input file (any format the appliance
    /// reads, DICOM included) and the mask PNG. `None` when the input
    /// cannot be read (an error record, a file since removed).
    pub fn of_record(record: &Record) -> Option<Self> {
        // An input that failed is not decoded a second time for the screen
        // (a hostile file would cost its decode twice); the text says why.
        if record.error.is_some() {
            return None;
        }
        let slice = crate::screener::open_slice(&record.input).ok()?;
        let (w, h) = (slice.width, slice.height);
        let mask = record
            .mask
            .as_ref()
            .and_then(|p| image::open(p).ok())
            .map(|m| m.to_luma8())
            .filter(|m| m.dimensions() == (w, h));
        Some(Self {
            slice: look::windowed(&slice),
            mask,
        })
    }
}

/// Draws `picture` fitted (aspect kept, centred) into `area`, with a thin
/// frame; an empty frame says there is no picture.
pub fn draw(screen: &mut PngSnapshot, picture: Option<&Picture>, area: Rectangle, outline: u32) {
    let _ = area
        .into_styled(PrimitiveStyle::with_stroke(FRAME, 1))
        .draw(screen);
    let Some(p) = picture else {
        return;
    };
    let inner = area.offset(-2);
    let (sw, sh) = p.slice.dimensions();
    let scale = (inner.size.width as f32 / sw as f32).min(inner.size.height as f32 / sh as f32);
    let (w, h) = (
        ((sw as f32 * scale).round() as u32).max(1),
        ((sh as f32 * scale).round() as u32).max(1),
    );
    let base = image::imageops::resize(&p.slice, w, h, FilterType::Triangle);
    let mask = p
        .mask
        .as_ref()
        .map(|m| image::imageops::resize(m, w, h, FilterType::Nearest));
    let painted = look::paint(&base, mask.as_ref(), outline);
    let origin = inner.top_left
        + Point::new(
            (inner.size.width.saturating_sub(w) / 2) as i32,
            (inner.size.height.saturating_sub(h) / 2) as i32,
        );
    let pixels = painted.enumerate_pixels().map(|(x, y, px)| {
        Pixel(
            origin + Point::new(x as i32, y as i32),
            Rgb888::new(px[0], px[1], px[2]),
        )
    });
    let _ = screen.draw_iter(pixels);
}
