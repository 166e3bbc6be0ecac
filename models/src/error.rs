use std::path::PathBuf;

/// Everything that can go wrong in the model contract. Each variant names the
/// file it concerns, because the person reading the message is usually at a
/// scanner console, not in a debugger.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot decode image: {reason}")]
    Decode { path: PathBuf, reason: String },
    #[error("{path}: unsupported image: {reason}")]
    Unsupported { path: PathBuf, reason: String },
    /// A slice whose size is refused before anything is allocated for it.
    #[error("{path}: unsupported image: {source}")]
    Size {
        path: PathBuf,
        #[source]
        source: crate::slice::SizeError,
    },
    #[error(
        "{path}: sha256 mismatch: manifest expects {expected}, file has {actual}; the model file was changed or replaced"
    )]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{path}: signature {reason}")]
    Signature { path: PathBuf, reason: String },
    #[error("{path}: invalid manifest: {reason}")]
    Manifest { path: PathBuf, reason: String },
    /// A manifest that parses but contradicts itself (see
    /// [`Manifest::validate`](crate::Manifest::validate)).
    #[error("{path}: invalid manifest: {source}")]
    InvalidManifest {
        path: PathBuf,
        #[source]
        source: crate::manifest::ManifestError,
    },
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
