//! RocksDB's options, per column family.
//!
//! One LRU block cache serves every family of every instance a data dir
//! opens (both services, either layout), so its size bounds the memory
//! that reads of data past the memtables take: `--block-cache-mb`, by
//! default a sixteenth of the machine's memory (at least
//! [`MIN_DEFAULT_CACHE_MB`]).
//!
//! Families read by key (every family but the Raft logs: a service's
//! state and Raft's metadata) get a full bloom filter of 10 bits per key (about 1%
//! false positives), so a lookup of a key that is not in an SST file
//! skips it without reading a data block; their index and filter blocks
//! live in the block cache (bounded with it) and L0's stay pinned there;
//! the memtables get a whole-key bloom filter too, which answers a miss
//! without searching the skiplist. The Raft log families are written in
//! index order, read back in ranges, and purged from the front: no
//! filters (a range read cannot use them).
//!
//! The families of counters, pointers and sessions (hash-slot stamps,
//! key counts, the applied index: keys bounded by the 16,384 slots per
//! database, not by the data, and rewritten by nearly every write) get
//! 4 MiB memtables instead of RocksDB's 64: every rewrite is a new
//! skiplist node until the flush, and a smaller skiplist is searched in
//! cache rather than memory; a flush writes only the live keys.
//!
//! Measured on 2 cores, single node, ~630k keys of 100 bytes (bigger than
//! the memtables), `redis-benchmark -c 50 -r 1000000 -d 100`: see
//! `docs/design.md` (Storage tuning) for the figures before and after.

use rocksdb::{BlockBasedOptions, Cache, DBCompressionType, Options};

use crate::keyspace::Family;

/// The smallest default block cache, for machines with little memory.
pub const MIN_DEFAULT_CACHE_MB: usize = 64;

/// Bits per key of the SST bloom filters.
const FILTER_BITS_PER_KEY: f64 = 10.0;

/// Share of a memtable's size given to its bloom filter.
const MEMTABLE_FILTER_RATIO: f64 = 0.05;

/// Memtable size of the families of keys rewritten over and over
/// (see the module docs).
const REWRITTEN_WRITE_BUFFER_BYTES: usize = 4 << 20;

/// How the process's RocksDB instances are tuned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// Size of the block cache shared by every family and instance.
    pub block_cache_mb: usize,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning { block_cache_mb: default_block_cache_mb() }
    }
}

/// A sixteenth of the machine's memory, at least [`MIN_DEFAULT_CACHE_MB`].
pub fn default_block_cache_mb() -> usize {
    let total_mb = std::fs::read_to_string("/proc/meminfo").ok().and_then(|meminfo| {
        let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
        let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024)
    });
    total_mb.map_or(MIN_DEFAULT_CACHE_MB, |mb| (mb / 16).max(MIN_DEFAULT_CACHE_MB))
}

/// The options every instance and family start from.
pub(crate) fn base_options() -> Options {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_compression_type(DBCompressionType::Lz4);
    // Flushes and compactions get a thread per core (at least two).
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
    opts.increase_parallelism(i32::try_from(cores).unwrap_or(i32::MAX));
    opts.set_keep_log_file_num(4);
    opts
}

/// The options of family `family`, its blocks cached in `cache`.
pub(crate) fn family_options(family: Family, cache: &Cache) -> Options {
    let mut opts = base_options();
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    if family.is_read_by_key() {
        table.set_bloom_filter(FILTER_BITS_PER_KEY, false);
        table.set_whole_key_filtering(true);
        opts.set_memtable_prefix_bloom_ratio(MEMTABLE_FILTER_RATIO);
        opts.set_memtable_whole_key_filtering(true);
    }
    if family.is_rewritten_in_place() {
        opts.set_write_buffer_size(REWRITTEN_WRITE_BUFFER_BYTES);
    }
    opts.set_block_based_table_factory(&table);
    opts
}
