//! What every command resolves the same way: the model set, the config
//! file and the flags over it, the engine built from them.

use anyhow::Result;
use firmware::config::{self, ApplianceConfig, ModelsConfig};
use firmware::engine::{Engine, PrecisionChoice};
use std::path::{Path, PathBuf};

/// The flags every screening command shares: which config, model set and
/// precision; [`ModelArgs::resolve`] turns them into the settings it runs with.
#[derive(clap::Args)]
pub struct ModelArgs {
    /// appliance.toml: its [models] settings (dir, precision, threads, min_component_px,
    /// pinned public_key) and [inputs] limits (scan also its pixel spacing and DICOM
    /// settings); flags given here win
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Folder holding manifest.json and the models [default: models.dir of --config, else
    /// ./models, else the models/ folder of the repository this binary was built from]
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Which model files to run; auto takes f32 (the faster with tract; int8 when only it
    /// ships) [default: models.precision of --config, else auto]
    #[arg(long, value_enum)]
    pub precision: Option<PrecisionChoice>,
}

impl ModelArgs {
    pub fn resolve(self) -> Result<ApplianceConfig> {
        appliance_config(self.config.as_deref(), self.models, self.precision)
    }
}

/// The settings a screening command runs with: `config` (or the defaults,
/// models from [`default_models_dir`]), then the flags given, which win.
fn appliance_config(
    config: Option<&Path>,
    models: Option<PathBuf>,
    precision: Option<PrecisionChoice>,
) -> Result<ApplianceConfig> {
    let mut appliance = match config {
        Some(path) => ApplianceConfig::load(path)?,
        None => ApplianceConfig {
            models: ModelsConfig {
                dir: default_models_dir(),
                ..ModelsConfig::default()
            },
            ..ApplianceConfig::default()
        },
    };
    if let Some(dir) = models {
        appliance.models.dir = dir;
    }
    if let Some(p) = precision {
        appliance.models.precision = p;
    }
    Ok(appliance)
}

/// The engine as `appliance` says: its model set, precision, threads and,
/// when `models.public_key` pins one, only a set signed with that key.
pub fn load_engine(appliance: &ApplianceConfig) -> Result<Engine> {
    Engine::load(
        &appliance.models.dir.join("manifest.json"),
        appliance.engine(),
    )
    .map_err(|e| anyhow::anyhow!(e).context("refusing to start"))
}

/// `./models` when it holds a set, else the repository's own `models/`.
pub fn default_models_dir() -> PathBuf {
    let here = Path::new("models");
    if here.join("manifest.json").exists() {
        here.to_path_buf()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
    }
}

pub fn pixel_spacing(values: &[f64]) -> Result<Option<[f64; 2]>> {
    let spacing = match *values {
        [] => return Ok(None),
        [s] => [s, s],
        [r, c] => [r, c],
        _ => anyhow::bail!("--pixel-spacing-mm takes one or two values"),
    };
    config::check_spacing(spacing).map_err(|e| anyhow::anyhow!("--pixel-spacing-mm: {e}"))?;
    Ok(Some(spacing))
}

/// Writes `value` as pretty JSON to `path`, whole or not at all.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)? + "\n";
    firmware::store::write_file_atomically(path, text.as_bytes())?;
    Ok(())
}
