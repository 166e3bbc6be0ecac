//! The real camera: a V4L2 capture device (a USB camera, or an HDMI
//! capture stick on the scanner console's video output) streaming through
//! memory-mapped buffers.

use super::{Camera, FrameFormat, FrameSource, RawFrame};
use crate::Error;
use std::path::{Path, PathBuf};
use std::time::Duration;
use v4l::buffer::Type;
use v4l::io::mmap::Stream;
use v4l::io::traits::CaptureStream;
use v4l::video::Capture;
use v4l::{Device, FourCC};

/// No frame for this long counts as the device gone: a capture stick whose
/// source was switched off delivers nothing rather than an error.
const FRAME_TIMEOUT: Duration = Duration::from_secs(3);

pub struct V4lCamera {
    device: PathBuf,
    format: FrameFormat,
    width: u32,
    height: u32,
}

impl V4lCamera {
    pub fn new(device: &Path, format: FrameFormat, width: u32, height: u32) -> Self {
        Self {
            device: device.to_path_buf(),
            format,
            width,
            height,
        }
    }

    fn error(&self, reason: impl std::fmt::Display) -> Error {
        Error::Camera {
            device: self.device.clone(),
            reason: reason.to_string(),
        }
    }
}

pub struct V4lSource {
    // Dropped before the device it streams from.
    stream: Stream<'static>,
    _device: Device,
    device: PathBuf,
    format: FrameFormat,
    width: u32,
    height: u32,
    stride: usize,
}

impl Camera for V4lCamera {
    type Source = V4lSource;

    fn open(&mut self) -> Result<V4lSource, Error> {
        let device = Device::with_path(&self.device).map_err(|e| self.error(e))?;
        let mut wanted = device
            .format()
            .map_err(|e| self.error(format!("cannot read its format: {e}")))?;
        wanted.width = self.width;
        wanted.height = self.height;
        wanted.fourcc = FourCC::new(&self.format.fourcc());
        let got = device
            .set_format(&wanted)
            .map_err(|e| self.error(format!("cannot set the format: {e}")))?;
        if got.fourcc.repr != self.format.fourcc() {
            return Err(self.error(format!(
                "asked for {} and the device offers {} instead (set camera.format)",
                String::from_utf8_lossy(&self.format.fourcc()),
                String::from_utf8_lossy(&got.fourcc.repr)
            )));
        }
        let mut stream = Stream::with_buffers(&device, Type::VideoCapture, 4)
            .map_err(|e| self.error(format!("cannot map capture buffers: {e}")))?;
        stream.set_timeout(FRAME_TIMEOUT);
        Ok(V4lSource {
            stream,
            _device: device,
            device: self.device.clone(),
            format: self.format,
            // The driver may round the size to one it supports.
            width: got.width,
            height: got.height,
            stride: got.stride as usize,
        })
    }

    fn name(&self) -> String {
        self.device.display().to_string()
    }
}

impl FrameSource for V4lSource {
    fn next_frame(&mut self) -> Result<RawFrame<'_>, Error> {
        let (buf, meta) = self.stream.next().map_err(|e| Error::Camera {
            device: self.device.clone(),
            reason: if e.kind() == std::io::ErrorKind::TimedOut {
                format!("no frame for {} s", FRAME_TIMEOUT.as_secs())
            } else {
                e.to_string()
            },
        })?;
        let used = match meta.bytesused as usize {
            0 => buf.len(),
            n => n.min(buf.len()),
        };
        Ok(RawFrame {
            format: self.format,
            width: self.width,
            height: self.height,
            stride: self.stride,
            bytes: &buf[..used],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_device_is_an_error_naming_it() {
        let mut cam = V4lCamera::new(Path::new("/dev/no-such-video"), FrameFormat::Yuyv, 640, 480);
        let e = cam.open().err().unwrap().to_string();
        assert!(e.contains("/dev/no-such-video"), "{e}");
    }
}
