//! Every committed fuzz seed (`fuzz/corpus/<target>/`) and every hostile
//! fixture through the fuzz targets' own bodies, in a plain `cargo test`:
//! the cheap regression net for what the fuzzers found, on any toolchain.

#[path = "../../fuzz/src/lib.rs"]
mod harness;

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn every_target_has_a_binary_and_a_seed_corpus() {
    let fuzz = root().join("fuzz");
    let mut binaries: Vec<String> = files_in(&fuzz.join("fuzz_targets"))
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    binaries.sort();
    let mut named: Vec<String> = harness::TARGETS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    named.sort();
    assert_eq!(binaries, named, "fuzz_targets/ and TARGETS differ");
    let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).unwrap();
    for name in &named {
        assert!(
            manifest.contains(&format!("path = \"fuzz_targets/{name}.rs\"")),
            "{name} has no [[bin]] in fuzz/Cargo.toml"
        );
        assert!(
            files_in(&fuzz.join("corpus").join(name)).len() >= 3,
            "{name} has fewer than 3 seeds"
        );
    }
}

#[test]
fn every_committed_corpus_file_replays_cleanly() {
    let mut replayed = 0;
    for (name, target) in harness::TARGETS {
        for file in files_in(&root().join("fuzz/corpus").join(name)) {
            let bytes = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&bytes));
            assert!(outcome.is_ok(), "{name}: {} panicked", file.display());
            replayed += 1;
        }
    }
    assert!(replayed > 0);
}

#[test]
fn every_hostile_fixture_goes_through_the_decoding_targets() {
    for file in files_in(&root().join("tests/fixtures/hostile")) {
        let bytes = std::fs::read(&file).unwrap();
        for (name, target) in harness::TARGETS
            .iter()
            .filter(|(n, _)| ["slice", "dicom"].contains(n))
        {
            let outcome = std::panic::catch_unwind(|| target(&bytes));
            assert!(outcome.is_ok(), "{name}: {} panicked", file.display());
        }
    }
}

/// The camera seeds carry the header `camera_header` reads (written by
/// `scripts/make_reliability_fixtures.py`): if the two disagreed, every seed
/// would be refused at its header and the fuzzer would start from nothing
/// the decoder accepts. Each format needs at least one accepted seed.
#[test]
fn every_camera_format_has_a_seed_the_decoder_accepts() {
    use board::camera::{decode, FrameFormat};
    let mut accepted = Vec::new();
    for file in files_in(&root().join("fuzz/corpus/camera")) {
        let bytes = std::fs::read(&file).unwrap();
        let Some((format, w, h, stride, frame)) = harness::camera_header(&bytes) else {
            continue;
        };
        if decode(format, w, h, stride, frame).is_ok() {
            accepted.push(format);
        }
    }
    for format in FrameFormat::ALL {
        assert!(
            accepted.contains(&format),
            "no {} seed is accepted (accepted: {accepted:?})",
            format.name()
        );
    }
}

/// Headers that lie about the frame, through the camera target's checks:
/// each must come back as an error naming the format and the claimed size
/// (the target asserts that), never a panic.
#[test]
fn the_camera_target_holds_for_headers_that_lie() {
    use board::camera::FrameFormat;
    let grey = [7u8; 64];
    let cases = [
        // Stride near u64::MAX: the size computation must overflow cleanly.
        harness::camera_input(FrameFormat::Grey, 4, 4, u64::MAX, &grey),
        harness::camera_input(FrameFormat::Rgb24, 4, 4, u64::MAX / 3, &grey),
        // Largest size, a few bytes.
        harness::camera_input(FrameFormat::Yuyv, 4096, 4096, 8192, &grey),
        // Stride shorter than a row, zero sides.
        harness::camera_input(FrameFormat::Rgb24, 8, 2, 3, &grey),
        harness::camera_input(FrameFormat::Grey, 0, 4, 0, &grey),
        // A JPEG claimed at another size than it has.
        harness::camera_input(
            FrameFormat::Mjpeg,
            640,
            480,
            0,
            &std::fs::read(root().join("board/tests/fixtures/camera/mjpeg_96x72.jpg")).unwrap(),
        ),
    ];
    for input in cases {
        let (format, w, h, stride, frame) = harness::camera_header(&input).unwrap();
        assert!(
            board::camera::decode(format, w, h, stride, frame).is_err(),
            "{} {w}x{h} stride {stride} accepted",
            format.name()
        );
        harness::camera(&input);
    }
    // Shorter than the header: nothing to decode, nothing to check.
    assert!(harness::camera_header(&[0; harness::CAMERA_HEADER - 1]).is_none());
}
