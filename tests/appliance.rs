//! The appliance end to end, as a radiographer's box runs it: the shipped
//! models, the `neuroscreen` binary, real signals and a real inbox.
//!
//! `cargo test --workspace` builds the binary (firmware's own tests need
//! it); it is looked up beside this test's executable.

use neuroscreen_e2e::{neuroscreen, repo, samples, ServiceBox as Box_};
use serde_json::Value;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn shipped_models() -> PathBuf {
    repo().join("models")
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every result the log names is whole: records parse, pictures decode,
/// and no temporary is left in the folder.
fn assert_results_whole(results: &Path, lines: &[Value]) {
    for entry in std::fs::read_dir(results).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".tmp"), "temporary left behind: {name}");
    }
    for l in lines {
        let record: Value =
            serde_json::from_slice(&std::fs::read(l["record"].as_str().unwrap()).unwrap()).unwrap();
        assert_eq!(record["input"], l["input"]);
        for key in ["mask", "overlay"] {
            if let Some(p) = l[key].as_str() {
                image::open(p).unwrap_or_else(|e| panic!("{p}: {e}"));
            }
        }
    }
}

#[test]
fn sigterm_mid_batch_loses_nothing_and_a_restart_resumes_the_inbox() {
    let b = Box_::new(&shipped_models());
    let inputs = b.fill_inbox(120);
    let log = b.dir().join("run.log");
    let child = b.spawn(&log);
    wait_for("the first results", Duration::from_secs(60), || {
        b.lines().len() >= 5
    });
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    let first = b.lines();
    assert!(
        first.len() < inputs.len(),
        "the batch finished before the signal; nothing was tested"
    );
    assert_results_whole(&b.results(), &first);

    let again = b.run(&["--once"]);
    assert!(again.status.success(), "{}", stderr_of(&again));
    let all = b.lines();
    assert_results_whole(&b.results(), &all);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for l in &all {
        *seen
            .entry(l["input"].as_str().unwrap().to_string())
            .or_default() += 1;
        assert_ne!(l["verdict"], "error", "{l}");
    }
    for input in &inputs {
        let n = seen.get(input.to_str().unwrap()).copied().unwrap_or(0);
        assert_eq!(n, 1, "{} screened {n} times", input.display());
    }
    // A third start finds nothing to do.
    let idle = b.run(&["--once"]);
    assert!(idle.status.success());
    assert_eq!(b.lines().len(), inputs.len());
    assert!(stderr_of(&idle).contains(&format!("already_done={}", inputs.len())));
}

#[test]
fn the_watched_inbox_takes_files_when_closed_or_renamed_in_and_shows_them() {
    let b = Box_::new(&shipped_models());
    let log = b.dir().join("run.log");
    let child = b.spawn(&log);
    wait_for("the service to start", Duration::from_secs(60), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("neuroscreen running"))
    });
    let sample = std::fs::read(&samples()[0]).unwrap();
    // Written slowly: half, a pause, the rest. Read before the close, it
    // would be a truncated PNG and an error line.
    let slow = b.inbox().join("slow.png");
    let mut f = std::fs::File::create(&slow).unwrap();
    f.write_all(&sample[..sample.len() / 2]).unwrap();
    f.flush().unwrap();
    std::thread::sleep(Duration::from_millis(400));
    f.write_all(&sample[sample.len() / 2..]).unwrap();
    drop(f);
    // Written under a temporary name elsewhere in the inbox, renamed in.
    let tmp = b.inbox().join(".incoming.tmp");
    std::fs::write(&tmp, &sample).unwrap();
    let renamed = b.inbox().join("renamed.png");
    std::fs::rename(&tmp, &renamed).unwrap();
    wait_for("two results", Duration::from_secs(60), || {
        b.lines().len() >= 2
    });
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(out.status.success(), "{stderr}");
    let lines = b.lines();
    let inputs: Vec<&str> = lines.iter().map(|l| l["input"].as_str().unwrap()).collect();
    assert_eq!(lines.len(), 2, "{inputs:?}");
    assert!(inputs.contains(&slow.to_str().unwrap()), "{inputs:?}");
    assert!(inputs.contains(&renamed.to_str().unwrap()), "{inputs:?}");
    for l in &lines {
        assert_ne!(l["verdict"], "error", "{l}");
    }
    let screen = image::open(b.results().join("screen.png")).unwrap();
    assert_eq!((screen.width(), screen.height()), (480, 320));
    let sessions: Vec<_> = std::fs::read_dir(b.results().join("sessions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let html = sessions
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "html"))
        .expect("a session page");
    let page = std::fs::read_to_string(html).unwrap();
    assert!(page.contains("slow.png") && page.contains("renamed.png"));
}

/// A copy of the shipped models the test may damage.
fn models_copy(into: &Path) -> PathBuf {
    let dir = into.join("models");
    std::fs::create_dir_all(dir.join("samples")).unwrap();
    for entry in std::fs::read_dir(shipped_models()).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
        }
    }
    for entry in std::fs::read_dir(shipped_models().join("samples")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, dir.join("samples").join(p.file_name().unwrap())).unwrap();
    }
    dir
}

#[test]
fn a_tampered_model_is_refused_by_run_and_check() {
    let tmp = tempfile::tempdir().unwrap();
    let models = models_copy(tmp.path());
    let check = |models: &Path| {
        Command::new(neuroscreen())
            .args(["check", "--models"])
            .arg(models)
            .output()
            .unwrap()
    };
    let ok = check(&models);
    assert!(ok.status.success(), "{}", stderr_of(&ok));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("self-test passed"));

    let manifest: Value =
        serde_json::from_slice(&std::fs::read(models.join("manifest.json")).unwrap()).unwrap();
    let recorded = manifest["models"][0]["files"][0]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let onnx = models.join("segmenter.f32.onnx");
    let mut bytes = std::fs::read(&onnx).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&onnx, bytes).unwrap();

    let b = Box_::new(&models);
    b.fill_inbox(2);
    let refused = b.run(&["--once"]);
    let stderr = stderr_of(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("refusing to start"), "{stderr}");
    assert!(stderr.contains("segmenter.f32.onnx"), "{stderr}");
    // Both hashes: the recorded one and the one the file has now.
    assert!(stderr.contains(&recorded), "{stderr}");
    let hex_words = stderr
        .split(|c: char| !c.is_ascii_hexdigit())
        .filter(|w| w.len() == 64)
        .count();
    assert!(hex_words >= 2, "{stderr}");
    assert!(
        b.lines().is_empty(),
        "nothing screened with a damaged model"
    );

    let failed = check(&models);
    assert_eq!(failed.status.code(), Some(2));
    assert!(stderr_of(&failed).contains("segmenter.f32.onnx"));
}

#[test]
fn check_fails_when_the_sample_no_longer_gives_the_recorded_result() {
    let tmp = tempfile::tempdir().unwrap();
    let models = models_copy(tmp.path());
    let path = models.join("selftest.json");
    let mut test: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let area = test["expected"]["f32"]["area_px"].as_u64().unwrap();
    test["expected"]["f32"]["area_px"] = (area * 2 + 50).into();
    std::fs::write(&path, serde_json::to_vec_pretty(&test).unwrap()).unwrap();
    let out = Command::new(neuroscreen())
        .args(["check", "--models"])
        .arg(&models)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAILED") && stdout.contains("area"),
        "{stdout}"
    );
    assert!(stderr_of(&out).contains("self-test FAILED"));
}

#[test]
fn a_config_with_a_misspelt_key_stops_the_service_naming_the_key() {
    let b = Box_::new(&shipped_models());
    std::fs::write(&b.config, "[store]\nmax_age_dayz = 3\n").unwrap();
    let out = b.run(&["--once"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("max_age_dayz") && stderr.contains("appliance.toml"),
        "{stderr}"
    );
}

#[test]
fn scan_reports_each_bad_file_by_name_and_finishes_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("slices");
    std::fs::create_dir_all(&folder).unwrap();
    let good = samples();
    for s in &good {
        std::fs::copy(s, folder.join(s.file_name().unwrap())).unwrap();
    }
    let bytes = std::fs::read(&good[0]).unwrap();
    std::fs::write(folder.join("truncated.png"), &bytes[..bytes.len() / 3]).unwrap();
    std::fs::write(folder.join("empty.png"), b"").unwrap();
    std::fs::write(folder.join("text.jpg"), b"not a jpeg at all").unwrap();
    let out_dir = tmp.path().join("out");
    let out = Command::new(neuroscreen())
        .arg("scan")
        .arg(&folder)
        .arg("--out")
        .arg(&out_dir)
        .args(["--pixel-spacing-mm", "0.5"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let text = std::fs::read_to_string(out_dir.join("results.jsonl")).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), good.len() + 3);
    for bad in ["truncated.png", "empty.png", "text.jpg"] {
        let l = lines
            .iter()
            .find(|l| l["input"].as_str().unwrap().ends_with(bad))
            .unwrap();
        assert_eq!(l["verdict"], "error");
        assert!(l["error"].as_str().unwrap().contains(bad), "{l}");
    }
    let screened: Vec<&Value> = lines.iter().filter(|l| l["verdict"] != "error").collect();
    assert_eq!(screened.len(), good.len());
    for l in screened {
        // 0.5 mm x 0.5 mm pixels: a quarter of a mm² each.
        let px = l["area_px"].as_f64().unwrap();
        assert_eq!(l["area_mm2"].as_f64().unwrap(), px * 0.25, "{l}");
        assert_eq!(l["pixel_spacing_mm"], serde_json::json!([0.5, 0.5]));
    }
    assert_results_whole(&out_dir, &lines);
}

#[test]
fn the_framebuffer_panel_gets_frames_and_a_missing_one_is_said_once() {
    let b = Box_::new(&shipped_models());
    b.fill_inbox(3);
    let sysfs = b.dir().join("sysfs");
    std::fs::create_dir_all(&sysfs).unwrap();
    std::fs::write(sysfs.join("virtual_size"), "800,480\n").unwrap();
    std::fs::write(sysfs.join("bits_per_pixel"), "16\n").unwrap();
    std::fs::write(sysfs.join("stride"), "1600\n").unwrap();
    let fb = b.dir().join("fb0");
    std::fs::write(&fb, vec![0u8; 1600 * 480]).unwrap();
    let base = std::fs::read_to_string(&b.config).unwrap();
    std::fs::write(
        &b.config,
        format!(
            "{base}[display]\nkind = \"framebuffer\"\ndevice = {:?}\nsysfs = {:?}\n",
            fb.to_str().unwrap(),
            sysfs.to_str().unwrap()
        ),
    )
    .unwrap();
    let out = b.run(&["--once"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let frame = std::fs::read(&fb).unwrap();
    assert_eq!(frame.len(), 1600 * 480);
    // The last slice's verdict colour is on the panel, in RGB565.
    let lit = frame.chunks_exact(2).filter(|p| p != &[0, 0]).count();
    assert!(lit > 10_000, "only {lit} pixels drawn");

    // No panel attached: every slice is still screened; said once.
    std::fs::remove_file(&fb).unwrap();
    let b2 = Box_::new(&shipped_models());
    b2.fill_inbox(3);
    std::fs::write(
        &b2.config,
        format!(
            "{base}[display]\nkind = \"framebuffer\"\ndevice = {:?}\nsysfs = {:?}\n",
            fb.to_str().unwrap(),
            sysfs.to_str().unwrap()
        ),
    )
    .unwrap();
    let out = b2.run(&["--once"]);
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(b2.lines().len(), 3);
    assert_eq!(stderr.matches("no display").count(), 1, "{stderr}");
}

/// How these tests start the service in a box.
trait Start {
    fn run(&self, extra: &[&str]) -> Output;
    fn spawn(&self, stderr: &Path) -> Child;
}

impl Start for Box_ {
    fn run(&self, extra: &[&str]) -> Output {
        self.run_command().args(extra).output().unwrap()
    }

    fn spawn(&self, stderr: &Path) -> Child {
        self.run_command()
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(stderr).unwrap())
            .spawn()
            .unwrap()
    }
}
