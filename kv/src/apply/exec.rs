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
//! Then the commands run in order in the batch's txn, each seeing the ones
//! before it; a command's error is its own reply and the others still run.

use bytes::Bytes;
use storage::keyspace::kv_data;
use storage::{Family, Reader};

use super::txn::Txn;
use super::{execute, Fail, OpResult};
use crate::command::{QueuedCommand, TxnStep, WatchedKey, WriteOp};
use crate::cursors::CursorTable;
use crate::error::CommandError;
use crate::record::Record;
use crate::reply::Reply;

pub(super) fn exec(
    txn: &mut Txn<'_>,
    cursors: &CursorTable,
    watched: Vec<WatchedKey>,
    commands: Vec<QueuedCommand>,
) -> OpResult {
    for key in &watched {
        if modified_since(txn, key)? {
            return Ok(Reply::NilArray);
        }
    }
    let mut replies = Vec::with_capacity(commands.len());
    for QueuedCommand { db, step } in commands {
        let reply = match step {
            TxnStep::Write(WriteOp::Exec { .. }) => {
                Reply::Error(CommandError::Other("ERR EXEC inside a transaction".into()))
            }
            TxnStep::Write(op) => match execute(txn, cursors, db, op) {
                Ok(reply) => reply,
                Err(Fail::User(error)) => Reply::Error(error),
                Err(fatal) => return Err(fatal),
            },
            TxnStep::Read(op) => super::reading(txn, cursors, db).run(&op)?,
            TxnStep::Reply(reply) => reply,
        };
        replies.push(reply);
    }
    Ok(Reply::Array(replies))
}

/// Whether `key` changed after its observation (see the module docs).
fn modified_since(txn: &Txn<'_>, watched: &WatchedKey) -> Result<bool, Fail> {
    let stored = Reader::get(txn, Family::KvData, &kv_data::key(watched.db, &watched.key))?;
    let live =
        stored.map(|bytes| Record::decode(Bytes::from(bytes))).transpose()?.filter(|r| !r.is_expired(txn.now_ms));
    Ok(match live {
        Some(record) => record.modified > watched.observed_index,
        None => watched.existed || txn.absent_key_touched(watched.db, &watched.key, watched.observed_index)?,
    })
}
