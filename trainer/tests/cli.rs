//! The trainer binary as a user runs it.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_neuroscreen-train"))
}

/// CUDA must stay reachable: the default `--as-needed` link would drop
/// libtorch_cuda.so (nothing references it directly) and CUDA would then
/// silently report unavailable on a GPU machine.
#[test]
fn binary_keeps_libtorch_cuda_linked() {
    let out = Command::new("readelf")
        .args(["-d", env!("CARGO_BIN_EXE_neuroscreen-train")])
        .output()
        .expect("readelf (binutils) is installed by scripts/setup.sh");
    assert!(out.status.success());
    let dynamic = String::from_utf8_lossy(&out.stdout);
    assert!(
        dynamic.contains("[libtorch_cuda.so]"),
        "libtorch_cuda.so missing from DT_NEEDED:\n{dynamic}"
    );
    assert!(dynamic.contains("[libtorch_cpu.so]"));
}

#[test]
fn phantoms_command_writes_the_lgg_layout() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["phantoms", "--patients", "2", "--seed", "3", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("2 patients,"), "{stdout}");
    let root = dir.path().join("kaggle_3m");
    let folders: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .collect();
    assert_eq!(folders.len(), 2);
    assert!(root.join("phantoms.csv").exists());
}

#[test]
fn bad_arguments_get_a_clear_message() {
    let out = bin()
        .args(["phantoms", "--out", "/tmp/x", "--patients", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--patients must be at least 1"));
}
