//! `arch-bench`: each architecture's FLOPs and tract latency against the
//! machine's measured peak, and whether a filter pays.

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use trainer::nets::Architecture;

#[derive(clap::Args)]
pub struct ArchBenchArgs {
    /// Timed runs per model (median reported) after one warm-up
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
    /// Share of slices with tumour (LGG: 0.35)
    #[arg(long, default_value_t = 0.35)]
    pub prevalence: f64,
    /// Segmenter input side
    #[arg(long, default_value_t = 256)]
    pub size: i64,
    /// Filter input sides tried for the ResNet-18 filter (ResNet-50 runs at --size)
    #[arg(long, value_delimiter = ',', default_value = "256,128,64")]
    pub small_filter_sizes: Vec<i64>,
    /// ResNet-18 widths tried at each of those sides (64 = torchvision's)
    #[arg(long, value_delimiter = ',', default_value = "64,16")]
    pub small_filter_widths: Vec<i64>,
    /// Also ResUNets of these base widths at --size (widths base x 1, 2, 4,
    /// 8, 16): how tract's efficiency follows the channel counts
    #[arg(long, value_delimiter = ',')]
    pub resunet_bases: Vec<i64>,
    /// Also ResUNets of these widths at --size, each written as its widths
    /// joined by '-' (8-16-32-96-192): uneven widenings, e.g. only the deep
    /// levels, where tract runs wide layers best
    #[arg(long, value_delimiter = ',', value_parser = parse_widths)]
    pub resunet_widths: Vec<Vec<i64>>,
    /// Also time every exported file in onnxruntime (same thread count),
    /// with this Python (scripts/ort_bench.py --file)
    #[arg(long)]
    pub ort_python: Option<PathBuf>,
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn run(args: ArchBenchArgs) -> Result<()> {
    let ArchBenchArgs {
        runs,
        prevalence,
        size,
        small_filter_sizes,
        small_filter_widths,
        resunet_bases,
        resunet_widths,
        ort_python,
        json,
    } = args;
    use trainer::export::arch_bench::{
        bench_arch, exported_path, measure_best_peak, FilterEconomy, PEAK_SHAPES,
    };
    anyhow::ensure!(
        (0.0..=1.0).contains(&prevalence),
        "--prevalence is a share between 0 and 1"
    );
    let work = tempfile_dir()?;
    let mut jobs: Vec<(String, Architecture, i64)> = vec![(
        Architecture::default_resunet().label(),
        Architecture::default_resunet(),
        size,
    )];
    for arch in [
        Architecture::Unet {
            widths: vec![16, 32, 64, 128, 256],
        },
        Architecture::Resnet50Filter { dropout: 0.3 },
    ] {
        jobs.push((arch.label(), arch, size));
    }
    for &width in &small_filter_widths {
        for &s in &small_filter_sizes {
            let arch = Architecture::Resnet18Filter {
                dropout: 0.3,
                width,
            };
            jobs.push((arch.label(), arch, s));
        }
    }
    for &base in &resunet_bases {
        anyhow::ensure!(base > 0, "--resunet-bases: widths are positive");
        let widths: Vec<i64> = (0..5).map(|k| base << k).collect();
        jobs.push((
            format!("resunet_w{base}"),
            Architecture::ResUnet { widths },
            size,
        ));
    }
    for widths in resunet_widths {
        let name = format!(
            "resunet_{}",
            widths
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join("-")
        );
        jobs.push((name, Architecture::ResUnet { widths }, size));
    }
    let bar = ProgressBar::new(jobs.len() as u64 + 1).with_style(
        ProgressStyle::with_template("arch-bench {bar:30} {pos}/{len} {msg}")
            .expect("valid template"),
    );
    bar.set_message("peak");
    let peak = measure_best_peak(&PEAK_SHAPES, runs, &work)?;
    bar.inc(1);
    let mut rows = Vec::new();
    for (name, arch, s) in &jobs {
        bar.set_message(format!("{name} @ {s}"));
        let mut row = bench_arch(name, arch, *s, runs, &work)?;
        if let Some(python) = &ort_python {
            row.ort_ms = Some(ort_ms(python, &exported_path(&work, name, *s), runs)?);
        }
        rows.push(row);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let _ = std::fs::remove_dir_all(&work);
    println!(
        "tract f32, 1 thread, median of {runs} runs; peak = best of {runs} runs over {} matrix products (1x1 convs), reached at {}x{}x{}: {:.1} GFLOP/s",
        PEAK_SHAPES.len(), peak.shape[0], peak.shape[1], peak.shape[2], peak.gflops
    );
    let peer = ort_python.is_some();
    println!(
        "{:<20} {:>5} {:>10} {:>9} {:>10} {:>9} {:>8}{}",
        "model",
        "input",
        "params",
        "GFLOP",
        "ms",
        "GFLOP/s",
        "of peak",
        if peer {
            format!(" {:>8} {:>9}", "ort ms", "tract/ort")
        } else {
            String::new()
        }
    );
    for r in &rows {
        println!(
            "{:<20} {:>5} {:>10} {:>9.2} {:>10.1} {:>9.1} {:>7.0}%{}",
            r.model,
            r.input,
            r.params,
            2.0 * r.macs as f64 / 1e9,
            r.ms_median,
            r.gflops,
            100.0 * r.gflops / peak.gflops,
            r.ort_ms.map_or(String::new(), |o| format!(
                " {o:>8.1} {:>8.2}x",
                r.ms_median / o
            ))
        );
    }
    if rows.iter().any(|r| r.gflops > peak.gflops) {
        println!(
            "(above 100 %: that model's convolutions ran faster than any of the peak's products; \
             the peak is a floor of the machine's ceiling, not the ceiling)"
        );
    }
    let seg = &rows[0];
    // An ideal filter passes exactly the tumour slices; a realistic one at
    // 95 % sensitivity and 90 % specificity passes a few more.
    let realistic = prevalence * 0.95 + (1.0 - prevalence) * 0.10;
    println!(
        "\nfilter in front of {} @ {} px ({:.1} ms), {:.0} % tumour slices: mean ms per slice",
        seg.model,
        seg.input,
        seg.ms_median,
        100.0 * prevalence
    );
    println!(
        "{:<30} {:>10} {:>14} {:>9} {:>18} {:>9}",
        "filter", "filter ms", "ideal filter", "speed-up", "sens 95 / spec 90", "speed-up"
    );
    let mut economies = Vec::new();
    for f in rows.iter().filter(|r| r.model.contains("_filter")) {
        let ideal = FilterEconomy::new(f, seg, prevalence, prevalence);
        let real = FilterEconomy::new(f, seg, prevalence, realistic);
        println!(
            "{:<30} {:>10.1} {:>14.1} {:>8.2}x {:>18.1} {:>8.2}x",
            ideal.filter,
            f.ms_median,
            ideal.with_filter_ms,
            ideal.speedup(),
            real.with_filter_ms,
            real.speedup()
        );
        economies.push(ideal);
        economies.push(real);
    }
    println!(
        "(no filter: {:.1} ms per slice; speed-up above 1 means the filter saves time)",
        seg.ms_median
    );
    if let Some(path) = json {
        let doc = serde_json::json!({ "runs": runs, "peak": peak, "models": rows, "filter_economy": economies });
        std::fs::write(&path, serde_json::to_string_pretty(&doc)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("-> {}", path.display());
    }
    Ok(())
}

/// `8-16-32-96-192` as widths: positive, at least two levels.
fn parse_widths(text: &str) -> Result<Vec<i64>, String> {
    let widths = text
        .split('-')
        .map(|w| {
            w.trim()
                .parse::<i64>()
                .ok()
                .filter(|&w| w > 0)
                .ok_or_else(|| format!("{text:?}: {w:?} is not a positive width"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if widths.len() < 2 {
        return Err(format!("{text:?}: a ResUNet needs at least two widths"));
    }
    Ok(widths)
}

/// onnxruntime's median ms for `file` on one thread (the peer tract is
/// timed against here).
fn ort_ms(python: &std::path::Path, file: &std::path::Path, runs: usize) -> Result<f64> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/ort_bench.py");
    let out = std::process::Command::new(python)
        .arg(&script)
        .arg("--file")
        .arg(file)
        .args(["--threads", "1", "--runs", &runs.to_string()])
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "{} --file {}: {}",
        script.display(),
        file.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    v["whole_ms"]
        .as_f64()
        .context("onnxruntime's output has no whole_ms")
}

/// A fresh scratch folder for exported files.
fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("neuroscreen-arch-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::parse_widths;

    #[test]
    fn widths_are_read_from_dashes_and_bad_ones_named() {
        assert_eq!(parse_widths("8-16-32-96-192"), Ok(vec![8, 16, 32, 96, 192]));
        let zero = parse_widths("8-0-32").unwrap_err();
        assert!(zero.contains("\"0\""), "{zero}");
        assert!(parse_widths("8").unwrap_err().contains("two widths"));
        assert!(parse_widths("8-x").is_err());
    }
}
