//! The Redis service: Redis data types and command semantics as a
//! deterministic state machine over RocksDB, plus the read path.
//!
//! # Life of a write
//!
//! 1. The frontend parses a command into a [`WriteOp`] (syntax errors never
//!    get this far) and calls [`Kv::write`].
//! 2. [`Kv::write`] proposes the encoded [`LogCommand`] to the `kv/0` group
//!    (`raft`), which forwards it to the leader if needed; the leader stamps
//!    the entry with its wall-clock time, never earlier than any stamp
//!    already applied.
//! 3. Once committed, every replica applies it through [`KvStateMachine`]:
//!    every entry of a batch in one RocksDB write batch with the applied log
//!    id.
//! 4. The group hands back the leader's encoded [`Reply`], a user error
//!    included.
//!
//! # Life of a read
//!
//! [`Kv::read`] waits for the group's read barrier (linearizability: read
//! index, confirmed by the leader) and runs the read on the local replica
//! through a [`ReadCtx`], with "now" = max(wall clock, last applied stamp).
//! [`Kv::read_stale`] skips the barrier (the `READONLY` opt-in).
//! Point reads and scans are consistent by themselves; reads of several keys
//! take one RocksDB snapshot. Expired keys are absent; reads never
//! write. The leader's expiry sweeper ([`Kv::run_expiry_sweeper`]) proposes
//! the removal of expired keys through the log, so replicas never delete on
//! their own clock.

mod apply;
pub mod bits;
mod blocking;
mod change_feed;
mod command;
mod cursors;
mod dbmap;
pub mod dump;
mod error;
pub mod geo;
mod glob;
pub mod hll;
mod list_chunks;
#[cfg(test)]
mod log_format;
mod meta;
pub mod meta_group;
pub mod notify;
pub mod number;
mod read;
mod record;
mod reply;
pub mod script;
mod service;
mod set_algebra;
mod sorted;
mod stats;
pub mod stream;

pub use apply::{KvStateMachine, NodeShared};
pub use blocking::Blocked;
pub use command::{
    BlockingPop, DueKey, End, ExpireAt, ExpireCondition, HashSetMode, LogCommand, PopShape, QueuedCommand,
    RestorePolicy, SetCondition, SetExpiry, SetReply, TxnStep, WaiterId, WatchedKey, WriteOp, ZAddFlags,
};
pub use cursors::CursorTable;
pub use error::{CommandError, Error, Result};
pub use glob::matches as glob_matches;
pub use raft::{Clock, ManualClock, SystemClock};
pub use read::{
    ElementScan, EncodingLimits, HashPart, InfoKind, LcsOutput, LposOptions, PendingRange, ReadCode, ReadCtx, ReadOp,
    ScanArgs, SortOptions,
};
pub use record::KeyType;
pub use reply::Reply;
pub use service::{cluster_shards, recorded_shards, Kv, KvConfig, KvStart, OpenedKv, ShardView, WriteReply};
pub use set_algebra::SetAlgebra;
pub use sorted::{format_score, Aggregate, Combine, LexBound, Range, RangeSpec, ScoreBound};
pub use stats::Stats;
pub use storage::keyspace::Shard;

/// The Redis version Seshat answers as (INFO, HELLO, `redis.REDIS_VERSION`).
pub const REDIS_VERSION: &str = "7.2.0";

/// The number of databases (SELECT 0..15).
pub const DATABASES: usize = 16;

/// The largest string value, as Redis's default `proto-max-bulk-len`.
pub const STRING_MAX_LEN: usize = 512 * 1024 * 1024;
