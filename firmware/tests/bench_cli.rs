//! `neuroscreen bench` on a tiny filter + segmenter set with f32 and int8
//! files: both precisions in their own processes, both models, the
//! onnxruntime peer when the Python environment has it.

mod common;

use common::*;
use serde_json::Value;
use std::process::Command;

/// The repository's Python environment has onnxruntime (scripts/setup.sh).
fn python() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python3")
}

/// `neuroscreen bench ARGS --models MODELS` with the onnxruntime peer and
/// `--json`: its stdout and the JSON report; fails the test if it fails.
fn bench(dir: &std::path::Path, models: &std::path::Path, args: &[&str]) -> (String, Value) {
    let json = dir.join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_neuroscreen"))
        .arg("bench")
        .args(args)
        .arg("--models")
        .arg(models)
        .arg("--python")
        .arg(python())
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        stdout,
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap(),
    )
}

/// A tiny filter + segmenter set with f32 and int8 files, in `dir/models`.
fn tiny_set_with_both_precisions(dir: &std::path::Path) -> std::path::PathBuf {
    let models = dir.join("models");
    write_model_set(
        &models,
        &ModelSet {
            int8_files: true,
            ..ModelSet::default()
        },
    );
    models
}

#[test]
fn bench_times_both_precisions_both_models_and_the_peer() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tiny_set_with_both_precisions(tmp.path());
    let samples = models.join("samples");
    std::fs::create_dir_all(&samples).unwrap();
    blob_slice(100, 80, &[(50.0, 40.0, 20.0)])
        .save(samples.join("blob.png"))
        .unwrap();
    blob_slice(100, 80, &[])
        .save(samples.join("dark.png"))
        .unwrap();
    std::fs::write(
        samples.join("samples.json"),
        r#"[{"file":"blob.png","mask":null,"truth":"tumour","lesion_px":1256},
            {"file":"dark.png","mask":null,"truth":"clear","lesion_px":0}]"#,
    )
    .unwrap();
    let (stdout, report) = bench(tmp.path(), &models, &["--runs", "3", "--threads", "1"]);
    let tract = report["tract"].as_array().unwrap();
    let precisions: Vec<&str> = tract
        .iter()
        .map(|w| w["precision"].as_str().unwrap())
        .collect();
    assert_eq!(precisions, ["f32", "int8"]);
    for w in tract {
        assert!(w["engine_load_ms"].as_f64().unwrap() > 0.0);
        assert!(w["peak_rss_kib"].as_u64().unwrap() > 1000);
        let names: Vec<&str> = w["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["model"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["filter", "seg"]);
        for m in w["models"].as_array().unwrap() {
            assert_eq!(m["ms"]["n"], 3);
            assert!(m["ms"]["p50"].as_f64().unwrap() > 0.0);
        }
        // Two slices, runs rounded up to whole passes over them.
        assert_eq!(w["slices"], 4);
        assert_eq!(w["end_to_end_ms"]["n"], 4);
        // The filter passes the blob slice (twice) to the segmenter and
        // clears the dark one.
        assert_eq!(w["filter_ms"]["n"], 4);
        assert_eq!(w["segment_ms"]["n"], 2, "{w}");
        // The appliance's own work, step by step, beside both models' runs.
        let steps = w["steps"].as_array().unwrap();
        let named = |stage: &str, step: &str| {
            steps
                .iter()
                .find(|s| s["stage"] == stage && s["step"] == step)
                .unwrap_or_else(|| panic!("no {stage}/{step} in {w}"))
        };
        assert_eq!(named("filter", "model")["model"], true);
        assert_eq!(named("segmenter", "model")["model"], true);
        for (stage, step) in [
            ("input", "decode the file"),
            ("filter", "prepare"),
            ("segmenter", "back to slice size"),
            ("store", "encode the PNGs"),
        ] {
            assert_eq!(named(stage, step)["model"], false);
            assert!(named(stage, step)["ms"].as_f64().unwrap() >= 0.0);
        }
    }
    assert!(stdout.contains("around the models:"), "{stdout}");
    println!("{stdout}");
    if python().exists() {
        let ort = &report["onnxruntime"];
        assert!(
            ort["runtime"].as_str().unwrap().starts_with("onnxruntime"),
            "{report}"
        );
        let timed = ort["models"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["ms"]["p50"].as_f64().is_some())
            .count();
        assert!(
            timed >= 2,
            "onnxruntime timed the f32 files at least: {report}"
        );
        assert!(stdout.contains("tract/ort"), "{stdout}");
    }
    assert!(stdout.contains("tract int8 / f32, seg:"), "{stdout}");
}

#[test]
fn profile_sums_each_models_time_per_operator_at_each_size() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tiny_set_with_both_precisions(tmp.path());
    let (stdout, report) = bench(
        tmp.path(),
        &models,
        &[
            "--profile",
            "--runs",
            "2",
            "--threads",
            "1",
            "--size",
            "32",
            "--size",
            "64",
            "--precision",
            "f32",
        ],
    );
    let profiles = report["profiles"].as_array().unwrap();
    let cases: Vec<(&str, &str, u64)> = profiles
        .iter()
        .map(|p| {
            (
                p["model"].as_str().unwrap(),
                p["precision"].as_str().unwrap(),
                p["size"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        cases,
        [
            ("seg", "f32", 32),
            ("seg", "f32", 64),
            ("filter", "f32", 32),
            ("filter", "f32", 64)
        ]
    );
    for p in profiles {
        let tract = &p["tract"];
        assert!(tract["whole_ms"].as_f64().unwrap() > 0.0, "{p}");
        let ops = tract["ops"].as_array().unwrap();
        assert!(!ops.is_empty(), "{p}");
        let nodes: u64 = ops.iter().map(|o| o["nodes"].as_u64().unwrap()).sum();
        assert!(nodes >= 2, "every timed node is counted once: {p}");
        assert!(!tract["slowest"].as_array().unwrap().is_empty());
        if python().exists() {
            let ort = &p["onnxruntime"];
            assert!(ort["whole_ms"].as_f64().unwrap() > 0.0, "{p}");
            // The same ONNX operators as the file holds (the tiny filter
            // pools and multiplies; the tiny segmenter convolves).
            let kinds: Vec<&str> = ort["ops"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["op"].as_str().unwrap())
                .collect();
            let expected = if p["model"] == "seg" { "Conv" } else { "Gemm" };
            assert!(kinds.iter().any(|k| k.contains(expected)), "{kinds:?}");
        }
    }
    // Each size reaches the plan that was profiled: the segmenter's product
    // runs over every pixel, so its row count is the side squared. (Comparing
    // the two sizes' times failed on a cold CI machine: the tiny model's
    // nodes take microseconds, below the clock's noise.)
    for (i, side) in [(0usize, 32u64), (1, 64)] {
        let rows = format!("m:{}", side * side);
        let infos: Vec<&str> = profiles[i]["tract"]["slowest"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["info"].as_str().unwrap())
            .collect();
        assert!(
            infos.iter().any(|info| info.contains(&rows)),
            "{side} px: no node over {rows}: {infos:?}"
        );
    }
    assert!(stdout.contains("seg f32 at 64 px: tract"), "{stdout}");
    assert!(stdout.contains("slowest tract nodes:"), "{stdout}");
}

#[test]
fn kernels_times_each_convolution_alone_and_keeps_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tiny_set_with_both_precisions(tmp.path());
    let files = tmp.path().join("convs");
    let (stdout, report) = bench(
        tmp.path(),
        &models,
        &[
            "--kernels",
            "--runs",
            "2",
            "--threads",
            "1",
            "--write",
            files.to_str().unwrap(),
        ],
    );
    // The tiny segmenter is one 1x1 convolution over the 3-channel slice;
    // the tiny filter has none.
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{report}");
    let row = &rows[0];
    assert_eq!(row["model"], "seg");
    assert_eq!(row["shape"]["cin"], 3);
    assert_eq!(row["shape"]["cout"], 1);
    assert_eq!(row["shape"]["kernel"], serde_json::json!([1, 1]));
    assert!(row["tract_ms"].as_f64().unwrap() > 0.0, "{row}");
    assert!(!row["tract_kernel"].as_str().unwrap().is_empty(), "{row}");
    // The file it timed is kept and is an ONNX model tract reads back.
    let file = files.join(row["file"].as_str().unwrap());
    let model = tract_onnx::prelude::Framework::model_for_path(&tract_onnx::onnx(), &file)
        .unwrap_or_else(|e| panic!("{}: {e:#}", file.display()));
    let ops: Vec<String> = model
        .nodes()
        .iter()
        .map(|n| n.op.name().to_string())
        .collect();
    assert_eq!(
        ops.iter().filter(|op| op.contains("Conv")).count(),
        1,
        "{ops:?}"
    );
    // Both whole models are timed beside it.
    let whole: Vec<&str> = report["whole"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["model"].as_str().unwrap())
        .collect();
    assert_eq!(whole, ["seg", "filter"]);
    if python().exists() {
        assert!(row["onnxruntime_ms"].as_f64().unwrap() > 0.0, "{row}");
        assert!(stdout.contains("seg: the whole model tract"), "{stdout}");
    }
    assert!(stdout.contains("3->1 1x1/1"), "{stdout}");
    let readme = std::fs::read_to_string(files.join("README.txt")).unwrap();
    assert!(readme.contains("3->1 1x1/1"), "{readme}");
}
