//! `fit`: a TOML config, then the command line's overrides on top.

use crate::args::{DeviceArg, LossArg, ModelArg};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use trainer::data::source::DataSource;
use trainer::nets::Architecture;
use trainer::train::checkpoint::RunState;
use trainer::train::config::{DeviceChoice, Select};
use trainer::train::dataset::{load_sources, DataSplit};
use trainer::train::{fit, FitConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SelectArg {
    ValLoss,
    ValDice,
}

#[derive(clap::Args)]
pub struct FitArgs {
    /// TOML config; every field has a default (see docs/TRAINING.md)
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data root in the LGG layout: DIR, or NAME=DIR[:WEIGHT], repeated for
    /// several sources (each split by patient; WEIGHT: draws per slice and
    /// epoch, default 1), e.g. --data lgg=DIR:2 --data figshare=DIR:1
    #[arg(long, value_parser = DataSource::parse)]
    data: Vec<DataSource>,
    /// Run folder for checkpoints and logs
    #[arg(long)]
    out: Option<PathBuf>,
    /// resunet, unet, resnet50, resnet18
    #[arg(long)]
    model: Option<ModelArg>,
    /// Encoder widths for resunet / unet, e.g. 16,32,64,128,256
    #[arg(long, value_delimiter = ',')]
    widths: Option<Vec<i64>>,
    /// ResNet-18 filter: channels of its first stage, doubled per stage (64
    /// = torchvision's; 16 or 32 for a filter cheap enough for a board)
    #[arg(long)]
    filter_width: Option<i64>,
    /// tversky, focal-tversky, dice, bce, bce-dice
    #[arg(long)]
    loss: Option<LossArg>,
    #[arg(long)]
    epochs: Option<u32>,
    #[arg(long)]
    batch: Option<usize>,
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long)]
    patience: Option<u32>,
    /// What makes an epoch the best (and what --patience waits on):
    /// val-loss, or val-dice (segmenters)
    #[arg(long, value_enum)]
    select: Option<SelectArg>,
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long)]
    input_size: Option<u32>,
    /// auto, cpu, cuda
    #[arg(long)]
    device: Option<DeviceArg>,
    /// Use at most this many slices (whole patients)
    #[arg(long)]
    max_slices: Option<usize>,
    /// Initialise from a safetensors file (e.g. an ImageNet ResNet-50 trunk with torchvision names)
    #[arg(long)]
    init: Option<PathBuf>,
    /// bf16 autocast (default: on with CUDA, off on CPU)
    #[arg(long)]
    bf16: Option<bool>,
    /// Channels-last weights and batches (default: on with CUDA, off on CPU)
    #[arg(long)]
    channels_last: Option<bool>,
    /// Threads assembling augmented batches (default: every core but one on
    /// CUDA, two on CPU)
    #[arg(long)]
    workers: Option<usize>,
    /// Filters: weight of the training-only mask head's loss beside the
    /// cross-entropy (0 = slice labels only)
    #[arg(long)]
    mask_weight: Option<f64>,
    /// libtorch's threads for the maths [default: libtorch's own choice].
    /// On a small shared CPU, 1 avoids oversubscription (docs/TRAINING.md)
    #[arg(long)]
    threads: Option<i32>,
    /// Segmenters: train on every slice, clear ones too (the appliance's
    /// segmenter sees every slice the filter passes); pair with
    /// --loss all-slices
    #[arg(long)]
    all_slices: bool,
    /// Segmenters on every slice: draws per tumour slice and epoch (clear
    /// slices: 1)
    #[arg(long)]
    tumour_oversample: Option<f64>,
    /// Continue the run in --out from its last checkpoint
    #[arg(long)]
    resume: bool,
}

impl FitArgs {
    /// A lone `--data` given as NAME=DIR keeps its name for the reports.
    fn data_named(&self) -> bool {
        self.data
            .first()
            .is_some_and(|d| Some(d.name.as_str()) != d.path.file_name().and_then(|n| n.to_str()))
    }

    fn into_config(self) -> Result<(FitConfig, bool)> {
        let mut c = match (&self.config, self.resume) {
            (Some(p), _) => FitConfig::load(p)?,
            // A resumed run goes on with its own configuration (sources,
            // model, loss, split); flags given with --resume still win.
            (None, true) => {
                let out = self.out.clone().unwrap_or_else(|| FitConfig::default().out);
                RunState::load(&out)
                    .with_context(|| format!("resuming {}", out.display()))?
                    .config
            }
            (None, false) => FitConfig::default(),
        };
        let widths = self.widths.clone();
        let current_widths = match &c.model {
            Architecture::ResUnet { widths } | Architecture::Unet { widths } => widths.clone(),
            _ => vec![16, 32, 64, 128, 256],
        };
        if let Some(m) = self.model {
            let w = widths.clone().unwrap_or(current_widths.clone());
            c.model = match m {
                ModelArg::Resunet => Architecture::ResUnet { widths: w },
                ModelArg::Unet => Architecture::Unet { widths: w },
                ModelArg::Resnet50 => Architecture::Resnet50Filter { dropout: 0.3 },
                ModelArg::Resnet18 => Architecture::resnet18(0.3),
            };
        } else if let Some(w) = widths {
            c.model = match c.model {
                Architecture::Unet { .. } => Architecture::Unet { widths: w },
                _ => Architecture::ResUnet { widths: w },
            };
        }
        if let Some(w) = self.mask_weight {
            anyhow::ensure!(w >= 0.0 && w.is_finite(), "--mask-weight must be 0 or more");
            c.filter_mask_weight = w;
        }
        if let Some(w) = self.filter_width {
            match &mut c.model {
                Architecture::Resnet18Filter { width, .. } => *width = w,
                other => anyhow::bail!(
                    "--filter-width sets the ResNet-18 filter's width; the model is {}",
                    other.name()
                ),
            }
        }
        if let Some(l) = self.loss {
            c.loss = l.loss();
        }
        if let Some(d) = self.device {
            c.device = match d {
                DeviceArg::Auto => DeviceChoice::Auto,
                DeviceArg::Cpu => DeviceChoice::Cpu,
                DeviceArg::Cuda => DeviceChoice::Cuda,
            };
        }
        match self.data.as_slice() {
            [] => {}
            [one] if one.weight == 1.0 && !self.data_named() => {
                c.data = one.path.clone();
                c.sources.clear();
            }
            many => c.sources = many.to_vec(),
        }
        if self.all_slices {
            c.tumour_slices_only = false;
        }
        c.tumour_oversample = self.tumour_oversample.unwrap_or(c.tumour_oversample);
        c.out = self.out.unwrap_or(c.out);
        c.epochs = self.epochs.unwrap_or(c.epochs);
        c.batch = self.batch.unwrap_or(c.batch);
        c.bf16 = self.bf16.or(c.bf16);
        c.channels_last = self.channels_last.or(c.channels_last);
        c.workers = self.workers.unwrap_or(c.workers);
        c.lr = self.lr.unwrap_or(c.lr);
        c.patience = self.patience.unwrap_or(c.patience);
        if let Some(s) = self.select {
            c.select = match s {
                SelectArg::ValLoss => Select::ValLoss,
                SelectArg::ValDice => Select::ValDice,
            };
        }
        c.seed = self.seed.unwrap_or(c.seed);
        c.input_size = self.input_size.unwrap_or(c.input_size);
        c.max_slices = self.max_slices.or(c.max_slices);
        c.init = self.init.or(c.init);
        c.validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        Ok((c, self.resume))
    }
}

/// The split `cfg` describes, loaded with a progress bar.
pub fn load_data(cfg: &FitConfig) -> Result<DataSplit> {
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("loading {bar:30} {pos}/{len} slices")
            .expect("valid template"),
    );
    let data = load_sources(
        &cfg.data_sources(),
        cfg.input_size,
        cfg.split,
        cfg.seed,
        cfg.max_slices,
        |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )
    .with_context(|| format!("loading {}", cfg.data_label()))?;
    bar.finish_and_clear();
    Ok(data)
}

pub fn run(args: FitArgs) -> Result<()> {
    if let Some(n) = args.threads {
        anyhow::ensure!(n > 0, "--threads must be at least 1");
        tch::set_num_threads(n);
    }
    let (cfg, resume) = args.into_config()?;
    let data = load_data(&cfg)?;
    for p in &data.problems {
        eprintln!("skipped {p}");
    }
    for r in &data.source_reports {
        println!("{r}");
    }
    println!(
        "{}: {} train / {} val / {} test slices ({} / {} / {} patients), {} skipped files",
        cfg.model.label(),
        data.train.len(),
        data.val.len(),
        data.test.len(),
        data.split.train.len(),
        data.split.val.len(),
        data.split.test.len(),
        data.problems.len()
    );
    let outcome = fit(&cfg, &data, resume, true)?;
    println!(
        "{} epochs on {}; {} at epoch {}{}; checkpoints in {}",
        outcome.epochs_run,
        outcome.device,
        cfg.select.describe(outcome.best_score),
        outcome.best_epoch,
        if outcome.stopped_early {
            " (stopped early)"
        } else {
            ""
        },
        cfg.out.display()
    );
    Ok(())
}
