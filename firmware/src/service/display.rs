//! The display sink: the newest result on screen. Drawing never holds up
//! inference; when results come faster than the screen is redrawn, the
//! screen skips to the newest one.

use crate::config::ApplianceConfig;
use crate::screen;
use crate::store::Record;
use std::path::Path;
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

/// Spawns the sink; returns the sender the worker publishes results on and
/// the sink's task, which ends after drawing the last result once the
/// sender is dropped.
pub fn start(
    config: &ApplianceConfig,
    source: String,
) -> (watch::Sender<Shown>, Option<JoinHandle<()>>) {
    let (tx, mut rx) = watch::channel::<Shown>(None);
    let Some(path) = config.snapshot_path() else {
        tracing::info!("no display configured: results go to the store only");
        return (tx, None);
    };
    let size = (config.display.width, config.display.height);
    draw_idle(&path, size, &source);
    let task = tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let Some((record, counters)) = rx.borrow_and_update().clone() else {
                continue;
            };
            let path = path.clone();
            let notes = vec![
                format!("seen {}  flagged {}", counters.seen, counters.flagged),
                format!("errors {}", counters.errors),
            ];
            let drawn = tokio::task::spawn_blocking(move || {
                screen::draw_result(&record, &notes, size).and_then(|s| screen::save(&s, &path))
            })
            .await;
            match drawn {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("display: {e}"),
                Err(e) => tracing::warn!("display: drawing failed: {e}"),
            }
        }
    });
    (tx, Some(task))
}

fn draw_idle(path: &Path, size: (u32, u32), source: &str) {
    let drawn = screen::draw_idle(&["neuroscreen ready".into(), source.into()], size)
        .and_then(|s| screen::save(&s, path));
    if let Err(e) = drawn {
        tracing::warn!("display: {e}");
    }
}
