//! Hardware in the loop: `hil serve` screens what `hil drive` sends and
//! answers with results and stage latencies. Run here on this machine and
//! against the board build under qemu (Cortex-A72), as a bench would run it
//! against a real Pi. Emulated timings mean nothing and are not looked at.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

#[path = "../../tests/board_support.rs"]
mod board_support;
use board_support::{aarch64_beside, results_by_name, SYSROOT};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn host_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_neuroscreen"))
}

fn board_bin() -> Option<PathBuf> {
    aarch64_beside(&host_bin())
}

fn samples(names: &[&str]) -> Vec<PathBuf> {
    names
        .iter()
        .map(|n| repo().join("models/samples").join(n))
        .collect()
}

/// Starts `hil serve` (through `launcher` when given) and returns it with
/// the address it printed.
fn serve(launcher: &[&str], bin: &Path, out: &Path, precision: &str) -> (Child, String) {
    let mut cmd = match launcher.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let mut child = cmd
        .args([
            "hil",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--once",
            "--threads",
            "1",
        ])
        .args(["--precision", precision, "--models"])
        .arg(repo().join("models"))
        .arg("--out")
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hil serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let Some(addr) = line.trim().strip_prefix("hil: listening on ") else {
        let out = child.wait_with_output().unwrap();
        panic!(
            "hil serve did not start: {line:?} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    (child, addr.to_string())
}

fn drive(addr: &str, files: &[PathBuf], report: &Path, csv: &Path) -> std::process::Output {
    Command::new(host_bin())
        .args(["hil", "drive", "--board", addr, "--connect-wait-s", "5"])
        .args(files)
        .arg("--report")
        .arg(report)
        .arg("--csv")
        .arg(csv)
        .output()
        .unwrap()
}

/// Verdict and probability per file name from `scan` on this machine.
fn scan_here(files: &[PathBuf], out: &Path, precision: &str) -> Vec<(String, String, f64)> {
    let run = Command::new(host_bin())
        .arg("scan")
        .args(files)
        .arg("--out")
        .arg(out)
        .arg("--models")
        .arg(repo().join("models"))
        .args(["--precision", precision])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let by_name = results_by_name(out);
    files
        .iter()
        .map(|f| {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            let v = &by_name[&name];
            (
                name.clone(),
                v["verdict"].as_str().unwrap().to_string(),
                v["tumour_probability"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn answers(report: &Value) -> Vec<&Value> {
    report["answers"].as_array().unwrap().iter().collect()
}

#[test]
fn a_bench_drives_the_board_service_on_this_machine() {
    let tmp = tempfile::tempdir().unwrap();
    let mut files = samples(&[
        "sample_02_tumour_stacked.png",
        "sample_07_clear_stacked.png",
    ]);
    let bad = tmp.path().join("broken.png");
    std::fs::write(&bad, b"not a png at all").unwrap();
    files.push(bad);
    let (mut board, addr) = serve(&[], &host_bin(), &tmp.path().join("board"), "f32");
    let (report_path, csv) = (tmp.path().join("r.json"), tmp.path().join("r.csv"));
    let run = drive(&addr, &files, &report_path, &csv);
    let stdout = String::from_utf8_lossy(&run.stdout);
    // One input failed: exit 1, and the board carried on after it.
    assert_eq!(
        run.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        board.wait().unwrap().success(),
        "--once: ends when the bench leaves"
    );
    for stage in [
        "receive",
        "segment",
        "screen",
        "store",
        "board",
        "round_trip",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(stage)),
            "{stage}: {stdout}"
        );
    }
    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(report["slices"], 3);
    assert_eq!(report["errors"], 1);
    assert_eq!(report["stages_ms"]["screen"]["n"], 2);
    let a = answers(&report);
    assert!(
        a[2]["reply"]["error"]
            .as_str()
            .unwrap()
            .contains("broken.png"),
        "{}",
        a[2]
    );
    // The same verdicts as a scan on this machine, and every stage timed.
    let here = scan_here(&files[..2], &tmp.path().join("scan"), "f32");
    for ((name, verdict, p), answer) in here.iter().zip(&a) {
        let r = &answer["reply"];
        assert_eq!(&r["name"], name.as_str());
        assert_eq!(&r["verdict"], verdict.as_str(), "{name}");
        assert!(
            (r["tumour_probability"].as_f64().unwrap() - p).abs() < 1e-4,
            "{name}"
        );
        let s = &r["stages_ms"];
        assert!(s["screen"].as_f64().unwrap() > 0.0 && s["board"].as_f64() >= s["screen"].as_f64());
        assert!(
            answer["round_trip_ms"].as_f64() >= s["board"].as_f64(),
            "{answer}"
        );
    }
    // The board kept each slice it received and stored a result for each.
    let log = std::fs::read_to_string(tmp.path().join("board/results.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 3);
    assert_eq!(
        std::fs::read_dir(tmp.path().join("board/received"))
            .unwrap()
            .count(),
        3
    );
    assert_eq!(std::fs::read_to_string(&csv).unwrap().lines().count(), 4);
}

#[test]
fn the_bench_says_when_no_board_answers() {
    // A port nothing listens on: bind one, note it, let it go.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let run = Command::new(host_bin())
        .args(["hil", "drive", "--connect-wait-s", "1", "--board"])
        .arg(addr.to_string())
        .args(samples(&["sample_07_clear_stacked.png"]))
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("cannot reach the board") && stderr.contains(&addr.to_string()),
        "{stderr}"
    );
}

/// The board build under qemu as a Raspberry Pi 4, driven from this
/// machine at int8 (asked for: `auto` takes f32, which
/// tests/board_emulation.rs runs on this CPU model): answers from aarch64,
/// the same verdicts as this machine's int8 run.
#[test]
fn a_bench_drives_the_emulated_board() {
    let Some(bin) = board_bin() else {
        assert!(
            std::env::var_os("NEUROSCREEN_REQUIRE_AARCH64").is_none(),
            "the aarch64 neuroscreen was not built (scripts/test.sh builds it)"
        );
        eprintln!("skipped: no aarch64 build (run scripts/test.sh, which cross-builds it)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let files = samples(&["sample_01_tumour_stacked.png", "sample_08_clear_t1.png"]);
    let (mut board, addr) = serve(
        &["qemu-aarch64", "-cpu", "cortex-a72", "-L", SYSROOT],
        &bin,
        &tmp.path().join("board"),
        "int8",
    );
    let (report_path, csv) = (tmp.path().join("r.json"), tmp.path().join("r.csv"));
    let run = drive(&addr, &files, &report_path, &csv);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(board.wait().unwrap().success());
    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(report["board_arch"], "aarch64");
    let here = scan_here(&files, &tmp.path().join("scan"), "int8");
    for ((name, verdict, p), answer) in here.iter().zip(answers(&report)) {
        let r = &answer["reply"];
        assert_eq!(&r["precision"], "int8", "{name}");
        assert_eq!(&r["verdict"], verdict.as_str(), "{name}");
        let dp = (r["tumour_probability"].as_f64().unwrap() - p).abs();
        assert!(dp <= 0.01, "{name}: p differs by {dp}");
    }
}
