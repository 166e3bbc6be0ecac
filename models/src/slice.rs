//! Decoding a slice file (PNG, TIFF, JPEG; 8- or 16-bit; grey or colour) into
//! one planar float image that keeps the source's raw intensity scale.

use crate::{Error, Result};
use image::{DynamicImage, ImageReader};
use std::io::Cursor;
use std::path::Path;

/// The largest side we accept. MRI slices are at most a few thousand pixels;
/// anything larger is a hostile or broken header, refused before allocating.
pub const MAX_SIDE: u32 = 8192;

/// A decoded slice: `channels` planes of `height * width` raw intensities
/// (0..255 for 8-bit, 0..65535 for 16-bit, as stored), channel-major.
#[derive(Debug, Clone, PartialEq)]
pub struct SliceImage {
    pub width: u32,
    pub height: u32,
    /// 1 (grey) or 3 (colour, or the LGG stack of three contrasts).
    pub channels: usize,
    /// Bits per sample in the source file: 8, 16 or 32 (float).
    pub bit_depth: u8,
    pub data: Vec<f32>,
    /// Millimetres between pixel centres, [between rows, between columns]
    /// (DICOM's PixelSpacing order), when the source states it reliably.
    /// PNG/TIFF resolution tags are not read: desktop tools stamp 72 or 96
    /// dpi by default, which would turn into a plausible but false area.
    pub pixel_spacing_mm: Option<[f64; 2]>,
}

impl SliceImage {
    pub fn new(width: u32, height: u32, channels: usize, bit_depth: u8, data: Vec<f32>) -> Self {
        assert_eq!(
            data.len(),
            width as usize * height as usize * channels,
            "plane size does not match dimensions"
        );
        Self {
            width,
            height,
            channels,
            bit_depth,
            data,
            pixel_spacing_mm: None,
        }
    }

    pub fn plane(&self, c: usize) -> &[f32] {
        let n = self.width as usize * self.height as usize;
        &self.data[c * n..(c + 1) * n]
    }

    /// The largest value the source format can hold, used by unit-range
    /// normalisation.
    pub fn full_scale(&self) -> f32 {
        match self.bit_depth {
            8 => 255.0,
            16 => 65535.0,
            _ => 1.0,
        }
    }

    /// Reads a slice file; the error names the file and what is wrong with it.
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::decode(&bytes, path)
    }

    /// Decodes in-memory bytes; `origin` is only used in error messages.
    pub fn decode(bytes: &[u8], origin: &Path) -> Result<Self> {
        let decode_err = |reason: String| Error::Decode {
            path: origin.to_path_buf(),
            reason,
        };
        if bytes.is_empty() {
            return Err(decode_err("file is empty".into()));
        }
        let mut reader = ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| decode_err(e.to_string()))?;
        if reader.format().is_none() {
            return Err(Error::Unsupported {
                path: origin.to_path_buf(),
                reason: "not a PNG, TIFF or JPEG file".into(),
            });
        }
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(MAX_SIDE);
        limits.max_image_height = Some(MAX_SIDE);
        limits.max_alloc = Some(1 << 30);
        reader.limits(limits);
        let img = reader.decode().map_err(|e| decode_err(e.to_string()))?;
        Self::from_dynamic(img, origin)
    }

    pub fn from_dynamic(img: DynamicImage, origin: &Path) -> Result<Self> {
        let (w, h) = (img.width(), img.height());
        if w == 0 || h == 0 {
            return Err(Error::Unsupported {
                path: origin.to_path_buf(),
                reason: format!("image has no pixels ({w}x{h})"),
            });
        }
        // Alpha carries no intensity information in a scan; it is dropped.
        let (channels, bit_depth, interleaved): (usize, u8, Vec<f32>) = match img {
            DynamicImage::ImageLuma8(b) => {
                (1, 8, b.into_raw().into_iter().map(f32::from).collect())
            }
            DynamicImage::ImageLumaA8(b) => (1, 8, b.pixels().map(|p| f32::from(p[0])).collect()),
            DynamicImage::ImageRgb8(b) => (3, 8, b.into_raw().into_iter().map(f32::from).collect()),
            DynamicImage::ImageRgba8(b) => (
                3,
                8,
                b.pixels()
                    .flat_map(|p| [p[0], p[1], p[2]])
                    .map(f32::from)
                    .collect(),
            ),
            DynamicImage::ImageLuma16(b) => {
                (1, 16, b.into_raw().into_iter().map(f32::from).collect())
            }
            DynamicImage::ImageLumaA16(b) => (1, 16, b.pixels().map(|p| f32::from(p[0])).collect()),
            DynamicImage::ImageRgb16(b) => {
                (3, 16, b.into_raw().into_iter().map(f32::from).collect())
            }
            DynamicImage::ImageRgba16(b) => (
                3,
                16,
                b.pixels()
                    .flat_map(|p| [p[0], p[1], p[2]])
                    .map(f32::from)
                    .collect(),
            ),
            DynamicImage::ImageRgb32F(b) => (3, 32, b.into_raw()),
            DynamicImage::ImageRgba32F(b) => {
                (3, 32, b.pixels().flat_map(|p| [p[0], p[1], p[2]]).collect())
            }
            other => {
                return Err(Error::Unsupported {
                    path: origin.to_path_buf(),
                    reason: format!("pixel format {:?}", other.color()),
                })
            }
        };
        if interleaved.iter().any(|v| !v.is_finite()) {
            return Err(Error::Unsupported {
                path: origin.to_path_buf(),
                reason: "float image holds NaN or infinite values".into(),
            });
        }
        let n = w as usize * h as usize;
        let mut data = vec![0.0f32; n * channels];
        for (i, px) in interleaved.chunks_exact(channels).enumerate() {
            for (c, v) in px.iter().enumerate() {
                data[c * n + i] = *v;
            }
        }
        Ok(Self::new(w, h, channels, bit_depth, data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, ImageFormat, Luma, Rgb};

    fn encode(img: DynamicImage, fmt: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, fmt).unwrap();
        out.into_inner()
    }

    #[test]
    fn decodes_grey16_png_keeping_raw_scale() {
        let img = ImageBuffer::from_fn(5, 3, |x, y| Luma([(x * 1000 + y * 20000) as u16]));
        let bytes = encode(DynamicImage::ImageLuma16(img), ImageFormat::Png);
        let s = SliceImage::decode(&bytes, Path::new("a.png")).unwrap();
        assert_eq!((s.width, s.height, s.channels, s.bit_depth), (5, 3, 1, 16));
        assert_eq!(s.data[2 * 5 + 4], 44000.0);
        assert_eq!(s.full_scale(), 65535.0);
    }

    #[test]
    fn decodes_rgb8_tiff_into_planes() {
        let img = ImageBuffer::from_fn(4, 4, |x, y| Rgb([x as u8, y as u8, 200]));
        let bytes = encode(DynamicImage::ImageRgb8(img), ImageFormat::Tiff);
        let s = SliceImage::decode(&bytes, Path::new("a.tif")).unwrap();
        assert_eq!((s.channels, s.bit_depth), (3, 8));
        assert_eq!(s.plane(0)[3], 3.0);
        assert_eq!(s.plane(1)[3 * 4], 3.0);
        assert!(s.plane(2).iter().all(|&v| v == 200.0));
    }

    #[test]
    fn decodes_jpeg_grey() {
        let img = ImageBuffer::from_fn(16, 16, |_, _| Luma([128u8]));
        let bytes = encode(DynamicImage::ImageLuma8(img), ImageFormat::Jpeg);
        let s = SliceImage::decode(&bytes, Path::new("a.jpg")).unwrap();
        assert_eq!(s.channels, 1);
        assert!((s.data[0] - 128.0).abs() <= 2.0);
    }

    #[test]
    fn bad_inputs_name_the_file() {
        let cases: [(&[u8], &str); 3] = [
            (b"", "empty"),
            (b"hello, not an image at all", "not a PNG"),
            (
                &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0],
                "decode",
            ),
        ];
        for (bytes, needle) in cases {
            let err = SliceImage::decode(bytes, Path::new("inbox/bad.png")).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("inbox/bad.png"), "{msg}");
            assert!(msg.contains(needle), "{msg} lacks {needle}");
        }
    }

    #[test]
    fn truncated_png_is_an_error_not_a_panic() {
        let img = ImageBuffer::from_fn(64, 64, |x, y| Luma([(x ^ y) as u8]));
        let bytes = encode(DynamicImage::ImageLuma8(img), ImageFormat::Png);
        let err = SliceImage::decode(&bytes[..bytes.len() / 2], Path::new("t.png")).unwrap_err();
        assert!(err.to_string().contains("t.png"));
    }

    #[test]
    fn giant_header_is_refused_before_allocation() {
        // A valid PNG signature and IHDR declaring 60000 x 60000 pixels.
        let mut png = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend_from_slice(&60000u32.to_be_bytes());
        ihdr.extend_from_slice(&60000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
        let err = SliceImage::decode(&png, Path::new("huge.png")).unwrap_err();
        assert!(err.to_string().contains("huge.png"), "{err}");
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
