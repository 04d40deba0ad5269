//! Read semantics of PFCOUNT over several keys: the cardinality of their
//! union, computed without touching any of them (`crate::hll`).

use bytes::Bytes;

use super::ReadCtx;
use crate::error::{CommandError, Result};
use crate::hll;
use crate::record::KeyType;
use crate::reply::Reply;

impl ReadCtx<'_> {
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
