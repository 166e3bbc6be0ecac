//! Montage PNG, one row per slice: image | truth in green | prediction in red.
//!
//! Slices keep their own size (no resampling blurs a mask edge); each column
//! is as wide as the widest slice, with dark grey gutters between cells.

use super::png::write_rgb_png;
use crate::{Error, Result};
use image::{GrayImage, Rgb, RgbImage};
use std::path::Path;

/// Gutter between cells and around the montage, in pixels.
pub const GUTTER_PX: u32 = 4;
/// Truth overlay colour.
pub const TRUTH_RGB: [u8; 3] = [0, 255, 0];
/// Prediction overlay colour.
pub const PREDICTION_RGB: [u8; 3] = [255, 0, 0];
// Enough colour to see the mask, enough image to see the anatomy under it.
const OVERLAY_ALPHA: f32 = 0.45;
const GUTTER_RGB: Rgb<u8> = Rgb([40, 40, 40]);

/// One slice; a mask pixel is set when non-zero, masks sized like the image.
#[derive(Debug, Clone)]
pub struct MontageRow {
    pub image: RgbImage,
    pub truth: GrayImage,
    pub prediction: GrayImage,
}

/// Builds the montage and writes it as PNG.
pub fn write_montage(rows: &[MontageRow], path: &Path) -> Result<()> {
    let m = montage(rows)?;
    write_rgb_png(path, m.dimensions(), m.as_raw())
}

pub fn montage(rows: &[MontageRow]) -> Result<RgbImage> {
    if rows.is_empty() {
        return Err(Error::Invalid("montage: no rows".into()));
    }
    for (i, r) in rows.iter().enumerate() {
        let size = r.image.dimensions();
        if r.truth.dimensions() != size || r.prediction.dimensions() != size {
            return Err(Error::Invalid(format!(
                "montage row {i}: image {size:?}, truth {:?}, prediction {:?}",
                r.truth.dimensions(),
                r.prediction.dimensions()
            )));
        }
    }
    let column = rows.iter().map(|r| r.image.width()).max().unwrap_or(0);
    let width = 3 * column + 4 * GUTTER_PX;
    let height = rows
        .iter()
        .map(|r| r.image.height() + GUTTER_PX)
        .sum::<u32>()
        + GUTTER_PX;
    let mut out = RgbImage::from_pixel(width, height, GUTTER_RGB);
    let mut y = GUTTER_PX;
    for r in rows {
        let cells = [
            r.image.clone(),
            overlay(&r.image, &r.truth, TRUTH_RGB),
            overlay(&r.image, &r.prediction, PREDICTION_RGB),
        ];
        for (k, cell) in cells.iter().enumerate() {
            let x = GUTTER_PX + k as u32 * (column + GUTTER_PX);
            image::imageops::replace(&mut out, cell, x as i64, y as i64);
        }
        y += r.image.height() + GUTTER_PX;
    }
    Ok(out)
}

fn overlay(image: &RgbImage, mask: &GrayImage, colour: [u8; 3]) -> RgbImage {
    let mut out = image.clone();
    for (px, m) in out.pixels_mut().zip(mask.pixels()) {
        if m[0] != 0 {
            for (c, tint) in px.0.iter_mut().zip(colour) {
                *c =
                    (*c as f32 * (1.0 - OVERLAY_ALPHA) + tint as f32 * OVERLAY_ALPHA).round() as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(w: u32, h: u32, grey: u8, truth_at: (u32, u32), pred_at: (u32, u32)) -> MontageRow {
        let mut truth = GrayImage::new(w, h);
        truth.put_pixel(truth_at.0, truth_at.1, image::Luma([255]));
        let mut prediction = GrayImage::new(w, h);
        prediction.put_pixel(pred_at.0, pred_at.1, image::Luma([1]));
        MontageRow {
            image: RgbImage::from_pixel(w, h, Rgb([grey; 3])),
            truth,
            prediction,
        }
    }

    #[test]
    fn layout_and_overlay_colours() {
        let rows = [
            row(8, 6, 100, (1, 2), (3, 4)),
            row(5, 10, 200, (0, 0), (4, 9)),
        ];
        let m = montage(&rows).unwrap();
        let g = GUTTER_PX;
        assert_eq!(m.dimensions(), (3 * 8 + 4 * g, 6 + 10 + 3 * g));
        // Row 0: plain image, then green at the truth pixel, red at the prediction.
        assert_eq!(*m.get_pixel(g + 1, g + 2), Rgb([100; 3]));
        let truth_cell_x = g + 8 + g;
        let pred_cell_x = g + 2 * (8 + g);
        let blend = |v: u8, t: u8| (v as f32 * 0.55 + t as f32 * 0.45).round() as u8;
        assert_eq!(
            *m.get_pixel(truth_cell_x + 1, g + 2),
            Rgb([blend(100, 0), blend(100, 255), blend(100, 0)])
        );
        assert_eq!(*m.get_pixel(truth_cell_x + 3, g + 4), Rgb([100; 3]));
        assert_eq!(
            *m.get_pixel(pred_cell_x + 3, g + 4),
            Rgb([blend(100, 255), blend(100, 0), blend(100, 0)])
        );
        // Row 1 starts below row 0 and a gutter; the narrower slice leaves gutter.
        let y1 = g + 6 + g;
        assert_eq!(
            *m.get_pixel(pred_cell_x + 4, y1 + 9),
            Rgb([blend(200, 255), blend(200, 0), blend(200, 0)])
        );
        assert_eq!(*m.get_pixel(g + 6, y1), GUTTER_RGB);
    }

    #[test]
    fn writes_a_png_that_decodes_to_the_montage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("montage.png");
        let rows = vec![row(256, 256, 90, (10, 10), (20, 20)); 3];
        write_montage(&rows, &path).unwrap();
        let back = image::open(&path).unwrap().to_rgb8();
        assert_eq!(
            back.dimensions(),
            (3 * 256 + 4 * GUTTER_PX, 3 * 256 + 4 * GUTTER_PX)
        );
        assert_eq!(back, montage(&rows).unwrap());
    }

    #[test]
    fn mismatched_masks_and_no_rows_are_errors() {
        let mut bad = row(8, 8, 0, (0, 0), (0, 0));
        bad.prediction = GrayImage::new(8, 7);
        assert!(montage(&[bad]).is_err());
        assert!(montage(&[]).is_err());
    }
}
