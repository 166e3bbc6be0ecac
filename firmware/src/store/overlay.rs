//! The pictures stored for a slice: the mask as a 0/255 PNG and the slice
//! with the mask drawn over it for a person to look at.

use image::{GrayImage, ImageFormat, Luma, Rgb, RgbImage};
use models::preprocess::percentiles;
use models::SliceImage;
use std::io::Cursor;

/// Share of red mixed into mask pixels: the anatomy stays readable under it.
const MASK_ALPHA: f32 = 0.4;
const RED: [u8; 3] = [255, 32, 32];

pub fn mask_png(mask: &[bool], width: u32, height: u32) -> Result<Vec<u8>, String> {
    let img = GrayImage::from_fn(width, height, |x, y| {
        Luma([if mask[(y * width + x) as usize] {
            255
        } else {
            0
        }])
    });
    encode(image::DynamicImage::ImageLuma8(img))
}

/// The slice windowed to its 0.5..99.5 percentiles per channel (raw 16-bit
/// values would show black), the mask tinted red and its edge drawn solid.
pub fn overlay_png(slice: &SliceImage, mask: Option<&[bool]>) -> Result<Vec<u8>, String> {
    encode_rgb(&render(slice, mask))
}

/// An overlay already drawn ([`render`]) as PNG bytes.
pub fn encode_rgb(img: &RgbImage) -> Result<Vec<u8>, String> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png)
        .map_err(|e| e.to_string())?;
    Ok(out.into_inner())
}

pub fn render(slice: &SliceImage, mask: Option<&[bool]>) -> RgbImage {
    let (w, h) = (slice.width, slice.height);
    let planes: Vec<Vec<u8>> = (0..slice.channels)
        .map(|c| window(slice.plane(c)))
        .collect();
    let at = |x: u32, y: u32| (y * w + x) as usize;
    let inside = |x: i64, y: i64| {
        x >= 0
            && y >= 0
            && x < w as i64
            && y < h as i64
            && mask.is_some_and(|m| m[(y as u32 * w + x as u32) as usize])
    };
    RgbImage::from_fn(w, h, |x, y| {
        let i = at(x, y);
        let base: [u8; 3] =
            std::array::from_fn(|c| planes[if planes.len() == 1 { 0 } else { c }][i]);
        let (xi, yi) = (x as i64, y as i64);
        if !inside(xi, yi) {
            return Rgb(base);
        }
        let edge = [(-1, 0), (1, 0), (0, -1), (0, 1)]
            .iter()
            .any(|(dx, dy)| !inside(xi + dx, yi + dy));
        if edge {
            Rgb(RED)
        } else {
            Rgb(std::array::from_fn(|c| {
                (base[c] as f32 * (1.0 - MASK_ALPHA) + RED[c] as f32 * MASK_ALPHA).round() as u8
            }))
        }
    })
}

fn window(plane: &[f32]) -> Vec<u8> {
    let (lo, hi) = percentiles(plane, 0.5, 99.5);
    let span = (hi - lo).max(f32::EPSILON);
    plane
        .iter()
        .map(|v| (((v - lo) / span).clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect()
}

fn encode(img: image::DynamicImage) -> Result<Vec<u8>, String> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png)
        .map_err(|e| e.to_string())?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_tints_inside_outlines_the_edge_and_leaves_the_rest() {
        // 16-bit grey ramp, mask a 4x4 square at (2, 2).
        let (w, h) = (8u32, 8u32);
        let data: Vec<f32> = (0..w * h).map(|i| (i * 1000) as f32).collect();
        let slice = SliceImage::new(w, h, 1, 16, data);
        let mask: Vec<bool> = (0..w * h)
            .map(|i| (2..6).contains(&(i % w)) && (2..6).contains(&(i / w)))
            .collect();
        let img = render(&slice, Some(&mask));
        assert_eq!(img.get_pixel(2, 2).0, RED, "edge");
        let centre = img.get_pixel(3, 3).0;
        assert!(
            centre[0] > centre[1] && centre[1] == centre[2],
            "tinted {centre:?}"
        );
        let outside = img.get_pixel(7, 7).0;
        assert!(
            outside[0] == outside[1] && outside[1] == outside[2],
            "grey {outside:?}"
        );
        assert!(outside[0] > 200, "windowed, not raw/65535: {outside:?}");
        let plain = render(&slice, None);
        assert_eq!(plain.get_pixel(3, 3).0[1], plain.get_pixel(3, 3).0[0]);
    }

    #[test]
    fn mask_png_round_trips_at_its_size() {
        let mask = [true, false, false, true, true, false];
        let bytes = mask_png(&mask, 3, 2).unwrap();
        let back = image::load_from_memory(&bytes).unwrap().to_luma8();
        assert_eq!(back.dimensions(), (3, 2));
        assert_eq!(back.into_raw(), [255, 0, 0, 255, 255, 0]);
    }
}
