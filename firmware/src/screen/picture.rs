//! The slice as the radiographer sees it: windowed grey (or the RGB stack),
//! the mask as a translucent red fill with a solid yellow outline drawn at
//! the screen's own resolution, so the edge stays sharp at any size.

use crate::store::Record;
use board::PngSnapshot;
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use image::imageops::FilterType;
use image::{GrayImage, RgbImage};
use models::preprocess::percentiles;

/// Share of the fill colour over the anatomy inside the mask: enough to see
/// at a glance, little enough to read the tissue under it.
const FILL_ALPHA: f32 = 0.35;
const FILL: [u8; 3] = [255, 40, 40];
/// Yellow on grey anatomy and beside the red fill: the edge reads on both.
const OUTLINE: [u8; 3] = [255, 230, 0];
const FRAME: Rgb888 = Rgb888::new(70, 70, 70);

/// The slice and its mask at the slice's own size, windowed for display.
pub struct Picture {
    pub slice: RgbImage,
    pub mask: Option<GrayImage>,
}

impl Picture {
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
        let planes: Vec<Vec<u8>> = (0..slice.channels)
            .map(|c| window(slice.plane(c)))
            .collect();
        let (w, h) = (slice.width, slice.height);
        let rgb = RgbImage::from_fn(w, h, |x, y| {
            let i = (y * w + x) as usize;
            image::Rgb(std::array::from_fn(|c| {
                planes[if planes.len() == 1 {
                    0
                } else {
                    c.min(planes.len() - 1)
                }][i]
            }))
        });
        let mask = record
            .mask
            .as_ref()
            .and_then(|p| image::open(p).ok())
            .map(|m| m.to_luma8())
            .filter(|m| m.dimensions() == (w, h));
        Some(Self { slice: rgb, mask })
    }
}

fn window(plane: &[f32]) -> Vec<u8> {
    let (lo, hi) = percentiles(plane, 0.5, 99.5);
    let span = (hi - lo).max(f32::EPSILON);
    plane
        .iter()
        .map(|v| (((v - lo) / span).clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect()
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
    let inside = |x: i64, y: i64| {
        x >= 0
            && y >= 0
            && x < w as i64
            && y < h as i64
            && mask
                .as_ref()
                .is_some_and(|m| m.get_pixel(x as u32, y as u32)[0] >= 128)
    };
    let reach = outline.max(1) as i64;
    let origin = inner.top_left
        + Point::new(
            (inner.size.width.saturating_sub(w) / 2) as i32,
            (inner.size.height.saturating_sub(h) / 2) as i32,
        );
    let pixels = base.enumerate_pixels().map(|(x, y, px)| {
        let (xi, yi) = (i64::from(x), i64::from(y));
        let colour = if !inside(xi, yi) {
            px.0
        } else if (1..=reach).any(|d| {
            !inside(xi - d, yi) || !inside(xi + d, yi) || !inside(xi, yi - d) || !inside(xi, yi + d)
        }) {
            OUTLINE
        } else {
            std::array::from_fn(|c| {
                (f32::from(px[c]) * (1.0 - FILL_ALPHA) + f32::from(FILL[c]) * FILL_ALPHA).round()
                    as u8
            })
        };
        Pixel(
            origin + Point::new(x as i32, y as i32),
            Rgb888::new(colour[0], colour[1], colour[2]),
        )
    });
    let _ = screen.draw_iter(pixels);
}
