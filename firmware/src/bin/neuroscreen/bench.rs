//! `neuroscreen bench`: latency per stage, tract beside onnxruntime.

use crate::settings::{write_json, ModelArgs};
use anyhow::Result;
use firmware::bench;
use firmware::engine::PrecisionChoice;
use models::manifest::Precision;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Which precisions it times: those of --precision or of the config's
    /// models.precision; auto times every precision the set ships. The models
    /// folder also holds the samples/ it times on
    #[command(flatten)]
    model: ModelArgs,
    /// Timed runs per figure
    #[arg(long, default_value_t = 30)]
    runs: usize,
    /// Threads for tract and onnxruntime alike [default: models.threads of
    /// --config, else every core]; several (`--threads 1,2`) time the set at
    /// each and end with what the extra threads bought (--json then writes
    /// a list of reports)
    #[arg(long, value_delimiter = ',')]
    threads: Vec<usize>,
    /// Python that has onnxruntime [default: .venv/bin/python3 if present, else python3]
    #[arg(long)]
    python: Option<PathBuf>,
    /// Skip the onnxruntime peer (a board without Python)
    #[arg(long)]
    no_ort: bool,
    /// Also write every figure as JSON here
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also screen every slice under this folder with the filter on and
    /// off (a `<slice>_mask` file beside each gives the truth, as in the
    /// LGG layout): time per slice, what the filter passes and misses
    #[arg(long)]
    slices: Option<PathBuf>,
    /// Instead: where each model's time goes, per operator kind, tract's
    /// plan timed node by node beside onnxruntime's own profiler
    #[arg(long, conflicts_with = "slices")]
    profile: bool,
    /// With --profile: input sizes in px (repeatable) [default: the shipped size]
    #[arg(long, requires = "profile")]
    size: Vec<usize>,
    /// Instead: each convolution of the f32 models cut out as a one-node
    /// ONNX file of the same shape and timed alone in tract and onnxruntime,
    /// with the kernel tract picks for it
    #[arg(long, conflicts_with_all = ["slices", "profile"])]
    kernels: bool,
    /// With --kernels: keep the one-convolution files in this folder (the
    /// reproducer; without it they go to a temporary folder)
    #[arg(long, requires = "kernels")]
    write: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<usize> {
    let config = args.model.config.clone();
    let appliance = args.model.resolve()?;
    let models = appliance.models.dir.clone();
    let thread_counts = if args.threads.is_empty() {
        vec![appliance.engine().threads]
    } else {
        args.threads.clone()
    };
    if let Some(zero) = thread_counts.iter().find(|&&t| t == 0) {
        anyhow::bail!("--threads {zero}: a thread count is at least 1");
    }
    let threads = thread_counts[0];
    let precisions = match appliance.models.precision {
        PrecisionChoice::Auto => Vec::new(),
        PrecisionChoice::F32 => vec![Precision::F32],
        PrecisionChoice::Int8 => vec![Precision::Int8],
    };
    let ort = (!args.no_ort).then(|| {
        let python = args.python.unwrap_or_else(default_python);
        (python, ort_script(&models))
    });
    if args.kernels {
        if thread_counts.len() > 1 {
            anyhow::bail!("--kernels times one thread count; give --threads once");
        }
        let report = bench::kernels::run(&bench::kernels::KernelOptions {
            models,
            threads,
            runs: args.runs.max(1),
            ort,
            write: args.write,
        })?;
        bench::kernels::print(&report, &mut std::io::stdout().lock())?;
        if let Some(path) = args.json {
            write_json(&path, &report)?;
        }
        return Ok(0);
    }
    if args.profile {
        if thread_counts.len() > 1 {
            anyhow::bail!("--profile times one thread count; give --threads once");
        }
        let precisions = if precisions.is_empty() {
            vec![Precision::F32, Precision::Int8]
        } else {
            precisions
        };
        let report = bench::profile::run(&bench::profile::ProfileOptions {
            models,
            precisions,
            sizes: args.size,
            threads,
            runs: args.runs.max(1),
            ort,
        })?;
        bench::profile::print(&report, &mut std::io::stdout().lock())?;
        if let Some(path) = args.json {
            write_json(&path, &report)?;
        }
        return Ok(0);
    }
    let mut reports = Vec::new();
    for (k, &threads) in thread_counts.iter().enumerate() {
        if k > 0 {
            println!();
        }
        let report = bench::run(&bench::BenchOptions {
            models: models.clone(),
            config: config.clone(),
            precisions: precisions.clone(),
            runs: args.runs.max(1),
            threads,
            ort: ort.clone(),
            slices: args.slices.clone(),
        })?;
        bench::print(&report, &mut std::io::stdout().lock())?;
        reports.push(report);
    }
    if reports.len() > 1 {
        bench::print_scaling(&reports, &mut std::io::stdout().lock())?;
    }
    if let Some(path) = args.json {
        match reports.as_slice() {
            [one] => write_json(&path, one)?,
            several => write_json(&path, &several)?,
        }
    }
    Ok(0)
}

fn default_python() -> PathBuf {
    let venv = Path::new(".venv/bin/python3");
    if venv.exists() {
        venv.to_path_buf()
    } else {
        PathBuf::from("python3")
    }
}

/// `scripts/ort_bench.py` beside the models folder's repository, else the
/// one of the repository this binary was built from.
fn ort_script(models: &Path) -> PathBuf {
    let beside = models.join("../scripts/ort_bench.py");
    if beside.exists() {
        beside
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/ort_bench.py")
    }
}
