//! Faults an appliance beside a scanner meets: the power cut (kill -9 at
//! any moment), the full disk, a missing or damaged model file.

use neuroscreen_e2e::{copy_models, neuroscreen, repo, ServiceBox as Box_};
use serde_json::Value;
use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every file in the results folder is whole: records parse, pictures
/// decode, no temporary is left; every line's files exist and match.
fn assert_store_whole(results: &Path, lines: &[Value]) {
    assert_whole(results, lines, false)
}

/// Right after a kill the killed process's temporaries (`.<name>.<pid>.tmp`)
/// may still be there: they are never read, and the next start removes them.
fn assert_whole(results: &Path, lines: &[Value], temporaries_allowed: bool) {
    // A kill during start-up can land before the service has made its
    // results folder: then nothing was accepted.
    let entries = match std::fs::read_dir(results) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(lines.is_empty(), "lines without a results folder");
            return;
        }
        entries => entries.unwrap(),
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".tmp") {
            assert!(temporaries_allowed, "temporary left behind: {name}");
            continue;
        }
        match path.extension().and_then(|e| e.to_str()) {
            Some("png") => {
                image::open(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            Some("json") => {
                serde_json::from_slice::<Value>(&std::fs::read(&path).unwrap())
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            _ => {}
        }
    }
    for l in lines {
        let record: Value =
            serde_json::from_slice(&std::fs::read(l["record"].as_str().unwrap()).unwrap()).unwrap();
        assert_eq!(record["input"], l["input"]);
        for key in ["mask", "overlay"] {
            if let Some(p) = l[key].as_str() {
                assert!(Path::new(p).is_file(), "{p} named but missing");
            }
        }
    }
}

fn assert_each_once(lines: &[Value], inputs: &[PathBuf]) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for l in lines {
        *seen.entry(l["input"].as_str().unwrap()).or_default() += 1;
    }
    for input in inputs {
        let n = seen.get(input.to_str().unwrap()).copied().unwrap_or(0);
        assert_eq!(n, 1, "{} has {n} results", input.display());
    }
    assert_eq!(lines.len(), inputs.len());
}

/// A small deterministic generator; the seed is printed so a failing run
/// can be replayed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Kills per run of the test below, and an inbox that outlasts them.
const KILLS: usize = 50;
const KILLED_INBOX: usize = 600;

#[test]
fn kill_9_at_random_moments_loses_nothing_and_screens_nothing_twice() {
    let b = Box_::new(&repo().join("models"));
    let inputs = b.fill_inbox(KILLED_INBOX);
    let seed = std::env::var("NEUROSCREEN_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
        });
    eprintln!("kill seed {seed} (NEUROSCREEN_KILL_SEED replays it)");
    let mut rng = Lcg(seed);
    let started = Instant::now();
    let mut kills = 0;
    let mut progress = Vec::new();
    // KILLS kills, each landing before the inbox is done (the inbox is large
    // enough); time-boxed so a very slow machine fails rather than stalls.
    while kills < KILLS && started.elapsed() < Duration::from_secs(240) {
        let mut child = b
            .command()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Model loading takes a few hundred ms: kills land during start-up,
        // mid-slice and mid-write alike.
        std::thread::sleep(Duration::from_millis(50 + rng.below(800)));
        let finished = child.try_wait().unwrap().is_some();
        if finished {
            break;
        }
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "{status:?}");
        kills += 1;
        let lines = b.lines(); // every line parses, even right after a kill
        progress.push(lines.len());
        assert_whole(&b.results(), &lines, true);
    }
    eprintln!("{kills} kills survived; results after each: {progress:?}");
    assert_eq!(
        kills, KILLS,
        "only {kills} kills before the inbox was done or time ran out"
    );
    assert!(
        progress.last().copied().unwrap_or(0) < inputs.len(),
        "the inbox was done before the last kill: nothing was tested"
    );
    let last = b.run();
    assert!(last.status.success(), "{}", stderr_of(&last));
    let lines = b.lines();
    assert_store_whole(&b.results(), &lines);
    assert_each_once(&lines, &inputs);
    for l in &lines {
        assert_ne!(l["verdict"], "error", "{l}");
    }
}

/// `ulimit -f` (in KiB) for the child only: a file-size limit stands in for
/// a full disk, which a test cannot make without privileges.
fn with_file_size_limit(b: &Box_, kib: u32) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg(format!("ulimit -f {kib} && exec \"$0\" \"$@\""))
        .arg(neuroscreen())
        .args(["run", "--once", "--config"])
        .arg(&b.config)
        .output()
        .unwrap()
}

#[test]
fn a_full_disk_is_a_clear_error_the_inputs_stay_queued_and_nothing_is_corrupt() {
    let b = Box_::new(&repo().join("models"));
    let inputs = b.fill_inbox(3);
    // Room for a record and a few log lines, not for an overlay picture.
    let full = with_file_size_limit(&b, 4);
    let stderr = stderr_of(&full);
    assert_eq!(
        full.status.signal(),
        None,
        "killed by a signal (SIGXFSZ not ignored?)\n{stderr}"
    );
    assert_eq!(full.status.code(), Some(1), "{stderr}");
    for input in &inputs {
        let name = input.file_name().unwrap().to_str().unwrap();
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("cannot store the result") && l.contains(name)),
            "no store error naming {name}\n{stderr}"
        );
    }
    assert!(stderr.contains("File too large"), "{stderr}");
    let lines = b.lines();
    assert!(
        lines.is_empty(),
        "a result was stored without its files: {lines:?}"
    );
    assert_store_whole(&b.results(), &lines);

    // With room again, every queued input is screened, once.
    let again = b.run();
    assert!(again.status.success(), "{}", stderr_of(&again));
    let lines = b.lines();
    assert_store_whole(&b.results(), &lines);
    assert_each_once(&lines, &inputs);
}

#[test]
fn a_log_that_cannot_be_written_does_not_bring_the_service_down() {
    // Found by the soak when the build machine's disk filled: the log went
    // to a file on that disk, tracing reported its own write error with
    // eprintln!, which panicked on the same failed stderr (exit 101).
    let b = Box_::new(&repo().join("models"));
    let inputs = b.fill_inbox(4);
    let log = b.dir().join("service.log");
    let out = Command::new("bash")
        .arg("-c")
        .arg("ulimit -f 1 && exec \"$0\" \"$@\" 2>\"$LOG\"")
        .arg(neuroscreen())
        .args(["run", "--once", "--config"])
        .arg(&b.config)
        .env("LOG", &log)
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), None, "{out:?}");
    // Every store failed too (1 KiB is no room for an overlay): exit 1,
    // the inputs stay queued; not 101, a panic.
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(std::fs::metadata(&log).unwrap().len() <= 1024);
    let again = b.run();
    assert!(again.status.success(), "{}", stderr_of(&again));
    assert_each_once(&b.lines(), &inputs);
}

#[test]
fn a_log_line_cut_by_the_limit_is_removed_and_later_lines_stay_readable() {
    let b = Box_::new(&repo().join("models"));
    // Error records only (no pictures), so the log is the file that fills.
    let inputs: Vec<PathBuf> = (0..12)
        .map(|i| {
            let p = b
                .inbox()
                .join(format!("broken_{i:02}_{}.png", "x".repeat(60)));
            std::fs::write(&p, b"not an image").unwrap();
            p
        })
        .collect();
    let full = with_file_size_limit(&b, 4);
    assert_eq!(full.status.signal(), None, "{}", stderr_of(&full));
    let cut = b.lines().len();
    assert!(
        cut > 0 && cut < inputs.len(),
        "{cut} lines: the limit did not cut the log"
    );
    assert!(
        stderr_of(&full).contains("short write") || stderr_of(&full).contains("File too large")
    );
    let again = b.run();
    assert_eq!(again.status.code(), Some(1), "{}", stderr_of(&again));
    let lines = b.lines();
    assert_store_whole(&b.results(), &lines);
    assert_each_once(&lines, &inputs);
}

fn check(models: &Path) -> Output {
    Command::new(neuroscreen())
        .args(["check", "--models"])
        .arg(models)
        .output()
        .unwrap()
}

/// Rewrites the manifest's sha256 for `file` so only the content is wrong.
fn rehash(models: &Path, file: &str) {
    use sha2::{Digest, Sha256};
    let path = models.join("manifest.json");
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let digest = hex::encode(Sha256::digest(std::fs::read(models.join(file)).unwrap()));
    for m in manifest["models"].as_array_mut().unwrap() {
        for f in m["files"].as_array_mut().unwrap() {
            if f["path"] == file {
                f["sha256"] = digest.clone().into();
            }
        }
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
}

#[test]
fn a_missing_or_damaged_model_file_stops_run_and_check_naming_it() {
    let segmenter = "segmenter.f32.onnx";
    /// What is done to the file, how, and a word the refusal must contain.
    type Case = (&'static str, fn(&Path), &'static str);
    let cases: [Case; 3] = [
        (
            "missing",
            |p| std::fs::remove_file(p).unwrap(),
            "No such file",
        ),
        (
            "truncated",
            |p| {
                let bytes = std::fs::read(p).unwrap();
                std::fs::write(p, &bytes[..bytes.len() / 2]).unwrap();
            },
            "ONNX",
        ),
        (
            "garbage",
            |p| std::fs::write(p, b"\x08\x07garbage, not a protobuf model".repeat(40)).unwrap(),
            "ONNX",
        ),
    ];
    for (what, damage, problem) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let models = copy_models(tmp.path());
        damage(&models.join(segmenter));
        if what != "missing" {
            rehash(&models, segmenter);
        }
        let b = Box_::new(&models);
        b.fill_inbox(2);
        let run = b.run();
        let stderr = stderr_of(&run);
        assert_eq!(run.status.code(), Some(2), "{what}: {stderr}");
        assert!(stderr.contains("refusing to start"), "{what}: {stderr}");
        assert!(stderr.contains(segmenter), "{what}: {stderr}");
        assert!(stderr.contains(problem), "{what}: {stderr}");
        assert!(b.lines().is_empty(), "{what}: screened with a bad model");

        let checked = check(&models);
        let stderr = stderr_of(&checked);
        assert_eq!(checked.status.code(), Some(2), "{what}: {stderr}");
        assert!(
            stderr.contains(segmenter) && stderr.contains(problem),
            "{what}: {stderr}"
        );
    }
}

/// `run --once` in a box: what the fault tests start, kill and restart.
trait Once {
    fn command(&self) -> Command;
    fn run(&self) -> Output;
}

impl Once for Box_ {
    fn command(&self) -> Command {
        let mut c = self.run_command();
        c.arg("--once");
        c
    }

    fn run(&self) -> Output {
        self.command().output().unwrap()
    }
}
