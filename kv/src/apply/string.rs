//! Write semantics of the string commands.

use bytes::{Bytes, BytesMut};

use super::txn::Txn;
use super::{Fail, OpResult};
use crate::command::{SetCondition, SetExpiry, SetReply};
use crate::error::CommandError;
use crate::notify::class::{GENERIC, STRING};
use crate::number::{float_sum_text, parse_f64, parse_i64};
use crate::record::{KeyType, Record};
use crate::reply::Reply;
use crate::STRING_MAX_LEN;

/// The live string value of `key`: `Ok(None)` if absent, WRONGTYPE if the
/// key holds another type.
fn get_string(txn: &mut Txn<'_>, db: u8, key: &Bytes) -> Result<Option<Record>, Fail> {
    match txn.get(db, key)? {
        Some(record) if record.kind != KeyType::String => Err(CommandError::WrongType.into()),
        other => Ok(other),
    }
}

/// The string at `key` read as GET reads it (SET … GET, GETDEL, GETEX):
/// a missing key is a `keymiss`.
fn read_string(txn: &mut Txn<'_>, db: u8, key: &Bytes) -> Result<Option<Record>, Fail> {
    let record = get_string(txn, db, key)?;
    if record.is_none() {
        txn.key_miss(db, key);
    }
    Ok(record)
}

/// Resolves a SET-style expiry against the existing record and "now".
/// Returns `Err` for an absolute time that overflows.
fn resolve_expiry(
    expiry: SetExpiry,
    existing: Option<&Record>,
    now_ms: u64,
    command: &str,
) -> Result<Option<u64>, Fail> {
    match expiry {
        SetExpiry::Clear => Ok(None),
        SetExpiry::Keep => Ok(existing.and_then(|r| r.expire_at_ms)),
        SetExpiry::AfterMs(ms) => now_ms
            .checked_add(ms)
            .filter(|at| *at <= i64::MAX as u64)
            .map(Some)
            .ok_or_else(|| CommandError::InvalidExpireTime(command.into()).into()),
        SetExpiry::AtMs(at) => Ok(Some(at.max(1))),
    }
}

pub(super) fn set(
    txn: &mut Txn<'_>,
    db: u8,
    key: Bytes,
    value: Bytes,
    condition: SetCondition,
    expiry: SetExpiry,
    reply: SetReply,
) -> OpResult {
    let existing = match reply {
        SetReply::OldValue => read_string(txn, db, &key)?,
        SetReply::Ok | SetReply::Flag => txn.get(db, &key)?,
    };
    let allowed = match condition {
        SetCondition::Always => true,
        SetCondition::IfAbsent => existing.is_none(),
        SetCondition::IfPresent => existing.is_some(),
    };
    if allowed {
        let expire_at_ms = resolve_expiry(expiry, existing.as_ref(), txn.now_ms, "set")?;
        let record = Record { kind: KeyType::String, expire_at_ms, modified: 0, value };
        let expired = record.is_expired(txn.now_ms);
        txn.put(db, &key, record)?;
        txn.notify(STRING, "set", db, &key);
        if matches!(expiry, SetExpiry::AfterMs(_) | SetExpiry::AtMs(_)) {
            txn.notify(GENERIC, "expire", db, &key);
        }
        if expired {
            // EXAT/PXAT in the past: the write happens and expires at once
            // (reading it back removes it, with its `expired` event).
            txn.get(db, &key)?;
        }
    }
    Ok(match reply {
        SetReply::Ok if allowed => Reply::ok(),
        SetReply::Ok => Reply::Nil,
        SetReply::OldValue => Reply::bulk_or_nil(existing.map(|r| r.value)),
        SetReply::Flag => Reply::Int(i64::from(allowed)),
    })
}

pub(super) fn mset(txn: &mut Txn<'_>, db: u8, pairs: Vec<(Bytes, Bytes)>, only_if_none_exist: bool) -> OpResult {
    if only_if_none_exist {
        for (key, _) in &pairs {
            if txn.get(db, key)?.is_some() {
                return Ok(Reply::Int(0));
            }
        }
    }
    for (key, value) in pairs {
        txn.put(db, &key, Record::string(value))?;
        txn.notify(STRING, "set", db, &key);
    }
    Ok(if only_if_none_exist { Reply::Int(1) } else { Reply::ok() })
}

pub(super) fn getdel(txn: &mut Txn<'_>, db: u8, key: Bytes) -> OpResult {
    let existing = read_string(txn, db, &key)?;
    if existing.is_some() {
        txn.delete(db, &key)?;
        txn.notify(GENERIC, "del", db, &key);
    }
    Ok(Reply::bulk_or_nil(existing.map(|r| r.value)))
}

pub(super) fn getex(txn: &mut Txn<'_>, db: u8, key: Bytes, expiry: SetExpiry) -> OpResult {
    let Some(mut record) = read_string(txn, db, &key)? else {
        return Ok(Reply::Nil);
    };
    let value = record.value.clone();
    let had_expiry = record.expire_at_ms.is_some();
    record.expire_at_ms = resolve_expiry(expiry, Some(&record), txn.now_ms, "getex")?;
    if record.is_expired(txn.now_ms) {
        txn.delete(db, &key)?;
        txn.notify(GENERIC, "del", db, &key);
    } else {
        txn.put(db, &key, record)?;
        match expiry {
            SetExpiry::AfterMs(_) | SetExpiry::AtMs(_) => txn.notify(GENERIC, "expire", db, &key),
            SetExpiry::Clear if had_expiry => txn.notify(GENERIC, "persist", db, &key),
            _ => {}
        }
    }
    Ok(Reply::Bulk(value))
}

pub(super) fn incr_by(txn: &mut Txn<'_>, db: u8, key: Bytes, delta: i64) -> OpResult {
    let existing = get_string(txn, db, &key)?;
    let current = match &existing {
        Some(record) => parse_i64(&record.value).ok_or(CommandError::NotInteger)?,
        None => 0,
    };
    let next = current.checked_add(delta).ok_or(CommandError::Overflow)?;
    let expire_at_ms = existing.and_then(|r| r.expire_at_ms);
    txn.put(
        db,
        &key,
        Record { kind: KeyType::String, expire_at_ms, modified: 0, value: Bytes::from(next.to_string()) },
    )?;
    txn.notify(STRING, "incrby", db, &key);
    Ok(Reply::Int(next))
}

pub(super) fn incr_by_float(txn: &mut Txn<'_>, db: u8, key: Bytes, delta: f64) -> OpResult {
    let existing = get_string(txn, db, &key)?;
    let current = match &existing {
        Some(record) => parse_f64(&record.value).ok_or(CommandError::NotFloat)?,
        None => 0.0,
    };
    let next = current + delta;
    if !next.is_finite() {
        return Err(CommandError::NanOrInfinity.into());
    }
    let current_text = existing.as_ref().map_or(&b"0"[..], |r| &r.value[..]);
    let text = Bytes::from(float_sum_text(current_text, delta, next));
    let expire_at_ms = existing.and_then(|r| r.expire_at_ms);
    txn.put(db, &key, Record { kind: KeyType::String, expire_at_ms, modified: 0, value: text.clone() })?;
    txn.notify(STRING, "incrbyfloat", db, &key);
    Ok(Reply::Bulk(text))
}

pub(super) fn append(txn: &mut Txn<'_>, db: u8, key: Bytes, value: Bytes) -> OpResult {
    let existing = get_string(txn, db, &key)?;
    let (mut buffer, expire_at_ms) = match existing {
        Some(record) => (BytesMut::from(&record.value[..]), record.expire_at_ms),
        None => (BytesMut::new(), None),
    };
    if buffer.len() + value.len() > STRING_MAX_LEN {
        return Err(CommandError::StringTooLong.into());
    }
    buffer.extend_from_slice(&value);
    let len = buffer.len() as i64;
    txn.put(db, &key, Record { kind: KeyType::String, expire_at_ms, modified: 0, value: buffer.freeze() })?;
    txn.notify(STRING, "append", db, &key);
    Ok(Reply::Int(len))
}

pub(super) fn setrange(txn: &mut Txn<'_>, db: u8, key: Bytes, offset: u64, value: Bytes) -> OpResult {
    let existing = get_string(txn, db, &key)?;
    let current_len = existing.as_ref().map_or(0, |r| r.value.len());
    if value.is_empty() {
        return Ok(Reply::Int(current_len as i64));
    }
    let end = usize::try_from(offset).ok().and_then(|o| o.checked_add(value.len()));
    let end = match end {
        Some(end) if end <= STRING_MAX_LEN => end,
        _ => return Err(CommandError::StringTooLong.into()),
    };
    let (mut buffer, expire_at_ms) = match existing {
        Some(record) => (BytesMut::from(&record.value[..]), record.expire_at_ms),
        None => (BytesMut::new(), None),
    };
    if buffer.len() < end {
        buffer.resize(end, 0);
    }
    let offset = offset as usize;
    buffer[offset..end].copy_from_slice(&value);
    let len = buffer.len() as i64;
    txn.put(db, &key, Record { kind: KeyType::String, expire_at_ms, modified: 0, value: buffer.freeze() })?;
    txn.notify(STRING, "setrange", db, &key);
    Ok(Reply::Int(len))
}
