//! The exclusive lock on a data dir.
//!
//! RocksDB locks each instance itself, but its error names an internal file;
//! this lock covers the whole data dir (every layout, every instance) and
//! turns a second process into a clear [`Error::DirInUse`]. The lock is an
//! advisory `flock` on `<data_dir>/LOCK`, released by the kernel when the
//! process exits, so a `kill -9` never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use crate::error::{Error, Result};

/// Holds the data dir lock until dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    pub(crate) fn acquire(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join("LOCK");
        let file =
            OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(Error::DirInUse { path: data_dir.to_path_buf(), lock: path }),
            Err(TryLockError::Error(e)) => Err(Error::io(&path, e)),
        }
    }
}
