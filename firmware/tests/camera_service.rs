//! The service with a camera configured that is not there: it says so once,
//! keeps screening the inbox, and stops cleanly. (Reconnection and backoff
//! are tested in the board crate with a fake device; no device is needed.)

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn a_missing_camera_is_said_once_and_the_inbox_is_still_screened() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    std::fs::create_dir_all(dir.join("inbox")).unwrap();
    std::fs::copy(
        models.join("samples/sample_07_clear_stacked.png"),
        dir.join("inbox/s.png"),
    )
    .unwrap();
    let config = dir.join("appliance.toml");
    std::fs::write(
        &config,
        format!(
            "[models]\ndir = {:?}\nthreads = 1\n[display]\nkind = \"snapshot\"\nwidth = 320\nheight = 240\n\
             [camera]\nenabled = true\ndevice = \"/dev/no-such-video7\"\nretry_max_s = 1\n",
            models.display().to_string()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("stderr.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_neuroscreen"))
        .args(["run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stderr(Stdio::from(log))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let results = dir.join("results/results.jsonl");
    let started = Instant::now();
    while std::fs::read_to_string(&results).map_or(0, |s| s.lines().count()) < 1 {
        assert!(started.elapsed() < Duration::from_secs(120), "no result");
        assert!(child.try_wait().unwrap().is_none(), "the service stopped");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Several retries happen in this time (0.5 s, then every second).
    std::thread::sleep(Duration::from_millis(2500));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    let stderr = std::fs::read_to_string(dir.join("stderr.log")).unwrap();
    assert!(status.success(), "{stderr}");
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("not available"))
        .collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(
        said[0].contains("/dev/no-such-video7") && said[0].contains("running on"),
        "{}",
        said[0]
    );
    assert!(stderr.contains("camera stopped"), "{stderr}");
    let line = std::fs::read_to_string(&results).unwrap();
    assert!(
        line.contains("\"verdict\":\"clear\"") || line.contains("\"verdict\":\"tumour\""),
        "{line}"
    );
    assert!(dir.join("results/screen.png").exists());
}
