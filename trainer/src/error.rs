use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Models(#[from] models::Error),
    #[error("{path}: {reason}")]
    Data { path: PathBuf, reason: String },
    #[error("{0}")]
    Invalid(String),
    /// A training config file with a value that cannot be trained with.
    #[error("{path}: {source}")]
    Config {
        path: PathBuf,
        #[source]
        source: crate::train::config::ConfigError,
    },
    /// A training config (built on the command line or in code) that
    /// cannot be trained with.
    #[error("{0}")]
    FitConfig(#[from] crate::train::config::ConfigError),
    #[error("{0}")]
    Sources(#[from] crate::data::source::SourceError),
    /// A manifest about to be written that contradicts itself.
    #[error("{0}")]
    Manifest(#[from] models::manifest::ManifestError),
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
