//! Read semantics of the string commands.

use bytes::Bytes;

use super::ReadCtx;
use crate::bits;
use crate::error::{CommandError, Result};
use crate::record::{KeyType, Record};
use crate::reply::Reply;

impl ReadCtx<'_> {
    /// The live string record of `key`, or WRONGTYPE.
    fn string(&self, key: &[u8]) -> Result<std::result::Result<Option<Record>, CommandError>> {
        Ok(match self.lookup(key)? {
            Some(record) if record.kind != KeyType::String => Err(CommandError::WrongType),
            other => Ok(other),
        })
    }

    /// GET.
    pub fn get(&self, key: &[u8]) -> Result<Reply> {
        Ok(match self.string(key)? {
            Ok(record) => Reply::bulk_or_nil(record.map(|r| r.value)),
            Err(error) => error.into(),
        })
    }

    /// MGET: a value per key, nil for absent and non-string keys.
    pub fn mget(&self, keys: &[Bytes]) -> Result<Reply> {
        self.consistent(|ctx| {
            let mut values = Vec::with_capacity(keys.len());
            for key in keys {
                let record = ctx.lookup(key)?.filter(|r| r.kind == KeyType::String);
                values.push(Reply::bulk_or_nil(record.map(|r| r.value)));
            }
            Ok(Reply::Array(values))
        })
    }

    /// STRLEN.
    pub fn strlen(&self, key: &[u8]) -> Result<Reply> {
        Ok(match self.string(key)? {
            Ok(record) => Reply::Int(record.map_or(0, |r| r.value.len() as i64)),
            Err(error) => error.into(),
        })
    }

    /// GETRANGE / SUBSTR with Redis's clamping of negative and large offsets.
    pub fn getrange(&self, key: &[u8], start: i64, end: i64) -> Result<Reply> {
        let record = match self.string(key)? {
            Ok(Some(record)) => record,
            Ok(None) => return Ok(Reply::bulk(Bytes::new())),
            Err(error) => return Ok(error.into()),
        };
        Ok(Reply::Bulk(substring(&record.value, start, end)))
    }
}

impl ReadCtx<'_> {
    /// The string value of `key` (empty if absent) for the bit commands.
    fn bits_of(&self, key: &[u8]) -> Result<std::result::Result<Bytes, CommandError>> {
        Ok(self.string(key)?.map(|record| record.map_or_else(Bytes::new, |r| r.value)))
    }

    /// GETBIT.
    pub fn getbit(&self, key: &[u8], offset: u64) -> Result<Reply> {
        Ok(match self.bits_of(key)? {
            Ok(value) => Reply::Int(i64::from(bits::get_bit(&value, offset))),
            Err(error) => error.into(),
        })
    }

    /// BITCOUNT.
    pub fn bitcount(&self, key: &[u8], range: Option<(i64, i64, bool)>) -> Result<Reply> {
        Ok(match self.bits_of(key)? {
            Ok(value) => Reply::Int(bits::bitcount(&value, range)),
            Err(error) => error.into(),
        })
    }

    /// BITPOS.
    pub fn bitpos(&self, key: &[u8], bit: u8, start: i64, end: Option<i64>, bit_mode: bool) -> Result<Reply> {
        Ok(match self.string(key)? {
            // An absent key: no 1 bit anywhere, a 0 bit right away.
            Ok(None) => Reply::Int(if bit == 1 { -1 } else { 0 }),
            // An empty string: every range is empty, so neither bit is there.
            Ok(Some(record)) => Reply::Int(bits::bitpos(&record.value, bit, start, end, bit_mode)),
            Err(error) => error.into(),
        })
    }

    /// BITFIELD with GET subcommands only, and BITFIELD_RO.
    pub fn bitfield_get(&self, key: &[u8], ops: &[bits::FieldOp]) -> Result<Reply> {
        Ok(match self.bits_of(key)? {
            Ok(value) => {
                let mut value = value.to_vec();
                Reply::Array(
                    ops.iter().map(|op| bits::bitfield(&mut value, *op).map_or(Reply::Nil, Reply::Int)).collect(),
                )
            }
            Err(error) => error.into(),
        })
    }
}

/// The bytes of `value` from `start` to `end` inclusive, as GETRANGE counts.
fn substring(value: &Bytes, start: i64, end: i64) -> Bytes {
    let len = value.len() as i64;
    if len == 0 || (start < 0 && end < 0 && start > end) {
        return Bytes::new();
    }
    let clamp = |i: i64| if i < 0 { (len + i).max(0) } else { i };
    let (start, end) = (clamp(start), clamp(end).min(len - 1));
    if start > end {
        return Bytes::new();
    }
    value.slice(start as usize..=end as usize)
}

#[cfg(test)]
mod tests {
    use super::substring;
    use bytes::Bytes;

    #[test]
    fn getrange_clamps_like_redis() {
        let value = Bytes::from_static(b"This is a string");
        let cases: &[(i64, i64, &str)] = &[
            (0, 3, "This"),
            (-3, -1, "ing"),
            (0, -1, "This is a string"),
            (10, 100, "string"),
            (5, 3, ""),
            (-1, -5, ""),
            (-100, 3, "This"),
            (100, 200, ""),
        ];
        for (start, end, expected) in cases {
            assert_eq!(substring(&value, *start, *end), Bytes::from(*expected), "{start}..{end}");
        }
    }
}
