//! What the file system and the clock can hand an unattended box: special
//! files named like slices, files over the size limit, a slice that never
//! finishes decoding. In each case the offending input gets one error line
//! naming it and what it is, the good slice beside it is screened, the
//! command ends on its own (a hang fails the test, it does not stall the
//! suite) and peak memory stays within the appliance's 150 MB.

use neuroscreen_e2e::{neuroscreen, repo, run_measured_within, samples, Measured, ServiceBox};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The appliance's memory budget.
const MAX_RSS_KIB: u64 = 150 * 1024;
/// Far longer than either command needs here; a blocked read never ends.
const LIMIT: Duration = Duration::from_secs(120);

/// Special files named like slices, each with the words its error must hold.
fn make_special_files(dir: &Path) -> Vec<(&'static str, &'static str)> {
    let fifo = dir.join("pipe.png");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo touches nothing else.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    std::os::unix::fs::symlink("/dev/zero", dir.join("zero.png")).unwrap();
    std::os::unix::fs::symlink(dir.join("nowhere.png"), dir.join("dangling.png")).unwrap();
    std::os::unix::fs::symlink(dir.join("loop.png"), dir.join("loop.png")).unwrap();
    std::fs::create_dir(dir.join("folder.png")).unwrap();
    // The listener's socket file outlives it: what is left is a socket.
    drop(std::os::unix::net::UnixListener::bind(dir.join("socket.png")).unwrap());
    vec![
        ("pipe.png", "FIFO"),
        ("zero.png", "character device"),
        ("dangling.png", "dangling symbolic link"),
        ("loop.png", "link that loops"),
        ("folder.png", "a folder"),
        ("socket.png", "a socket"),
    ]
}

/// A file whose size says 200 MiB without taking the disk (sparse).
fn make_oversized(path: &Path, mib: u64) {
    std::fs::File::create(path)
        .unwrap()
        .set_len(mib * 1024 * 1024)
        .unwrap();
}

fn by_name(lines: &[Value]) -> BTreeMap<String, Value> {
    lines
        .iter()
        .map(|v| {
            let name = v["input"].as_str().unwrap().rsplit('/').next().unwrap();
            (name.to_string(), v.clone())
        })
        .collect()
}

fn assert_each_named(lines: &BTreeMap<String, Value>, expected: &[(&str, &str)]) {
    for (name, what) in expected {
        let line = lines
            .get(*name)
            .unwrap_or_else(|| panic!("{name} has no result: {lines:?}"));
        let error = line["error"].as_str().unwrap_or("");
        assert_eq!(line["verdict"], "error", "{name}: {line}");
        assert!(error.contains(name), "{name} not named: {error}");
        assert!(error.contains(what), "{name}: '{what}' not in: {error}");
    }
}

fn assert_within_budget(run: &Measured, what: &str) {
    eprintln!("peak RSS of {what}: {} KiB", run.max_rss_kib);
    assert!(
        run.max_rss_kib < MAX_RSS_KIB,
        "{what} peaked at {} KiB",
        run.max_rss_kib
    );
}

fn results(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("results.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn scan_names_each_special_or_oversized_file_and_screens_the_good_one() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("slices");
    std::fs::create_dir(&folder).unwrap();
    let mut expected = make_special_files(&folder);
    // Over scan's default 64 MiB image limit; refused before any read.
    make_oversized(&folder.join("huge.png"), 200);
    expected.push(("huge.png", "over the 64 MiB limit"));
    std::fs::copy(&samples()[0], folder.join("good.png")).unwrap();
    let out = tmp.path().join("out");
    let stdout = tmp.path().join("stdout.txt");
    let run = run_measured_within(
        Command::new(neuroscreen())
            .arg("scan")
            .arg(&folder)
            .arg("--out")
            .arg(&out)
            .arg("--models")
            .arg(repo().join("models"))
            .stdout(Stdio::from(std::fs::File::create(&stdout).unwrap()))
            .stderr(Stdio::null()),
        LIMIT,
    );
    let printed = std::fs::read_to_string(&stdout).unwrap();
    assert_eq!(run.code, Some(1), "some inputs failed\n{printed}");
    assert_within_budget(&run, "scan");
    let lines = by_name(&results(&out));
    assert_eq!(lines.len(), expected.len() + 1, "{lines:?}");
    assert_each_named(&lines, &expected);
    assert_ne!(
        lines["good.png"]["verdict"], "error",
        "{}",
        lines["good.png"]
    );
    for (name, _) in &expected {
        let shown = printed.lines().filter(|l| l.contains(name)).count();
        assert_eq!(shown, 1, "{name}: one printed line\n{printed}");
    }
}

fn service_box() -> ServiceBox {
    ServiceBox::new(&repo().join("models"))
}

fn add_to_config(b: &ServiceBox, text: &str) {
    let mut config = std::fs::read_to_string(&b.config).unwrap();
    config.push_str(text);
    std::fs::write(&b.config, config).unwrap();
}

fn run_once(b: &ServiceBox, envs: &[(&str, &str)], stderr: &Path) -> Measured {
    run_measured_within(
        b.run_command()
            .arg("--once")
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(stderr).unwrap())),
        LIMIT,
    )
}

#[test]
fn run_once_names_special_and_oversized_inbox_files_and_screens_the_good_one() {
    let b = service_box();
    add_to_config(&b, "[inputs]\nmax_image_mib = 1\n");
    let mut expected = make_special_files(&b.inbox());
    make_oversized(&b.inbox().join("big.png"), 2);
    expected.push((
        "big.png",
        "over the 1 MiB limit for this kind of input (inputs.max_image_mib)",
    ));
    std::fs::copy(&samples()[0], b.inbox().join("good.png")).unwrap();
    let stderr: PathBuf = b.dir().join("stderr.txt");
    let run = run_once(&b, &[], &stderr);
    let log = std::fs::read_to_string(&stderr).unwrap();
    assert_eq!(run.code, Some(1), "some inputs failed\n{log}");
    assert_within_budget(&run, "run --once");
    let lines = by_name(&b.lines());
    assert_eq!(lines.len(), expected.len() + 1, "{lines:?}");
    assert_each_named(&lines, &expected);
    assert_ne!(lines["good.png"]["verdict"], "error");
    // Nothing accepted is lost: a second start screens nothing again but
    // the special files (they have no content to recognise them by).
    let again = run_once(&b, &[], &stderr);
    assert_eq!(again.code, Some(1));
    let after = b.lines();
    assert_eq!(after.len(), 2 * expected.len() + 1);
    assert_eq!(
        after
            .iter()
            .filter(|l| l["input"].as_str().unwrap().ends_with("good.png"))
            .count(),
        1
    );
}

/// The debug build's test hook (`firmware/src/watchdog.rs`) holds
/// `stalls.png` in decoding for ten minutes, as a pathological file would.
#[test]
fn a_slice_that_stalls_is_abandoned_naming_the_stage_and_the_next_is_screened() {
    let b = service_box();
    add_to_config(&b, "[inputs]\nstage_timeout_s = 2.0\n");
    std::fs::copy(&samples()[0], b.inbox().join("a_stalls.png")).unwrap();
    std::fs::copy(&samples()[1], b.inbox().join("b_good.png")).unwrap();
    let stderr = b.dir().join("stderr.txt");
    let started = std::time::Instant::now();
    let run = run_once(&b, &[("NEUROSCREEN_TEST_STALL", "a_stalls.png")], &stderr);
    let log = std::fs::read_to_string(&stderr).unwrap();
    assert_eq!(run.code, Some(1), "the stalled slice failed\n{log}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "waited for the stall"
    );
    assert_within_budget(&run, "run --once");
    let lines = by_name(&b.lines());
    let stalled = lines["a_stalls.png"]["error"].as_str().unwrap_or("");
    assert!(
        stalled.contains("a_stalls.png")
            && stalled.contains("decoding took longer than the 2 s limit"),
        "{stalled}"
    );
    assert_ne!(
        lines["b_good.png"]["verdict"], "error",
        "{}",
        lines["b_good.png"]
    );
    assert!(log.contains("stage abandoned"), "the log says so\n{log}");
    assert!(log.contains("a_stalls.png"), "{log}");
}

#[test]
fn scan_takes_the_size_limit_of_its_config() {
    let b = service_box();
    add_to_config(&b, "[inputs]\nmax_image_mib = 1\n");
    let big = b.dir().join("big.png");
    make_oversized(&big, 2);
    let out = b.dir().join("scanned");
    let run = run_measured_within(
        Command::new(neuroscreen())
            .args(["scan", "--config"])
            .arg(&b.config)
            .arg("--out")
            .arg(&out)
            .arg(&big)
            .arg(&samples()[0])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        LIMIT,
    );
    assert_eq!(run.code, Some(1));
    let lines = by_name(&results(&out));
    assert_each_named(&lines, &[("big.png", "over the 1 MiB limit")]);
    assert_eq!(lines.len(), 2);
}
