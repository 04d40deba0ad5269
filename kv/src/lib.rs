//! The Redis service: Redis data types and command semantics as a
//! deterministic state machine over RocksDB, plus the read path.
//!
//! # Life of a write
//!
//! 1. The frontend parses a command into a [`WriteOp`] (syntax errors never
//!    get this far) and calls [`Kv::write`].
//! 2. [`Kv::write`] stamps it with the node's wall-clock time, never earlier
//!    than any stamp already applied, and proposes the [`LogCommand`] to the
//!    `kv/0` group (`raft`).
//! 3. The group applies it through [`KvStateMachine`]: every entry of a batch
//!    in one RocksDB write batch with the applied index, durably.
//! 4. The group hands back the [`Reply`], a user error included.
//!
//! # Life of a read
//!
//! [`Kv::read`] waits for the group's read barrier (linearizability) and runs
//! the read through a [`ReadCtx`], with "now" = max(wall clock, last stamp).
//! Point reads and scans are consistent by themselves; reads of several keys
//! take one RocksDB snapshot. Expired keys are absent; reads never
//! write. The leader's expiry sweeper ([`Kv::run_expiry_sweeper`]) proposes
//! the removal of expired keys through the log, so replicas never delete on
//! their own clock.

mod apply;
mod clock;
mod command;
mod error;
mod glob;
pub mod number;
mod read;
mod record;
mod reply;
mod service;

pub use apply::KvStateMachine;
pub use clock::{Clock, ManualClock, SystemClock};
pub use command::{DueKey, ExpireAt, ExpireCondition, LogCommand, SetCondition, SetExpiry, SetReply, WriteOp};
pub use error::{CommandError, Error, Result};
pub use glob::matches as glob_matches;
pub use read::{LcsOutput, ReadCtx, ScanArgs};
pub use record::KeyType;
pub use reply::Reply;
pub use service::{Kv, KvConfig, Stats};

/// The number of databases (SELECT 0..15).
pub const DATABASES: usize = 16;

/// The largest string value, as Redis's default `proto-max-bulk-len`.
pub const STRING_MAX_LEN: usize = 512 * 1024 * 1024;
