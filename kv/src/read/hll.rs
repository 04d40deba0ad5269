//! Read semantics of PFCOUNT: the cached cardinality of one key, and the
//! cardinality of several keys' union, computed without touching any of
//! them (`crate::hll`).

use bytes::Bytes;

use super::ReadCtx;
use crate::error::{CommandError, Result};
use crate::hll;
use crate::record::KeyType;
use crate::reply::Reply;

impl ReadCtx<'_> {
    /// PFCOUNT of one key, if its answer needs no write: the cached
    /// cardinality, 0 for an absent key, or the key's error. `None`: the
    /// cache is stale, and computing it caches it in the value (a write).
    pub fn pfcount_cached(&self, key: &[u8]) -> Result<Option<Reply>> {
        Ok(match self.lookup(key)? {
            None => Some(Reply::Int(0)),
            Some(record) if record.kind != KeyType::String => Some(CommandError::WrongType.into()),
            Some(record) => match hll::check(&record.value) {
                Err(error) => Some(CommandError::from(error).into()),
                Ok(()) => hll::cached(&record.value).map(|card| Reply::Int(card as i64)),
            },
        })
    }

    /// PFCOUNT key key …: absent keys count as empty sketches.
    pub fn pfcount_union(&self, keys: &[Bytes]) -> Result<Reply> {
        self.consistent(|ctx| {
            let mut max = Box::new([0u8; hll::REGISTERS]);
            for key in keys {
                let Some(record) = ctx.lookup(key)? else { continue };
                if record.kind != KeyType::String {
                    return Ok(CommandError::WrongType.into());
                }
                let merged = hll::check(&record.value).and_then(|()| hll::merge(&mut max, &record.value));
                if let Err(error) = merged {
                    return Ok(CommandError::from(error).into());
                }
            }
            Ok(Reply::Int(hll::estimate(&max) as i64))
        })
    }
}
