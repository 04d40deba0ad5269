//! Seshat's storage layer: RocksDB, the only place bytes reach disk.
//!
//! Every service (today the Redis service `kv`; later `sql`) keeps its Raft
//! log, its Raft metadata and its state machine in column families of a
//! RocksDB instance. This crate owns:
//!
//! - **the data dir**: a `SESHAT` marker file recording the format version and
//!   the storage layout, and an exclusive lock so that two processes never
//!   open the same directory ([`Storage::open`]);
//! - **the layout**: `shared` (one RocksDB under `<data_dir>/db` holding every
//!   service's families) or `isolated` (one RocksDB per service under
//!   `<data_dir>/<service>`), an operator choice that is fixed for the life of
//!   the data dir. Opening a data dir with another layout is an error, never a
//!   silent reinterpretation;
//! - **the keyspace** ([`keyspace`]): every column family and every key shape,
//!   written down in one module;
//! - **the access API** ([`Store`]): point reads, ordered range scans, atomic
//!   multi-family write batches with an explicit durability choice, and
//!   checkpoints (the basis of Raft snapshots).
//!
//! Invariants:
//! - A [`Batch`] is applied atomically: all of its puts and deletes, across
//!   families of one service, or none.
//! - A write with [`Durability::Sync`] has been fsynced to the WAL when
//!   [`Store::write`] returns; everything written before it (buffered or not)
//!   is durable too, which is what group commit relies on.

mod batch;
mod error;
pub mod failpoints;
pub mod keyspace;
mod layout;
mod lock;
pub mod overlay;
mod process_memory;
mod replace;
mod store;
mod tuning;
mod wal_syncer;

pub use batch::Batch;
pub use error::{Error, Result};
pub use keyspace::{Family, Service};
pub use layout::Layout;
pub use overlay::{Overlay, Writes};
pub use process_memory::{peak_resident_bytes, resident_bytes};
pub use replace::SpanEntry;
pub use store::{visit_scanned, Durability, KeyValue, Reader, Scan, Snapshot, Storage, Store};
pub use tuning::{default_block_cache_mb, Tuning};
pub use wal_syncer::Completion;
