//! Values the service keeps in `kv_meta` (key shapes in
//! `storage::keyspace::kv_meta`).

use storage::{Family, Reader};

use crate::error::{Error, Result};

/// Reads a `u64` counter of `kv_meta` (0 if absent).
pub(crate) fn read_u64(reader: &(impl Reader + ?Sized), name: &[u8]) -> Result<u64> {
    match reader.get(Family::KvMeta, name)? {
        None => Ok(0),
        Some(bytes) => {
            let array: [u8; 8] = bytes.as_slice().try_into().map_err(|_| Error::Corrupt {
                family: "kv_meta",
                reason: format!("{} holds {} bytes, not 8", String::from_utf8_lossy(name), bytes.len()),
            })?;
            Ok(u64::from_be_bytes(array))
        }
    }
}
