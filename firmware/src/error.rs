//! The appliance's one error type. Every variant names the file or model it
//! concerns: the reader is at a scanner console, not in a debugger.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model contract (manifest, integrity, decoding, preprocessing)
    /// already words its messages with the file and the reason.
    #[error(transparent)]
    Contract(#[from] models::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An input that is not a regular file (or a link to one): never read.
    #[error("{path}: {kind}, not a slice file: not read")]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("{path}: refused unread: {reason}")]
    TooLarge { path: PathBuf, reason: String },
    /// A slice that took longer than `inputs.stage_timeout_s` in one stage;
    /// the work is abandoned and the next slice screened.
    #[error("{path}: {stage} took longer than the {limit_s} s limit (inputs.stage_timeout_s); abandoned")]
    Stalled {
        path: PathBuf,
        stage: &'static str,
        limit_s: f64,
    },
    #[error("{path}: {stage} failed unexpectedly (a panic; the log has it)")]
    Crashed { path: PathBuf, stage: &'static str },
    #[error("model '{model}' ({path}): {reason}")]
    ModelLoad {
        model: String,
        path: PathBuf,
        reason: String,
    },
    #[error("model '{model}': {reason}")]
    Inference { model: String, reason: String },
    /// A model's output that does not fit its manifest entry.
    #[error("model '{model}': {source}")]
    Output {
        model: String,
        #[source]
        source: crate::engine::postprocess::OutputError,
    },
    #[error("model '{model}': no {wanted} file in the manifest (it lists: {available})")]
    PrecisionUnavailable {
        model: String,
        wanted: String,
        available: String,
    },
    #[error("{path}: {reason}")]
    Config { path: PathBuf, reason: String },
    /// A key file's (or a key argument's) text that is not a key.
    #[error("{path}: {source}")]
    Key {
        path: PathBuf,
        #[source]
        source: models::signature::KeyError,
    },
    /// A value in the config file the appliance cannot use.
    #[error("{path}: {source}")]
    ConfigValue {
        path: PathBuf,
        #[source]
        source: crate::config::ConfigError,
    },
    #[error("self-test: {0}")]
    SelfTest(String),
    #[error("bench: {0}")]
    Bench(String),
    /// The board: its display, camera or GPIO, with board's own error as
    /// the source.
    #[error("board: {0}")]
    Board(#[from] board::Error),
    #[error("demo: {0}")]
    Demo(String),
    #[error("{path}: cannot write image: {source}")]
    Encode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("{path}: short write ({written} of {len} bytes); the line was not stored whole")]
    ShortWrite {
        path: PathBuf,
        written: usize,
        len: usize,
    },
    #[error("cannot write the report: {0}")]
    Report(#[source] std::io::Error),
    #[error("cannot serialise a result: {0}")]
    Json(#[from] serde_json::Error),
    /// A DICOM result object (SEG, Secondary Capture) for this input.
    #[error("{path}: DICOM: {reason}")]
    Dicom { path: PathBuf, reason: String },
    #[error("DICOM receiver: {0}")]
    Receiver(String),
    /// Hardware in the loop: the board, the bench or the link between them.
    #[error("hil: {0}")]
    Hil(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
