//! What a statement read and wrote when a session ran it ahead of its log
//! entry, so that apply can keep its writes instead of running it again.
//!
//! A session runs a writing statement (or a whole transaction) against its
//! node's state through a [`Recorder`], which notes every read that
//! reaches the store: each point read with the value it found (or its
//! absence), each range read with the entries the statement consumed and
//! whether it reached the range's end. The entry carries those reads
//! ([`ReadSet`]) with the writes ([`WriteSet`]) and, for a plain INSERT
//! into a table without a primary key, the rows whose hidden row ids
//! apply draws ([`DeferredRow`]).
//!
//! Invariant: a statement is a function of what it reads (its text, the
//! stored state it reads, and its time, which a statement run ahead may
//! not read: [`crate::datetime::StatementTime::was_read`]). So if every
//! recorded read gives the same answer at the entry's place in the log
//! ([`ReadSet::holds`]), running the statement there would read the same,
//! write the same and answer the same: apply keeps the recorded writes.
//! If one read differs, apply runs the statement's text as before. A
//! range read is compared only as far as the statement consumed it: what
//! lies past the entries it saw cannot have changed its outcome.
//!
//! In a transaction each statement is recorded on its own, over the
//! transaction's snapshot and the writes of its statements before it
//! (reads of those writes too), and apply checks it over the writes that
//! the statements before it made there: the same invariant, statement by
//! statement, so a concurrent change makes apply run again only the
//! statements that read it. A plain INSERT there also stores its deferred
//! rows under provisional ids for the statements after it to see; its
//! recorded writes leave them out.
//!
//! Reads and writes are kept whole, not hashed, so the comparison is
//! exact; past [`READ_LIMIT`] bytes of reads (or [`WRITE_LIMIT`] of
//! writes) a session stops recording and the statement goes by its text.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};
use storage::{Family, KeyValue, Reader, Scan, Writes};

use crate::error::Result;
use crate::value::Value;

/// Bytes of reads recorded at most; a statement that reads more is sent
/// as text (checking it would cost about what running it again does).
pub const READ_LIMIT: usize = 64 * 1024;

/// Bytes of writes sent at most; a statement that writes more is sent as
/// text, which is shorter.
pub const WRITE_LIMIT: usize = 1024 * 1024;

/// The families a SQL statement reads and writes, as entries encode them.
const FAMILIES: [Family; 4] = [Family::SqlMeta, Family::SqlCatalog, Family::SqlRows, Family::SqlIndex];

fn family_code(family: Family) -> Option<u8> {
    FAMILIES.iter().position(|&f| f == family).map(|position| position as u8)
}

fn family_of(code: u8) -> Option<Family> {
    FAMILIES.get(usize::from(code)).copied()
}

/// One read as the statement saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Read {
    Get {
        family: u8,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
    },
    Scan {
        family: u8,
        start: Vec<u8>,
        /// `None`: no upper bound (forward scans only).
        end: Option<Vec<u8>>,
        reverse: bool,
        /// The entries the statement consumed, in the order it read them.
        entries: Vec<(Vec<u8>, Vec<u8>)>,
        /// Whether it read past the last entry to the range's end.
        exhausted: bool,
    },
}

/// The reads of a statement or transaction run ahead: its range reads in
/// the order made, then its point reads in key order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadSet(Vec<Read>);

impl ReadSet {
    /// Whether every read gives the same answer in `view`.
    pub fn holds(&self, view: &impl Reader) -> Result<bool> {
        for read in &self.0 {
            let same = match read {
                Read::Get { family, key, value } => match family_of(*family) {
                    Some(family) => view.get(family, key)? == *value,
                    None => false,
                },
                Read::Scan { family, start, end, reverse, entries, exhausted } => {
                    let Some(family) = family_of(*family) else { return Ok(false) };
                    let mut scan = match (reverse, end) {
                        (false, end) => view.scan(family, start, end.as_deref()),
                        (true, Some(end)) => view.scan_rev(family, start, end),
                        (true, None) => return Ok(false),
                    };
                    same_entries(&mut scan, entries, *exhausted)?
                }
            };
            if !same {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

fn same_entries(scan: &mut Scan<'_>, entries: &[(Vec<u8>, Vec<u8>)], exhausted: bool) -> Result<bool> {
    for (key, value) in entries {
        match scan.next().transpose()? {
            Some((k, v)) if *k == **key && *v == **value => {}
            _ => return Ok(false),
        }
    }
    Ok(!exhausted || scan.next().transpose()?.is_none())
}

/// The writes of a statement or transaction run ahead.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WriteSet(Vec<(u8, Vec<u8>, Option<Vec<u8>>)>);

impl WriteSet {
    /// `writes` to send, or `None` if they had better go as text: a
    /// change to the catalog (apply stamps it with a new version and
    /// clears dropped tables), a counter drawn (a hidden row id not
    /// deferred: writers of one table would all read the same counter,
    /// and all but one would run again at apply), or more than
    /// [`WRITE_LIMIT`] bytes.
    pub fn of(writes: &Writes) -> Option<WriteSet> {
        WriteSet::of_all_but(writes, &[])
    }

    /// As [`WriteSet::of`], leaving out the writes to `left_out` (a
    /// transaction's provisional rows, [`Deferred::provisional`]).
    pub fn of_all_but(writes: &Writes, left_out: &[(Family, Vec<u8>)]) -> Option<WriteSet> {
        if writes.touches(Family::SqlCatalog) || writes.touches(Family::SqlMeta) {
            return None;
        }
        let left_out: BTreeSet<&(Family, Vec<u8>)> = left_out.iter().collect();
        let mut bytes = 0;
        let mut set = Vec::new();
        for (written, value) in writes.iter() {
            if left_out.contains(written) {
                continue;
            }
            let (family, key) = written;
            bytes += key.len() + value.as_ref().map_or(0, Vec::len);
            if bytes > WRITE_LIMIT {
                return None;
            }
            set.push((family_code(*family)?, key.clone(), value.clone()));
        }
        Some(WriteSet(set))
    }

    /// The writes, to extend an overlay with.
    pub fn into_writes(self) -> Result<Writes> {
        self.0
            .into_iter()
            .map(|(code, key, value)| match family_of(code) {
                Some(family) => Ok(((family, key), value)),
                None => Err(crate::error::Error::Corrupt(format!("a write to unknown family {code}"))),
            })
            .collect()
    }
}

/// A row that an INSERT run ahead adds to a table without a primary key.
/// Apply stores it (drawing its hidden row id, adding its index entries,
/// checking uniqueness) in log order, as running the INSERT there would:
/// drawn ahead, the ids of concurrent inserts into one table would all
/// come from the same counter value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeferredRow {
    pub table: String,
    /// The row's values, checked against the table's types and
    /// constraints.
    pub row: Vec<Value>,
}

/// The rows a statement left to apply.
#[derive(Default)]
pub struct Deferred {
    pub rows: Vec<DeferredRow>,
    /// In a transaction, the keys under which the rows were also stored
    /// provisionally (rows and index entries): the statement's recorded
    /// writes leave them out, apply storing the rows under ids it draws.
    pub provisional: Vec<(Family, Vec<u8>)>,
}

struct Active {
    deferred: Deferred,
    visible: bool,
}

thread_local! {
    static ACTIVE: RefCell<Option<Active>> = const { RefCell::new(None) };
}

/// While alive, plain INSERTs on this thread into tables without a
/// primary key leave their rows to apply ([`defer`]).
pub struct Deferral {
    previous: Option<Active>,
}

impl Deferral {
    /// For a statement on its own: the rows are not stored.
    pub fn enter() -> Deferral {
        Deferral::begin(false)
    }

    /// For a statement of a transaction: the rows are also stored under
    /// provisional ids, so that its later statements see them. (Reading
    /// them, a later statement records keys that apply will not find, and
    /// runs again there: the rows it then sees are the ones apply stored.)
    pub fn enter_visible() -> Deferral {
        Deferral::begin(true)
    }

    fn begin(visible: bool) -> Deferral {
        let active = Active { deferred: Deferred::default(), visible };
        Deferral { previous: ACTIVE.with(|d| d.replace(Some(active))) }
    }

    /// What was deferred since this guard began, in order.
    pub fn take(self) -> Deferred {
        ACTIVE.with(|d| d.borrow_mut().as_mut().map(|d| std::mem::take(&mut d.deferred))).unwrap_or_default()
    }
}

impl Drop for Deferral {
    fn drop(&mut self) {
        ACTIVE.with(|d| *d.borrow_mut() = self.previous.take());
    }
}

/// What [`defer`] did with a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defer {
    /// No [`Deferral`] is active: the caller stores the row.
    No,
    /// Left to apply; the caller does not store it.
    Hidden,
    /// Left to apply; the caller stores it under a provisional id and
    /// reports the keys written ([`stored_provisionally`]).
    Visible,
}

/// Leaves (a copy of) `row` of table `table` to apply if a [`Deferral`]
/// is active.
pub fn defer(table: &str, row: &[Value]) -> Defer {
    ACTIVE.with(|d| match d.borrow_mut().as_mut() {
        Some(active) => {
            active.deferred.rows.push(DeferredRow { table: table.to_string(), row: row.to_vec() });
            if active.visible {
                Defer::Visible
            } else {
                Defer::Hidden
            }
        }
        None => Defer::No,
    })
}

/// Notes the keys that storing a deferred row provisionally wrote.
pub fn stored_provisionally(writes: &Writes) {
    ACTIVE.with(|d| {
        if let Some(active) = d.borrow_mut().as_mut() {
            active.deferred.provisional.extend(writes.iter().map(|((family, key), _)| (*family, key.clone())));
        }
    })
}

/// What to do when the reads pass [`READ_LIMIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnLimit {
    /// Fail the read ([`storage::Error::Abandoned`]): the statement stops
    /// early and goes by its text.
    Abandon,
    /// Stop recording and let the statement go on: a transaction's
    /// statements answer the client, and its commit goes by its text.
    KeepReading,
}

#[derive(Default)]
struct Log {
    /// The range reads ([`Read::Scan`]), in the order made.
    scans: Vec<Read>,
    /// The point reads, by family code and key: a key read again is
    /// recorded once (the base is a snapshot: it answers the same).
    gets: BTreeMap<(u8, Vec<u8>), Option<Vec<u8>>>,
    bytes: usize,
    /// Set when a read could not be recorded: the reads are incomplete.
    incomplete: bool,
}

/// A reader over a snapshot that records what is read through it.
pub struct Recorder<R: Reader> {
    base: R,
    on_limit: OnLimit,
    log: Mutex<Log>,
}

const ABANDONED: &str = "the statement read more than a session records";

impl<R: Reader> Recorder<R> {
    /// Records reads of `base`, which must be a snapshot (or otherwise
    /// answer a key the same each time it is read).
    pub fn new(base: R, on_limit: OnLimit) -> Recorder<R> {
        Recorder { base, on_limit, log: Mutex::default() }
    }

    /// The reads, if all were recorded.
    pub fn into_reads(self) -> Option<ReadSet> {
        let log = self.log.into_inner().unwrap_or_else(PoisonError::into_inner);
        if log.incomplete {
            return None;
        }
        let gets = log.gets.into_iter().map(|((family, key), value)| Read::Get { family, key, value });
        Some(ReadSet(log.scans.into_iter().chain(gets).collect()))
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts `bytes` more; false once past the limit (the log is then
    /// incomplete).
    fn account(&self, log: &mut Log, bytes: usize) -> bool {
        log.bytes += bytes;
        if log.bytes > READ_LIMIT {
            log.incomplete = true;
            log.scans = Vec::new();
            log.gets = BTreeMap::new();
        }
        !log.incomplete
    }

    fn abandon<T>(&self) -> Option<storage::Result<T>> {
        (self.on_limit == OnLimit::Abandon).then_some(Err(storage::Error::Abandoned(ABANDONED)))
    }

    fn record_scan<'s>(
        &'s self,
        family: Family,
        start: &[u8],
        end: Option<&[u8]>,
        reverse: bool,
        inner: Scan<'s>,
    ) -> Scan<'s> {
        let slot = {
            let mut log = self.log();
            match family_code(family) {
                Some(code) if !log.incomplete => {
                    log.scans.push(Read::Scan {
                        family: code,
                        start: start.to_vec(),
                        end: end.map(<[u8]>::to_vec),
                        reverse,
                        entries: Vec::new(),
                        exhausted: false,
                    });
                    Some(log.scans.len() - 1)
                }
                _ => {
                    log.incomplete = true;
                    None
                }
            }
        };
        Scan::new(RecordedScan { recorder: self, slot, inner })
    }

    /// Notes that the scan in `slot` yielded `entry` (`None`: its end);
    /// false if the read must fail (past the limit, abandoning).
    fn scanned(&self, slot: usize, entry: Option<&KeyValue>) -> bool {
        let mut log = self.log();
        if log.incomplete {
            return self.on_limit == OnLimit::KeepReading;
        }
        let bytes = entry.map_or(0, |(key, value)| key.len() + value.len());
        if !self.account(&mut log, bytes) {
            return self.on_limit == OnLimit::KeepReading;
        }
        if let Some(Read::Scan { entries, exhausted, .. }) = log.scans.get_mut(slot) {
            match entry {
                Some((key, value)) => entries.push((key.to_vec(), value.to_vec())),
                None => *exhausted = true,
            }
        }
        true
    }
}

struct RecordedScan<'s, R: Reader> {
    recorder: &'s Recorder<R>,
    /// The scan's place in the log; `None` when it is not recorded.
    slot: Option<usize>,
    inner: Scan<'s>,
}

impl<R: Reader> Iterator for RecordedScan<'_, R> {
    type Item = storage::Result<KeyValue>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.inner.next();
        let Some(slot) = self.slot else {
            return match self.recorder.on_limit {
                OnLimit::Abandon => self.recorder.abandon(),
                OnLimit::KeepReading => item,
            };
        };
        let recorded = match &item {
            Some(Ok(entry)) => self.recorder.scanned(slot, Some(entry)),
            None => self.recorder.scanned(slot, None),
            Some(Err(_)) => true,
        };
        match recorded {
            true => item,
            false => self.recorder.abandon(),
        }
    }
}

impl<R: Reader> Reader for Recorder<R> {
    fn get(&self, family: Family, key: &[u8]) -> storage::Result<Option<Vec<u8>>> {
        let value = self.base.get(family, key)?;
        let mut log = self.log();
        if log.incomplete {
            return match self.abandon() {
                Some(abandoned) => abandoned,
                None => Ok(value),
            };
        }
        let Some(code) = family_code(family) else {
            log.incomplete = true;
            return Ok(value);
        };
        let read = (code, key.to_vec());
        if !log.gets.contains_key(&read) {
            let bytes = key.len() + value.as_ref().map_or(0, Vec::len);
            if !self.account(&mut log, bytes) {
                if let Some(abandoned) = self.abandon() {
                    return abandoned;
                }
                return Ok(value);
            }
            log.gets.insert(read, value.clone());
        }
        Ok(value)
    }

    fn scan<'s>(&'s self, family: Family, start: &[u8], end: Option<&[u8]>) -> Scan<'s> {
        self.record_scan(family, start, end, false, self.base.scan(family, start, end))
    }

    fn scan_rev<'s>(&'s self, family: Family, start: &[u8], end: &[u8]) -> Scan<'s> {
        self.record_scan(family, start, Some(end), true, self.base.scan_rev(family, start, end))
    }

    fn store_id(&self) -> u64 {
        self.base.store_id()
    }

    fn has_pending(&self, family: Family) -> bool {
        self.base.has_pending(family)
    }

    fn visit(
        &self,
        family: Family,
        start: &[u8],
        end: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> storage::Result<()> {
        // Once nothing more is recorded, the base's visit allocates less.
        if self.on_limit == OnLimit::KeepReading && self.log().incomplete {
            return self.base.visit(family, start, end, visit);
        }
        storage::visit_scanned(self, family, start, end, visit)
    }
}

#[cfg(test)]
mod tests {
    use storage::{Batch, Durability, Layout, Overlay, Service, Storage, Store};

    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Storage::open(dir.path(), Layout::Shared).unwrap().store(Service::Sql);
        (dir, store)
    }

    fn put(store: &Store, key: &[u8], value: &[u8]) {
        let mut batch = Batch::new();
        batch.put(Family::SqlRows, key, value);
        store.write(batch, Durability::Buffered).unwrap();
    }

    /// The reads of `read` run through a recorder over a snapshot of `store`.
    fn recorded(store: &Store, read: impl FnOnce(&Recorder<storage::Snapshot>)) -> ReadSet {
        let recorder = Recorder::new(store.snapshot(), OnLimit::Abandon);
        read(&recorder);
        recorder.into_reads().unwrap()
    }

    #[test]
    fn a_point_read_holds_until_its_key_changes_or_appears() {
        let (_dir, store) = store();
        put(&store, b"a", b"1");
        let reads = recorded(&store, |r| {
            assert_eq!(r.get(Family::SqlRows, b"a").unwrap(), Some(b"1".to_vec()));
            assert_eq!(r.get(Family::SqlRows, b"b").unwrap(), None);
            assert_eq!(r.get(Family::SqlRows, b"a").unwrap(), Some(b"1".to_vec()));
        });
        assert_eq!(reads.0.len(), 2, "a key read twice is recorded once");
        assert!(reads.holds(&store).unwrap());
        put(&store, b"c", b"unread");
        assert!(reads.holds(&store).unwrap(), "a write to a key not read changes nothing");

        let mut changed = Overlay::new(&store);
        changed.put(Family::SqlRows, b"a".to_vec(), b"2".to_vec());
        assert!(!reads.holds(&changed).unwrap());
        let mut appeared = Overlay::new(&store);
        appeared.put(Family::SqlRows, b"b".to_vec(), b"new".to_vec());
        assert!(!reads.holds(&appeared).unwrap(), "a key read as absent must stay absent");
    }

    #[test]
    fn a_scan_is_checked_as_far_as_it_was_consumed() {
        let (_dir, store) = store();
        for key in [b"k1", b"k3", b"k5"] {
            put(&store, key, b"v");
        }
        let first = recorded(&store, |r| {
            assert_eq!(r.scan(Family::SqlRows, b"k", Some(b"l")).next().unwrap().unwrap().0.as_ref(), b"k1");
        });
        let whole = recorded(&store, |r| assert_eq!(r.scan(Family::SqlRows, b"k", Some(b"l")).count(), 3));
        let reversed = recorded(&store, |r| {
            assert_eq!(r.scan_rev(Family::SqlRows, b"k", b"l").next().unwrap().unwrap().0.as_ref(), b"k5");
        });

        let mut after = Overlay::new(&store);
        after.put(Family::SqlRows, b"k4".to_vec(), b"v".to_vec());
        assert!(first.holds(&after).unwrap(), "an entry past the one consumed is not seen");
        assert!(!whole.holds(&after).unwrap(), "an entry joins a range read to its end");
        assert!(reversed.holds(&after).unwrap(), "k4 comes after k5 in reverse order");

        let mut before = Overlay::new(&store);
        before.put(Family::SqlRows, b"k0".to_vec(), b"v".to_vec());
        assert!(!first.holds(&before).unwrap(), "a new first entry changes what was consumed");
        let mut changed = Overlay::new(&store);
        changed.put(Family::SqlRows, b"k1".to_vec(), b"w".to_vec());
        assert!(!first.holds(&changed).unwrap());
        let mut deleted = Overlay::new(&store);
        deleted.delete(Family::SqlRows, b"k5".to_vec());
        assert!(!whole.holds(&deleted).unwrap());
        assert!(first.holds(&deleted).unwrap() && !reversed.holds(&deleted).unwrap());
    }

    #[test]
    fn past_the_limit_reads_fail_or_stop_being_recorded() {
        let (_dir, store) = store();
        let big = vec![7u8; READ_LIMIT / 2 + 1];
        put(&store, b"a", &big);
        put(&store, b"b", &big);

        let abandoning = Recorder::new(store.snapshot(), OnLimit::Abandon);
        abandoning.get(Family::SqlRows, b"a").unwrap();
        let error = abandoning.get(Family::SqlRows, b"b").unwrap_err();
        assert!(matches!(error, storage::Error::Abandoned(_)), "{error}");
        assert!(abandoning.into_reads().is_none());

        let reading = Recorder::new(store.snapshot(), OnLimit::KeepReading);
        assert_eq!(reading.scan(Family::SqlRows, b"", None).count(), 2, "the statement reads on");
        assert!(reading.into_reads().is_none(), "but its reads are incomplete");
    }

    #[test]
    fn writes_to_the_catalog_or_a_counter_go_as_text() {
        let (_dir, store) = store();
        let mut rows = Overlay::new(&store);
        rows.put(Family::SqlRows, b"r".to_vec(), b"v".to_vec());
        rows.delete(Family::SqlIndex, b"i".to_vec());
        let set = WriteSet::of(&rows.into_writes()).unwrap();
        let mut applied = Overlay::new(&store);
        applied.extend(set.into_writes().unwrap());
        assert_eq!(applied.get(Family::SqlRows, b"r").unwrap(), Some(b"v".to_vec()));

        for family in [Family::SqlCatalog, Family::SqlMeta] {
            let mut other = Overlay::new(&store);
            other.put(family, b"k".to_vec(), b"v".to_vec());
            assert!(WriteSet::of(&other.into_writes()).is_none(), "{family:?}");
        }
    }
}
