//! The storage error type.

use std::path::PathBuf;

/// Errors from opening or using the storage layer.
///
/// None of these is a client's fault: the services above treat every storage
/// error as fatal for the operation and never turn it into a user reply.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("data dir {path} is in use by another process (lock file {lock})")]
    DirInUse { path: PathBuf, lock: PathBuf },

    #[error(
        "data dir {path} was created with storage layout '{found}', but '{requested}' was requested; \
         start with --storage-layout {found} or use another data dir"
    )]
    LayoutMismatch { path: PathBuf, found: String, requested: String },

    #[error("data dir {path} is not a Seshat data dir: {reason}")]
    ForeignDataDir { path: PathBuf, reason: String },

    #[error("data dir {path} has format version {found}; this build reads version {supported}")]
    UnsupportedFormat { path: PathBuf, found: u32, supported: u32 },

    #[error("I/O error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),

    /// A WAL sync of the group-commit thread failed (the message is
    /// RocksDB's); no write it was to cover may be counted as durable.
    #[error("syncing the WAL failed: {0}")]
    WalSync(String),

    #[error("corrupt record in {family}: {reason}")]
    Corrupt { family: &'static str, reason: String },

    /// A reader layered over the store stopped a read on purpose (a SQL
    /// session recording what a statement reads gives up past a limit).
    #[error("read abandoned: {0}")]
    Abandoned(&'static str),
}

/// The storage result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
