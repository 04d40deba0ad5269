//! Read semantics of the generic key commands.

use bytes::Bytes;
use rand::Rng;
use storage::keyspace::{kv_data, kv_meta, Shard};

use super::ReadCtx;
use crate::dump::{self, Dumped};
use crate::error::{CommandError, Result};
use crate::glob;
use crate::meta::read_u64;
use crate::record::{KeyType, Record};
use crate::reply::Reply;
use crate::sorted::decode_score;

/// The arguments of SCAN after the cursor.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScanArgs {
    pub pattern: Option<Bytes>,
    /// How many records to examine (a hint, as in Redis); default 10.
    pub count: Option<usize>,
    /// Only keys of this type (by TYPE's name).
    pub type_name: Option<Bytes>,
}

/// The unit TTL-style commands answer in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Seconds,
    Millis,
}

impl ReadCtx<'_> {
    /// EXISTS: how many of `keys` exist, counting repeats.
    pub fn exists(&self, keys: &[Bytes]) -> Result<Reply> {
        self.consistent(|ctx| {
            let mut count = 0;
            for key in keys {
                count += i64::from(ctx.lookup(key)?.is_some());
            }
            Ok(Reply::Int(count))
        })
    }

    /// TYPE.
    pub fn type_of(&self, key: &[u8]) -> Result<Reply> {
        let name = self.lookup(key)?.map_or("none", |r| r.kind.name());
        Ok(Reply::Status(name.into()))
    }

    /// DUMP: the value at `key` as a Redis payload, or nil.
    pub fn dump(&self, key: &[u8]) -> Result<Reply> {
        self.consistent(|ctx| {
            let Some(record) = ctx.lookup(key)? else {
                return Ok(Reply::Nil);
            };
            // A collection's `(sub-key, value)` pairs in sub-key order.
            let elements = |record: &Record| -> Result<Vec<(Bytes, Bytes)>> {
                let mut elements = Vec::new();
                ctx.each_element(record.header()?.version, None, |sub, value| {
                    elements.push((Bytes::copy_from_slice(sub), Bytes::copy_from_slice(value)));
                    true
                })?;
                Ok(elements)
            };
            let value = match record.kind {
                KeyType::String => Dumped::String(record.value),
                KeyType::List => Dumped::List(ctx.list_values(&record.header()?)?),
                KeyType::Set => Dumped::Set(elements(&record)?.into_iter().map(|(member, _)| member).collect()),
                KeyType::Hash => Dumped::Hash(elements(&record)?),
                KeyType::ZSet => Dumped::SortedSet(
                    elements(&record)?
                        .into_iter()
                        .map(|(member, score)| Ok((member, decode_score(&score)?)))
                        .collect::<Result<_>>()?,
                ),
                KeyType::Stream => {
                    return Ok(Reply::Error(CommandError::Other(
                        "ERR DUMP of a stream is not supported by Seshat yet".into(),
                    )))
                }
            };
            Ok(Reply::Bulk(dump::encode(&value)))
        })
    }

    /// TTL and PTTL: remaining time, -1 without expiry, -2 if absent.
    pub fn ttl(&self, key: &[u8], millis: bool) -> Result<Reply> {
        let unit = if millis { Unit::Millis } else { Unit::Seconds };
        Ok(Reply::Int(match self.lookup(key)? {
            None => -2,
            Some(Record { expire_at_ms: None, .. }) => -1,
            Some(Record { expire_at_ms: Some(at), .. }) => {
                let left = at.saturating_sub(self.now_ms) as i64;
                match unit {
                    Unit::Millis => left,
                    Unit::Seconds => (left + 500) / 1000,
                }
            }
        }))
    }

    /// EXPIRETIME and PEXPIRETIME: absolute expiry, -1 without, -2 if absent.
    pub fn expire_time(&self, key: &[u8], millis: bool) -> Result<Reply> {
        Ok(Reply::Int(match self.lookup(key)? {
            None => -2,
            Some(Record { expire_at_ms: None, .. }) => -1,
            Some(Record { expire_at_ms: Some(at), .. }) if millis => at as i64,
            Some(Record { expire_at_ms: Some(at), .. }) => (at / 1000) as i64,
        }))
    }

    /// The sum of the `counter` of `db` over the context's groups.
    fn counted(&self, counter: fn(Shard, u8) -> Vec<u8>, db: u8) -> Result<u64> {
        (self.shards.0..self.shards.1).map(|shard| read_u64(self.reader, &counter(shard, db))).sum()
    }

    /// Up to `limit` live keys of hash slot `slot`, in storage order
    /// (CLUSTER GETKEYSINSLOT; CLUSTER COUNTKEYSINSLOT counts them).
    pub fn keys_in_slot(&self, slot: u16, limit: usize) -> Result<Vec<Bytes>> {
        let (start, end) = kv_data::slots_range(self.db, slot, slot);
        let mut keys = Vec::new();
        for entry in self.reader.scan(storage::Family::KvData, &start, Some(&end)) {
            if keys.len() >= limit {
                break;
            }
            let (raw_key, raw_value) = entry?;
            let record = Record::decode(Bytes::from(raw_value))?;
            if let Some((_, _, key)) = kv_data::decode(&raw_key).filter(|_| !record.is_expired(self.now_ms)) {
                keys.push(Bytes::copy_from_slice(key));
            }
        }
        Ok(keys)
    }

    /// DBSIZE: the number of keys, expired ones not yet removed included
    /// (as in Redis).
    pub fn dbsize(&self) -> Result<Reply> {
        Ok(Reply::Int(self.counted(kv_meta::key_count, self.db)? as i64))
    }

    /// `(db, keys, keys with an expiry)` of every non-empty database, read
    /// at one point in time, for INFO keyspace.
    pub fn keyspace(&self) -> Result<Vec<(u8, u64, u64)>> {
        self.consistent(|ctx| {
            let mut databases = Vec::new();
            for db in 0..crate::DATABASES as u8 {
                let keys = ctx.counted(kv_meta::key_count, db)?;
                if keys > 0 {
                    databases.push((db, keys, ctx.counted(kv_meta::expires_count, db)?));
                }
            }
            Ok(databases)
        })
    }

    /// KEYS: every live key matching `pattern`.
    pub fn keys(&self, pattern: &[u8]) -> Result<Reply> {
        let (start, _) = kv_data::db_range(self.db);
        let all = pattern == b"*";
        let mut found = Vec::new();
        self.each_key(&start, |key, _| {
            if all || glob::matches(pattern, &key) {
                found.push(Reply::Bulk(key));
            }
            true
        })?;
        Ok(Reply::Array(found))
    }

    /// SCAN: examines about `count` records from `cursor`, returns the next
    /// cursor (0 when done) and the matching live keys.
    ///
    /// Cursors name a position kept in the node's cursor table. Every key
    /// present for the whole iteration is returned at least once; an
    /// unknown cursor (evicted, or from another node) restarts the
    /// iteration, which keeps that guarantee at the price of repeats.
    pub fn scan(&self, cursor: u64, args: &ScanArgs) -> Result<Reply> {
        let count = args.count.unwrap_or(10).max(1);
        let after = self.cursors.resume(cursor, self.db);
        let (found, last, examined) = self.scan_after(after.as_deref(), count, args)?;
        Ok(self.scan_reply(last, examined, count, found.into_iter().map(Reply::Bulk).collect()))
    }

    /// One step of SCAN: examines up to `count` records after the record
    /// key `after` (from the start without), and returns the matching live
    /// keys, the last record key examined and how many were.
    pub(crate) fn scan_after(
        &self,
        after: Option<&[u8]>,
        count: usize,
        args: &ScanArgs,
    ) -> Result<(Vec<Bytes>, Option<Vec<u8>>, usize)> {
        let start = match after {
            Some(after) => [after, &[0]].concat(),
            None => kv_data::db_range(self.db).0,
        };
        let mut found = Vec::new();
        let mut examined = 0;
        let last = self.each_key(&start, |key, record| {
            examined += 1;
            let pattern_ok = args.pattern.as_ref().is_none_or(|p| glob::matches(p, &key));
            let type_ok = args.type_name.as_ref().is_none_or(|t| t.eq_ignore_ascii_case(record.kind.name().as_bytes()));
            if pattern_ok && args.type_name.is_some() {
                // Redis looks each key up to learn its type.
                self.looked_up(&key, true);
            }
            if pattern_ok && type_ok {
                found.push(key);
            }
            examined < count
        })?;
        Ok((found, last, examined))
    }

    /// RANDOMKEY: a live key chosen at a random hash slot, or nil.
    pub fn random_key(&self) -> Result<Reply> {
        let slot: u16 = self.rng().random_range(self.slots.0..=self.slots.1);
        let (start, _) = kv_data::slots_range(self.db, slot, slot);
        let mut chosen = None;
        self.each_key(&start, |key, _| {
            chosen = Some(key);
            false
        })?;
        if chosen.is_none() {
            self.each_key(&kv_data::db_range(self.db).0, |key, _| {
                chosen = Some(key);
                false
            })?;
        }
        Ok(Reply::bulk_or_nil(chosen))
    }
}
