//! `neuroscreen inspect`: how slices decode and map to the model input.

use anyhow::Result;
use firmware::inputs;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Slice files (PNG, TIFF, JPEG) or folders of them
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Model input side in pixels (the shipped models take 128)
    #[arg(long, default_value_t = 128)]
    size: u32,
    /// One JSON object per line instead of a table
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<usize> {
    let files = inputs::expand(&args.paths)?;
    Ok(firmware::inspect::run(
        &files,
        args.size,
        args.json,
        &mut std::io::stdout().lock(),
    )?)
}
