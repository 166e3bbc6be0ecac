//! The camera as a source: a capture thread (V4L2 is blocking) picks frames
//! by the configured policy and hands the newest to a tokio task, which
//! saves it as a PNG into `<inbox>/camera/`.
//!
//! Why through the inbox rather than straight to the worker: the inbox
//! watcher already turns a renamed-in file into a job, the ledger makes it
//! exactly once across restarts (a picture saved just before a stop is
//! screened at the next start), and the results store keeps the picture the
//! verdict was given on. The cost is a PNG write per taken frame, which the
//! frame policy keeps rare; `max_pending` stops pictures piling up behind a
//! slow model (further ones are dropped and counted).

use super::display::SourceStatus;
use crate::config::{ApplianceConfig, CameraConfig, CameraFormat, CameraPolicy};
use crate::store::{record_path, write_file_atomically};
use board::camera::{
    run_capture, Backoff, CameraEvent, CaptureOptions, CaptureSink, FrameFormat, Policy, Roi,
    V4lCamera,
};
use image::DynamicImage;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;

/// A one-place mailbox: a new value replaces one not yet taken, and the
/// replaced ones are counted. The capture thread never waits on the saver.
pub struct Latest<T> {
    slot: Mutex<Option<T>>,
    ready: Notify,
    replaced: std::sync::atomic::AtomicU64,
}

impl<T> Default for Latest<T> {
    fn default() -> Self {
        Self {
            slot: Mutex::new(None),
            ready: Notify::new(),
            replaced: Default::default(),
        }
    }
}

impl<T> Latest<T> {
    pub fn put(&self, value: T) {
        let old = self
            .slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(value);
        if old.is_some() {
            self.replaced.fetch_add(1, Ordering::Relaxed);
        }
        self.ready.notify_one();
    }

    pub fn take(&self) -> Option<T> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Waits until a value may be there (a permit is kept if `put` came
    /// first, so none is missed).
    pub async fn wait(&self) {
        self.ready.notified().await
    }

    pub fn replaced(&self) -> u64 {
        self.replaced.load(Ordering::Relaxed)
    }
}

/// Saved pictures still waiting for their result.
struct Pending {
    store: PathBuf,
    waiting: Vec<(PathBuf, Instant)>,
}

/// A picture that got no record this long (a store failure) stops counting
/// against `max_pending`, so the camera cannot stall for good.
const GIVE_UP_WAITING: Duration = Duration::from_secs(60);

impl Pending {
    fn len_now(&mut self) -> usize {
        let store = &self.store;
        self.waiting
            .retain(|(p, at)| at.elapsed() < GIVE_UP_WAITING && !record_path(store, p).exists());
        self.waiting.len()
    }
}

/// The running camera source.
pub struct CameraSource {
    latest: Arc<Latest<DynamicImage>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    saver: JoinHandle<SaverTally>,
    status: watch::Receiver<SourceStatus>,
}

#[derive(Debug, Default)]
struct SaverTally {
    saved: u64,
    busy: u64,
    failed: u64,
}

impl CameraSource {
    pub fn status(&self) -> watch::Receiver<SourceStatus> {
        self.status.clone()
    }

    /// Stops the capture thread (within a frame timeout) and the saver.
    pub async fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        self.saver.abort();
        let tally = self.saver.await.unwrap_or_default();
        tracing::info!(
            saved = tally.saved,
            dropped_newer_frame = self.latest.replaced(),
            dropped_busy = tally.busy,
            save_failures = tally.failed,
            "camera stopped"
        );
    }
}

/// Starts the camera when `[camera] enabled`; `None` otherwise.
pub fn start(config: &ApplianceConfig, store: &Path) -> Option<CameraSource> {
    let c = &config.camera;
    if !c.enabled {
        return None;
    }
    let name = c.device.display().to_string();
    let (status_tx, status_rx) = watch::channel(SourceStatus {
        line: format!("camera {name}: opening"),
        error: None,
    });
    let stop = Arc::new(AtomicBool::new(false));
    let latest = Arc::new(Latest::<DynamicImage>::default());
    let (event_tx, event_rx) = mpsc::unbounded_channel();
    let thread = {
        let (c, stop, latest) = (c.clone(), stop.clone(), latest.clone());
        std::thread::Builder::new()
            .name("neuroscreen-camera".into())
            .spawn(move || capture_thread(&c, &stop, latest, event_tx))
            .map_err(|e| {
                tracing::warn!("camera: cannot start its thread: {e}; running on without it")
            })
            .ok()?
    };
    let dir = config.inbox.camera_dir();
    let saver = tokio::spawn(save_frames(
        name,
        dir,
        Pending {
            store: store.to_path_buf(),
            waiting: Vec::new(),
        },
        c.max_pending,
        latest.clone(),
        event_rx,
        status_tx,
    ));
    Some(CameraSource {
        latest,
        stop,
        thread: Some(thread),
        saver,
        status: status_rx,
    })
}

pub fn capture_options(c: &CameraConfig) -> Result<CaptureOptions, board::Error> {
    let policy = match c.policy {
        CameraPolicy::EveryNth => Policy::EveryNth(c.every_nth),
        CameraPolicy::OnChange => Policy::OnChange {
            threshold: c.change_threshold,
            look_every: c.every_nth,
        },
        CameraPolicy::Button => Policy::Button,
    };
    Ok(CaptureOptions {
        policy,
        roi: c.roi.map(Roi::from_array).transpose()?,
        grey: c.grey,
        backoff: Backoff::new(
            Duration::from_millis(500),
            Duration::from_secs(c.retry_max_s),
        ),
    })
}

pub fn frame_format(f: CameraFormat) -> FrameFormat {
    match f {
        CameraFormat::Grey => FrameFormat::Grey,
        CameraFormat::Yuyv => FrameFormat::Yuyv,
        CameraFormat::Mjpeg => FrameFormat::Mjpeg,
        CameraFormat::Rgb24 => FrameFormat::Rgb24,
    }
}

struct ThreadSink {
    latest: Arc<Latest<DynamicImage>>,
    events: mpsc::UnboundedSender<CameraEvent>,
}

impl CaptureSink for ThreadSink {
    fn event(&mut self, event: CameraEvent) {
        let _ = self.events.send(event);
    }
    fn frame(&mut self, picture: DynamicImage) {
        self.latest.put(picture);
    }
}

fn capture_thread(
    c: &CameraConfig,
    stop: &AtomicBool,
    latest: Arc<Latest<DynamicImage>>,
    events: mpsc::UnboundedSender<CameraEvent>,
) {
    let options = match capture_options(c) {
        Ok(o) => o,
        Err(e) => {
            let _ = events.send(CameraEvent::Lost(e.to_string()));
            return;
        }
    };
    let mut camera = V4lCamera::new(&c.device, frame_format(c.format), c.width, c.height);
    let mut button = button(c, &events);
    let mut sink = ThreadSink { latest, events };
    // Short naps, so a stop is noticed within a tenth of a second.
    let mut sleep = |d: Duration| {
        let until = Instant::now() + d;
        while !stop.load(Ordering::Relaxed) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100).min(until - Instant::now()));
        }
    };
    run_capture(
        &mut camera,
        &options,
        &mut button,
        &mut sink,
        stop,
        &mut sleep,
    );
}

#[cfg(feature = "gpio-button")]
fn button(
    c: &CameraConfig,
    events: &mpsc::UnboundedSender<CameraEvent>,
) -> Box<dyn FnMut() -> bool> {
    if c.policy != CameraPolicy::Button {
        return Box::new(|| false);
    }
    match board::button::Button::open(&c.button_chip, c.button_line, c.button_active_low) {
        Ok(mut b) => {
            let mut said = false;
            let events = events.clone();
            Box::new(move || {
                b.is_down().unwrap_or_else(|e| {
                    if !said {
                        let _ = events.send(CameraEvent::BadFrame(format!("button: {e}")));
                        said = true;
                    }
                    false
                })
            })
        }
        Err(e) => {
            let _ = events.send(CameraEvent::BadFrame(format!(
                "{e}; no frames will be taken"
            )));
            Box::new(|| false)
        }
    }
}

#[cfg(not(feature = "gpio-button"))]
fn button(_: &CameraConfig, _: &mpsc::UnboundedSender<CameraEvent>) -> Box<dyn FnMut() -> bool> {
    // Config validation refuses policy = "button" in this build.
    Box::new(|| false)
}

async fn save_frames(
    name: String,
    dir: PathBuf,
    mut pending: Pending,
    max_pending: usize,
    latest: Arc<Latest<DynamicImage>>,
    mut events: mpsc::UnboundedReceiver<CameraEvent>,
    status: watch::Sender<SourceStatus>,
) -> SaverTally {
    let mut tally = SaverTally::default();
    let mut seq = 0u64;
    let mut ever_connected = false;
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { return tally };
                let line = match event {
                    CameraEvent::Connected(_) => {
                        if ever_connected {
                            tracing::info!("camera {name}: back");
                        } else {
                            tracing::info!("camera {name}: capturing");
                        }
                        ever_connected = true;
                        SourceStatus { line: format!("camera {name}: capturing"), error: None }
                    }
                    CameraEvent::Lost(reason) => {
                        let what = if ever_connected { "lost" } else { "not available" };
                        tracing::warn!("camera {name}: {what}: {reason}; running on without it, retrying");
                        SourceStatus {
                            line: format!("camera {name}: {what}, retrying"),
                            error: Some(format!("camera {what}: {reason}")),
                        }
                    }
                    CameraEvent::BadFrame(reason) => {
                        tracing::warn!("camera {name}: {reason}");
                        SourceStatus {
                            line: format!("camera {name}: capturing"),
                            error: Some(reason),
                        }
                    }
                };
                status.send_replace(line);
            }
            _ = latest.wait() => {
                let Some(picture) = latest.take() else { continue };
                if pending.len_now() >= max_pending {
                    tally.busy += 1;
                    continue;
                }
                seq += 1;
                let ms = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis());
                let path = dir.join(format!("cam-{ms}-{seq:06}.png"));
                let target = path.clone();
                let saved = tokio::task::spawn_blocking(move || save_png(&picture, &target))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()));
                match saved {
                    Ok(()) => {
                        tally.saved += 1;
                        pending.waiting.push((path, Instant::now()));
                    }
                    Err(e) => {
                        if tally.failed == 0 {
                            tracing::warn!("camera {name}: cannot save a picture: {e}");
                        }
                        tally.failed += 1;
                    }
                }
            }
        }
    }
}

/// Why a camera picture was not saved (logged; the frame is dropped).
#[derive(Debug, thiserror::Error)]
enum SaveError {
    #[error("{}: {source}", .dir.display())]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", .path.display())]
    Encode {
        path: PathBuf,
        source: image::ImageError,
    },
    #[error(transparent)]
    Write(#[from] crate::Error),
}

fn save_png(picture: &DynamicImage, path: &Path) -> Result<(), SaveError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| SaveError::Dir {
            dir: dir.to_path_buf(),
            source,
        })?;
    }
    let mut png = std::io::Cursor::new(Vec::new());
    picture
        .write_to(&mut png, image::ImageFormat::Png)
        .map_err(|source| SaveError::Encode {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(write_file_atomically(path, png.get_ref())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn the_newest_value_wins_and_replaced_ones_are_counted() {
        let l = Latest::default();
        l.put(1);
        l.put(2);
        l.put(3);
        l.wait().await;
        assert_eq!(l.take(), Some(3));
        assert_eq!(l.take(), None);
        assert_eq!(l.replaced(), 2);
    }

    #[test]
    fn a_picture_stops_pending_once_its_record_exists() {
        let d = tempfile::tempdir().unwrap();
        let store = d.path().join("results");
        std::fs::create_dir_all(&store).unwrap();
        let a = d.path().join("inbox/camera/cam-1-000001.png");
        let b = d.path().join("inbox/camera/cam-1-000002.png");
        let mut p = Pending {
            store: store.clone(),
            waiting: vec![(a.clone(), Instant::now()), (b, Instant::now())],
        };
        assert_eq!(p.len_now(), 2);
        std::fs::write(record_path(&store, &a), b"{}").unwrap();
        assert_eq!(p.len_now(), 1);
    }

    #[test]
    fn options_follow_the_config() {
        let mut c = CameraConfig {
            policy: CameraPolicy::EveryNth,
            every_nth: 7,
            roi: Some([1, 2, 3, 4]),
            ..CameraConfig::default()
        };
        let o = capture_options(&c).unwrap();
        assert_eq!(o.policy, Policy::EveryNth(7));
        assert_eq!(o.roi, Some(Roi::from_array([1, 2, 3, 4]).unwrap()));
        c.roi = Some([0, 0, 0, 4]);
        assert!(capture_options(&c).is_err());
    }
}
