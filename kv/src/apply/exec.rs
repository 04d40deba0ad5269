//! EXEC: a MULTI's queued commands as one log entry.
//!
//! WATCH is decided here, at apply time, from the log alone, so every
//! replica reaches the same verdict, before or after a leader change. A
//! watched key counts as modified since the watching node observed log
//! index `i` if:
//! - it exists now and its record was written after `i`, or
//! - it existed then and is gone now (deleted or expired), or
//! - it is absent now, but a key of its hash slot was deleted after `i`,
//!   or one was created after `i` and its database flushed after `i` (it
//!   may have been created and removed meanwhile; another key of the slot
//!   aborts too, a conservative answer). A flush alone does not abort a
//!   watch of an absent key: Redis 7 only touches keys that existed.
//!
//! - its database was swapped (SWAPDB) after `i` (conservative: Redis only
//!   touches keys that exist in either database).
//!
//! Then the commands run in order in the batch's txn, each seeing the ones
//! before it; a command's error is its own reply and the others still run.

use bytes::Bytes;
use storage::keyspace::kv_data;
use storage::{Family, Reader};

use super::txn::Txn;
use super::{execute, Context, Fail, OpResult};
use crate::command::{QueuedCommand, TxnStep, WatchedKey, WriteOp};
use crate::dbmap::DbMap;
use crate::error::CommandError;
use crate::record::Record;
use crate::reply::Reply;

pub(super) fn exec(
    txn: &mut Txn<'_>,
    ctx: &mut Context<'_>,
    watched: Vec<WatchedKey>,
    commands: Vec<QueuedCommand>,
) -> OpResult {
    for key in &watched {
        if modified_since(txn, ctx.dbs, key)? {
            return Ok(Reply::NilArray);
        }
    }
    let mut replies = Vec::with_capacity(commands.len());
    for QueuedCommand { db, step } in commands {
        // A SWAPDB queued before changes where the next commands run.
        let db = ctx.dbs.physical(db);
        txn.begin_op();
        let reply = match step {
            TxnStep::Write(WriteOp::Exec { .. }) => {
                Reply::Error(CommandError::Other("ERR EXEC inside a transaction".into()))
            }
            TxnStep::Write(op) => match execute(txn, ctx, db, op) {
                Ok(reply) => reply,
                Err(Fail::User(error)) => Reply::Error(error),
                Err(fatal) => return Err(fatal),
            },
            TxnStep::Read(op) => super::reading(txn, ctx.cursors, db).run(&op)?,
            TxnStep::Reply(reply) => reply,
        };
        replies.push(reply);
    }
    Ok(Reply::Array(replies))
}

/// Whether `key` changed after its observation (see the module docs).
fn modified_since(txn: &Txn<'_>, dbs: &DbMap, watched: &WatchedKey) -> Result<bool, Fail> {
    if txn.last_swap(watched.db)? > watched.observed_index {
        return Ok(true);
    }
    let db = dbs.physical(watched.db);
    let stored = Reader::get(txn, Family::KvData, &kv_data::key(db, &watched.key))?;
    let live =
        stored.map(|bytes| Record::decode(Bytes::from(bytes))).transpose()?.filter(|r| !r.is_expired(txn.now_ms));
    Ok(match live {
        Some(record) => record.modified > watched.observed_index,
        None => watched.existed || txn.absent_key_touched(db, &watched.key, watched.observed_index)?,
    })
}
