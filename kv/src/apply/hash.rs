//! Write semantics of the hash commands.
//!
//! A hash's fields are `kv_elements` entries `[db][version][field] → value`.

use bytes::Bytes;
use storage::Family;

use super::collection::{element, open, remove_subs, save};
use super::txn::Txn;
use super::OpResult;
use crate::command::HashSetMode;
use crate::error::CommandError;
use crate::notify::class::HASH;
use crate::number::{float_sum_text, parse_f64, parse_i64};
use crate::record::KeyType;
use crate::reply::Reply;

pub(super) fn hset(txn: &mut Txn<'_>, db: u8, key: Bytes, pairs: Vec<(Bytes, Bytes)>, mode: HashSetMode) -> OpResult {
    let mut hash = open(txn, db, &key, KeyType::Hash)?;
    let mut added = 0;
    for (field, value) in pairs {
        let element_key = hash.element_key(db, &field);
        let exists = element(txn, &element_key)?.is_some();
        if exists && mode == HashSetMode::IfAbsent {
            return Ok(Reply::Int(0));
        }
        if !exists {
            added += 1;
        }
        txn.put_element(Family::KvElements, element_key, value);
    }
    hash.header.len += added;
    save(txn, db, &key, &hash)?;
    txn.notify(HASH, "hset", db, &key);
    Ok(match mode {
        HashSetMode::Count => Reply::Int(added as i64),
        HashSetMode::IfAbsent => Reply::Int(1),
        HashSetMode::Ok => Reply::ok(),
    })
}

pub(super) fn hdel(txn: &mut Txn<'_>, db: u8, key: Bytes, fields: Vec<Bytes>) -> OpResult {
    remove_subs(txn, db, &key, KeyType::Hash, fields, (HASH, "hdel"))
}

pub(super) fn hincrby(txn: &mut Txn<'_>, db: u8, key: Bytes, field: Bytes, delta: i64) -> OpResult {
    let mut hash = open(txn, db, &key, KeyType::Hash)?;
    let element_key = hash.element_key(db, &field);
    let current = element(txn, &element_key)?;
    let value = match &current {
        Some(bytes) => {
            parse_i64(bytes).ok_or_else(|| CommandError::Other("ERR hash value is not an integer".into()))?
        }
        None => 0,
    };
    let next = value.checked_add(delta).ok_or(CommandError::Overflow)?;
    if current.is_none() {
        hash.header.len += 1;
    }
    txn.put_element(Family::KvElements, element_key, Bytes::from(next.to_string()));
    save(txn, db, &key, &hash)?;
    txn.notify(HASH, "hincrby", db, &key);
    Ok(Reply::Int(next))
}

pub(super) fn hincrbyfloat(txn: &mut Txn<'_>, db: u8, key: Bytes, field: Bytes, delta: f64) -> OpResult {
    let mut hash = open(txn, db, &key, KeyType::Hash)?;
    let element_key = hash.element_key(db, &field);
    let current = element(txn, &element_key)?;
    let value = match &current {
        Some(bytes) => parse_f64(bytes).ok_or_else(|| CommandError::Other("ERR hash value is not a float".into()))?,
        None => 0.0,
    };
    let next = value + delta;
    if !next.is_finite() {
        return Err(CommandError::NanOrInfinity.into());
    }
    if current.is_none() {
        hash.header.len += 1;
    }
    let text = Bytes::from(float_sum_text(current.as_deref().unwrap_or(b"0"), delta, next));
    txn.put_element(Family::KvElements, element_key, text.clone());
    save(txn, db, &key, &hash)?;
    txn.notify(HASH, "hincrbyfloat", db, &key);
    Ok(Reply::Bulk(text))
}
