//! Building blocks shared by the networks.

use tch::nn::{self, ModuleT};
use tch::Tensor;

/// Convolution without bias followed by batch norm, stored as `<conv>` and
/// `<bn>` under the caller's names (torchvision: `conv1` / `bn1`).
#[derive(Debug)]
pub struct ConvBn {
    pub conv: nn::Conv2D,
    pub bn: nn::BatchNorm,
    pub kernel: i64,
    pub stride: i64,
    pub padding: i64,
}

impl ConvBn {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        conv_path: nn::Path,
        bn_path: nn::Path,
        cin: i64,
        cout: i64,
        kernel: i64,
        stride: i64,
        padding: i64,
    ) -> Self {
        let cfg = nn::ConvConfig {
            stride,
            padding,
            bias: false,
            ..Default::default()
        };
        Self {
            conv: nn::conv2d(conv_path, cin, cout, kernel, cfg),
            bn: nn::batch_norm2d(bn_path, cout, Default::default()),
            kernel,
            stride,
            padding,
        }
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.bn.forward_t(&x.apply(&self.conv), train)
    }
}

/// The seed's residual block: two 3x3 conv+BN (ReLU between) plus a 1x1
/// conv+BN projection shortcut, added, then ReLU. Names follow the PyTorch
/// reference (`c1`, `b1`, `c2`, `b2`, `sc`, `bs`).
#[derive(Debug)]
pub struct ResBlock {
    pub first: ConvBn,
    pub second: ConvBn,
    pub shortcut: ConvBn,
}

impl ResBlock {
    pub fn new(p: &nn::Path, cin: i64, cout: i64) -> Self {
        Self {
            first: ConvBn::new(p / "c1", p / "b1", cin, cout, 3, 1, 1),
            second: ConvBn::new(p / "c2", p / "b2", cout, cout, 3, 1, 1),
            shortcut: ConvBn::new(p / "sc", p / "bs", cin, cout, 1, 1, 0),
        }
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let y = self.first.forward_t(x, train).relu();
        let y = self.second.forward_t(&y, train);
        (y + self.shortcut.forward_t(x, train)).relu()
    }
}

/// The plain U-Net block: two 3x3 conv+BN+ReLU, no shortcut.
#[derive(Debug)]
pub struct PlainBlock {
    pub first: ConvBn,
    pub second: ConvBn,
}

impl PlainBlock {
    pub fn new(p: &nn::Path, cin: i64, cout: i64) -> Self {
        Self {
            first: ConvBn::new(p / "c1", p / "b1", cin, cout, 3, 1, 1),
            second: ConvBn::new(p / "c2", p / "b2", cout, cout, 3, 1, 1),
        }
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let y = self.first.forward_t(x, train).relu();
        self.second.forward_t(&y, train).relu()
    }
}
