//! The region of interest: the scanner console shows more than the slice
//! (menus, other viewports), and only the slice viewport goes to the models.

use crate::Error;
use image::DynamicImage;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roi {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Roi {
    /// From the config's `[x, y, width, height]`.
    pub fn from_array([x, y, width, height]: [u32; 4]) -> Result<Self, Error> {
        if width == 0 || height == 0 {
            return Err(Error::Roi(format!(
                "[{x}, {y}, {width}, {height}] is empty"
            )));
        }
        Ok(Self {
            x,
            y,
            width,
            height,
        })
    }

    /// The part of `frame` inside the region. A region reaching past the
    /// frame is an error (naming both), not a silently smaller picture: the
    /// models would see a different crop from the one configured.
    pub fn crop(&self, frame: &DynamicImage) -> Result<DynamicImage, Error> {
        let (w, h) = (frame.width(), frame.height());
        let fits = self.x.checked_add(self.width).is_some_and(|r| r <= w)
            && self.y.checked_add(self.height).is_some_and(|b| b <= h);
        if !fits {
            return Err(Error::Roi(format!(
                "[{}, {}, {}, {}] reaches past the {w}x{h} frame",
                self.x, self.y, self.width, self.height
            )));
        }
        Ok(frame.crop_imm(self.x, self.y, self.width, self.height))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma};

    #[test]
    fn crops_exactly_the_region_and_refuses_one_past_the_frame() {
        let frame =
            DynamicImage::ImageLuma8(GrayImage::from_fn(8, 6, |x, y| Luma([(y * 8 + x) as u8])));
        let roi = Roi::from_array([2, 1, 3, 2]).unwrap();
        let out = roi.crop(&frame).unwrap().to_luma8();
        assert_eq!(out.dimensions(), (3, 2));
        assert_eq!(out.into_raw(), [10, 11, 12, 18, 19, 20]);
        let whole = Roi::from_array([0, 0, 8, 6]).unwrap();
        assert_eq!(whole.crop(&frame).unwrap().to_luma8(), frame.to_luma8());
        let e = Roi::from_array([6, 0, 3, 2])
            .unwrap()
            .crop(&frame)
            .unwrap_err();
        assert!(e.to_string().contains("8x6"), "{e}");
        let e = Roi::from_array([u32::MAX, 0, 3, 2]).unwrap().crop(&frame);
        assert!(e.is_err());
        assert!(Roi::from_array([0, 0, 0, 2]).is_err());
    }
}
