//! Helpers shared by the end-to-end tests.

pub mod board_support;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `neuroscreen` binary of this build. `cargo test --workspace` builds
/// it (firmware's own tests need it); it sits beside the test executables'
/// `deps/` folder.
pub fn neuroscreen() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile folder");
    let bin = dir.join(format!("neuroscreen{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run the suite with `cargo test --workspace`, which builds it",
        bin.display()
    );
    bin
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A copy of the shipped model set (manifest, ONNX files, self-test and
/// samples) that a test may damage or re-sign.
pub fn copy_models(into: &Path) -> PathBuf {
    let from = repo().join("models");
    let dir = into.join("models");
    std::fs::create_dir_all(dir.join("samples")).unwrap();
    for sub in ["", "samples"] {
        for entry in std::fs::read_dir(from.join(sub)).unwrap() {
            let p = entry.unwrap().path();
            if p.is_file() {
                std::fs::copy(&p, dir.join(sub).join(p.file_name().unwrap())).unwrap();
            }
        }
    }
    dir
}

/// The shipped sample slices (not their masks), sorted.
pub fn samples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join("models/samples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.ends_with(".png") && !name.contains("_mask")
        })
        .collect();
    v.sort();
    assert!(v.len() >= 4, "{v:?}");
    v
}

/// How a measured child ended: its exit code (`None` when a signal ended
/// it, then `signal` says which) and its own peak resident memory.
#[derive(Debug)]
pub struct Measured {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub max_rss_kib: u64,
}

/// Runs `command` to completion and reads the peak RSS of that one child
/// from wait4's rusage (RUSAGE_CHILDREN would mix in other tests' children).
pub fn run_measured(command: &mut std::process::Command) -> Measured {
    let child = command.spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain old data; wait4 fills it for our own child,
    // whose Child handle is not waited on again.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4: {}", std::io::Error::last_os_error());
    std::mem::forget(child);
    Measured {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        max_rss_kib: usage.ru_maxrss as u64,
    }
}

/// As [`run_measured`], but a child still running after `limit` is killed
/// and the test fails saying so: a hang is a failure, not a stuck suite.
pub fn run_measured_within(
    command: &mut std::process::Command,
    limit: std::time::Duration,
) -> Measured {
    let child = command.spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    let started = std::time::Instant::now();
    let mut status = 0;
    // SAFETY: as in run_measured; WNOHANG only polls.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let waited = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if waited == pid {
            break;
        }
        assert_eq!(waited, 0, "wait4: {}", std::io::Error::last_os_error());
        if started.elapsed() > limit {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
            std::mem::forget(child);
            panic!("still running after {limit:?}: killed");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::mem::forget(child);
    Measured {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        max_rss_kib: usage.ru_maxrss as u64,
    }
}

/// What `neuroscreen run` works in: an inbox, a results folder and a config
/// naming `models` (one thread, a short queue), in a fresh temporary folder.
pub struct ServiceBox {
    tmp: tempfile::TempDir,
    pub config: PathBuf,
}

impl ServiceBox {
    pub fn new(models: &Path) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("appliance.toml");
        std::fs::write(
            &config,
            format!(
                "[models]\ndir = {:?}\nthreads = 1\n[pipeline]\nqueue = 4\n",
                models.to_str().unwrap()
            ),
        )
        .unwrap();
        std::fs::create_dir_all(tmp.path().join("inbox")).unwrap();
        Self { tmp, config }
    }

    /// The box's own folder, for a test's extra files.
    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    pub fn inbox(&self) -> PathBuf {
        self.tmp.path().join("inbox")
    }

    pub fn results(&self) -> PathBuf {
        self.tmp.path().join("results")
    }

    /// `neuroscreen run --config <this box's config>`, to add to.
    pub fn run_command(&self) -> Command {
        let mut c = Command::new(neuroscreen());
        c.args(["run", "--config"]).arg(&self.config);
        c
    }

    /// Every line of the results log, each required to parse.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        match std::fs::read_to_string(self.results().join("results.jsonl")) {
            Ok(text) => text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Fills the inbox with `n` slices (the samples under many names).
    pub fn fill_inbox(&self, n: usize) -> Vec<PathBuf> {
        let samples = samples();
        (0..n)
            .map(|i| {
                let to = self.inbox().join(format!("slice_{i:04}.png"));
                std::fs::copy(&samples[i % samples.len()], &to).unwrap();
                to
            })
            .collect()
    }
}
