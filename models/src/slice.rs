//! Decoding a slice file (PNG, TIFF, JPEG; 8- or 16-bit; grey or colour) into
//! one planar float image that keeps the source's raw intensity scale.

use crate::{Error, Result};
use image::{DynamicImage, ImageFormat, ImageReader};
use std::io::Cursor;
use std::path::Path;

/// The largest side we accept. MRI slices are at most a few thousand pixels;
/// anything larger is a hostile or broken header, refused before allocating.
pub const MAX_SIDE: u32 = 8192;

/// The most pixels a slice may have (4096 x 4096). A small file can declare
/// 8192 x 8192 and inflate to it; at four bytes a sample and three planes
/// that alone would take 800 MB on a board with 1-4 GB, so the area is
/// capped as well as the side.
pub const MAX_PIXELS: u64 = 4096 * 4096;

/// What the image decoders may allocate for one slice (16-bit RGBA at
/// `MAX_PIXELS` needs 128 MiB; TIFF strips and PNG rows need a little more).
const MAX_DECODE_ALLOC: u64 = 512 << 20;

/// Why a size is refused: each variant carries the size and the limit it
/// broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("image has no pixels ({width}x{height})")]
    NoPixels { width: u32, height: u32 },
    #[error("{width}x{height} pixels: a side is over the {max_side} px limit")]
    SideOverLimit {
        width: u32,
        height: u32,
        max_side: u32,
    },
    #[error("{width}x{height} pixels is over the {max_pixels}-pixel limit")]
    AreaOverLimit {
        width: u32,
        height: u32,
        max_pixels: u64,
    },
}

/// Refuses a size before anything is allocated for it; the error says why.
pub fn check_size(width: u32, height: u32) -> std::result::Result<(), SizeError> {
    if width == 0 || height == 0 {
        return Err(SizeError::NoPixels { width, height });
    }
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(SizeError::SideOverLimit {
            width,
            height,
            max_side: MAX_SIDE,
        });
    }
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(SizeError::AreaOverLimit {
            width,
            height,
            max_pixels: MAX_PIXELS,
        });
    }
    Ok(())
}

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
        let unsupported = |reason: String| Error::Unsupported {
            path: origin.to_path_buf(),
            reason,
        };
        match reader.format() {
            None => return Err(unsupported("not a PNG, TIFF or JPEG file".into())),
            Some(ImageFormat::Jpeg) if !jpeg_is_complete(bytes) => {
                // The JPEG decoder pads a cut file with grey and returns
                // "an image": half a slice would be screened as a whole one.
                return Err(decode_err(
                    "JPEG ends before its end-of-image marker (truncated?)".into(),
                ));
            }
            Some(ImageFormat::Tiff) => {
                tiff_samples(bytes).map_err(|e| unsupported(e.to_string()))?
            }
            Some(_) => {}
        }
        let limits = || {
            let mut limits = image::Limits::default();
            limits.max_image_width = Some(MAX_SIDE);
            limits.max_image_height = Some(MAX_SIDE);
            limits.max_alloc = Some(MAX_DECODE_ALLOC);
            limits
        };
        // The header alone first: the area is refused before decoding.
        let mut header = ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| decode_err(e.to_string()))?;
        header.limits(limits());
        let (w, h) = header
            .into_dimensions()
            .map_err(|e| decode_err(e.to_string()))?;
        check_size(w, h).map_err(|source| Error::Size {
            path: origin.to_path_buf(),
            source,
        })?;
        reader.limits(limits());
        let img = reader.decode().map_err(|e| decode_err(e.to_string()))?;
        Self::from_dynamic(img, origin)
    }

    pub fn from_dynamic(img: DynamicImage, origin: &Path) -> Result<Self> {
        let (w, h) = (img.width(), img.height());
        check_size(w, h).map_err(|source| Error::Size {
            path: origin.to_path_buf(),
            source,
        })?;
        let n = w as usize * h as usize;
        // Straight into planes (no interleaved float copy: a large slice
        // would hold both at once). Alpha carries no intensity in a scan
        // and is dropped.
        let (channels, bit_depth, data): (usize, u8, Vec<f32>) = match &img {
            DynamicImage::ImageLuma8(b) => (1, 8, planar(b.as_raw(), 1, 1, n, f32::from)),
            DynamicImage::ImageLumaA8(b) => (1, 8, planar(b.as_raw(), 2, 1, n, f32::from)),
            DynamicImage::ImageRgb8(b) => (3, 8, planar(b.as_raw(), 3, 3, n, f32::from)),
            DynamicImage::ImageRgba8(b) => (3, 8, planar(b.as_raw(), 4, 3, n, f32::from)),
            DynamicImage::ImageLuma16(b) => (1, 16, planar(b.as_raw(), 1, 1, n, f32::from)),
            DynamicImage::ImageLumaA16(b) => (1, 16, planar(b.as_raw(), 2, 1, n, f32::from)),
            DynamicImage::ImageRgb16(b) => (3, 16, planar(b.as_raw(), 3, 3, n, f32::from)),
            DynamicImage::ImageRgba16(b) => (3, 16, planar(b.as_raw(), 4, 3, n, f32::from)),
            DynamicImage::ImageRgb32F(b) => (3, 32, planar(b.as_raw(), 3, 3, n, |v| v)),
            DynamicImage::ImageRgba32F(b) => (3, 32, planar(b.as_raw(), 4, 3, n, |v| v)),
            other => {
                return Err(Error::Unsupported {
                    path: origin.to_path_buf(),
                    reason: format!("pixel format {:?}", other.color()),
                })
            }
        };
        drop(img);
        // Only a float image can hold them.
        if bit_depth == 32 && data.iter().any(|v| !v.is_finite()) {
            return Err(Error::Unsupported {
                path: origin.to_path_buf(),
                reason: "float image holds NaN or infinite values".into(),
            });
        }
        Ok(Self::new(w, h, channels, bit_depth, data))
    }
}

/// An end-of-image marker after the first start-of-scan: entropy-coded data
/// cannot hold FF D9 (a data FF is followed by 00), so a file cut anywhere
/// in its scans has none there.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let Some(sos) = bytes.windows(2).position(|w| w == [0xFF, 0xDA]) else {
        return false;
    };
    bytes[sos..].windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Why a TIFF's sample layout is refused.
#[derive(Debug, thiserror::Error)]
enum TiffLayoutError {
    #[error(transparent)]
    Read(#[from] tiff::TiffError),
    #[error("grey floating-point TIFF is not supported (grey 8/16-bit or RGB float are)")]
    GreyFloat,
    #[error("{samples} samples per pixel ({extra} extra); expected 1 (grey), 3 (RGB) or 4 (RGBA)")]
    Samples { samples: u16, extra: u16 },
}

/// A TIFF's samples per pixel must be grey or RGB, each with at most one
/// extra (alpha) sample: the decoder reads other layouts as something they
/// are not (five samples as RGBA, the fifth shifting every pixel).
fn tiff_samples(bytes: &[u8]) -> std::result::Result<(), TiffLayoutError> {
    use tiff::tags::Tag;
    let mut d = tiff::decoder::Decoder::new(Cursor::new(bytes))?;
    let samples: u16 = d.find_tag_unsigned(Tag::SamplesPerPixel)?.unwrap_or(1);
    let extra = d
        .find_tag_unsigned_vec::<u16>(Tag::ExtraSamples)?
        .map_or(0, |v| v.len() as u16);
    let float = d
        .find_tag_unsigned_vec::<u16>(Tag::SampleFormat)?
        .is_some_and(|v| v.first() == Some(&3));
    match (samples, extra) {
        (1, _) if float => Err(TiffLayoutError::GreyFloat),
        (1 | 3, 0) | (4, 0 | 1) => Ok(()),
        _ => Err(TiffLayoutError::Samples { samples, extra }),
    }
}

/// The first `channels` samples of each `stride`-sample pixel of `raw`, as
/// `channels` planes of `n` floats.
fn planar<S: Copy>(
    raw: &[S],
    stride: usize,
    channels: usize,
    n: usize,
    to_f32: impl Fn(S) -> f32,
) -> Vec<f32> {
    let mut data = vec![0.0f32; n * channels];
    // Plane by plane, so each output plane is written in order (pixel by
    // pixel, the writes went to three places a plane apart).
    for (c, plane) in data.chunks_exact_mut(n.max(1)).enumerate() {
        for (out, px) in plane.iter_mut().zip(raw.chunks_exact(stride)) {
            *out = to_f32(px[c]);
        }
    }
    data
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
    fn a_float_image_with_nan_is_refused_and_a_finite_one_kept() {
        let mut img =
            image::Rgb32FImage::from_fn(3, 2, |x, y| image::Rgb([x as f32, y as f32, 0.5]));
        let kept =
            SliceImage::from_dynamic(DynamicImage::ImageRgb32F(img.clone()), Path::new("f.tif"))
                .unwrap();
        assert_eq!((kept.channels, kept.bit_depth), (3, 32));
        assert_eq!(kept.plane(1), &[0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
        img.put_pixel(2, 1, image::Rgb([0.0, f32::NAN, 0.0]));
        let err = SliceImage::from_dynamic(DynamicImage::ImageRgb32F(img), Path::new("f.tif"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("f.tif") && err.contains("NaN"), "{err}");
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

    #[test]
    fn a_large_area_within_the_side_limit_is_refused_before_decoding() {
        // 8000 x 8000 passes the side limit but not the pixel budget.
        let mut png = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend_from_slice(&8000u32.to_be_bytes());
        ihdr.extend_from_slice(&8000u32.to_be_bytes());
        ihdr.extend_from_slice(&[16, 2, 0, 0, 0]);
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
        // An empty IDAT ends the header for the PNG reader.
        png.extend_from_slice(&0u32.to_be_bytes());
        png.extend_from_slice(b"IDAT");
        png.extend_from_slice(&crc32(b"IDAT").to_be_bytes());
        let msg = SliceImage::decode(&png, Path::new("wide.png"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("wide.png") && msg.contains("pixel limit"),
            "{msg}"
        );
    }

    #[test]
    fn a_refused_size_names_the_limit_it_broke() {
        assert_eq!(check_size(64, 64), Ok(()));
        assert_eq!(
            check_size(0, 64),
            Err(SizeError::NoPixels {
                width: 0,
                height: 64
            })
        );
        assert!(matches!(
            check_size(MAX_SIDE + 1, 1),
            Err(SizeError::SideOverLimit {
                max_side: MAX_SIDE,
                ..
            })
        ));
        assert!(matches!(
            check_size(8000, 8000),
            Err(SizeError::AreaOverLimit {
                width: 8000,
                height: 8000,
                ..
            })
        ));
        let img = DynamicImage::ImageLuma8(ImageBuffer::new(MAX_SIDE + 1, 1));
        let err = SliceImage::from_dynamic(img, Path::new("long.png")).unwrap_err();
        assert!(
            matches!(&err, Error::Size { path, source: SizeError::SideOverLimit { .. } } if path == Path::new("long.png")),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with("long.png: unsupported image: "),
            "{err}"
        );
    }

    #[test]
    fn a_cut_jpeg_is_refused_not_padded_into_a_slice() {
        let img = ImageBuffer::from_fn(64, 64, |x, y| Luma([(x * 3 + y) as u8]));
        let bytes = encode(DynamicImage::ImageLuma8(img), ImageFormat::Jpeg);
        SliceImage::decode(&bytes, Path::new("whole.jpg")).unwrap();
        let msg = SliceImage::decode(&bytes[..bytes.len() * 2 / 3], Path::new("cut.jpg"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("cut.jpg") && msg.contains("truncated"),
            "{msg}"
        );
    }

    #[test]
    fn a_tiff_with_five_samples_per_pixel_is_refused() {
        let bytes = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/fixtures/hostile/five_channels.tif"),
        )
        .unwrap();
        let msg = SliceImage::decode(&bytes, Path::new("five.tif"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("five.tif") && msg.contains("5 samples per pixel"),
            "{msg}"
        );
    }

    #[test]
    fn alpha_is_dropped_and_planes_keep_their_order() {
        let img = ImageBuffer::from_fn(3, 2, |x, y| image::Rgba([x as u8, y as u8, 7, 9]));
        let bytes = encode(DynamicImage::ImageRgba8(img), ImageFormat::Png);
        let s = SliceImage::decode(&bytes, Path::new("a.png")).unwrap();
        assert_eq!(s.channels, 3);
        assert_eq!(s.plane(0), [0.0, 1.0, 2.0, 0.0, 1.0, 2.0]);
        assert_eq!(s.plane(1), [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
        assert!(s.plane(2).iter().all(|&v| v == 7.0));
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
