//! ResUNet and the plain U-Net baseline: same depth and widths, encoder with
//! 2x2 max-pool down, decoder with nearest 2x upsample and concatenated skip.

use super::blocks::{PlainBlock, ResBlock};
use tch::{nn, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegNetKind {
    Residual,
    Plain,
}

#[derive(Debug)]
pub enum Block {
    Res(Box<ResBlock>),
    Plain(Box<PlainBlock>),
}

impl Block {
    fn new(p: &nn::Path, kind: SegNetKind, cin: i64, cout: i64) -> Self {
        match kind {
            SegNetKind::Residual => Block::Res(Box::new(ResBlock::new(p, cin, cout))),
            SegNetKind::Plain => Block::Plain(Box::new(PlainBlock::new(p, cin, cout))),
        }
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        match self {
            Block::Res(b) => b.forward_t(x, train),
            Block::Plain(b) => b.forward_t(x, train),
        }
    }
}

/// Encoder `enc.i`, decoder `dec.i`, 1x1 `head` with bias to one logit.
#[derive(Debug)]
pub struct SegNet {
    pub kind: SegNetKind,
    pub widths: Vec<i64>,
    pub encoder: Vec<Block>,
    pub decoder: Vec<Block>,
    pub head: nn::Conv2D,
}

impl SegNet {
    pub fn new(p: &nn::Path, kind: SegNetKind, widths: &[i64]) -> Self {
        assert!(!widths.is_empty(), "a segmenter needs at least one width");
        let enc = p / "enc";
        let dec = p / "dec";
        let mut c = 3;
        let encoder = widths
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                let b = Block::new(&(&enc / i), kind, c, w);
                c = w;
                b
            })
            .collect();
        let decoder = widths[..widths.len() - 1]
            .iter()
            .rev()
            .enumerate()
            .map(|(i, &w)| {
                let b = Block::new(&(&dec / i), kind, c + w, w);
                c = w;
                b
            })
            .collect();
        let head = nn::conv2d(p / "head", c, 1, 1, Default::default());
        Self {
            kind,
            widths: widths.to_vec(),
            encoder,
            decoder,
            head,
        }
    }

    /// The input side must be divisible by 2^(depth-1).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut skips = Vec::with_capacity(self.encoder.len());
        let mut x = x.shallow_clone();
        let last = self.encoder.len() - 1;
        for (i, block) in self.encoder.iter().enumerate() {
            x = block.forward_t(&x, train);
            if i < last {
                skips.push(x.shallow_clone());
                x = x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
            }
        }
        for block in &self.decoder {
            let skip = skips.pop().expect("one skip per decoder block");
            let up = x.upsample_nearest2d(&skip.size()[2..], None, None);
            x = block.forward_t(&Tensor::cat(&[up, skip], 1), train);
        }
        x.apply(&self.head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::parameter_count;
    use tch::{Device, Kind};

    #[test]
    fn default_resunet_has_about_2_1_million_parameters_and_keeps_the_size() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = SegNet::new(&vs.root(), SegNetKind::Residual, &[16, 32, 64, 128, 256]);
        let n = parameter_count(&vs);
        assert!((2_000_000..2_200_000).contains(&n), "{n} parameters");
        let y = net.forward_t(
            &Tensor::zeros([1, 3, 64, 64], (Kind::Float, Device::Cpu)),
            false,
        );
        assert_eq!(y.size(), [1, 1, 64, 64]);
    }

    #[test]
    fn plain_unet_is_smaller_than_resunet_at_equal_widths() {
        let a = nn::VarStore::new(Device::Cpu);
        SegNet::new(&a.root(), SegNetKind::Residual, &[8, 16, 32]);
        let b = nn::VarStore::new(Device::Cpu);
        let net = SegNet::new(&b.root(), SegNetKind::Plain, &[8, 16, 32]);
        assert!(parameter_count(&b) < parameter_count(&a));
        let y = net.forward_t(
            &Tensor::zeros([2, 3, 32, 32], (Kind::Float, Device::Cpu)),
            true,
        );
        assert_eq!(y.size(), [2, 1, 32, 32]);
    }
}
