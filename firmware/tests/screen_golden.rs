//! The screen at each panel size, compared with committed pictures
//! (`tests/golden/`): a change to the UI shows up as a failing test and a
//! picture to look at. `NEUROSCREEN_BLESS=1 cargo test -p firmware --test
//! screen_golden` rewrites them after a deliberate change; look at them
//! before committing.

use firmware::screen::{draw_idle, draw_result, Counters, ScreenState};
use firmware::store::{Latency, Record, RecordVerdict};
use std::path::{Path, PathBuf};

const SIZES: [(u32, u32); 3] = [(320, 240), (800, 480), (1024, 600)];
/// A pixel differs when a channel moves by more than this; a picture
/// matches when at most `MAX_DIFFERENT` of its pixels differ (resampling
/// may round differently across image crate versions).
const CHANNEL_TOLERANCE: u8 = 8;
const MAX_DIFFERENT: f64 = 0.005;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// A flagged stacked sample, with its true mask standing in for the model's.
fn tumour_record() -> Record {
    let samples = repo().join("models/samples");
    let mut r = Record::new(
        samples.join("sample_02_tumour_stacked.png"),
        "int8".into(),
        Default::default(),
    );
    r.verdict = RecordVerdict::Tumour;
    r.mask = Some(samples.join("sample_02_tumour_stacked_mask.png"));
    r.tumour_probability = Some(0.934);
    r.area_px = Some(1207);
    r.area_mm2 = Some(301.8);
    r.latency_ms = Latency {
        filter: None,
        segment: Some(41.2),
        total: 57.6,
    };
    r
}

fn clear_record() -> Record {
    let mut r = Record::new(
        repo().join("models/samples/sample_07_clear_stacked.png"),
        "f32".into(),
        Default::default(),
    );
    r.verdict = RecordVerdict::Clear;
    r.tumour_probability = Some(0.041);
    r.area_px = Some(0);
    r.latency_ms.total = 12.3;
    r
}

fn error_record() -> Record {
    let mut r = Record::new(
        "/srv/inbox/broken_17.png".into(),
        "f32".into(),
        Default::default(),
    );
    r.error = Some("/srv/inbox/broken_17.png: cannot decode: PNG signature not found".into());
    r
}

fn state() -> ScreenState {
    ScreenState {
        counters: Counters {
            seen: 42,
            flagged: 7,
            errors: 1,
            series: None,
        },
        models: vec!["segmenter resunet int8 4b12d625".into()],
        sources: vec![
            "inbox /var/lib/neuroscreen/inbox".into(),
            "camera /dev/video0: capturing".into(),
        ],
        last_error: Some("/srv/inbox/broken_17.png: cannot decode".into()),
        notes: Vec::new(),
    }
}

fn check(name: &str, got: image::RgbImage) {
    let path = golden(name);
    if std::env::var_os("NEUROSCREEN_BLESS").is_some() {
        got.save(&path).unwrap();
        return;
    }
    let want = image::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (NEUROSCREEN_BLESS=1 writes it)", path.display()))
        .to_rgb8();
    assert_eq!(got.dimensions(), want.dimensions(), "{name}");
    let different = got
        .pixels()
        .zip(want.pixels())
        .filter(|(a, b)| {
            a.0.iter()
                .zip(b.0)
                .any(|(x, y)| x.abs_diff(y) > CHANNEL_TOLERANCE)
        })
        .count();
    let share = different as f64 / (got.width() * got.height()) as f64;
    if share > MAX_DIFFERENT {
        let seen = std::env::temp_dir().join(format!("neuroscreen-got-{name}"));
        let _ = got.save(&seen);
        panic!(
            "{name}: {different} pixels ({:.2} %) differ from {}; this run drew {}",
            share * 100.0,
            path.display(),
            seen.display()
        );
    }
}

#[test]
fn result_screens_match_the_golden_pictures_at_each_size() {
    for (w, h) in SIZES {
        let screen = draw_result(&tumour_record(), &state(), (w, h)).unwrap();
        check(&format!("tumour_{w}x{h}.png"), screen.to_image());
    }
    let screen = draw_result(&clear_record(), &state(), (800, 480)).unwrap();
    check("clear_800x480.png", screen.to_image());
    let screen = draw_result(&error_record(), &state(), (320, 240)).unwrap();
    check("error_320x240.png", screen.to_image());
}

#[test]
fn idle_screens_match_the_golden_pictures_at_each_size() {
    for (w, h) in SIZES {
        let screen = draw_idle(&state(), (w, h)).unwrap();
        check(&format!("idle_{w}x{h}.png"), screen.to_image());
    }
}

/// The comparison itself can fail: a different verdict on the same slice
/// is far outside the tolerance.
#[test]
fn a_different_verdict_is_caught_by_the_comparison() {
    if std::env::var_os("NEUROSCREEN_BLESS").is_some() {
        return;
    }
    let mut r = tumour_record();
    r.verdict = RecordVerdict::Clear;
    let got = draw_result(&r, &state(), (800, 480)).unwrap().to_image();
    let result = std::panic::catch_unwind(|| check("tumour_800x480.png", got));
    assert!(result.is_err());
}
