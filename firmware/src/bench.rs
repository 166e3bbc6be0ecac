//! `neuroscreen bench`: what each stage costs, with tract at f32 and int8
//! and with onnxruntime on the same files and thread count, in one run, so
//! the figures are ratios between peers rather than absolute times on a
//! shared machine.
//!
//! Each precision runs in its own child process (`bench-worker`), so its
//! start-up time and peak resident memory are its own.

pub mod filter_on_off;
pub mod kernels;
pub mod profile;
pub mod steps;

use crate::engine::{precision, Engine, EngineConfig};
use crate::error::{Error, Result};
use filter_on_off::FilterOnOff;
use models::SliceImage;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stats {
    pub n: usize,
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub min: f64,
}

impl Stats {
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        Some(Self {
            n: v.len(),
            mean: v.iter().sum::<f64>() / v.len() as f64,
            p50: at(0.5),
            p95: at(0.95),
            min: v[0],
        })
    }

    /// The median of `values`, none when there are none.
    pub fn median(values: &[f64]) -> Option<f64> {
        Self::of(values).map(|s| s.p50)
    }
}

/// One runtime's model-only timing of one file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelTiming {
    pub model: String,
    pub precision: String,
    pub ms: Option<Stats>,
    /// Load and optimise (tract) or session creation (onnxruntime).
    pub load_ms: Option<f64>,
    pub error: Option<String>,
}

/// What one `bench-worker` process measured at one precision.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerReport {
    pub precision: String,
    pub threads: usize,
    /// Manifest read, hashes verified, every model loaded and optimised.
    pub engine_load_ms: f64,
    pub models: Vec<ModelTiming>,
    /// Per slice, pre- and post-processing included, decoding not.
    pub filter_ms: Option<Stats>,
    pub segment_ms: Option<Stats>,
    pub end_to_end_ms: Option<Stats>,
    pub slices: usize,
    pub peak_rss_kib: Option<u64>,
    /// With `--slices` and a filter in the set.
    #[serde(default)]
    pub filter_on_off: Option<FilterOnOff>,
    /// The appliance's own work around the models, step by step.
    #[serde(default)]
    pub steps: Vec<steps::StepStat>,
}

/// Runs in the child: loads the engine as `config` says (its precision,
/// threads, pinned key) and times it on the samples.
pub fn worker(
    models: &Path,
    config: EngineConfig,
    runs: usize,
    labelled: Option<&Path>,
) -> Result<WorkerReport> {
    let started = Instant::now();
    let threads = config.threads;
    let engine = Engine::load(&models.join("manifest.json"), config)?;
    let engine_load_ms = started.elapsed().as_secs_f64() * 1e3;
    let paths = sample_paths(models)?;
    let slices = paths
        .iter()
        .map(|p| SliceImage::open(p))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let name = engine.precision_label().to_string();
    let timed = engine.time_models(&slices[0], runs)?;
    let models_timed = timed
        .into_iter()
        .map(|(model, times)| ModelTiming {
            model,
            precision: name.clone(),
            ms: Stats::of(&times),
            load_ms: None,
            error: None,
        })
        .collect();
    let (mut filter, mut segment, mut total) = (Vec::new(), Vec::new(), Vec::new());
    let passes = runs.div_ceil(slices.len()).max(1);
    for _ in 0..passes {
        for slice in &slices {
            let t = Instant::now();
            let s = engine.screen(slice)?;
            total.push(t.elapsed().as_secs_f64() * 1e3);
            filter.extend(s.latency.filter_ms);
            segment.extend(s.latency.segment_ms);
        }
    }
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let steps = steps::measure(&engine, &refs, runs)?;
    // Before the labelled slices are decoded and held in memory, so the
    // peak is the appliance's own.
    let peak_rss_kib = peak_rss_kib();
    let filter_on_off = match labelled {
        Some(dir) => {
            let (slices, skipped) = filter_on_off::labelled_slices(dir)?;
            Some(filter_on_off::measure(&engine, dir, &slices, skipped)?)
        }
        None => None,
    };
    Ok(WorkerReport {
        precision: name,
        threads,
        engine_load_ms,
        models: models_timed,
        filter_ms: Stats::of(&filter),
        segment_ms: Stats::of(&segment),
        end_to_end_ms: Stats::of(&total),
        slices: total.len(),
        peak_rss_kib,
        filter_on_off,
        steps,
    })
}

/// The shipped sample slices (what the appliance sees, at their own
/// sizes); at least one.
fn sample_paths(models: &Path) -> Result<Vec<PathBuf>> {
    let dir = models.join("samples");
    let truths = crate::demo::read_truth(&dir)?;
    if truths.is_empty() {
        return Err(Error::Bench(format!(
            "{}: no samples to time",
            dir.display()
        )));
    }
    Ok(truths.iter().map(|t| dir.join(&t.file)).collect())
}

/// VmHWM: the most resident memory the process ever held.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// onnxruntime's side, from `scripts/ort_bench.py`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrtReport {
    pub runtime: String,
    pub models: Vec<ModelTiming>,
    pub peak_rss_kib: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct OrtRow {
    model: String,
    precision: String,
    ms: Option<Vec<f64>>,
    session_ms: Option<f64>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct OrtRaw {
    runtime: String,
    models: Vec<OrtRow>,
    peak_rss_kib: Option<u64>,
}

pub struct BenchOptions {
    pub models: PathBuf,
    /// The appliance.toml each worker builds its engine from (pinned key,
    /// min_component_px); `None`: the defaults.
    pub config: Option<PathBuf>,
    /// The precisions to time; empty: every one the set ships.
    pub precisions: Vec<models::manifest::Precision>,
    pub runs: usize,
    pub threads: usize,
    /// Python with onnxruntime, and the script; `None` skips the peer.
    pub ort: Option<(PathBuf, PathBuf)>,
    /// Labelled slices to screen with the filter on and off.
    pub slices: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchReport {
    pub date: String,
    pub arch: String,
    pub threads: usize,
    pub runs: usize,
    pub tract: Vec<WorkerReport>,
    pub onnxruntime: Option<OrtReport>,
    /// Why onnxruntime is missing, when it is.
    pub onnxruntime_skipped: Option<String>,
}

pub fn run(opts: &BenchOptions) -> Result<BenchReport> {
    let exe = std::env::current_exe().map_err(|e| Error::io("current executable", e))?;
    let mut tract = Vec::new();
    let precisions = if opts.precisions.is_empty() {
        crate::check::available(&opts.models)?
    } else {
        opts.precisions.clone()
    };
    for p in precisions {
        let name = precision::name(p);
        tracing::info!(precision = name, "timing tract");
        let mut cmd = Command::new(&exe);
        cmd.arg("bench-worker")
            .arg("--models")
            .arg(&opts.models)
            .args(["--precision", name])
            .args(["--threads", &opts.threads.to_string()])
            .args(["--runs", &opts.runs.to_string()]);
        if let Some(dir) = &opts.slices {
            cmd.arg("--slices").arg(dir);
        }
        if let Some(config) = &opts.config {
            cmd.arg("--config").arg(config);
        }
        let out = cmd.output().map_err(|e| Error::io(&exe, e))?;
        if !out.status.success() {
            return Err(Error::Bench(format!(
                "tract {name} worker failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        tract.push(
            serde_json::from_slice(&out.stdout)
                .map_err(|e| Error::Bench(format!("tract {name} worker output: {e}")))?,
        );
    }
    let (onnxruntime, onnxruntime_skipped) = match &opts.ort {
        None => (None, Some("not asked for (--no-ort)".to_string())),
        Some((python, script)) => match ort(python, script, opts) {
            Ok(r) => (Some(r), None),
            Err(why) => {
                tracing::warn!("onnxruntime peer skipped: {why}");
                (None, Some(why.to_string()))
            }
        },
    };
    Ok(BenchReport {
        date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        arch: std::env::consts::ARCH.into(),
        threads: opts.threads,
        runs: opts.runs,
        tract,
        onnxruntime,
        onnxruntime_skipped,
    })
}

/// Why the onnxruntime peer gave no figures (the report says so and the
/// bench goes on without it).
#[derive(Debug, thiserror::Error)]
pub(crate) enum OrtError {
    #[error("{}: no such script", .0.display())]
    NoScript(PathBuf),
    #[error("{}: {source}", .python.display())]
    Start {
        python: PathBuf,
        source: std::io::Error,
    },
    /// The script failed; `last_line` is the last line of its stderr.
    #[error("{} {}: {last_line}", .python.display(), .script.display())]
    Failed {
        python: PathBuf,
        script: PathBuf,
        last_line: String,
    },
    #[error("output: {0}")]
    Output(#[source] serde_json::Error),
}

/// Runs `scripts/ort_bench.py` on `models` with `extra` arguments; its
/// stdout (JSON).
pub(crate) fn ort_script(
    (python, script): (&Path, &Path),
    models: &Path,
    threads: usize,
    runs: usize,
    extra: &[String],
) -> std::result::Result<Vec<u8>, OrtError> {
    if !script.is_file() {
        return Err(OrtError::NoScript(script.to_path_buf()));
    }
    tracing::info!("timing onnxruntime");
    let out = Command::new(python)
        .arg(script)
        .arg("--models")
        .arg(models)
        .args(["--threads", &threads.to_string()])
        .args(["--runs", &runs.to_string()])
        .args(extra)
        .output()
        .map_err(|source| OrtError::Start {
            python: python.to_path_buf(),
            source,
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(OrtError::Failed {
            python: python.to_path_buf(),
            script: script.to_path_buf(),
            last_line: err.trim().lines().last().unwrap_or("failed").to_string(),
        });
    }
    Ok(out.stdout)
}

fn ort(
    python: &Path,
    script: &Path,
    opts: &BenchOptions,
) -> std::result::Result<OrtReport, OrtError> {
    let stdout = ort_script((python, script), &opts.models, opts.threads, opts.runs, &[])?;
    let raw: OrtRaw = serde_json::from_slice(&stdout).map_err(OrtError::Output)?;
    Ok(OrtReport {
        runtime: raw.runtime,
        peak_rss_kib: raw.peak_rss_kib,
        models: raw
            .models
            .into_iter()
            .map(|r| ModelTiming {
                model: r.model,
                precision: r.precision,
                ms: r.ms.as_deref().and_then(Stats::of),
                load_ms: r.session_ms,
                error: r.error,
            })
            .collect(),
    })
}

fn find<'a>(rows: &'a [ModelTiming], model: &str, precision: &str) -> Option<&'a ModelTiming> {
    rows.iter()
        .find(|r| r.model == model && r.precision == precision)
}

/// The tract worker of `r` at `precision`.
fn worker_at<'a>(r: &'a BenchReport, precision: &str) -> Option<&'a WorkerReport> {
    r.tract.iter().find(|w| w.precision == precision)
}

/// What more threads bought, from runs of the same set at several thread
/// counts (the first is the baseline): per precision, each model alone in
/// tract and onnxruntime, and tract's end to end per slice, as medians and
/// as the baseline's time over each count's.
pub fn print_scaling(reports: &[BenchReport], out: &mut impl Write) -> std::io::Result<()> {
    let Some(base) = reports.first() else {
        return Ok(());
    };
    writeln!(
        out,
        "\nthreads: medians in ms, and the speed-up over {} thread(s) in brackets:",
        base.threads
    )?;
    writeln!(
        out,
        "{:<5} {:<28} {}",
        "prec",
        "figure",
        reports
            .iter()
            .map(|r| format!("{:>18}", format!("{} thread(s)", r.threads)))
            .collect::<String>()
    )?;
    let cell = |now: Option<f64>, then: Option<f64>| match (now, then) {
        (Some(n), Some(t)) if n > 0.0 => format!("{:>18}", format!("{n:.2} ({:.2}x)", t / n)),
        (Some(n), _) => format!("{:>18}", format!("{n:.2}")),
        _ => format!("{:>18}", "-"),
    };
    let p50 = |rows: &[ModelTiming], m: &ModelTiming| {
        find(rows, &m.model, &m.precision)
            .and_then(|t| t.ms.as_ref())
            .map(|s| s.p50)
    };
    for w in &base.tract {
        // Each row: its label and its figure in every report, in order.
        let mut rows: Vec<(String, Vec<Option<f64>>)> = Vec::new();
        for m in &w.models {
            rows.push((
                format!("{} tract", m.model),
                reports
                    .iter()
                    .map(|r| worker_at(r, &w.precision).and_then(|x| p50(&x.models, m)))
                    .collect(),
            ));
            rows.push((
                format!("{} onnxruntime", m.model),
                reports
                    .iter()
                    .map(|r| r.onnxruntime.as_ref().and_then(|o| p50(&o.models, m)))
                    .collect(),
            ));
        }
        rows.push((
            "end to end tract".into(),
            reports
                .iter()
                .map(|r| {
                    worker_at(r, &w.precision)
                        .and_then(|x| x.end_to_end_ms.as_ref())
                        .map(|s| s.p50)
                })
                .collect(),
        ));
        for (label, figures) in &rows {
            let cells: String = figures.iter().map(|&now| cell(now, figures[0])).collect();
            writeln!(out, "{:<5} {:<28} {}", w.precision, label, cells)?;
        }
    }
    Ok(())
}

/// The tables a person reads.
pub fn print(r: &BenchReport, out: &mut impl Write) -> std::io::Result<()> {
    let ms = |s: &Option<Stats>| s.as_ref().map_or("-".into(), |s| format!("{:.2}", s.p50));
    let ort_rows: &[ModelTiming] = r.onnxruntime.as_ref().map_or(&[], |o| &o.models);
    writeln!(
        out,
        "neuroscreen bench: {} on {}, {} thread(s), {} runs per figure; medians in ms",
        r.date, r.arch, r.threads, r.runs
    )?;
    writeln!(out, "\nmodel only (same ONNX file, same threads):")?;
    writeln!(
        out,
        "{:<12} {:<5} {:>10} {:>14} {:>10}",
        "model", "prec", "tract", "onnxruntime", "tract/ort"
    )?;
    for w in &r.tract {
        for m in &w.models {
            let peer = find(ort_rows, &m.model, &m.precision);
            let peer_ms = match peer {
                Some(p) if p.error.is_some() => "failed".to_string(),
                Some(p) => ms(&p.ms),
                None => "-".into(),
            };
            let ratio = match (&m.ms, peer.and_then(|p| p.ms.as_ref())) {
                (Some(a), Some(b)) if b.p50 > 0.0 => format!("{:.2}x", a.p50 / b.p50),
                _ => "-".into(),
            };
            writeln!(
                out,
                "{:<12} {:<5} {:>10} {:>14} {:>10}",
                m.model,
                m.precision,
                ms(&m.ms),
                peer_ms,
                ratio
            )?;
        }
    }
    for row in ort_rows.iter().filter(|p| p.error.is_some()) {
        writeln!(
            out,
            "onnxruntime could not run {} {}: {}",
            row.model,
            row.precision,
            row.error.as_deref().unwrap_or("")
        )?;
    }
    if let Some(why) = &r.onnxruntime_skipped {
        writeln!(out, "onnxruntime: skipped ({why})")?;
    }
    writeln!(
        out,
        "\nthe appliance's stages with tract (pre- and post-processing included), p50 / p95 ms:"
    )?;
    writeln!(
        out,
        "{:<5} {:>15} {:>15} {:>15} {:>10} {:>13}",
        "prec", "filter", "segmenter", "end to end", "load ms", "peak RSS MiB"
    )?;
    let pair = |s: &Option<Stats>| {
        s.as_ref()
            .map_or("-".into(), |s| format!("{:.1} / {:.1}", s.p50, s.p95))
    };
    for w in &r.tract {
        writeln!(
            out,
            "{:<5} {:>15} {:>15} {:>15} {:>10.0} {:>13}",
            w.precision,
            pair(&w.filter_ms),
            pair(&w.segment_ms),
            pair(&w.end_to_end_ms),
            w.engine_load_ms,
            w.peak_rss_kib
                .map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0))
        )?;
    }
    if let Some(o) = &r.onnxruntime {
        writeln!(
            out,
            "{} peak RSS {} MiB (Python interpreter included)",
            o.runtime,
            o.peak_rss_kib
                .map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0))
        )?;
    }
    let f32_ = r.tract.iter().find(|w| w.precision == "f32");
    let int8 = r.tract.iter().find(|w| w.precision == "int8");
    if let (Some(a), Some(b)) = (f32_, int8) {
        for m in &a.models {
            if let (Some(x), Some(y)) = (
                m.ms.as_ref(),
                find(&b.models, &m.model, "int8").and_then(|t| t.ms.as_ref()),
            ) {
                writeln!(
                    out,
                    "tract int8 / f32, {}: {:.2}x the time on {} ({})",
                    m.model,
                    y.p50 / x.p50,
                    r.arch,
                    if y.p50 < x.p50 {
                        "int8 is faster here"
                    } else {
                        "f32 is faster here"
                    }
                )?;
            }
        }
    }
    for w in &r.tract {
        if !w.steps.is_empty() {
            steps::print(&w.precision, &w.steps, out)?;
        }
    }
    for w in &r.tract {
        if let Some(f) = &w.filter_on_off {
            filter_on_off::print(f, &w.precision, out)?;
        }
    }
    let auto = precision::name(precision::preferred_on_this_cpu());
    writeln!(out, "precision auto picks on this CPU: {auto}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_are_order_statistics() {
        let s = Stats::of(&[5.0, 1.0, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!((s.n, s.min, s.p50, s.p95), (5, 1.0, 3.0, 5.0));
        assert!((s.mean - 3.0).abs() < 1e-12);
        assert!(Stats::of(&[]).is_none());
    }

    fn timing(model: &str, ms: f64) -> ModelTiming {
        ModelTiming {
            model: model.into(),
            precision: "f32".into(),
            ms: Stats::of(&[ms]),
            load_ms: None,
            error: None,
        }
    }

    fn report(threads: usize, segmenter: f64, ort: f64, end_to_end: f64) -> BenchReport {
        BenchReport {
            date: "d".into(),
            arch: "x86_64".into(),
            threads,
            runs: 1,
            tract: vec![WorkerReport {
                precision: "f32".into(),
                threads,
                engine_load_ms: 1.0,
                models: vec![timing("segmenter", segmenter)],
                filter_ms: None,
                segment_ms: None,
                end_to_end_ms: Stats::of(&[end_to_end]),
                slices: 1,
                peak_rss_kib: None,
                filter_on_off: None,
                steps: Vec::new(),
            }],
            onnxruntime: Some(OrtReport {
                runtime: "onnxruntime".into(),
                models: vec![timing("segmenter", ort)],
                peak_rss_kib: None,
            }),
            onnxruntime_skipped: None,
        }
    }

    #[test]
    fn scaling_gives_each_count_against_the_first() {
        let mut out = Vec::new();
        print_scaling(
            &[report(1, 12.0, 6.0, 16.0), report(2, 8.0, 3.0, 10.0)],
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        // The figures after a row's label.
        let row = |label: &str| {
            let line = text
                .lines()
                .find(|l| l.contains(label))
                .unwrap_or_else(|| panic!("{label} in {text}"));
            let (_, figures) = line.split_once(label).unwrap();
            figures.split_whitespace().collect::<Vec<_>>().join(" ")
        };
        assert_eq!(row("segmenter tract"), "12.00 (1.00x) 8.00 (1.50x)");
        assert_eq!(row("segmenter onnxruntime"), "6.00 (1.00x) 3.00 (2.00x)");
        assert_eq!(row("end to end tract"), "16.00 (1.00x) 10.00 (1.60x)");
    }

    #[test]
    fn peak_rss_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_rss_kib().is_some_and(|k| k > 0));
        }
    }
}
