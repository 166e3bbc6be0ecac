//! Checkpoints: weights in safetensors (`best.safetensors`,
//! `last.safetensors`), Adam's moments beside the last ones
//! (`optimiser.safetensors`) and the run state in `state.json`, all replaced
//! atomically so a crash mid-save leaves the previous checkpoint intact.

use super::early_stop::EarlyStopping;
use super::fit::EpochRecord;
use super::FitConfig;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::nn::VarStore;

pub const BEST: &str = "best.safetensors";
pub const LAST: &str = "last.safetensors";
pub const STATE: &str = "state.json";
/// Adam's moments at the last checkpoint, so a resumed run continues it.
pub const OPTIMISER: &str = "optimiser.safetensors";

/// Everything needed to resume a run or rebuild its network for export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub config: FitConfig,
    /// Last completed epoch.
    pub epoch: u32,
    pub early: EarlyStopping,
    pub history: Vec<EpochRecord>,
    pub parameters: i64,
}

impl RunState {
    pub fn load(run: &Path) -> Result<Self> {
        let path = run.join(STATE);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::Data {
            path,
            reason: format!("invalid run state: {e}"),
        })
    }

    pub fn save(&self, run: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).expect("state serialises");
        write_atomic(&run.join(STATE), json.as_bytes())
    }
}

/// Writes bytes to a temp file beside `path`, fsyncs, renames over it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = tmp_beside(path);
    let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

fn tmp_beside(path: &Path) -> PathBuf {
    // Keep the extension last: VarStore::save picks safetensors by it.
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    path.with_file_name(format!(".tmp-{name}"))
}

pub fn save_weights(vs: &VarStore, path: &Path) -> Result<()> {
    // safetensors stores row-major data; channels-last variables (CUDA
    // training) are written as contiguous NCHW copies.
    let named: Vec<(String, tch::Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.contiguous()))
        .collect();
    write_tensors(&named, path, "weights")
}

/// Writes named tensors as safetensors beside `path`, fsyncs, renames over
/// it; `what` names the content in errors.
pub fn write_tensors(named: &[(String, tch::Tensor)], path: &Path, what: &str) -> Result<()> {
    let tmp = tmp_beside(path);
    tch::Tensor::write_safetensors(named, &tmp).map_err(|e| Error::Data {
        path: tmp.clone(),
        reason: format!("cannot save {what}: {e}"),
    })?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

pub fn read_tensors(path: &Path, what: &str) -> Result<Vec<(String, tch::Tensor)>> {
    tch::Tensor::read_safetensors(path).map_err(|e| Error::Data {
        path: path.to_path_buf(),
        reason: format!("cannot load {what}: {e}"),
    })
}

pub fn load_weights(vs: &mut VarStore, path: &Path) -> Result<()> {
    vs.load(path).map_err(|e| Error::Data {
        path: path.to_path_buf(),
        reason: format!("cannot load weights: {e}"),
    })
}

/// A finished run rebuilt for inference: its state and its best weights.
pub struct TrainedRun {
    pub state: RunState,
    pub vs: VarStore,
    pub net: crate::nets::Net,
}

/// Loads `run`'s state and rebuilds its network from `best.safetensors`.
pub fn load_best(run: &Path, device: tch::Device) -> Result<TrainedRun> {
    let state = RunState::load(run)?;
    let (mut vs, net) = super::fit::build(&state.config, device);
    load_weights(&mut vs, &run.join(BEST))?;
    Ok(TrainedRun { state, vs, net })
}

/// The training settings of `run`: a run folder's `state.json`, or the
/// config TOML it was started from (`runs/NAME.toml`). Scoring a run's
/// held-out patients needs only its sources, seed and split, and a clean
/// clone has the committed TOML but not the run folder.
pub fn run_config(run: &Path) -> Result<FitConfig> {
    if run.is_file() {
        FitConfig::load(run)
    } else {
        RunState::load(run).map(|s| s.config)
    }
}

/// The run's data split again, exactly as `fit` saw it (same seed, size, cap).
pub fn load_run_data(cfg: &FitConfig) -> Result<super::dataset::DataSplit> {
    super::dataset::load_sources(
        &cfg.data_sources(),
        cfg.input_size,
        cfg.split,
        cfg.seed,
        cfg.max_slices,
        |_, _| {},
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_config_reads_a_run_folder_or_its_toml_and_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let toml = dir.path().join("seg.toml");
        std::fs::write(
            &toml,
            "epochs = 3\nseed = 7\n[split]\ntest = 0.25\nval = 0.1\n",
        )
        .unwrap();
        let from_toml = run_config(&toml).unwrap();
        assert_eq!((from_toml.epochs, from_toml.seed), (3, 7));
        assert_eq!(from_toml.split.test, 0.25);

        let run = dir.path().join("seg");
        std::fs::create_dir(&run).unwrap();
        let state = RunState {
            config: from_toml.clone(),
            epoch: 2,
            early: EarlyStopping::new(from_toml.patience),
            history: Vec::new(),
            parameters: 1,
        };
        state.save(&run).unwrap();
        assert_eq!(run_config(&run).unwrap(), from_toml);

        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let msg = run_config(&empty).unwrap_err().to_string();
        assert!(msg.contains("state.json"), "{msg}");
    }
}
