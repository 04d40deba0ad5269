//! The storage layer against real RocksDB in temp dirs.

use storage::keyspace::{kv_data, Span};
use storage::{Batch, Durability, Error, Family, Layout, Reader, Service, Storage, Tuning};

fn open(dir: &std::path::Path, layout: Layout) -> Storage {
    Storage::open(dir, layout).expect("open storage")
}

#[test]
fn a_data_dir_keeps_the_layout_it_was_created_with() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), Layout::Isolated));
    assert!(dir.path().join("kv").join("CURRENT").exists());
    match Storage::open(dir.path(), Layout::Shared) {
        Err(Error::LayoutMismatch { found, requested, .. }) => {
            assert_eq!((found.as_str(), requested.as_str()), ("isolated", "shared"))
        }
        other => panic!("expected a layout mismatch, got {:?}", other.map(|_| ())),
    }
    drop(open(dir.path(), Layout::Isolated));
}

#[test]
fn a_second_open_of_the_same_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path(), Layout::Shared);
    assert!(matches!(Storage::open(dir.path(), Layout::Shared), Err(Error::DirInUse { .. })));
    drop(first);
    drop(open(dir.path(), Layout::Shared));
}

#[test]
fn foreign_and_newer_dirs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    assert!(matches!(Storage::open(dir.path(), Layout::Shared), Err(Error::ForeignDataDir { .. })));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("SESHAT"), "format = 99\nlayout = \"shared\"\n").unwrap();
    assert!(matches!(Storage::open(dir.path(), Layout::Shared), Err(Error::UnsupportedFormat { found: 99, .. })));
}

#[test]
fn batches_apply_atomically_across_families_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let storage = open(dir.path(), Layout::Shared);
        let store = storage.store(Service::Kv);
        let mut batch = Batch::new();
        for i in 0u8..10 {
            batch.put(Family::KvData, kv_data::key(0, &[b'k', i]), vec![i]);
        }
        batch.put(Family::KvMeta, b"applied_index".to_vec(), 7u64.to_be_bytes().to_vec());
        batch.delete(Family::KvData, kv_data::key(0, b"k\x03"));
        store.write(batch, Durability::Sync).unwrap();

        let mut ranged = Batch::new();
        ranged.delete_range(Family::KvData, kv_data::db_range(0).0, kv_data::db_range(0).1);
        ranged.put(Family::KvData, kv_data::key(1, b"survivor"), b"v".to_vec());
        store.write(ranged, Durability::Sync).unwrap();
    }
    let storage = open(dir.path(), Layout::Shared);
    let store = storage.store(Service::Kv);
    assert_eq!(store.get(Family::KvMeta, b"applied_index").unwrap(), Some(7u64.to_be_bytes().to_vec()));
    let (start, end) = kv_data::db_range(0);
    assert_eq!(store.scan(Family::KvData, &start, Some(&end)).count(), 0, "db 0 range deleted");
    assert_eq!(store.get(Family::KvData, &kv_data::key(1, b"survivor")).unwrap(), Some(b"v".to_vec()));
}

#[test]
fn scans_respect_bounds_and_snapshots_are_stable() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path(), Layout::Shared);
    let store = storage.store(Service::Kv);
    let mut batch = Batch::new();
    for key in ["a", "b", "c", "d"] {
        batch.put(Family::KvMeta, key.as_bytes().to_vec(), b"1".to_vec());
    }
    store.write(batch, Durability::Buffered).unwrap();
    let snapshot = store.snapshot();
    let mut later = Batch::new();
    later.put(Family::KvMeta, b"bb".to_vec(), b"2".to_vec());
    later.delete(Family::KvMeta, b"c".to_vec());
    store.write(later, Durability::Buffered).unwrap();

    let names = |scan: storage::Scan<'_>| -> Vec<String> {
        scan.map(|entry| String::from_utf8(entry.unwrap().0.to_vec()).unwrap()).collect()
    };
    assert_eq!(names(store.scan(Family::KvMeta, b"b", Some(b"d"))), ["b", "bb"]);
    assert_eq!(names(snapshot.scan(Family::KvMeta, b"b", Some(b"d"))), ["b", "c"]);
    assert_eq!(snapshot.get(Family::KvMeta, b"bb").unwrap(), None);
    let unbounded = store.scan(Family::KvMeta, b"c", None).count();
    assert_eq!(unbounded, 1, "only d remains from c on");
    assert_eq!(names(store.scan_rev(Family::KvMeta, b"b", b"d")), ["bb", "b"]);
    assert_eq!(names(store.scan_rev(Family::KvMeta, b"a", b"z")), ["d", "bb", "b", "a"]);
    assert_eq!(names(snapshot.scan_rev(Family::KvMeta, b"b", b"d")), ["c", "b"]);
    assert_eq!(names(store.scan_rev(Family::KvMeta, b"e", b"z")), Vec::<String>::new());
}

#[test]
fn a_checkpoint_is_a_complete_copy() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path(), Layout::Shared);
    let store = storage.store(Service::Kv);
    let mut batch = Batch::new();
    batch.put(Family::KvData, kv_data::key(0, b"k"), b"v".to_vec());
    store.write(batch, Durability::Sync).unwrap();

    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(dir.path().join("SESHAT"), copy.path().join("SESHAT")).unwrap();
    store.checkpoint(&copy.path().join("db")).unwrap();
    let restored = open(copy.path(), Layout::Shared);
    assert_eq!(restored.store(Service::Kv).get(Family::KvData, &kv_data::key(0, b"k")).unwrap(), Some(b"v".to_vec()));
}

/// Both instances of an isolated data dir read through one block cache of
/// the configured size: it fills as data past the memtables is read, and
/// stays near its capacity with several times that much data.
#[test]
fn every_instance_shares_one_block_cache_of_the_configured_size() {
    const CACHE_MB: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open_tuned(dir.path(), Layout::Isolated, Tuning { block_cache_mb: CACHE_MB }).unwrap();
    let value = vec![b'v'; 1000];
    let families = [(Service::Kv, Family::KvData), (Service::Sql, Family::SqlRows)];
    for (service, family) in families {
        let store = storage.store(service);
        for chunk in 0..16u32 {
            let mut batch = Batch::new();
            for i in 0..1000u32 {
                batch.put(family, (chunk * 1000 + i).to_be_bytes().to_vec(), value.clone());
            }
            store.write(batch, Durability::Buffered).unwrap();
        }
        // A checkpoint flushes the memtables: reads now come from SST files.
        store.checkpoint(&dir.path().join(format!("checkpoint-{}", family.name()))).unwrap();
    }
    let before_reads = storage.block_cache_bytes();
    for (service, family) in families {
        let store = storage.store(service);
        for key in 0..16_000u32 {
            assert_eq!(store.get(family, &key.to_be_bytes()).unwrap().as_deref(), Some(value.as_slice()));
        }
    }
    let cached = storage.block_cache_bytes();
    assert!(cached > before_reads, "data blocks join the index and filter blocks: {before_reads} -> {cached}");
    assert!(cached > CACHE_MB * 1024 * 1024 / 2, "the cache fills as 32 MiB are read: {cached} bytes");
    assert!(cached <= (CACHE_MB + 1) * 1024 * 1024, "and stays near its {CACHE_MB} MiB: {cached} bytes");
}

/// The state families of the kv service, filled with `prefix`-named keys.
fn fill(store: &storage::Store, prefix: &str, count: u32) {
    let mut batch = Batch::new();
    for i in 0..count {
        batch.put(Family::KvData, format!("{prefix}{i:05}").into_bytes(), b"old".to_vec());
        batch.put(Family::KvExpiry, format!("{prefix}{i:05}").into_bytes(), b"old".to_vec());
    }
    batch.put(Family::KvRaftLog, b"log".to_vec(), b"kept".to_vec());
    store.write(batch, Durability::Sync).unwrap();
}

fn keys(store: &impl Reader, family: Family) -> Vec<String> {
    store.scan(family, &[], None).map(|entry| String::from_utf8(entry.unwrap().0.into_vec()).unwrap()).collect()
}

fn whole(families: &[Family]) -> Vec<Span> {
    families.iter().map(|family| Span::whole(*family)).collect()
}

#[test]
fn replacing_spans_swaps_their_whole_content_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path(), Layout::Shared);
    let store = storage.store(Service::Kv);
    fill(&store, "old", 100);
    let before = store.snapshot();

    // The spans: all of kv_meta and kv_expiry, and kv_data's keys that
    // start with "new" (the "old" ones, after them, are another group's).
    let mut spans = whole(&[Family::KvMeta, Family::KvExpiry]);
    spans.push(Span::prefix(Family::KvData, b"new"));
    let meta = std::iter::once(Ok((0, b"applied".to_vec(), b"7".to_vec())));
    let entries = (0..50u32).map(|i| Ok((2, format!("new{i:05}").into_bytes(), b"new".to_vec())));
    store.replace_spans(&spans, &dir.path().join("work"), meta.chain(entries)).unwrap();

    let data = keys(&store, Family::KvData);
    assert_eq!(data.len(), 150, "keys outside the spans are kept");
    assert!(data[..50].iter().zip(0..).all(|(key, i)| *key == format!("new{i:05}")));
    assert!(data[50..].iter().all(|key| key.starts_with("old")));
    assert_eq!(keys(&store, Family::KvExpiry), Vec::<String>::new(), "a span without entries ends up empty");
    assert_eq!(keys(&store, Family::KvMeta), vec!["applied".to_string()]);
    assert_eq!(store.get(Family::KvRaftLog, b"log").unwrap(), Some(b"kept".to_vec()), "other families untouched");
    assert_eq!(keys(&before, Family::KvData).len(), 100, "a snapshot taken before still reads the old content");
    assert!(!dir.path().join("work").exists(), "the work dir is removed");

    drop((before, store));
    drop(storage);
    let storage = open(dir.path(), Layout::Shared);
    assert_eq!(keys(&storage.store(Service::Kv), Family::KvData).len(), 150, "the replacement survives a reopen");
}

#[test]
fn a_failing_or_unordered_stream_leaves_the_spans_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path(), Layout::Shared);
    let store = storage.store(Service::Kv);
    fill(&store, "old", 10);
    let spans = whole(&[Family::KvData, Family::KvExpiry]);
    let work = dir.path().join("work");

    let failing = (0..5u32)
        .map(|i| Ok((0, format!("new{i}").into_bytes(), Vec::new())))
        .chain(std::iter::once(Err(Error::Corrupt { family: "kv_data", reason: "truncated".into() })));
    assert!(matches!(store.replace_spans(&spans, &work, failing), Err(Error::Corrupt { .. })));

    let unordered = ["b", "a"].map(|k| Ok((0, k.as_bytes().to_vec(), Vec::new())));
    assert!(store.replace_spans(&spans, &work, unordered.into_iter()).is_err());

    let split = ["a", "b", "c"].iter().zip([0, 1, 0]);
    let split = split.map(|(k, span)| Ok((span, k.as_bytes().to_vec(), Vec::new())));
    assert!(store.replace_spans(&spans, &work, split).is_err(), "a span's entries must be contiguous");

    let unknown = std::iter::once(Ok((2, b"x".to_vec(), Vec::new())));
    assert!(store.replace_spans(&spans, &work, unknown).is_err(), "only the listed spans");

    let outside = std::iter::once(Ok((0, b"zzz".to_vec(), Vec::new())));
    let narrow = [Span::prefix(Family::KvData, b"new")];
    assert!(store.replace_spans(&narrow, &work, outside).is_err(), "only keys inside their span");

    assert!(store.replace_spans(&whole(&[Family::KvRaftLog]), &work, std::iter::empty()).is_ok());
    assert!(store.replace_spans(&whole(&[Family::SqlRows]), &work, std::iter::empty()).is_err(), "another service");

    assert_eq!(keys(&store, Family::KvData).len(), 10);
    assert_eq!(keys(&store, Family::KvExpiry).len(), 10);
}

#[test]
fn a_replacement_larger_than_one_sst_file_keeps_every_entry() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open_tuned(dir.path(), Layout::Isolated, Tuning { block_cache_mb: 8 }).unwrap();
    let store = storage.store(Service::Sql);
    let mut old = Batch::new();
    for i in 0..200u32 {
        old.put(Family::SqlRows, i.to_be_bytes().to_vec(), b"old".to_vec());
    }
    store.write(old, Durability::Sync).unwrap();
    // 80 MiB: more than one 64 MiB file; the first one's range deletion
    // clears the old rows but none of the new ones in either file.
    let value = vec![7u8; 1024 * 1024];
    let entries = (0..80u32).map(|i| Ok((0, i.to_be_bytes().to_vec(), value.clone())));
    store.replace_spans(&whole(&[Family::SqlRows]), &dir.path().join("work"), entries).unwrap();
    let stored: Vec<_> = store.scan(Family::SqlRows, &[], None).map(|entry| entry.unwrap()).collect();
    assert_eq!(stored.len(), 80);
    assert!(stored.iter().enumerate().all(|(i, (key, v))| **key == (i as u32).to_be_bytes() && **v == *value));
}

#[test]
fn after_sync_runs_every_completion_of_every_store_of_an_instance_then_closes_with_it() {
    let dir = tempfile::tempdir().unwrap();
    for layout in [Layout::Shared, Layout::Isolated] {
        let storage = open(dir.path(), layout);
        let (done, completed) = std::sync::mpsc::channel();
        for (i, service) in [Service::Kv, Service::Sql, Service::Kv].into_iter().enumerate() {
            let store = storage.store(service);
            let mut batch = Batch::new();
            batch.put(Family::KvData, kv_data::key(0, format!("k{i}").as_bytes()), vec![1]);
            storage.store(Service::Kv).write(batch, Durability::Buffered).unwrap();
            let done = done.clone();
            store.after_sync(Box::new(move |synced| done.send((i, synced.is_ok())).unwrap()));
        }
        drop(done);
        let mut runs: Vec<(usize, bool)> = completed.iter().take(3).collect();
        runs.sort();
        assert_eq!(runs, [(0, true), (1, true), (2, true)], "{layout}");
        // The syncer threads hold the instances: dropping the storage
        // must stop them, or the next open would find RocksDB locked.
        let last = storage.store(Service::Kv);
        drop(storage);
        last.after_sync(Box::new(|synced| assert!(synced.is_ok())));
        drop(last);
        let reopened = open(dir.path(), layout);
        assert_eq!(reopened.store(Service::Kv).scan(Family::KvData, &[], None).count(), 3, "{layout}");
        drop(reopened);
        std::fs::remove_dir_all(dir.path()).unwrap();
    }
}
