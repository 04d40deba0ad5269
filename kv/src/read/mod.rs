//! The read path: commands that only read.
//!
//! A read command is a [`ReadOp`], data rather than code, so that a MULTI
//! can carry it in its log entry and run it at apply time against the
//! transaction's own writes. [`ReadCtx::run`] executes one against any
//! [`Reader`]: the live store (the usual path), a snapshot, or the apply
//! txn (inside EXEC).
//!
//! Consistency without a snapshot per command: a RocksDB point read sees one
//! committed state, and so does an iterator (it pins an implicit snapshot).
//! Reads of several keys, and of a collection's record and then its
//! elements, go through [`ReadCtx::consistent`], which takes a snapshot when
//! the reader is the live store, so that they never see half of a later
//! write batch.

mod collection;
mod encoding;
mod function;
mod geo;
mod hash;
mod hll;
mod keys;
mod lcs;
mod list;
mod memory;
mod op;
mod script;
mod set;
mod sort;
mod stream;
mod stream_group;
mod string;
mod zset;

use std::sync::atomic::Ordering;

use bytes::Bytes;
use storage::keyspace::{kv_data, Shard};
use storage::{Family, Reader, Store};

use crate::cursors::CursorTable;
use crate::error::Result;
use crate::notify::Misses;
use crate::record::Record;
use crate::stats::Stats;

pub use encoding::EncodingLimits;
pub use hash::{ElementScan, HashPart};
pub use keys::ScanArgs;
pub use lcs::LcsOutput;
pub use list::LposOptions;
pub use op::ReadOp;
pub use script::ReadCode;
pub(crate) use script::ReadScript;
pub use sort::SortOptions;
pub use stream_group::{InfoKind, PendingRange};

/// The context of one read command: the reader, the database and "now"
/// for expiry. Expired keys are absent through every method.
#[derive(Clone, Copy)]
pub struct ReadCtx<'a> {
    pub(crate) reader: &'a dyn Reader,
    /// The live store, when `reader` is it (see [`ReadCtx::consistent`]).
    pub(crate) live: Option<&'a Store>,
    /// The groups whose counters DBSIZE and INFO keyspace add up: shards
    /// `first ..` (exclusive) `end`.
    pub(crate) shards: (Shard, Shard),
    /// The hash slots (`first ..=` `last`) whose keys KEYS, SCAN and
    /// RANDOMKEY see: those of `shards` (every slot inside EXEC).
    pub(crate) slots: (u16, u16),
    pub(crate) db: u8,
    pub(crate) now_ms: u64,
    /// Keyspace hit and miss counters; not counted inside EXEC.
    pub(crate) stats: Option<&'a Stats>,
    pub(crate) cursors: &'a CursorTable,
    /// The seed of the random commands (SRANDMEMBER, RANDOMKEY…) inside a
    /// script, whose replicas must draw alike; `None`: the thread's.
    pub(crate) seed: Option<u64>,
    /// Where lookups record the keys they miss, while `m` notifications
    /// are on.
    pub(crate) misses: Option<&'a Misses>,
}

impl ReadCtx<'_> {
    /// The random source of the random commands (see `seed`).
    pub(crate) fn rng(&self) -> rand::rngs::StdRng {
        use rand::SeedableRng;
        match self.seed {
            Some(seed) => rand::rngs::StdRng::seed_from_u64(seed),
            None => rand::rngs::StdRng::from_rng(&mut rand::rng()),
        }
    }

    /// Runs `read` against one point in time: a snapshot of the live store,
    /// or this reader if it is already fixed (a snapshot, the apply txn).
    pub(crate) fn consistent<T>(&self, read: impl FnOnce(&ReadCtx<'_>) -> Result<T>) -> Result<T> {
        match self.live {
            Some(store) => {
                let snapshot = store.snapshot();
                read(&ReadCtx { reader: &snapshot, live: None, ..*self })
            }
            None => read(self),
        }
    }

    /// The live record of `key`, looked up to be read as Redis's
    /// `lookupKeyRead` does: counted as a keyspace hit or miss, and a
    /// miss is a `keymiss` event.
    pub(crate) fn lookup(&self, key: &[u8]) -> Result<Option<Record>> {
        let record = self.peek(self.db, key)?;
        self.looked_up(key, record.is_some());
        Ok(record)
    }

    /// The live record of `key`, counted in the stats but never a
    /// `keymiss` event (Redis's `LOOKUP_NONOTIFY`: OBJECT).
    pub(crate) fn lookup_unnotified(&self, key: &[u8]) -> Result<Option<Record>> {
        let record = self.peek(self.db, key)?;
        self.count_lookup(record.is_some());
        Ok(record)
    }

    /// Counts a lookup of `key` whose outcome (`found`) the caller
    /// already knows, as [`ReadCtx::lookup`] counts one.
    pub(crate) fn looked_up(&self, key: &[u8], found: bool) {
        self.count_lookup(found);
        if let (false, Some(misses)) = (found, self.misses) {
            misses.record(self.db, key);
        }
    }

    /// A keyspace hit or miss in the stats.
    fn count_lookup(&self, found: bool) {
        if let Some(stats) = self.stats {
            let counter = if found { &stats.keyspace_hits } else { &stats.keyspace_misses };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The live record of `key` in `db`, not counted in the stats.
    pub(crate) fn peek(&self, db: u8, key: &[u8]) -> Result<Option<Record>> {
        let Some(bytes) = self.reader.get(Family::KvData, &kv_data::key(db, key))? else {
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
        let (first, end) = kv_data::slots_range(self.db, self.slots.0, self.slots.1);
        let start = start.max(first.as_slice());
        let mut last = None;
        for entry in self.reader.scan(Family::KvData, start, Some(&end)) {
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
