//! SWAPDB's indirection: which physical database (the first byte of every
//! stored key) holds each logical database a client SELECTs.
//!
//! Swapping two databases swaps two entries of the map: O(1), whatever
//! they hold. The map is replicated state (`kv_meta` `db_map`, written in
//! the batch of the SWAPDB that changes it). Apply translates every
//! command's database through it; WATCH's evidence and the queue of
//! blocked clients stay logical. Readers translate through the map stored
//! in the same RocksDB snapshot they read the data from, so a read never
//! pairs one map with the other's data; until the first SWAPDB, the map is
//! the identity and reads skip that (the common case costs nothing).

use std::sync::atomic::{AtomicBool, Ordering};

use storage::keyspace::{kv_meta, Shard};
use storage::{Family, Reader};

use crate::error::{Error, Result};
use crate::DATABASES;

/// Logical database → physical database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DbMap([u8; DATABASES]);

impl DbMap {
    pub(crate) fn identity() -> Self {
        DbMap(std::array::from_fn(|db| db as u8))
    }

    /// The map group `shard` holds in `reader` (the identity if no SWAPDB
    /// ever ran).
    pub(crate) fn load(reader: &(impl Reader + ?Sized), shard: Shard) -> Result<Self> {
        match reader.get(Family::KvMeta, &kv_meta::db_map(shard))? {
            None => Ok(DbMap::identity()),
            Some(bytes) => {
                let map: [u8; DATABASES] =
                    bytes.as_slice().try_into().map_err(|_| corrupt("db_map has the wrong length"))?;
                let mut seen = [false; DATABASES];
                for db in map {
                    let slot = seen.get_mut(usize::from(db)).ok_or_else(|| corrupt("db_map names no database"))?;
                    if std::mem::replace(slot, true) {
                        return Err(corrupt("db_map names a database twice"));
                    }
                }
                Ok(DbMap(map))
            }
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        self.0.to_vec()
    }

    pub(crate) fn is_identity(&self) -> bool {
        *self == DbMap::identity()
    }

    /// Where logical database `db` is stored.
    pub(crate) fn physical(&self, db: u8) -> u8 {
        self.0.get(usize::from(db)).copied().unwrap_or(db)
    }

    /// Which logical database physical database `db` is.
    pub(crate) fn logical(&self, db: u8) -> u8 {
        self.0.iter().position(|p| *p == db).map_or(db, |logical| logical as u8)
    }

    pub(crate) fn swap(&mut self, a: u8, b: u8) {
        self.0.swap(usize::from(a), usize::from(b));
    }
}

fn corrupt(reason: &str) -> Error {
    Error::Corrupt { family: "kv_meta", reason: reason.into() }
}

/// What readers need to know of the map: whether it ever left the
/// identity (then they read it from their snapshot).
#[derive(Debug, Default)]
pub(crate) struct DbMapState {
    swapped: AtomicBool,
}

impl DbMapState {
    pub(crate) fn ever_swapped(&self) -> bool {
        self.swapped.load(Ordering::Acquire)
    }

    /// Called by the state machine with every map it applies (or loads).
    pub(crate) fn observe(&self, map: &DbMap) {
        if !map.is_identity() {
            self.swapped.store(true, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_translate_both_ways() {
        let mut map = DbMap::identity();
        map.swap(0, 3);
        assert_eq!((map.physical(0), map.physical(3), map.physical(1)), (3, 0, 1));
        assert_eq!((map.logical(3), map.logical(0)), (0, 3));
        map.swap(3, 0);
        assert!(map.is_identity());
    }
}
