//! Read semantics of the hash commands.

use bytes::Bytes;
use rand::seq::{IndexedRandom, SliceRandom};
use serde::{Deserialize, Serialize};

use super::collection::SCAN_ALL_UP_TO;
use super::ReadCtx;
use crate::error::Result;
use crate::glob;
use crate::record::{Collection, KeyType};
use crate::reply::Reply;

/// The arguments of HSCAN, SSCAN and ZSCAN after the key and cursor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ElementScan {
    pub pattern: Option<Bytes>,
    /// How many elements to examine (a hint); default 10.
    pub count: Option<usize>,
}

impl ReadCtx<'_> {
    /// HGET.
    pub fn hget(&self, key: &[u8], field: &[u8]) -> Result<Reply> {
        self.with_collection(key, KeyType::Hash, Reply::Nil, |ctx, hash| {
            Ok(Reply::bulk_or_nil(ctx.element(hash.version, field)?.map(Bytes::from)))
        })
    }

    /// HMGET.
    pub fn hmget(&self, key: &[u8], fields: &[Bytes]) -> Result<Reply> {
        let absent = Reply::Array(vec![Reply::Nil; fields.len()]);
        self.with_collection(key, KeyType::Hash, absent, |ctx, hash| {
            let mut values = Vec::with_capacity(fields.len());
            for field in fields {
                values.push(Reply::bulk_or_nil(ctx.element(hash.version, field)?.map(Bytes::from)));
            }
            Ok(Reply::Array(values))
        })
    }

    /// HGETALL (a map), HKEYS, HVALS.
    pub fn hgetall(&self, key: &[u8], part: HashPart) -> Result<Reply> {
        let absent = if part == HashPart::Both { Reply::Map(Vec::new()) } else { Reply::Array(Vec::new()) };
        self.with_collection(key, KeyType::Hash, absent, |ctx, hash| {
            let elements = ctx.elements(hash.version)?.into_iter();
            let bulk = |bytes: Vec<u8>| Reply::Bulk(Bytes::from(bytes));
            Ok(match part {
                HashPart::Both => Reply::Map(elements.map(|(f, v)| (bulk(f), bulk(v))).collect()),
                HashPart::Fields => Reply::Array(elements.map(|(f, _)| bulk(f)).collect()),
                HashPart::Values => Reply::Array(elements.map(|(_, v)| bulk(v)).collect()),
            })
        })
    }

    /// HEXISTS.
    pub fn hexists(&self, key: &[u8], field: &[u8]) -> Result<Reply> {
        self.with_collection(key, KeyType::Hash, Reply::Int(0), |ctx, hash| {
            Ok(Reply::Int(i64::from(ctx.element(hash.version, field)?.is_some())))
        })
    }

    /// HLEN.
    pub fn hlen(&self, key: &[u8]) -> Result<Reply> {
        Ok(match self.collection(key, KeyType::Hash)? {
            Err(error) => error.into(),
            Ok(hash) => Reply::Int(hash.map_or(0, |h| h.len as i64)),
        })
    }

    /// HSTRLEN.
    pub fn hstrlen(&self, key: &[u8], field: &[u8]) -> Result<Reply> {
        self.with_collection(key, KeyType::Hash, Reply::Int(0), |ctx, hash| {
            Ok(Reply::Int(ctx.element(hash.version, field)?.map_or(0, |v| v.len() as i64)))
        })
    }

    /// HRANDFIELD: one field (no count), distinct fields (count >= 0), or
    /// fields that may repeat (count < 0), with their values if asked.
    pub fn hrandfield(&self, key: &[u8], count: Option<i64>, with_values: bool) -> Result<Reply> {
        let absent = if count.is_some() { Reply::Array(Vec::new()) } else { Reply::Nil };
        self.with_collection(key, KeyType::Hash, absent, |ctx, hash| {
            let elements = ctx.elements(hash.version)?;
            let mut rng = ctx.rng();
            let bulk = |bytes: &Vec<u8>| Reply::Bulk(Bytes::copy_from_slice(bytes));
            let Some(count) = count else {
                return Ok(elements.choose(&mut rng).map_or(Reply::Nil, |(field, _)| bulk(field)));
            };
            let chosen: Vec<&(Vec<u8>, Vec<u8>)> = if count >= 0 {
                let mut all: Vec<_> = elements.iter().collect();
                all.shuffle(&mut rng);
                all.truncate(count as usize);
                all
            } else {
                (0..count.unsigned_abs()).filter_map(|_| elements.choose(&mut rng)).collect()
            };
            Ok(if with_values {
                Reply::Pairs(chosen.into_iter().map(|(f, v)| (bulk(f), bulk(v))).collect())
            } else {
                Reply::Array(chosen.into_iter().map(|(f, _)| bulk(f)).collect())
            })
        })
    }

    /// HSCAN: fields and values from `cursor`.
    pub fn hscan(&self, key: &[u8], cursor: u64, args: &ElementScan) -> Result<Reply> {
        let empty = Reply::Array(vec![Reply::bulk("0"), Reply::Array(Vec::new())]);
        self.with_collection(key, KeyType::Hash, empty, |ctx, hash| {
            ctx.scan_elements(hash, cursor, args, |field, value, out| {
                out.push(Reply::Bulk(Bytes::copy_from_slice(field)));
                out.push(Reply::Bulk(Bytes::copy_from_slice(value)));
            })
        })
    }

    /// The SCAN family over a collection's elements: examines about
    /// `count` elements after the cursor's position (all of a short
    /// collection), adding the matching ones with `emit`.
    pub(crate) fn scan_elements(
        &self,
        collection: Collection,
        cursor: u64,
        args: &ElementScan,
        mut emit: impl FnMut(&[u8], &[u8], &mut Vec<Reply>),
    ) -> Result<Reply> {
        let count = if collection.len <= SCAN_ALL_UP_TO { usize::MAX } else { args.count.unwrap_or(10).max(1) };
        let after = self.cursors.resume(cursor, self.db);
        let mut found = Vec::new();
        let mut examined = 0;
        let mut last_sub = Vec::new();
        self.each_element(collection.version, after.as_deref(), |sub, value| {
            examined += 1;
            if args.pattern.as_ref().is_none_or(|p| glob::matches(p, sub)) {
                emit(sub, value, &mut found);
            }
            last_sub.clear();
            last_sub.extend_from_slice(sub);
            examined < count
        })?;
        let last = (examined > 0).then(|| storage::keyspace::kv_elements::key(self.db, collection.version, &last_sub));
        Ok(self.scan_reply(last, examined, count, found))
    }
}

/// Which part of a hash HGETALL-like commands answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HashPart {
    /// HGETALL.
    Both,
    /// HKEYS.
    Fields,
    /// HVALS.
    Values,
}
