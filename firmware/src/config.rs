//! `appliance.toml`: what `neuroscreen run` watches, where it stores, what it
//! shows. Every field has a default; unknown keys are refused so a typo does
//! not silently leave a setting at its default.

use crate::engine::{EngineConfig, PrecisionChoice};
use crate::error::{Error, Result};
use crate::store::retention::Retention;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApplianceConfig {
    pub models: ModelsConfig,
    pub inbox: InboxConfig,
    pub store: StoreConfig,
    pub display: DisplayConfig,
    pub pipeline: PipelineConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// Folder holding `manifest.json`.
    pub dir: PathBuf,
    pub precision: PrecisionChoice,
    /// Threads for inference; 0 takes every core.
    pub threads: usize,
    pub min_component_px: usize,
    /// ed25519 public key (64 hex digits) of whoever signs model sets; when
    /// set, a model set without a valid `manifest.json.sig` is refused.
    pub public_key: Option<String>,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        Self {
            dir: "models".into(),
            precision: PrecisionChoice::Auto,
            threads: 0,
            min_component_px: 0,
            public_key: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboxConfig {
    /// Slices dropped here are screened once closed after writing or
    /// renamed in; created if missing.
    pub dir: PathBuf,
    /// [between rows, between columns] in mm for slices that do not state
    /// their own spacing; with it records carry the area in mm².
    pub pixel_spacing_mm: Option<[f64; 2]>,
}

impl Default for InboxConfig {
    fn default() -> Self {
        Self {
            dir: "inbox".into(),
            pixel_spacing_mm: None,
        }
    }
}

/// A spacing the appliance can believe: positive and below 10 mm (MR
/// in-plane spacing is well under that).
pub fn check_spacing([r, c]: [f64; 2]) -> std::result::Result<(), String> {
    if [r, c]
        .iter()
        .all(|v| v.is_finite() && *v > 0.0 && *v < 10.0)
    {
        Ok(())
    } else {
        Err(format!(
            "[{r}, {c}] mm is not a pixel spacing (each value in (0, 10))"
        ))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub dir: PathBuf,
    #[serde(flatten)]
    pub retention: Retention,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            dir: "results".into(),
            retention: Retention::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisplayKind {
    /// No screen attached: results only go to the store.
    None,
    /// The screen is written as a PNG after every result (headless runs,
    /// tests, a kiosk browser showing the file).
    Snapshot,
    /// A Linux framebuffer (`display.device`), sized by the kernel.
    Framebuffer,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DisplayConfig {
    pub kind: DisplayKind,
    /// For `snapshot`: the PNG to rewrite; default `<store.dir>/screen.png`.
    pub snapshot: Option<PathBuf>,
    /// For `framebuffer`: the device.
    pub device: PathBuf,
    /// For `framebuffer`: where its geometry is read; default
    /// `/sys/class/graphics/<device name>`.
    pub sysfs: Option<PathBuf>,
    /// For `snapshot`; a framebuffer has the kernel's size.
    pub width: u32,
    pub height: u32,
}

impl Default for DisplayConfig {
    fn default() -> Self {
        Self {
            kind: DisplayKind::Snapshot,
            snapshot: None,
            device: "/dev/fb0".into(),
            sysfs: None,
            width: 480,
            height: 320,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Slices waiting for inference; a full queue holds the sources back
    /// (files are never dropped).
    pub queue: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self { queue: 16 }
    }
}

impl ApplianceConfig {
    /// Reads and validates `path`. Relative paths in it are taken from the
    /// file's own folder, so the service does not depend on its working
    /// directory.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let config = Self::from_toml(&text, path)?;
        config.check_models_dir().map_err(|reason| Error::Config {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(config)
    }

    /// Parses `text` as the file `path` and checks every value without
    /// looking at the disk (the fuzz target's entry; `load` adds the disk).
    pub fn from_toml(text: &str, path: &Path) -> Result<Self> {
        let mut config: Self = toml::from_str(text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            reason: e.to_string().trim_end().to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_relative_to(base);
        config.validate_values().map_err(|reason| Error::Config {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(config)
    }

    fn resolve_relative_to(&mut self, base: &Path) {
        for p in [
            &mut self.models.dir,
            &mut self.inbox.dir,
            &mut self.store.dir,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Some(p) = self.display.snapshot.as_mut().filter(|p| p.is_relative()) {
            *p = base.join(&*p);
        }
    }

    /// Checks what serde cannot; the message starts with the offending key.
    pub fn validate(&self) -> std::result::Result<(), String> {
        self.validate_values()?;
        self.check_models_dir()
    }

    /// Everything but the disk (board profiles are checked with this: their
    /// paths exist only on the board).
    pub fn validate_values(&self) -> std::result::Result<(), String> {
        if self.models.threads > 256 {
            return Err(format!(
                "models.threads: {} is more than 256; 0 takes every core",
                self.models.threads
            ));
        }
        if let Some(key) = &self.models.public_key {
            models::signature::parse_public_key(key)
                .map_err(|e| format!("models.public_key: {e}"))?;
        }
        if let Some(spacing) = self.inbox.pixel_spacing_mm {
            check_spacing(spacing).map_err(|e| format!("inbox.pixel_spacing_mm: {e}"))?;
        }
        if self.pipeline.queue == 0 || self.pipeline.queue > 10_000 {
            return Err(format!(
                "pipeline.queue: {} is outside 1..=10000",
                self.pipeline.queue
            ));
        }
        let (w, h) = (self.display.width, self.display.height);
        if !(64..=4096).contains(&w) || !(64..=4096).contains(&h) {
            return Err(format!(
                "display.width/height: {w}x{h} is outside 64..=4096 pixels"
            ));
        }
        let inbox = std::path::absolute(&self.inbox.dir).unwrap_or(self.inbox.dir.clone());
        let store = std::path::absolute(&self.store.dir).unwrap_or(self.store.dir.clone());
        if store.starts_with(&inbox) {
            return Err(format!(
                "store.dir: {} is inside inbox.dir {}; results would be screened as slices",
                store.display(),
                inbox.display()
            ));
        }
        Ok(())
    }

    /// The one check that looks at the disk.
    pub fn check_models_dir(&self) -> std::result::Result<(), String> {
        if !self.models.dir.join("manifest.json").is_file() {
            return Err(format!(
                "models.dir: {} holds no manifest.json",
                self.models.dir.display()
            ));
        }
        Ok(())
    }

    pub fn engine(&self) -> EngineConfig {
        let mut engine = EngineConfig {
            precision: self.models.precision,
            min_component_px: self.models.min_component_px,
            ..EngineConfig::default()
        };
        if self.models.threads > 0 {
            engine.threads = self.models.threads;
        }
        // Checked by validate_values; a config that skipped it pins nothing.
        engine.public_key = self
            .models
            .public_key
            .as_deref()
            .and_then(|k| models::signature::parse_public_key(k).ok());
        engine
    }

    pub fn snapshot_path(&self) -> Option<PathBuf> {
        match self.display.kind {
            DisplayKind::None | DisplayKind::Framebuffer => None,
            DisplayKind::Snapshot => Some(
                self.display
                    .snapshot
                    .clone()
                    .unwrap_or_else(|| self.store.dir.join("screen.png")),
            ),
        }
    }
}

/// A commented example holding every key at its default: `neuroscreen run
/// --print-config` writes it, and a test keeps it in step with the structs.
pub const EXAMPLE: &str = include_str!("../appliance.example.toml");

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        std::fs::create_dir_all(dir.join("models")).unwrap();
        std::fs::write(dir.join("models/manifest.json"), b"{}").unwrap();
        let p = dir.join("appliance.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn the_example_parses_and_matches_the_defaults() {
        let d = tempfile::tempdir().unwrap();
        let config = ApplianceConfig::load(&write(d.path(), EXAMPLE)).unwrap();
        let defaults = ApplianceConfig::default();
        assert_eq!(config.pipeline.queue, defaults.pipeline.queue);
        assert_eq!(config.display.kind, defaults.display.kind);
        assert_eq!(config.store.retention, defaults.store.retention);
        assert_eq!(config.models.precision, defaults.models.precision);
        assert_eq!(config.inbox.dir, d.path().join("inbox"));
    }

    #[test]
    fn the_board_profiles_are_valid_configs() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../board/profiles");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let config: ApplianceConfig =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            config
                .validate_values()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(config.display.kind, DisplayKind::Framebuffer);
            assert!(config.models.threads >= 4, "{}", path.display());
            n += 1;
        }
        assert_eq!(n, 3);
    }

    #[test]
    fn an_empty_file_takes_every_default() {
        let d = tempfile::tempdir().unwrap();
        let config = ApplianceConfig::load(&write(d.path(), "")).unwrap();
        assert_eq!(config.store.dir, d.path().join("results"));
        assert_eq!(
            config.snapshot_path(),
            Some(d.path().join("results/screen.png"))
        );
    }

    #[test]
    fn a_misspelt_key_is_named() {
        let d = tempfile::tempdir().unwrap();
        let e = ApplianceConfig::load(&write(d.path(), "[store]\nmax_age_dayz = 3\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("appliance.toml") && e.contains("max_age_dayz"),
            "{e}"
        );
    }

    #[test]
    fn a_wrong_type_is_named_with_its_key() {
        let d = tempfile::tempdir().unwrap();
        let e = ApplianceConfig::load(&write(d.path(), "[models]\nprecision = \"fp16\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("precision") && e.contains("fp16"), "{e}");
    }

    #[test]
    fn values_serde_accepts_but_the_appliance_cannot_use_are_refused() {
        let d = tempfile::tempdir().unwrap();
        for (text, key) in [
            ("[pipeline]\nqueue = 0\n", "pipeline.queue"),
            ("[display]\nwidth = 10\n", "display.width"),
            (
                "[inbox]\ndir = \"x\"\n[store]\ndir = \"x/results\"\n",
                "store.dir",
            ),
            ("[models]\ndir = \"nowhere\"\n", "models.dir"),
            (
                "[inbox]\npixel_spacing_mm = [0.5, 0.0]\n",
                "inbox.pixel_spacing_mm",
            ),
        ] {
            let e = ApplianceConfig::load(&write(d.path(), text))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }
}
