//! Training and inference throughput on synthetic batches, set up exactly as
//! the PyTorch reference (`torch_reference.py`) measures it: random 256x256
//! images, Adam at 1e-3, the Tversky loss for the ResUNet (targets ~3 %
//! foreground) and cross entropy for the ResNet-50 filter, warm-up steps
//! untimed, the device synchronised before reading the clock.

use super::adam::{AdamConfig, FusedAdam};
use super::amp::{bf16_autocast, to_channels_last, variables_to_channels_last};
use crate::error::{Error, Result};
use crate::losses::SegLoss;
use crate::nets::{parameter_count, Architecture, Net};
use serde::{Deserialize, Serialize};
use std::time::Instant;
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    Fp32,
    Bf16,
}

impl Dtype {
    pub fn name(self) -> &'static str {
        match self {
            Dtype::Fp32 => "fp32",
            Dtype::Bf16 => "bf16",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SpeedCase {
    pub model: Architecture,
    pub batch: i64,
    pub size: i64,
    pub dtype: Dtype,
    pub channels_last: bool,
    pub warmup: usize,
    pub steps: usize,
    /// The trainer's fused Adam (what `fit` uses) or tch's per-parameter
    /// libtorch Adam, to measure what fusing buys.
    pub fused_adam: bool,
}

/// One measured case; field names match the reference's JSON rows so the
/// two print side by side.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpeedRow {
    pub model: String,
    pub bs: i64,
    pub dtype: String,
    pub train_img_s: f64,
    pub infer_img_s: f64,
    pub params: i64,
}

fn synchronise(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Short name as the reference prints it.
pub fn reference_name(model: &Architecture) -> &'static str {
    match model {
        Architecture::ResUnet { .. } => "resunet",
        Architecture::Resnet50Filter { .. } => "resnet50",
        other => other.name(),
    }
}

/// `model` with seeded weights on `device`, channels-last when asked.
fn seeded_net(
    model: &Architecture,
    device: Device,
    channels_last: bool,
    seed: i64,
) -> Result<(nn::VarStore, Net)> {
    let seeded = super::fit::seeded(seed);
    let vs = nn::VarStore::new(device);
    let net = Net::new(&vs.root(), model);
    drop(seeded);
    if channels_last {
        variables_to_channels_last(&vs)?;
    }
    Ok((vs, net))
}

/// tch's own Adam (libtorch's per-tensor C++ loop), the fused one's peer.
fn libtorch_adam(vs: &nn::VarStore, lr: f64) -> Result<nn::Optimizer> {
    nn::Adam::default()
        .build(vs, lr)
        .map_err(|e| Error::Invalid(format!("optimiser: {e}")))
}

pub fn measure(case: &SpeedCase, device: Device, seed: i64) -> Result<SpeedRow> {
    if case.batch < 1 || case.size < 32 || case.steps == 0 {
        return Err(Error::Invalid(format!(
            "speed: need batch >= 1, size >= 32 and steps >= 1 (got {}, {}, {})",
            case.batch, case.size, case.steps
        )));
    }
    let (vs, net) = seeded_net(&case.model, device, case.channels_last, seed)?;
    super::fit::autotune_convolutions(device);
    enum Opt {
        Fused(FusedAdam),
        Libtorch(nn::Optimizer),
    }
    let mut opt = if case.fused_adam {
        Opt::Fused(FusedAdam::new(&vs, AdamConfig::adam(1e-3)))
    } else {
        Opt::Libtorch(libtorch_adam(&vs, 1e-3)?)
    };
    let opts = (Kind::Float, device);
    let mut x = Tensor::rand([case.batch, 3, case.size, case.size], opts);
    if case.channels_last {
        x = to_channels_last(&x)?;
    }
    let segmenter = case.model.is_segmenter();
    let target = if segmenter {
        Tensor::rand([case.batch, 1, case.size, case.size], opts)
            .gt(0.97)
            .to_kind(Kind::Float)
    } else {
        Tensor::randint(2, [case.batch], (Kind::Int64, device))
    };
    let loss_fn = SegLoss::default();
    let bf16 = case.dtype == Dtype::Bf16;
    let mut step = || {
        let out = bf16_autocast(device, bf16, || net.forward_t(&x, true));
        let out = out.to_kind(Kind::Float);
        let loss = if segmenter {
            loss_fn.compute(&out, &target)
        } else {
            out.cross_entropy_for_logits(&target)
        };
        match &mut opt {
            Opt::Fused(o) => o.backward_step(&loss).map(|_| ()),
            Opt::Libtorch(o) => {
                o.zero_grad();
                loss.backward();
                o.step();
                Ok(())
            }
        }
    };
    for _ in 0..case.warmup {
        step()?;
    }
    synchronise(device);
    let t = Instant::now();
    for _ in 0..case.steps {
        step()?;
    }
    synchronise(device);
    let train_s = t.elapsed().as_secs_f64();
    let infer_s = tch::no_grad(|| {
        let run = || bf16_autocast(device, bf16, || net.forward_t(&x, false));
        for _ in 0..case.warmup {
            let _ = run();
        }
        synchronise(device);
        let t = Instant::now();
        for _ in 0..case.steps {
            let _ = run();
        }
        synchronise(device);
        t.elapsed().as_secs_f64()
    });
    let images = (case.batch as usize * case.steps) as f64;
    Ok(SpeedRow {
        model: reference_name(&case.model).to_string(),
        bs: case.batch,
        dtype: case.dtype.name().to_string(),
        train_img_s: images / train_s,
        infer_img_s: images / infer_s,
        params: parameter_count(&vs),
    })
}

/// The optimiser step alone, with the gradients of one real backward pass
/// held fixed: what the fused kernel saves over tch's per-tensor libtorch
/// Adam, apart from the convolutions that dominate a CPU step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdamStepTimes {
    pub model: String,
    pub tensors: usize,
    pub libtorch_ms: f64,
    pub fused_ms: f64,
}

pub fn adam_step_times(
    model: &Architecture,
    device: Device,
    channels_last: bool,
    steps: usize,
) -> Result<AdamStepTimes> {
    let (vs, net) = seeded_net(model, device, channels_last, 0)?;
    let x = Tensor::rand([2, 3, 64, 64], (Kind::Float, device));
    net.forward_t(&x, true).mean(Kind::Float).backward();
    let steps = steps.max(1);
    let time = |mut step: Box<dyn FnMut() -> Result<()> + '_>| -> Result<f64> {
        step()?;
        synchronise(device);
        let t = Instant::now();
        for _ in 0..steps {
            step()?;
        }
        synchronise(device);
        Ok(t.elapsed().as_secs_f64() * 1e3 / steps as f64)
    };
    let mut libtorch = libtorch_adam(&vs, 1e-6)?;
    let libtorch_ms = time(Box::new(|| {
        libtorch.step();
        Ok(())
    }))?;
    let mut fused = FusedAdam::new(&vs, AdamConfig::adam(1e-6));
    let tensors = vs.trainable_variables().len();
    let fused_ms = time(Box::new(|| fused.step().map(|_| ())))?;
    Ok(AdamStepTimes {
        model: reference_name(model).to_string(),
        tensors,
        libtorch_ms,
        fused_ms,
    })
}

/// Slices per second `fit`'s loader assembles, augmented as `fit` does by
/// default, with `workers` threads and nothing consuming them: the rate
/// above which training on an accelerator waits for its data. Synthetic
/// slices, since the work does not depend on their content.
pub fn loader_images_per_s(size: u32, batch: usize, workers: usize, slices: usize) -> Result<f64> {
    use super::dataset::{epoch_order, for_each_batch, Batching, Prepared};
    if size == 0 || batch == 0 || slices == 0 {
        return Err(Error::Invalid(format!(
            "loader speed: need size, batch and slices >= 1 (got {size}, {batch}, {slices})"
        )));
    }
    let plane = (size * size) as usize;
    let mut data = Prepared {
        size,
        ..Default::default()
    };
    for i in 0..slices {
        data.images
            .extend((0..3 * plane).map(|k| ((i * 31 + k) % 997) as f32 / 997.0));
        data.masks
            .extend((0..plane).map(|k| u8::from((k + i) % 53 == 0)));
        data.patients.push(format!("P{i}"));
        data.labels.push(i % 3 == 0);
        data.true_area.push(plane / 53);
    }
    let augment = crate::data::augment::Augmentation::default();
    let plan = Batching {
        batch,
        augment: Some(&augment),
        seed: 0,
        epoch: 1,
        workers,
    };
    let order = epoch_order(slices, 0, 1, true);
    let t = Instant::now();
    let mut seen = 0usize;
    for_each_batch(&data, &order, &plan, |b| {
        seen += b.n;
        Ok(())
    })?;
    Ok(seen as f64 / t.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_tiny_resunet_and_counts_its_parameters() {
        let case = SpeedCase {
            model: Architecture::ResUnet { widths: vec![4, 8] },
            batch: 2,
            size: 32,
            dtype: Dtype::Fp32,
            channels_last: true,
            warmup: 1,
            steps: 2,
            fused_adam: true,
        };
        let row = measure(&case, Device::Cpu, 0).unwrap();
        assert_eq!(row.model, "resunet");
        assert_eq!(row.bs, 2);
        assert!(row.train_img_s > 0.0 && row.infer_img_s > 0.0, "{row:?}");
        // enc 3->4, 4->8; dec 12->4; head 4->1 (convs, BNs, shortcuts).
        let block = |cin: i64, cout: i64| 9 * cin * cout + 9 * cout * cout + cin * cout + 6 * cout;
        assert_eq!(row.params, block(3, 4) + block(4, 8) + block(12, 4) + 4 + 1);
    }

    #[test]
    fn times_both_optimisers_over_every_trainable_tensor() {
        let model = Architecture::ResUnet { widths: vec![4, 8] };
        let t = adam_step_times(&model, Device::Cpu, false, 2).unwrap();
        // Per residual block: two convs, three batch norms (weight, bias),
        // one shortcut; three blocks and the head's weight and bias.
        assert_eq!(t.tensors, 3 * (3 + 3 * 2) + 2);
        assert!(t.libtorch_ms > 0.0 && t.fused_ms > 0.0, "{t:?}");
    }

    #[test]
    fn loader_assembles_every_slice_and_refuses_nothing_to_do() {
        assert!(loader_images_per_s(32, 4, 2, 10).unwrap() > 0.0);
        assert!(loader_images_per_s(32, 0, 2, 10).is_err());
    }

    #[test]
    fn refuses_an_empty_case() {
        let case = SpeedCase {
            model: Architecture::default_resunet(),
            batch: 0,
            size: 256,
            dtype: Dtype::Fp32,
            channels_last: false,
            warmup: 0,
            steps: 1,
            fused_adam: true,
        };
        assert!(measure(&case, Device::Cpu, 0).is_err());
    }
}

/// What the PyTorch peer reported about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerInfo {
    pub torch: String,
    pub device: String,
    #[serde(default)]
    pub threads: Option<i64>,
}

/// How to run `scripts/torch_speed.py` over the reference file.
#[derive(Debug, Clone)]
pub struct Peer {
    pub python: std::path::PathBuf,
    pub script: std::path::PathBuf,
    pub reference: std::path::PathBuf,
    pub threads: usize,
    pub device: &'static str,
}

impl Peer {
    /// Runs the same cases in PyTorch; rows come back in the script's order
    /// (batch, dtype, model), which `cases` must follow too.
    pub fn run(&self, cases: &[SpeedCase]) -> Result<(PeerInfo, Vec<SpeedRow>)> {
        for (path, what) in [
            (&self.script, "peer script"),
            (&self.reference, "reference"),
        ] {
            if !path.is_file() {
                return Err(Error::Invalid(format!(
                    "{}: the PyTorch {what} is not there (--no-peer measures the tch side alone)",
                    path.display()
                )));
            }
        }
        let first = cases
            .first()
            .ok_or_else(|| Error::Invalid("no cases".into()))?;
        let mut cmd = std::process::Command::new(&self.python);
        cmd.arg(&self.script)
            .arg("--reference")
            .arg(&self.reference);
        let mut seen = (Vec::new(), Vec::new(), Vec::new());
        for c in cases {
            let m = reference_name(&c.model).to_string();
            if !seen.0.contains(&m) {
                seen.0.push(m);
            }
            if !seen.1.contains(&c.batch) {
                seen.1.push(c.batch);
            }
            if !seen.2.contains(&c.dtype) {
                seen.2.push(c.dtype);
            }
        }
        for m in &seen.0 {
            cmd.args(["--model", m]);
        }
        for b in &seen.1 {
            cmd.args(["--batch", &b.to_string()]);
        }
        for d in &seen.2 {
            cmd.args(["--dtype", d.name()]);
        }
        cmd.args(["--steps", &first.steps.to_string()])
            .args(["--warmup", &first.warmup.to_string()])
            .args(["--threads", &self.threads.to_string()])
            .args(["--device", self.device]);
        let out = cmd
            .output()
            .map_err(|e| Error::Invalid(format!("cannot start {}: {e}", self.python.display())))?;
        if !out.status.success() {
            return Err(Error::Invalid(format!(
                "{} {} failed ({}): {}",
                self.python.display(),
                self.script.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        parse_peer_output(&String::from_utf8_lossy(&out.stdout))
    }
}

pub fn parse_peer_output(stdout: &str) -> Result<(PeerInfo, Vec<SpeedRow>)> {
    let mut lines = stdout.lines().filter(|l| l.trim_start().starts_with('{'));
    let bad = |l: &str, e: serde_json::Error| Error::Invalid(format!("peer printed {l:?}: {e}"));
    let info_line = lines
        .next()
        .ok_or_else(|| Error::Invalid("the PyTorch peer printed nothing".into()))?;
    let info: PeerInfo = serde_json::from_str(info_line).map_err(|e| bad(info_line, e))?;
    let rows = lines
        .map(|l| serde_json::from_str(l).map_err(|e| bad(l, e)))
        .collect::<Result<Vec<SpeedRow>>>()?;
    Ok((info, rows))
}

/// One case on both sides; ratios above 1 mean tch is faster.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub model: String,
    pub bs: i64,
    pub dtype: String,
    pub tch_train_img_s: f64,
    pub torch_train_img_s: Option<f64>,
    pub train_ratio: Option<f64>,
    pub tch_infer_img_s: f64,
    pub torch_infer_img_s: Option<f64>,
    pub infer_ratio: Option<f64>,
}

/// Pairs rows by (model, batch, dtype), keeping each side's best round:
/// the fastest round is the least disturbed by whatever else ran.
pub fn compare(ours: &[SpeedRow], theirs: &[SpeedRow]) -> Vec<Comparison> {
    let key = |r: &SpeedRow| (r.model.clone(), r.bs, r.dtype.clone());
    let best = |rows: &[SpeedRow], k: &(String, i64, String)| -> Option<(f64, f64)> {
        rows.iter().filter(|r| &key(r) == k).fold(None, |acc, r| {
            let (t, i) = acc.unwrap_or((0.0, 0.0));
            Some((t.max(r.train_img_s), i.max(r.infer_img_s)))
        })
    };
    let mut keys: Vec<_> = ours.iter().map(key).collect();
    keys.dedup();
    let mut seen = Vec::new();
    keys.retain(|k| {
        let fresh = !seen.contains(k);
        seen.push(k.clone());
        fresh
    });
    keys.into_iter()
        .filter_map(|k| {
            let (tt, ti) = best(ours, &k)?;
            let peer = best(theirs, &k);
            let ratio = |a: f64, b: f64| if b > 0.0 { Some(a / b) } else { None };
            Some(Comparison {
                model: k.0,
                bs: k.1,
                dtype: k.2,
                tch_train_img_s: tt,
                torch_train_img_s: peer.map(|p| p.0),
                train_ratio: peer.and_then(|p| ratio(tt, p.0)),
                tch_infer_img_s: ti,
                torch_infer_img_s: peer.map(|p| p.1),
                infer_ratio: peer.and_then(|p| ratio(ti, p.1)),
            })
        })
        .collect()
}

#[cfg(test)]
mod peer_tests {
    use super::*;

    fn row(model: &str, train: f64, infer: f64) -> SpeedRow {
        SpeedRow {
            model: model.into(),
            bs: 4,
            dtype: "fp32".into(),
            train_img_s: train,
            infer_img_s: infer,
            params: 1,
        }
    }

    #[test]
    fn peer_output_parses_and_ignores_noise() {
        let out = "warning: something\n{\"torch\": \"2.11.0\", \"device\": \"cpu\", \"threads\": 2}\n\
                   {\"model\": \"resunet\", \"bs\": 4, \"dtype\": \"fp32\", \"train_img_s\": 3.5, \"infer_img_s\": 12.0, \"params\": 2100000}\n";
        let (info, rows) = parse_peer_output(out).unwrap();
        assert_eq!(info.device, "cpu");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].train_img_s, 3.5);
        assert!(parse_peer_output("").is_err());
        assert!(parse_peer_output("{\"torch\": 1}").is_err());
    }

    #[test]
    fn compare_takes_each_sides_best_round() {
        let ours = [row("resunet", 4.0, 10.0), row("resunet", 5.0, 9.0)];
        let theirs = [row("resunet", 2.0, 20.0), row("resunet", 2.5, 18.0)];
        let c = compare(&ours, &theirs);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].tch_train_img_s, 5.0);
        assert_eq!(c[0].torch_train_img_s, Some(2.5));
        assert_eq!(c[0].train_ratio, Some(2.0));
        assert_eq!(c[0].infer_ratio, Some(0.5));
        let alone = compare(&ours, &[]);
        assert_eq!(alone[0].train_ratio, None);
    }
}
