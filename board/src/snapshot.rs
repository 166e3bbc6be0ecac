//! A display that draws into memory and saves PNG snapshots: the target for
//! tests, headless runs and the demo's screen pictures.

use crate::Error;
use embedded_graphics::pixelcolor::{Rgb888, RgbColor};
use embedded_graphics::prelude::*;
use std::convert::Infallible;
use std::io::Write;
use std::path::Path;

pub struct PngSnapshot {
    size: Size,
    pixels: Vec<Rgb888>,
}

impl PngSnapshot {
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            size: Size::new(width, height),
            pixels: vec![Rgb888::BLACK; (width * height) as usize],
        }
    }

    pub fn pixel(&self, x: u32, y: u32) -> Option<Rgb888> {
        (x < self.size.width && y < self.size.height)
            .then(|| self.pixels[(y * self.size.width + x) as usize])
    }

    /// Row-major pixels, for display targets that take a whole frame.
    pub fn pixels(&self) -> &[Rgb888] {
        &self.pixels
    }

    pub fn to_image(&self) -> image::RgbImage {
        image::RgbImage::from_fn(self.size.width, self.size.height, |x, y| {
            let p = self.pixels[(y * self.size.width + x) as usize];
            image::Rgb([p.r(), p.g(), p.b()])
        })
    }

    /// Writes the PNG atomically (temp file, fsync, rename) so a reader never
    /// sees half a picture, owner-only: the screen shows a patient's slice.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let mut bytes = std::io::Cursor::new(Vec::new());
        self.to_image()
            .write_to(&mut bytes, image::ImageFormat::Png)
            .map_err(|e| Error::Encode {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let tmp = path.with_extension("png.tmp");
        let mut f = {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            options.open(&tmp).map_err(io)?
        };
        // `mode` only applies to a new file; an older temporary keeps its own.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(io)?;
        }
        f.write_all(bytes.get_ref()).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

impl OriginDimensions for PngSnapshot {
    fn size(&self) -> Size {
        self.size
    }
}

impl DrawTarget for PngSnapshot {
    type Color = Rgb888;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        let (w, h) = (self.size.width as i32, self.size.height as i32);
        for Pixel(p, c) in pixels {
            if p.x >= 0 && p.y >= 0 && p.x < w && p.y < h {
                self.pixels[(p.y * w + p.x) as usize] = c;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};

    #[test]
    fn draws_clips_and_saves_a_png() {
        let mut d = PngSnapshot::new(32, 16);
        Rectangle::new(Point::new(28, 4), Size::new(10, 4))
            .into_styled(PrimitiveStyle::with_fill(Rgb888::RED))
            .draw(&mut d)
            .unwrap();
        assert_eq!(d.pixel(30, 5), Some(Rgb888::RED));
        assert_eq!(d.pixel(27, 5), Some(Rgb888::BLACK));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("screen.png");
        d.save(&path).unwrap();
        let back = image::open(&path).unwrap().to_rgb8();
        assert_eq!(back.get_pixel(31, 7).0, [255, 0, 0]);
        assert_eq!(back.dimensions(), (32, 16));
        assert!(!path.with_extension("png.tmp").exists());
    }

    #[test]
    fn unwritable_path_names_the_file() {
        let err = PngSnapshot::new(2, 2)
            .save(Path::new("/no/such/dir/screen.png"))
            .unwrap_err();
        assert!(err.to_string().contains("/no/such/dir/screen.png"));
    }
}
