//! The write set of one applied batch.
//!
//! Apply reads through a [`Txn`]: the first read of a key loads its stored
//! record, later reads and writes see the batch's own changes. At commit the
//! txn compares each touched key's final record with what is stored and
//! emits one write batch with the record puts and deletes, the exact
//! `kv_expiry` index entries, the per-db key and expiry counters and the
//! last time stamp. Nothing reaches storage before commit.
//!
//! Expired keys are absent to every command: the first read of an expired
//! key through [`Txn::get`] deletes it in the txn (as Redis's lazy expiry
//! does), deterministically, since "now" is the log's stamp.

use std::collections::{btree_map, BTreeMap};

use bytes::Bytes;
use storage::keyspace::{kv_data, kv_expiry, kv_meta};
use storage::{Batch, Family, Reader, Store};

use crate::error::Result;
use crate::record::Record;
use crate::DATABASES;

/// A touched key: what storage holds and what the batch leaves.
struct Touched {
    stored: Option<Record>,
    current: Option<Record>,
}

pub(crate) struct Txn<'a> {
    store: &'a Store,
    /// "Now" for expiry decisions: the stamp of the entry being applied.
    pub(crate) now_ms: u64,
    touched: BTreeMap<(u8, Bytes), Touched>,
    flushed: [bool; DATABASES],
    /// Keys removed because they had expired, for INFO's `expired_keys`.
    pub(crate) expired: u64,
}

impl<'a> Txn<'a> {
    pub(crate) fn new(store: &'a Store, now_ms: u64) -> Self {
        Txn { store, now_ms, touched: BTreeMap::new(), flushed: [false; DATABASES], expired: 0 }
    }

    fn entry(&mut self, db: u8, key: &Bytes) -> Result<&mut Touched> {
        match self.touched.entry((db, key.clone())) {
            btree_map::Entry::Occupied(entry) => Ok(entry.into_mut()),
            btree_map::Entry::Vacant(entry) => {
                let stored = if self.flushed[usize::from(db)] {
                    None
                } else {
                    let bytes = self.store.get(Family::KvData, &kv_data::key(db, key))?;
                    bytes.map(|bytes| Record::decode(Bytes::from(bytes))).transpose()?
                };
                Ok(entry.insert(Touched { current: stored.clone(), stored }))
            }
        }
    }

    /// The live record of `key`, treating (and removing) an expired one as
    /// absent.
    pub(crate) fn get(&mut self, db: u8, key: &Bytes) -> Result<Option<Record>> {
        let now = self.now_ms;
        let entry = self.entry(db, key)?;
        if entry.current.as_ref().is_some_and(|r| r.is_expired(now)) {
            entry.current = None;
            self.expired += 1;
            return Ok(None);
        }
        Ok(entry.current.clone())
    }

    /// Sets `key` to `record`.
    pub(crate) fn put(&mut self, db: u8, key: &Bytes, record: Record) -> Result<()> {
        self.entry(db, key)?.current = Some(record);
        Ok(())
    }

    /// Deletes `key`; returns whether a live key was deleted.
    pub(crate) fn delete(&mut self, db: u8, key: &Bytes) -> Result<bool> {
        let existed = self.get(db, key)?.is_some();
        self.entry(db, key)?.current = None;
        Ok(existed)
    }

    /// Removes every key of `db`.
    pub(crate) fn flush_db(&mut self, db: u8) {
        self.flushed[usize::from(db)] = true;
        for ((key_db, _), touched) in self.touched.iter_mut() {
            if *key_db == db {
                touched.stored = None;
                touched.current = None;
            }
        }
    }

    /// Adds everything the txn changed to `batch`, recording
    /// `last_stamp_ms` with it.
    pub(crate) fn commit(self, batch: &mut Batch, last_stamp_ms: u64) -> Result<()> {
        let mut counts: BTreeMap<u8, (i64, i64)> = BTreeMap::new();
        for db in 0..DATABASES as u8 {
            if self.flushed[usize::from(db)] {
                let (start, end) = kv_data::db_range(db);
                batch.delete_range(Family::KvData, start.clone(), end.clone());
                batch.delete_range(Family::KvExpiry, start, end);
                counts.insert(db, (0, 0));
            }
        }
        for ((db, key), touched) in &self.touched {
            if touched.stored == touched.current {
                continue;
            }
            let stored_expiry = touched.stored.as_ref().and_then(|r| r.expire_at_ms);
            let current_expiry = touched.current.as_ref().and_then(|r| r.expire_at_ms);
            if stored_expiry != current_expiry {
                if let Some(at) = stored_expiry {
                    batch.delete(Family::KvExpiry, kv_expiry::key(*db, at, key));
                }
                if let Some(at) = current_expiry {
                    batch.put(Family::KvExpiry, kv_expiry::key(*db, at, key), Vec::new());
                }
            }
            let data_key = kv_data::key(*db, key);
            match &touched.current {
                Some(record) => batch.put(Family::KvData, data_key, record.encode()),
                None => batch.delete(Family::KvData, data_key),
            }
            let delta = counts.entry(*db).or_insert((0, 0));
            delta.0 += i64::from(touched.current.is_some()) - i64::from(touched.stored.is_some());
            delta.1 += i64::from(current_expiry.is_some()) - i64::from(stored_expiry.is_some());
        }
        for (db, (keys_delta, expires_delta)) in counts {
            let flushed = self.flushed[usize::from(db)];
            for (name, delta) in [(kv_meta::key_count(db), keys_delta), (kv_meta::expires_count(db), expires_delta)] {
                let base = if flushed { 0 } else { read_u64(self.store, &name)? };
                let value = base.checked_add_signed(delta).expect("key counters never go negative");
                batch.put(Family::KvMeta, name, value.to_be_bytes().to_vec());
            }
        }
        batch.put(Family::KvMeta, kv_meta::LAST_STAMP, last_stamp_ms.to_be_bytes().to_vec());
        Ok(())
    }
}

/// Reads a `u64` counter of `kv_meta` (0 if absent).
pub(crate) fn read_u64(reader: &impl Reader, name: &[u8]) -> Result<u64> {
    match reader.get(Family::KvMeta, name)? {
        None => Ok(0),
        Some(bytes) => {
            let array: [u8; 8] = bytes.as_slice().try_into().map_err(|_| crate::error::Error::Corrupt {
                family: "kv_meta",
                reason: format!("{} holds {} bytes, not 8", String::from_utf8_lossy(name), bytes.len()),
            })?;
            Ok(u64::from_be_bytes(array))
        }
    }
}
