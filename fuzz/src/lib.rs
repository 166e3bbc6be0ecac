//! The bodies of the fuzz targets: what the appliance does with bytes that
//! come from outside (slices, DICOM files, camera frames, a model manifest,
//! its config).
//!
//! Each target feeds the input through the product's own entry point and
//! checks what must hold for *any* input: no panic, a bounded allocation, an
//! error that names the file, and for accepted inputs the invariants the
//! rest of the appliance relies on. The corpus replay test
//! (`firmware/tests/fuzz_corpus.rs`) includes this file, so every committed
//! corpus file runs through the same code in a plain `cargo test`.
//!
//! Adding a target: a function here, its entry in [`TARGETS`], a two-line
//! `fuzz_targets/<name>.rs`, a `[[bin]]` in `Cargo.toml` and seeds in
//! `corpus/<name>/`.

use board::camera::FrameFormat;
use firmware::config::ApplianceConfig;
use models::preprocess::{prepare, Normalisation, Preprocessing, ResizePolicy};
use models::{Manifest, SliceImage};
use std::path::Path;

pub type Target = fn(&[u8]);

/// Every target by name; the name is its `fuzz_targets/<name>.rs` and its
/// `corpus/<name>/` folder.
pub const TARGETS: &[(&str, Target)] = &[
    ("slice", slice),
    ("dicom", dicom),
    ("camera", camera),
    ("manifest", manifest),
    ("config", config),
];

/// libfuzzer-sys aborts on every panic, even one the product catches on
/// purpose (a third-party decoder's panic becomes that file's error). This
/// hook only prints; a panic that escapes the target still aborts, through
/// libfuzzer-sys's own catch around it.
fn report_panics_without_aborting() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|info| eprintln!("{info}"))));
}

/// A PNG, TIFF or JPEG slice decoded and brought to model inputs.
pub fn slice(data: &[u8]) {
    report_panics_without_aborting();
    let origin = Path::new("inbox/fuzz.png");
    match SliceImage::decode(data, origin) {
        Ok(s) => accepted_slice(&s),
        Err(e) => names(&e.to_string(), origin),
    }
}

/// A DICOM file decoded (as `scan` does for a file with the DICOM magic)
/// and brought to model inputs.
pub fn dicom(data: &[u8]) {
    report_panics_without_aborting();
    let origin = Path::new("inbox/fuzz.dcm");
    match firmware::dicom::decode(data, origin) {
        Ok(s) => accepted_slice(&s),
        Err(e) => names(&e.to_string(), origin),
    }
}

/// Bytes in front of each `camera` input: the frame's format, width, height
/// and stride, as the V4L2 driver would report them.
pub const CAMERA_HEADER: usize = 13;

/// Sides up to this many pixels: larger than the capture sizes we support,
/// small enough that an accepted frame stays a few tens of MB.
pub const CAMERA_MAX_SIDE: u32 = 4096;

/// Splits a `camera` input into what the driver says and the frame bytes:
/// byte 0 picks the format (modulo 4), bytes 1-2 and 3-4 are the width and
/// height (little-endian, modulo `CAMERA_MAX_SIDE + 1`, so 0 is possible),
/// bytes 5-12 the stride (little-endian u64, any value: drivers have lied).
/// None for inputs shorter than the header.
pub fn camera_header(data: &[u8]) -> Option<(FrameFormat, u32, u32, usize, &[u8])> {
    let (head, frame) = data.split_at_checked(CAMERA_HEADER)?;
    let format = FrameFormat::ALL[usize::from(head[0]) % FrameFormat::ALL.len()];
    let side = |b: &[u8]| u32::from(u16::from_le_bytes([b[0], b[1]])) % (CAMERA_MAX_SIDE + 1);
    let stride = u64::from_le_bytes(head[5..13].try_into().unwrap());
    Some((
        format,
        side(&head[1..3]),
        side(&head[3..5]),
        usize::try_from(stride).unwrap_or(usize::MAX),
        frame,
    ))
}

/// The header `camera_header` reads back as these values (for seeds and
/// tests; `format` is written as its index in `FrameFormat::ALL`).
pub fn camera_input(
    format: FrameFormat,
    width: u16,
    height: u16,
    stride: u64,
    frame: &[u8],
) -> Vec<u8> {
    let index = FrameFormat::ALL.iter().position(|f| *f == format).unwrap() as u8;
    let mut out = vec![index];
    out.extend(width.to_le_bytes());
    out.extend(height.to_le_bytes());
    out.extend(stride.to_le_bytes());
    out.extend(frame);
    out
}

/// A camera frame decoded (as the capture thread does with each buffer the
/// driver hands over) under a format, size and stride that may not match
/// the bytes. An error must say which format and size it was decoding, so
/// the log tells a wrong camera setting from a broken cable; an accepted
/// frame must be the size asked for, grey for grey frames and RGB for the
/// packed colour ones, and packed frames must be their rows without the
/// padding.
pub fn camera(data: &[u8]) {
    // The MJPEG path catches a panicking JPEG decoder on purpose.
    report_panics_without_aborting();
    let Some((format, width, height, stride, frame)) = camera_header(data) else {
        return;
    };
    match board::camera::decode(format, width, height, stride, frame) {
        Ok(img) => {
            assert_eq!(
                (img.width(), img.height()),
                (width, height),
                "{} frame accepted at another size",
                format.name()
            );
            let packed_rows = |bpp: usize, pixels: &[u8]| {
                let row = width as usize * bpp;
                for (y, got) in pixels.chunks_exact(row).enumerate() {
                    assert_eq!(got, &frame[y * stride..y * stride + row], "row {y}");
                }
            };
            match (format, &img) {
                (FrameFormat::Grey, image::DynamicImage::ImageLuma8(p)) => {
                    packed_rows(1, p.as_raw())
                }
                (FrameFormat::Rgb24, image::DynamicImage::ImageRgb8(p)) => {
                    packed_rows(3, p.as_raw())
                }
                (FrameFormat::Yuyv, image::DynamicImage::ImageRgb8(_)) => {}
                (
                    FrameFormat::Mjpeg,
                    image::DynamicImage::ImageLuma8(_) | image::DynamicImage::ImageRgb8(_),
                ) => {}
                (f, other) => panic!("{} frame came back as {:?}", f.name(), other.color()),
            }
        }
        Err(e) => {
            let message = e.to_string();
            let claim = format!("{} frame {width}x{height}", format.name());
            assert!(
                message.starts_with(&claim),
                "the error does not say which frame: {message}"
            );
        }
    }
}

/// A model manifest parsed and validated; an accepted one must answer the
/// appliance's questions and survive a round trip.
pub fn manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let origin = Path::new("models/manifest.json");
    match Manifest::from_json(text, origin) {
        Ok(m) => {
            let segmenter = m.segmenter();
            assert_eq!(segmenter.role, models::Role::Segmenter);
            if let Some(f) = m.filter() {
                assert_eq!(f.role, models::Role::Filter);
            }
            for entry in &m.models {
                assert!(entry.input.width() > 0 && entry.input.height() > 0);
            }
            let again =
                Manifest::from_json(&m.to_json(), origin).expect("a manifest we wrote reads back");
            assert_eq!(again, m, "round trip changed the manifest");
        }
        Err(e) => names(&e.to_string(), origin),
    }
}

/// `appliance.toml` parsed and every value checked (the disk is not
/// consulted: `check_models_dir` is a file-exists test).
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let origin = Path::new("/etc/neuroscreen/appliance.toml");
    match ApplianceConfig::from_toml(text, origin) {
        Ok(c) => {
            let engine = c.engine();
            assert!(engine.threads >= 1);
            assert!(c.pipeline.queue >= 1);
            for dir in [&c.models.dir, &c.inbox.dir, &c.store.dir] {
                assert!(dir.is_absolute(), "{} not resolved", dir.display());
            }
            let _ = c.snapshot_path();
        }
        Err(e) => names(&e.to_string(), origin),
    }
}

fn names(message: &str, origin: &Path) {
    assert!(
        message.contains(&*origin.to_string_lossy()),
        "the error does not name the file: {message}"
    );
}

/// What the engine relies on for a decoded slice, and the preprocessing of
/// it under the shipped settings and two others (odd, non-square sizes).
fn accepted_slice(s: &SliceImage) {
    assert!(models::slice::check_size(s.width, s.height).is_ok());
    assert!(
        s.channels == 1 || s.channels == 3,
        "{} channels",
        s.channels
    );
    let n = s.width as usize * s.height as usize;
    assert_eq!(s.data.len(), n * s.channels);
    assert!(s.data.iter().all(|v| v.is_finite()));
    let settings = [
        (Preprocessing::default(), 128, 128),
        (
            Preprocessing {
                resize: ResizePolicy::Stretch,
                normalisation: Normalisation::UnitRange,
            },
            48,
            40,
        ),
        (
            Preprocessing {
                resize: ResizePolicy::Letterbox,
                normalisation: Normalisation::ZScore,
            },
            31,
            17,
        ),
    ];
    for (pp, w, h) in settings {
        let input = prepare(s, &pp, w, h).expect("a decoded slice prepares");
        let plane = (w * h) as usize;
        assert_eq!(input.data.len(), 3 * plane);
        assert!(
            input.data.iter().all(|v| v.is_finite()),
            "non-finite model input under {pp:?}"
        );
        let [x, y, cw, ch] = input.geometry.content;
        assert!(cw >= 1 && ch >= 1 && x + cw <= w && y + ch <= h);
        let back = input.geometry.to_source(&input.data[..plane]);
        assert_eq!(back.len(), n);
    }
}
