//! Option types more than one command takes.

use anyhow::Result;
use clap::ValueEnum;
use std::path::PathBuf;
use trainer::data::phantom::render::Contrast;
use trainer::data::phantom::FormChoice;
use trainer::losses::SegLoss;

#[derive(Clone, Copy, ValueEnum)]
pub enum ContrastArg {
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

#[derive(Clone, Copy, ValueEnum)]
pub enum ModelArg {
    Resunet,
    Unet,
    Resnet50,
    Resnet18,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LossArg {
    Tversky,
    FocalTversky,
    Dice,
    Bce,
    BceDice,
    /// Tversky on tumour slices + pixel BCE + slice detection, for a
    /// segmenter trained on clear slices too
    AllSlices,
}

impl LossArg {
    /// The seed's settings: alpha 0.7 on false negatives, beta 0.3, gamma 0.75.
    pub fn loss(self) -> SegLoss {
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
            LossArg::AllSlices => SegLoss::all_slices(),
        }
    }

    pub fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub enum SegArch {
    Resunet,
    Unet,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DeviceArg {
    Auto,
    Cpu,
    Cuda,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum CalibrationArg {
    MinMax,
    Percentile,
    /// Per tensor, the shrunk min-max range with the least uint8 error
    Mse,
}

/// Which slices calibrate the int8 ranges and which are scored: shared by
/// `export` and `dump-slices`, so the Python peer sees the same sets.
#[derive(clap::Args)]
pub struct SliceSelection {
    /// Calibration slices for int8 activation ranges
    #[arg(long, default_value_t = 32)]
    pub calibration_slices: usize,
    /// Share of calibration slices drawn from clear (tumour-free) training
    /// slices, the rest carry tumour (segmenters; the appliance meets both)
    #[arg(long, default_value_t = 0.5)]
    pub calibration_clear_share: f64,
    /// Held-out slices scored in f32 and int8 (tract int8 is slow on x86)
    #[arg(long, default_value_t = 40)]
    pub eval_slices: usize,
    /// Data root, when not where the run's config says
    #[arg(long)]
    pub data: Option<PathBuf>,
}

impl SliceSelection {
    pub fn check(&self) -> Result<()> {
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.calibration_clear_share),
            "--calibration-clear-share is a share between 0 and 1"
        );
        Ok(())
    }
}

/// "1 thread", "2 threads".
pub fn threads_label(n: i32) -> String {
    format!("{n} thread{}", if n == 1 { "" } else { "s" })
}
