//! `neuroscreen-train fit` configuration: a TOML file whose every field has a
//! default, plus command-line overrides applied on top.

use crate::data::augment::Augmentation;
use crate::data::labels::{tumour_types, type_of, LABELS_FILE};
use crate::data::source::DataSource;
use crate::data::split::SplitFractions;
use crate::losses::SegLoss;
use crate::nets::Architecture;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Optimiser {
    Adam,
    AdamW,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    Constant,
    /// Cosine decay from `lr` to `lr * floor` over the configured epochs.
    Cosine {
        floor: f64,
    },
    /// Multiply by `gamma` every `every` epochs.
    Step {
        every: u32,
        gamma: f64,
    },
}

impl Schedule {
    pub fn lr(&self, base: f64, epoch: u32, epochs: u32) -> f64 {
        match *self {
            Schedule::Constant => base,
            Schedule::Cosine { floor } => {
                let t = (epoch.saturating_sub(1)) as f64 / epochs.max(1) as f64;
                base * (floor + (1.0 - floor) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
            }
            Schedule::Step { every, gamma } => {
                base * gamma.powi((epoch.saturating_sub(1) / every.max(1)) as i32)
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceChoice {
    Auto,
    Cpu,
    Cuda,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FitConfig {
    /// Root of an LGG-layout data set (real Kaggle data or phantoms); used
    /// when `sources` is empty.
    pub data: PathBuf,
    /// Several LGG-layout roots with a name and a sampling weight each
    /// (`[[sources]] name = "lgg" path = "..." weight = 2`); each is split
    /// by patient on its own.
    pub sources: Vec<DataSource>,
    /// Run folder: checkpoints, metrics.jsonl, config.
    pub out: PathBuf,
    pub model: Architecture,
    /// Segmenter loss; filters always use cross-entropy.
    pub loss: SegLoss,
    /// Segmenters learn from tumour slices only, as in the seed: the filter
    /// sends the appliance's segmenter only slices it flags, and with ~65 %
    /// empty slices a per-slice Tversky loss otherwise settles on "predict
    /// nothing". Validation (early stopping) uses the same population.
    pub tumour_slices_only: bool,
    /// Segmenters trained on every slice: each tumour slice is drawn this
    /// many times per epoch on average, each clear slice once (times its
    /// source's weight).
    pub tumour_oversample: f64,
    /// Tumour slices with a small mask are drawn more often (for a segmenter
    /// on every slice, on top of `tumour_oversample`), because the appliance
    /// misses small lesions first (the ends of a tumour's volume;
    /// docs/EVALUATION.md). Unset: no extra.
    #[serde(default)]
    pub small_tumour: Option<SmallTumour>,
    pub epochs: u32,
    /// Seed paper: 16.
    pub batch: usize,
    /// Side of the square model input.
    pub input_size: u32,
    pub optimiser: Optimiser,
    pub lr: f64,
    pub weight_decay: f64,
    pub schedule: Schedule,
    /// Early stopping on validation loss (seed: 30 epochs).
    pub patience: u32,
    /// What makes an epoch the best one (kept as `best.safetensors`, and
    /// what `patience` waits on): the validation loss, or for segmenters
    /// the validation Dice over tumour slices.
    #[serde(default)]
    pub select: Select,
    pub seed: u64,
    pub split: SplitFractions,
    pub augment: Option<Augmentation>,
    /// Threads that assemble augmented batches; 0 picks for the device
    /// (see [`FitConfig::loader_workers`]).
    pub workers: usize,
    pub device: DeviceChoice,
    /// Use at most this many slices (quick runs, tests).
    pub max_slices: Option<usize>,
    /// A safetensors file to start from (e.g. ImageNet ResNet-50 trunk);
    /// variables it lacks keep their fresh initialisation. A segmenter of
    /// the same depth but smaller widths is widened into this one, computing
    /// what it did (`nets::widen`).
    pub init: Option<PathBuf>,
    /// bfloat16 autocast for the forward pass; unset: on CUDA only (on CPUs
    /// without bf16 units it is slower, not faster).
    pub bf16: Option<bool>,
    /// Channels-last (NHWC) weights and batches; unset: on CUDA only, where
    /// cuDNN's tensor-core kernels want it.
    pub channels_last: Option<bool>,
    /// Filters: weight of the mask-head loss (`ResNetFilter::mask_head`)
    /// beside the cross-entropy; 0 trains from the slice labels alone.
    /// Runs saved before the head existed read as 0.
    #[serde(default)]
    pub filter_mask_weight: f64,
}

/// See [`FitConfig::small_tumour`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmallTumour {
    /// A tumour slice whose mask at the model's input has fewer pixels than
    /// this (a mask lost to the resize counts too) is small.
    pub below_px: usize,
    /// Factor on a small tumour slice's draws, over `tumour_oversample`.
    pub oversample: f64,
}

impl SmallTumour {
    fn holds(&self, mask: &[u8]) -> bool {
        mask.iter().filter(|&&m| m != 0).count() < self.below_px
    }
}

/// See [`FitConfig::select`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Select {
    #[default]
    ValLoss,
    ValDice,
}

impl Select {
    /// The epoch's figure early stopping minimises (lower is better).
    pub fn score(self, val_loss: f64, val_dice: Option<f64>) -> f64 {
        match self {
            Select::ValLoss => val_loss,
            Select::ValDice => val_dice.map_or(f64::NAN, |d| -d),
        }
    }

    /// The best score in the units people read.
    pub fn describe(self, best: f64) -> String {
        match self {
            Select::ValLoss => format!("best val loss {best:.4}"),
            Select::ValDice => format!("best val Dice {:.4}", -best),
        }
    }
}

impl Default for FitConfig {
    fn default() -> Self {
        Self {
            data: PathBuf::from("data/phantoms"),
            sources: Vec::new(),
            out: PathBuf::from("runs/resunet"),
            model: Architecture::default_resunet(),
            loss: SegLoss::default(),
            tumour_slices_only: true,
            tumour_oversample: 1.0,
            small_tumour: None,
            epochs: 100,
            batch: 16,
            input_size: 256,
            optimiser: Optimiser::Adam,
            lr: 1e-3,
            weight_decay: 1e-4,
            schedule: Schedule::Cosine { floor: 0.01 },
            patience: 30,
            select: Select::ValLoss,
            seed: 0,
            split: SplitFractions::default(),
            augment: Some(Augmentation::default()),
            workers: 0,
            device: DeviceChoice::Auto,
            max_slices: None,
            init: None,
            bf16: None,
            channels_last: None,
            filter_mask_weight: 0.0,
        }
    }
}

impl FitConfig {
    /// Loader threads for a run on `device`: `workers` when set; else on a
    /// GPU every core but the one driving it (the loader assembles ~570
    /// augmented 256-px slices a second per core, and a GPU trains several
    /// thousand), on a CPU two, which leaves the cores to libtorch.
    pub fn loader_workers(&self, device: tch::Device) -> usize {
        if self.workers > 0 {
            return self.workers;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if device.is_cuda() {
            cores.saturating_sub(1).clamp(1, 16)
        } else {
            cores.min(2)
        }
    }

    /// The data roots: `sources`, or `data` alone with weight 1.
    pub fn data_sources(&self) -> Vec<DataSource> {
        if self.sources.is_empty() {
            vec![DataSource::single(&self.data)]
        } else {
            self.sources.clone()
        }
    }

    /// What the data is, for reports: `name=path` per source.
    pub fn data_label(&self) -> String {
        self.data_sources()
            .iter()
            .map(|s| format!("{}={}", s.name, s.path.display()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Per source, the tumour type of each patient (its `labels.csv`) when
    /// the source weighs types (`type_weights`), else empty. A source that
    /// weighs types without a `labels.csv`, or names a type the file does
    /// not have (a typo would silently weigh nothing), is an error.
    pub fn source_types(&self) -> Result<Vec<BTreeMap<String, String>>> {
        self.data_sources()
            .iter()
            .map(|s| {
                if s.type_weights.is_empty() {
                    return Ok(BTreeMap::new());
                }
                let types = tumour_types(&s.path)?.ok_or_else(|| Error::Data {
                    path: s.path.join(LABELS_FILE),
                    reason: format!(
                        "source {} weighs tumour types but has no {LABELS_FILE}",
                        s.name
                    ),
                })?;
                if let Some(kind) = s
                    .type_weights
                    .keys()
                    .find(|k| !types.values().any(|t| t == *k))
                {
                    return Err(Error::Data {
                        path: s.path.join(LABELS_FILE),
                        reason: format!("no patient of tumour type {kind:?} (source {})", s.name),
                    });
                }
                Ok(types)
            })
            .collect()
    }

    /// How often slice `i` of `part` is drawn per epoch; `types` from
    /// [`source_types`](Self::source_types).
    pub fn slice_weights(
        &self,
        part: &super::dataset::Prepared,
        types: &[BTreeMap<String, String>],
    ) -> Vec<f64> {
        let sources = self.data_sources();
        let oversample = self.model.is_segmenter() && !self.tumour_slices_only;
        (0..part.len())
            .map(|i| {
                let k = usize::from(part.source(i));
                let w = sources.get(k).map_or(1.0, |s| {
                    let factor = part
                        .patients
                        .get(i)
                        .zip(types.get(k))
                        .and_then(|(patient, types)| type_of(types, &s.name, patient))
                        .and_then(|kind| s.type_weights.get(kind))
                        .copied()
                        .unwrap_or(1.0);
                    s.weight * factor
                });
                let small = self
                    .small_tumour
                    .filter(|s| part.labels[i] && s.holds(part.mask(i)))
                    .map_or(1.0, |s| s.oversample);
                if oversample && part.labels[i] {
                    w * self.tumour_oversample * small
                } else {
                    w * small
                }
            })
            .collect()
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Data {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let cfg: FitConfig = toml::from_str(&text).map_err(|e| Error::Data {
            path: path.to_path_buf(),
            reason: format!("invalid config: {e}"),
        })?;
        cfg.validate().map_err(|source| Error::Config {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(cfg)
    }

    /// Names the key at fault.
    pub fn validate(&self) -> std::result::Result<(), ConfigError> {
        if self.epochs == 0 {
            return Err(ConfigError::NoEpochs);
        }
        if self.batch == 0 {
            return Err(ConfigError::NoBatch);
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(ConfigError::Lr(self.lr));
        }
        if let Architecture::ResUnet { widths } | Architecture::Unet { widths } = &self.model {
            if widths.is_empty() || widths.iter().any(|&w| w <= 0) {
                return Err(ConfigError::Widths);
            }
            let step = 1u32 << (widths.len() - 1);
            if !self.input_size.is_multiple_of(step) {
                return Err(ConfigError::InputSizeNotDivisible {
                    input_size: self.input_size,
                    step,
                    levels: widths.len(),
                });
            }
        }
        if self.input_size < 32 {
            return Err(ConfigError::InputSizeTooSmall);
        }
        if self.select == Select::ValDice && !self.model.is_segmenter() {
            return Err(ConfigError::SelectDiceNeedsSegmenter);
        }
        if !self.sources.is_empty() {
            crate::data::source::check_sources(&self.sources)?;
        }
        if !(self.tumour_oversample > 0.0 && self.tumour_oversample.is_finite()) {
            return Err(ConfigError::TumourOversample(self.tumour_oversample));
        }
        if let Some(s) = self.small_tumour {
            if !(s.oversample > 0.0 && s.oversample.is_finite()) {
                return Err(ConfigError::SmallTumourOversample(s.oversample));
            }
        }
        if self.split.test + self.split.val >= 1.0 {
            return Err(ConfigError::NoTrainingPart);
        }
        Ok(())
    }
}

/// What [`FitConfig::validate`] refuses; each message names the key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("epochs must be at least 1")]
    NoEpochs,
    #[error("batch must be at least 1")]
    NoBatch,
    #[error("lr must be positive, got {0}")]
    Lr(f64),
    #[error("model.widths must be positive and not empty")]
    Widths,
    /// A U-Net of `levels` encoder levels halves the input `levels - 1`
    /// times.
    #[error("input_size {input_size} must be divisible by {step} for {levels} encoder levels")]
    InputSizeNotDivisible {
        input_size: u32,
        step: u32,
        levels: usize,
    },
    #[error("input_size must be at least 32")]
    InputSizeTooSmall,
    #[error(transparent)]
    Sources(#[from] crate::data::source::SourceError),
    #[error("tumour_oversample must be positive, got {0}")]
    TumourOversample(f64),
    #[error("small_tumour.oversample must be positive, got {0}")]
    SmallTumourOversample(f64),
    #[error("split.test + split.val must leave a training part")]
    NoTrainingPart,
    #[error("select = \"val_dice\" needs a segmenter (a filter has no Dice)")]
    SelectDiceNeedsSegmenter,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_toml_fills_defaults_and_errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fit.toml");
        std::fs::write(
            &p,
            "epochs = 5\nbatch = 4\n[model]\nkind = \"unet\"\nwidths = [8, 16]\n[loss]\nkind = \"focal_tversky\"\nalpha = 0.7\nbeta = 0.3\ngamma = 0.75\n",
        )
        .unwrap();
        let c = FitConfig::load(&p).unwrap();
        assert_eq!((c.epochs, c.batch, c.patience), (5, 4, 30));
        assert_eq!(
            c.model,
            Architecture::Unet {
                widths: vec![8, 16]
            }
        );
        std::fs::write(&p, "epochs = 5\nbatchsize = 4\n").unwrap();
        let msg = FitConfig::load(&p).unwrap_err().to_string();
        assert!(
            msg.contains("fit.toml") && msg.contains("batchsize"),
            "{msg}"
        );
        std::fs::write(&p, "input_size = 100\n").unwrap();
        let msg = FitConfig::load(&p).unwrap_err().to_string();
        assert!(msg.contains("input_size 100"), "{msg}");
    }

    #[test]
    fn a_refused_value_is_a_variant_with_its_figures() {
        let c = FitConfig {
            input_size: 100,
            model: Architecture::Unet {
                widths: vec![8, 16, 32, 64],
            },
            ..FitConfig::default()
        };
        assert_eq!(
            c.validate(),
            Err(ConfigError::InputSizeNotDivisible {
                input_size: 100,
                step: 8,
                levels: 4
            })
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fit.toml");
        std::fs::write(&p, "lr = -1.0\n").unwrap();
        let e = FitConfig::load(&p).unwrap_err();
        assert!(
            matches!(&e, Error::Config { path, source: ConfigError::Lr(lr) } if path == &p && *lr == -1.0),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            format!("{}: lr must be positive, got -1", p.display())
        );
    }

    #[test]
    fn loader_workers_follow_the_request_or_the_device() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let auto = FitConfig::default();
        assert_eq!(auto.workers, 0);
        assert_eq!(auto.loader_workers(tch::Device::Cpu), cores.min(2));
        assert_eq!(
            auto.loader_workers(tch::Device::Cuda(0)),
            cores.saturating_sub(1).clamp(1, 16)
        );
        let set = FitConfig {
            workers: 5,
            ..FitConfig::default()
        };
        assert_eq!(set.loader_workers(tch::Device::Cuda(0)), 5);
        assert_eq!(set.loader_workers(tch::Device::Cpu), 5);
    }

    #[test]
    fn sources_from_toml_and_their_weights() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fit.toml");
        std::fs::write(
            &p,
            "tumour_slices_only = false\ntumour_oversample = 3.0\n[[sources]]\nname = \"lgg\"\npath = \"/d/lgg\"\nweight = 2.0\n[[sources]]\nname = \"figshare\"\npath = \"/d/fig\"\n",
        )
        .unwrap();
        let c = FitConfig::load(&p).unwrap();
        let s = c.data_sources();
        assert_eq!(s.len(), 2);
        assert_eq!((s[1].name.as_str(), s[1].weight), ("figshare", 1.0));
        assert_eq!(c.data_label(), "lgg=/d/lgg, figshare=/d/fig");
        let part = super::super::dataset::Prepared {
            size: 4,
            labels: vec![true, false, true],
            sources: vec![0, 0, 1],
            ..Default::default()
        };
        assert_eq!(c.slice_weights(&part, &[]), vec![6.0, 2.0, 3.0]);
        // A tumour type's factor on its source's weight.
        let mut typed = c.clone();
        typed.sources[1].type_weights.insert("glioma".into(), 2.5);
        let part = super::super::dataset::Prepared {
            size: 4,
            labels: vec![true, true, true],
            sources: vec![1, 1, 1],
            patients: vec![
                "figshare/G".into(),
                "figshare/M".into(),
                "figshare/X".into(),
            ],
            ..Default::default()
        };
        let types = vec![
            BTreeMap::new(),
            BTreeMap::from([
                ("G".to_string(), "glioma".to_string()),
                ("M".to_string(), "meningioma".to_string()),
            ]),
        ];
        assert_eq!(typed.slice_weights(&part, &types), vec![7.5, 3.0, 3.0]);
        std::fs::write(
            &p,
            "[[sources]]\nname = \"a\"\npath = \"/x\"\n[[sources]]\nname = \"a\"\npath = \"/y\"\n",
        )
        .unwrap();
        let msg = FitConfig::load(&p).unwrap_err().to_string();
        assert!(msg.contains("named \"a\""), "{msg}");
        // Without sources, `data` is the one source.
        let d = FitConfig::default();
        assert_eq!(d.data_sources()[0].path, d.data);
    }

    #[test]
    fn small_tumour_slices_are_drawn_more_often_from_toml() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fit.toml");
        std::fs::write(
            &p,
            "tumour_slices_only = false\ntumour_oversample = 2.0\n\
             [small_tumour]\nbelow_px = 3\noversample = 4.0\n",
        )
        .unwrap();
        let c = FitConfig::load(&p).unwrap();
        // 2x2 masks: a tumour slice of 2 px (small), one of 3 px (not),
        // one whose mask the resize lost (small), a clear slice (never).
        let part = super::super::dataset::Prepared {
            size: 2,
            masks: [[1, 1, 0, 0], [1, 1, 1, 0], [0; 4], [0; 4]].concat(),
            labels: vec![true, true, true, false],
            sources: vec![0; 4],
            ..Default::default()
        };
        assert_eq!(c.slice_weights(&part, &[]), vec![8.0, 2.0, 8.0, 1.0]);
        // Trained on tumour slices only (and filters), only small ones are
        // drawn more often.
        let only = FitConfig {
            tumour_slices_only: true,
            ..c.clone()
        };
        assert_eq!(only.slice_weights(&part, &[]), vec![4.0, 1.0, 4.0, 1.0]);
        std::fs::write(&p, "[small_tumour]\nbelow_px = 3\noversample = 0.0\n").unwrap();
        let msg = FitConfig::load(&p).unwrap_err().to_string();
        assert!(msg.contains("small_tumour.oversample"), "{msg}");
    }

    #[test]
    fn schedules() {
        let c = Schedule::Cosine { floor: 0.0 };
        assert!((c.lr(1.0, 1, 10) - 1.0).abs() < 1e-12);
        assert!(c.lr(1.0, 6, 10) < 0.6 && c.lr(1.0, 10, 10) < 0.05);
        let s = Schedule::Step {
            every: 2,
            gamma: 0.5,
        };
        assert_eq!(
            [1, 2, 3, 5].map(|e| s.lr(1.0, e, 10)),
            [1.0, 1.0, 0.5, 0.25]
        );
    }
    #[test]
    fn type_weights_need_a_labels_file_that_names_the_type() {
        let tmp = tempfile::tempdir().unwrap();
        let mut source = DataSource::parse(&format!("fig={}", tmp.path().display())).unwrap();
        source.type_weights.insert("glioma".into(), 2.0);
        let cfg = FitConfig {
            sources: vec![source, DataSource::parse("lgg=/nowhere").unwrap()],
            ..Default::default()
        };
        let e = cfg.source_types().unwrap_err().to_string();
        assert!(
            e.contains("labels.csv") && e.contains("no labels.csv"),
            "{e}"
        );
        std::fs::write(
            tmp.path().join("labels.csv"),
            "slice,patient,tumour_type\nP_1/a.jpg,1,meningioma\n",
        )
        .unwrap();
        let e = cfg.source_types().unwrap_err().to_string();
        assert!(e.contains("no patient of tumour type \"glioma\""), "{e}");
        std::fs::write(
            tmp.path().join("labels.csv"),
            "slice,patient,tumour_type\nP_1/a.jpg,1,meningioma\nP_2/b.jpg,2,glioma\n",
        )
        .unwrap();
        let types = cfg.source_types().unwrap();
        assert_eq!(types[0]["P_2"], "glioma");
        assert!(
            types[1].is_empty(),
            "a source without type weights reads nothing"
        );
    }
    #[test]
    fn selection_by_dice_is_for_segmenters_and_reads_from_toml() {
        assert_eq!(Select::ValLoss.score(0.4, Some(0.7)), 0.4);
        assert_eq!(Select::ValDice.score(0.4, Some(0.7)), -0.7);
        assert!(Select::ValDice.score(0.4, None).is_nan());
        assert_eq!(Select::ValDice.describe(-0.7), "best val Dice 0.7000");
        let filter = FitConfig {
            select: Select::ValDice,
            model: Architecture::Resnet18Filter {
                dropout: 0.3,
                width: 16,
            },
            ..Default::default()
        };
        assert!(!filter.model.is_segmenter());
        assert_eq!(
            filter.validate(),
            Err(ConfigError::SelectDiceNeedsSegmenter)
        );
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("c.toml");
        std::fs::write(
            &p,
            "select = \"val_dice\"\n[model]\nkind = \"res_unet\"\nwidths = [4, 8]\n",
        )
        .unwrap();
        assert_eq!(FitConfig::load(&p).unwrap().select, Select::ValDice);
    }
}
