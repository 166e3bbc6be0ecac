//! The display sink: the newest result on screen. Drawing never holds up
//! inference; when results come faster than the screen is redrawn, the
//! screen skips to the newest one. With no display attached the service
//! runs on and says so once.

use crate::config::{ApplianceConfig, DisplayKind};
use crate::engine::precision;
use crate::screen::{self, ScreenState};
use crate::store::{Record, RecordVerdict};
use board::panel::SnapshotFile;
use board::{Framebuffer, Panel};
use std::collections::BTreeMap;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use crate::screen::Counters;

pub type Shown = Option<(Record, Counters)>;

/// A source's line on the status strip, and its trouble if it has one
/// (shown as the last error too).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceStatus {
    pub line: String,
    pub error: Option<String>,
}

/// The configured panel, or `None` (said once) when there is none to use.
fn open_panel(config: &ApplianceConfig) -> Option<Box<dyn Panel>> {
    let d = &config.display;
    let panel: Result<Box<dyn Panel>, board::Error> = match d.kind {
        DisplayKind::None => {
            tracing::info!("no display configured: results go to the store only");
            return None;
        }
        DisplayKind::Snapshot => Ok(Box::new(SnapshotFile::new(
            &config.snapshot_path()?,
            d.width,
            d.height,
        ))),
        DisplayKind::Framebuffer => Framebuffer::open_device(&d.device, d.sysfs.as_deref())
            .map(|fb| Box::new(fb) as Box<dyn Panel>),
        DisplayKind::SpiLcd => open_spi_lcd(config),
    };
    match panel {
        Ok(p) => {
            tracing::info!("display: {}", p.describe());
            Some(p)
        }
        Err(e) => {
            tracing::warn!("no display: {e}; running on without a screen");
            None
        }
    }
}

#[cfg(feature = "spi-lcd")]
fn open_spi_lcd(config: &ApplianceConfig) -> Result<Box<dyn Panel>, board::Error> {
    use board::spi_lcd::{SpiLcd, SpiLcdConfig};
    let s = &config.display.spi_lcd;
    let controller = s
        .controller
        .parse::<board::spi_lcd::Controller>()
        .map_err(|e| board::Error::Display {
            path: s.spi.clone(),
            reason: e.to_string(),
        })?;
    let lcd = SpiLcd::open(&SpiLcdConfig {
        spi: s.spi.clone(),
        speed_hz: s.speed_hz,
        gpio_chip: s.gpio_chip.clone(),
        dc_line: s.dc_line,
        reset_line: s.reset_line,
        backlight_line: s.backlight_line,
        controller,
        width: s.width,
        height: s.height,
        rotate_degrees: s.rotate_degrees,
        invert_colours: s.invert_colours,
    })?;
    Ok(Box::new(lcd))
}

#[cfg(not(feature = "spi-lcd"))]
fn open_spi_lcd(config: &ApplianceConfig) -> Result<Box<dyn Panel>, board::Error> {
    // Config validation refuses this; kept so a hand-built config cannot panic.
    Err(board::Error::Display {
        path: config.display.spi_lcd.spi.clone(),
        reason: "this build has no SPI LCD support (--features spi-lcd)".into(),
    })
}

/// The models the service runs, for the status strip, before any result
/// says which files actually ran (then the record's own list is used).
fn configured_models(config: &ApplianceConfig) -> Vec<String> {
    let Ok(manifest) = models::Manifest::load(&config.models.dir.join("manifest.json")) else {
        return Vec::new();
    };
    let preferred = precision::preferred_on_this_cpu();
    let by_model: BTreeMap<String, String> = manifest
        .models
        .iter()
        .filter_map(|m| {
            let p = precision::resolve(m, config.models.precision, preferred).ok()?;
            Some((m.name.clone(), precision::name(p).to_string()))
        })
        .collect();
    screen::model_versions(&manifest, &by_model)
}

/// Spawns the sink; returns the sender the worker publishes results on and
/// the sink's task, which ends after drawing the last result once the
/// sender is dropped. `camera` carries the camera's status line, if any.
pub fn start(
    config: &ApplianceConfig,
    source: String,
    camera: Option<watch::Receiver<SourceStatus>>,
) -> (watch::Sender<Shown>, Option<JoinHandle<()>>) {
    let (tx, mut rx) = watch::channel::<Shown>(None);
    let Some(mut panel) = open_panel(config) else {
        return (tx, None);
    };
    let size = panel.size();
    let manifest = models::Manifest::load(&config.models.dir.join("manifest.json")).ok();
    let mut state = ScreenState {
        models: configured_models(config),
        sources: vec![source.clone()],
        ..ScreenState::default()
    };
    if let Some(c) = &camera {
        state.sources.push(c.borrow().line.clone());
    }
    let idle = screen::draw_idle(&state, size)
        .and_then(|frame| panel.show(&frame).map_err(crate::error::Error::Board));
    if let Err(e) = idle {
        tracing::warn!("display: {e}");
    }
    let task = tokio::spawn(async move {
        let mut camera = camera;
        let mut shown: Option<Record> = None;
        let mut failed_once = false;
        loop {
            let camera_changed = async {
                match camera.as_mut() {
                    Some(c) => c.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let Some((record, counters)) = rx.borrow_and_update().clone() else {
                        continue;
                    };
                    state.counters = counters;
                    if record.verdict == RecordVerdict::Error {
                        state.last_error = record.error.clone();
                    }
                    if let Some(m) = &manifest {
                        state.models = screen::model_versions(m, &record.precision_by_model);
                    }
                    shown = Some(record);
                }
                alive = camera_changed => {
                    if !alive {
                        camera = None;
                        continue;
                    }
                    let status = camera.as_mut().map(|c| c.borrow_and_update().clone()).unwrap_or_default();
                    state.sources = vec![source.clone(), status.line];
                    if status.error.is_some() {
                        state.last_error = status.error;
                    }
                }
            }
            let (record, frame_state) = (shown.clone(), state.clone());
            let drawn = tokio::task::spawn_blocking(move || {
                let frame = match &record {
                    Some(r) => screen::draw_result(r, &frame_state, size),
                    None => screen::draw_idle(&frame_state, size),
                };
                let r = frame.and_then(|f| panel.show(&f).map_err(crate::error::Error::Board));
                (panel, r)
            })
            .await;
            match drawn {
                Ok((back, r)) => {
                    panel = back;
                    if let Err(e) = r {
                        // A panel that went away: said once, not per slice.
                        if !failed_once {
                            tracing::warn!("display: {e}");
                            failed_once = true;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!("display: drawing failed: {e}; running on without a screen");
                    return;
                }
            }
        }
    });
    (tx, Some(task))
}
