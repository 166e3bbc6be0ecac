//! Recorded raw frames of each capture format, decoded and compared with
//! the picture they were made from. The fixtures in `fixtures/camera/` are
//! made from a shipped sample slice by `make_fixtures` below
//! (`NEUROSCREEN_BLESS=1 cargo test -p board --test camera_frames`): packed
//! formats encoded with the forward BT.601 formulas (the decoder holds the
//! inverse), MJPEG by the image crate's JPEG encoder, and the same JPEG with
//! its Huffman tables cut out, as many UVC cameras send it.

use board::camera::{decode, FrameFormat, Roi};
use image::{DynamicImage, RgbImage};
use std::path::{Path, PathBuf};

const W: u32 = 96;
const H: u32 = 72;
/// Row padding in the grey and RGB fixtures, as drivers align rows.
const PAD: usize = 8;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/camera")
}

fn source() -> RgbImage {
    image::open(dir().join("source.png")).unwrap().to_rgb8()
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Mean and largest absolute difference per channel value.
fn difference(a: &RgbImage, b: &RgbImage) -> (f64, u8) {
    assert_eq!(a.dimensions(), b.dimensions());
    let diffs: Vec<u8> = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y))
        .collect();
    let mean = diffs.iter().map(|&d| f64::from(d)).sum::<f64>() / diffs.len() as f64;
    (mean, diffs.into_iter().max().unwrap_or(0))
}

#[test]
fn grey_with_padded_rows_is_exact() {
    let got = decode(
        FrameFormat::Grey,
        W,
        H,
        W as usize + PAD,
        &fixture("grey_96x72_stride104.raw"),
    )
    .unwrap();
    let DynamicImage::ImageLuma8(got) = got else {
        panic!("grey frames come back grey")
    };
    assert_eq!(got, DynamicImage::ImageRgb8(source()).to_luma8());
}

#[test]
fn rgb24_with_padded_rows_is_exact() {
    let stride = W as usize * 3 + PAD;
    let got = decode(
        FrameFormat::Rgb24,
        W,
        H,
        stride,
        &fixture("rgb24_96x72_stride296.raw"),
    )
    .unwrap();
    assert_eq!(got.to_rgb8(), source());
}

/// 4:2:2 shares colour between pixel pairs and limited range quantises:
/// close, not exact.
#[test]
fn yuyv_is_close_to_the_source() {
    let got = decode(
        FrameFormat::Yuyv,
        W,
        H,
        W as usize * 2,
        &fixture("yuyv_96x72.raw"),
    )
    .unwrap();
    let (mean, max) = difference(&got.to_rgb8(), &source());
    assert!(mean < 3.0 && max < 48, "mean {mean:.2} max {max}");
}

#[test]
fn mjpeg_is_close_to_the_source_with_or_without_huffman_tables() {
    let with = decode(FrameFormat::Mjpeg, W, H, 0, &fixture("mjpeg_96x72.jpg")).unwrap();
    let (mean, max) = difference(&with.to_rgb8(), &source());
    assert!(mean < 3.0 && max < 80, "mean {mean:.2} max {max}");
    let stripped = fixture("mjpeg_96x72_no_dht.jpg");
    assert!(
        !stripped.windows(2).any(|w| w == [0xFF, 0xC4]),
        "fixture still has a DHT"
    );
    let without = decode(FrameFormat::Mjpeg, W, H, 0, &stripped).unwrap();
    assert_eq!(without.to_rgb8(), with.to_rgb8());
    // The stream claims another size than the JPEG inside: refused.
    let e = decode(FrameFormat::Mjpeg, 640, 480, 0, &stripped).unwrap_err();
    assert!(e.to_string().contains("96x72"), "{e}");
}

#[test]
fn every_fixture_cut_short_is_an_error() {
    // The last row's padding may be missing; one byte of pixels may not.
    for (format, name, stride, pad) in [
        (
            FrameFormat::Grey,
            "grey_96x72_stride104.raw",
            W as usize + PAD,
            PAD,
        ),
        (
            FrameFormat::Rgb24,
            "rgb24_96x72_stride296.raw",
            W as usize * 3 + PAD,
            PAD,
        ),
        (FrameFormat::Yuyv, "yuyv_96x72.raw", W as usize * 2, 0),
        (FrameFormat::Mjpeg, "mjpeg_96x72.jpg", 0, 0),
    ] {
        let bytes = fixture(name);
        for cut in [bytes.len() / 2, bytes.len() - pad - 1] {
            assert!(
                decode(format, W, H, stride, &bytes[..cut]).is_err(),
                "{name} cut at {cut}"
            );
        }
    }
}

#[test]
fn the_region_of_interest_crops_a_decoded_frame() {
    let frame = decode(
        FrameFormat::Rgb24,
        W,
        H,
        W as usize * 3 + PAD,
        &fixture("rgb24_96x72_stride296.raw"),
    )
    .unwrap();
    let roi = Roi::from_array([12, 0, 72, 72]).unwrap();
    let got = roi.crop(&frame).unwrap().to_rgb8();
    let want = image::imageops::crop_imm(&source(), 12, 0, 72, 72).to_image();
    assert_eq!(got, want);
}

/// Writes the fixtures (only with NEUROSCREEN_BLESS=1); otherwise checks
/// that the committed ones are the sizes the tests expect.
#[test]
fn make_fixtures() {
    if std::env::var_os("NEUROSCREEN_BLESS").is_none() {
        assert_eq!(
            fixture("grey_96x72_stride104.raw").len(),
            (W as usize + PAD) * H as usize
        );
        assert_eq!(fixture("yuyv_96x72.raw").len(), W as usize * 2 * H as usize);
        return;
    }
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models/samples/sample_02_tumour_stacked.png");
    let slice = image::open(sample).unwrap().to_rgb8();
    // A console shows the slice smaller than it is, beside other things.
    let src = image::imageops::resize(&slice, W, H, image::imageops::FilterType::Triangle);
    let d = dir();
    src.save(d.join("source.png")).unwrap();

    let luma = DynamicImage::ImageRgb8(src.clone()).to_luma8();
    let mut grey = Vec::new();
    for row in luma.rows() {
        grey.extend(row.map(|p| p[0]));
        grey.extend([0xEE; PAD]);
    }
    std::fs::write(d.join("grey_96x72_stride104.raw"), grey).unwrap();

    let mut rgb = Vec::new();
    for row in src.rows() {
        rgb.extend(row.flat_map(|p| p.0));
        rgb.extend([0xEE; PAD]);
    }
    std::fs::write(d.join("rgb24_96x72_stride296.raw"), rgb).unwrap();

    // BT.601 limited range, U and V averaged over each pixel pair.
    let yuv = |p: &image::Rgb<u8>| {
        let [r, g, b] = p.0.map(i32::from);
        (
            ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16,
            ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128,
            ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128,
        )
    };
    let mut yuyv = Vec::new();
    for row in src.rows() {
        let px: Vec<_> = row.map(yuv).collect();
        for pair in px.chunks(2) {
            let (y0, u0, v0) = pair[0];
            let (y1, u1, v1) = pair[1];
            yuyv.extend(
                [y0, (u0 + u1 + 1) / 2, y1, (v0 + v1 + 1) / 2].map(|v| v.clamp(0, 255) as u8),
            );
        }
    }
    std::fs::write(d.join("yuyv_96x72.raw"), yuyv).unwrap();

    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&src)
        .unwrap();
    std::fs::write(d.join("mjpeg_96x72.jpg"), &jpeg).unwrap();
    std::fs::write(d.join("mjpeg_96x72_no_dht.jpg"), strip_dht(&jpeg)).unwrap();
}

/// The JPEG without its DHT segments (everything before the scan is a
/// sequence of length-prefixed segments).
fn strip_dht(jpeg: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    let mut at = 2;
    loop {
        let marker = jpeg[at + 1];
        if marker == 0xDA {
            out.extend_from_slice(&jpeg[at..]);
            return out;
        }
        let len = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        if marker != 0xC4 {
            out.extend_from_slice(&jpeg[at..at + 2 + len]);
        }
        at += 2 + len;
    }
}
