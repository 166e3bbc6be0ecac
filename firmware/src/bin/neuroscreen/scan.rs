//! `neuroscreen scan`: slices through the engine into a results folder.

use crate::settings::{load_engine, pixel_spacing, ModelArgs};
use anyhow::Result;
use firmware::{inputs, screener, store};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// Slice files (PNG, TIFF, JPEG) or folders of them
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Results folder (created if missing; results.jsonl is appended to)
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
    /// Drop mask components smaller than this many pixels (0 keeps all) [default:
    /// models.min_component_px of --config, else 0]
    #[arg(long)]
    min_component_px: Option<usize>,
    /// Pixel spacing in mm for slices that do not state it: one value, or rows,columns;
    /// records then carry the area in mm²
    #[arg(long, value_delimiter = ',', num_args = 1..=2)]
    pixel_spacing_mm: Vec<f64>,
    /// For DICOM inputs that get a mask, also write the overlay as a DICOM Secondary
    /// Capture (<stem>.sc.dcm) beside the SEG
    #[arg(long)]
    secondary_capture: bool,
}

pub fn run(args: Args) -> Result<usize> {
    let files = inputs::expand(&args.paths)?;
    let mut appliance = args.model.resolve()?;
    if let Some(px) = args.min_component_px {
        appliance.models.min_component_px = px;
    }
    let engine = load_engine(&appliance)?;
    let store = store::ResultsStore::open(&args.out)?;
    tracing::info!(inputs = files.len(), out = %store.dir().display(), "scanning");
    let spacing = pixel_spacing(&args.pixel_spacing_mm)?.or(appliance.inbox.pixel_spacing_mm);
    let screener = screener::Screener::new(Arc::new(engine), &store)
        .with_limits(appliance.inputs)
        .with_spacing(spacing)
        .with_secondary_capture(args.secondary_capture || appliance.dicom.secondary_capture);
    let batch = screener::run(&screener, &files, &mut std::io::stdout().lock())?;
    Ok(batch.summary.errors)
}
