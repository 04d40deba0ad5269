//! The read path: commands that only read.
//!
//! Consistency without a snapshot per command: a RocksDB point read sees one
//! committed state, and so does an iterator (it pins an implicit snapshot).
//! Only reads of several keys by point lookups (MGET, EXISTS k1 k2, LCS, the
//! INFO keyspace counters) take an explicit snapshot, so that they never see
//! half of a later write batch.

mod keys;
mod lcs;
mod string;

use std::sync::atomic::Ordering;

use bytes::Bytes;
use storage::keyspace::kv_data;
use storage::{Family, Reader, Store};

use crate::error::Result;
use crate::record::Record;
use crate::service::{CursorTable, Stats};

pub use keys::ScanArgs;
pub use lcs::LcsOutput;

/// The context of one read command: the store, the database and "now" for
/// expiry. Expired keys are absent through every method.
pub struct ReadCtx<'a> {
    pub(crate) store: &'a Store,
    pub(crate) db: u8,
    pub(crate) now_ms: u64,
    pub(crate) stats: &'a Stats,
    pub(crate) cursors: &'a CursorTable,
}

impl ReadCtx<'_> {
    /// The live record of `key`, counted as a keyspace hit or miss.
    pub(crate) fn lookup(&self, key: &[u8]) -> Result<Option<Record>> {
        self.lookup_in(self.store, key)
    }

    /// [`ReadCtx::lookup`] through `reader` (a snapshot, for multi-key reads).
    pub(crate) fn lookup_in(&self, reader: &impl Reader, key: &[u8]) -> Result<Option<Record>> {
        let record = self.peek_in(reader, self.db, key)?;
        let counter = if record.is_some() { &self.stats.keyspace_hits } else { &self.stats.keyspace_misses };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(record)
    }

    /// The live record of `key` in `db`, not counted in the stats.
    pub(crate) fn peek(&self, db: u8, key: &[u8]) -> Result<Option<Record>> {
        self.peek_in(self.store, db, key)
    }

    fn peek_in(&self, reader: &impl Reader, db: u8, key: &[u8]) -> Result<Option<Record>> {
        let Some(bytes) = reader.get(Family::KvData, &kv_data::key(db, key))? else {
            return Ok(None);
        };
        let record = Record::decode(Bytes::from(bytes))?;
        Ok((!record.is_expired(self.now_ms)).then_some(record))
    }

    /// Calls `visit` with every live key of the database, in storage order,
    /// from `start` (a `kv_data` key), until it returns false. Returns the
    /// `kv_data` key of the last record visited.
    pub(crate) fn each_key(
        &self,
        start: &[u8],
        mut visit: impl FnMut(Bytes, &Record) -> bool,
    ) -> Result<Option<Vec<u8>>> {
        let (_, end) = kv_data::db_range(self.db);
        let mut last = None;
        for entry in self.store.scan(Family::KvData, start, Some(&end)) {
            let (raw_key, raw_value) = entry?;
            let (_, _, user_key) = kv_data::decode(&raw_key).ok_or_else(|| crate::error::Error::Corrupt {
                family: "kv_data",
                reason: "key shorter than its prefix".into(),
            })?;
            let record = Record::decode(Bytes::from(raw_value))?;
            let keep_going = record.is_expired(self.now_ms) || visit(Bytes::copy_from_slice(user_key), &record);
            last = Some(raw_key);
            if !keep_going {
                break;
            }
        }
        Ok(last.map(Vec::from))
    }
}
