//! `neuroscreen-train compare`: one or two `eval-set` slices.csv files, each
//! figure with its patient-bootstrap interval and, for two, the paired
//! difference.

use anyhow::{Context, Result};
use std::path::PathBuf;
use trainer::report::compare::{compare, read_slices_csv, render_markdown, Bootstrap};

#[derive(clap::Args)]
pub struct CompareArgs {
    /// `slices.csv` of an eval-set run (the first set)
    first: PathBuf,
    /// `slices.csv` of a second eval-set run over the same slices: adds
    /// the paired difference (second minus first)
    second: Option<PathBuf>,
    /// Bootstrap resamples (patients drawn with replacement, per cohort)
    #[arg(long, default_value_t = 2000)]
    resamples: usize,
    /// Seed of the resampling (the same draws for both sets)
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write the table to this Markdown file
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(a: CompareArgs) -> Result<()> {
    anyhow::ensure!(
        a.resamples >= 100,
        "--resamples {}: use at least 100",
        a.resamples
    );
    let paths: Vec<PathBuf> = std::iter::once(a.first).chain(a.second).collect();
    let rows = paths
        .iter()
        .map(|p| read_slices_csv(p))
        .collect::<Result<Vec<_>, _>>()?;
    let sets: Vec<&[_]> = rows.iter().map(Vec::as_slice).collect();
    let found = compare(
        &sets,
        Bootstrap {
            resamples: a.resamples,
            seed: a.seed,
        },
    )?;
    let names: Vec<String> = match paths.as_slice() {
        [_] => vec!["value".into()],
        _ => vec!["first".into(), "second".into()],
    };
    let mut md = String::new();
    for (name, p) in ["first", "second"].iter().zip(&paths) {
        md.push_str(&format!("{name}: {}\n", p.display()));
    }
    md.push_str(&format!(
        "95 % intervals: {} resamples of each cohort's patients (seed {}), the same draws for both files\n\n",
        a.resamples, a.seed
    ));
    if !found.unpaired.is_empty() {
        md.push_str(&format!(
            "left out, scored in one file only: {}\n\n",
            found.unpaired.join(", ")
        ));
    }
    md.push_str(&render_markdown(&found.lines, &names));
    print!("{md}");
    if let Some(out) = a.out {
        std::fs::write(&out, &md).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}
