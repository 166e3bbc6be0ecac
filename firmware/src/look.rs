//! How a slice and its mask look to a person, wherever they are shown: the
//! overlay PNG the store keeps, the Secondary Capture burnt from it, and the
//! panel. One look, so a radiographer who learnt it on the screen reads the
//! stored picture the same way.

use image::{GrayImage, RgbImage};
use models::preprocess::{percentiles, Window};
use models::SliceImage;

/// Share of the fill colour over the anatomy inside the mask: enough to see
/// at a glance, little enough to read the tissue under it.
pub const FILL_ALPHA: f32 = 0.35;
pub const FILL: [u8; 3] = [255, 40, 40];
/// Yellow on grey anatomy and beside the red fill: the edge reads on both.
pub const OUTLINE: [u8; 3] = [255, 230, 0];

/// The percentiles of each channel the look maps to black and white: a few
/// hot pixels neither wash the slice out nor leave it dark.
pub const WINDOW: (f32, f32) = (0.5, 99.5);

/// The slice windowed to its [`WINDOW`] percentiles per channel (raw 16-bit
/// values would show black): grey for one channel, the stack as RGB (a
/// two-channel slice repeats its last channel).
pub fn windowed(slice: &SliceImage) -> RgbImage {
    windowed_with(slice, None)
}

/// As [`windowed`], with the percentiles `known` when a model's
/// normalisation already measured them on this slice at [`WINDOW`] (the
/// same values, not measured twice).
pub fn windowed_with(slice: &SliceImage, known: Option<&Window>) -> RgbImage {
    let known = known
        .filter(|k| (k.low, k.high) == WINDOW && k.channels.len() == slice.channels)
        .map(|k| k.channels.as_slice());
    let planes: Vec<Vec<u8>> = (0..slice.channels)
        .map(|c| {
            let plane = slice.plane(c);
            let (lo, hi) = known.map_or_else(|| percentiles(plane, WINDOW.0, WINDOW.1), |k| k[c]);
            window(plane, lo, hi)
        })
        .collect();
    let (w, h) = (slice.width, slice.height);
    let mut raw = vec![0u8; w as usize * h as usize * 3];
    for (c, plane) in (0..3).map(|c| &planes[c.min(planes.len() - 1)]).enumerate() {
        for (px, &v) in raw.chunks_exact_mut(3).zip(plane) {
            px[c] = v;
        }
    }
    RgbImage::from_raw(w, h, raw).expect("three bytes per pixel")
}

/// The mask as a 0/255 picture at the slice's size.
pub fn mask_image(mask: &[bool], width: u32, height: u32) -> GrayImage {
    assert_eq!(mask.len(), width as usize * height as usize, "mask size");
    // One pass over the row-major mask; `from_fn` computed and checked an
    // index per pixel, twice per stored slice (overlay and mask PNG).
    let raw = mask.iter().map(|&m| if m { 255 } else { 0 }).collect();
    GrayImage::from_raw(width, height, raw).expect("one byte per pixel")
}

fn window(plane: &[f32], lo: f32, hi: f32) -> Vec<u8> {
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
    let mut out = base.clone();
    let Some(mask) = mask else {
        return out;
    };
    let (w, h) = base.dimensions();
    assert_eq!(mask.dimensions(), (w, h), "the mask is the picture's size");
    let m = mask.as_raw();
    let (wi, hi) = (i64::from(w), i64::from(h));
    let inside =
        |x: i64, y: i64| x >= 0 && y >= 0 && x < wi && y < hi && m[(y * wi + x) as usize] >= 128;
    let reach = i64::from(outline.max(1));
    // Only the mask's pixels change: the rest of the picture is the copy.
    for (i, px) in out.as_mut().chunks_exact_mut(3).enumerate() {
        if m[i] < 128 {
            continue;
        }
        let (x, y) = (i as i64 % wi, i as i64 / wi);
        let edge = (1..=reach).any(|d| {
            !inside(x - d, y) || !inside(x + d, y) || !inside(x, y - d) || !inside(x, y + d)
        });
        if edge {
            px.copy_from_slice(&OUTLINE);
        } else {
            for (v, fill) in px.iter_mut().zip(FILL) {
                // Rounded as in `window`: + 0.5, then truncation.
                *v =
                    (f32::from(*v) * (1.0 - FILL_ALPHA) + f32::from(fill) * FILL_ALPHA + 0.5) as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    #[test]
    fn mask_image_is_the_mask_row_by_row() {
        let mask = [true, false, false, false, true, true];
        let img = mask_image(&mask, 3, 2);
        assert_eq!(img.get_pixel(0, 0).0, [255]);
        assert_eq!(img.get_pixel(2, 0).0, [0]);
        assert_eq!(img.get_pixel(1, 1).0, [255]);
        assert_eq!(img.into_raw(), [255, 0, 0, 0, 255, 255]);
    }

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
    fn known_percentiles_give_the_same_picture_and_others_are_not_used() {
        let data: Vec<f32> = (0..3 * 6 * 5).map(|i| ((i * 37) % 101) as f32).collect();
        let slice = SliceImage::new(6, 5, 3, 16, data);
        let measured = Window {
            low: WINDOW.0,
            high: WINDOW.1,
            channels: (0..3)
                .map(|c| percentiles(slice.plane(c), WINDOW.0, WINDOW.1))
                .collect(),
        };
        assert_eq!(windowed_with(&slice, Some(&measured)), windowed(&slice));
        // Percentiles of another window, or of another slice, are not this
        // look's: measured afresh.
        let other = Window {
            low: 2.0,
            high: 98.0,
            channels: vec![(0.0, 1.0); 3],
        };
        assert_eq!(windowed_with(&slice, Some(&other)), windowed(&slice));
        let grey = Window {
            channels: vec![(0.0, 1.0)],
            ..measured.clone()
        };
        assert_eq!(windowed_with(&slice, Some(&grey)), windowed(&slice));
        // Used as given when they are this look's.
        let wide = Window {
            channels: vec![(-1000.0, 1000.0); 3],
            ..measured
        };
        assert_ne!(windowed_with(&slice, Some(&wide)), windowed(&slice));
    }

    #[test]
    fn two_channels_repeat_the_last_one_rather_than_read_past_it() {
        let data: Vec<f32> = (0..2 * 4 * 4).map(|i| i as f32).collect();
        let img = windowed(&SliceImage::new(4, 4, 2, 16, data));
        let p = img.get_pixel(3, 3).0;
        assert_eq!(p[1], p[2]);
    }
}
