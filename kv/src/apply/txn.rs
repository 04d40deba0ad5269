//! The write set of one applied batch.
//!
//! Apply reads through a [`Txn`]: reads see the batch's own changes over
//! the stored state (the txn is itself a [`Reader`], so the read commands
//! of a MULTI/EXEC run against it unchanged). Records are kept decoded, per
//! touched key; elements of collections as raw puts and deletes. At commit
//! the txn compares each touched key's final record with what is stored and
//! emits one write batch with the record puts and deletes, the exact
//! `kv_expiry` index entries, the per-db key and expiry counters, the
//! element writes, one range deletion per dropped collection version, the
//! WATCH evidence (per-slot deletion and per-db flush indexes) and the last
//! time stamp. Nothing reaches storage before commit. A txn belongs to one
//! group: its `kv_meta` keys, expiry index entries and new collection
//! versions are the group's, and a flush empties the group's spans only.
//!
//! Invariants:
//! - every change of a key's record goes through [`Txn::replace`], which
//!   stamps it with the entry's log index and tracks dropped versions: a
//!   collection version is dropped when no record names it any more
//!   (deleted, overwritten, expired), and kept when the record moves
//!   (RENAME);
//! - element range deletions are emitted after the element writes, so an
//!   element written to a version that the same batch drops is deleted too.
//!
//! Expired keys are absent to every command: the first read of an expired
//! key through [`Txn::get`] deletes it in the txn (as Redis's lazy expiry
//! does), deterministically, since "now" is the log's stamp.

use std::collections::{btree_map, BTreeMap, BTreeSet};
use std::ops::RangeInclusive;

use bytes::Bytes;
use storage::keyspace::{kv_data, kv_elements, kv_expiry, kv_group, kv_meta, Shard};
use storage::overlay::{merge, Order};
use storage::{Batch, Family, Reader, Scan, Store};

use crate::error::Result;
use crate::meta::read_u64;
use crate::notify::{class, KeyEvent, Misses, NotifyFlags, Writer};
use crate::record::{Collection, KeyType, Record};
use crate::DATABASES;

/// A touched key: what storage holds and what the batch leaves.
struct Touched {
    db: u8,
    key: Bytes,
    stored: Option<Record>,
    current: Option<Record>,
    /// The op (see [`Txn::begin_op`]) that last touched the key, and
    /// whether the key was live when that op began: a key is "new" (the
    /// `n` notification) when an op creates it where none was.
    op: u64,
    live_at_op_start: bool,
}

pub(crate) struct Txn<'a> {
    store: &'a Store,
    /// The group applying: the prefix of its `kv_meta` and `kv_expiry` keys.
    pub(crate) shard: Shard,
    /// The hash slots the group owns (what a flush empties).
    slots: &'a [RangeInclusive<u16>],
    /// "Now" for expiry decisions: the stamp of the entry being applied.
    pub(crate) now_ms: u64,
    /// The log index of the entry being applied.
    pub(crate) index: u64,
    /// Touched records by `kv_data` key.
    records: BTreeMap<Vec<u8>, Touched>,
    /// Element writes (`None` deletes) of `kv_elements` and `kv_scores`.
    elements: BTreeMap<(Family, Vec<u8>), Option<Bytes>>,
    /// `(db, version)` of collections no record names any more.
    dropped: BTreeSet<(u8, u64)>,
    next_version: Option<u64>,
    /// The index of the last deletion per `(db, slot)`.
    slot_deletions: BTreeMap<(u8, u16), u64>,
    /// The index of the last key creation per `(db, slot)`.
    slot_creations: BTreeMap<(u8, u16), u64>,
    /// The index of the FLUSHDB/FLUSHALL that emptied each db in this batch.
    flushed: [Option<u64>; DATABASES],
    /// Keys removed because they had expired, for INFO's `expired_keys`.
    pub(crate) expired: u64,
    /// `kv_meta` writes (`None` deletes) other than the counters above.
    meta: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Keys created (or given another type) since the last
    /// [`Txn::take_signals`], in order, while clients are blocked: the
    /// keys that may serve them (Redis's "ready keys").
    signals: Option<Vec<(u8, Bytes)>>,
    /// The keyspace notifications of the op being applied (none by
    /// default; `WriteOp::Observed` sets them).
    pub(crate) notify: NotifyFlags,
    /// The events produced so far, with physical databases.
    pub(crate) events: Vec<KeyEvent>,
    /// The keys the op's reads missed since its last event.
    misses: Misses,
    /// The client whose entry is being applied, if it named itself.
    pub(crate) writer: Option<Writer>,
    /// Every key changed so far with its writer, while client tracking
    /// asks for them (`None`: not collected).
    pub(crate) changed: Option<Vec<(Bytes, Option<Writer>)>>,
    /// A flush or SWAPDB ran: every key may have changed.
    pub(crate) flushed_any: bool,
    /// SCRIPT FLUSH ran: the group's scripts are gone.
    pub(crate) scripts_flushed: bool,
    /// Counts ops, for [`Touched::live_at_op_start`].
    op: u64,
}

impl<'a> Txn<'a> {
    pub(crate) fn new(store: &'a Store, shard: Shard, slots: &'a [RangeInclusive<u16>], now_ms: u64) -> Self {
        Txn {
            store,
            shard,
            slots,
            now_ms,
            index: 0,
            records: BTreeMap::new(),
            elements: BTreeMap::new(),
            dropped: BTreeSet::new(),
            next_version: None,
            slot_deletions: BTreeMap::new(),
            slot_creations: BTreeMap::new(),
            flushed: [None; DATABASES],
            expired: 0,
            meta: BTreeMap::new(),
            signals: None,
            notify: NotifyFlags::default(),
            events: Vec::new(),
            misses: Misses::default(),
            writer: None,
            changed: None,
            flushed_any: false,
            scripts_flushed: false,
            op: 0,
        }
    }

    /// Marks the start of an op (a command, or one command of an EXEC).
    pub(crate) fn begin_op(&mut self) {
        self.op += 1;
    }

    /// Records keyspace event `event` of `class` on `key` if the op's
    /// notifications want it.
    pub(crate) fn notify(&mut self, class: u16, event: &'static str, db: u8, key: &Bytes) {
        self.take_misses();
        if self.notify.wants(class) {
            self.events.push(KeyEvent { db, event, key: key.clone(), flags: self.notify });
        }
    }

    /// Where the op's reads record the keys they miss: only while its
    /// notifications want `keymiss`.
    pub(crate) fn misses(&self) -> Option<&Misses> {
        self.notify.wants(class::KEY_MISS).then_some(&self.misses)
    }

    /// A key a write looked up to read (Redis's `lookupKeyRead`: a
    /// source, a GETSET's old value) and did not find.
    pub(crate) fn key_miss(&mut self, db: u8, key: &Bytes) {
        self.notify(class::KEY_MISS, "keymiss", db, key);
    }

    /// Turns the keys the op's reads missed so far into `keymiss` events,
    /// in the order of the lookups, before any later event.
    pub(crate) fn take_misses(&mut self) {
        // Called by every event and op: no lock (`&mut self`), and nothing
        // to do unless `keymiss` is wanted.
        if !self.notify.wants(class::KEY_MISS) {
            return;
        }
        for (db, key) in self.misses.drain() {
            self.events.push(KeyEvent { db, event: "keymiss", key, flags: self.notify });
        }
    }

    fn is_flushed(&self, db: u8) -> bool {
        self.flushed.get(usize::from(db)).is_some_and(Option::is_some)
    }

    fn entry(&mut self, db: u8, key: &Bytes) -> Result<&mut Touched> {
        let (flushed, op, now_ms) = (self.is_flushed(db), self.op, self.now_ms);
        let touched = match self.records.entry(kv_data::key(db, key)) {
            btree_map::Entry::Occupied(entry) => entry.into_mut(),
            btree_map::Entry::Vacant(entry) => {
                let stored = if flushed {
                    None
                } else {
                    let bytes = self.store.get(Family::KvData, entry.key())?;
                    bytes.map(|bytes| Record::decode(Bytes::from(bytes))).transpose()?
                };
                entry.insert(Touched {
                    db,
                    key: key.clone(),
                    current: stored.clone(),
                    stored,
                    op: 0,
                    live_at_op_start: false,
                })
            }
        };
        if touched.op != op {
            touched.op = op;
            touched.live_at_op_start = touched.current.as_ref().is_some_and(|r| !r.is_expired(now_ms));
        }
        Ok(touched)
    }

    /// The live record of `key`, treating (and removing) an expired one as
    /// absent.
    pub(crate) fn get(&mut self, db: u8, key: &Bytes) -> Result<Option<Record>> {
        match self.entry(db, key)?.current.clone() {
            Some(record) if record.is_expired(self.now_ms) => {
                self.expired += 1;
                self.replace(db, key, None)?;
                self.notify(class::EXPIRED, "expired", db, key);
                Ok(None)
            }
            current => Ok(current),
        }
    }

    /// Sets `key` to `record`, stamped with the entry's index.
    pub(crate) fn put(&mut self, db: u8, key: &Bytes, record: Record) -> Result<()> {
        self.replace(db, key, Some(record))
    }

    /// Deletes `key`; returns whether a live key was deleted.
    pub(crate) fn delete(&mut self, db: u8, key: &Bytes) -> Result<bool> {
        let existed = self.get(db, key)?.is_some();
        if existed {
            self.replace(db, key, None)?;
        }
        Ok(existed)
    }

    /// The one place a record changes (see the module docs).
    fn replace(&mut self, db: u8, key: &Bytes, record: Option<Record>) -> Result<()> {
        let index = self.index;
        let record = record.map(|record| Record { modified: index, ..record });
        let new_version = record.as_ref().and_then(Record::version);
        let entry = self.entry(db, key)?;
        let old_version = entry.current.as_ref().and_then(Record::version);
        let deleted = entry.current.is_some() && record.is_none();
        let created = entry.current.is_none() && record.is_some();
        let new = created && !entry.live_at_op_start;
        let ready = match (&entry.current, &record) {
            (None, Some(_)) => true,
            (Some(old), Some(new)) => old.kind != new.kind,
            // Clients blocked in XREADGROUP learn that their stream is gone.
            (Some(old), None) => old.kind == KeyType::Stream,
            _ => false,
        };
        entry.current = record;
        if let Some(version) = old_version.filter(|old| Some(*old) != new_version) {
            self.dropped.insert((db, version));
        }
        if let Some(version) = new_version {
            self.dropped.remove(&(db, version));
        }
        if deleted {
            self.slot_deletions.insert((db, storage::keyspace::hash_slot(key)), index);
        }
        if created {
            self.slot_creations.insert((db, storage::keyspace::hash_slot(key)), index);
        }
        if let Some(signals) = self.signals.as_mut().filter(|_| ready) {
            signals.push((db, key.clone()));
        }
        if new {
            self.notify(class::NEW, "new", db, key);
        }
        if let Some(changed) = self.changed.as_mut() {
            changed.push((key.clone(), self.writer));
        }
        Ok(())
    }

    /// Starts (or stops) recording the keys that commands create, for
    /// [`Txn::take_signals`]. Off while no client is blocked.
    pub(crate) fn record_signals(&mut self, on: bool) {
        if on != self.signals.is_some() {
            self.signals = on.then(Vec::new);
        }
    }

    /// The keys created (or given another type) since the last call, in
    /// the order they were, each once.
    pub(crate) fn take_signals(&mut self) -> Vec<(u8, Bytes)> {
        let Some(signals) = self.signals.as_mut() else { return Vec::new() };
        let mut seen = std::collections::HashSet::new();
        std::mem::take(signals).into_iter().filter(|signal| seen.insert(signal.clone())).collect()
    }

    /// Marks `key` of `db` ready for the clients blocked on it (SWAPDB
    /// gives a database new content without writing its keys).
    pub(crate) fn signal(&mut self, db: u8, key: Bytes) {
        if let Some(signals) = self.signals.as_mut() {
            signals.push((db, key));
        }
    }

    /// The log index of the last SWAPDB of logical database `db` (0: none).
    pub(crate) fn last_swap(&self, db: u8) -> Result<u64> {
        let key = kv_meta::swapped(self.shard, db);
        match self.meta.get(&key) {
            Some(Some(bytes)) => Ok(bytes.as_slice().try_into().map(u64::from_be_bytes).unwrap_or(0)),
            _ => read_u64(self.store, &key),
        }
    }

    /// Writes (`Some`) or deletes (`None`) a `kv_meta` value at commit.
    pub(crate) fn put_meta(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.meta.insert(key, value);
    }

    /// A `kv_meta` value as the batch leaves it (one [`Txn::put_meta`]
    /// wrote, else the stored one).
    pub(crate) fn get_meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.meta.get(key) {
            Some(value) => Ok(value.clone()),
            None => Ok(self.store.get(Family::KvMeta, key)?),
        }
    }

    /// Deletes every `kv_meta` value in `[start, end)` at commit.
    pub(crate) fn delete_meta_range(&mut self, start: &[u8], end: &[u8]) -> Result<()> {
        for entry in self.store.scan(Family::KvMeta, start, Some(end)) {
            let (key, _) = entry?;
            self.meta.insert(key.into_vec(), None);
        }
        for (_, value) in self.meta.range_mut(start.to_vec()..end.to_vec()) {
            *value = None;
        }
        Ok(())
    }

    /// Whether `key` is in one of the group's hash slots.
    pub(crate) fn owns_key(&self, key: &[u8]) -> bool {
        let slot = storage::keyspace::hash_slot(key);
        self.slots.iter().any(|slots| slots.contains(&slot))
    }

    /// A new collection under a version never used before.
    pub(crate) fn new_collection(&mut self) -> Result<Collection> {
        let next = match self.next_version {
            Some(next) => next,
            None => read_u64(self.store, &kv_meta::next_version(self.shard))?
                .max(kv_elements::first_version(self.shard) + 1),
        };
        self.next_version = Some(next + 1);
        Ok(Collection::new(next))
    }

    /// Writes an element (`kv_elements` or `kv_scores`).
    pub(crate) fn put_element(&mut self, family: Family, key: Vec<u8>, value: Bytes) {
        self.elements.insert((family, key), Some(value));
    }

    /// Deletes an element.
    pub(crate) fn delete_element(&mut self, family: Family, key: Vec<u8>) {
        self.elements.insert((family, key), None);
    }

    /// Removes every key of `db`.
    pub(crate) fn flush_db(&mut self, db: u8) {
        self.flushed_any = true;
        self.flushed[usize::from(db)] = Some(self.index);
        self.records.retain(|_, touched| touched.db != db);
        self.elements.retain(|(family, key), _| db_of(*family, key) != Some(db));
        self.dropped.retain(|(dropped_db, _)| *dropped_db != db);
    }

    /// Whether a key absent when WATCH looked at `observed` may have been
    /// touched since (Redis 7 aborts EXEC then): a key of its hash slot was
    /// deleted after `observed`, or one was created after it and then
    /// removed by a flush of `db`. A flush alone touches only keys that
    /// existed, as in Redis. Conservative: another key of the same slot
    /// counts too.
    pub(crate) fn absent_key_touched(&self, db: u8, key: &[u8], observed: u64) -> Result<bool> {
        let slot = storage::keyspace::hash_slot(key);
        let last = |batch: &BTreeMap<(u8, u16), u64>, stored: Vec<u8>| -> Result<u64> {
            match batch.get(&(db, slot)) {
                Some(index) => Ok(*index),
                None => read_u64(self.store, &stored),
            }
        };
        let deleted = last(&self.slot_deletions, kv_meta::slot_deleted(self.shard, db, slot))?;
        let created = last(&self.slot_creations, kv_meta::slot_created(self.shard, db, slot))?;
        let flushed = match self.flushed[usize::from(db)] {
            Some(index) => index,
            None => read_u64(self.store, &kv_meta::flushed(self.shard, db))?,
        };
        Ok(deleted > observed || (flushed > observed && created > observed))
    }

    /// The change in `db`'s key and expiry counts made so far.
    fn count_deltas(&self, db: u8) -> (i64, i64) {
        let mut delta = (0, 0);
        for touched in self.records.values().filter(|touched| touched.db == db) {
            let expiry = |record: &Option<Record>| record.as_ref().is_some_and(|r| r.expire_at_ms.is_some());
            delta.0 += i64::from(touched.current.is_some()) - i64::from(touched.stored.is_some());
            delta.1 += i64::from(expiry(&touched.current)) - i64::from(expiry(&touched.stored));
        }
        delta
    }

    /// Adds everything the txn changed to `batch`, recording
    /// `last_stamp_ms` with it.
    pub(crate) fn commit(self, batch: &mut Batch, last_stamp_ms: u64) -> Result<()> {
        for (db, index) in self.flushed.iter().enumerate() {
            let Some(index) = index else { continue };
            for span in kv_group::db_spans(self.shard, self.slots, db as u8) {
                batch.delete_range(span.family, span.start, span.end);
            }
            batch.put(Family::KvMeta, kv_meta::flushed(self.shard, db as u8), index.to_be_bytes().to_vec());
        }
        for (data_key, touched) in &self.records {
            if touched.stored == touched.current {
                continue;
            }
            let (db, key) = (touched.db, &touched.key);
            let stored_expiry = touched.stored.as_ref().and_then(|r| r.expire_at_ms);
            let current_expiry = touched.current.as_ref().and_then(|r| r.expire_at_ms);
            if stored_expiry != current_expiry {
                if let Some(at) = stored_expiry {
                    batch.delete(Family::KvExpiry, kv_expiry::key(self.shard, db, at, key));
                }
                if let Some(at) = current_expiry {
                    batch.put(Family::KvExpiry, kv_expiry::key(self.shard, db, at, key), Vec::new());
                }
            }
            match &touched.current {
                Some(record) => batch.put(Family::KvData, data_key.clone(), record.encode()),
                None => batch.delete(Family::KvData, data_key.clone()),
            }
        }
        let changed: BTreeSet<u8> = self
            .records
            .values()
            .filter(|touched| touched.stored != touched.current)
            .map(|touched| touched.db)
            .collect();
        for db in 0..DATABASES as u8 {
            let flushed = self.is_flushed(db);
            if !flushed && !changed.contains(&db) {
                continue;
            }
            let (keys_delta, expires_delta) = self.count_deltas(db);
            let counters = [
                (kv_meta::key_count(self.shard, db), keys_delta),
                (kv_meta::expires_count(self.shard, db), expires_delta),
            ];
            for (name, delta) in counters {
                let base = if flushed { 0 } else { read_u64(self.store, &name)? };
                let value = base.checked_add_signed(delta).expect("key counters never go negative");
                batch.put(Family::KvMeta, name, value.to_be_bytes().to_vec());
            }
        }
        for ((family, key), value) in self.elements {
            match value {
                Some(value) => batch.put(family, key, value.to_vec()),
                None => batch.delete(family, key),
            }
        }
        for (db, version) in self.dropped {
            let (start, end) = kv_elements::range(db, version);
            batch.delete_range(Family::KvElements, start.clone(), end.clone());
            batch.delete_range(Family::KvScores, start, end);
        }
        for ((db, slot), index) in self.slot_deletions {
            batch.put(Family::KvMeta, kv_meta::slot_deleted(self.shard, db, slot), index.to_be_bytes().to_vec());
        }
        for ((db, slot), index) in self.slot_creations {
            batch.put(Family::KvMeta, kv_meta::slot_created(self.shard, db, slot), index.to_be_bytes().to_vec());
        }
        if let Some(next) = self.next_version {
            batch.put(Family::KvMeta, kv_meta::next_version(self.shard), next.to_be_bytes().to_vec());
        }
        for (key, value) in self.meta {
            match value {
                Some(value) => batch.put(Family::KvMeta, key, value),
                None => batch.delete(Family::KvMeta, key),
            }
        }
        batch.put(Family::KvMeta, kv_meta::last_stamp(self.shard), last_stamp_ms.to_be_bytes().to_vec());
        Ok(())
    }

    /// The batch's own entries of `family` in `[start, end)`, with `None`
    /// for deletions.
    fn overlay(&self, family: Family, start: &[u8], end: Option<&[u8]>) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let in_range = |key: &[u8]| key >= start && end.is_none_or(|end| key < end);
        match family {
            Family::KvData => self
                .records
                .range(start.to_vec()..)
                .take_while(|(key, _)| in_range(key))
                .map(|(key, touched)| (key.clone(), touched.current.as_ref().map(Record::encode)))
                .collect(),
            Family::KvElements | Family::KvScores => self
                .elements
                .range((family, start.to_vec())..)
                .take_while(|((entry_family, key), _)| *entry_family == family && in_range(key))
                .map(|((_, key), value)| (key.clone(), value.as_ref().map(|v| v.to_vec())))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Reads through the txn see its writes over the stored state.
///
/// `kv_meta`'s key and expiry counters include the batch's changes;
/// `kv_expiry` shows the stored index only (no command reads it).
impl Reader for Txn<'_> {
    fn get(&self, family: Family, key: &[u8]) -> storage::Result<Option<Vec<u8>>> {
        match family {
            Family::KvData => {
                if let Some(touched) = self.records.get(key) {
                    return Ok(touched.current.as_ref().map(Record::encode));
                }
            }
            Family::KvElements | Family::KvScores => {
                if let Some(value) = self.elements.get(&(family, key.to_vec())) {
                    return Ok(value.as_ref().map(|v| v.to_vec()));
                }
            }
            Family::KvMeta => {
                let counter = kv_meta::decode_counter(self.shard, key);
                if let Some((db, counts_keys)) = counter.filter(|(db, _)| usize::from(*db) < DATABASES) {
                    let base = match (self.is_flushed(db), self.store.get(family, key)?) {
                        (false, Some(bytes)) => u64::from_be_bytes(bytes.as_slice().try_into().unwrap_or([0; 8])),
                        _ => 0,
                    };
                    let (keys_delta, expires_delta) = self.count_deltas(db);
                    let delta = if counts_keys { keys_delta } else { expires_delta };
                    return Ok(Some(base.saturating_add_signed(delta).to_be_bytes().to_vec()));
                }
            }
            _ => {}
        }
        if db_of(family, key).is_some_and(|db| self.is_flushed(db)) {
            return Ok(None);
        }
        self.store.get(family, key)
    }

    fn store_id(&self) -> u64 {
        self.store.store_id()
    }

    /// Conservatively: a txn may hold writes to any of its service's
    /// families.
    fn has_pending(&self, family: Family) -> bool {
        family.service() == self.store.service()
    }

    fn scan<'s>(&'s self, family: Family, start: &[u8], end: Option<&[u8]>) -> Scan<'s> {
        let base = self.unflushed(family, self.store.scan(family, start, end));
        Scan::new(merge(base, self.overlay(family, start, end), Order::Forward))
    }

    fn scan_rev<'s>(&'s self, family: Family, start: &[u8], end: &[u8]) -> Scan<'s> {
        let base = self.unflushed(family, self.store.scan_rev(family, start, end));
        let mut overlay = self.overlay(family, start, Some(end));
        overlay.reverse();
        Scan::new(merge(base, overlay, Order::Reverse))
    }
}

impl Txn<'_> {
    /// Hides stored entries of databases this txn flushed.
    fn unflushed<'s>(
        &self,
        family: Family,
        base: Scan<'s>,
    ) -> impl Iterator<Item = storage::Result<storage::KeyValue>> + 's {
        let flushed = self.flushed;
        base.filter(move |entry| match entry {
            Ok((key, _)) => {
                db_of(family, key).is_none_or(|db| flushed.get(usize::from(db)).is_none_or(Option::is_none))
            }
            Err(_) => true,
        })
    }
}

/// The database of `key` in `family`, for the families keyed by database
/// (`None` for `kv_meta`).
fn db_of(family: Family, key: &[u8]) -> Option<u8> {
    match family {
        Family::KvData | Family::KvElements | Family::KvScores => key.first().copied(),
        Family::KvExpiry => kv_expiry::decode(key).map(|(db, _, _)| db),
        _ => None,
    }
}
