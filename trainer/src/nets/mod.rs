//! The networks: ResUNet (the seed's segmenter), a plain U-Net baseline, and
//! the ResNet filters. Each block keeps its convolution and batch norm as
//! separate variables under torchvision-style names, so the ONNX exporter
//! can fold them and an ImageNet checkpoint can initialise the ResNet trunk.

pub mod blocks;
pub mod resnet;
pub mod unet;
pub mod widen;

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

pub use resnet::{ResNetDepth, ResNetFilter};
pub use unet::{SegNet, SegNetKind};

/// Which architecture a config or checkpoint refers to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Architecture {
    ResUnet {
        widths: Vec<i64>,
    },
    Unet {
        widths: Vec<i64>,
    },
    Resnet50Filter {
        dropout: f64,
    },
    /// `width` is the first stage's channel count, doubled at each stage:
    /// 64 is torchvision's ResNet-18 (and what an ImageNet `--init` needs);
    /// 16 or 32 give a filter cheap enough to pay in front of a small
    /// segmenter on a board's CPU.
    Resnet18Filter {
        dropout: f64,
        #[serde(default = "torchvision_width")]
        width: i64,
    },
}

fn torchvision_width() -> i64 {
    64
}

impl Architecture {
    pub fn is_segmenter(&self) -> bool {
        matches!(
            self,
            Architecture::ResUnet { .. } | Architecture::Unet { .. }
        )
    }

    /// What a run of this role is scored by in training logs and curves.
    pub fn score_name(&self) -> &'static str {
        if self.is_segmenter() {
            "Dice"
        } else {
            "accuracy"
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Architecture::ResUnet { .. } => "resunet",
            Architecture::Unet { .. } => "unet",
            Architecture::Resnet50Filter { .. } => "resnet50_filter",
            Architecture::Resnet18Filter { .. } => "resnet18_filter",
        }
    }

    /// The name with what sets the size apart from the stock layout, for
    /// tables, logs and the manifest ("resnet18_filter_w16").
    pub fn label(&self) -> String {
        match self {
            Architecture::Resnet18Filter { width, .. } if *width != torchvision_width() => {
                format!("{}_w{width}", self.name())
            }
            _ => self.name().to_string(),
        }
    }

    /// ResNet-18 filter at torchvision's width.
    pub fn resnet18(dropout: f64) -> Self {
        Architecture::Resnet18Filter {
            dropout,
            width: torchvision_width(),
        }
    }

    pub fn default_resunet() -> Self {
        Architecture::ResUnet {
            widths: vec![16, 32, 64, 128, 256],
        }
    }
}

/// A network of either role behind one interface for the training loop.
pub enum Net {
    Seg(Box<SegNet>),
    Filter(Box<ResNetFilter>),
}

impl Net {
    pub fn new(p: &nn::Path, arch: &Architecture) -> Self {
        Self::for_training(p, arch, false)
    }

    /// `mask_head`: filters get the training-only mask head
    /// (`ResNetFilter::mask_head`); segmenters ignore it.
    pub fn for_training(p: &nn::Path, arch: &Architecture, mask_head: bool) -> Self {
        match arch {
            Architecture::ResUnet { widths } => {
                Net::Seg(Box::new(SegNet::new(p, SegNetKind::Residual, widths)))
            }
            Architecture::Unet { widths } => {
                Net::Seg(Box::new(SegNet::new(p, SegNetKind::Plain, widths)))
            }
            Architecture::Resnet50Filter { dropout } => {
                Net::Filter(Box::new(ResNetFilter::with_mask_head(
                    p,
                    ResNetDepth::R50,
                    torchvision_width(),
                    *dropout,
                    mask_head,
                )))
            }
            Architecture::Resnet18Filter { dropout, width } => Net::Filter(Box::new(
                ResNetFilter::with_mask_head(p, ResNetDepth::R18, *width, *dropout, mask_head),
            )),
        }
    }

    /// Segmenter: [N,1,H,W] mask logits. Filter: [N,2] class logits.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        match self {
            Net::Seg(n) => n.forward_t(x, train),
            Net::Filter(n) => n.forward_t(x, train),
        }
    }
}

/// Number of trainable parameters.
pub fn parameter_count(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}
