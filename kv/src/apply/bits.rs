//! Write semantics of the bit commands on strings (logic: `crate::bits`).

use bytes::Bytes;

use super::txn::Txn;
use super::{Fail, OpResult};
use crate::bits::{self, BitOperation, FieldOp};
use crate::error::CommandError;
use crate::notify::class::{GENERIC, STRING};
use crate::record::{KeyType, Record};
use crate::reply::Reply;

/// The string value of `key` (empty if absent) and its expiry, or
/// WRONGTYPE.
fn string_value(txn: &mut Txn<'_>, db: u8, key: &Bytes) -> Result<(Vec<u8>, Option<u64>), Fail> {
    match txn.get(db, key)? {
        None => Ok((Vec::new(), None)),
        Some(record) if record.kind != KeyType::String => Err(CommandError::WrongType.into()),
        Some(record) => Ok((record.value.to_vec(), record.expire_at_ms)),
    }
}

fn store(txn: &mut Txn<'_>, db: u8, key: &Bytes, value: Vec<u8>, expire_at_ms: Option<u64>) -> Result<(), Fail> {
    let record = Record { kind: KeyType::String, expire_at_ms, modified: 0, value: Bytes::from(value) };
    Ok(txn.put(db, key, record)?)
}

pub(super) fn setbit(txn: &mut Txn<'_>, db: u8, key: Bytes, offset: u64, value: bool) -> OpResult {
    let (mut bytes, expiry) = string_value(txn, db, &key)?;
    let before_len = bytes.len();
    let old = bits::set_bit(&mut bytes, offset, value);
    // As Redis: stored and notified when the bit changed or the string
    // grew (or was created).
    if old != u8::from(value) || bytes.len() != before_len {
        store(txn, db, &key, bytes, expiry)?;
        txn.notify(STRING, "setbit", db, &key);
    }
    Ok(Reply::Int(i64::from(old)))
}

pub(super) fn bitop(
    txn: &mut Txn<'_>,
    db: u8,
    operation: BitOperation,
    destination: Bytes,
    keys: Vec<Bytes>,
) -> OpResult {
    let mut inputs = Vec::with_capacity(keys.len());
    for key in &keys {
        let (value, _) = string_value(txn, db, key)?;
        // Empty: missing (a `keymiss`) or an empty string.
        if value.is_empty() && txn.get(db, key)?.is_none() {
            txn.key_miss(db, key);
        }
        inputs.push(value);
    }
    let result = bits::bitop(operation, &inputs);
    let len = result.len() as i64;
    if result.is_empty() {
        if txn.delete(db, &destination)? {
            txn.notify(GENERIC, "del", db, &destination);
        }
    } else {
        store(txn, db, &destination, result, None)?;
        txn.notify(STRING, "set", db, &destination);
    }
    Ok(Reply::Int(len))
}

pub(super) fn bitfield(txn: &mut Txn<'_>, db: u8, key: Bytes, ops: Vec<FieldOp>) -> OpResult {
    let (mut bytes, expiry) = string_value(txn, db, &key)?;
    let before = bytes.clone();
    let replies = ops.into_iter().map(|op| bits::bitfield(&mut bytes, op).map_or(Reply::Nil, Reply::Int)).collect();
    // As Redis: stored and notified when a subcommand changed a value or
    // grew (or created) the string.
    if bytes != before {
        store(txn, db, &key, bytes, expiry)?;
        txn.notify(STRING, "setbit", db, &key);
    }
    Ok(Reply::Array(replies))
}
