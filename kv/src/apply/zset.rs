//! Write semantics of the sorted-set commands (layout: `crate::sorted`).

use bytes::Bytes;
use storage::{Family, Reader};

use super::collection::{existing, notify_if_emptied, open, save, Open};
use super::txn::Txn;
use super::{Fail, OpResult};
use crate::command::{PopShape, ZAddFlags};
use crate::error::CommandError;
use crate::notify::class::{GENERIC, ZSET};
use crate::record::KeyType;
use crate::reply::Reply;
use crate::sorted::{self, encode_score, member_key, score_key, Range, RangeSpec, ZSet};

fn located(db: u8, zset: &Open) -> ZSet {
    ZSet { db, version: zset.header.version, len: zset.header.len }
}

/// Sets `member`'s score (adding it if `old` is `None`).
fn set_score(txn: &mut Txn<'_>, db: u8, zset: &mut Open, member: &Bytes, old: Option<f64>, new: f64) {
    let location = located(db, zset);
    match old {
        Some(old) => txn.delete_element(Family::KvScores, score_key(&location, old, member)),
        None => zset.header.len += 1,
    }
    txn.put_element(Family::KvScores, score_key(&location, new, member), Bytes::new());
    txn.put_element(Family::KvElements, member_key(&location, member), encode_score(new));
}

fn remove(txn: &mut Txn<'_>, db: u8, zset: &mut Open, member: &[u8], score: f64) {
    let location = located(db, zset);
    txn.delete_element(Family::KvScores, score_key(&location, score, member));
    txn.delete_element(Family::KvElements, member_key(&location, member));
    zset.header.len -= 1;
}

fn score_of(txn: &Txn<'_>, db: u8, zset: &Open, member: &[u8]) -> Result<Option<f64>, Fail> {
    Ok(sorted::score(txn as &dyn Reader, &located(db, zset), member)?)
}

/// ZADD (and ZINCRBY, as ZADD INCR).
pub(super) fn zadd(txn: &mut Txn<'_>, db: u8, key: Bytes, flags: ZAddFlags, pairs: Vec<(f64, Bytes)>) -> OpResult {
    let mut zset = match existing(txn, db, &key, KeyType::ZSet)? {
        Some(zset) => zset,
        None if flags.xx => return Ok(if flags.incr { Reply::Nil } else { Reply::Int(0) }),
        None => open(txn, db, &key, KeyType::ZSet)?,
    };
    let (mut added, mut changed) = (0, 0);
    let mut incr_result = None;
    for (score, member) in pairs {
        let old = score_of(txn, db, &zset, &member)?;
        let new = if flags.incr { old.unwrap_or(0.0) + score } else { score };
        if new.is_nan() {
            return Err(CommandError::Other("ERR resulting score is not a number (NaN)".into()).into());
        }
        match old {
            None if flags.xx => continue,
            None => {
                set_score(txn, db, &mut zset, &member, None, new);
                added += 1;
            }
            Some(_) if flags.nx => continue,
            Some(old) if (flags.gt && new <= old) || (flags.lt && new >= old) => continue,
            Some(old) => {
                if new != old {
                    set_score(txn, db, &mut zset, &member, Some(old), new);
                    changed += 1;
                }
            }
        }
        incr_result = Some(new);
    }
    save(txn, db, &key, &zset)?;
    if added + changed > 0 {
        txn.notify(ZSET, if flags.incr { "zincr" } else { "zadd" }, db, &key);
    }
    Ok(if flags.incr {
        incr_result.map_or(Reply::Nil, Reply::Double)
    } else {
        Reply::Int(added + if flags.ch { changed } else { 0 })
    })
}

pub(super) fn zrem(txn: &mut Txn<'_>, db: u8, key: Bytes, members: Vec<Bytes>) -> OpResult {
    let Some(mut zset) = existing(txn, db, &key, KeyType::ZSet)? else {
        return Ok(Reply::Int(0));
    };
    let mut removed = 0;
    for member in members {
        if let Some(score) = score_of(txn, db, &zset, &member)? {
            remove(txn, db, &mut zset, &member, score);
            removed += 1;
        }
    }
    save(txn, db, &key, &zset)?;
    if removed > 0 {
        txn.notify(ZSET, "zrem", db, &key);
        notify_if_emptied(txn, db, &key, &zset);
    }
    Ok(Reply::Int(removed))
}

/// ZREMRANGEBYRANK, ZREMRANGEBYSCORE, ZREMRANGEBYLEX.
pub(super) fn zremrange(txn: &mut Txn<'_>, db: u8, key: Bytes, spec: RangeSpec) -> OpResult {
    let Some(mut zset) = existing(txn, db, &key, KeyType::ZSet)? else {
        return Ok(Reply::Int(0));
    };
    let event = match spec {
        RangeSpec::Rank { .. } => "zremrangebyrank",
        RangeSpec::Score { .. } => "zremrangebyscore",
        RangeSpec::Lex { .. } => "zremrangebylex",
    };
    let selected = sorted::range(txn as &dyn Reader, &located(db, &zset), &Range { spec, rev: false, limit: None })?;
    for (member, score) in &selected {
        remove(txn, db, &mut zset, member, *score);
    }
    save(txn, db, &key, &zset)?;
    if !selected.is_empty() {
        txn.notify(ZSET, event, db, &key);
        notify_if_emptied(txn, db, &key, &zset);
    }
    Ok(Reply::Int(selected.len() as i64))
}

/// Removes and returns up to `count` lowest (or, `max`, highest) members.
fn pop_from(
    txn: &mut Txn<'_>,
    db: u8,
    key: &Bytes,
    zset: &mut Open,
    max: bool,
    count: u64,
) -> Result<Vec<(Bytes, f64)>, Fail> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let spec = RangeSpec::Rank { start: 0, stop: count.min(zset.header.len) as i64 - 1 };
    let popped = sorted::range(txn as &dyn Reader, &located(db, zset), &Range { spec, rev: max, limit: None })?;
    for (member, score) in &popped {
        remove(txn, db, zset, member, *score);
    }
    save(txn, db, key, zset)?;
    if !popped.is_empty() {
        txn.notify(ZSET, if max { "zpopmax" } else { "zpopmin" }, db, key);
        notify_if_emptied(txn, db, key, zset);
    }
    Ok(popped)
}

fn pairs(popped: Vec<(Bytes, f64)>) -> Vec<(Reply, Reply)> {
    popped.into_iter().map(|(member, score)| (Reply::Bulk(member), Reply::Double(score))).collect()
}

/// ZPOPMIN, ZPOPMAX: `[member, score]` without a count, pairs with one.
pub(super) fn zpop(txn: &mut Txn<'_>, db: u8, key: Bytes, max: bool, count: Option<u64>) -> OpResult {
    let Some(mut zset) = existing(txn, db, &key, KeyType::ZSet)? else {
        return Ok(Reply::Array(Vec::new()));
    };
    let popped = pop_from(txn, db, &key, &mut zset, max, count.unwrap_or(1))?;
    Ok(match count {
        Some(_) => Reply::Pairs(pairs(popped)),
        None => Reply::Array(pairs(popped).into_iter().flat_map(|(m, s)| [m, s]).collect()),
    })
}

/// ZMPOP / BZMPOP (`[key, [[member, score]…]]`) and BZPOPMIN / BZPOPMAX
/// (`[key, member, score]`) from the first non-empty key; nil array if
/// none.
pub(super) fn zpop_first(
    txn: &mut Txn<'_>,
    db: u8,
    keys: Vec<Bytes>,
    max: bool,
    count: u64,
    shape: PopShape,
) -> OpResult {
    for key in keys {
        let Some(mut zset) = existing(txn, db, &key, KeyType::ZSet)? else {
            continue;
        };
        let popped = pop_from(txn, db, &key, &mut zset, max, count)?;
        let mut reply = vec![Reply::Bulk(key)];
        match shape {
            PopShape::Flat => reply.extend(pairs(popped).into_iter().flat_map(|(m, s)| [m, s])),
            PopShape::Nested => {
                reply.push(Reply::Array(pairs(popped).into_iter().map(|(m, s)| Reply::Array(vec![m, s])).collect()))
            }
        }
        return Ok(Reply::Array(reply));
    }
    Ok(Reply::NilArray)
}

/// Replaces `destination` (of any type) with the sorted set `members`,
/// notifying `event` (or `del` if an empty result removed the key).
fn store(
    txn: &mut Txn<'_>,
    db: u8,
    destination: &Bytes,
    members: &[(Bytes, f64)],
    event: &'static str,
) -> Result<(), Fail> {
    let deleted = txn.delete(db, destination)?;
    let mut zset = open(txn, db, destination, KeyType::ZSet)?;
    for (member, score) in members {
        set_score(txn, db, &mut zset, member, None, *score);
    }
    save(txn, db, destination, &zset)?;
    if !members.is_empty() {
        txn.notify(ZSET, event, db, destination);
    } else if deleted {
        txn.notify(GENERIC, "del", db, destination);
    }
    Ok(())
}

/// ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE (and the geo searches' STORE):
/// `result` (the read path's combination) replaces `destination`;
/// `event` names the command in keyspace notifications.
pub(super) fn zstore(
    txn: &mut Txn<'_>,
    db: u8,
    destination: Bytes,
    result: Vec<(Bytes, f64)>,
    event: &'static str,
) -> OpResult {
    store(txn, db, &destination, &result, event)?;
    Ok(Reply::Int(result.len() as i64))
}

/// ZRANGESTORE.
pub(super) fn zrangestore(txn: &mut Txn<'_>, db: u8, destination: Bytes, source: Bytes, range: Range) -> OpResult {
    let selected = match existing(txn, db, &source, KeyType::ZSet)? {
        Some(zset) => sorted::range(txn as &dyn Reader, &located(db, &zset), &range)?,
        None => {
            txn.key_miss(db, &source);
            Vec::new()
        }
    };
    store(txn, db, &destination, &selected, "zrangestore")?;
    Ok(Reply::Int(selected.len() as i64))
}
