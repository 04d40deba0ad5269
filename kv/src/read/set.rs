//! Read semantics of the set commands.
//!
//! Replies that are sets (SMEMBERS, SINTER, …) are RESP3 sets; members
//! come in byte order.

use std::collections::BTreeSet;

use bytes::Bytes;
use rand::seq::{IndexedRandom, SliceRandom};

use super::hash::ElementScan;
use super::ReadCtx;
use crate::error::{CommandError, Result};
use crate::record::{Collection, KeyType};
use crate::reply::Reply;
use crate::set_algebra::SetAlgebra;

impl ReadCtx<'_> {
    /// Every member of `set`.
    fn members(&self, set: &Collection) -> Result<Vec<Bytes>> {
        Ok(self.elements(set.version)?.into_iter().map(|(member, _)| Bytes::from(member)).collect())
    }

    /// SMEMBERS.
    pub fn smembers(&self, key: &[u8]) -> Result<Reply> {
        self.with_collection(key, KeyType::Set, Reply::Set(Vec::new()), |ctx, set| {
            Ok(Reply::Set(ctx.members(&set)?.into_iter().map(Reply::Bulk).collect()))
        })
    }

    /// SISMEMBER and SMISMEMBER (`many`: an array of flags).
    pub fn sismember(&self, key: &[u8], members: &[Bytes], many: bool) -> Result<Reply> {
        let absent = if many { Reply::Array(vec![Reply::Int(0); members.len()]) } else { Reply::Int(0) };
        self.with_collection(key, KeyType::Set, absent, |ctx, set| {
            let mut flags = Vec::with_capacity(members.len());
            for member in members {
                flags.push(Reply::Int(i64::from(ctx.element(set.version, member)?.is_some())));
            }
            Ok(if many { Reply::Array(flags) } else { flags.pop().unwrap_or(Reply::Int(0)) })
        })
    }

    /// SCARD.
    pub fn scard(&self, key: &[u8]) -> Result<Reply> {
        Ok(match self.collection(key, KeyType::Set)? {
            Err(error) => error.into(),
            Ok(set) => Reply::Int(set.map_or(0, |s| s.len as i64)),
        })
    }

    /// SRANDMEMBER: one member (no count), distinct members (count >= 0)
    /// or members that may repeat (count < 0).
    pub fn srandmember(&self, key: &[u8], count: Option<i64>) -> Result<Reply> {
        let absent = if count.is_some() { Reply::Array(Vec::new()) } else { Reply::Nil };
        self.with_collection(key, KeyType::Set, absent, |ctx, set| {
            let members = ctx.members(&set)?;
            let mut rng = ctx.rng();
            Ok(match count {
                None => members.choose(&mut rng).cloned().map_or(Reply::Nil, Reply::Bulk),
                Some(count) if count >= 0 => {
                    let mut members = members;
                    members.shuffle(&mut rng);
                    members.truncate(count as usize);
                    Reply::Array(members.into_iter().map(Reply::Bulk).collect())
                }
                Some(count) => Reply::Array(
                    (0..count.unsigned_abs())
                        .filter_map(|_| members.choose(&mut rng).cloned())
                        .map(Reply::Bulk)
                        .collect(),
                ),
            })
        })
    }

    /// The members of the sets at `keys` (absent keys are empty), read at
    /// one point in time, or WRONGTYPE if any key holds another type.
    pub(crate) fn sets(&self, keys: &[Bytes]) -> Result<std::result::Result<Vec<BTreeSet<Bytes>>, CommandError>> {
        self.consistent(|ctx| {
            let mut sets = Vec::with_capacity(keys.len());
            for key in keys {
                match ctx.collection(key, KeyType::Set)? {
                    Err(error) => return Ok(Err(error)),
                    Ok(None) => sets.push(BTreeSet::new()),
                    Ok(Some(set)) => sets.push(ctx.members(&set)?.into_iter().collect()),
                }
            }
            Ok(Ok(sets))
        })
    }

    /// SINTER, SUNION, SDIFF.
    pub fn set_algebra(&self, algebra: SetAlgebra, keys: &[Bytes]) -> Result<Reply> {
        Ok(match self.sets(keys)? {
            Err(error) => error.into(),
            Ok(sets) => Reply::Set(algebra.apply(sets).into_iter().map(Reply::Bulk).collect()),
        })
    }

    /// SINTERCARD: the size of the intersection, counting at most `limit`
    /// (0: no limit).
    pub fn sintercard(&self, keys: &[Bytes], limit: u64) -> Result<Reply> {
        Ok(match self.sets(keys)? {
            Err(error) => error.into(),
            Ok(sets) => {
                let size = SetAlgebra::Inter.apply(sets).len() as u64;
                Reply::Int(if limit == 0 { size } else { size.min(limit) } as i64)
            }
        })
    }

    /// SSCAN.
    pub fn sscan(&self, key: &[u8], cursor: u64, args: &ElementScan) -> Result<Reply> {
        let empty = Reply::Array(vec![Reply::bulk("0"), Reply::Array(Vec::new())]);
        self.with_collection(key, KeyType::Set, empty, |ctx, set| {
            ctx.scan_elements(set, cursor, args, |member, _, out| out.push(Reply::Bulk(Bytes::copy_from_slice(member))))
        })
    }
}
