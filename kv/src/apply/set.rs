//! Write semantics of the set commands.
//!
//! A set's members are `kv_elements` entries `[db][version][member] → ""`.
//! Random choices (SPOP) come from a seed the proposing node drew and the
//! log carries, so every replica removes the same members.

use bytes::Bytes;
use rand::seq::IteratorRandom;
use rand::SeedableRng;
use storage::Family;

use super::collection::{element, elements, existing, notify_if_emptied, open, remove_subs, save};
use super::txn::Txn;
use super::OpResult;
use crate::cursors::CursorTable;
use crate::notify::class::{GENERIC, SET};
use crate::record::KeyType;
use crate::reply::Reply;
use crate::set_algebra::SetAlgebra;

pub(super) fn sadd(txn: &mut Txn<'_>, db: u8, key: Bytes, members: Vec<Bytes>) -> OpResult {
    let mut set = open(txn, db, &key, KeyType::Set)?;
    let mut added = 0;
    for member in members {
        let element_key = set.element_key(db, &member);
        if element(txn, &element_key)?.is_none() {
            txn.put_element(Family::KvElements, element_key, Bytes::new());
            added += 1;
        }
    }
    set.header.len += added;
    if added > 0 {
        save(txn, db, &key, &set)?;
        txn.notify(SET, "sadd", db, &key);
    }
    Ok(Reply::Int(added as i64))
}

pub(super) fn srem(txn: &mut Txn<'_>, db: u8, key: Bytes, members: Vec<Bytes>) -> OpResult {
    remove_subs(txn, db, &key, KeyType::Set, members, (SET, "srem"))
}

/// SPOP: one member (bulk or nil), or up to `count` distinct ones (a set).
pub(super) fn spop(txn: &mut Txn<'_>, db: u8, key: Bytes, count: Option<u64>, seed: u64) -> OpResult {
    let Some(mut set) = existing(txn, db, &key, KeyType::Set)? else {
        return Ok(if count.is_some() { Reply::Set(Vec::new()) } else { Reply::Nil });
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let members = elements(txn, db, &set)?.into_iter().map(|(member, _)| member);
    let chosen = members.choose_multiple(&mut rng, count.unwrap_or(1) as usize);
    for member in &chosen {
        txn.delete_element(Family::KvElements, set.element_key(db, member));
    }
    set.header.len -= chosen.len() as u64;
    save(txn, db, &key, &set)?;
    if !chosen.is_empty() {
        txn.notify(SET, "spop", db, &key);
        notify_if_emptied(txn, db, &key, &set);
    }
    Ok(match count {
        None => chosen.into_iter().next().map_or(Reply::Nil, Reply::Bulk),
        Some(_) => Reply::Set(chosen.into_iter().map(Reply::Bulk).collect()),
    })
}

pub(super) fn smove(txn: &mut Txn<'_>, db: u8, from: Bytes, to: Bytes, member: Bytes) -> OpResult {
    // As Redis: an absent source answers 0 before the destination's type
    // is checked.
    let Some(mut source) = existing(txn, db, &from, KeyType::Set)? else {
        return Ok(Reply::Int(0));
    };
    let destination = existing(txn, db, &to, KeyType::Set)?;
    let source_key = source.element_key(db, &member);
    if element(txn, &source_key)?.is_none() {
        return Ok(Reply::Int(0));
    }
    if from == to {
        return Ok(Reply::Int(1));
    }
    txn.delete_element(Family::KvElements, source_key);
    source.header.len -= 1;
    save(txn, db, &from, &source)?;
    txn.notify(SET, "srem", db, &from);
    notify_if_emptied(txn, db, &from, &source);
    let mut destination = match destination {
        Some(destination) => destination,
        None => open(txn, db, &to, KeyType::Set)?,
    };
    let destination_key = destination.element_key(db, &member);
    if element(txn, &destination_key)?.is_none() {
        txn.put_element(Family::KvElements, destination_key, Bytes::new());
        destination.header.len += 1;
        save(txn, db, &to, &destination)?;
        txn.notify(SET, "sadd", db, &to);
    }
    Ok(Reply::Int(1))
}

/// SINTERSTORE, SUNIONSTORE, SDIFFSTORE: replaces `destination` (of any
/// type) with the result; an empty result deletes it.
pub(super) fn store(
    txn: &mut Txn<'_>,
    cursors: &CursorTable,
    db: u8,
    algebra: SetAlgebra,
    destination: Bytes,
    keys: Vec<Bytes>,
) -> OpResult {
    let result = algebra.apply(super::reading(txn, cursors, db).sets(&keys)??);
    let deleted = txn.delete(db, &destination)?;
    let mut set = open(txn, db, &destination, KeyType::Set)?;
    for member in &result {
        txn.put_element(Family::KvElements, set.element_key(db, member), Bytes::new());
    }
    set.header.len = result.len() as u64;
    save(txn, db, &destination, &set)?;
    match algebra {
        _ if result.is_empty() && deleted => txn.notify(GENERIC, "del", db, &destination),
        _ if result.is_empty() => {}
        SetAlgebra::Inter => txn.notify(SET, "sinterstore", db, &destination),
        SetAlgebra::Union => txn.notify(SET, "sunionstore", db, &destination),
        SetAlgebra::Diff => txn.notify(SET, "sdiffstore", db, &destination),
    }
    Ok(Reply::Int(result.len() as i64))
}
