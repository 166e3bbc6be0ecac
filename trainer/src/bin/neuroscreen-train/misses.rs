//! `neuroscreen-train misses`: why an `eval-set` run missed the tumour
//! slices it missed, whose they were, and how its outlines err.

use anyhow::{Context, Result};
use std::path::PathBuf;
use trainer::report::compare::read_slices_csv;
use trainer::report::misses::{misses, render_markdown};

#[derive(clap::Args)]
pub struct MissesArgs {
    /// `slices.csv` of an eval-set run
    slices: PathBuf,
    /// Also write the tables to this Markdown file
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(a: MissesArgs) -> Result<()> {
    let rows = read_slices_csv(&a.slices)?;
    let md = format!(
        "{}\n\n{}",
        a.slices.display(),
        render_markdown(&misses(&rows))
    );
    print!("{md}");
    if let Some(out) = a.out {
        std::fs::write(&out, &md).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}
