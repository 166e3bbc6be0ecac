//! What a program embedding the appliance does: load a model set (hashes
//! checked before tract sees a byte), screen one slice, print the verdict.
//!
//!     cargo run --release -p firmware --example screen_one -- \
//!         models/samples/sample_06_tumour_flair.png [models]

use firmware::{open_slice, Engine, EngineConfig, Verdict};
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let slice_path = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: screen_one SLICE [MODELS_DIR]"))?;
    let models = args.next().unwrap_or_else(|| PathBuf::from("models"));
    let engine = Engine::load(&models.join("manifest.json"), EngineConfig::default())?;
    // PNG, TIFF, JPEG or DICOM; a special or oversized file is refused.
    let slice = open_slice(&slice_path)?;
    let screening = engine.screen(&slice)?;
    let area = screening
        .segmentation
        .as_ref()
        .map_or(0, |s| s.summary.area_px);
    let verdict = match screening.verdict {
        Verdict::Tumour => "tumour",
        Verdict::Clear => "clear",
    };
    println!(
        "{}: {verdict}, P(tumour) {:.3}, mask {area} px",
        slice_path.display(),
        screening.tumour_probability
    );
    Ok(())
}
