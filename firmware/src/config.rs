//! `appliance.toml`: what `neuroscreen run` watches, where it stores, what it
//! shows. Every field has a default; unknown keys are refused so a typo does
//! not silently leave a setting at its default.

use crate::engine::{EngineConfig, PrecisionChoice};
use crate::error::{Error, Result};
use crate::input_file::InputLimits;
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
    pub dicom: DicomConfig,
    pub camera: CameraConfig,
    pub inputs: InputLimits,
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

impl InboxConfig {
    /// Where the camera source saves the frames it takes.
    pub fn camera_dir(&self) -> PathBuf {
        self.dir.join("camera")
    }

    /// Where the DICOM receiver stores the objects it accepts.
    pub fn received_dir(&self) -> PathBuf {
        self.dir.join("dicom")
    }

    /// The folders whose files the appliance wrote itself: retention
    /// removes such an input with its result's files, as nobody else will.
    /// Files a scanner or a user dropped into the inbox are never removed.
    pub fn own_input_dirs(&self) -> Vec<PathBuf> {
        vec![self.camera_dir(), self.received_dir()]
    }
}

impl Default for InboxConfig {
    fn default() -> Self {
        Self {
            dir: "inbox".into(),
            pixel_spacing_mm: None,
        }
    }
}

/// A pixel spacing refused by [`check_spacing`]: [between rows, between
/// columns] in mm.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("[{}, {}] mm is not a pixel spacing (each value in (0, 10))", .0[0], .0[1])]
pub struct SpacingError(pub [f64; 2]);

/// A spacing the appliance can believe: positive and below 10 mm (MR
/// in-plane spacing is well under that).
pub fn check_spacing([r, c]: [f64; 2]) -> std::result::Result<(), SpacingError> {
    if [r, c]
        .iter()
        .all(|v| v.is_finite() && *v > 0.0 && *v < 10.0)
    {
        Ok(())
    } else {
        Err(SpacingError([r, c]))
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
    /// An SPI LCD (`[display.spi_lcd]`); needs a build with `--features spi-lcd`.
    SpiLcd,
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
    pub spi_lcd: SpiLcdSettings,
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
            spi_lcd: SpiLcdSettings::default(),
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

/// The DICOM receiver (C-STORE SCP) and the DICOM result objects.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DicomConfig {
    /// Off: no socket is opened at all.
    pub enabled: bool,
    /// Address to listen on.
    pub bind: std::net::IpAddr,
    /// TCP port; 0 lets the system choose (the log says which).
    pub port: u16,
    /// Our AE title: associations calling another title are rejected.
    pub ae_title: String,
    /// Calling AE titles that may echo and store. Nothing else is accepted,
    /// so an enabled receiver needs at least one.
    pub allowed_calling_ae_titles: Vec<String>,
    /// Associations served at once; more are rejected (transient, local
    /// limit exceeded) so the scanner retries.
    pub max_associations: usize,
    /// Seconds without a message before an association is aborted.
    pub idle_timeout_s: u64,
    /// Seconds an association may last in all.
    pub association_timeout_s: u64,
    /// Largest object accepted; a bigger one aborts its association.
    pub max_object_bytes: u64,
    /// Also write the overlay as a Secondary Capture (`<stem>.sc.dcm`) for
    /// every DICOM input that gets a mask (received or dropped in).
    pub secondary_capture: bool,
}

impl Default for DicomConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            bind: std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            port: 11112,
            ae_title: "NEUROSCREEN".into(),
            allowed_calling_ae_titles: Vec::new(),
            max_associations: 4,
            idle_timeout_s: 30,
            association_timeout_s: 600,
            max_object_bytes: 256 * 1024 * 1024,
            secondary_capture: false,
        }
    }
}

/// A text refused by [`check_ae_title`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an AE title (1-16 printable ASCII characters, no backslash)")]
pub struct AeTitleError(pub String);

/// An AE title as PS3.5 allows: 1-16 characters of printable ASCII without
/// backslash, not only spaces.
pub fn check_ae_title(title: &str) -> std::result::Result<(), AeTitleError> {
    let ok = !title.trim().is_empty()
        && title.len() <= 16
        && title
            .chars()
            .all(|c| (c.is_ascii_graphic() && c != '\\') || c == ' ');
    if ok {
        Ok(())
    } else {
        Err(AeTitleError(title.to_string()))
    }
}

/// A value in `appliance.toml` that the appliance cannot use; every message
/// starts with the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A number (or a width/height pair) outside what `key` allows.
    #[error("{key}: {value} is outside {allowed}")]
    OutOfRange {
        key: &'static str,
        value: String,
        allowed: &'static str,
    },
    /// A value `key` does not take; `expected` words what it takes.
    #[error("{key}: {value} is not {expected}")]
    NotOneOf {
        key: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("models.threads: {0} is more than 256; 0 takes every core")]
    TooManyThreads(usize),
    #[error("models.public_key: {0}")]
    PublicKey(#[source] models::signature::KeyError),
    #[error("inbox.pixel_spacing_mm: {0}")]
    PixelSpacing(#[source] SpacingError),
    /// `inputs.*`, as [`InputLimits::problem`] words it (key included).
    #[error("{0}")]
    Inputs(String),
    /// A setting that needs hardware support this build was made without.
    #[error("{key}: \"{value}\" needs a build with --features {feature}")]
    NeedsFeature {
        key: &'static str,
        value: &'static str,
        feature: &'static str,
    },
    #[error(
        "camera.roi: [{}, {}, {}, {}] is empty or reaches past the {width}x{height} frame",
        .roi[0], .roi[1], .roi[2], .roi[3]
    )]
    RoiOutsideFrame {
        roi: [u32; 4],
        width: u32,
        height: u32,
    },
    /// `dicom.ae_title` or `dicom.allowed_calling_ae_titles`.
    #[error("{key}: {source}")]
    AeTitle {
        key: &'static str,
        #[source]
        source: AeTitleError,
    },
    #[error(
        "dicom.allowed_calling_ae_titles: empty, so every association would be \
         refused; list the scanner's AE title"
    )]
    NoCallingAeTitles,
    #[error("dicom.max_object_bytes: {0} is less than 1024")]
    ObjectBytesTooFew(u64),
    #[error(
        "store.dir: {} is inside inbox.dir {}; results would be screened as slices",
        .store.display(),
        .inbox.display()
    )]
    StoreInsideInbox { store: PathBuf, inbox: PathBuf },
    #[error("models.dir: {} holds no manifest.json", .0.display())]
    NoManifest(PathBuf),
}

impl ConfigError {
    /// The key the error is about (`camera.width/height` for a pair).
    pub fn key(&self) -> &'static str {
        match self {
            ConfigError::OutOfRange { key, .. }
            | ConfigError::NotOneOf { key, .. }
            | ConfigError::NeedsFeature { key, .. }
            | ConfigError::AeTitle { key, .. } => key,
            ConfigError::TooManyThreads(_) => "models.threads",
            ConfigError::PublicKey(_) => "models.public_key",
            ConfigError::PixelSpacing(_) => "inbox.pixel_spacing_mm",
            ConfigError::Inputs(_) => "inputs",
            ConfigError::RoiOutsideFrame { .. } => "camera.roi",
            ConfigError::NoCallingAeTitles => "dicom.allowed_calling_ae_titles",
            ConfigError::ObjectBytesTooFew(_) => "dicom.max_object_bytes",
            ConfigError::StoreInsideInbox { .. } => "store.dir",
            ConfigError::NoManifest(_) => "models.dir",
        }
    }
}

fn out_of_range(
    key: &'static str,
    value: impl std::fmt::Display,
    allowed: &'static str,
) -> ConfigError {
    ConfigError::OutOfRange {
        key,
        value: value.to_string(),
        allowed,
    }
}

impl DicomConfig {
    pub fn validate(&self) -> std::result::Result<(), ConfigError> {
        check_ae_title(&self.ae_title).map_err(|source| ConfigError::AeTitle {
            key: "dicom.ae_title",
            source,
        })?;
        for t in &self.allowed_calling_ae_titles {
            check_ae_title(t).map_err(|source| ConfigError::AeTitle {
                key: "dicom.allowed_calling_ae_titles",
                source,
            })?;
        }
        if self.enabled && self.allowed_calling_ae_titles.is_empty() {
            return Err(ConfigError::NoCallingAeTitles);
        }
        if !(1..=64).contains(&self.max_associations) {
            return Err(out_of_range(
                "dicom.max_associations",
                self.max_associations,
                "1..=64",
            ));
        }
        for (key, v) in [
            ("dicom.idle_timeout_s", self.idle_timeout_s),
            ("dicom.association_timeout_s", self.association_timeout_s),
        ] {
            if !(1..=86_400).contains(&v) {
                return Err(out_of_range(key, v, "1..=86400 seconds"));
            }
        }
        if self.max_object_bytes < 1024 {
            return Err(ConfigError::ObjectBytesTooFew(self.max_object_bytes));
        }
        Ok(())
    }
}

impl ApplianceConfig {
    /// Reads and validates `path`. Relative paths in it are taken from the
    /// file's own folder, so the service does not depend on its working
    /// directory.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let config = Self::from_toml(&text, path)?;
        config
            .check_models_dir()
            .map_err(|source| Error::ConfigValue {
                path: path.to_path_buf(),
                source,
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
        config
            .validate_values()
            .map_err(|source| Error::ConfigValue {
                path: path.to_path_buf(),
                source,
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

    /// Everything but the disk (board profiles are checked with this: their
    /// paths exist only on the board).
    pub fn validate_values(&self) -> std::result::Result<(), ConfigError> {
        if self.models.threads > 256 {
            return Err(ConfigError::TooManyThreads(self.models.threads));
        }
        if let Some(key) = &self.models.public_key {
            models::signature::parse_public_key(key).map_err(ConfigError::PublicKey)?;
        }
        if let Some(spacing) = self.inbox.pixel_spacing_mm {
            check_spacing(spacing).map_err(ConfigError::PixelSpacing)?;
        }
        if self.pipeline.queue == 0 || self.pipeline.queue > 10_000 {
            return Err(out_of_range(
                "pipeline.queue",
                self.pipeline.queue,
                "1..=10000",
            ));
        }
        if let Some(problem) = self.inputs.problem() {
            return Err(ConfigError::Inputs(problem));
        }
        self.camera.validate()?;
        self.display.spi_lcd.validate()?;
        if self.display.kind == DisplayKind::SpiLcd && !cfg!(feature = "spi-lcd") {
            return Err(ConfigError::NeedsFeature {
                key: "display.kind",
                value: "spi_lcd",
                feature: "spi-lcd",
            });
        }
        let (w, h) = (self.display.width, self.display.height);
        if !(64..=4096).contains(&w) || !(64..=4096).contains(&h) {
            return Err(out_of_range(
                "display.width/height",
                format!("{w}x{h}"),
                "64..=4096 pixels",
            ));
        }
        self.dicom.validate()?;
        let inbox = std::path::absolute(&self.inbox.dir).unwrap_or(self.inbox.dir.clone());
        let store = std::path::absolute(&self.store.dir).unwrap_or(self.store.dir.clone());
        if store.starts_with(&inbox) {
            return Err(ConfigError::StoreInsideInbox { store, inbox });
        }
        Ok(())
    }

    /// The one check that looks at the disk.
    pub fn check_models_dir(&self) -> std::result::Result<(), ConfigError> {
        if !self.models.dir.join("manifest.json").is_file() {
            return Err(ConfigError::NoManifest(self.models.dir.clone()));
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
            DisplayKind::None | DisplayKind::Framebuffer | DisplayKind::SpiLcd => None,
            DisplayKind::Snapshot => Some(
                self.display
                    .snapshot
                    .clone()
                    .unwrap_or_else(|| self.store.dir.join("screen.png")),
            ),
        }
    }
}

/// `[display.spi_lcd]`: the panel's bus, control lines and controller.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpiLcdSettings {
    pub spi: PathBuf,
    pub speed_hz: u32,
    pub gpio_chip: PathBuf,
    pub dc_line: u32,
    pub reset_line: u32,
    pub backlight_line: Option<u32>,
    /// `st7789` or `ili9341`.
    pub controller: String,
    /// After rotation, as the UI sees it.
    pub width: u16,
    pub height: u16,
    pub rotate_degrees: u16,
    pub invert_colours: bool,
}

impl Default for SpiLcdSettings {
    fn default() -> Self {
        Self {
            spi: "/dev/spidev0.0".into(),
            speed_hz: 32_000_000,
            gpio_chip: "/dev/gpiochip0".into(),
            dc_line: 25,
            reset_line: 27,
            backlight_line: None,
            controller: "st7789".into(),
            width: 320,
            height: 240,
            rotate_degrees: 90,
            invert_colours: false,
        }
    }
}

impl SpiLcdSettings {
    fn validate(&self) -> std::result::Result<(), ConfigError> {
        if !["st7789", "ili9341"].contains(&self.controller.as_str()) {
            return Err(ConfigError::NotOneOf {
                key: "display.spi_lcd.controller",
                value: format!("{:?}", self.controller),
                expected: "one of st7789, ili9341",
            });
        }
        if ![0, 90, 180, 270].contains(&self.rotate_degrees) {
            return Err(ConfigError::NotOneOf {
                key: "display.spi_lcd.rotate_degrees",
                value: self.rotate_degrees.to_string(),
                expected: "0, 90, 180 or 270",
            });
        }
        if !(64..=1024).contains(&self.width) || !(64..=1024).contains(&self.height) {
            return Err(out_of_range(
                "display.spi_lcd.width/height",
                format!("{}x{}", self.width, self.height),
                "64..=1024 pixels",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CameraFormat {
    Grey,
    Yuyv,
    Mjpeg,
    Rgb24,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CameraPolicy {
    /// Every `every_nth` frame.
    EveryNth,
    /// A settled picture that differs from the last one taken.
    OnChange,
    /// The frame after each press of the GPIO button (`gpio-button` build).
    Button,
}

/// `[camera]`: a V4L2 device filming (or capturing the video output of) the
/// scanner console. Off by default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CameraConfig {
    pub enabled: bool,
    pub device: PathBuf,
    pub format: CameraFormat,
    pub width: u32,
    pub height: u32,
    /// `[x, y, width, height]` of the slice viewport in the frame; the
    /// whole frame when absent.
    pub roi: Option<[u32; 4]>,
    /// Save grey pictures (a filmed grey slice picks up colour casts).
    pub grey: bool,
    pub policy: CameraPolicy,
    /// `every_nth`: take every Nth frame; `on_change`: compare every Nth.
    pub every_nth: u32,
    /// `on_change`: mean absolute difference (0..255) of a 64x64 grey
    /// thumbnail that counts as a new picture.
    pub change_threshold: f32,
    /// Captured pictures waiting for a result; more are dropped (counted)
    /// rather than piling up behind a slow model.
    pub max_pending: usize,
    /// Longest wait between attempts to reopen a vanished camera.
    pub retry_max_s: u64,
    pub button_chip: PathBuf,
    pub button_line: u32,
    pub button_active_low: bool,
}

impl Default for CameraConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            device: "/dev/video0".into(),
            format: CameraFormat::Yuyv,
            width: 640,
            height: 480,
            roi: None,
            grey: true,
            policy: CameraPolicy::OnChange,
            every_nth: 5,
            change_threshold: 6.0,
            max_pending: 2,
            retry_max_s: 30,
            button_chip: "/dev/gpiochip0".into(),
            button_line: 17,
            button_active_low: true,
        }
    }
}

impl CameraConfig {
    fn validate(&self) -> std::result::Result<(), ConfigError> {
        let (w, h) = (self.width, self.height);
        if !(16..=board::camera::MAX_SIDE).contains(&w)
            || !(16..=board::camera::MAX_SIDE).contains(&h)
        {
            return Err(out_of_range(
                "camera.width/height",
                format!("{w}x{h}"),
                "16..=8192",
            ));
        }
        if let Some(roi @ [x, y, rw, rh]) = self.roi {
            let inside = rw > 0
                && rh > 0
                && x.checked_add(rw).is_some_and(|r| r <= w)
                && y.checked_add(rh).is_some_and(|b| b <= h);
            if !inside {
                return Err(ConfigError::RoiOutsideFrame {
                    roi,
                    width: w,
                    height: h,
                });
            }
        }
        if self.every_nth == 0 || self.every_nth > 10_000 {
            return Err(out_of_range(
                "camera.every_nth",
                self.every_nth,
                "1..=10000",
            ));
        }
        if !(self.change_threshold > 0.0 && self.change_threshold < 255.0) {
            return Err(out_of_range(
                "camera.change_threshold",
                self.change_threshold,
                "(0, 255)",
            ));
        }
        if self.max_pending == 0 || self.max_pending > 1000 {
            return Err(out_of_range(
                "camera.max_pending",
                self.max_pending,
                "1..=1000",
            ));
        }
        if self.retry_max_s == 0 || self.retry_max_s > 3600 {
            return Err(out_of_range(
                "camera.retry_max_s",
                self.retry_max_s,
                "1..=3600",
            ));
        }
        if self.enabled && self.policy == CameraPolicy::Button && !cfg!(feature = "gpio-button") {
            return Err(ConfigError::NeedsFeature {
                key: "camera.policy",
                value: "button",
                feature: "gpio-button",
            });
        }
        Ok(())
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
        assert_eq!(config.dicom, defaults.dicom);
        assert_eq!(config.inputs, defaults.inputs);
        assert!(!config.dicom.enabled, "no socket unless configured");
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
    fn hardware_this_build_lacks_is_refused_at_start() {
        let d = tempfile::tempdir().unwrap();
        let mut cases = Vec::new();
        if !cfg!(feature = "spi-lcd") {
            cases.push(("[display]\nkind = \"spi_lcd\"\n", "spi-lcd"));
        }
        if !cfg!(feature = "gpio-button") {
            cases.push((
                "[camera]\nenabled = true\npolicy = \"button\"\n",
                "gpio-button",
            ));
        }
        for (text, feature) in cases {
            let e = ApplianceConfig::load(&write(d.path(), text))
                .unwrap_err()
                .to_string();
            assert!(e.contains(feature), "{text}: {e}");
        }
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
            (
                "[dicom]\nenabled = true\n",
                "dicom.allowed_calling_ae_titles",
            ),
            (
                "[dicom]\nae_title = \"A_TITLE_LONGER_THAN_16\"\n",
                "dicom.ae_title",
            ),
            ("[dicom]\nmax_associations = 0\n", "dicom.max_associations"),
            ("[dicom]\nidle_timeout_s = 0\n", "dicom.idle_timeout_s"),
            ("[dicom]\nmax_object_bytes = 10\n", "dicom.max_object_bytes"),
            ("[inputs]\nmax_image_mib = 0\n", "inputs.max_image_mib"),
            (
                "[inputs]\nstage_timeout_s = -1.0\n",
                "inputs.stage_timeout_s",
            ),
            ("[camera]\nroi = [600, 0, 100, 10]\n", "camera.roi"),
            ("[camera]\nevery_nth = 0\n", "camera.every_nth"),
            (
                "[camera]\nchange_threshold = 300.0\n",
                "camera.change_threshold",
            ),
            (
                "[display.spi_lcd]\ncontroller = \"ssd1306\"\n",
                "display.spi_lcd.controller",
            ),
        ] {
            let e = ApplianceConfig::load(&write(d.path(), text))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn a_refused_value_is_a_variant_naming_its_key() {
        let d = tempfile::tempdir().unwrap();
        let path = write(d.path(), "[dicom]\nmax_associations = 0\n");
        let e = ApplianceConfig::load(&path).unwrap_err();
        match &e {
            Error::ConfigValue {
                path: at,
                source: source @ ConfigError::OutOfRange { key, value, .. },
            } => {
                assert_eq!(
                    (at, *key, value.as_str()),
                    (&path, "dicom.max_associations", "0")
                );
                assert_eq!(source.key(), "dicom.max_associations");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            e.to_string(),
            format!(
                "{}: dicom.max_associations: 0 is outside 1..=64",
                path.display()
            )
        );
        let mut config = ApplianceConfig::default();
        config.dicom.ae_title = "BACK\\SLASH".into();
        assert!(matches!(
            config.validate_values(),
            Err(ConfigError::AeTitle { key: "dicom.ae_title", source: AeTitleError(t) }) if t == "BACK\\SLASH"
        ));
        config.dicom.ae_title = "NEUROSCREEN".into();
        config.inbox.pixel_spacing_mm = Some([0.5, 0.0]);
        assert!(matches!(
            config.validate_values(),
            Err(ConfigError::PixelSpacing(SpacingError([0.5, 0.0])))
        ));
        config.inbox.pixel_spacing_mm = None;
        config.models.dir = d.path().join("nowhere");
        assert!(matches!(
            config.check_models_dir(),
            Err(ConfigError::NoManifest(dir)) if dir == d.path().join("nowhere")
        ));
    }
}
