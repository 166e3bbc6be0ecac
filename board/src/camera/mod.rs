//! Camera capture: frames from a V4L2 device decoded to pictures, cropped
//! to the slice viewport and picked by a frame policy, with reconnection
//! when the device vanishes.

mod backoff;
mod capture;
mod decode;
mod policy;
mod roi;
mod v4l_device;

pub use backoff::Backoff;
pub use capture::{
    run_capture, Camera, CameraEvent, CaptureOptions, CaptureSink, FrameSource, RawFrame,
};
pub use decode::{
    decode, with_huffman_tables, yuv_to_rgb, FrameFormat, MjpegError, UnknownFrameFormat, MAX_SIDE,
};
pub use policy::{mean_abs_diff, Decision, Policy, Selector};
pub use roi::Roi;
pub use v4l_device::{V4lCamera, V4lSource};
