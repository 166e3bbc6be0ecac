//! How a slice and its mask look to a person, wherever they are shown: the
//! overlay PNG the store keeps, the Secondary Capture burnt from it, and the
//! panel. One look, so a radiographer who learnt it on the screen reads the
//! stored picture the same way.

use image::{GrayImage, Luma, RgbImage};
use models::preprocess::percentiles;
use models::SliceImage;

/// Share of the fill colour over the anatomy inside the mask: enough to see
/// at a glance, little enough to read the tissue under it.
pub const FILL_ALPHA: f32 = 0.35;
pub const FILL: [u8; 3] = [255, 40, 40];
/// Yellow on grey anatomy and beside the red fill: the edge reads on both.
pub const OUTLINE: [u8; 3] = [255, 230, 0];

/// The slice windowed to its 0.5..99.5 percentiles per channel (raw 16-bit
/// values would show black): grey for one channel, the stack as RGB (a
/// two-channel slice repeats its last channel).
pub fn windowed(slice: &SliceImage) -> RgbImage {
    let planes: Vec<Vec<u8>> = (0..slice.channels)
        .map(|c| window(slice.plane(c)))
        .collect();
    let (w, h) = (slice.width, slice.height);
    RgbImage::from_fn(w, h, |x, y| {
        let i = (y * w + x) as usize;
        image::Rgb(std::array::from_fn(|c| planes[c.min(planes.len() - 1)][i]))
    })
}

/// The mask as a 0/255 picture at the slice's size.
pub fn mask_image(mask: &[bool], width: u32, height: u32) -> GrayImage {
    GrayImage::from_fn(width, height, |x, y| {
        Luma([if mask[(y * width + x) as usize] {
            255
        } else {
            0
        }])
    })
}

fn window(plane: &[f32]) -> Vec<u8> {
    let (lo, hi) = percentiles(plane, 0.5, 99.5);
    let span = (hi - lo).max(f32::EPSILON);
    plane
        .iter()
        // + 0.5 and truncation rounds these non-negative values as `round()`
        // does, without its libm call per pixel on baseline x86_64 (no
        // SSE4.1 rounding instruction): a third of the overlay's time.
        .map(|v| (((v - lo) / span).clamp(0.0, 1.0) * 255.0 + 0.5) as u8)
        .collect()
}

/// The colour of each pixel of `base` with the mask over it: the fill inside,
/// the outline on the mask's edge `outline` pixels deep, `base` elsewhere.
/// `mask` is `base`'s size (pixels at 128 and above are inside).
pub fn paint(base: &RgbImage, mask: Option<&GrayImage>, outline: u32) -> RgbImage {
    let (w, h) = base.dimensions();
    let inside = |x: i64, y: i64| {
        x >= 0
            && y >= 0
            && x < i64::from(w)
            && y < i64::from(h)
            && mask.is_some_and(|m| m.get_pixel(x as u32, y as u32)[0] >= 128)
    };
    let reach = i64::from(outline.max(1));
    RgbImage::from_fn(w, h, |x, y| {
        let px = base.get_pixel(x, y).0;
        let (xi, yi) = (i64::from(x), i64::from(y));
        if !inside(xi, yi) {
            return image::Rgb(px);
        }
        let edge = (1..=reach).any(|d| {
            !inside(xi - d, yi) || !inside(xi + d, yi) || !inside(xi, yi - d) || !inside(xi, yi + d)
        });
        image::Rgb(if edge {
            OUTLINE
        } else {
            std::array::from_fn(|c| {
                (f32::from(px[c]) * (1.0 - FILL_ALPHA) + f32::from(FILL[c]) * FILL_ALPHA).round()
                    as u8
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outline_is_as_deep_as_asked_and_the_fill_keeps_the_anatomy() {
        let base = RgbImage::from_pixel(9, 9, image::Rgb([100, 100, 100]));
        let mask = GrayImage::from_fn(9, 9, |x, y| {
            Luma([if (1..8).contains(&x) && (1..8).contains(&y) {
                255
            } else {
                0
            }])
        });
        let thin = paint(&base, Some(&mask), 1);
        assert_eq!(thin.get_pixel(1, 4).0, OUTLINE);
        assert_ne!(thin.get_pixel(2, 4).0, OUTLINE);
        let thick = paint(&base, Some(&mask), 2);
        assert_eq!(thick.get_pixel(2, 4).0, OUTLINE);
        let centre = thick.get_pixel(4, 4).0;
        assert!(centre[0] > 100 && centre[1] < 100, "tinted {centre:?}");
        assert_eq!(thick.get_pixel(0, 0).0, [100, 100, 100]);
    }

    #[test]
    fn two_channels_repeat_the_last_one_rather_than_read_past_it() {
        let data: Vec<f32> = (0..2 * 4 * 4).map(|i| i as f32).collect();
        let img = windowed(&SliceImage::new(4, 4, 2, 16, data));
        let p = img.get_pixel(3, 3).0;
        assert_eq!(p[1], p[2]);
    }
}
