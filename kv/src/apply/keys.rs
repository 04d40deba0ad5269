//! Write semantics of the generic key commands.

use bytes::Bytes;

use storage::keyspace::{kv_elements, kv_meta};
use storage::{Family, Reader};

use super::txn::Txn;
use super::{Context, Fail, OpResult};
use crate::command::{DueKey, End, ExpireAt, ExpireCondition, HashSetMode, ZAddFlags};
use crate::dump::{self, DumpError, Dumped};
use crate::error::CommandError;
use crate::notify::class::{GENERIC, NEW};
use crate::record::Record;
use crate::reply::Reply;
use crate::DATABASES;

pub(super) fn del(txn: &mut Txn<'_>, db: u8, keys: Vec<Bytes>) -> OpResult {
    let mut deleted = 0;
    for key in keys {
        if txn.delete(db, &key)? {
            txn.notify(GENERIC, "del", db, &key);
            deleted += 1;
        }
    }
    Ok(Reply::Int(deleted))
}

pub(super) fn rename(txn: &mut Txn<'_>, db: u8, from: Bytes, to: Bytes, only_if_absent: bool) -> OpResult {
    let Some(record) = txn.get(db, &from)? else {
        return Err(CommandError::NoSuchKey.into());
    };
    if from == to {
        return Ok(if only_if_absent { Reply::Int(0) } else { Reply::ok() });
    }
    let replaced = txn.get(db, &to)?.is_some();
    if only_if_absent && replaced {
        return Ok(Reply::Int(0));
    }
    txn.delete(db, &from)?;
    txn.put(db, &to, record)?;
    if replaced {
        // Redis deletes the old destination and adds the key anew.
        txn.notify(NEW, "new", db, &to);
    }
    txn.notify(GENERIC, "rename_from", db, &from);
    txn.notify(GENERIC, "rename_to", db, &to);
    Ok(if only_if_absent { Reply::Int(1) } else { Reply::ok() })
}

pub(super) fn copy(txn: &mut Txn<'_>, db: u8, from: Bytes, to: Bytes, to_db: u8, replace: bool) -> OpResult {
    if db == to_db && from == to {
        return Err(CommandError::SameObject.into());
    }
    let Some(record) = txn.get(db, &from)? else {
        txn.key_miss(db, &from);
        return Ok(Reply::Int(0));
    };
    let replaced = txn.get(to_db, &to)?.is_some();
    if !replace && replaced {
        return Ok(Reply::Int(0));
    }
    copy_record(txn, db, record, &to, to_db)?;
    if replaced {
        // Redis deletes the old destination and adds the copy anew.
        txn.notify(NEW, "new", to_db, &to);
    }
    txn.notify(GENERIC, "copy_to", to_db, &to);
    Ok(Reply::Int(1))
}

/// Writes `record` of database `db` (its elements copied to a new
/// collection) at `to` in `to_db`.
fn copy_record(txn: &mut Txn<'_>, db: u8, record: Record, to: &Bytes, to_db: u8) -> Result<(), Fail> {
    let record = match record.version() {
        None => record,
        Some(version) => {
            let mut header = record.header()?;
            header.version = txn.new_collection()?.version;
            copy_elements(txn, (db, version), (to_db, header.version))?;
            record.with_header(header)
        }
    };
    Ok(txn.put(to_db, to, record)?)
}

/// SWAPDB: logical databases `a` and `b` trade their contents, in O(1):
/// the map changes, no key moves. Clients blocked on keys of either are
/// served from what the database holds now, and WATCH on either aborts.
pub(super) fn swapdb(txn: &mut Txn<'_>, ctx: &mut Context<'_>, a: u8, b: u8) -> OpResult {
    if a == b {
        return Ok(Reply::ok());
    }
    ctx.dbs.swap(a, b);
    // Every key of both databases may read differently now.
    txn.flushed_any = true;
    txn.put_meta(kv_meta::db_map(txn.shard), Some(ctx.dbs.encode()));
    for db in [a, b] {
        txn.put_meta(kv_meta::swapped(txn.shard, db), Some(txn.index.to_be_bytes().to_vec()));
        for key in ctx.waiters.keys_of(db) {
            txn.signal(ctx.dbs.physical(db), key);
        }
    }
    Ok(Reply::ok())
}

/// MOVE: the key, with its expiry, to `to_db`, unless it exists there.
pub(super) fn move_key(txn: &mut Txn<'_>, db: u8, key: Bytes, to_db: u8) -> OpResult {
    if db == to_db {
        return Err(CommandError::SameObject.into());
    }
    let Some(record) = txn.get(db, &key)? else {
        return Ok(Reply::Int(0));
    };
    if txn.get(to_db, &key)?.is_some() {
        return Ok(Reply::Int(0));
    }
    copy_record(txn, db, record, &key, to_db)?;
    txn.delete(db, &key)?;
    txn.notify(GENERIC, "move_from", db, &key);
    txn.notify(GENERIC, "move_to", to_db, &key);
    Ok(Reply::Int(1))
}

/// Copies every element (and score index entry) of collection `from` to
/// the new collection `to`.
fn copy_elements(txn: &mut Txn<'_>, from: (u8, u64), to: (u8, u64)) -> Result<(), Fail> {
    for family in [Family::KvElements, Family::KvScores] {
        let (start, end) = kv_elements::range(from.0, from.1);
        let entries: Vec<_> = Reader::scan(txn, family, &start, Some(&end)).collect::<storage::Result<_>>()?;
        for (key, value) in entries {
            txn.put_element(family, kv_elements::key(to.0, to.1, kv_elements::sub_key(&key)), Bytes::from(value));
        }
    }
    Ok(())
}

/// RESTORE: the payload's value at `key`, with its expiry. Refused when
/// the key exists without `replace`; an expiry already past only deletes
/// what was there, as in Redis.
pub(super) fn restore(
    txn: &mut Txn<'_>,
    db: u8,
    key: Bytes,
    ttl_ms: i64,
    absolute: bool,
    replace: bool,
    payload: &[u8],
) -> OpResult {
    if !replace && txn.get(db, &key)?.is_some() {
        return Err(CommandError::Other("BUSYKEY Target key name already exists.".into()).into());
    }
    if ttl_ms < 0 {
        return Err(CommandError::Other("ERR Invalid TTL value, must be >= 0".into()).into());
    }
    let value = dump::decode(payload).map_err(|error| {
        CommandError::Other(match error {
            DumpError::VersionOrChecksum => "ERR DUMP payload version or checksum are wrong".into(),
            DumpError::BadData => "ERR Bad data format".into(),
        })
    })?;
    let expire_at_ms = match (ttl_ms as u64, absolute) {
        (0, _) => None,
        (at, true) => Some(at),
        (after, false) => Some(txn.now_ms.saturating_add(after)),
    };
    let deleted = txn.delete(db, &key)?;
    if expire_at_ms.is_some_and(|at| at <= txn.now_ms) {
        if deleted {
            txn.notify(GENERIC, "del", db, &key);
        }
        return Ok(Reply::ok());
    }
    // The value is built by the type's own writes, whose events RESTORE
    // does not report: it reports the key new and restored.
    let notify = std::mem::take(&mut txn.notify);
    let built = build(txn, db, &key, value);
    txn.notify = notify;
    built?;
    txn.notify(NEW, "new", db, &key);
    if let (Some(at), Some(mut record)) = (expire_at_ms, txn.get(db, &key)?) {
        record.expire_at_ms = Some(at);
        txn.put(db, &key, record)?;
    }
    txn.notify(GENERIC, "restore", db, &key);
    Ok(Reply::ok())
}

/// Writes a decoded DUMP value at the (absent) `key`.
fn build(txn: &mut Txn<'_>, db: u8, key: &Bytes, value: Dumped) -> Result<(), Fail> {
    match value {
        Dumped::String(value) => txn.put(db, key, Record::string(value))?,
        Dumped::List(items) => {
            super::list::push(txn, db, key.clone(), items, End::Right, false)?;
        }
        Dumped::Set(members) => {
            super::set::sadd(txn, db, key.clone(), members)?;
        }
        Dumped::Hash(pairs) => {
            super::hash::hset(txn, db, key.clone(), pairs, HashSetMode::Count)?;
        }
        Dumped::SortedSet(pairs) => {
            let pairs = pairs.into_iter().map(|(member, score)| (score, member)).collect();
            super::zset::zadd(txn, db, key.clone(), ZAddFlags::default(), pairs)?;
        }
    }
    Ok(())
}

pub(super) fn expire(
    txn: &mut Txn<'_>,
    db: u8,
    key: Bytes,
    at: ExpireAt,
    condition: ExpireCondition,
    command: &str,
) -> OpResult {
    let invalid = || CommandError::InvalidExpireTime(command.into());
    let at_ms = match at {
        ExpireAt::AfterMs(ms) => {
            i64::try_from(txn.now_ms).ok().and_then(|now| now.checked_add(ms)).ok_or_else(invalid)?
        }
        ExpireAt::AtMs(ms) => ms,
    };
    let Some(mut record) = txn.get(db, &key)? else {
        return Ok(Reply::Int(0));
    };
    let allowed = match (condition, record.expire_at_ms) {
        (ExpireCondition::Always, _) => true,
        (ExpireCondition::IfNone, current) => current.is_none(),
        (ExpireCondition::IfSome, current) => current.is_some(),
        // No expiry counts as an infinite TTL.
        (ExpireCondition::IfGreater, current) => current.is_some_and(|c| at_ms > c as i64),
        (ExpireCondition::IfLess, current) => current.is_none_or(|c| at_ms < c as i64),
        (ExpireCondition::IfSomeAndLess, current) => current.is_some_and(|c| at_ms < c as i64),
    };
    if !allowed {
        return Ok(Reply::Int(0));
    }
    if at_ms <= txn.now_ms as i64 {
        txn.delete(db, &key)?;
        txn.notify(GENERIC, "del", db, &key);
    } else {
        record.expire_at_ms = Some(at_ms as u64);
        txn.put(db, &key, record)?;
        txn.notify(GENERIC, "expire", db, &key);
    }
    Ok(Reply::Int(1))
}

pub(super) fn persist(txn: &mut Txn<'_>, db: u8, key: Bytes) -> OpResult {
    match txn.get(db, &key)? {
        Some(mut record) if record.expire_at_ms.is_some() => {
            record.expire_at_ms = None;
            txn.put(db, &key, record)?;
            txn.notify(GENERIC, "persist", db, &key);
            Ok(Reply::Int(1))
        }
        _ => Ok(Reply::Int(0)),
    }
}

pub(super) fn flush(txn: &mut Txn<'_>, db: Option<u8>) -> OpResult {
    match db {
        Some(db) => txn.flush_db(db),
        None => (0..DATABASES as u8).for_each(|db| txn.flush_db(db)),
    }
    Ok(Reply::ok())
}

/// Removes the keys the sweeper found due, if they are still due with the
/// same expiry (a write since the scan may have changed or removed it).
pub(super) fn expire_due(txn: &mut Txn<'_>, keys: Vec<DueKey>) -> OpResult {
    let mut removed = 0;
    for due in keys {
        // `get` removes the key if it has expired by now.
        let before = txn.expired;
        txn.get(due.db, &due.key)?;
        removed += txn.expired - before;
    }
    Ok(Reply::Int(removed as i64))
}
