//! `neuroscreen-train quant-bench`: what int8 buys and costs for each model
//! of a shipped set — file sizes, tract latency f32 vs int8 (same thread
//! count, median of N runs), and each int8 model's score (segmenter: Dice;
//! filter: accuracy) from our quantiser against onnxruntime's static
//! quantiser on the same slices (scripts/ort_quantize.py, run with the
//! project's Python).

use super::npy;
use super::ship::{calibration_set, eval_set, run_data};
use super::tract_check;
use crate::train::checkpoint::RunState;
use crate::train::dataset::Prepared;
use crate::{Error, Result};
use models::manifest::{Precision, Role};
use models::{Manifest, ModelEntry};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Folder with manifest.json and the model files.
    pub models: PathBuf,
    /// The segmenter's run folder (data split and calibration slices).
    pub run: PathBuf,
    /// The filter's run folder, when the set has a filter; without it the
    /// filter is timed on a grey input and not scored.
    pub filter_run: Option<PathBuf>,
    /// Data root of the segmenter's run, when not where its config says.
    pub data: Option<PathBuf>,
    /// Timed runs per file (after one warm-up run).
    pub runs: usize,
    /// Python with onnxruntime (e.g. `.venv/bin/python3`); `None` skips the peer.
    pub python: Option<PathBuf>,
    /// scripts/ort_quantize.py
    pub script: PathBuf,
    /// Scratch folder for the dumped slices and onnxruntime's int8 file.
    pub work: PathBuf,
    /// Calibration / held-out slices; default: what the manifest says the
    /// export used (`calibration_slices`, `eval_slices_held_out`).
    pub calibration_slices: Option<usize>,
    pub calibration_clear_share: Option<f64>,
    pub eval_slices: Option<usize>,
}

/// Median of `v` (mean of the middle two for even lengths).
pub fn median(v: &[f64]) -> f64 {
    assert!(!v.is_empty(), "median of nothing");
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

/// Milliseconds per run of `plan` on `input`: one warm-up, then `runs` timed.
pub fn time_plan(
    plan: &tract_check::TractPlan,
    shape: &[usize],
    input: &[f32],
    runs: usize,
) -> Result<Vec<f64>> {
    tract_check::run(plan, shape, input)?;
    (0..runs.max(1))
        .map(|_| {
            let t = Instant::now();
            tract_check::run(plan, shape, input)?;
            Ok(t.elapsed().as_secs_f64() * 1e3)
        })
        .collect()
}

/// What scripts/ort_quantize.py printed.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerScores {
    pub eval_slices: usize,
    pub calibration_slices: usize,
    pub format: String,
    /// What the scores are: "Dice" or "accuracy %".
    pub metric: String,
    pub score_f32: f64,
    pub score_ours_int8: Option<f64>,
    pub score_ort_int8: f64,
    pub ort_int8_bytes: u64,
}

/// Parses the script's JSON line (the last non-empty line of stdout).
pub fn parse_peer_json(stdout: &str) -> Result<PeerScores> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| Error::Invalid("ort_quantize.py printed nothing".into()))?;
    let v: serde_json::Value = serde_json::from_str(line)
        .map_err(|e| Error::Invalid(format!("ort_quantize.py output: {e}: {line}")))?;
    let num = |path: &[&str]| -> Option<f64> {
        path.iter()
            .try_fold(&v, |v, k| v.get(k))
            .and_then(serde_json::Value::as_f64)
    };
    let need = |path: &[&str]| {
        num(path).ok_or_else(|| {
            Error::Invalid(format!("ort_quantize.py output lacks {}", path.join(".")))
        })
    };
    let text = |key: &str| {
        v.get(key)
            .and_then(|f| f.as_str())
            .unwrap_or("?")
            .to_string()
    };
    Ok(PeerScores {
        eval_slices: need(&["eval_slices"])? as usize,
        calibration_slices: need(&["calibration_slices"])? as usize,
        format: text("ort_format"),
        metric: text("metric"),
        score_f32: need(&["score", "f32"])?,
        score_ours_int8: num(&["score", "ours_int8"]),
        score_ort_int8: need(&["score", "ort_int8"])?,
        ort_int8_bytes: need(&["ort_int8_bytes"])? as u64,
    })
}

/// One model of the set, measured.
#[derive(Debug, Clone)]
pub struct BenchRow {
    pub name: String,
    pub f32_bytes: u64,
    pub int8_bytes: Option<u64>,
    pub f32_ms: f64,
    pub int8_ms: Option<f64>,
    pub runs: usize,
    pub peer: Option<PeerScores>,
}

fn file_len(p: &Path) -> Result<u64> {
    Ok(std::fs::metadata(p).map_err(|e| Error::io(p, e))?.len())
}

/// Runs scripts/ort_quantize.py and parses its JSON.
pub fn run_peer(
    python: &Path,
    script: &Path,
    role: Role,
    f32_file: &Path,
    ours: Option<&Path>,
    slices: &Path,
    ort_out: &Path,
) -> Result<PeerScores> {
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .args([
            "--task",
            if role == Role::Filter {
                "filter"
            } else {
                "segmenter"
            },
        ])
        .arg("--f32")
        .arg(f32_file)
        .arg("--slices")
        .arg(slices)
        .arg("--ort-out")
        .arg(ort_out);
    if let Some(o) = ours {
        cmd.arg("--ours").arg(o);
    }
    let out = cmd
        .output()
        .map_err(|e| Error::Invalid(format!("running {}: {e}", python.display())))?;
    if !out.status.success() {
        return Err(Error::Invalid(format!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    parse_peer_json(&String::from_utf8_lossy(&out.stdout))
}

/// A model's held-out and calibration slices, drawn as `export` drew them.
struct RoleSets {
    calibration: Prepared,
    eval: Prepared,
}

fn role_sets(
    opts: &BenchOptions,
    run: &Path,
    data: Option<&Path>,
    entry: &ModelEntry,
) -> Result<RoleSets> {
    let state = RunState::load(run)?;
    let cfg = &state.config;
    let metric = |k: &str| entry.metrics.get(k).copied();
    let calib_n = opts
        .calibration_slices
        .or(metric("calibration_slices").map(|v| v as usize))
        .unwrap_or(32);
    let clear_share = opts
        .calibration_clear_share
        .or(metric("calibration_clear_share"))
        .unwrap_or(0.0);
    let eval_n = opts
        .eval_slices
        .or(metric("eval_slices_held_out").map(|v| v as usize))
        .unwrap_or(40);
    let split = run_data(cfg, data)?;
    let segmenter = cfg.model.is_segmenter();
    if segmenter != (entry.role == Role::Segmenter) {
        return Err(Error::Invalid(format!(
            "{}: a {} run, but the set's {} is a {:?}",
            run.display(),
            if segmenter { "segmenter" } else { "filter" },
            entry.name,
            entry.role
        )));
    }
    let eval = eval_set(&split.test, eval_n, segmenter);
    if eval.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no held-out slices to time or score",
            run.display()
        )));
    }
    Ok(RoleSets {
        calibration: calibration_set(&split.train, calib_n, segmenter, clear_share),
        eval,
    })
}

/// Measures every model in `opts.models`.
pub fn bench(opts: &BenchOptions) -> Result<Vec<BenchRow>> {
    let manifest = Manifest::load(&opts.models.join("manifest.json"))?;
    let mut rows = Vec::new();
    for m in &manifest.models {
        let sets = match m.role {
            Role::Segmenter => Some(role_sets(opts, &opts.run, opts.data.as_deref(), m)?),
            Role::Filter => match &opts.filter_run {
                Some(run) => Some(role_sets(opts, run, None, m)?),
                None => None,
            },
        };
        let f32_path = m
            .file_path(&opts.models, Precision::F32)
            .ok_or_else(|| Error::Invalid(format!("{}: no f32 file", m.name)))?;
        let int8_path = m.file_path(&opts.models, Precision::Int8);
        let shape = m.input.shape.to_vec();
        let input = match &sets {
            Some(s) if m.input.shape[2] as u32 == s.eval.size => s.eval.image(0).to_vec(),
            _ => vec![0.5; shape.iter().product()],
        };
        let f32_plan = tract_check::load(&f32_path, &shape)?;
        let f32_ms = median(&time_plan(&f32_plan, &shape, &input, opts.runs)?);
        let int8_ms = match &int8_path {
            Some(p) => {
                let plan = tract_check::load(p, &shape)?;
                Some(median(&time_plan(&plan, &shape, &input, opts.runs)?))
            }
            None => None,
        };
        let peer = match (&opts.python, &sets) {
            (Some(python), Some(sets)) => {
                let dir = opts.work.join(format!("{}-slices", m.name));
                npy::write_slice_sets(&dir, &sets.calibration, &sets.eval)?;
                Some(run_peer(
                    python,
                    &opts.script,
                    m.role,
                    &f32_path,
                    int8_path.as_deref(),
                    &dir,
                    &opts.work.join(format!("{}.ort-int8.onnx", m.name)),
                )?)
            }
            _ => None,
        };
        rows.push(BenchRow {
            name: m.name.clone(),
            f32_bytes: file_len(&f32_path)?,
            int8_bytes: int8_path.as_deref().map(file_len).transpose()?,
            f32_ms,
            int8_ms,
            runs: opts.runs.max(1),
            peer,
        });
    }
    Ok(rows)
}

fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map_or_else(|| "-".to_string(), f)
}

/// The bench's table, Markdown.
pub fn render(rows: &[BenchRow]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| model | f32 KiB | int8 KiB | ort int8 KiB | tract f32 ms | tract int8 ms | int8/f32 time | runs | held-out | score | f32 (ort) | ours int8 (ort) | ort int8 (ort) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let p = r.peer.as_ref();
        let _ = writeln!(
            s,
            "| {} | {:.1} | {} | {} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            r.f32_bytes as f64 / 1024.0,
            opt(r.int8_bytes, |b| format!("{:.1}", b as f64 / 1024.0)),
            opt(p, |p| format!("{:.1}", p.ort_int8_bytes as f64 / 1024.0)),
            r.f32_ms,
            opt(r.int8_ms, |m| format!("{m:.2}")),
            opt(r.int8_ms, |m| format!("{:.2}x", m / r.f32_ms)),
            r.runs,
            opt(p, |p| p.eval_slices.to_string()),
            opt(p, |p| p.metric.clone()),
            opt(p, |p| format!("{:.4}", p.score_f32)),
            opt(p.and_then(|p| p.score_ours_int8), |d| format!("{d:.4}")),
            opt(p, |p| format!("{:.4} ({})", p.score_ort_int8, p.format)),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_lengths() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
    }

    #[test]
    fn peer_json_is_parsed_from_the_last_line() {
        let out = "some log\n{\"eval_slices\": 40, \"calibration_slices\": 32, \"ort_format\": \"qoperator\", \
                   \"metric\": \"Dice\", \"ort_int8_bytes\": 600000, \
                   \"score\": {\"f32\": 0.4, \"ort_int8\": 0.39, \"ours_int8\": 0.41}}\n\n";
        let p = parse_peer_json(out).unwrap();
        assert_eq!(p.eval_slices, 40);
        assert_eq!(p.calibration_slices, 32);
        assert_eq!(p.format, "qoperator");
        assert_eq!(p.ort_int8_bytes, 600000);
        assert_eq!(p.metric, "Dice");
        assert_eq!((p.score_f32, p.score_ort_int8), (0.4, 0.39));
        assert_eq!(p.score_ours_int8, Some(0.41));
    }

    #[test]
    fn peer_json_without_our_file_or_with_missing_fields() {
        let out = "{\"eval_slices\": 2, \"calibration_slices\": 1, \"ort_int8_bytes\": 1, \
                   \"score\": {\"f32\": 0.5, \"ort_int8\": 0.5}}";
        assert_eq!(parse_peer_json(out).unwrap().score_ours_int8, None);
        assert!(parse_peer_json("{\"score\": {}}").is_err());
        assert!(parse_peer_json("not json").is_err());
        assert!(parse_peer_json("").is_err());
    }

    #[test]
    fn table_marks_what_was_not_measured() {
        let rows = [BenchRow {
            name: "segmenter".into(),
            f32_bytes: 2048,
            int8_bytes: None,
            f32_ms: 10.0,
            int8_ms: None,
            runs: 5,
            peer: None,
        }];
        let t = render(&rows);
        assert!(
            t.contains("| segmenter | 2.0 | - | - | 10.00 | - | - | 5 |"),
            "{t}"
        );
    }
}
