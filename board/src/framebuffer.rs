//! The Linux framebuffer (`/dev/fbN`): an HDMI or DSI panel without a
//! desktop. Geometry comes from sysfs (`/sys/class/graphics/fbN`), which
//! needs no ioctl and so can be stood in for by plain files in tests.

use crate::Error;
use embedded_graphics::pixelcolor::{Rgb888, RgbColor};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// 16 bits, little-endian: red 5, green 6, blue 5 (from the top bit).
    Rgb565,
    /// 32 bits, little-endian bytes B, G, R, X.
    Xrgb8888,
}

impl PixelFormat {
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            PixelFormat::Rgb565 => 2,
            PixelFormat::Xrgb8888 => 4,
        }
    }

    fn encode(self, c: Rgb888, out: &mut [u8]) {
        match self {
            PixelFormat::Rgb565 => {
                let v = (u16::from(c.r() >> 3) << 11)
                    | (u16::from(c.g() >> 2) << 5)
                    | u16::from(c.b() >> 3);
                out.copy_from_slice(&v.to_le_bytes());
            }
            PixelFormat::Xrgb8888 => out.copy_from_slice(&[c.b(), c.g(), c.r(), 0]),
        }
    }
}

/// What the kernel says of one framebuffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub width: u32,
    pub height: u32,
    /// Bytes from one row to the next; often more than width x bytes per
    /// pixel (rows are padded to the controller's alignment).
    pub line_length: usize,
    pub format: PixelFormat,
}

impl Geometry {
    /// Reads `virtual_size`, `bits_per_pixel` and `stride` from a sysfs
    /// folder such as `/sys/class/graphics/fb0`.
    pub fn from_sysfs(dir: &Path) -> Result<Self, Error> {
        let read = |name: &str| -> Result<String, Error> {
            let path = dir.join(name);
            std::fs::read_to_string(&path)
                .map(|s| s.trim().to_string())
                .map_err(|source| Error::Io { path, source })
        };
        let bad = |name: &str, value: &str| Error::Display {
            path: dir.join(name),
            reason: format!("cannot use {value:?}"),
        };
        let size = read("virtual_size")?;
        let (w, h) = size
            .split_once(',')
            .and_then(|(w, h)| Some((w.trim().parse().ok()?, h.trim().parse().ok()?)))
            .ok_or_else(|| bad("virtual_size", &size))?;
        let bpp = read("bits_per_pixel")?;
        let format = match bpp.as_str() {
            "16" => PixelFormat::Rgb565,
            "32" => PixelFormat::Xrgb8888,
            other => {
                return Err(Error::Display {
                    path: dir.join("bits_per_pixel"),
                    reason: format!(
                        "{other} bits per pixel: only 16 (RGB565) and 32 (XRGB8888) are supported"
                    ),
                })
            }
        };
        let stride = read("stride")?;
        let line_length: usize = stride.parse().map_err(|_| bad("stride", &stride))?;
        let geometry = Self {
            width: w,
            height: h,
            line_length,
            format,
        };
        if w == 0 || h == 0 || line_length < w as usize * format.bytes_per_pixel() {
            return Err(Error::Display {
                path: dir.to_path_buf(),
                reason: format!("inconsistent geometry {geometry:?}"),
            });
        }
        Ok(geometry)
    }

    pub fn frame_bytes(&self) -> usize {
        self.line_length * self.height as usize
    }
}

/// A framebuffer device (or any file standing in for one).
pub struct Framebuffer {
    path: PathBuf,
    geometry: Geometry,
    frame: Vec<u8>,
}

impl Framebuffer {
    pub fn new(path: &Path, geometry: Geometry) -> Self {
        Self {
            path: path.to_path_buf(),
            geometry,
            frame: vec![0; geometry.frame_bytes()],
        }
    }

    /// `/dev/fbN` with its geometry from `sysfs` (default
    /// `/sys/class/graphics/fbN`). Fails when no such display is attached.
    pub fn open_device(device: &Path, sysfs: Option<&Path>) -> Result<Self, Error> {
        let name = device.file_name().and_then(|n| n.to_str()).unwrap_or("fb0");
        let default = Path::new("/sys/class/graphics").join(name);
        let geometry = Geometry::from_sysfs(sysfs.unwrap_or(&default))?;
        std::fs::OpenOptions::new()
            .write(true)
            .open(device)
            .map_err(|source| Error::Io {
                path: device.to_path_buf(),
                source,
            })?;
        Ok(Self::new(device, geometry))
    }

    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Encodes `pixels` (row-major, `width` x `height` of the picture) into
    /// the top-left of the frame, clipped to the screen, and writes the
    /// whole frame in one pass from offset 0.
    pub fn show(&mut self, width: u32, height: u32, pixels: &[Rgb888]) -> Result<(), Error> {
        let g = self.geometry;
        let bpp = g.format.bytes_per_pixel();
        let (w, h) = (width.min(g.width) as usize, height.min(g.height) as usize);
        for y in 0..h {
            let row = &mut self.frame[y * g.line_length..][..w * bpp];
            for (x, out) in row.chunks_exact_mut(bpp).enumerate() {
                g.format.encode(pixels[y * width as usize + x], out);
            }
        }
        let io = |source| Error::Io {
            path: self.path.clone(),
            source,
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(io)?;
        f.seek(SeekFrom::Start(0)).map_err(io)?;
        f.write_all(&self.frame).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sysfs(dir: &Path, size: &str, bpp: &str, stride: &str) {
        std::fs::write(dir.join("virtual_size"), size).unwrap();
        std::fs::write(dir.join("bits_per_pixel"), bpp).unwrap();
        std::fs::write(dir.join("stride"), stride).unwrap();
    }

    #[test]
    fn geometry_from_sysfs_and_its_refusals() {
        let d = tempfile::tempdir().unwrap();
        sysfs(d.path(), "800,480\n", "32\n", "3328\n");
        let g = Geometry::from_sysfs(d.path()).unwrap();
        assert_eq!(
            g,
            Geometry {
                width: 800,
                height: 480,
                line_length: 3328,
                format: PixelFormat::Xrgb8888
            }
        );
        sysfs(d.path(), "800,480", "24", "2400");
        let e = Geometry::from_sysfs(d.path()).unwrap_err().to_string();
        assert!(e.contains("bits_per_pixel") && e.contains("24"), "{e}");
        sysfs(d.path(), "800,480", "16", "1000");
        let e = Geometry::from_sysfs(d.path()).unwrap_err().to_string();
        assert!(e.contains("inconsistent"), "{e}");
    }

    /// A file stands in for /dev/fb0: rows land at multiples of the line
    /// length, padding untouched, bytes in the format's order.
    #[test]
    fn byte_layout_honours_line_length_and_format() {
        let d = tempfile::tempdir().unwrap();
        let dev = d.path().join("fb0");
        for (format, line_length, expect_px) in [
            (PixelFormat::Xrgb8888, 16usize, vec![0x30u8, 0x20, 0x10, 0]),
            // r=0x10>>3=2, g=0x20>>2=8, b=0x30>>3=6: 2<<11 | 8<<5 | 6 = 0x1106
            (PixelFormat::Rgb565, 8, vec![0x06, 0x11]),
        ] {
            let g = Geometry {
                width: 3,
                height: 2,
                line_length,
                format,
            };
            std::fs::write(&dev, vec![0xAA; g.frame_bytes()]).unwrap();
            let mut fb = Framebuffer::new(&dev, g);
            let px = Rgb888::new(0x10, 0x20, 0x30);
            // A 4x2 picture: one column wider than the screen, clipped.
            fb.show(4, 2, &[px; 8]).unwrap();
            let bytes = std::fs::read(&dev).unwrap();
            assert_eq!(bytes.len(), g.frame_bytes());
            let bpp = format.bytes_per_pixel();
            for y in 0..2 {
                let row = &bytes[y * line_length..(y + 1) * line_length];
                for x in 0..3 {
                    assert_eq!(
                        &row[x * bpp..(x + 1) * bpp],
                        expect_px.as_slice(),
                        "{format:?}"
                    );
                }
                // Row padding is the frame's own (zeroed), not the old file's.
                assert!(row[3 * bpp..].iter().all(|&b| b == 0), "{format:?} {row:?}");
            }
        }
    }
}
