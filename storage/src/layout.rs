//! The storage layout and the `SESHAT` marker file that records it.
//!
//! The marker is written once, when a data dir is first initialised, and is
//! checked on every open. It is a small TOML document:
//!
//! ```toml
//! format = 4
//! layout = "shared"
//! ```
//!
//! A directory that has entries but no marker was not made by Seshat and is
//! refused rather than written into.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::keyspace::Service;

/// The on-disk format version this build reads and writes. Format 2 added
/// the modification index to `kv_data` records and the `kv_elements` and
/// `kv_scores` families; format 3 stores list elements in chunks; format
/// 4 puts the group's shard in front of its Raft keys and of `kv_meta` and
/// `kv_expiry` keys, and gives each shard its own range of collection
/// versions, so that several groups of a service share its families. Older
/// dirs are refused, not converted.
pub(crate) const FORMAT_VERSION: u32 = 4;
const MARKER_FILE: &str = "SESHAT";

/// How services share RocksDB instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// One RocksDB under `<data_dir>/db` holding every service's families.
    #[default]
    Shared,
    /// One RocksDB per service under `<data_dir>/<service>`.
    Isolated,
}

impl Layout {
    /// The directory of the RocksDB instance that holds `service`.
    pub(crate) fn instance_dir(self, data_dir: &Path, service: Service) -> PathBuf {
        match self {
            Layout::Shared => data_dir.join("db"),
            Layout::Isolated => data_dir.join(service.name()),
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::Shared => "shared",
            Layout::Isolated => "isolated",
        })
    }
}

impl FromStr for Layout {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "shared" => Ok(Layout::Shared),
            "isolated" => Ok(Layout::Isolated),
            other => Err(format!("unknown storage layout '{other}' (expected shared or isolated)")),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    format: u32,
    layout: Layout,
}

/// Checks the marker of `data_dir` against `requested`, writing it if the
/// directory is new. Returns an error for a foreign, newer or differently
/// laid out data dir.
pub(crate) fn check_or_init(data_dir: &Path, requested: Layout) -> Result<()> {
    let marker_path = data_dir.join(MARKER_FILE);
    match std::fs::read_to_string(&marker_path) {
        Ok(text) => {
            let marker: Marker = toml::from_str(&text).map_err(|e| Error::ForeignDataDir {
                path: data_dir.to_path_buf(),
                reason: format!("unreadable {MARKER_FILE} file: {e}"),
            })?;
            if marker.format != FORMAT_VERSION {
                return Err(Error::UnsupportedFormat {
                    path: data_dir.to_path_buf(),
                    found: marker.format,
                    supported: FORMAT_VERSION,
                });
            }
            if marker.layout != requested {
                return Err(Error::LayoutMismatch {
                    path: data_dir.to_path_buf(),
                    found: marker.layout.to_string(),
                    requested: requested.to_string(),
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let foreign: Vec<String> = std::fs::read_dir(data_dir)
                .map_err(|e| Error::io(data_dir, e))?
                .filter_map(|entry| entry.ok())
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| name != "LOCK")
                .collect();
            if !foreign.is_empty() {
                return Err(Error::ForeignDataDir {
                    path: data_dir.to_path_buf(),
                    reason: format!("it has no {MARKER_FILE} file but is not empty (found {})", foreign.join(", ")),
                });
            }
            let marker = Marker { format: FORMAT_VERSION, layout: requested };
            let text = toml::to_string(&marker).expect("marker serializes");
            write_durably(&marker_path, text.as_bytes())
        }
        Err(e) => Err(Error::io(&marker_path, e)),
    }
}

/// Writes `bytes` to `path` through a temporary file, fsyncing the file and
/// its directory, so that a crash leaves either no marker or a whole one.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    file.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    file.sync_all().map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    let dir = path.parent().expect("marker has a parent dir");
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))
}
