use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Display { path: PathBuf, reason: String },
    #[error("{path}: cannot encode PNG: {reason}")]
    Encode { path: PathBuf, reason: String },
    /// A camera frame that cannot be turned into a picture: the format, the
    /// size the stream claims and what is wrong with the bytes.
    #[error("{format} frame {width}x{height}: {reason}")]
    Frame {
        format: &'static str,
        width: u32,
        height: u32,
        reason: String,
    },
    /// An MJPEG frame (the stream's size) whose JPEG is cut, broken or of
    /// another size.
    #[error("mjpeg frame {width}x{height}: {source}")]
    Mjpeg {
        width: u32,
        height: u32,
        #[source]
        source: crate::camera::MjpegError,
    },
    /// The capture device: missing, gone, or refusing the format.
    #[error("camera {device}: {reason}")]
    Camera { device: PathBuf, reason: String },
    #[error("camera region of interest: {0}")]
    Roi(String),
    #[error("GPIO {chip} line {line}: {reason}")]
    Gpio {
        chip: PathBuf,
        line: u32,
        reason: String,
    },
}
