//! Camera frames to pictures: the four pixel formats a USB camera or an
//! HDMI capture stick delivers. Pure functions of the bytes, so recorded
//! frames test them without a device; they never panic on bad input (the
//! bytes come from hardware and are fuzzed).

use crate::Error;
use image::{DynamicImage, GrayImage, ImageFormat, ImageReader, Limits, RgbImage};
use std::io::Cursor;
use std::str::FromStr;

/// Larger than any capture device we support, small enough that a lying
/// header cannot make us allocate gigabytes.
pub const MAX_SIDE: u32 = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameFormat {
    /// 8-bit luma (V4L2 `GREY`).
    Grey,
    /// 4:2:2 Y, U, Y, V per two pixels (V4L2 `YUYV`), BT.601 limited range.
    Yuyv,
    /// A JPEG per frame (V4L2 `MJPG`), Huffman tables optional.
    Mjpeg,
    /// 8-bit R, G, B (V4L2 `RGB3`).
    Rgb24,
}

impl FrameFormat {
    pub const ALL: [FrameFormat; 4] = [Self::Grey, Self::Yuyv, Self::Mjpeg, Self::Rgb24];

    pub fn fourcc(self) -> [u8; 4] {
        match self {
            Self::Grey => *b"GREY",
            Self::Yuyv => *b"YUYV",
            Self::Mjpeg => *b"MJPG",
            Self::Rgb24 => *b"RGB3",
        }
    }

    pub fn from_fourcc(code: [u8; 4]) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.fourcc() == code)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Grey => "grey",
            Self::Yuyv => "yuyv",
            Self::Mjpeg => "mjpeg",
            Self::Rgb24 => "rgb24",
        }
    }

    /// Bytes per pixel of the packed formats; `None` for MJPEG.
    fn packed_bytes(self) -> Option<usize> {
        match self {
            Self::Grey => Some(1),
            Self::Yuyv => Some(2),
            Self::Rgb24 => Some(3),
            Self::Mjpeg => None,
        }
    }
}

/// A name that is not a [`FrameFormat`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not one of grey, yuyv, mjpeg, rgb24")]
pub struct UnknownFrameFormat(pub String);

impl FromStr for FrameFormat {
    type Err = UnknownFrameFormat;

    fn from_str(s: &str) -> Result<Self, UnknownFrameFormat> {
        Self::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| UnknownFrameFormat(s.to_string()))
    }
}

/// What is wrong with an MJPEG frame: its JPEG structure (also what
/// [`with_huffman_tables`] refuses), the decoder's verdict, or its size.
#[derive(Debug, thiserror::Error)]
pub enum MjpegError {
    #[error("{len} bytes without a JPEG end marker: the frame was cut short")]
    NoEndMarker { len: usize },
    #[error("{len} bytes without a JPEG start marker")]
    NoStartMarker { len: usize },
    #[error("no JPEG marker at byte {at}")]
    NoMarker { at: usize },
    #[error("the JPEG ends before its scan")]
    EndsBeforeScan,
    #[error("JPEG segment at byte {at} is cut short")]
    SegmentCut { at: usize },
    #[error("JPEG segment at byte {at} has length {len}")]
    SegmentLength { at: usize, len: usize },
    #[error("the JPEG decoder gave up on this frame")]
    DecoderPanicked,
    #[error("not a JPEG frame: {0}")]
    Decode(#[source] image::ImageError),
    /// The JPEG's own size, where the stream claimed another.
    #[error("the JPEG inside is {width}x{height}")]
    Size { width: u32, height: u32 },
}

/// Decodes one frame. `stride` is the bytes from one row to the next (the
/// driver's `bytesperline`, at least the packed row; ignored for MJPEG).
/// Grey frames come back grey, the others RGB.
pub fn decode(
    format: FrameFormat,
    width: u32,
    height: u32,
    stride: usize,
    bytes: &[u8],
) -> Result<DynamicImage, Error> {
    let fail = |reason: String| Error::Frame {
        format: format.name(),
        width,
        height,
        reason,
    };
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(fail(format!("size outside 1..={MAX_SIDE} pixels a side")));
    }
    let Some(bpp) = format.packed_bytes() else {
        return decode_mjpeg(width, height, bytes).map_err(|source| Error::Mjpeg {
            width,
            height,
            source,
        });
    };
    if format == FrameFormat::Yuyv && !width.is_multiple_of(2) {
        return Err(fail(
            "YUYV needs an even width (two pixels share U and V)".into(),
        ));
    }
    let row = width as usize * bpp;
    if stride < row {
        return Err(fail(format!(
            "stride {stride} is shorter than a row ({row} bytes)"
        )));
    }
    // The last row need not carry its padding.
    let needed = stride
        .checked_mul(height as usize - 1)
        .and_then(|n| n.checked_add(row))
        .ok_or_else(|| fail(format!("stride {stride} overflows")))?;
    if bytes.len() < needed {
        return Err(fail(format!(
            "{} bytes, {needed} needed (stride {stride})",
            bytes.len()
        )));
    }
    let rows = (0..height as usize).map(|y| &bytes[y * stride..y * stride + row]);
    Ok(match format {
        FrameFormat::Grey => {
            let mut img = GrayImage::new(width, height);
            for (out, src) in img.chunks_exact_mut(width as usize).zip(rows) {
                out.copy_from_slice(src);
            }
            DynamicImage::ImageLuma8(img)
        }
        FrameFormat::Rgb24 => {
            let mut img = RgbImage::new(width, height);
            for (out, src) in img.chunks_exact_mut(row).zip(rows) {
                out.copy_from_slice(src);
            }
            DynamicImage::ImageRgb8(img)
        }
        // YUYV: MJPEG returned above.
        _ => {
            let mut img = RgbImage::new(width, height);
            for (out, src) in img.chunks_exact_mut(width as usize * 3).zip(rows) {
                for (px, m) in out.chunks_exact_mut(6).zip(src.chunks_exact(4)) {
                    let (y0, u, y1, v) = (m[0], m[1], m[2], m[3]);
                    px[..3].copy_from_slice(&yuv_to_rgb(y0, u, v));
                    px[3..].copy_from_slice(&yuv_to_rgb(y1, u, v));
                }
            }
            DynamicImage::ImageRgb8(img)
        }
    })
}

/// BT.601 limited range (what UVC cameras send for YUYV), integer form.
pub fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = 298 * (i32::from(y) - 16);
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    let clamp = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u8;
    [
        clamp(c + 409 * e),
        clamp(c - 100 * d - 208 * e),
        clamp(c + 516 * d),
    ]
}

fn decode_mjpeg(width: u32, height: u32, bytes: &[u8]) -> Result<DynamicImage, MjpegError> {
    // A frame cut short on the USB link decodes "fine" with grey where the
    // data stopped; the models must not screen that, so the end-of-image
    // marker is required (after any zero padding the driver leaves).
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    if !bytes[..end].ends_with(&[0xFF, 0xD9]) {
        return Err(MjpegError::NoEndMarker { len: bytes.len() });
    }
    let jpeg = with_huffman_tables(&bytes[..end])?;
    let mut reader = ImageReader::with_format(Cursor::new(jpeg), ImageFormat::Jpeg);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(256 << 20);
    reader.limits(limits);
    // The decoder is not supposed to panic on corrupt data; this frame comes
    // from a cable, so a panic in it must not take the capture thread down.
    let decoded = std::panic::catch_unwind(move || reader.decode())
        .map_err(|_| MjpegError::DecoderPanicked)?
        .map_err(MjpegError::Decode)?;
    if (decoded.width(), decoded.height()) != (width, height) {
        return Err(MjpegError::Size {
            width: decoded.width(),
            height: decoded.height(),
        });
    }
    Ok(match decoded {
        DynamicImage::ImageLuma8(_) => decoded,
        other => DynamicImage::ImageRgb8(other.to_rgb8()),
    })
}

/// Many UVC cameras leave the Huffman tables out of each MJPEG frame (the
/// AVI1 convention: the standard tables of JPEG Annex K are implied). A
/// decoder needs them, so they are put in front of the scan when missing.
pub fn with_huffman_tables(jpeg: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, MjpegError> {
    if jpeg.len() < 4 || jpeg[..2] != [0xFF, 0xD8] {
        return Err(MjpegError::NoStartMarker { len: jpeg.len() });
    }
    let mut at = 2;
    loop {
        // Fill bytes (0xFF runs) may precede a marker.
        while jpeg.get(at) == Some(&0xFF) && jpeg.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let (Some(&0xFF), Some(&marker)) = (jpeg.get(at), jpeg.get(at + 1)) else {
            return Err(MjpegError::NoMarker { at });
        };
        match marker {
            0xC4 => return Ok(jpeg.into()),
            0xDA => {
                let mut out = Vec::with_capacity(jpeg.len() + STANDARD_DHT_LEN + 4);
                out.extend_from_slice(&jpeg[..at]);
                out.extend_from_slice(&standard_dht());
                out.extend_from_slice(&jpeg[at..]);
                return Ok(out.into());
            }
            0xD9 => return Err(MjpegError::EndsBeforeScan),
            _ => {
                let len = match (jpeg.get(at + 2), jpeg.get(at + 3)) {
                    (Some(&hi), Some(&lo)) => usize::from(u16::from_be_bytes([hi, lo])),
                    _ => return Err(MjpegError::SegmentCut { at }),
                };
                if len < 2 {
                    return Err(MjpegError::SegmentLength { at, len });
                }
                at += 2 + len;
            }
        }
    }
}

/// JPEG Annex K.3: DC and AC tables for luminance and chrominance.
const DC_LUMA: ([u8; 16], &[u8]) = (
    [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
    &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
);
const DC_CHROMA: ([u8; 16], &[u8]) = (
    [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
    &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
);
const AC_LUMA: ([u8; 16], &[u8]) = (
    [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D],
    &[
        0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61,
        0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08, 0x23, 0x42, 0xB1, 0xC1, 0x15, 0x52,
        0xD1, 0xF0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0A, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x25,
        0x26, 0x27, 0x28, 0x29, 0x2A, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45,
        0x46, 0x47, 0x48, 0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63, 0x64,
        0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x83,
        0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
        0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6,
        0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3,
        0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8,
        0xE9, 0xEA, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA,
    ],
);
const AC_CHROMA: ([u8; 16], &[u8]) = (
    [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77],
    &[
        0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61,
        0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xA1, 0xB1, 0xC1, 0x09, 0x23, 0x33,
        0x52, 0xF0, 0x15, 0x62, 0x72, 0xD1, 0x0A, 0x16, 0x24, 0x34, 0xE1, 0x25, 0xF1, 0x17, 0x18,
        0x19, 0x1A, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44,
        0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63,
        0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A,
        0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97,
        0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4,
        0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA,
        0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7,
        0xE8, 0xE9, 0xEA, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA,
    ],
);

/// Four tables of 1 + 16 bytes plus 12, 12, 162 and 162 values.
const STANDARD_DHT_LEN: usize = 4 * 17 + 2 * 12 + 2 * 162;

/// One DHT segment holding the four standard tables.
fn standard_dht() -> Vec<u8> {
    let mut out = Vec::with_capacity(STANDARD_DHT_LEN + 4);
    out.extend_from_slice(&[0xFF, 0xC4]);
    out.extend_from_slice(&((STANDARD_DHT_LEN + 2) as u16).to_be_bytes());
    // Class (0 DC, 1 AC) in the high nibble, table id in the low one.
    for (class_id, (bits, values)) in [
        (0x00, DC_LUMA),
        (0x10, AC_LUMA),
        (0x01, DC_CHROMA),
        (0x11, AC_CHROMA),
    ] {
        out.push(class_id);
        out.extend_from_slice(&bits);
        out.extend_from_slice(values);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_tables_hold_as_many_values_as_their_code_counts() {
        for (bits, values) in [DC_LUMA, DC_CHROMA, AC_LUMA, AC_CHROMA] {
            let n: usize = bits.iter().map(|&b| usize::from(b)).sum();
            assert_eq!(n, values.len());
        }
        assert_eq!(standard_dht().len(), STANDARD_DHT_LEN + 4);
    }

    #[test]
    fn short_and_inconsistent_buffers_are_refused_by_name() {
        let cases: [(FrameFormat, u32, u32, usize, usize, &str); 7] = [
            (FrameFormat::Grey, 4, 2, 4, 7, "7 bytes, 8 needed"),
            (FrameFormat::Rgb24, 4, 2, 11, 24, "stride 11 is shorter"),
            (FrameFormat::Yuyv, 3, 2, 6, 12, "even width"),
            (FrameFormat::Yuyv, 4, 2, 8, 15, "15 bytes, 16 needed"),
            (FrameFormat::Grey, 0, 2, 0, 0, "size outside"),
            (FrameFormat::Grey, 9000, 1, 9000, 9000, "size outside"),
            (FrameFormat::Mjpeg, 4, 2, 0, 10, "cut short"),
        ];
        for (format, w, h, stride, len, want) in cases {
            let e = decode(format, w, h, stride, &vec![0; len])
                .unwrap_err()
                .to_string();
            assert!(e.contains(want) && e.contains(format.name()), "{e}");
        }
        // A stride near usize::MAX overflows instead of slicing out of bounds.
        let e = decode(FrameFormat::Grey, 2, 3, usize::MAX / 2, &[0; 8]).unwrap_err();
        assert!(e.to_string().contains("overflows"), "{e}");
    }

    #[test]
    fn padding_at_the_row_ends_is_skipped_and_the_last_row_may_lack_it() {
        let bytes = [1, 2, 99, 99, 3, 4];
        let img = decode(FrameFormat::Grey, 2, 2, 4, &bytes)
            .unwrap()
            .to_luma8();
        assert_eq!(img.into_raw(), [1, 2, 3, 4]);
    }

    #[test]
    fn yuv_reference_points() {
        assert_eq!(yuv_to_rgb(16, 128, 128), [0, 0, 0]);
        assert_eq!(yuv_to_rgb(235, 128, 128), [255, 255, 255]);
        // BT.601 red: Y 81, U 90, V 240.
        let [r, g, b] = yuv_to_rgb(81, 90, 240);
        assert!(r >= 250 && g <= 3 && b <= 3, "{r} {g} {b}");
    }

    #[test]
    fn fourcc_and_names_round_trip() {
        for f in FrameFormat::ALL {
            assert_eq!(FrameFormat::from_fourcc(f.fourcc()), Some(f));
            assert_eq!(f.name().parse::<FrameFormat>(), Ok(f));
        }
        assert!("h264".parse::<FrameFormat>().is_err());
    }

    #[test]
    fn a_jpeg_cut_short_or_without_a_scan_is_an_error_not_a_panic() {
        for bytes in [
            &[0xFF, 0xD8, 0xFF][..],
            &[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10],
            &[0xFF, 0xD8, 0xFF, 0xD9],
            &[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x00, 0xFF],
            &[0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x00],
        ] {
            assert!(decode(FrameFormat::Mjpeg, 8, 8, 0, bytes).is_err());
        }
        let e = decode(FrameFormat::Mjpeg, 8, 8, 0, &[1, 2, 0xFF, 0xD9, 0, 0]).unwrap_err();
        assert!(e.to_string().contains("start marker"), "{e}");
    }

    #[test]
    fn jpeg_structure_errors_are_variants_with_their_place() {
        assert!(matches!(
            with_huffman_tables(&[1, 2, 3, 4]),
            Err(MjpegError::NoStartMarker { len: 4 })
        ));
        assert!(matches!(
            with_huffman_tables(&[0xFF, 0xD8, 0xFF, 0xD9]),
            Err(MjpegError::EndsBeforeScan)
        ));
        assert!(matches!(
            with_huffman_tables(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01]),
            Err(MjpegError::SegmentLength { at: 2, len: 1 })
        ));
        let e = decode(FrameFormat::Mjpeg, 8, 8, 0, &[0xFF, 0xD8, 0xFF, 0xD9]).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Mjpeg {
                    width: 8,
                    height: 8,
                    source: MjpegError::EndsBeforeScan
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            "h264".parse::<FrameFormat>(),
            Err(UnknownFrameFormat("h264".into()))
        );
    }
}
