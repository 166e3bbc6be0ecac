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

/// The experiment end to end at toy size: phantoms generated, a 1 x 1 x 2
/// grid trained and scored, the document and chart written; a second call
/// resumes from results.jsonl instead of training again.
#[test]
fn experiment_writes_results_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        bin()
            .args(["experiment", "--phantoms", "6", "--archs", "resunet"])
            .args(["--losses", "tversky", "--seeds", "0,1", "--epochs", "1"])
            .args(["--input-size", "32", "--widths", "4,8", "--label", "toy"])
            .arg("--data")
            .arg(dir.path().join("data"))
            .arg("--out")
            .arg(dir.path().join("out"))
            .arg("--doc")
            .arg(dir.path().join("docs/RESULTS.md"))
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = std::fs::read_to_string(dir.path().join("docs/RESULTS.md")).unwrap();
    assert!(doc.contains("| resunet | tversky | 2 |"), "{doc}");
    assert!(doc.contains("resunet-tversky-s1"), "{doc}");
    assert!(doc.contains("toy: 32 px input"), "{doc}");
    let chart = image::open(dir.path().join("docs/results_dice.png")).unwrap();
    assert_eq!((chart.width(), chart.height()), (1200, 500));
    let results = dir.path().join("out/results.jsonl");
    let first = std::fs::read_to_string(&results).unwrap();
    assert_eq!(first.lines().count(), 2);
    let trained = std::fs::metadata(
        dir.path()
            .join("out/runs/resunet-tversky-s0/best.safetensors"),
    )
    .unwrap()
    .modified()
    .unwrap();
    let again = run();
    assert!(again.status.success());
    assert_eq!(std::fs::read_to_string(&results).unwrap(), first);
    let still = std::fs::metadata(
        dir.path()
            .join("out/runs/resunet-tversky-s0/best.safetensors"),
    )
    .unwrap()
    .modified()
    .unwrap();
    assert_eq!(trained, still, "a finished run is not trained again");
}
