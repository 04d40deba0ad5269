//! Write semantics of the list commands.
//!
//! A list's elements have positions `head .. head + len` (see
//! [`Collection::head`](crate::record::Collection)) and are stored in
//! chunks of consecutive positions ([`crate::list_chunks`]): pushes and pops
//! at either end rewrite one chunk; LINDEX and LSET read or rewrite one;
//! LINSERT and LREM rewrite the list, O(n) as in Redis; LTRIM deletes whole
//! chunks and rewrites at most one at each end.

use bytes::Bytes;
use storage::Family;

use super::collection::{existing, notify_if_emptied, open, save, Open};
use super::txn::Txn;
use super::{Fail, OpResult};
use crate::command::End;
use crate::error::CommandError;
use crate::list_chunks::{self, chunk_key, chunk_of, element_key, Chunk, Slot};
use crate::notify::class::{GENERIC, LIST};
use crate::record::KeyType;
use crate::reply::Reply;

/// The event of a push at `end`.
fn pushed(end: End) -> &'static str {
    match end {
        End::Left => "lpush",
        End::Right => "rpush",
    }
}

/// The event of a pop at `end`.
fn popped(end: End) -> &'static str {
    match end {
        End::Left => "lpop",
        End::Right => "rpop",
    }
}

/// Notifies a pop from `list` at `key` (and `del` if it emptied it).
fn notify_pop(txn: &mut Txn<'_>, db: u8, key: &Bytes, list: &Open, end: End) {
    txn.notify(LIST, popped(end), db, key);
    notify_if_emptied(txn, db, key, list);
}

fn corrupt(list: &Open, what: String) -> Fail {
    Fail::Fatal(crate::error::Error::Corrupt {
        family: "kv_elements",
        reason: format!("list version {}: {what}", list.header.version),
    })
}

/// The stored chunk `number` of `list`; a missing one means corrupt storage.
fn chunk(txn: &Txn<'_>, db: u8, list: &Open, number: u64) -> Result<Chunk, Fail> {
    list_chunks::read_chunk(txn, db, list.header.version, number)?
        .ok_or_else(|| corrupt(list, format!("chunk {number} is missing")))
}

/// Stores chunk `number` of `list`, or deletes it once empty.
fn store(txn: &mut Txn<'_>, db: u8, list: &Open, number: u64, chunk: &Chunk) {
    let key = chunk_key(db, list.header.version, number);
    if chunk.slots.is_empty() {
        txn.delete_element(Family::KvElements, key);
    } else {
        txn.put_element(Family::KvElements, key, chunk.encode());
    }
}

/// `value` as the slot at `position`, writing a big one to its own key.
fn slot(txn: &mut Txn<'_>, db: u8, list: &Open, position: u64, value: Bytes) -> Slot {
    let version = list.header.version;
    list_chunks::slot_for(value, position, |position, value| {
        txn.put_element(Family::KvElements, element_key(db, version, position), value)
    })
}

/// Deletes the own key of `slot` at `position` if it is big.
fn forget(txn: &mut Txn<'_>, db: u8, list: &Open, position: u64, slot: &Slot) {
    if *slot == Slot::Big {
        txn.delete_element(Family::KvElements, element_key(db, list.header.version, position));
    }
}

/// Pushes `values` one after another at `end` of `list`. Each chunk the
/// pushes reach is read and stored once, however many values it takes.
fn push_all(
    txn: &mut Txn<'_>,
    db: u8,
    list: &mut Open,
    end: End,
    values: impl IntoIterator<Item = Bytes>,
) -> Result<(), Fail> {
    let mut open_chunk: Option<(u64, Chunk)> = None;
    for value in values {
        let position = match end {
            End::Left => list.header.head - 1,
            End::Right => list.header.head + list.header.len,
        };
        let number = chunk_of(position);
        let (_, chunk) = match open_chunk.take() {
            Some((open, chunk)) if open == number => open_chunk.insert((open, chunk)),
            previous => {
                if let Some((open, chunk)) = previous {
                    store(txn, db, list, open, &chunk);
                }
                let stored = list_chunks::read_chunk(txn, db, list.header.version, number)?;
                open_chunk.insert((number, stored.unwrap_or(Chunk { first: position, slots: Vec::new() })))
            }
        };
        let slot = slot(txn, db, list, position, value);
        match end {
            End::Left if chunk.slots.is_empty() || chunk.first == position + 1 => {
                chunk.first = position;
                chunk.slots.insert(0, slot);
                list.header.head -= 1;
            }
            End::Right if chunk.end() == position => chunk.slots.push(slot),
            _ => return Err(corrupt(list, format!("chunk {number} does not end next to position {position}"))),
        }
        list.header.len += 1;
    }
    if let Some((number, chunk)) = open_chunk {
        store(txn, db, list, number, &chunk);
    }
    Ok(())
}

fn pop_one(txn: &mut Txn<'_>, db: u8, list: &mut Open, end: End) -> Result<Bytes, Fail> {
    let position = match end {
        End::Left => list.header.head,
        End::Right => list.header.head + list.header.len - 1,
    };
    let number = chunk_of(position);
    let mut chunk = chunk(txn, db, list, number)?;
    let slot = match end {
        End::Left if chunk.first == position && !chunk.slots.is_empty() => {
            chunk.first += 1;
            chunk.slots.remove(0)
        }
        End::Right if chunk.end() == position + 1 && !chunk.slots.is_empty() => chunk.slots.pop().expect("not empty"),
        _ => return Err(corrupt(list, format!("chunk {number} does not hold position {position}"))),
    };
    let value = list_chunks::slot_value(txn, db, list.header.version, position, &slot)?;
    forget(txn, db, list, position, &slot);
    store(txn, db, list, number, &chunk);
    list.header.len -= 1;
    if end == End::Left {
        list.header.head += 1;
    }
    Ok(value)
}

/// The elements of a list, in order.
fn all_elements(txn: &Txn<'_>, db: u8, list: &Open) -> Result<Vec<Bytes>, Fail> {
    let mut values = Vec::with_capacity(list.header.len as usize);
    if list.header.len > 0 {
        let (head, last) = (list.header.head, list.header.head + list.header.len - 1);
        list_chunks::visit_range(txn, db, list.header.version, head, last, |value| {
            values.push(Bytes::copy_from_slice(value));
            true
        })?;
    }
    Ok(values)
}

/// Removes `count` elements from `end` of `list`, whole chunks at a time.
fn drop_end(txn: &mut Txn<'_>, db: u8, list: &mut Open, end: End, mut count: u64) -> Result<(), Fail> {
    while count > 0 {
        let position = match end {
            End::Left => list.header.head,
            End::Right => list.header.head + list.header.len - 1,
        };
        let number = chunk_of(position);
        let mut chunk = chunk(txn, db, list, number)?;
        let take = count.min(chunk.slots.len() as u64) as usize;
        let (first, removed): (u64, Vec<Slot>) = match end {
            End::Left => {
                let first = chunk.first;
                chunk.first += take as u64;
                (first, chunk.slots.drain(..take).collect())
            }
            End::Right => {
                let keep = chunk.slots.len() - take;
                (chunk.first + keep as u64, chunk.slots.drain(keep..).collect())
            }
        };
        for (i, slot) in removed.iter().enumerate() {
            forget(txn, db, list, first + i as u64, slot);
        }
        store(txn, db, list, number, &chunk);
        list.header.len -= take as u64;
        if end == End::Left {
            list.header.head += take as u64;
        }
        count -= take as u64;
    }
    Ok(())
}

/// Replaces the elements of `list` with `values` (same head).
fn rewrite(txn: &mut Txn<'_>, db: u8, list: &mut Open, values: Vec<Bytes>) -> Result<(), Fail> {
    let len = list.header.len;
    drop_end(txn, db, list, End::Right, len)?;
    push_all(txn, db, list, End::Right, values)
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
    push_all(txn, db, &mut list, end, values)?;
    save(txn, db, &key, &list)?;
    txn.notify(LIST, pushed(end), db, &key);
    Ok(Reply::Int(list.header.len as i64))
}

/// LPOP/RPOP: one element (bulk or nil), or up to `count` (array, nil
/// array if the key is absent).
pub(super) fn pop(txn: &mut Txn<'_>, db: u8, key: Bytes, end: End, count: Option<u64>) -> OpResult {
    let Some(mut list) = existing(txn, db, &key, KeyType::List)? else {
        return Ok(if count.is_some() { Reply::NilArray } else { Reply::Nil });
    };
    let (reply, n) = match count {
        None => (Reply::Bulk(pop_one(txn, db, &mut list, end)?), 1),
        Some(count) => {
            let n = count.min(list.header.len);
            let mut values = Vec::with_capacity(n as usize);
            for _ in 0..n {
                values.push(Reply::Bulk(pop_one(txn, db, &mut list, end)?));
            }
            (Reply::Array(values), n)
        }
    };
    save(txn, db, &key, &list)?;
    if n > 0 {
        notify_pop(txn, db, &key, &list, end);
    }
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
        let mut values = Vec::with_capacity(n as usize);
        for _ in 0..n {
            values.push(Reply::Bulk(pop_one(txn, db, &mut list, end)?));
        }
        save(txn, db, &key, &list)?;
        if n > 0 {
            notify_pop(txn, db, &key, &list, end);
        }
        let elements = if single { values.pop().unwrap_or(Reply::Nil) } else { Reply::Array(values) };
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
        push_all(txn, db, &mut source, to_end, [value.clone()])?;
        save(txn, db, &from, &source)?;
    } else {
        save(txn, db, &from, &source)?;
        let mut destination = open(txn, db, &to, KeyType::List)?;
        push_all(txn, db, &mut destination, to_end, [value.clone()])?;
        save(txn, db, &to, &destination)?;
    }
    // Redis's order: the push, then the pop.
    txn.notify(LIST, pushed(to_end), db, &to);
    notify_pop(txn, db, &from, &source, from_end);
    Ok(Reply::Bulk(value))
}

/// SORT … STORE: the sorted (projected) elements replace `destination`
/// as a list (nil projections become empty strings); an empty result
/// deletes it.
pub(super) fn sort_store(
    txn: &mut Txn<'_>,
    cursors: &crate::cursors::CursorTable,
    db: u8,
    key: Bytes,
    options: crate::read::SortOptions,
    destination: Bytes,
) -> OpResult {
    let values = super::reading(txn, cursors, db).sorted_elements(&key, &options, true)??;
    let deleted = txn.delete(db, &destination)?;
    let mut list = open(txn, db, &destination, KeyType::List)?;
    let count = values.len() as i64;
    push_all(txn, db, &mut list, End::Right, values.into_iter().map(Option::unwrap_or_default))?;
    save(txn, db, &destination, &list)?;
    if count > 0 {
        txn.notify(LIST, "sortstore", db, &destination);
    } else if deleted {
        txn.notify(GENERIC, "del", db, &destination);
    }
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
    let number = chunk_of(position);
    let mut chunk = chunk(txn, db, &list, number)?;
    let Some(offset) = position.checked_sub(chunk.first).filter(|offset| *offset < chunk.slots.len() as u64) else {
        return Err(corrupt(&list, format!("chunk {number} does not hold position {position}")));
    };
    let new = slot(txn, db, &list, position, value);
    let old = std::mem::replace(&mut chunk.slots[offset as usize], new.clone());
    if new != Slot::Big {
        forget(txn, db, &list, position, &old);
    }
    store(txn, db, &list, number, &chunk);
    save(txn, db, &key, &list)?;
    txn.notify(LIST, "lset", db, &key);
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
    rewrite(txn, db, &mut list, values)?;
    save(txn, db, &key, &list)?;
    txn.notify(LIST, "linsert", db, &key);
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
        rewrite(txn, db, &mut list, values)?;
        save(txn, db, &key, &list)?;
        txn.notify(LIST, "lrem", db, &key);
        notify_if_emptied(txn, db, &key, &list);
    }
    Ok(Reply::Int(removed as i64))
}

pub(super) fn ltrim(txn: &mut Txn<'_>, db: u8, key: Bytes, start: i64, stop: i64) -> OpResult {
    let Some(mut list) = existing(txn, db, &key, KeyType::List)? else {
        return Ok(Reply::ok());
    };
    let len = list.header.len;
    let (keep_from, keep_to) = match crate::number::clamp_range(start, stop, len as i64) {
        Some((from, to)) => (from as u64, to as u64 + 1),
        None => (0, 0),
    };
    let keep_to = keep_to.max(keep_from);
    drop_end(txn, db, &mut list, End::Right, len - keep_to)?;
    drop_end(txn, db, &mut list, End::Left, keep_from)?;
    save(txn, db, &key, &list)?;
    txn.notify(LIST, "ltrim", db, &key);
    notify_if_emptied(txn, db, &key, &list);
    Ok(Reply::ok())
}
