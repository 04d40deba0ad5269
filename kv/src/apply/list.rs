//! Write semantics of the list commands.
//!
//! A list's elements are `kv_elements` entries `[db][version][position]`
//! with `position` a `u64` big-endian in `head .. head + len` (see
//! [`Collection::head`](crate::record::Collection)): pushes and pops at
//! either end, LINDEX and LSET are O(1); LINSERT and LREM rewrite the
//! positions after the change, O(n) as in Redis.

use bytes::Bytes;
use storage::Family;

use super::collection::{element, existing, open, save, Open};
use super::txn::Txn;
use super::{Fail, OpResult};
use crate::command::End;
use crate::error::CommandError;
use crate::record::KeyType;
use crate::reply::Reply;

fn position_key(db: u8, list: &Open, position: u64) -> Vec<u8> {
    list.element_key(db, &position.to_be_bytes())
}

/// The element at `position`; a missing one means corrupt storage.
fn element_at(txn: &Txn<'_>, db: u8, list: &Open, position: u64) -> Result<Bytes, Fail> {
    match element(txn, &position_key(db, list, position))? {
        Some(value) => Ok(Bytes::from(value)),
        None => Err(Fail::Fatal(crate::error::Error::Corrupt {
            family: "kv_elements",
            reason: format!("list version {} has no element at position {position}", list.header.version),
        })),
    }
}

fn push_one(txn: &mut Txn<'_>, db: u8, list: &mut Open, end: End, value: Bytes) {
    let position = match end {
        End::Left => {
            list.header.head -= 1;
            list.header.head
        }
        End::Right => list.header.head + list.header.len,
    };
    list.header.len += 1;
    txn.put_element(Family::KvElements, position_key(db, list, position), value);
}

fn pop_one(txn: &mut Txn<'_>, db: u8, list: &mut Open, end: End) -> Result<Bytes, Fail> {
    let position = match end {
        End::Left => list.header.head,
        End::Right => list.header.head + list.header.len - 1,
    };
    let value = element_at(txn, db, list, position)?;
    txn.delete_element(Family::KvElements, position_key(db, list, position));
    list.header.len -= 1;
    if end == End::Left {
        list.header.head += 1;
    }
    Ok(value)
}

/// The elements of a list, in order.
fn all_elements(txn: &Txn<'_>, db: u8, list: &Open) -> Result<Vec<Bytes>, Fail> {
    (0..list.header.len).map(|i| element_at(txn, db, list, list.header.head + i)).collect()
}

/// Replaces the elements of `list` with `values` (same head), deleting
/// positions past the new end.
fn rewrite(txn: &mut Txn<'_>, db: u8, list: &mut Open, values: Vec<Bytes>) {
    let old_len = list.header.len;
    list.header.len = values.len() as u64;
    for (i, value) in values.into_iter().enumerate() {
        txn.put_element(Family::KvElements, position_key(db, list, list.header.head + i as u64), value);
    }
    for i in list.header.len..old_len {
        txn.delete_element(Family::KvElements, position_key(db, list, list.header.head + i));
    }
}

/// LPUSH, RPUSH, and LPUSHX/RPUSHX when `only_if_exists`.
pub(super) fn push(
    txn: &mut Txn<'_>,
    db: u8,
    key: Bytes,
    values: Vec<Bytes>,
    end: End,
    only_if_exists: bool,
) -> OpResult {
    let mut list = match only_if_exists {
        true => match existing(txn, db, &key, KeyType::List)? {
            Some(list) => list,
            None => return Ok(Reply::Int(0)),
        },
        false => open(txn, db, &key, KeyType::List)?,
    };
    for value in values {
        push_one(txn, db, &mut list, end, value);
    }
    save(txn, db, &key, &list)?;
    Ok(Reply::Int(list.header.len as i64))
}

/// LPOP/RPOP: one element (bulk or nil), or up to `count` (array, nil
/// array if the key is absent).
pub(super) fn pop(txn: &mut Txn<'_>, db: u8, key: Bytes, end: End, count: Option<u64>) -> OpResult {
    let Some(mut list) = existing(txn, db, &key, KeyType::List)? else {
        return Ok(if count.is_some() { Reply::NilArray } else { Reply::Nil });
    };
    let reply = match count {
        None => Reply::Bulk(pop_one(txn, db, &mut list, end)?),
        Some(count) => {
            let n = count.min(list.header.len);
            let mut popped = Vec::with_capacity(n as usize);
            for _ in 0..n {
                popped.push(Reply::Bulk(pop_one(txn, db, &mut list, end)?));
            }
            Reply::Array(popped)
        }
    };
    save(txn, db, &key, &list)?;
    Ok(reply)
}

/// LMPOP / BLMPOP: from the first non-empty list of `keys`,
/// `[key, [elements]]`; BLPOP / BRPOP (`single`): `[key, element]`. Nil
/// array if every list is empty.
pub(super) fn pop_first(txn: &mut Txn<'_>, db: u8, keys: Vec<Bytes>, end: End, count: u64, single: bool) -> OpResult {
    for key in keys {
        let Some(mut list) = existing(txn, db, &key, KeyType::List)? else {
            continue;
        };
        let n = count.min(list.header.len);
        let mut popped = Vec::with_capacity(n as usize);
        for _ in 0..n {
            popped.push(Reply::Bulk(pop_one(txn, db, &mut list, end)?));
        }
        save(txn, db, &key, &list)?;
        let elements = if single { popped.pop().unwrap_or(Reply::Nil) } else { Reply::Array(popped) };
        return Ok(Reply::Array(vec![Reply::Bulk(key), elements]));
    }
    Ok(Reply::NilArray)
}

/// LMOVE / RPOPLPUSH (and their blocking forms): pops from `from`, pushes
/// to `to` (possibly the same list), answers the element or nil.
pub(super) fn lmove(txn: &mut Txn<'_>, db: u8, from: Bytes, to: Bytes, from_end: End, to_end: End) -> OpResult {
    let Some(mut source) = existing(txn, db, &from, KeyType::List)? else {
        return Ok(Reply::Nil);
    };
    if from != to {
        // Check the destination's type before changing anything.
        existing(txn, db, &to, KeyType::List)?;
    }
    let value = pop_one(txn, db, &mut source, from_end)?;
    if from == to {
        push_one(txn, db, &mut source, to_end, value.clone());
        save(txn, db, &from, &source)?;
    } else {
        save(txn, db, &from, &source)?;
        let mut destination = open(txn, db, &to, KeyType::List)?;
        push_one(txn, db, &mut destination, to_end, value.clone());
        save(txn, db, &to, &destination)?;
    }
    Ok(Reply::Bulk(value))
}

/// SORT … STORE: the sorted (projected) elements replace `destination`
/// as a list (nil projections become empty strings); an empty result
/// deletes it.
pub(super) fn sort_store(
    txn: &mut Txn<'_>,
    cursors: &crate::service::CursorTable,
    db: u8,
    key: Bytes,
    options: crate::read::SortOptions,
    destination: Bytes,
) -> OpResult {
    let values = super::reading(txn, cursors, db).sorted_elements(&key, &options)??;
    txn.delete(db, &destination)?;
    let mut list = open(txn, db, &destination, KeyType::List)?;
    let count = values.len() as i64;
    for value in values {
        push_one(txn, db, &mut list, End::Right, value.unwrap_or_default());
    }
    save(txn, db, &destination, &list)?;
    Ok(Reply::Int(count))
}

/// The position of list index `index` (negative counts from the end).
fn index_position(list: &Open, index: i64) -> Option<u64> {
    let len = list.header.len as i64;
    let index = if index < 0 { len + index } else { index };
    (0..len).contains(&index).then(|| list.header.head + index as u64)
}

pub(super) fn lset(txn: &mut Txn<'_>, db: u8, key: Bytes, index: i64, value: Bytes) -> OpResult {
    let Some(list) = existing(txn, db, &key, KeyType::List)? else {
        return Err(CommandError::NoSuchKey.into());
    };
    let Some(position) = index_position(&list, index) else {
        return Err(CommandError::Other("ERR index out of range".into()).into());
    };
    txn.put_element(Family::KvElements, position_key(db, &list, position), value);
    save(txn, db, &key, &list)?;
    Ok(Reply::ok())
}

pub(super) fn linsert(txn: &mut Txn<'_>, db: u8, key: Bytes, before: bool, pivot: Bytes, value: Bytes) -> OpResult {
    let Some(mut list) = existing(txn, db, &key, KeyType::List)? else {
        return Ok(Reply::Int(0));
    };
    let mut values = all_elements(txn, db, &list)?;
    let Some(at) = values.iter().position(|v| *v == pivot) else {
        return Ok(Reply::Int(-1));
    };
    values.insert(if before { at } else { at + 1 }, value);
    rewrite(txn, db, &mut list, values);
    save(txn, db, &key, &list)?;
    Ok(Reply::Int(list.header.len as i64))
}

/// LREM: removes `count` occurrences from the head (count > 0), from the
/// tail (count < 0) or all (0).
pub(super) fn lrem(txn: &mut Txn<'_>, db: u8, key: Bytes, count: i64, value: Bytes) -> OpResult {
    let Some(mut list) = existing(txn, db, &key, KeyType::List)? else {
        return Ok(Reply::Int(0));
    };
    let mut values = all_elements(txn, db, &list)?;
    let limit = if count == 0 { usize::MAX } else { count.unsigned_abs() as usize };
    let mut removed = 0;
    let mut keep = vec![true; values.len()];
    let order: Box<dyn Iterator<Item = usize>> =
        if count < 0 { Box::new((0..values.len()).rev()) } else { Box::new(0..values.len()) };
    for i in order {
        if removed == limit {
            break;
        }
        if values[i] == value {
            keep[i] = false;
            removed += 1;
        }
    }
    if removed > 0 {
        let mut flags = keep.into_iter();
        values.retain(|_| flags.next().unwrap_or(true));
        rewrite(txn, db, &mut list, values);
        save(txn, db, &key, &list)?;
    }
    Ok(Reply::Int(removed as i64))
}

pub(super) fn ltrim(txn: &mut Txn<'_>, db: u8, key: Bytes, start: i64, stop: i64) -> OpResult {
    let Some(mut list) = existing(txn, db, &key, KeyType::List)? else {
        return Ok(Reply::ok());
    };
    let len = list.header.len as i64;
    let (keep_from, keep_to) = match crate::read::clamp_range(start, stop, len) {
        Some((from, to)) => (from as u64, to as u64 + 1),
        None => (0, 0),
    };
    let head = list.header.head;
    for i in (0..keep_from).chain(keep_to.max(keep_from)..list.header.len) {
        txn.delete_element(Family::KvElements, position_key(db, &list, head + i));
    }
    list.header.head = head + keep_from;
    list.header.len = keep_to.saturating_sub(keep_from);
    save(txn, db, &key, &list)?;
    Ok(Reply::ok())
}
