//! The durable, deterministic state machine of the Redis service.
//!
//! [`KvStateMachine::apply`] runs a batch of log entries through one
//! [`txn::Txn`] and writes the result as ONE RocksDB write batch that also
//! records the applied index and the last time stamp. So a crash leaves
//! either the whole batch applied or none of it, and restart resumes at the
//! recorded index: nothing is re-applied, nothing skipped.
//!
//! Determinism: the only inputs are the stored state and the entries (their
//! ops and stamps). "Now" is `max(entry stamp, last applied stamp)`, so time
//! never runs backwards across entries or leader changes. User errors are
//! replies; storage errors abort the batch and stop the group.

mod keys;
mod string;
mod txn;

use raft::{Entry, StateMachine};
use storage::keyspace::kv_meta;
use storage::{Durability, Store};

use crate::command::{LogCommand, WriteOp};
use crate::error::{CommandError, Error, Result};
use crate::reply::Reply;

pub(crate) use txn::read_u64;

/// Why an op did not produce a reply.
pub(crate) enum Fail {
    /// A user error: becomes the reply.
    User(CommandError),
    /// A storage failure: aborts the batch.
    Fatal(Error),
}

impl From<CommandError> for Fail {
    fn from(error: CommandError) -> Self {
        Fail::User(error)
    }
}

impl From<Error> for Fail {
    fn from(error: Error) -> Self {
        Fail::Fatal(error)
    }
}

pub(crate) type OpResult = std::result::Result<Reply, Fail>;

/// The Redis service's state machine over its RocksDB families.
pub struct KvStateMachine {
    store: Store,
    durability: Durability,
    applied_index: u64,
    last_stamp_ms: u64,
    stats: std::sync::Arc<crate::Stats>,
}

impl KvStateMachine {
    /// Opens the state machine stored in `store`. Each applied batch is
    /// written with `durability`: `Sync` when the state machine is the only
    /// durable record of a write, `Buffered` when a durable log precedes it.
    pub fn open(store: Store, durability: Durability, stats: std::sync::Arc<crate::Stats>) -> Result<Self> {
        let applied_index = read_u64(&store, kv_meta::APPLIED_INDEX)?;
        let last_stamp_ms = read_u64(&store, kv_meta::LAST_STAMP)?;
        Ok(KvStateMachine { store, durability, applied_index, last_stamp_ms, stats })
    }

    /// The store the state machine lives in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The largest stamp applied so far.
    pub fn last_stamp_ms(&self) -> u64 {
        self.last_stamp_ms
    }
}

impl StateMachine for KvStateMachine {
    type Command = LogCommand;
    type Response = Reply;
    type Error = Error;

    fn applied_index(&self) -> u64 {
        self.applied_index
    }

    fn apply(&mut self, entries: Vec<Entry<LogCommand>>) -> Result<Vec<Reply>> {
        let mut txn = txn::Txn::new(&self.store, self.last_stamp_ms);
        let mut replies = Vec::with_capacity(entries.len());
        let mut applied = self.applied_index;
        for entry in entries {
            if entry.index != applied + 1 {
                return Err(Error::OutOfOrder { applied, got: entry.index });
            }
            txn.now_ms = txn.now_ms.max(entry.command.stamp_ms);
            let reply = match execute(&mut txn, entry.command.db, entry.command.op) {
                Ok(reply) => reply,
                Err(Fail::User(error)) => Reply::Error(error),
                Err(Fail::Fatal(error)) => return Err(error),
            };
            replies.push(reply);
            applied = entry.index;
        }
        let now = txn.now_ms;
        let expired = txn.expired;
        let batch = txn.commit(applied, now)?;
        self.store.write(batch, self.durability)?;
        self.applied_index = applied;
        self.last_stamp_ms = now;
        self.stats.expired_keys.fetch_add(expired, std::sync::atomic::Ordering::Relaxed);
        Ok(replies)
    }
}

fn execute(txn: &mut txn::Txn<'_>, db: u8, op: WriteOp) -> OpResult {
    match op {
        WriteOp::Set { key, value, condition, expiry, reply } => {
            string::set(txn, db, key, value, condition, expiry, reply)
        }
        WriteOp::MSet { pairs, only_if_none_exist } => string::mset(txn, db, pairs, only_if_none_exist),
        WriteOp::GetDel { key } => string::getdel(txn, db, key),
        WriteOp::GetEx { key, expiry } => string::getex(txn, db, key, expiry),
        WriteOp::IncrBy { key, delta } => string::incr_by(txn, db, key, delta),
        WriteOp::IncrByFloat { key, delta } => string::incr_by_float(txn, db, key, delta),
        WriteOp::Append { key, value } => string::append(txn, db, key, value),
        WriteOp::SetRange { key, offset, value } => string::setrange(txn, db, key, offset, value),
        WriteOp::Del { keys } => keys::del(txn, db, keys),
        WriteOp::Rename { from, to, only_if_absent } => keys::rename(txn, db, from, to, only_if_absent),
        WriteOp::Copy { from, to, to_db, replace } => keys::copy(txn, db, from, to, to_db, replace),
        WriteOp::Expire { key, at, condition, command } => keys::expire(txn, db, key, at, condition, &command),
        WriteOp::Persist { key } => keys::persist(txn, db, key),
        WriteOp::FlushDb => keys::flush(txn, Some(db)),
        WriteOp::FlushAll => keys::flush(txn, None),
        WriteOp::ExpireDue { keys } => keys::expire_due(txn, keys),
    }
}
