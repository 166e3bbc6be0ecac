//! `speed`: training and inference images/s beside PyTorch.

use crate::args::{threads_label, DeviceArg};
use anyhow::{Context, Result};
use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use trainer::nets::Architecture;

#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub enum SpeedModel {
    Resunet,
    Resnet50,
}

impl SpeedModel {
    /// The reference's models at their default sizes.
    fn architecture(self) -> Architecture {
        match self {
            SpeedModel::Resunet => Architecture::default_resunet(),
            SpeedModel::Resnet50 => Architecture::Resnet50Filter { dropout: 0.3 },
        }
    }
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub enum DtypeArg {
    Fp32,
    Bf16,
}

#[derive(clap::Args)]
pub struct SpeedArgs {
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
    /// The PyTorch reference models file (kept outside the repository);
    /// without it only the tch side is measured
    #[arg(long, required_unless_present = "no_peer")]
    reference: Option<PathBuf>,
    #[arg(long, default_value = ".venv/bin/python3")]
    python: PathBuf,
    #[arg(long, default_value = "scripts/torch_speed.py")]
    script: PathBuf,
    /// Train with tch's per-parameter libtorch Adam instead of the
    /// trainer's fused one (to measure what fusing buys)
    #[arg(long)]
    libtorch_adam: bool,
    /// Measure the tch side only
    #[arg(long)]
    no_peer: bool,
    /// Also write the rows and ratios as JSON
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run(a: SpeedArgs) -> Result<()> {
    use trainer::train::speed::{adam_step_times, compare, measure, Dtype, Peer, SpeedCase};
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
                    model: m.architecture(),
                    batch,
                    size: 256,
                    dtype,
                    channels_last: !a.no_channels_last,
                    warmup,
                    steps,
                    fused_adam: !a.libtorch_adam,
                });
            }
        }
    }
    let peer = a
        .reference
        .clone()
        .filter(|_| !a.no_peer)
        .map(|reference| Peer {
            python: a.python.clone(),
            script: a.script.clone(),
            reference,
            threads: a.threads,
            device: if cuda { "cuda" } else { "cpu" },
        });
    let device_name = if cuda { "CUDA" } else { "CPU" };
    eprintln!(
        "speed on {device_name} ({}): {} cases x {} rounds, {steps} timed steps after {warmup} warm-up, 256x256{}{}",
        threads_label(tch::get_num_threads()),
        cases.len(),
        a.rounds,
        if a.no_channels_last { ", NCHW" } else { ", channels-last" },
        if a.libtorch_adam { ", libtorch Adam" } else { ", fused Adam" }
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
    let mut adam = Vec::new();
    for m in &a.models {
        let t = adam_step_times(&m.architecture(), device, !a.no_channels_last, steps)?;
        println!(
            "Adam step alone, {} ({} tensors): libtorch per tensor {:.2} ms, fused {:.2} ms ({:.2}x)",
            t.model,
            t.tensors,
            t.libtorch_ms,
            t.fused_ms,
            t.libtorch_ms / t.fused_ms
        );
        adam.push(t);
    }
    // Whether `fit` could feed the figures above: its loader alone, one
    // worker and all cores, at the largest batch measured.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let loader_batch = batches.iter().copied().max().unwrap_or(4).max(1) as usize;
    let loader_slices = (8 * loader_batch).max(64);
    let counts = if cores > 1 { vec![1, cores] } else { vec![1] };
    let mut loader = Vec::new();
    for workers in counts {
        let rate =
            trainer::train::speed::loader_images_per_s(256, loader_batch, workers, loader_slices)?;
        loader.push((workers, rate));
    }
    println!(
        "fit's loader alone (augmented 256x256 slices, batch {loader_batch}): {}",
        loader
            .iter()
            .map(|(workers, rate)| format!("{workers} worker(s) {rate:.0} img/s"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let loader: Vec<_> = loader
        .iter()
        .map(|(workers, rate)| serde_json::json!({"workers": workers, "img_s": rate}))
        .collect();
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
            "adam_step": adam,
            "loader": loader,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("-> {}", path.display());
    }
    Ok(())
}
