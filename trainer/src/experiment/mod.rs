//! The seed paper's experiment, rerunnable: segmenter architectures x losses
//! x seeds on one patient-level split, each run scored on the same held-out
//! patients per slice, per patient and by lesion size, with the filter on
//! and off when a filter run is given. `neuroscreen-train experiment` runs
//! it and writes `docs/RESULTS.md` with a chart.

pub mod chart;
pub mod results_doc;
pub mod scores;

use crate::export::operating_point::{self, OperatingPoint};
use crate::losses::SegLoss;
use crate::nets::Architecture;
use crate::train::checkpoint::{load_best, load_run_data, write_atomic, BEST};
use crate::train::dataset::DataSplit;
use crate::train::evaluate::{predict_masks, tumour_probabilities};
use crate::train::{fit, FitConfig};
use crate::{Error, Result};
use scores::Scores;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use tch::Device;

/// One cell of the grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub arch: String,
    pub loss: String,
    pub seed: u64,
}

impl Cell {
    pub fn dir_name(&self) -> String {
        format!("{}-{}-s{}", self.arch, self.loss, self.seed)
    }
}

/// A finished cell, one line of `results.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellResult {
    pub cell: Cell,
    pub epochs_run: u32,
    pub best_epoch: u32,
    pub train_seconds: f64,
    /// The segmenter alone on every held-out slice.
    pub filter_off: Scores,
    /// Gated by the filter as the appliance runs it; None without a filter.
    pub filter_on: Option<Scores>,
    /// Which filter and threshold gave `filter_on` (`FilterGate::id`).
    #[serde(default)]
    pub gate: Option<String>,
}

/// What to run: the grid and the base training settings each cell starts
/// from (its architecture, loss and seed replaced).
#[derive(Debug, Clone)]
pub struct Plan {
    pub out: PathBuf,
    pub archs: Vec<(String, Architecture)>,
    pub losses: Vec<(String, SegLoss)>,
    pub seeds: Vec<u64>,
    pub base: FitConfig,
    /// A trained filter run whose decisions gate the segmenter ("filter on").
    pub filter: Option<PathBuf>,
}

impl Plan {
    pub fn cells(&self) -> Vec<(Cell, FitConfig)> {
        let mut cells = Vec::new();
        for (arch_name, arch) in &self.archs {
            for (loss_name, loss) in &self.losses {
                for &seed in &self.seeds {
                    let cell = Cell {
                        arch: arch_name.clone(),
                        loss: loss_name.clone(),
                        seed,
                    };
                    let cfg = FitConfig {
                        model: arch.clone(),
                        loss: *loss,
                        seed,
                        out: self.out.join("runs").join(cell.dir_name()),
                        ..self.base.clone()
                    };
                    cells.push((cell, cfg));
                }
            }
        }
        cells
    }
}

pub const RESULTS_FILE: &str = "results.jsonl";

/// Results already in `out/results.jsonl`, so an interrupted experiment
/// resumes where it stopped.
pub fn load_results(out: &Path) -> Result<Vec<CellResult>> {
    let path = out.join(RESULTS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&path, e)),
    };
    // A torn last line (killed mid-write) is dropped and that cell reruns.
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

fn append_result(out: &Path, r: &CellResult) -> Result<()> {
    let path = out.join(RESULTS_FILE);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    let line = serde_json::to_string(r).map_err(|e| Error::Invalid(e.to_string()))?;
    writeln!(f, "{line}")
        .and_then(|_| f.sync_data())
        .map_err(|e| Error::io(&path, e))
}

/// results.jsonl rewritten whole (temp file, fsync, rename) after cells
/// were scored again.
fn rewrite_results(out: &Path, results: &[CellResult]) -> Result<()> {
    let mut text = String::new();
    for r in results {
        text.push_str(&serde_json::to_string(r).map_err(|e| Error::Invalid(e.to_string()))?);
        text.push('\n');
    }
    write_atomic(&out.join(RESULTS_FILE), text.as_bytes())
}

/// The filter that gates "filter on", run as the appliance runs it: at the
/// threshold `export` would ship, picked on the filter's own validation
/// patients for a target sensitivity.
#[derive(Debug, Clone)]
pub struct FilterGate {
    pub run: PathBuf,
    pub model: String,
    /// The threshold and what it gives on the filter's validation patients.
    pub validation: OperatingPoint,
    /// Its decision per held-out slice of the experiment.
    pub flags: Vec<bool>,
}

impl FilterGate {
    /// Names the filter and threshold behind a result's filter-on scores, so
    /// results.jsonl can tell which were gated by something else.
    pub fn id(&self) -> String {
        format!("{} @ {:.4}", self.run.display(), self.validation.threshold)
    }
}

/// Loads `filter_run`, checks it never trained or early-stopped on the
/// experiment's test patients, picks its threshold and flags every held-out
/// slice of `data`.
pub fn filter_gate(
    filter_run: &Path,
    data: &DataSplit,
    target_sensitivity: f64,
    device: Device,
) -> Result<FilterGate> {
    let trained = load_best(filter_run, device)?;
    let cfg = &trained.state.config;
    if cfg.model.is_segmenter() {
        return Err(Error::Invalid(format!(
            "{}: is a segmenter run, not a filter",
            filter_run.display()
        )));
    }
    if cfg.input_size != data.test.size {
        return Err(Error::Invalid(format!(
            "{}: the filter takes {} px, the experiment runs at {} px",
            filter_run.display(),
            cfg.input_size,
            data.test.size
        )));
    }
    let own = load_run_data(cfg)?;
    let seen: Vec<&String> = data
        .split
        .test
        .iter()
        .filter(|p| own.split.train.contains(p) || own.split.val.contains(p))
        .collect();
    if !seen.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: the filter trained or early-stopped on {} of the experiment's {} test \
             patients ({}); train it on the same split (same --data, --max-slices and \
             --seed as the experiment's)",
            filter_run.display(),
            seen.len(),
            data.split.test.len(),
            seen.iter()
                .take(5)
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let val_p = tumour_probabilities(&trained.net, &own.val, device)?;
    let validation = operating_point::for_sensitivity(&val_p, &own.val.labels, target_sensitivity)
        .map_err(|e| Error::Invalid(format!("{}: {e}", filter_run.display())))?;
    let flags = tumour_probabilities(&trained.net, &data.test, device)?
        .into_iter()
        .map(|p| p >= validation.threshold)
        .collect();
    Ok(FilterGate {
        run: filter_run.to_path_buf(),
        model: cfg.model.label(),
        validation,
        flags,
    })
}

/// Trains and scores every cell not yet in `results.jsonl`; `progress` hears
/// (cells done, cells in all, the cell starting). A finished cell whose
/// filter-on scores came from another gate (or none) is scored again from
/// its best checkpoint, not retrained.
pub fn run(
    plan: &Plan,
    data: &DataSplit,
    gate: Option<&FilterGate>,
    mut progress: impl FnMut(usize, usize, &Cell),
) -> Result<Vec<CellResult>> {
    std::fs::create_dir_all(&plan.out).map_err(|e| Error::io(&plan.out, e))?;
    let mut results = load_results(&plan.out)?;
    let cells = plan.cells();
    let device = Device::cuda_if_available();
    let gate_id = gate.map(FilterGate::id);
    let flags = gate.map(|g| g.flags.as_slice());
    let score = |cfg: &FitConfig| -> Result<(Scores, Option<Scores>)> {
        let trained = load_best(&cfg.out, device)?;
        let masks = predict_masks(&trained.net, &data.test, device)?;
        Ok((
            Scores::of(&data.test, &masks, None),
            flags.map(|f| Scores::of(&data.test, &masks, Some(f))),
        ))
    };
    let mut rescored = false;
    for (k, (cell, cfg)) in cells.iter().enumerate() {
        if let Some(done) = results.iter_mut().find(|r| &r.cell == cell) {
            if done.gate != gate_id || (gate_id.is_none() && done.filter_on.is_some()) {
                if !cfg.out.join(BEST).is_file() {
                    return Err(Error::Invalid(format!(
                        "{}: {} was gated by {} and its checkpoint is gone, so it cannot \
                         be scored with {}; rerun it (remove its line) or give that filter",
                        plan.out.join(RESULTS_FILE).display(),
                        cell.dir_name(),
                        done.gate.as_deref().unwrap_or("no recorded filter"),
                        gate_id.as_deref().unwrap_or("no filter"),
                    )));
                }
                (done.filter_off, done.filter_on) = score(cfg)?;
                done.gate = gate_id.clone();
                rescored = true;
            }
            continue;
        }
        progress(k, cells.len(), cell);
        // A half-trained run from an interrupted experiment starts afresh.
        let _ = std::fs::remove_dir_all(&cfg.out);
        let started = std::time::Instant::now();
        let outcome = fit(cfg, data, false, false)?;
        let train_seconds = started.elapsed().as_secs_f64();
        let (filter_off, filter_on) = score(cfg)?;
        let result = CellResult {
            cell: cell.clone(),
            epochs_run: outcome.epochs_run,
            best_epoch: outcome.best_epoch,
            train_seconds,
            filter_off,
            filter_on,
            gate: gate_id.clone(),
        };
        append_result(&plan.out, &result)?;
        results.push(result);
    }
    if rescored {
        rewrite_results(&plan.out, &results)?;
    }
    // Keep the plan's order and only its cells (results.jsonl may hold more).
    Ok(cells
        .iter()
        .filter_map(|(c, _)| results.iter().find(|r| &r.cell == c).cloned())
        .collect())
}
