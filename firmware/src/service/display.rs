//! The display sink: the newest result on screen. Drawing never holds up
//! inference; when results come faster than the screen is redrawn, the
//! screen skips to the newest one. With no display attached the service
//! runs on and says so once.

use crate::config::{ApplianceConfig, DisplayKind};
use crate::error::Result;
use crate::screen;
use crate::store::Record;
use board::{Framebuffer, PngSnapshot};
use embedded_graphics::prelude::OriginDimensions;
use std::path::PathBuf;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the screen shows besides the slice: running counters.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub seen: usize,
    pub flagged: usize,
    pub errors: usize,
}

pub type Shown = Option<(Record, Counters)>;

/// Where frames go.
enum Sink {
    Snapshot(PathBuf),
    Framebuffer(Framebuffer),
}

impl Sink {
    fn open(config: &ApplianceConfig) -> Option<(Self, (u32, u32))> {
        let d = &config.display;
        match d.kind {
            DisplayKind::None => {
                tracing::info!("no display configured: results go to the store only");
                None
            }
            DisplayKind::Snapshot => {
                Some((Sink::Snapshot(config.snapshot_path()?), (d.width, d.height)))
            }
            DisplayKind::Framebuffer => {
                match Framebuffer::open_device(&d.device, d.sysfs.as_deref()) {
                    Ok(fb) => {
                        let g = fb.geometry();
                        tracing::info!(device = %d.device.display(), width = g.width, height = g.height, format = ?g.format, "display");
                        Some((Sink::Framebuffer(fb), (g.width, g.height)))
                    }
                    Err(e) => {
                        tracing::warn!("no display: {e}; running on without a screen");
                        None
                    }
                }
            }
        }
    }

    fn show(&mut self, frame: &PngSnapshot) -> Result<()> {
        match self {
            Sink::Snapshot(path) => screen::save(frame, path),
            Sink::Framebuffer(fb) => {
                let size = frame.size();
                fb.show(size.width, size.height, frame.pixels())
                    .map_err(|e| crate::error::Error::Display(e.to_string()))
            }
        }
    }
}

/// Spawns the sink; returns the sender the worker publishes results on and
/// the sink's task, which ends after drawing the last result once the
/// sender is dropped.
pub fn start(
    config: &ApplianceConfig,
    source: String,
) -> (watch::Sender<Shown>, Option<JoinHandle<()>>) {
    let (tx, mut rx) = watch::channel::<Shown>(None);
    let Some((mut sink, size)) = Sink::open(config) else {
        return (tx, None);
    };
    let idle = screen::draw_idle(&["neuroscreen ready".into(), source], size)
        .and_then(|frame| sink.show(&frame));
    if let Err(e) = idle {
        tracing::warn!("display: {e}");
    }
    let task = tokio::spawn(async move {
        let mut failed_once = false;
        while rx.changed().await.is_ok() {
            let Some((record, counters)) = rx.borrow_and_update().clone() else {
                continue;
            };
            let notes = vec![
                format!("seen {}  flagged {}", counters.seen, counters.flagged),
                format!("errors {}", counters.errors),
            ];
            let drawn = tokio::task::spawn_blocking(move || {
                let r = screen::draw_result(&record, &notes, size).and_then(|f| sink.show(&f));
                (sink, r)
            })
            .await;
            match drawn {
                Ok((back, r)) => {
                    sink = back;
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
