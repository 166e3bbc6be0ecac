//! Lowering a trained network to a small inference IR: batch norm folded
//! into the convolutions, dropout gone. The same IR is written as f32 ONNX,
//! quantised to int8, and evaluated in tch (to check the folding against the
//! network and to calibrate activation ranges).

use crate::nets::blocks::ConvBn;
use crate::nets::resnet::ResNetFilter;
use crate::nets::unet::{Block, SegNet};
use crate::nets::Net;
use tch::{Device, Kind, Tensor};

/// tch's `BatchNormConfig::default().eps`, which every network here uses.
pub const BN_EPS: f64 = 1e-5;

/// A value in the IR: 0 is the network input, op `k` produces value `k + 1`.
pub type Val = usize;

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Convolution with batch norm folded in; `relu` fuses the activation.
    Conv {
        input: Val,
        weight: Vec<f32>,
        /// [out, in, k, k]
        shape: [i64; 4],
        bias: Vec<f32>,
        stride: i64,
        pad: i64,
        relu: bool,
    },
    Add {
        a: Val,
        b: Val,
        relu: bool,
    },
    MaxPool {
        input: Val,
        kernel: i64,
        stride: i64,
        pad: i64,
    },
    /// Nearest-neighbour 2x upsampling (torch's `upsample_nearest2d`).
    Upsample2x {
        input: Val,
    },
    Concat {
        a: Val,
        b: Val,
    },
    /// Global average pool and flatten to [N, C].
    GlobalAvgPool {
        input: Val,
    },
    /// Fully connected: weight [out, in].
    Dense {
        input: Val,
        weight: Vec<f32>,
        shape: [i64; 2],
        bias: Vec<f32>,
        relu: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Lowered {
    pub ops: Vec<Op>,
    /// [1, 3, H, W]
    pub input_shape: [i64; 4],
    pub output: Val,
    /// [1, 1, H, W] for segmenters, [1, 2] for filters.
    pub output_shape: Vec<i64>,
}

fn floats(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(
        t.detach()
            .to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .flatten(0, -1),
    )
    .expect("float tensor")
}

struct Lowerer {
    ops: Vec<Op>,
}

impl Lowerer {
    fn push(&mut self, op: Op) -> Val {
        self.ops.push(op);
        self.ops.len()
    }

    fn conv_bn(&mut self, input: Val, c: &ConvBn, relu: bool) -> Val {
        let w = &c.conv.ws;
        let size = w.size();
        let shape = [size[0], size[1], size[2], size[3]];
        let gamma = floats(c.bn.ws.as_ref().expect("affine batch norm"));
        let beta = floats(c.bn.bs.as_ref().expect("affine batch norm"));
        let mean = floats(&c.bn.running_mean);
        let var = floats(&c.bn.running_var);
        let conv_bias = c.conv.bs.as_ref().map(floats);
        let mut weight = floats(w);
        let per_out = (shape[1] * shape[2] * shape[3]) as usize;
        let mut bias = Vec::with_capacity(shape[0] as usize);
        for o in 0..shape[0] as usize {
            let scale = gamma[o] / ((var[o] as f64 + BN_EPS).sqrt() as f32);
            weight[o * per_out..(o + 1) * per_out]
                .iter_mut()
                .for_each(|v| *v *= scale);
            let b0 = conv_bias.as_ref().map_or(0.0, |b| b[o]);
            bias.push(beta[o] + (b0 - mean[o]) * scale);
        }
        self.push(Op::Conv {
            input,
            weight,
            shape,
            bias,
            stride: c.stride,
            pad: c.padding,
            relu,
        })
    }

    fn plain_conv(&mut self, input: Val, conv: &tch::nn::Conv2D) -> Val {
        let size = conv.ws.size();
        let bias = conv
            .bs
            .as_ref()
            .map(floats)
            .unwrap_or_else(|| vec![0.0; size[0] as usize]);
        self.push(Op::Conv {
            input,
            weight: floats(&conv.ws),
            shape: [size[0], size[1], size[2], size[3]],
            bias,
            stride: 1,
            pad: (size[2] - 1) / 2,
            relu: false,
        })
    }

    fn block(&mut self, x: Val, b: &Block) -> Val {
        match b {
            Block::Res(r) => {
                let y = self.conv_bn(x, &r.first, true);
                let y = self.conv_bn(y, &r.second, false);
                let s = self.conv_bn(x, &r.shortcut, false);
                self.push(Op::Add {
                    a: y,
                    b: s,
                    relu: true,
                })
            }
            Block::Plain(p) => {
                let y = self.conv_bn(x, &p.first, true);
                self.conv_bn(y, &p.second, true)
            }
        }
    }
}

pub fn lower_segnet(net: &SegNet, size: i64) -> Lowered {
    let mut l = Lowerer { ops: Vec::new() };
    let mut x = 0;
    let mut skips = Vec::new();
    let last = net.encoder.len() - 1;
    for (i, b) in net.encoder.iter().enumerate() {
        x = l.block(x, b);
        if i < last {
            skips.push(x);
            x = l.push(Op::MaxPool {
                input: x,
                kernel: 2,
                stride: 2,
                pad: 0,
            });
        }
    }
    for b in &net.decoder {
        let skip = skips.pop().expect("skip per decoder block");
        let up = l.push(Op::Upsample2x { input: x });
        let cat = l.push(Op::Concat { a: up, b: skip });
        x = l.block(cat, b);
    }
    let output = l.plain_conv(x, &net.head);
    Lowered {
        ops: l.ops,
        input_shape: [1, 3, size, size],
        output,
        output_shape: vec![1, 1, size, size],
    }
}

pub fn lower_filter(net: &ResNetFilter, size: i64) -> Lowered {
    let mut l = Lowerer { ops: Vec::new() };
    let x = l.conv_bn(0, &net.stem, true);
    let mut x = l.push(Op::MaxPool {
        input: x,
        kernel: 3,
        stride: 2,
        pad: 1,
    });
    for layer in &net.layers {
        for unit in layer {
            let mut y = x;
            let last = unit.convs.len() - 1;
            for (i, c) in unit.convs.iter().enumerate() {
                y = l.conv_bn(y, c, i < last);
            }
            let identity = match &unit.downsample {
                Some(d) => l.conv_bn(x, d, false),
                None => x,
            };
            x = l.push(Op::Add {
                a: y,
                b: identity,
                relu: true,
            });
        }
    }
    let mut x = l.push(Op::GlobalAvgPool { input: x });
    for (i, fc) in net.fc.iter().enumerate() {
        let size = fc.ws.size();
        x = l.push(Op::Dense {
            input: x,
            weight: floats(&fc.ws),
            shape: [size[0], size[1]],
            bias: fc
                .bs
                .as_ref()
                .map(floats)
                .unwrap_or_else(|| vec![0.0; size[0] as usize]),
            relu: i < 2,
        });
    }
    Lowered {
        ops: l.ops,
        input_shape: [1, 3, size, size],
        output: x,
        output_shape: vec![1, 2],
    }
}

pub fn lower(net: &Net, size: i64) -> Lowered {
    match net {
        Net::Seg(n) => lower_segnet(n, size),
        Net::Filter(n) => lower_filter(n, size),
    }
}

impl Lowered {
    /// Evaluates the IR in tch; returns every value (index = `Val`).
    pub fn evaluate_all(&self, input: &Tensor) -> Vec<Tensor> {
        tch::no_grad(|| {
            let mut vals: Vec<Tensor> = vec![input.shallow_clone()];
            for op in &self.ops {
                let v = match op {
                    Op::Conv {
                        input,
                        weight,
                        shape,
                        bias,
                        stride,
                        pad,
                        relu,
                    } => {
                        let w = Tensor::from_slice(weight).view(*shape);
                        let b = Tensor::from_slice(bias);
                        let y = vals[*input].conv2d(
                            &w,
                            Some(&b),
                            [*stride, *stride],
                            [*pad, *pad],
                            [1, 1],
                            1,
                        );
                        if *relu {
                            y.relu()
                        } else {
                            y
                        }
                    }
                    Op::Add { a, b, relu } => {
                        let y = &vals[*a] + &vals[*b];
                        if *relu {
                            y.relu()
                        } else {
                            y
                        }
                    }
                    Op::MaxPool {
                        input,
                        kernel,
                        stride,
                        pad,
                    } => vals[*input].max_pool2d(
                        [*kernel, *kernel],
                        [*stride, *stride],
                        [*pad, *pad],
                        [1, 1],
                        false,
                    ),
                    Op::Upsample2x { input } => {
                        let s = vals[*input].size();
                        vals[*input].upsample_nearest2d([s[2] * 2, s[3] * 2], None, None)
                    }
                    Op::Concat { a, b } => Tensor::cat(&[&vals[*a], &vals[*b]], 1),
                    Op::GlobalAvgPool { input } => {
                        vals[*input].adaptive_avg_pool2d([1, 1]).flatten(1, -1)
                    }
                    Op::Dense {
                        input,
                        weight,
                        shape,
                        bias,
                        relu,
                    } => {
                        let w = Tensor::from_slice(weight).view(*shape);
                        let y = vals[*input].linear(&w, Some(Tensor::from_slice(bias)));
                        if *relu {
                            y.relu()
                        } else {
                            y
                        }
                    }
                };
                vals.push(v);
            }
            vals
        })
    }

    pub fn evaluate(&self, input: &Tensor) -> Tensor {
        self.evaluate_all(input).swap_remove(self.output)
    }

    /// Multiply-accumulates per image: the FLOP count is twice this.
    pub fn macs(&self) -> u64 {
        let shapes = self.shapes();
        self.ops
            .iter()
            .enumerate()
            .map(|(k, op)| match op {
                Op::Conv { shape, .. } => {
                    let out = &shapes[k + 1];
                    (shape[1] * shape[2] * shape[3]) as u64 * out.iter().product::<i64>() as u64
                }
                Op::Dense { shape, .. } => (shape[0] * shape[1]) as u64,
                _ => 0,
            })
            .sum()
    }

    /// The shape of every value for one input image.
    pub fn shapes(&self) -> Vec<Vec<i64>> {
        let mut s: Vec<Vec<i64>> = vec![self.input_shape.to_vec()];
        for op in &self.ops {
            let next = match op {
                Op::Conv {
                    input,
                    shape,
                    stride,
                    pad,
                    ..
                } => {
                    let i = &s[*input];
                    let o = |d: i64| (d + 2 * pad - shape[2]) / stride + 1;
                    vec![1, shape[0], o(i[2]), o(i[3])]
                }
                Op::Add { a, .. } => s[*a].clone(),
                Op::MaxPool {
                    input,
                    kernel,
                    stride,
                    pad,
                } => {
                    let i = &s[*input];
                    let o = |d: i64| (d + 2 * pad - kernel) / stride + 1;
                    vec![1, i[1], o(i[2]), o(i[3])]
                }
                Op::Upsample2x { input } => {
                    let i = &s[*input];
                    vec![1, i[1], i[2] * 2, i[3] * 2]
                }
                Op::Concat { a, b } => vec![1, s[*a][1] + s[*b][1], s[*a][2], s[*a][3]],
                Op::GlobalAvgPool { input } => vec![1, s[*input][1]],
                Op::Dense { shape, .. } => vec![1, shape[0]],
            };
            s.push(next);
        }
        s
    }
}
