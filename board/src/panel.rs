//! The one seam every screen goes through: the UI draws a whole frame into
//! memory ([`PngSnapshot`]) and a panel shows it. A frame in memory costs
//! 3 bytes a pixel (2.4 MB at 1024x600), and it lets every target (PNG file,
//! framebuffer, SPI LCD) be fed and tested the same way.

use crate::{Error, Framebuffer, PngSnapshot};
use embedded_graphics::prelude::OriginDimensions;
use std::path::{Path, PathBuf};

pub trait Panel: Send {
    /// Width and height in pixels: the layout is chosen from it.
    fn size(&self) -> (u32, u32);
    fn show(&mut self, frame: &PngSnapshot) -> Result<(), Error>;
    /// For the log: what and where.
    fn describe(&self) -> String;
}

/// The screen as a PNG rewritten atomically after every frame: headless
/// runs, tests, a kiosk browser showing the file.
pub struct SnapshotFile {
    path: PathBuf,
    size: (u32, u32),
}

impl SnapshotFile {
    pub fn new(path: &Path, width: u32, height: u32) -> Self {
        Self {
            path: path.to_path_buf(),
            size: (width, height),
        }
    }
}

impl Panel for SnapshotFile {
    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn show(&mut self, frame: &PngSnapshot) -> Result<(), Error> {
        frame.save(&self.path)
    }

    fn describe(&self) -> String {
        format!("PNG snapshot {}", self.path.display())
    }
}

impl Panel for Framebuffer {
    fn size(&self) -> (u32, u32) {
        let g = self.geometry();
        (g.width, g.height)
    }

    fn show(&mut self, frame: &PngSnapshot) -> Result<(), Error> {
        let size = frame.size();
        Framebuffer::show(self, size.width, size.height, frame.pixels())
    }

    fn describe(&self) -> String {
        let g = self.geometry();
        format!(
            "framebuffer {} {}x{} {:?}",
            self.path().display(),
            g.width,
            g.height,
            g.format
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framebuffer::{Geometry, PixelFormat};
    use embedded_graphics::pixelcolor::{Rgb888, RgbColor};
    use embedded_graphics::prelude::*;
    use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};

    /// The same frame through the seam lands in a PNG and in a framebuffer.
    #[test]
    fn one_frame_two_panels() {
        let d = tempfile::tempdir().unwrap();
        let mut frame = PngSnapshot::new(4, 2);
        Rectangle::new(Point::new(1, 0), Size::new(1, 1))
            .into_styled(PrimitiveStyle::with_fill(Rgb888::GREEN))
            .draw(&mut frame)
            .unwrap();
        let png = d.path().join("s.png");
        let fb = d.path().join("fb0");
        let g = Geometry {
            width: 4,
            height: 2,
            line_length: 16,
            format: PixelFormat::Xrgb8888,
        };
        std::fs::write(&fb, vec![0; g.frame_bytes()]).unwrap();
        let mut panels: Vec<Box<dyn Panel>> = vec![
            Box::new(SnapshotFile::new(&png, 4, 2)),
            Box::new(Framebuffer::new(&fb, g)),
        ];
        for p in &mut panels {
            assert_eq!(p.size(), (4, 2));
            p.show(&frame).unwrap();
        }
        assert_eq!(
            image::open(&png).unwrap().to_rgb8().get_pixel(1, 0).0,
            [0, 255, 0]
        );
        assert_eq!(&std::fs::read(&fb).unwrap()[4..8], &[0, 255, 0, 0]);
        assert!(
            panels[1].describe().contains("4x2"),
            "{}",
            panels[1].describe()
        );
    }
}
