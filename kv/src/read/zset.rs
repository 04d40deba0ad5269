//! Read semantics of the sorted-set commands (layout: `crate::sorted`).

use bytes::Bytes;
use rand::seq::{IndexedRandom, SliceRandom};

use super::hash::ElementScan;
use super::ReadCtx;
use crate::error::{CommandError, Result};
use crate::record::KeyType;
use crate::reply::Reply;
use crate::sorted::{self, format_score, Aggregate, Combine, Range, RangeSpec, ZSet};

/// `(member, score)` pairs as replies: pairs WITHSCORES, else members.
fn scored(elements: Vec<(Bytes, f64)>, with_scores: bool) -> Reply {
    if with_scores {
        Reply::Pairs(elements.into_iter().map(|(m, s)| (Reply::Bulk(m), Reply::Double(s))).collect())
    } else {
        Reply::Array(elements.into_iter().map(|(m, _)| Reply::Bulk(m)).collect())
    }
}

impl ReadCtx<'_> {
    /// Runs `read` on the sorted set at `key` at one point in time.
    fn with_zset(
        &self,
        key: &[u8],
        absent: Reply,
        read: impl FnOnce(&ReadCtx<'_>, ZSet) -> Result<Reply>,
    ) -> Result<Reply> {
        self.with_collection(key, KeyType::ZSet, absent, |ctx, zset| {
            read(ctx, ZSet { db: ctx.db, version: zset.version, len: zset.len })
        })
    }

    /// ZSCORE and ZMSCORE (`many`).
    pub fn zscore(&self, key: &[u8], members: &[Bytes], many: bool) -> Result<Reply> {
        let absent = if many { Reply::Array(vec![Reply::Nil; members.len()]) } else { Reply::Nil };
        self.with_zset(key, absent, |ctx, zset| {
            let mut scores = Vec::with_capacity(members.len());
            for member in members {
                scores.push(sorted::score(ctx.reader, &zset, member)?.map_or(Reply::Nil, Reply::Double));
            }
            Ok(if many { Reply::Array(scores) } else { scores.pop().unwrap_or(Reply::Nil) })
        })
    }

    /// ZCARD.
    pub fn zcard(&self, key: &[u8]) -> Result<Reply> {
        Ok(match self.collection(key, KeyType::ZSet)? {
            Err(error) => error.into(),
            Ok(zset) => Reply::Int(zset.map_or(0, |z| z.len as i64)),
        })
    }

    /// ZCOUNT and ZLEXCOUNT: the size of a score or lex range.
    pub fn zcount(&self, key: &[u8], spec: &RangeSpec) -> Result<Reply> {
        self.with_zset(key, Reply::Int(0), |ctx, zset| {
            let range = Range { spec: spec.clone(), rev: false, limit: None };
            Ok(Reply::Int(sorted::range(ctx.reader, &zset, &range)?.len() as i64))
        })
    }

    /// ZRANGE and its older forms.
    pub fn zrange(&self, key: &[u8], range: &Range, with_scores: bool) -> Result<Reply> {
        self.with_zset(key, Reply::Array(Vec::new()), |ctx, zset| {
            Ok(scored(sorted::range(ctx.reader, &zset, range)?, with_scores))
        })
    }

    /// ZRANK and ZREVRANK.
    pub fn zrank(&self, key: &[u8], member: &[u8], rev: bool) -> Result<Reply> {
        self.with_zset(key, Reply::Nil, |ctx, zset| {
            Ok(sorted::rank(ctx.reader, &zset, member, rev)?.map_or(Reply::Nil, |(rank, _)| Reply::Int(rank as i64)))
        })
    }

    /// The members and scores of the set or sorted set at `key` (set
    /// members score 1), or WRONGTYPE.
    fn scored_input(&self, key: &[u8]) -> Result<std::result::Result<Vec<(Bytes, f64)>, CommandError>> {
        Ok(match self.lookup(key)? {
            None => Ok(Vec::new()),
            Some(record) if record.kind == KeyType::Set => {
                let members = self.elements(record.header()?.version)?;
                Ok(members.into_iter().map(|(member, _)| (Bytes::from(member), 1.0)).collect())
            }
            Some(record) if record.kind == KeyType::ZSet => {
                let header = record.header()?;
                Ok(sorted::all(self.reader, &ZSet { db: self.db, version: header.version, len: header.len })?)
            }
            Some(_) => Err(CommandError::WrongType),
        })
    }

    /// The weighted inputs of ZUNION/ZINTER/ZDIFF read at one point in
    /// time, combined.
    pub(crate) fn combined(
        &self,
        keys: &[Bytes],
        weights: &[f64],
        combine: Combine,
        aggregate: Aggregate,
    ) -> Result<std::result::Result<Vec<(Bytes, f64)>, CommandError>> {
        self.consistent(|ctx| {
            let mut inputs = Vec::with_capacity(keys.len());
            for (i, key) in keys.iter().enumerate() {
                let weight = weights.get(i).copied().unwrap_or(1.0);
                match ctx.scored_input(key)? {
                    Err(error) => return Ok(Err(error)),
                    Ok(input) => {
                        inputs.push(input.into_iter().map(|(m, s)| (m, sorted::weighted(s, weight))).collect())
                    }
                }
            }
            Ok(Ok(sorted::combine(inputs, combine, aggregate)))
        })
    }

    /// ZUNION, ZINTER, ZDIFF.
    pub fn zcombine(
        &self,
        keys: &[Bytes],
        weights: &[f64],
        combine: Combine,
        aggregate: Aggregate,
        with_scores: bool,
    ) -> Result<Reply> {
        Ok(match self.combined(keys, weights, combine, aggregate)? {
            Err(error) => error.into(),
            Ok(result) => scored(result, with_scores),
        })
    }

    /// ZINTERCARD.
    pub fn zintercard(&self, keys: &[Bytes], limit: u64) -> Result<Reply> {
        Ok(match self.combined(keys, &[], Combine::Inter, Aggregate::Sum)? {
            Err(error) => error.into(),
            Ok(result) => {
                let size = result.len() as u64;
                Reply::Int(if limit == 0 { size } else { size.min(limit) } as i64)
            }
        })
    }

    /// ZRANDMEMBER, as HRANDFIELD counts.
    pub fn zrandmember(&self, key: &[u8], count: Option<i64>, with_scores: bool) -> Result<Reply> {
        let absent = if count.is_some() { Reply::Array(Vec::new()) } else { Reply::Nil };
        self.with_zset(key, absent, |ctx, zset| {
            let mut all = sorted::all(ctx.reader, &zset)?;
            let mut rng = ctx.rng();
            Ok(match count {
                None => all.choose(&mut rng).map_or(Reply::Nil, |(member, _)| Reply::Bulk(member.clone())),
                Some(count) if count >= 0 => {
                    all.shuffle(&mut rng);
                    all.truncate(count as usize);
                    scored(all, with_scores)
                }
                Some(count) => {
                    let chosen = (0..count.unsigned_abs()).filter_map(|_| all.choose(&mut rng).cloned()).collect();
                    scored(chosen, with_scores)
                }
            })
        })
    }

    /// ZSCAN: members with their scores as `%.17g` strings.
    pub fn zscan(&self, key: &[u8], cursor: u64, args: &ElementScan) -> Result<Reply> {
        let empty = Reply::Array(vec![Reply::bulk("0"), Reply::Array(Vec::new())]);
        self.consistent(|ctx| match ctx.collection(key, KeyType::ZSet)? {
            Err(error) => Ok(error.into()),
            Ok(None) => Ok(empty),
            Ok(Some(zset)) => ctx.scan_elements(zset, cursor, args, |member, score, out| {
                let score =
                    <[u8; 8]>::try_from(score).map(|b| f64::from_bits(u64::from_be_bytes(b))).unwrap_or(f64::NAN);
                out.push(Reply::Bulk(Bytes::copy_from_slice(member)));
                out.push(Reply::bulk(format_score(score)));
            }),
        })
    }
}
