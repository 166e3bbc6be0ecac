//! The seed paper's experiment, rerunnable: segmenter architectures x losses
//! x seeds on one patient-level split, each run scored on the same held-out
//! patients per slice, per patient and by lesion size, with the filter on
//! and off when a filter run is given. `neuroscreen-train experiment` runs
//! it and writes `docs/RESULTS.md` with a chart.

pub mod chart;
pub mod results_doc;
pub mod scores;

use crate::losses::SegLoss;
use crate::nets::Architecture;
use crate::train::checkpoint::load_best;
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

/// The filter's flag per held-out slice (probability >= its 0.5 threshold).
pub fn filter_flags(filter_run: &Path, data: &DataSplit, device: Device) -> Result<Vec<bool>> {
    let trained = load_best(filter_run, device)?;
    if trained.state.config.model.is_segmenter() {
        return Err(Error::Invalid(format!(
            "{}: is a segmenter run, not a filter",
            filter_run.display()
        )));
    }
    if trained.state.config.input_size != data.test.size {
        return Err(Error::Invalid(format!(
            "{}: the filter takes {} px, the experiment runs at {} px",
            filter_run.display(),
            trained.state.config.input_size,
            data.test.size
        )));
    }
    Ok(tumour_probabilities(&trained.net, &data.test, device)?
        .into_iter()
        .map(|p| p >= 0.5)
        .collect())
}

/// Trains and scores every cell not yet in `results.jsonl`; `progress` hears
/// (cells done, cells in all, the cell starting).
pub fn run(
    plan: &Plan,
    data: &DataSplit,
    flags: Option<&[bool]>,
    mut progress: impl FnMut(usize, usize, &Cell),
) -> Result<Vec<CellResult>> {
    std::fs::create_dir_all(&plan.out).map_err(|e| Error::io(&plan.out, e))?;
    let mut results = load_results(&plan.out)?;
    let cells = plan.cells();
    let device = Device::cuda_if_available();
    for (k, (cell, cfg)) in cells.iter().enumerate() {
        if results.iter().any(|r| &r.cell == cell) {
            continue;
        }
        progress(k, cells.len(), cell);
        // A half-trained run from an interrupted experiment starts afresh.
        let _ = std::fs::remove_dir_all(&cfg.out);
        let started = std::time::Instant::now();
        let outcome = fit(cfg, data, false, false)?;
        let train_seconds = started.elapsed().as_secs_f64();
        let trained = load_best(&cfg.out, device)?;
        let masks = predict_masks(&trained.net, &data.test, device)?;
        let result = CellResult {
            cell: cell.clone(),
            epochs_run: outcome.epochs_run,
            best_epoch: outcome.best_epoch,
            train_seconds,
            filter_off: Scores::of(&data.test, &masks, None),
            filter_on: flags.map(|f| Scores::of(&data.test, &masks, Some(f))),
        };
        append_result(&plan.out, &result)?;
        results.push(result);
    }
    // Keep the plan's order and only its cells (results.jsonl may hold more).
    Ok(cells
        .iter()
        .filter_map(|(c, _)| results.iter().find(|r| &r.cell == c).cloned())
        .collect())
}
