//! `neuroscreen-train`: phantoms, training, evaluation and export.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use trainer::data::phantom::render::{CohortSettings, Contrast};
use trainer::data::phantom::{self, FormChoice};
use trainer::export::bench;
use trainer::export::calibrate::RangeMethod;
use trainer::export::model_card;
use trainer::export::npy;
use trainer::export::quantize::QuantSettings;
use trainer::export::ship::{self, ExportOptions};
use trainer::losses::SegLoss;
use trainer::nets::Architecture;
use trainer::train::config::DeviceChoice;
use trainer::train::dataset::load_split;
use trainer::train::{fit, FitConfig};

#[derive(Parser)]
#[command(
    name = "neuroscreen-train",
    version,
    about = "Train, evaluate and export the neuroscreen models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum ContrastArg {
    /// RGB = pre-contrast T1, FLAIR, post-contrast T1 (the LGG form)
    Stacked,
    T1,
    T1c,
    T2,
    Flair,
    /// Half the patients stacked, the rest one single contrast each
    Mixed,
}

impl From<ContrastArg> for FormChoice {
    fn from(c: ContrastArg) -> Self {
        match c {
            ContrastArg::Stacked => FormChoice::Stacked,
            ContrastArg::T1 => FormChoice::Single(Contrast::T1),
            ContrastArg::T1c => FormChoice::Single(Contrast::T1c),
            ContrastArg::T2 => FormChoice::Single(Contrast::T2),
            ContrastArg::Flair => FormChoice::Single(Contrast::Flair),
            ContrastArg::Mixed => FormChoice::Mixed,
        }
    }
}

/// `fit` options: a TOML config, then these overrides on top.
#[derive(clap::Args)]
struct FitArgs {
    /// TOML config; every field has a default (see README)
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data root in the LGG layout
    #[arg(long)]
    data: Option<PathBuf>,
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
    /// Threads assembling augmented batches
    #[arg(long)]
    workers: Option<usize>,
    /// Filters: weight of the training-only mask head's loss beside the
    /// cross-entropy (0 = slice labels only)
    #[arg(long)]
    mask_weight: Option<f64>,
    /// libtorch's threads for the maths [default: libtorch's own choice].
    /// On a small shared CPU, 1 avoids oversubscription (README, Training)
    #[arg(long)]
    threads: Option<i32>,
    /// Continue the run in --out from its last checkpoint
    #[arg(long)]
    resume: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModelArg {
    Resunet,
    Unet,
    Resnet50,
    Resnet18,
}

#[derive(Clone, Copy, ValueEnum)]
enum LossArg {
    Tversky,
    FocalTversky,
    Dice,
    Bce,
    BceDice,
}

impl LossArg {
    /// The seed's settings: alpha 0.7 on false negatives, beta 0.3, gamma 0.75.
    fn loss(self) -> SegLoss {
        match self {
            LossArg::Tversky => SegLoss::Tversky {
                alpha: 0.7,
                beta: 0.3,
            },
            LossArg::FocalTversky => SegLoss::FocalTversky {
                alpha: 0.7,
                beta: 0.3,
                gamma: 0.75,
            },
            LossArg::Dice => SegLoss::Dice,
            LossArg::Bce => SegLoss::Bce,
            LossArg::BceDice => SegLoss::BceDice,
        }
    }

    fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum SegArch {
    Resunet,
    Unet,
}

#[derive(Clone, Copy, ValueEnum)]
enum DeviceArg {
    Auto,
    Cpu,
    Cuda,
}

impl FitArgs {
    fn into_config(self) -> Result<(FitConfig, bool)> {
        let mut c = match &self.config {
            Some(p) => FitConfig::load(p)?,
            None => FitConfig::default(),
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
        c.data = self.data.unwrap_or(c.data);
        c.out = self.out.unwrap_or(c.out);
        c.epochs = self.epochs.unwrap_or(c.epochs);
        c.batch = self.batch.unwrap_or(c.batch);
        c.bf16 = self.bf16.or(c.bf16);
        c.channels_last = self.channels_last.or(c.channels_last);
        c.workers = self.workers.unwrap_or(c.workers);
        c.lr = self.lr.unwrap_or(c.lr);
        c.patience = self.patience.unwrap_or(c.patience);
        c.seed = self.seed.unwrap_or(c.seed);
        c.input_size = self.input_size.unwrap_or(c.input_size);
        c.max_slices = self.max_slices.or(c.max_slices);
        c.init = self.init.or(c.init);
        c.validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        Ok((c, self.resume))
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum CalibrationArg {
    MinMax,
    Percentile,
    /// Per tensor, the shrunk min-max range with the least uint8 error
    Mse,
}

/// Which slices calibrate the int8 ranges and which are scored: shared by
/// `export` and `dump-slices`, so the Python peer sees the same sets.
#[derive(clap::Args)]
struct SliceSelection {
    /// Calibration slices for int8 activation ranges
    #[arg(long, default_value_t = 32)]
    calibration_slices: usize,
    /// Share of calibration slices drawn from clear (tumour-free) training
    /// slices, the rest carry tumour (segmenters; the appliance meets both)
    #[arg(long, default_value_t = 0.5)]
    calibration_clear_share: f64,
    /// Held-out slices scored in f32 and int8 (tract int8 is slow on x86)
    #[arg(long, default_value_t = 40)]
    eval_slices: usize,
    /// Data root, when not where the run's config says
    #[arg(long)]
    data: Option<PathBuf>,
}

impl SliceSelection {
    fn check(&self) -> Result<()> {
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.calibration_clear_share),
            "--calibration-clear-share is a share between 0 and 1"
        );
        Ok(())
    }
}

#[derive(Subcommand)]
enum Command {
    /// Generate phantom patients (synthetic lesions on real anatomy) in the LGG layout
    Phantoms {
        /// Output folder; patients go to OUT/kaggle_3m/
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 110)]
        patients: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Form of the slices
        #[arg(long, value_enum, default_value = "stacked")]
        contrast: ContrastArg,
        /// Mean share of slices carrying tumour (LGG: 0.35)
        #[arg(long, default_value_t = 0.35)]
        tumour_fraction: f64,
        /// Share of patients without any lesion
        #[arg(long, default_value_t = 0.0)]
        clear_patients: f64,
    },
    /// Write a montage PNG: real base slice beside phantoms in every contrast and the mask outline
    Montage {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long, default_value_t = 6)]
        rows: usize,
    },
    /// Write the shipped sample slices (tumour and clear, several forms) with samples.json
    Samples {
        #[arg(long, default_value = "models/samples")]
        out: PathBuf,
        #[arg(long, default_value_t = 2026)]
        seed: u64,
    },
    /// Train a segmenter or filter on an LGG-layout folder (real Kaggle data or phantoms)
    Fit(FitArgs),
    /// Score a run's best checkpoint on its held-out patients; writes report.md with plots
    Eval {
        /// Run folder (from `fit`)
        #[arg(long)]
        run: PathBuf,
        /// Report folder (default: RUN/eval)
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Export trained runs to ONNX (f32 and int8) with manifest and model card
    Export {
        /// Run folder of the segmenter (from `fit`)
        #[arg(long)]
        segmenter: PathBuf,
        /// Run folder of the filter; without it the appliance segments every slice
        #[arg(long)]
        filter: Option<PathBuf>,
        #[arg(long, default_value = "models")]
        out: PathBuf,
        #[command(flatten)]
        slices: SliceSelection,
        /// Activation ranges: min-max, percentile (0.01..99.99) or mse
        #[arg(long, value_enum, default_value = "min-max")]
        calibration: CalibrationArg,
        /// Keep the first convolution in float
        #[arg(long)]
        float_first: bool,
        /// Quantise the last convolution too (default keeps it in float)
        #[arg(long)]
        int8_last: bool,
        /// Where the models were trained, for the provenance
        #[arg(long, default_value = "CPU")]
        trained_on: String,
        /// The filter's threshold keeps at least this share of the tumour
        /// slices of the validation patients (never above P = 0.5)
        #[arg(long, default_value_t = 0.95)]
        filter_sensitivity: f64,
    },
    /// Write the calibration and held-out slices `export` uses as .npy files
    /// (for onnxruntime's quantiser in scripts/ort_quantize.py)
    DumpSlices {
        /// Run folder (from `fit`)
        #[arg(long)]
        run: PathBuf,
        /// Output folder: calibration.npy, eval_images.npy, eval_masks.npy
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        slices: SliceSelection,
    },
    /// Size, tract latency (f32 vs int8) and int8 Dice of a shipped set, with
    /// onnxruntime's static quantiser as a peer (scripts/ort_quantize.py)
    QuantBench {
        /// Folder with manifest.json and the model files
        #[arg(long, default_value = "models")]
        models: PathBuf,
        /// The segmenter's run folder (from `fit`)
        #[arg(long)]
        run: PathBuf,
        /// The filter's run folder, when the set has a filter (without it
        /// the filter is only timed)
        #[arg(long)]
        filter_run: Option<PathBuf>,
        /// Data root of the segmenter's run, when not where its config says
        #[arg(long)]
        data: Option<PathBuf>,
        /// Timed tract runs per file (median reported), after one warm-up
        #[arg(long, default_value_t = 15)]
        runs: usize,
        /// Python with onnxruntime
        #[arg(long, default_value = ".venv/bin/python3")]
        python: PathBuf,
        /// The onnxruntime peer script
        #[arg(long, default_value = "scripts/ort_quantize.py")]
        script: PathBuf,
        /// Skip the onnxruntime peer (sizes and latency only)
        #[arg(long)]
        no_peer: bool,
        /// Scratch folder (dumped slices, onnxruntime's int8 file)
        #[arg(long, default_value = "out/quant-bench")]
        work: PathBuf,
        /// Calibration slices (default: as the manifest records the export)
        #[arg(long)]
        calibration_slices: Option<usize>,
        /// Share of clear calibration slices (default: as the manifest records)
        #[arg(long)]
        calibration_clear_share: Option<f64>,
        /// Held-out slices scored (default: as the manifest records)
        #[arg(long)]
        eval_slices: Option<usize>,
    },
    /// Training and inference images/s of the ResUNet and the ResNet-50
    /// filter, beside the same architectures in PyTorch (Python) in the same
    /// run, as a ratio (a benchmark: the reference file stays outside the repo)
    Speed(SpeedArgs),
    /// The seed's experiment: segmenter architectures x losses x seeds on one
    /// patient-level split, scored per slice, per patient and by lesion size
    /// (filter on vs off with --filter); writes docs/RESULTS.md and its chart
    Experiment(ExperimentArgs),
    /// FLOPs, single-thread tract f32 latency and GFLOP/s of each
    /// architecture (seeded weights) against tract's measured matmul peak,
    /// and whether a filter saves time at a given tumour prevalence
    ArchBench {
        /// Timed runs per model (median reported) after one warm-up
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// Share of slices with tumour (LGG: 0.35)
        #[arg(long, default_value_t = 0.35)]
        prevalence: f64,
        /// Segmenter input side
        #[arg(long, default_value_t = 256)]
        size: i64,
        /// Filter input sides tried for the ResNet-18 filter (ResNet-50 runs at --size)
        #[arg(long, value_delimiter = ',', default_value = "256,128,64")]
        small_filter_sizes: Vec<i64>,
        /// ResNet-18 widths tried at each of those sides (64 = torchvision's)
        #[arg(long, value_delimiter = ',', default_value = "64,16")]
        small_filter_widths: Vec<i64>,
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Report what this build can use: libtorch version, CUDA devices
    Info,
}

#[derive(clap::Args)]
struct ExperimentArgs {
    /// Data root in the LGG layout
    #[arg(long, default_value = "data/phantoms")]
    data: PathBuf,
    /// Generate this many phantom patients (seed 0) into --data first, if it has none
    #[arg(long)]
    phantoms: Option<usize>,
    /// Runs and results.jsonl (an interrupted experiment resumes from it)
    #[arg(long, default_value = "runs/experiment")]
    out: PathBuf,
    /// The document to write; its chart goes beside it
    #[arg(long, default_value = "docs/RESULTS.md")]
    doc: PathBuf,
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "resunet,unet"
    )]
    archs: Vec<SegArch>,
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "tversky,focal-tversky,dice,bce"
    )]
    losses: Vec<LossArg>,
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    seeds: Vec<u64>,
    #[arg(long, default_value_t = 100)]
    epochs: u32,
    #[arg(long, default_value_t = 16)]
    batch: usize,
    #[arg(long, default_value_t = 256)]
    input_size: u32,
    /// Early-stopping patience in epochs (seed: 30)
    #[arg(long, default_value_t = 30)]
    patience: u32,
    /// Encoder widths of both architectures (default 16,32,64,128,256)
    #[arg(long, value_delimiter = ',')]
    widths: Option<Vec<i64>>,
    /// Use at most this many slices (whole patients)
    #[arg(long)]
    max_slices: Option<usize>,
    /// A trained filter run (from `fit --model resnet50|resnet18`) for "filter on";
    /// it must have been trained on the same split (same --data, --max-slices, seed)
    #[arg(long)]
    filter: Option<PathBuf>,
    /// The filter's threshold keeps at least this share of its validation
    /// patients' tumour slices, as `export` picks the appliance's
    #[arg(long, default_value_t = 0.95)]
    filter_sensitivity: f64,
    /// Seed of the patient split, the same for every run
    #[arg(long, default_value_t = 0)]
    split_seed: u64,
    /// How to name this configuration in the document (e.g. "reduced CPU configuration")
    #[arg(long, default_value = "full configuration")]
    label: String,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum SpeedModel {
    Resunet,
    Resnet50,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum DtypeArg {
    Fp32,
    Bf16,
}

#[derive(clap::Args)]
struct SpeedArgs {
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "resunet,resnet50"
    )]
    models: Vec<SpeedModel>,
    /// Batch sizes (default: 4 on CPU as the reference's quick mode; 16,64 on CUDA)
    #[arg(long, value_delimiter = ',')]
    batch: Vec<i64>,
    /// Default: fp32 on CPU; fp32,bf16 on CUDA
    #[arg(long, value_enum, value_delimiter = ',')]
    dtype: Vec<DtypeArg>,
    /// Timed steps per case (default: 3 on CPU, 30 on CUDA)
    #[arg(long)]
    steps: Option<usize>,
    /// Untimed steps first (default: 1 on CPU, 10 on CUDA)
    #[arg(long)]
    warmup: Option<usize>,
    /// Alternate tch and PyTorch this many times; each side's best round counts
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Intra-op threads on both sides (0: libtorch's default)
    #[arg(long, default_value_t = 0)]
    threads: usize,
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceArg,
    /// Keep NCHW (the reference uses channels-last)
    #[arg(long)]
    no_channels_last: bool,
    /// The PyTorch reference models (kept outside the repository)
    #[arg(long, default_value = "../shared/reference/torch_reference.py")]
    reference: PathBuf,
    #[arg(long, default_value = ".venv/bin/python3")]
    python: PathBuf,
    #[arg(long, default_value = "scripts/torch_speed.py")]
    script: PathBuf,
    /// Measure the tch side only
    #[arg(long)]
    no_peer: bool,
    /// Also write the rows and ratios as JSON
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Phantoms {
            out,
            patients,
            seed,
            contrast,
            tumour_fraction,
            clear_patients,
        } => {
            anyhow::ensure!(patients > 0, "--patients must be at least 1");
            anyhow::ensure!(
                (0.0..=1.0).contains(&tumour_fraction) && (0.0..=1.0).contains(&clear_patients),
                "--tumour-fraction and --clear-patients are shares between 0 and 1"
            );
            let settings = CohortSettings {
                tumour_fraction,
                clear_patients,
                forms: contrast.into(),
            };
            let bar = ProgressBar::new(patients as u64).with_style(
                ProgressStyle::with_template(
                    "phantoms {bar:30} {pos}/{len} patients  {elapsed} (eta {eta})",
                )
                .expect("valid template"),
            );
            let summary = phantom::generate_cohort(&out, patients, seed, &settings, |done, _| {
                bar.set_position(done as u64)
            })
            .with_context(|| format!("generating phantoms into {}", out.display()))?;
            bar.finish_and_clear();
            println!(
                "{} patients, {} slices, {} with tumour ({:.1} %), seed {} -> {}",
                summary.patients.len(),
                summary.slices(),
                summary.tumour_slices(),
                100.0 * summary.tumour_slices() as f64 / summary.slices().max(1) as f64,
                seed,
                summary.root.display()
            );
        }
        Command::Montage { out, seed, rows } => {
            let volumes = phantom::anatomy::embedded_volumes()?;
            let img = phantom::montage::phantom_montage(&volumes, seed, rows);
            img.save(&out)
                .with_context(|| format!("writing {}", out.display()))?;
            println!(
                "{} rows: real T1 | stacked RGB | T1 | T1c | T2 | FLAIR | FLAIR + mask outline -> {}",
                rows,
                out.display()
            );
        }
        Command::Samples { out, seed } => {
            let volumes = phantom::anatomy::embedded_volumes()?;
            let infos = phantom::samples::write_samples(&volumes, seed, &out)?;
            for s in &infos {
                println!(
                    "{:<44} {:<6} {:>6} px  {}",
                    s.file, s.truth, s.lesion_px, s.source
                );
            }
        }
        Command::Fit(args) => {
            if let Some(n) = args.threads {
                anyhow::ensure!(n > 0, "--threads must be at least 1");
                tch::set_num_threads(n);
            }
            let (cfg, resume) = args.into_config()?;
            let bar = ProgressBar::new(0).with_style(
                ProgressStyle::with_template("loading {bar:30} {pos}/{len} slices")
                    .expect("valid template"),
            );
            let data = load_split(
                &cfg.data,
                cfg.input_size,
                cfg.split,
                cfg.seed,
                cfg.max_slices,
                |done, total| {
                    bar.set_length(total as u64);
                    bar.set_position(done as u64);
                },
            )
            .with_context(|| format!("loading {}", cfg.data.display()))?;
            bar.finish_and_clear();
            for p in &data.problems {
                eprintln!("skipped {p}");
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
                "{} epochs on {}; best val loss {:.4} at epoch {}{}; checkpoints in {}",
                outcome.epochs_run,
                outcome.device,
                outcome.best_val_loss,
                outcome.best_epoch,
                if outcome.stopped_early {
                    " (stopped early)"
                } else {
                    ""
                },
                cfg.out.display()
            );
        }
        Command::Export {
            segmenter,
            filter,
            out,
            slices,
            calibration,
            float_first,
            int8_last,
            trained_on,
            filter_sensitivity,
        } => {
            slices.check()?;
            anyhow::ensure!(
                (0.0..=1.0).contains(&filter_sensitivity),
                "--filter-sensitivity is a share between 0 and 1"
            );
            let SliceSelection {
                calibration_slices,
                calibration_clear_share,
                eval_slices,
                data,
            } = slices;
            let opts = ExportOptions {
                out: out.clone(),
                quant: QuantSettings {
                    method: match calibration {
                        CalibrationArg::MinMax => RangeMethod::MinMax,
                        CalibrationArg::Percentile => RangeMethod::Percentile {
                            low: 0.01,
                            high: 99.99,
                        },
                        CalibrationArg::Mse => RangeMethod::Mse,
                    },
                    float_first,
                    float_last: !int8_last,
                },
                calibration_slices,
                calibration_clear_share,
                data,
                eval_slices,
                trained_on,
                code_revision: ship::code_revision(),
                filter_sensitivity,
            };
            let mut reports = Vec::new();
            for (run, name) in std::iter::once((&segmenter, "segmenter"))
                .chain(filter.as_ref().map(|f| (f, "filter")))
            {
                eprintln!(
                    "exporting {} from {} (tract scores f32 and int8 on held-out slices)",
                    name,
                    run.display()
                );
                let r = ship::export_run(run, name, &opts)
                    .with_context(|| format!("exporting {}", run.display()))?;
                println!(
                    "{:<10} {:<16} f32 {:.4}  int8 {:.4}  on {} held-out slices  int8 {}  tract-vs-tch max |diff| {:.2e}  int8-vs-f32 |logit diff| max {:.3} mean {:.4}, sign flips {:.4} %",
                    name,
                    r.entry.architecture,
                    r.f32_score,
                    r.int8_score,
                    r.eval_slices,
                    match &r.int8_refused {
                        None => "shipped".to_string(),
                        Some(why) => format!("NOT shipped ({why})"),
                    },
                    r.max_abs_f32_vs_tch,
                    r.int8_vs_f32.max_abs,
                    r.int8_vs_f32.mean_abs,
                    100.0 * r.int8_vs_f32.sign_flips
                );
                if let Some(op) = &r.filter {
                    println!(
                        "{:<10} threshold {:.4} (P(tumour), picked on {} validation slices for sensitivity >= {}): validation sensitivity {:.3} specificity {:.3}; held-out test (f32, {} tumour / {} clear slices) sensitivity {:.3} specificity {:.3}",
                        name,
                        op.validation.threshold,
                        op.validation.tumour_slices + op.validation.clear_slices,
                        filter_sensitivity,
                        op.validation.sensitivity,
                        op.validation.specificity,
                        op.test_f32.tumour_slices,
                        op.test_f32.clear_slices,
                        op.test_f32.sensitivity,
                        op.test_f32.specificity
                    );
                }
                reports.push(r);
            }
            let seg = reports.remove(0);
            let filt = reports.pop();
            let manifest = ship::write_manifest(
                &out,
                seg.entry.clone(),
                filt.as_ref().map(|f| f.entry.clone()),
            )?;
            let card = model_card::render(&manifest, &seg, filt.as_ref());
            trainer::train::checkpoint::write_atomic(&out.join("MODEL_CARD.md"), card.as_bytes())?;
            println!("wrote {}/manifest.json and MODEL_CARD.md", out.display());
        }
        Command::Eval { run, out } => {
            let out = out.unwrap_or_else(|| run.join("eval"));
            let report = trainer::train::evaluate::evaluate_run(&run, &out)
                .with_context(|| format!("evaluating {}", run.display()))?;
            print!("{}", std::fs::read_to_string(&report)?);
            println!("\nreport: {}", report.display());
        }
        Command::DumpSlices { run, out, slices } => {
            slices.check()?;
            let state = trainer::train::checkpoint::RunState::load(&run)?;
            let cfg = &state.config;
            let segmenter = cfg.model.is_segmenter();
            let split = ship::run_data(cfg, slices.data.as_deref())?;
            let calib = ship::calibration_set(
                &split.train,
                slices.calibration_slices,
                segmenter,
                slices.calibration_clear_share,
            );
            let eval = ship::eval_set(&split.test, slices.eval_slices, segmenter);
            npy::write_slice_sets(&out, &calib, &eval)?;
            println!(
                "{} calibration slices ({} with tumour), {} held-out slices -> {}",
                calib.len(),
                calib.labels.iter().filter(|&&l| l).count(),
                eval.len(),
                out.display()
            );
        }
        Command::QuantBench {
            models,
            run,
            filter_run,
            data,
            runs,
            python,
            script,
            no_peer,
            work,
            calibration_slices,
            calibration_clear_share,
            eval_slices,
        } => {
            let opts = bench::BenchOptions {
                models,
                run,
                filter_run,
                data,
                runs,
                python: (!no_peer).then_some(python),
                script,
                work,
                calibration_slices,
                calibration_clear_share,
                eval_slices,
            };
            eprintln!(
                "quant-bench: tract single-threaded (its default executor) for f32 and int8, {} timed runs each after a warm-up",
                opts.runs.max(1)
            );
            let rows = bench::bench(&opts)?;
            print!("{}", bench::render(&rows));
        }
        Command::Speed(args) => run_speed(args)?,
        Command::ArchBench {
            runs,
            prevalence,
            size,
            small_filter_sizes,
            small_filter_widths,
            json,
        } => run_arch_bench(
            runs,
            prevalence,
            size,
            &small_filter_sizes,
            &small_filter_widths,
            json,
        )?,
        Command::Experiment(args) => run_experiment(args)?,
        Command::Info => {
            println!(
                "tch / libtorch: cuda available = {}",
                tch::Cuda::is_available()
            );
            println!("cuda devices: {}", tch::Cuda::device_count());
            println!("cudnn available = {}", tch::Cuda::cudnn_is_available());
        }
    }
    Ok(())
}

fn run_speed(a: SpeedArgs) -> Result<()> {
    use trainer::train::speed::{compare, measure, Dtype, Peer, SpeedCase};
    let device = match a.device {
        DeviceArg::Auto => tch::Device::cuda_if_available(),
        DeviceArg::Cpu => tch::Device::Cpu,
        DeviceArg::Cuda => {
            anyhow::ensure!(
                tch::Cuda::is_available(),
                "--device cuda, but libtorch sees no CUDA device (`neuroscreen-train info`)"
            );
            tch::Device::Cuda(0)
        }
    };
    let cuda = device.is_cuda();
    if a.threads > 0 {
        tch::set_num_threads(a.threads as i32);
    }
    let batches = if a.batch.is_empty() {
        if cuda {
            vec![16, 64]
        } else {
            vec![4]
        }
    } else {
        a.batch.clone()
    };
    let dtypes: Vec<Dtype> = if a.dtype.is_empty() {
        if cuda {
            vec![Dtype::Fp32, Dtype::Bf16]
        } else {
            vec![Dtype::Fp32]
        }
    } else {
        a.dtype
            .iter()
            .map(|d| match d {
                DtypeArg::Fp32 => Dtype::Fp32,
                DtypeArg::Bf16 => Dtype::Bf16,
            })
            .collect()
    };
    let steps = a.steps.unwrap_or(if cuda { 30 } else { 3 });
    let warmup = a.warmup.unwrap_or(if cuda { 10 } else { 1 });
    anyhow::ensure!(a.rounds >= 1, "--rounds must be at least 1");
    // The order the peer script loops in: batch, dtype, model.
    let mut cases = Vec::new();
    for &batch in &batches {
        for &dtype in &dtypes {
            for m in &a.models {
                cases.push(SpeedCase {
                    model: match m {
                        SpeedModel::Resunet => Architecture::default_resunet(),
                        SpeedModel::Resnet50 => Architecture::Resnet50Filter { dropout: 0.3 },
                    },
                    batch,
                    size: 256,
                    dtype,
                    channels_last: !a.no_channels_last,
                    warmup,
                    steps,
                });
            }
        }
    }
    let peer = (!a.no_peer).then(|| Peer {
        python: a.python.clone(),
        script: a.script.clone(),
        reference: a.reference.clone(),
        threads: a.threads,
        device: if cuda { "cuda" } else { "cpu" },
    });
    let device_name = if cuda { "CUDA" } else { "CPU" };
    eprintln!(
        "speed on {device_name} ({}): {} cases x {} rounds, {steps} timed steps after {warmup} warm-up, 256x256{}",
        threads_label(tch::get_num_threads()),
        cases.len(),
        a.rounds,
        if a.no_channels_last { ", NCHW" } else { ", channels-last" }
    );
    let (mut ours, mut theirs, mut peer_info) = (Vec::new(), Vec::new(), None);
    let bar = ProgressBar::new((a.rounds * cases.len()) as u64).with_style(
        ProgressStyle::with_template("speed {bar:30} {pos}/{len} {msg}").expect("valid template"),
    );
    for round in 1..=a.rounds {
        for case in &cases {
            bar.set_message(format!(
                "round {round}: tch {} bs {} {}",
                trainer::train::speed::reference_name(&case.model),
                case.batch,
                case.dtype.name()
            ));
            ours.push(measure(case, device, 0)?);
            bar.inc(1);
        }
        if let Some(p) = &peer {
            bar.set_message(format!("round {round}: PyTorch"));
            let (info, rows) = p.run(&cases)?;
            peer_info = Some(info);
            theirs.extend(rows);
        }
    }
    bar.finish_and_clear();
    if let Some(info) = &peer_info {
        println!(
            "PyTorch {} on {} ({}), eager, the reference's models",
            info.torch,
            info.device,
            info.threads
                .map_or("? threads".into(), |t| threads_label(t as i32))
        );
    }
    println!(
        "{:<9} {:>4} {:<5} {:>12} {:>12} {:>7} {:>12} {:>12} {:>7}",
        "model",
        "bs",
        "dtype",
        "tch train",
        "torch train",
        "ratio",
        "tch infer",
        "torch infer",
        "ratio"
    );
    let table = compare(&ours, &theirs);
    let opt =
        |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
    for c in &table {
        println!(
            "{:<9} {:>4} {:<5} {:>12.1} {:>12} {:>7} {:>12.1} {:>12} {:>7}",
            c.model,
            c.bs,
            c.dtype,
            c.tch_train_img_s,
            opt(c.torch_train_img_s, 1),
            opt(c.train_ratio, 2),
            c.tch_infer_img_s,
            opt(c.torch_infer_img_s, 1),
            opt(c.infer_ratio, 2)
        );
    }
    println!(
        "images/s, best of {} rounds; ratio = tch / PyTorch (above 1: tch faster)",
        a.rounds
    );
    if let Some(path) = &a.json {
        let doc = serde_json::json!({
            "device": device_name,
            "threads": tch::get_num_threads(),
            "steps": steps,
            "warmup": warmup,
            "rounds": a.rounds,
            "channels_last": !a.no_channels_last,
            "peer": peer_info,
            "tch_rows": ours,
            "torch_rows": theirs,
            "comparison": table,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("-> {}", path.display());
    }
    Ok(())
}

fn run_experiment(a: ExperimentArgs) -> Result<()> {
    use trainer::experiment::{self, chart, results_doc, Plan};
    anyhow::ensure!(
        !a.archs.is_empty() && !a.losses.is_empty() && !a.seeds.is_empty(),
        "need at least one architecture, loss and seed"
    );
    if let Some(n) = a.phantoms {
        if !a.data.join("kaggle_3m").is_dir() {
            let summary =
                phantom::generate_cohort(&a.data, n, 0, &CohortSettings::default(), |_, _| {})
                    .with_context(|| format!("generating phantoms into {}", a.data.display()))?;
            println!(
                "{} phantom patients -> {}",
                summary.patients.len(),
                summary.root.display()
            );
        }
    }
    let widths = a
        .widths
        .clone()
        .unwrap_or_else(|| vec![16, 32, 64, 128, 256]);
    let base = FitConfig {
        data: a.data.clone(),
        epochs: a.epochs,
        batch: a.batch,
        input_size: a.input_size,
        patience: a.patience,
        max_slices: a.max_slices,
        seed: a.split_seed,
        ..FitConfig::default()
    };
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("loading {bar:30} {pos}/{len} slices")
            .expect("valid template"),
    );
    let data = load_split(
        &a.data,
        a.input_size,
        base.split,
        a.split_seed,
        a.max_slices,
        |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )
    .with_context(|| format!("loading {}", a.data.display()))?;
    bar.finish_and_clear();
    let plan = Plan {
        out: a.out.clone(),
        archs: a
            .archs
            .iter()
            .map(|m| match m {
                SegArch::Resunet => (
                    "resunet".to_string(),
                    Architecture::ResUnet {
                        widths: widths.clone(),
                    },
                ),
                SegArch::Unet => (
                    "unet".to_string(),
                    Architecture::Unet {
                        widths: widths.clone(),
                    },
                ),
            })
            .collect(),
        losses: a.losses.iter().map(|l| (l.name(), l.loss())).collect(),
        seeds: a.seeds.clone(),
        base,
        filter: a.filter.clone(),
    };
    let device = tch::Device::cuda_if_available();
    let gate = match &a.filter {
        Some(run) => Some(experiment::filter_gate(
            run,
            &data,
            a.filter_sensitivity,
            device,
        )?),
        None => None,
    };
    let test_tumour = data.test.labels.iter().filter(|&&l| l).count();
    // Below the source resolution a small lesion can vanish from the mask;
    // the segmentation scores count tumour slices at the model's size.
    let test_tumour_at_input = (0..data.test.len())
        .filter(|&i| data.test.mask(i).iter().any(|&m| m != 0))
        .count();
    println!(
        "{} runs on {:?}: {} train / {} val / {} test slices ({} test patients, {} tumour slices)",
        plan.cells().len(),
        device,
        data.train.len(),
        data.val.len(),
        data.test.len(),
        data.split.test.len(),
        test_tumour
    );
    let progress = ProgressBar::new(plan.cells().len() as u64).with_style(
        ProgressStyle::with_template(
            "experiment {bar:30} {pos}/{len} runs  {elapsed} (eta {eta})  {msg}",
        )
        .expect("valid template"),
    );
    let results = experiment::run(&plan, &data, gate.as_ref(), |done, _, cell| {
        progress.set_position(done as u64);
        progress.set_message(cell.dir_name());
    })?;
    progress.finish_and_clear();
    let rows = results_doc::aggregate(&results);
    let doc_dir = a
        .doc
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(doc_dir).with_context(|| format!("creating {}", doc_dir.display()))?;
    let stem = a
        .doc
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("RESULTS")
        .to_lowercase();
    let chart_name = format!("{stem}_dice.png");
    chart::plot_results(&rows, &doc_dir.join(&chart_name))?;
    let machine = if device.is_cuda() {
        "CUDA".to_string()
    } else {
        format!(
            "{}, libtorch {}",
            std::fs::read_to_string("/proc/cpuinfo")
                .ok()
                .and_then(
                    |t| t.lines().find(|l| l.starts_with("model name")).map(|l| l
                        .split(':')
                        .nth(1)
                        .unwrap_or("")
                        .trim()
                        .to_string())
                )
                .unwrap_or_else(|| "CPU".into()),
            threads_label(tch::get_num_threads())
        )
    };
    let command = std::env::args()
        .map(|s| {
            if s.contains(' ') {
                format!("\"{s}\"")
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    let command = command.replacen(
        &std::env::args().next().unwrap_or_default(),
        "neuroscreen-train",
        1,
    );
    let provenance = results_doc::Provenance {
        command,
        date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        machine,
        configuration: format!(
            "{}: {} px input, widths {:?}, up to {} epochs (patience {}), batch {}, seeds {:?}.",
            a.label, a.input_size, widths, a.epochs, a.patience, a.batch, a.seeds
        ),
        data: format!(
            "{}: {} train / {} val / {} test slices; {} test patients with {} tumour slices \
             (patient-level split, seed {}); {} of those tumour slices still have tumour \
             pixels at {} px, and the segmentation scores (tumour slices, missed slices, \
             false alarms) count at that size.",
            a.data.display(),
            data.train.len(),
            data.val.len(),
            data.test.len(),
            data.split.test.len(),
            test_tumour,
            a.split_seed,
            test_tumour_at_input,
            a.input_size
        ),
        filter: match &gate {
            Some(gate) => {
                // The filter's own record on these held-out slices, so a
                // reader can tell a weak filter from a weak segmenter.
                let labels = &data.test.labels;
                let flagged = |tumour: bool| {
                    labels
                        .iter()
                        .zip(&gate.flags)
                        .filter(|&(&l, &f)| l == tumour && f)
                        .count()
                };
                let (tp, fp) = (flagged(true), flagged(false));
                let clear = labels.len() - test_tumour;
                let v = &gate.validation;
                format!(
                    "the run in `{}` ({}), at threshold {:.3} on P(tumour): the highest that \
                     keeps at least {:.0} % of the tumour slices of its validation patients \
                     (there: sensitivity {:.3} on {} tumour slices, specificity {:.3} on {} \
                     clear), as `export` picks the appliance's. On these held-out slices it \
                     flags {tp} of {test_tumour} tumour slices (sensitivity {:.3}) and {fp} of \
                     {clear} clear slices (specificity {:.3}).",
                    gate.run.display(),
                    gate.model,
                    v.threshold,
                    a.filter_sensitivity * 100.0,
                    v.sensitivity,
                    v.tumour_slices,
                    v.specificity,
                    v.clear_slices,
                    tp as f64 / test_tumour.max(1) as f64,
                    (clear - fp) as f64 / clear.max(1) as f64,
                )
            }
            _ => "none given (--filter RUN), so only the segmenter alone is scored".into(),
        },
        chart: chart_name,
    };
    std::fs::write(&a.doc, results_doc::render(&provenance, &rows))
        .with_context(|| format!("writing {}", a.doc.display()))?;
    for r in &rows {
        let (m, sd) = r
            .stat(|s| Some(s.slice_dice_tumour))
            .unwrap_or((f64::NAN, f64::NAN));
        println!(
            "{:<8} {:<14} Dice per slice (tumour) {m:.3} ± {sd:.3} over {} seeds",
            r.arch,
            r.loss,
            r.runs.len()
        );
    }
    println!("-> {}", a.doc.display());
    Ok(())
}

fn run_arch_bench(
    runs: usize,
    prevalence: f64,
    size: i64,
    small_filter_sizes: &[i64],
    small_filter_widths: &[i64],
    json: Option<PathBuf>,
) -> Result<()> {
    use trainer::export::arch_bench::{bench_arch, measure_best_peak, FilterEconomy, PEAK_SHAPES};
    anyhow::ensure!(
        (0.0..=1.0).contains(&prevalence),
        "--prevalence is a share between 0 and 1"
    );
    let work = tempfile_dir()?;
    let mut jobs: Vec<(Architecture, i64)> = vec![
        (Architecture::default_resunet(), size),
        (
            Architecture::Unet {
                widths: vec![16, 32, 64, 128, 256],
            },
            size,
        ),
        (Architecture::Resnet50Filter { dropout: 0.3 }, size),
    ];
    for &width in small_filter_widths {
        for &s in small_filter_sizes {
            jobs.push((
                Architecture::Resnet18Filter {
                    dropout: 0.3,
                    width,
                },
                s,
            ));
        }
    }
    let bar = ProgressBar::new(jobs.len() as u64 + 1).with_style(
        ProgressStyle::with_template("arch-bench {bar:30} {pos}/{len} {msg}")
            .expect("valid template"),
    );
    bar.set_message("peak");
    let peak = measure_best_peak(&PEAK_SHAPES, runs, &work)?;
    bar.inc(1);
    let mut rows = Vec::new();
    for (arch, s) in &jobs {
        let name = arch.label();
        bar.set_message(format!("{name} @ {s}"));
        rows.push(bench_arch(&name, arch, *s, runs, &work)?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let _ = std::fs::remove_dir_all(&work);
    println!(
        "tract f32, 1 thread, median of {runs} runs; peak = best of {runs} runs over {} matrix products (1x1 convs), reached at {}x{}x{}: {:.1} GFLOP/s",
        PEAK_SHAPES.len(), peak.shape[0], peak.shape[1], peak.shape[2], peak.gflops
    );
    println!(
        "{:<20} {:>5} {:>10} {:>9} {:>10} {:>9} {:>8}",
        "model", "input", "params", "GFLOP", "ms", "GFLOP/s", "of peak"
    );
    for r in &rows {
        println!(
            "{:<20} {:>5} {:>10} {:>9.2} {:>10.1} {:>9.1} {:>7.0}%",
            r.model,
            r.input,
            r.params,
            2.0 * r.macs as f64 / 1e9,
            r.ms_median,
            r.gflops,
            100.0 * r.gflops / peak.gflops
        );
    }
    if rows.iter().any(|r| r.gflops > peak.gflops) {
        println!(
            "(above 100 %: that model's convolutions ran faster than any of the peak's products; \
             the peak is a floor of the machine's ceiling, not the ceiling)"
        );
    }
    let seg = &rows[0];
    // An ideal filter passes exactly the tumour slices; a realistic one at
    // 95 % sensitivity and 90 % specificity passes a few more.
    let realistic = prevalence * 0.95 + (1.0 - prevalence) * 0.10;
    println!(
        "\nfilter in front of {} @ {} px ({:.1} ms), {:.0} % tumour slices: mean ms per slice",
        seg.model,
        seg.input,
        seg.ms_median,
        100.0 * prevalence
    );
    println!(
        "{:<30} {:>10} {:>14} {:>9} {:>18} {:>9}",
        "filter", "filter ms", "ideal filter", "speed-up", "sens 95 / spec 90", "speed-up"
    );
    let mut economies = Vec::new();
    for f in rows.iter().filter(|r| r.model.contains("_filter")) {
        let ideal = FilterEconomy::new(f, seg, prevalence, prevalence);
        let real = FilterEconomy::new(f, seg, prevalence, realistic);
        println!(
            "{:<30} {:>10.1} {:>14.1} {:>8.2}x {:>18.1} {:>8.2}x",
            ideal.filter,
            f.ms_median,
            ideal.with_filter_ms,
            ideal.speedup(),
            real.with_filter_ms,
            real.speedup()
        );
        economies.push(ideal);
        economies.push(real);
    }
    println!(
        "(no filter: {:.1} ms per slice; speed-up above 1 means the filter saves time)",
        seg.ms_median
    );
    if let Some(path) = json {
        let doc = serde_json::json!({ "runs": runs, "peak": peak, "models": rows, "filter_economy": economies });
        std::fs::write(&path, serde_json::to_string_pretty(&doc)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("-> {}", path.display());
    }
    Ok(())
}

/// A fresh scratch folder for exported files.
fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("neuroscreen-arch-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// "1 thread", "2 threads".
fn threads_label(n: i32) -> String {
    format!("{n} thread{}", if n == 1 { "" } else { "s" })
}
