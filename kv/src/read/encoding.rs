//! OBJECT ENCODING: the name Redis 7.0 would give a value of this type and
//! content under the configured thresholds.
//!
//! Seshat stores every type the same way, in RocksDB; the name only tells
//! code written for Redis what Redis would do (tests check `listpack`
//! versus `hashtable` after tuning `hash-max-listpack-entries`). One
//! difference is documented: Redis never converts a value back to its
//! compact encoding once it outgrew it, while Seshat answers from the
//! current content.

use serde::{Deserialize, Serialize};

use super::ReadCtx;
use crate::error::Result;
use crate::number::parse_i64;
use crate::record::{KeyType, Record};
use crate::reply::Reply;

/// The CONFIG thresholds that decide Redis's compact encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodingLimits {
    /// `hash-max-listpack-entries`.
    pub hash_entries: u64,
    /// `hash-max-listpack-value`: the longest field or value, in bytes.
    pub hash_value: u64,
    /// `set-max-intset-entries`.
    pub set_intset_entries: u64,
    /// `zset-max-listpack-entries`.
    pub zset_entries: u64,
    /// `zset-max-listpack-value`: the longest member, in bytes.
    pub zset_value: u64,
    /// `list-max-listpack-size` (Redis 7.0 always answers `quicklist`).
    pub list_size: i64,
}

impl Default for EncodingLimits {
    fn default() -> Self {
        EncodingLimits {
            hash_entries: 512,
            hash_value: 64,
            set_intset_entries: 512,
            zset_entries: 128,
            zset_value: 64,
            list_size: -2,
        }
    }
}

impl ReadCtx<'_> {
    /// OBJECT ENCODING of `key`, or nil if it does not exist.
    pub fn object_encoding(&self, key: &[u8], limits: &EncodingLimits) -> Result<Reply> {
        let Some(record) = self.lookup_unnotified(key)? else { return Ok(Reply::Nil) };
        Ok(Reply::bulk(self.encoding_name(&record, limits)?))
    }

    fn encoding_name(&self, record: &Record, limits: &EncodingLimits) -> Result<&'static str> {
        let len = record.header().map_or(0, |c| c.len);
        let version = record.version().unwrap_or_default();
        Ok(match record.kind {
            KeyType::String if record.value.len() <= 20 && parse_i64(&record.value).is_some() => "int",
            // Redis builds a HyperLogLog as a raw string, and PFADD and
            // PFMERGE turn any embstr they change raw.
            KeyType::String if record.value.len() <= 44 && crate::hll::check(&record.value).is_err() => "embstr",
            KeyType::String => "raw",
            KeyType::List => "quicklist",
            KeyType::Hash if len <= limits.hash_entries && self.all_short(version, limits.hash_value, true)? => {
                "listpack"
            }
            KeyType::Hash => "hashtable",
            KeyType::Set if len <= limits.set_intset_entries && self.all_integers(version)? => "intset",
            KeyType::Set => "hashtable",
            KeyType::ZSet if len <= limits.zset_entries && self.all_short(version, limits.zset_value, false)? => {
                "listpack"
            }
            KeyType::ZSet => "skiplist",
            KeyType::Stream => "stream",
        })
    }

    /// Whether every element's sub-key (a field or member), and with
    /// `values` its value, is at most `max` bytes.
    fn all_short(&self, version: u64, max: u64, values: bool) -> Result<bool> {
        let mut short = true;
        self.each_element(version, None, |sub, value| {
            short = sub.len() as u64 <= max && (!values || value.len() as u64 <= max);
            short
        })?;
        Ok(short)
    }

    /// Whether every member of set `version` is an integer Redis keeps in
    /// an intset.
    fn all_integers(&self, version: u64) -> Result<bool> {
        let mut integers = true;
        self.each_element(version, None, |member, _| {
            integers = member.len() <= 20 && parse_i64(member).is_some();
            integers
        })?;
        Ok(integers)
    }
}
