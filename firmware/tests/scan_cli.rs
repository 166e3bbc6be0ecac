//! `neuroscreen scan` end to end on tiny models built by `common`.

mod common;

use common::*;
use models::MaskCounts;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scan(args: &[&Path], extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_neuroscreen"))
        .arg("scan")
        .args(args)
        .args(extra)
        .output()
        .unwrap()
}

fn lines(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn by_input<'a>(lines: &'a [Value], path: &Path) -> &'a Value {
    lines
        .iter()
        .find(|l| l["input"].as_str() == Some(path.to_str().unwrap()))
        .unwrap_or_else(|| panic!("no line for {}", path.display()))
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

struct Setup {
    _tmp: tempfile::TempDir,
    models: PathBuf,
    inbox: PathBuf,
    out: PathBuf,
}

impl Setup {
    /// `neuroscreen scan INPUT --out OUT --models MODELS` of this setup.
    fn scan(&self, input: &Path) -> Output {
        scan(
            &[input],
            &[
                "--out",
                self.out.to_str().unwrap(),
                "--models",
                self.models.to_str().unwrap(),
            ],
        )
    }
}

fn setup(set: &ModelSet) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    write_model_set(&models, set);
    let inbox = tmp.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let out = tmp.path().join("out");
    Setup {
        models,
        inbox,
        out,
        _tmp: tmp,
    }
}

#[test]
fn folder_scan_flags_the_blob_clears_the_dark_slice_and_reports_the_corrupt_file() {
    let s = setup(&ModelSet::default());
    // Two slices with the same file name in different folders.
    for sub in ["a", "b"] {
        std::fs::create_dir_all(s.inbox.join(sub)).unwrap();
        blob_slice(BLOB_W, BLOB_H, &[BLOB_DISC])
            .save(s.inbox.join(sub).join("slice.png"))
            .unwrap();
    }
    dark_slice(BLOB_W, BLOB_H)
        .save(s.inbox.join("dark.png"))
        .unwrap();
    let corrupt = s.inbox.join("corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\n not really").unwrap();

    let run = s.scan(&s.inbox);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stdout}\n{stderr}");

    let lines = lines(&s.out);
    assert_eq!(lines.len(), 4, "{lines:?}");
    let bad = by_input(&lines, &corrupt);
    assert_eq!(bad["verdict"], "error");
    assert!(
        bad["error"].as_str().unwrap().contains("corrupt.png"),
        "{bad}"
    );
    assert!(bad["mask"].is_null());
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("error") && l.contains("corrupt.png")),
        "{stdout}"
    );

    let dark = by_input(&lines, &s.inbox.join("dark.png"));
    assert_eq!(dark["verdict"], "clear");
    assert!(dark["mask"].is_null() && dark["bbox"].is_null());
    assert!(dark["latency_ms"]["segment"].is_null());
    assert!(dark["latency_ms"]["filter"].as_f64().unwrap() >= 0.0);
    assert_eq!(dark["precision"], "f32");

    let truth = blob_truth(BLOB_W, BLOB_H, &[BLOB_DISC]);
    let mut masks = Vec::new();
    for sub in ["a", "b"] {
        let line = by_input(&lines, &s.inbox.join(sub).join("slice.png"));
        assert_eq!(line["verdict"], "tumour", "{line}");
        assert!(line["tumour_probability"].as_f64().unwrap() > 0.9);
        let mask_path = PathBuf::from(line["mask"].as_str().unwrap());
        let mask = image::open(&mask_path).unwrap().to_luma8();
        assert_eq!(mask.dimensions(), (BLOB_W, BLOB_H));
        assert!(mask.pixels().all(|p| p[0] == 0 || p[0] == 255));
        let pred: Vec<bool> = mask.pixels().map(|p| p[0] == 255).collect();
        let dice = MaskCounts::from_masks(&pred, &truth).dice();
        assert!(dice > 0.9, "dice {dice}");
        assert_eq!(
            line["area_px"].as_u64().unwrap(),
            pred.iter().filter(|p| **p).count() as u64
        );
        assert_eq!(line["bbox"].as_array().unwrap().len(), 4);
        assert!(line["confidence"].as_f64().unwrap() > 0.5);
        for stage in ["filter", "segment", "total"] {
            assert!(
                line["latency_ms"][stage].as_f64().is_some(),
                "{stage}: {line}"
            );
        }
        masks.push(mask_path);
    }
    assert_ne!(
        masks[0], masks[1],
        "same file name in two folders must not collide"
    );

    assert!(
        stdout.contains("inputs") && stdout.contains("errors"),
        "{stdout}"
    );
    let summary = stdout
        .lines()
        .skip_while(|l| !l.starts_with("inputs"))
        .nth(1)
        .unwrap();
    let counts: Vec<&str> = summary.split_whitespace().take(4).collect();
    assert_eq!(counts, ["4", "2", "1", "1"], "{stdout}");

    // Per series: here each folder is one.
    let per_series = per_series_rows(&stdout);
    assert_eq!(per_series.len(), 3, "{stdout}");
    let row = |folder: &Path| {
        let name = folder.display().to_string();
        *per_series
            .iter()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row for {name}: {stdout}"))
    };
    for sub in ["a", "b"] {
        let area = by_input(&lines, &s.inbox.join(sub).join("slice.png"))["area_px"]
            .as_u64()
            .unwrap();
        assert!(
            row(&s.inbox.join(sub)).ends_with(&format!("1 of 1; largest {area} px (slice.png)")),
            "{stdout}"
        );
    }
    assert!(
        row(&s.inbox).ends_with("none of 2; 1 not screened"),
        "{stdout}"
    );
}

#[test]
fn stored_files_are_complete_and_no_temporaries_remain() {
    let s = setup(&ModelSet::default());
    blob_slice(BLOB_W, BLOB_H, &[BLOB_DISC])
        .save(s.inbox.join("blob.png"))
        .unwrap();
    dark_slice(60, 90).save(s.inbox.join("dark.png")).unwrap();
    let run = s.scan(&s.inbox);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let files = files_in(&s.out);
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.ends_with(".tmp") && !n.starts_with('.')),
        "{names:?}"
    );
    // blob: record, mask, overlay; dark: record, overlay; the log; and the
    // session summary's folder.
    assert_eq!(names.len(), 7, "{names:?}");
    let session: Vec<String> = files_in(&s.out.join("sessions"))
        .iter()
        .map(|p| p.extension().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(session, ["csv", "html"]);
    for f in files.iter().filter(|f| f.is_file()) {
        match f.extension().and_then(|e| e.to_str()) {
            Some("json") => {
                let v: Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
                assert!(v["verdict"].is_string(), "{v}");
            }
            Some("png") => {
                let img = image::open(f).unwrap();
                let expected = if names_input(f) == "blob" {
                    (BLOB_W, BLOB_H)
                } else {
                    (60, 90)
                };
                assert_eq!((img.width(), img.height()), expected, "{}", f.display());
            }
            Some("jsonl") => assert_eq!(lines(&s.out).len(), 2),
            _ => panic!("unexpected file {}", f.display()),
        }
    }
    // Each line's record file holds the same verdict.
    for line in lines(&s.out) {
        let record: Value =
            serde_json::from_slice(&std::fs::read(line["record"].as_str().unwrap()).unwrap())
                .unwrap();
        assert_eq!(record["verdict"], line["verdict"]);
        assert_eq!(record["input"], line["input"]);
    }

    // A second scan appends to the log instead of replacing it.
    let again = s.scan(&s.inbox.join("dark.png"));
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(lines(&s.out).len(), 3);
}

fn names_input(f: &Path) -> &str {
    let name = f.file_name().unwrap().to_str().unwrap();
    name.split('-').next().unwrap()
}

#[test]
fn tampered_model_makes_scan_refuse_to_start() {
    let s = setup(&ModelSet::default());
    blob_slice(BLOB_W, BLOB_H, &[BLOB_DISC])
        .save(s.inbox.join("blob.png"))
        .unwrap();
    let model = s.models.join("filter_f32.onnx");
    let expected = models::integrity::sha256_file(&model).unwrap();
    let mut bytes = std::fs::read(&model).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&model, &bytes).unwrap();
    let actual = models::integrity::sha256_file(&model).unwrap();

    let run = s.scan(&s.inbox);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("filter_f32.onnx"), "{stderr}");
    assert!(
        stderr.contains(&expected) && stderr.contains(&actual),
        "{stderr}"
    );
    assert!(
        !s.out.join("results.jsonl").exists(),
        "nothing may be scanned"
    );
}

#[test]
fn precision_and_component_options_reach_the_engine() {
    let set = ModelSet {
        int8_files: true,
        ..ModelSet::default()
    };
    let s = setup(&set);
    let small: Disc = (12.0, 12.0, 2.5);
    blob_slice(BLOB_W, BLOB_H, &[BLOB_DISC, small])
        .save(s.inbox.join("two.png"))
        .unwrap();
    let input = s.inbox.join("two.png");
    let mut area = Vec::new();
    for (precision, min_px) in [("int8", "0"), ("f32", "0"), ("f32", "60")] {
        let out = s.out.join(format!("{precision}-{min_px}"));
        let run = scan(
            &[&input],
            &[
                "--out",
                out.to_str().unwrap(),
                "--models",
                s.models.to_str().unwrap(),
                "--precision",
                precision,
                "--min-component-px",
                min_px,
            ],
        );
        assert_eq!(
            run.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let line = lines(&out).remove(0);
        assert_eq!(line["precision"], precision);
        assert_eq!(line["verdict"], "tumour");
        area.push(line["area_px"].as_u64().unwrap());
    }
    let small_px = blob_truth(BLOB_W, BLOB_H, &[small])
        .iter()
        .filter(|p| **p)
        .count() as u64;
    assert!(
        area[0].abs_diff(area[1]) < 20,
        "int8 {} vs f32 {}",
        area[0],
        area[1]
    );
    assert!(
        area[1] - area[2] >= small_px / 2,
        "removal dropped {} px",
        area[1] - area[2]
    );
}

#[test]
fn unknown_precision_is_a_usage_error() {
    let s = setup(&ModelSet::default());
    let run = scan(
        &[&s.inbox],
        &["--out", s.out.to_str().unwrap(), "--precision", "fp16"],
    );
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("fp16"));
}

/// A slice smaller than the models' input (here 64 px) is screened like
/// any other, with a caution naming its size; one at the input's size or
/// larger gets none.
#[test]
fn a_slice_coarser_than_the_model_input_gets_a_caution() {
    let s = setup(&ModelSet::default());
    blob_slice(48, 40, &[])
        .save(s.inbox.join("small.png"))
        .unwrap();
    blob_slice(BLOB_W, BLOB_H, &[BLOB_DISC])
        .save(s.inbox.join("large.png"))
        .unwrap();
    let run = s.scan(&s.inbox);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}");
    let lines = lines(&s.out);
    let small = by_input(&lines, &s.inbox.join("small.png"));
    assert_ne!(small["verdict"], "error", "{small}");
    assert_eq!(
        small["caution"],
        "outside the models' training: coarse: 48x40 px, under the models' 64x64 px input"
    );
    assert!(by_input(&lines, &s.inbox.join("large.png"))["caution"].is_null());
    assert!(
        stdout.contains("caution: outside the models' training: coarse: 48x40 px"),
        "{stdout}"
    );
}
