//! Opening the data dir and reading and writing a service's families.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use rocksdb::{
    checkpoint::Checkpoint, Cache, ColumnFamily, ColumnFamilyDescriptor, Direction, IteratorMode, Options, ReadOptions,
    SnapshotWithThreadMode, WriteBatch, WriteOptions, DB,
};

use crate::batch::{Batch, Op};
use crate::error::{Error, Result};
use crate::keyspace::{Family, Service};
use crate::layout::{self, Layout};
use crate::lock::DirLock;
use crate::tuning::{self, Tuning};
use crate::wal_syncer::{Completion, WalSyncer};

/// Whether a write must be on stable storage before [`Store::write`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the WAL before returning. Also makes every earlier buffered
    /// write durable.
    Sync,
    /// Return once the write is in the WAL buffer and memtable; a crash may
    /// lose it until a later `Sync` write or [`Store::sync_wal`].
    Buffered,
}

/// The opened data dir: its lock and one RocksDB instance per layout unit.
pub struct Storage {
    stores: BTreeMap<Service, Store>,
    /// The block cache every instance shares.
    cache: Cache,
    _lock: DirLock,
}

impl Storage {
    /// Opens (creating if needed) the data dir with the given layout.
    ///
    /// Fails with [`Error::DirInUse`] if another process holds it, and with
    /// [`Error::LayoutMismatch`] or [`Error::ForeignDataDir`] if it was not
    /// written by Seshat with this layout.
    pub fn open(data_dir: &Path, layout: Layout) -> Result<Self> {
        Storage::open_tuned(data_dir, layout, Tuning::default())
    }

    /// As [`Storage::open`], with RocksDB tuned by `tuning`.
    pub fn open_tuned(data_dir: &Path, layout: Layout, tuning: Tuning) -> Result<Self> {
        std::fs::create_dir_all(data_dir).map_err(|e| Error::io(data_dir, e))?;
        let lock = DirLock::acquire(data_dir)?;
        layout::check_or_init(data_dir, layout)?;

        let cache = Cache::new_lru_cache(tuning.block_cache_mb.saturating_mul(1024 * 1024));
        let mut stores = BTreeMap::new();
        match layout {
            Layout::Shared => {
                let db = Arc::new(open_instance(&layout.instance_dir(data_dir, Service::Kv), &Service::ALL, &cache)?);
                let syncer = Arc::new(WalSyncer::start(db.clone(), "shared"));
                for service in Service::ALL {
                    stores.insert(service, Store::new(db.clone(), syncer.clone(), service, &cache));
                }
            }
            Layout::Isolated => {
                for service in Service::ALL {
                    let db = Arc::new(open_instance(&layout.instance_dir(data_dir, service), &[service], &cache)?);
                    let syncer = Arc::new(WalSyncer::start(db.clone(), service.name()));
                    stores.insert(service, Store::new(db, syncer, service, &cache));
                }
            }
        }
        tracing::info!(data_dir = %data_dir.display(), %layout, "storage opened");
        Ok(Storage { stores, cache, _lock: lock })
    }

    /// The store holding `service`'s families.
    pub fn store(&self, service: Service) -> Store {
        self.stores[&service].clone()
    }

    /// Bytes held in the shared block cache.
    pub fn block_cache_bytes(&self) -> usize {
        self.cache.get_usage()
    }

    /// Makes every write so far durable, once per RocksDB instance.
    pub fn sync_wal(&self) -> Result<()> {
        let mut synced: Vec<&Arc<DB>> = Vec::new();
        for store in self.stores.values() {
            if !synced.iter().any(|db| Arc::ptr_eq(db, &store.db)) {
                store.sync_wal()?;
                synced.push(&store.db);
            }
        }
        Ok(())
    }
}

/// Opens one RocksDB instance holding the families of `services`, refusing
/// an instance that holds families this build does not know.
fn open_instance(dir: &Path, services: &[Service], cache: &Cache) -> Result<DB> {
    let expected: Vec<Family> = services.iter().flat_map(|s| s.families()).copied().collect();
    if dir.join("CURRENT").exists() {
        let existing = DB::list_cf(&Options::default(), dir)?;
        if let Some(unknown) =
            existing.iter().find(|name| *name != "default" && !expected.iter().any(|f| f.name() == name.as_str()))
        {
            return Err(Error::ForeignDataDir {
                path: dir.to_path_buf(),
                reason: format!("it holds column family '{unknown}', which this layout does not have"),
            });
        }
    }
    let descriptors = expected
        .iter()
        .map(|family| ColumnFamilyDescriptor::new(family.name(), tuning::family_options(*family, cache)));
    Ok(DB::open_cf_descriptors(&tuning::base_options(), dir, descriptors)?)
}

/// A stored key and its value.
pub type KeyValue = (Box<[u8]>, Box<[u8]>);

/// A handle on one service's families. Cheap to clone; all clones share the
/// RocksDB instance.
#[derive(Clone)]
pub struct Store {
    pub(crate) db: Arc<DB>,
    /// The instance's group-commit thread (shared by its stores). Declared
    /// after `db`: dropping the last store drops its handle on the
    /// instance, then joins the thread, which holds the other one.
    syncer: Arc<WalSyncer>,
    service: Service,
    id: u64,
    /// The block cache the instance's families use.
    pub(crate) cache: Cache,
    /// Held shared by live reads and while taking a snapshot, exclusively
    /// while [`Store::replace_spans`] swaps a group's content, so no reader
    /// of this process sees a span replaced and another not yet.
    pub(crate) gate: Arc<RwLock<()>>,
}

/// Read access shared by the live store and its snapshots.
pub trait Reader {
    /// The value of `key` in `family`, if any.
    fn get(&self, family: Family, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// The entries of `family` with `start <= key < end` (no upper bound if
    /// `end` is `None`), in key order.
    fn scan<'a>(&'a self, family: Family, start: &[u8], end: Option<&[u8]>) -> Scan<'a>;

    /// The entries of `family` with `start <= key < end`, in reverse key
    /// order.
    fn scan_rev<'a>(&'a self, family: Family, start: &[u8], end: &[u8]) -> Scan<'a>;

    /// The store this reader reads: a number unique among the stores
    /// opened by this process, shared by a store's clones and snapshots.
    /// A cache of values decoded from stored state keys its entries by it.
    fn store_id(&self) -> u64;

    /// Whether this reader holds writes to `family` that are not stored
    /// yet (an overlay's). A cache of stored state must not answer for
    /// such a reader.
    fn has_pending(&self, _family: Family) -> bool {
        false
    }

    /// Calls `visit` with each entry of `family` with `start <= key < end`,
    /// in key order, until it returns false. Unlike [`Reader::scan`], the
    /// store and its snapshots allocate nothing per entry.
    fn visit(
        &self,
        family: Family,
        start: &[u8],
        end: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        visit_scanned(self, family, start, end, visit)
    }
}

/// A reference reads as what it refers to (a recorder over a
/// transaction's overlay borrows it).
impl<R: Reader + ?Sized> Reader for &R {
    fn get(&self, family: Family, key: &[u8]) -> Result<Option<Vec<u8>>> {
        (**self).get(family, key)
    }

    fn scan<'a>(&'a self, family: Family, start: &[u8], end: Option<&[u8]>) -> Scan<'a> {
        (**self).scan(family, start, end)
    }

    fn scan_rev<'a>(&'a self, family: Family, start: &[u8], end: &[u8]) -> Scan<'a> {
        (**self).scan_rev(family, start, end)
    }

    fn store_id(&self) -> u64 {
        (**self).store_id()
    }

    fn has_pending(&self, family: Family) -> bool {
        (**self).has_pending(family)
    }

    fn visit(
        &self,
        family: Family,
        start: &[u8],
        end: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        (**self).visit(family, start, end, visit)
    }
}

/// [`Reader::visit`] through [`Reader::scan`]: what a reader without a
/// cheaper way to visit does.
pub fn visit_scanned<R: Reader + ?Sized>(
    reader: &R,
    family: Family,
    start: &[u8],
    end: &[u8],
    visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
) -> Result<()> {
    for entry in reader.scan(family, start, Some(end)) {
        let (key, value) = entry?;
        if !visit(&key, &value) {
            break;
        }
    }
    Ok(())
}

/// Runs `visit` over a positioned raw iterator until it returns false.
fn visit_raw<D: rocksdb::DBAccess>(
    mut iter: rocksdb::DBRawIteratorWithThreadMode<'_, D>,
    start: &[u8],
    visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
) -> Result<()> {
    iter.seek(start);
    while let Some((key, value)) = iter.item() {
        if !visit(key, value) {
            return Ok(());
        }
        iter.next();
    }
    Ok(iter.status()?)
}

impl Store {
    fn new(db: Arc<DB>, syncer: Arc<WalSyncer>, service: Service, cache: &Cache) -> Store {
        static OPENED: AtomicU64 = AtomicU64::new(0);
        let id = OPENED.fetch_add(1, Ordering::Relaxed);
        Store { db, syncer, service, id, cache: cache.clone(), gate: Arc::new(RwLock::new(())) }
    }

    /// Waits out a replacement of the service's content in progress.
    fn shared(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn cf(&self, family: Family) -> &ColumnFamily {
        assert_eq!(
            family.service(),
            self.service,
            "family {} used through the {} store",
            family.name(),
            self.service.name()
        );
        self.db.cf_handle(family.name()).expect("every family of the service is opened")
    }

    /// Applies `batch` atomically with the requested durability.
    pub fn write(&self, batch: Batch, durability: Durability) -> Result<()> {
        let mut wb = WriteBatch::default();
        for op in batch.ops {
            match op {
                Op::Put { family, key, value } => wb.put_cf(self.cf(family), key, value),
                Op::Delete { family, key } => wb.delete_cf(self.cf(family), key),
                Op::DeleteRange { family, start, end } => wb.delete_range_cf(self.cf(family), start, end),
            }
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(durability == Durability::Sync);
        self.db.write_opt(wb, &opts)?;
        Ok(())
    }

    /// The last entry of `family` with `start <= key < end` (the largest
    /// such key), if any.
    pub fn last_in(&self, family: Family, start: &[u8], end: &[u8]) -> Result<Option<KeyValue>> {
        self.scan_rev(family, start, end).next().transpose()
    }

    /// The service whose families this store holds.
    pub fn service(&self) -> Service {
        self.service
    }

    /// Makes every write so far durable.
    pub fn sync_wal(&self) -> Result<()> {
        Ok(self.db.flush_wal(true)?)
    }

    /// Runs `done` on the instance's group-commit thread once every write
    /// that returned before this call is durable (see `wal_syncer`): the
    /// caller does not wait, and concurrent callers share one fsync.
    pub fn after_sync(&self, done: Completion) {
        self.syncer.after_sync(done);
    }

    /// A consistent, read-only view of the store as of now. It owns a
    /// handle on the instance, so it can outlive this borrow (a SQL
    /// transaction reads one snapshot across many statements).
    pub fn snapshot(&self) -> Snapshot {
        let store = self.clone();
        // SAFETY: the reference points into the `Arc<DB>` that `store`
        // holds; `Snapshot` drops `snapshot` before `store` (field order),
        // so the instance outlives every use of the reference.
        let db: &'static DB = unsafe { &*Arc::as_ptr(&store.db) };
        let _shared = self.shared();
        Snapshot { snapshot: db.snapshot(), store }
    }

    /// Writes a RocksDB checkpoint (hard-linked SST files plus a copy of the
    /// live WAL) of the whole instance into `dir`, which must not exist.
    pub fn checkpoint(&self, dir: &Path) -> Result<()> {
        Checkpoint::new(&self.db)?.create_checkpoint(dir)?;
        Ok(())
    }

    /// An estimate of the live data size of the instance, in bytes.
    pub fn estimated_size(&self) -> u64 {
        self.db.property_int_value("rocksdb.estimate-live-data-size").ok().flatten().unwrap_or(0)
    }
}

impl Reader for Store {
    fn get(&self, family: Family, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let _shared = self.shared();
        Ok(self.db.get_cf(self.cf(family), key)?)
    }

    fn store_id(&self) -> u64 {
        self.id
    }

    fn scan<'a>(&'a self, family: Family, start: &[u8], end: Option<&[u8]>) -> Scan<'a> {
        let opts = bounded(end);
        // The iterator pins the version it starts on; no guard after that.
        let _shared = self.shared();
        Scan::rocksdb(self.db.iterator_cf_opt(self.cf(family), opts, IteratorMode::From(start, Direction::Forward)))
    }

    fn scan_rev<'a>(&'a self, family: Family, start: &[u8], end: &[u8]) -> Scan<'a> {
        let _shared = self.shared();
        let iter = self.db.iterator_cf_opt(self.cf(family), bounded_both(start, end), IteratorMode::End);
        Scan::rocksdb(iter)
    }

    fn visit(
        &self,
        family: Family,
        start: &[u8],
        end: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let iter = {
            let _shared = self.shared();
            self.db.raw_iterator_cf_opt(self.cf(family), bounded(Some(end)))
        };
        visit_raw(iter, start, visit)
    }
}

/// A point-in-time view of a [`Store`].
pub struct Snapshot {
    // Declared first, so dropped first: it reads the instance `store` keeps
    // alive.
    snapshot: SnapshotWithThreadMode<'static, DB>,
    store: Store,
}

impl Reader for Snapshot {
    fn get(&self, family: Family, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.snapshot.get_cf(self.store.cf(family), key)?)
    }

    fn store_id(&self) -> u64 {
        self.store.id
    }

    fn scan<'a>(&'a self, family: Family, start: &[u8], end: Option<&[u8]>) -> Scan<'a> {
        let opts = bounded(end);
        let mode = IteratorMode::From(start, Direction::Forward);
        Scan::rocksdb(self.snapshot.iterator_cf_opt(self.store.cf(family), opts, mode))
    }

    fn scan_rev<'a>(&'a self, family: Family, start: &[u8], end: &[u8]) -> Scan<'a> {
        let opts = bounded_both(start, end);
        Scan::rocksdb(self.snapshot.iterator_cf_opt(self.store.cf(family), opts, IteratorMode::End))
    }

    fn visit(
        &self,
        family: Family,
        start: &[u8],
        end: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        visit_raw(self.snapshot.raw_iterator_cf_opt(self.store.cf(family), bounded(Some(end))), start, visit)
    }
}

/// Bounds `[start, end)`; `IteratorMode::End` then starts at the last key
/// below `end`.
fn bounded_both(start: &[u8], end: &[u8]) -> ReadOptions {
    let mut opts = ReadOptions::default();
    opts.set_iterate_lower_bound(start.to_vec());
    opts.set_iterate_upper_bound(end.to_vec());
    opts
}

fn bounded(end: Option<&[u8]>) -> ReadOptions {
    let mut opts = ReadOptions::default();
    if let Some(end) = end {
        opts.set_iterate_upper_bound(end.to_vec());
    }
    opts
}

/// An ordered scan over a key range; yields `(key, value)` pairs.
pub struct Scan<'a> {
    inner: Box<dyn Iterator<Item = Result<KeyValue>> + 'a>,
}

impl<'a> Scan<'a> {
    /// A scan over any ordered source of entries (for readers layered over
    /// a store, such as a write overlay).
    pub fn new(entries: impl Iterator<Item = Result<KeyValue>> + 'a) -> Self {
        Scan { inner: Box::new(entries) }
    }

    fn rocksdb(iter: impl Iterator<Item = std::result::Result<KeyValue, rocksdb::Error>> + 'a) -> Self {
        Scan::new(iter.map(|entry| entry.map_err(Error::from)))
    }
}

impl Iterator for Scan<'_> {
    type Item = Result<KeyValue>;
    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next()
    }
}
