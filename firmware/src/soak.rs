//! `neuroscreen soak`: a long run through the real service. It starts
//! `neuroscreen run` on a fresh box, drops slices into the watched inbox the
//! way a scanner does (written as a dot file, renamed in), a few at a time so
//! the inbox never holds them all, and every `window` slices samples the
//! service's resident memory, open file descriptors and threads from /proc
//! and the latency percentiles of that window. A table goes to stdout and
//! every figure to a JSON report.

use crate::error::{Error, Result};
use crate::store::{Record, RESULTS_LOG};
use serde::Serialize;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct SoakOptions {
    /// Folder for the box (inbox, results, config, service log); must not
    /// exist yet or be empty.
    pub dir: PathBuf,
    pub models: PathBuf,
    /// Slices to feed through the service.
    pub slices: usize,
    /// Slices per sample row.
    pub window: usize,
    /// `models.threads` of the service.
    pub threads: usize,
    /// `models.precision` of the service (`auto`, `f32`, `int8`).
    pub precision: String,
}

/// One row: the service after `done` slices.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub done: usize,
    pub rss_kib: u64,
    pub hwm_kib: u64,
    pub fds: usize,
    pub threads: usize,
    /// The record's own latency (decode to mask), this window.
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
    /// Inbox rename to the result line seen in the log, this window.
    pub arrival_to_result_p50_ms: f64,
    pub arrival_to_result_p95_ms: f64,
    pub slices_per_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    pub slices: usize,
    pub errors: usize,
    pub seconds: f64,
    pub precision: String,
    /// After the models loaded, before the first slice.
    pub start: Sample,
    pub windows: Vec<Sample>,
    pub service_exit_code: Option<i32>,
}

/// Slices in the inbox at once: enough to keep the queue fed, few enough
/// that the inbox never holds the run.
const IN_FLIGHT: usize = 24;

pub fn run(options: &SoakOptions, out: &mut impl Write) -> Result<SoakReport> {
    // The service records inputs by the paths it is given; absolute ones
    // match the paths this side renames in.
    let dir = &std::path::absolute(&options.dir).map_err(|e| Error::io(&options.dir, e))?;
    let busy = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
    if busy {
        return Err(soak_error(format!(
            "{} is not empty; the soak needs a fresh folder",
            dir.display()
        )));
    }
    let inbox = dir.join("inbox");
    let results = dir.join("results");
    crate::store::private::create_dir(&inbox)?;
    let config = dir.join("appliance.toml");
    // Retention on, so a long soak keeps the disk bounded and exercises it.
    let text = format!(
        "[models]\ndir = {:?}\nthreads = {}\nprecision = {:?}\n[inbox]\ndir = \"inbox\"\n\
         [store]\ndir = \"results\"\nmax_results = 500\n",
        options.models.display().to_string(),
        options.threads,
        options.precision
    );
    std::fs::write(&config, text).map_err(|e| Error::io(&config, e))?;
    let samples = sample_slices(&options.models)?;
    let log_path = dir.join("service.log");
    let log = std::fs::File::create(&log_path).map_err(|e| Error::io(&log_path, e))?;
    let exe = std::env::current_exe().map_err(|e| Error::io("current_exe", e))?;
    let mut child = Command::new(exe)
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| Error::io("neuroscreen run", e))?;
    let outcome = feed(
        options, &mut child, &inbox, &results, &log_path, &samples, out,
    );
    if outcome.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    outcome
}

fn feed(
    options: &SoakOptions,
    child: &mut Child,
    inbox: &Path,
    results: &Path,
    log_path: &Path,
    samples: &[Vec<u8>],
    out: &mut impl Write,
) -> Result<SoakReport> {
    let pid = child.id();
    wait_until(Duration::from_secs(120), child, || {
        std::fs::read_to_string(log_path).is_ok_and(|t| t.contains("neuroscreen running"))
    })?;
    let start = sample(pid, 0, &[], &[], 0.0)?;
    writeln!(out, "{}", header()).map_err(Error::Report)?;
    writeln!(out, "{}", row(&start)).map_err(Error::Report)?;

    let started = Instant::now();
    let mut log = LogTail::new(results.join(RESULTS_LOG));
    let mut arrived: std::collections::HashMap<PathBuf, Instant> = Default::default();
    let (mut sent, mut done, mut errors) = (0usize, 0usize, 0usize);
    let mut windows = Vec::new();
    let (mut own_ms, mut e2e_ms) = (Vec::new(), Vec::new());
    let mut window_started = Instant::now();
    let mut last_progress = Instant::now();
    while done < options.slices {
        while sent < options.slices && sent - done < IN_FLIGHT {
            let name = format!("slice_{sent:06}.png");
            let tmp = inbox.join(format!(".{name}.part"));
            let to = inbox.join(&name);
            std::fs::write(&tmp, &samples[sent % samples.len()])
                .and_then(|()| std::fs::rename(&tmp, &to))
                .map_err(|e| Error::io(&to, e))?;
            arrived.insert(to, Instant::now());
            sent += 1;
        }
        let fresh = log.read_new()?;
        if fresh.is_empty() {
            if let Some(status) = child
                .try_wait()
                .map_err(|e| Error::io("neuroscreen run", e))?
            {
                return Err(soak_error(format!(
                    "the service stopped ({status}) after {done} slices; see {}",
                    log_path.display()
                )));
            }
            if last_progress.elapsed() > Duration::from_secs(120) {
                return Err(soak_error(format!(
                    "no result for 120 s after {done} slices"
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        last_progress = Instant::now();
        for record in fresh {
            if let Some(t) = arrived.remove(&record.input) {
                e2e_ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
            if record.error.is_some() {
                errors += 1;
            }
            own_ms.push(record.latency_ms.total);
            // Screened: the inbox copy has served its purpose.
            let _ = std::fs::remove_file(&record.input);
            done += 1;
            if done % options.window == 0 || done == options.slices {
                let rate = own_ms.len() as f64 / window_started.elapsed().as_secs_f64();
                let s = sample(pid, done, &own_ms, &e2e_ms, rate)?;
                writeln!(out, "{}", row(&s)).map_err(Error::Report)?;
                windows.push(s);
                own_ms.clear();
                e2e_ms.clear();
                window_started = Instant::now();
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    // SAFETY: kill(2) on our own child's pid, which has not been reaped.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
    let status = child.wait().map_err(|e| Error::io("neuroscreen run", e))?;
    Ok(SoakReport {
        slices: done,
        errors,
        seconds,
        precision: options.precision.clone(),
        start,
        windows,
        service_exit_code: status.code(),
    })
}

fn soak_error(reason: String) -> Error {
    Error::io("soak", std::io::Error::other(reason))
}

fn wait_until(limit: Duration, child: &mut Child, mut done: impl FnMut() -> bool) -> Result<()> {
    let started = Instant::now();
    while !done() {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| Error::io("neuroscreen run", e))?
        {
            return Err(soak_error(format!(
                "the service stopped at start ({status})"
            )));
        }
        if started.elapsed() > limit {
            return Err(soak_error("the service did not start".into()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The shipped samples' bytes (slices only, not masks).
fn sample_slices(models: &Path) -> Result<Vec<Vec<u8>>> {
    let dir = models.join("samples");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(&dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| crate::inputs::is_slice_file(p))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(soak_error(format!("no sample slices in {}", dir.display())));
    }
    paths
        .iter()
        .map(|p| std::fs::read(p).map_err(|e| Error::io(p, e)))
        .collect()
}

/// New whole lines of the results log since the last call.
struct LogTail {
    path: PathBuf,
    offset: u64,
    partial: String,
}

impl LogTail {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            offset: 0,
            partial: String::new(),
        }
    }

    fn read_new(&mut self) -> Result<Vec<Record>> {
        let mut file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        file.seek(SeekFrom::Start(self.offset))
            .map_err(|e| Error::io(&self.path, e))?;
        let mut text = String::new();
        let n = file
            .read_to_string(&mut text)
            .map_err(|e| Error::io(&self.path, e))?;
        self.offset += n as u64;
        self.partial.push_str(&text);
        let mut records = Vec::new();
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            if let Ok(r) = serde_json::from_str::<Record>(line.trim()) {
                records.push(r);
            }
        }
        Ok(records)
    }
}

/// The service process as /proc shows it, and one window's percentiles.
fn sample(pid: u32, done: usize, own_ms: &[f64], e2e_ms: &[f64], rate: f64) -> Result<Sample> {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let status = std::fs::File::open(proc_dir.join("status"))
        .map_err(|e| Error::io(proc_dir.join("status"), e))?;
    let (mut rss, mut hwm, mut threads) = (0, 0, 0);
    for line in BufReader::new(status).lines().map_while(|l| l.ok()) {
        let value = |l: &str| -> u64 {
            l.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        if line.starts_with("VmRSS:") {
            rss = value(&line);
        } else if line.starts_with("VmHWM:") {
            hwm = value(&line);
        } else if line.starts_with("Threads:") {
            threads = value(&line) as usize;
        }
    }
    let fds = std::fs::read_dir(proc_dir.join("fd"))
        .map_err(|e| Error::io(proc_dir.join("fd"), e))?
        .count();
    Ok(Sample {
        done,
        rss_kib: rss,
        hwm_kib: hwm,
        fds,
        threads,
        p50_ms: percentile(own_ms, 50.0),
        p95_ms: percentile(own_ms, 95.0),
        max_ms: percentile(own_ms, 100.0),
        arrival_to_result_p50_ms: percentile(e2e_ms, 50.0),
        arrival_to_result_p95_ms: percentile(e2e_ms, 95.0),
        slices_per_s: (rate * 10.0).round() / 10.0,
    })
}

/// Nearest-rank percentile; 0 for no values.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    let value = v[rank.clamp(1, v.len()) - 1];
    (value * 10.0).round() / 10.0
}

fn header() -> String {
    format!(
        "{:>7} {:>9} {:>9} {:>4} {:>7} {:>7} {:>7} {:>7} {:>11} {:>11} {:>8}",
        "slices",
        "RSS KiB",
        "HWM KiB",
        "fds",
        "threads",
        "p50 ms",
        "p95 ms",
        "max ms",
        "e2e p50 ms",
        "e2e p95 ms",
        "slices/s"
    )
}

fn row(s: &Sample) -> String {
    format!(
        "{:>7} {:>9} {:>9} {:>4} {:>7} {:>7.1} {:>7.1} {:>7.1} {:>11.1} {:>11.1} {:>8.1}",
        s.done,
        s.rss_kib,
        s.hwm_kib,
        s.fds,
        s.threads,
        s.p50_ms,
        s.p95_ms,
        s.max_ms,
        s.arrival_to_result_p50_ms,
        s.arrival_to_result_p95_ms,
        s.slices_per_s
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 95.0), 95.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[3.0], 50.0), 3.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn the_log_tail_returns_each_whole_line_once() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("results.jsonl");
        let mut tail = LogTail::new(path.clone());
        assert!(tail.read_new().unwrap().is_empty());
        let r = Record::new("/in/a.png".into(), "f32".into(), Default::default());
        let line = serde_json::to_string(&r).unwrap();
        std::fs::write(&path, format!("{line}\n{}", &line[..10])).unwrap();
        assert_eq!(tail.read_new().unwrap().len(), 1);
        std::fs::write(&path, format!("{line}\n{line}\n")).unwrap();
        assert_eq!(
            tail.read_new().unwrap().len(),
            1,
            "the rest of the cut line"
        );
        assert!(tail.read_new().unwrap().is_empty());
    }
}
