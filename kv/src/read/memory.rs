//! MEMORY USAGE: the bytes a key takes in RocksDB, estimated as Redis
//! estimates its own: the key and its record, plus its elements, all of
//! them or a sample extrapolated to the whole.
//!
//! Each stored entry is counted as its key, its value and RocksDB's
//! per-entry overhead in a block (the internal key's sequence number and
//! type, the block's length prefixes). Compression and the write-ahead log
//! are not counted, so the figure is what the data adds to the live
//! dataset, before compression.

use storage::keyspace::{kv_data, kv_elements};

use super::ReadCtx;
use crate::error::Result;
use crate::record::KeyType;
use crate::reply::Reply;

/// RocksDB's bytes per entry beyond its key and value: an 8-byte internal
/// key trailer and about 3 bytes of varint lengths.
const ENTRY_OVERHEAD: u64 = 11;

/// List elements share an entry per chunk of this many (`list_chunks`).
const LIST_CHUNK: u64 = 32;

impl ReadCtx<'_> {
    /// MEMORY USAGE of `key`: nil if absent; `samples` elements are read
    /// and extrapolated (0: every element).
    pub fn memory_usage(&self, key: &[u8], samples: u64) -> Result<Reply> {
        let Some(record) = self.peek(self.db, key)? else { return Ok(Reply::Nil) };
        let record_bytes = kv_data::key(self.db, key).len() as u64 + record.encode().len() as u64 + ENTRY_OVERHEAD;
        let Some(version) = record.version() else { return Ok(Reply::Int(record_bytes as i64)) };
        let len = record.header().map_or(0, |c| c.len);
        let entries = match record.kind {
            KeyType::List => len.div_ceil(LIST_CHUNK),
            _ => len,
        };
        let limit = if samples == 0 { u64::MAX } else { samples };
        let (mut sampled, mut bytes) = (0u64, 0u64);
        self.each_element(version, None, |sub, value| {
            sampled += 1;
            bytes += kv_elements::key(self.db, version, sub).len() as u64 + value.len() as u64 + ENTRY_OVERHEAD;
            // A sorted set keeps a second entry per member in score order:
            // the element key plus the 8-byte score.
            if record.kind == KeyType::ZSet {
                bytes += kv_elements::key(self.db, version, sub).len() as u64 + 8 + ENTRY_OVERHEAD;
            }
            sampled < limit
        })?;
        let elements = if sampled == 0 || sampled >= entries { bytes } else { bytes * entries / sampled };
        Ok(Reply::Int((record_bytes + elements) as i64))
    }
}
