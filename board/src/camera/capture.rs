//! The capture loop: open the camera, read frames, pick the ones the policy
//! wants, crop them, hand them on; when the camera vanishes, say so once and
//! try again with backoff until it is back or the loop is told to stop.
//!
//! The device is behind two small traits so the loop (reconnects, backoff,
//! what is reported when) is tested with a fake camera; `V4lCamera` is the
//! real one.

use super::{decode, Backoff, Decision, FrameFormat, Policy, Roi, Selector};
use crate::Error;
use image::DynamicImage;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// One frame as the device delivers it, borrowed from its buffer.
#[derive(Debug, Clone, Copy)]
pub struct RawFrame<'a> {
    pub format: FrameFormat,
    pub width: u32,
    pub height: u32,
    pub stride: usize,
    pub bytes: &'a [u8],
}

impl RawFrame<'_> {
    pub fn decode(&self) -> Result<DynamicImage, Error> {
        decode(
            self.format,
            self.width,
            self.height,
            self.stride,
            self.bytes,
        )
    }
}

/// An opened, streaming device.
pub trait FrameSource {
    /// Blocks until the next frame; an error means the device is gone (or
    /// stopped delivering) and is to be reopened.
    fn next_frame(&mut self) -> Result<RawFrame<'_>, Error>;
}

/// Something that can be opened (again) into a frame source.
pub trait Camera {
    type Source: FrameSource;
    fn open(&mut self) -> Result<Self::Source, Error>;
    /// For messages: the device path.
    fn name(&self) -> String;
}

/// What the loop tells the rest of the appliance. `Lost` comes once per
/// outage (a camera missing at start is an outage too), not once per retry.
#[derive(Debug, Clone, PartialEq)]
pub enum CameraEvent {
    Connected(String),
    Lost(String),
    /// A frame that could not be used (bad bytes, region past the frame):
    /// reported for the first such frame of a connection only.
    BadFrame(String),
}

pub trait CaptureSink {
    fn event(&mut self, event: CameraEvent);
    /// A frame the policy took, cropped (and grey when asked).
    fn frame(&mut self, picture: DynamicImage);
}

#[derive(Debug, Clone)]
pub struct CaptureOptions {
    pub policy: Policy,
    pub roi: Option<Roi>,
    /// Hand on grey pictures: a camera filming a grey console slice sees
    /// faint colour casts that the models would read as three contrasts.
    pub grey: bool,
    pub backoff: Backoff,
}

/// Runs until `stop` is set. `button` is polled once per frame (always
/// `false` without one); `sleep` waits between reconnection attempts (the
/// caller's, so it can wake early on stop and tests need not wait).
pub fn run_capture<C: Camera>(
    camera: &mut C,
    options: &CaptureOptions,
    button: &mut dyn FnMut() -> bool,
    sink: &mut dyn CaptureSink,
    stop: &AtomicBool,
    sleep: &mut dyn FnMut(Duration),
) {
    let mut backoff = options.backoff.clone();
    let mut selector = Selector::new(options.policy);
    let mut in_outage = false;
    while !stop.load(Ordering::Relaxed) {
        let mut source = match camera.open() {
            Ok(source) => source,
            Err(e) => {
                if !in_outage {
                    sink.event(CameraEvent::Lost(e.to_string()));
                    in_outage = true;
                }
                sleep(backoff.next_delay());
                continue;
            }
        };
        sink.event(CameraEvent::Connected(camera.name()));
        in_outage = false;
        let mut bad_frame_said = false;
        let mut delivered = false;
        while !stop.load(Ordering::Relaxed) {
            let raw = match source.next_frame() {
                Ok(raw) => raw,
                Err(e) => {
                    sink.event(CameraEvent::Lost(e.to_string()));
                    in_outage = true;
                    sleep(backoff.next_delay());
                    break;
                }
            };
            if !delivered {
                // A device that opens and then fails at once keeps backing off.
                backoff.reset();
                delivered = true;
            }
            let picture = match selector.next_frame(button()) {
                Decision::Skip => continue,
                Decision::Take => prepare(&raw, options).map(Some),
                Decision::Look => {
                    prepare(&raw, options).map(|p| selector.looked_at(&p).then_some(p))
                }
            };
            match picture {
                Ok(Some(p)) => sink.frame(p),
                Ok(None) => {}
                Err(e) if !bad_frame_said => {
                    sink.event(CameraEvent::BadFrame(e.to_string()));
                    bad_frame_said = true;
                }
                Err(_) => {}
            }
        }
    }
}

/// Decoded, cropped, grey if asked.
fn prepare(raw: &RawFrame<'_>, options: &CaptureOptions) -> Result<DynamicImage, Error> {
    let mut picture = raw.decode()?;
    if let Some(roi) = &options.roi {
        picture = roi.crop(&picture)?;
    }
    if options.grey && !matches!(picture, DynamicImage::ImageLuma8(_)) {
        picture = DynamicImage::ImageLuma8(picture.to_luma8());
    }
    Ok(picture)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A camera that follows a script: each open either fails or yields a
    /// source that delivers some grey frames and then fails.
    struct FakeCamera {
        opens: VecDeque<Option<Vec<u8>>>,
        stop_when_done: std::sync::Arc<AtomicBool>,
    }

    struct FakeSource {
        frames: VecDeque<u8>,
        buf: [u8; 4],
    }

    impl FrameSource for FakeSource {
        fn next_frame(&mut self) -> Result<RawFrame<'_>, Error> {
            let v = self.frames.pop_front().ok_or_else(|| Error::Camera {
                device: "/dev/video9".into(),
                reason: "No such device".into(),
            })?;
            self.buf = [v; 4];
            Ok(RawFrame {
                format: FrameFormat::Grey,
                width: 2,
                height: 2,
                stride: 2,
                bytes: &self.buf,
            })
        }
    }

    impl Camera for FakeCamera {
        type Source = FakeSource;
        fn open(&mut self) -> Result<FakeSource, Error> {
            match self.opens.pop_front() {
                Some(Some(frames)) => Ok(FakeSource {
                    frames: frames.into(),
                    buf: [0; 4],
                }),
                next => {
                    if next.is_none() {
                        self.stop_when_done.store(true, Ordering::Relaxed);
                    }
                    Err(Error::Camera {
                        device: "/dev/video9".into(),
                        reason: "No such file or directory".into(),
                    })
                }
            }
        }
        fn name(&self) -> String {
            "/dev/video9".into()
        }
    }

    #[derive(Default)]
    struct Recorder {
        log: Vec<String>,
    }

    impl CaptureSink for Recorder {
        fn event(&mut self, event: CameraEvent) {
            self.log.push(match event {
                CameraEvent::Connected(_) => "connected".into(),
                CameraEvent::Lost(_) => "lost".into(),
                CameraEvent::BadFrame(e) => format!("bad {e}"),
            });
        }
        fn frame(&mut self, picture: DynamicImage) {
            self.log
                .push(format!("frame {}", picture.to_luma8().as_raw()[0]));
        }
    }

    fn options() -> CaptureOptions {
        CaptureOptions {
            policy: Policy::EveryNth(1),
            roi: None,
            grey: true,
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(4)),
        }
    }

    /// Missing at start, then present, then gone for three tries, then back:
    /// one `lost` per outage, delays that double and restart after a
    /// reconnection, and every frame delivered in between.
    #[test]
    fn a_camera_that_vanishes_and_returns_is_reported_once_per_outage() {
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let mut camera = FakeCamera {
            opens: VecDeque::from([
                None,
                None,
                Some(vec![1, 2]),
                None,
                None,
                None,
                Some(vec![3]),
            ]),
            stop_when_done: stop.clone(),
        };
        let mut sink = Recorder::default();
        let mut slept = Vec::new();
        run_capture(
            &mut camera,
            &options(),
            &mut || false,
            &mut sink,
            &stop,
            &mut |d| slept.push(d.as_secs()),
        );
        assert_eq!(
            sink.log,
            [
                "lost", // missing at start
                "connected",
                "frame 1",
                "frame 2",
                "lost", // the source failed
                "connected",
                "frame 3",
                "lost", // and the script is over: missing for good
            ]
        );
        // Two failed opens at start (1, 2 s), then the source fails (reset
        // by its frames: 1 s), three failed opens (2, 4, 4), then after
        // frame 3 the source fails (1 s) and the final open fails (2 s).
        assert_eq!(slept, [1, 2, 1, 2, 4, 4, 1, 2]);
    }

    #[test]
    fn a_bad_frame_is_said_once_per_connection_and_good_ones_still_flow() {
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let mut camera = FakeCamera {
            opens: VecDeque::from([Some(vec![5, 6, 7])]),
            stop_when_done: stop.clone(),
        };
        let mut options = options();
        // A region past the 2x2 frame: every frame is unusable.
        options.roi = Some(Roi::from_array([1, 1, 2, 2]).unwrap());
        let mut sink = Recorder::default();
        run_capture(
            &mut camera,
            &options,
            &mut || false,
            &mut sink,
            &stop,
            &mut |_| {},
        );
        assert_eq!(sink.log.len(), 3, "{:?}", sink.log);
        assert_eq!(sink.log[0], "connected");
        assert!(
            sink.log[1].starts_with("bad camera region"),
            "{:?}",
            sink.log
        );
        assert_eq!(sink.log[2], "lost");
    }
}
