//! The ResNet filters: torchvision's trunk layout and parameter names
//! (`conv1`, `bn1`, `layerN.i.convK`, `layerN.i.downsample.{0,1}`), so an
//! ImageNet checkpoint converted to safetensors loads with `--init`, and the
//! seed's head (global average pool, two Dense(256)+ReLU+Dropout, two
//! logits) under the PyTorch reference's names `fc.1`, `fc.4`, `fc.7`.

use super::blocks::ConvBn;
use tch::nn::{self, Module};
use tch::Tensor;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResNetDepth {
    /// Bottleneck blocks [3, 4, 6, 3], 2048 features: the seed's filter.
    R50,
    /// Basic blocks [2, 2, 2, 2], 512 features: for boards where ResNet-50
    /// is too slow.
    R18,
}

#[derive(Debug)]
pub struct Unit {
    pub convs: Vec<ConvBn>,
    pub downsample: Option<ConvBn>,
}

impl Unit {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut y = x.shallow_clone();
        let last = self.convs.len() - 1;
        for (i, c) in self.convs.iter().enumerate() {
            y = c.forward_t(&y, train);
            if i < last {
                y = y.relu();
            }
        }
        let identity = match &self.downsample {
            Some(d) => d.forward_t(x, train),
            None => x.shallow_clone(),
        };
        (y + identity).relu()
    }
}

#[derive(Debug)]
pub struct ResNetFilter {
    pub stem: ConvBn,
    pub layers: Vec<Vec<Unit>>,
    pub fc: [nn::Linear; 3],
    pub dropout: f64,
    /// Training only, never exported: a 1x1 convolution on the last stage's
    /// features predicting which cells of that grid hold tumour, so the
    /// masks teach the trunk where lesions are (one label per slice is
    /// little to learn from on a few thousand slices).
    pub mask_head: Option<nn::Conv2D>,
}

impl ResNetFilter {
    /// `width`: channels of the stem and first stage (64 in torchvision),
    /// doubled at each later stage.
    pub fn new(p: &nn::Path, depth: ResNetDepth, width: i64, dropout: f64) -> Self {
        Self::with_mask_head(p, depth, width, dropout, false)
    }

    pub fn with_mask_head(
        p: &nn::Path,
        depth: ResNetDepth,
        width: i64,
        dropout: f64,
        mask_head: bool,
    ) -> Self {
        let stem = ConvBn::new(p / "conv1", p / "bn1", 3, width, 7, 2, 3);
        let (counts, bottleneck) = match depth {
            ResNetDepth::R50 => ([3, 4, 6, 3], true),
            ResNetDepth::R18 => ([2, 2, 2, 2], false),
        };
        let expansion = if bottleneck { 4 } else { 1 };
        let mut cin = width;
        let mut layers = Vec::new();
        for (l, &count) in counts.iter().enumerate() {
            let planes = width << l;
            let lp = p / format!("layer{}", l + 1);
            let mut units = Vec::new();
            for u in 0..count {
                let up = &lp / u;
                let stride = if u == 0 && l > 0 { 2 } else { 1 };
                let cout = planes * expansion;
                let convs = if bottleneck {
                    vec![
                        ConvBn::new(&up / "conv1", &up / "bn1", cin, planes, 1, 1, 0),
                        ConvBn::new(&up / "conv2", &up / "bn2", planes, planes, 3, stride, 1),
                        ConvBn::new(&up / "conv3", &up / "bn3", planes, cout, 1, 1, 0),
                    ]
                } else {
                    vec![
                        ConvBn::new(&up / "conv1", &up / "bn1", cin, planes, 3, stride, 1),
                        ConvBn::new(&up / "conv2", &up / "bn2", planes, planes, 3, 1, 1),
                    ]
                };
                let downsample = (stride != 1 || cin != cout).then(|| {
                    let dp = &up / "downsample";
                    ConvBn::new(&dp / 0, &dp / 1, cin, cout, 1, stride, 0)
                });
                units.push(Unit { convs, downsample });
                cin = cout;
            }
            layers.push(units);
        }
        let fcp = p / "fc";
        let fc = [
            nn::linear(&fcp / 1, cin, 256, Default::default()),
            nn::linear(&fcp / 4, 256, 256, Default::default()),
            nn::linear(&fcp / 7, 256, 2, Default::default()),
        ];
        let mask_head =
            mask_head.then(|| nn::conv2d(p / "mask_head", cin, 1, 1, Default::default()));
        Self {
            stem,
            layers,
            fc,
            dropout,
            mask_head,
        }
    }

    /// [N,3,H,W] -> [N,2] logits (clear, tumour).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.head_t(&self.trunk_t(x, train), train)
    }

    /// The logits and, with a mask head, [N,1,h,w] tumour logits on the
    /// last stage's grid.
    pub fn forward_with_mask_t(&self, x: &Tensor, train: bool) -> (Tensor, Option<Tensor>) {
        let features = self.trunk_t(x, train);
        let mask = self.mask_head.as_ref().map(|m| features.apply(m));
        (self.head_t(&features, train), mask)
    }

    fn trunk_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut y =
            self.stem
                .forward_t(x, train)
                .relu()
                .max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        for layer in &self.layers {
            for unit in layer {
                y = unit.forward_t(&y, train);
            }
        }
        y
    }

    fn head_t(&self, features: &Tensor, train: bool) -> Tensor {
        let y = features.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        let y = self.fc[0].forward(&y).relu().dropout(self.dropout, train);
        let y = self.fc[1].forward(&y).relu().dropout(self.dropout, train);
        self.fc[2].forward(&y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::parameter_count;
    use tch::{Device, Kind};

    #[test]
    fn resnet50_uses_torchvision_names_and_size() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = ResNetFilter::new(&vs.root(), ResNetDepth::R50, 64, 0.3);
        let vars = vs.variables();
        for name in [
            "conv1.weight",
            "bn1.running_mean",
            "layer1.0.conv3.weight",
            "layer1.0.downsample.0.weight",
            "layer4.2.bn3.bias",
            "fc.7.weight",
        ] {
            assert!(vars.contains_key(name), "missing {name}");
        }
        // torchvision resnet50 trunk: 23.5 M; head 2048*256+256*256+256*2 (+biases).
        let n = parameter_count(&vs);
        assert!((24_000_000..24_200_000).contains(&n), "{n}");
        let y = net.forward_t(
            &Tensor::zeros([2, 3, 64, 64], (Kind::Float, Device::Cpu)),
            false,
        );
        assert_eq!(y.size(), [2, 2]);
    }

    #[test]
    fn resnet18_is_the_small_filter() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = ResNetFilter::new(&vs.root(), ResNetDepth::R18, 64, 0.3);
        let n = parameter_count(&vs);
        assert!((11_000_000..11_500_000).contains(&n), "{n}");
        assert_eq!(
            net.forward_t(
                &Tensor::zeros([1, 3, 64, 64], (Kind::Float, Device::Cpu)),
                false
            )
            .size(),
            [1, 2]
        );
    }

    #[test]
    fn narrow_resnet18_keeps_the_names_and_scales_with_width_squared() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = ResNetFilter::new(&vs.root(), ResNetDepth::R18, 16, 0.3);
        let vars = vs.variables();
        assert_eq!(vars["conv1.weight"].size(), [16, 3, 7, 7]);
        assert_eq!(vars["layer4.1.conv2.weight"].size(), [128, 128, 3, 3]);
        assert_eq!(vars["fc.1.weight"].size(), [256, 128]);
        // Trunk 11.2 M / 16 = 0.70 M at a quarter of the width, plus the
        // head's 128*256 + 256*256 + 256*2 (+ biases).
        let n = parameter_count(&vs);
        assert!((790_000..820_000).contains(&n), "{n}");
        let y = net.forward_t(
            &Tensor::zeros([2, 3, 64, 64], (Kind::Float, Device::Cpu)),
            false,
        );
        assert_eq!(y.size(), [2, 2]);
    }
}
