//! The networks: ResUNet (the seed's segmenter), a plain U-Net baseline, and
//! the ResNet filters. Each block keeps its convolution and batch norm as
//! separate variables under torchvision-style names, so the ONNX exporter
//! can fold them and an ImageNet checkpoint can initialise the ResNet trunk.

pub mod blocks;
pub mod resnet;
pub mod unet;

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

pub use resnet::{ResNetDepth, ResNetFilter};
pub use unet::{SegNet, SegNetKind};

/// Which architecture a config or checkpoint refers to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Architecture {
    ResUnet { widths: Vec<i64> },
    Unet { widths: Vec<i64> },
    Resnet50Filter { dropout: f64 },
    Resnet18Filter { dropout: f64 },
}

impl Architecture {
    pub fn is_segmenter(&self) -> bool {
        matches!(
            self,
            Architecture::ResUnet { .. } | Architecture::Unet { .. }
        )
    }

    pub fn name(&self) -> &'static str {
        match self {
            Architecture::ResUnet { .. } => "resunet",
            Architecture::Unet { .. } => "unet",
            Architecture::Resnet50Filter { .. } => "resnet50_filter",
            Architecture::Resnet18Filter { .. } => "resnet18_filter",
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
    Seg(SegNet),
    Filter(ResNetFilter),
}

impl Net {
    pub fn new(p: &nn::Path, arch: &Architecture) -> Self {
        match arch {
            Architecture::ResUnet { widths } => {
                Net::Seg(SegNet::new(p, SegNetKind::Residual, widths))
            }
            Architecture::Unet { widths } => Net::Seg(SegNet::new(p, SegNetKind::Plain, widths)),
            Architecture::Resnet50Filter { dropout } => {
                Net::Filter(ResNetFilter::new(p, ResNetDepth::R50, *dropout))
            }
            Architecture::Resnet18Filter { dropout } => {
                Net::Filter(ResNetFilter::new(p, ResNetDepth::R18, *dropout))
            }
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
