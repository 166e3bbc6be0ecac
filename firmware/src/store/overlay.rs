//! The pictures stored for a slice: the mask as a 0/255 PNG and the slice
//! with the mask drawn over it for a person to look at, in the look the
//! screen uses ([`crate::look`]).

use crate::look;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, ImageResult, RgbImage};
use models::preprocess::Window;
use models::SliceImage;

pub fn mask_png(mask: &[bool], width: u32, height: u32) -> ImageResult<Vec<u8>> {
    png(
        look::mask_image(mask, width, height).as_raw(),
        width,
        height,
        ExtendedColorType::L8,
    )
}

/// The slice windowed for display with the mask filled and outlined.
pub fn overlay_png(slice: &SliceImage, mask: Option<&[bool]>) -> ImageResult<Vec<u8>> {
    encode_rgb(&render(slice, mask))
}

/// An overlay already drawn ([`render`]) as PNG bytes.
pub fn encode_rgb(img: &RgbImage) -> ImageResult<Vec<u8>> {
    png(
        img.as_raw(),
        img.width(),
        img.height(),
        ExtendedColorType::Rgb8,
    )
}

/// Fast deflate with the Sub row filter: the image crate's adaptive filter
/// tries every filter on every row, which made these two PNGs the largest
/// step of the appliance's own work per slice (`neuroscreen bench`); Sub
/// costs a few per cent in file size.
fn png(raw: &[u8], width: u32, height: u32, colour: ExtendedColorType) -> ImageResult<Vec<u8>> {
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Sub)
        .write_image(raw, width, height, colour)?;
    Ok(out)
}

/// The overlay at the slice's own size (outline one pixel deep).
pub fn render(slice: &SliceImage, mask: Option<&[bool]>) -> RgbImage {
    render_with(slice, mask, None)
}

/// As [`render`], windowed with the percentiles the models' normalisation
/// already measured on this slice ([`look::windowed_with`]).
pub fn render_with(slice: &SliceImage, mask: Option<&[bool]>, window: Option<&Window>) -> RgbImage {
    let mask = mask.map(|m| look::mask_image(m, slice.width, slice.height));
    look::paint(&look::windowed_with(slice, window), mask.as_ref(), 1)
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
        assert_eq!(img.get_pixel(2, 2).0, look::OUTLINE, "edge");
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
