//! The committed hostile files (`tests/fixtures/hostile/`, made by
//! `scripts/make_reliability_fixtures.py`) through `neuroscreen scan`, beside
//! one good slice: every hostile file gets its own error line naming it and
//! the problem, the good slice is screened, the process ends normally with
//! the exit status for "some inputs failed", and its peak memory stays
//! bounded although several headers claim 60000 x 60000 pixels.

use neuroscreen_e2e::{neuroscreen, repo, run_measured, samples};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};

/// Per hostile file, a word its error must contain besides its name: the
/// problem, in the reader's terms.
const EXPECTED: &[(&str, &str)] = &[
    ("bomb_8192.png", "pixel limit"),
    ("five_channels.tif", "5 samples per pixel"),
    ("float32_grey.tif", "grey floating-point"),
    ("float64.tif", "grey floating-point"),
    ("float_nan.tif", "NaN"),
    ("four_samples.dcm", "4 samples per pixel"),
    ("garbage_after_magic.dcm", "DICOM: Could not parse"),
    ("grey16_cut_strip.tif", "cannot decode"),
    ("huge_60000.dcm", "60000x60000"),
    ("huge_60000.jpg", "size exceeds limit"),
    ("huge_60000.png", "size exceeds limit"),
    ("huge_60000.tif", "size exceeds limit"),
    ("lonely_mask.png", "mask"),
    ("lying_length_3gb.dcm", "declares 3000000000 bytes but only"),
    ("no_pixel_data.dcm", "no pixel data"),
    ("not_an_image.png", "not a PNG, TIFF or JPEG"),
    (
        "rle_overrun.dcm",
        "(FFFE,E000) at byte 1528 declares 6108 bytes",
    ),
    (
        "truncated.dcm",
        "(7FE0,0010) at byte 1488 declares 8192 bytes but only 3415 follow",
    ),
    ("truncated.jpg", "truncated"),
    ("truncated.png", "unexpected end of file"),
    ("truncated.tif", "failed to fill whole buffer"),
    ("two_channels.tif", "2 samples per pixel"),
    ("zero_bytes.dcm", "file is empty"),
    ("zero_bytes.png", "file is empty"),
];

/// Well above what the engine and one 256 px slice take (about 60 MiB in a
/// release build), well below decoding any of the claimed sizes.
const MAX_RSS_MIB: u64 = 400;

#[test]
fn every_hostile_file_gets_a_named_error_and_the_good_slice_is_screened() {
    let hostile = repo().join("tests/fixtures/hostile");
    let mut on_disk: Vec<String> = std::fs::read_dir(&hostile)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let expected: Vec<&str> = EXPECTED.iter().map(|(n, _)| *n).collect();
    assert_eq!(on_disk, expected, "fixtures and expectations differ");

    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("slices");
    std::fs::create_dir_all(&folder).unwrap();
    for name in &on_disk {
        std::fs::copy(hostile.join(name), folder.join(name)).unwrap();
    }
    let good = folder.join("good.png");
    std::fs::copy(&samples()[0], &good).unwrap();
    let out_dir = tmp.path().join("out");
    let stdout = tmp.path().join("stdout.txt");
    let stderr = tmp.path().join("stderr.txt");
    let run = run_measured(
        Command::new(neuroscreen())
            .arg("scan")
            .arg(&folder)
            .arg("--out")
            .arg(&out_dir)
            .args(["--models"])
            .arg(repo().join("models"))
            .stdout(Stdio::from(std::fs::File::create(&stdout).unwrap()))
            .stderr(Stdio::from(std::fs::File::create(&stderr).unwrap())),
    );
    let printed = std::fs::read_to_string(&stdout).unwrap();
    let log = std::fs::read_to_string(&stderr).unwrap();
    assert_eq!(run.signal, None, "killed by a signal\n{log}");
    assert_eq!(run.code, Some(1), "{printed}\n{log}");
    eprintln!("peak RSS of scan: {} KiB", run.max_rss_kib);
    assert!(
        run.max_rss_kib < MAX_RSS_MIB * 1024,
        "scan peaked at {} KiB",
        run.max_rss_kib
    );

    let text = std::fs::read_to_string(out_dir.join("results.jsonl")).unwrap();
    let lines: BTreeMap<String, Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| {
            let name = v["input"].as_str().unwrap().rsplit('/').next().unwrap();
            (name.to_string(), v.clone())
        })
        .collect();
    assert_eq!(lines.len(), EXPECTED.len() + 1, "{text}");
    for (name, problem) in EXPECTED {
        let line = &lines[*name];
        let error = line["error"].as_str().unwrap_or("");
        assert_eq!(line["verdict"], "error", "{name}: {line}");
        assert!(
            error.contains(name),
            "{name}: error does not name it: {error}"
        );
        assert!(
            error.contains(problem),
            "{name}: '{problem}' not in: {error}"
        );
        // The printed line, one per file, says the same.
        let shown = printed
            .lines()
            .filter(|l| l.starts_with("error") && l.contains(&format!("/{name}:")))
            .count();
        assert_eq!(shown, 1, "{name}: {shown} printed error lines\n{printed}");
    }
    assert_ne!(
        lines["good.png"]["verdict"], "error",
        "{}",
        lines["good.png"]
    );
    assert!(printed.contains("good.png"));
}
