//! `neuroscreen inspect` over the shipped samples and a bad file.

use std::path::Path;
use std::process::Command;

#[test]
fn inspects_shipped_samples_and_reports_a_bad_file_by_name() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/samples");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("truncated.tif");
    std::fs::write(&bad, b"II*\0\x08\0\0\0").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_neuroscreen"))
        .arg("inspect")
        .arg(&samples)
        .arg(&bad)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let ok = stdout.lines().filter(|l| l.starts_with("ok ")).count();
    assert_eq!(ok, 8, "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("error") && l.contains("truncated.tif")),
        "{stdout}"
    );
    assert!(
        !stdout.contains("_mask.png"),
        "masks are not slices: {stdout}"
    );
}
