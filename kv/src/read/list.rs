//! Read semantics of the list commands.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::ReadCtx;
use crate::error::{Error, Result};
use crate::list_chunks;
use crate::record::{Collection, KeyType};
use crate::reply::Reply;

/// The options of LPOS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LposOptions {
    /// 1-based rank of the first match to return; negative from the tail.
    pub rank: i64,
    /// How many matches to return (0: all); `None`: one, as an integer.
    pub count: Option<u64>,
    /// How many elements to compare at most (0: all).
    pub max_len: u64,
}

impl ReadCtx<'_> {
    /// The element at `index` (0-based from the head) of `list`.
    fn list_element(&self, list: &Collection, index: u64) -> Result<Bytes> {
        let position = list.head + index;
        let chunk = list_chunks::read_chunk(self.reader, self.db, list.version, list_chunks::chunk_of(position))?;
        let slot = chunk.as_ref().and_then(|chunk| {
            let offset = position.checked_sub(chunk.first)?;
            chunk.slots.get(usize::try_from(offset).ok()?)
        });
        match slot {
            Some(slot) => list_chunks::slot_value(self.reader, self.db, list.version, position, slot),
            None => Err(Error::Corrupt {
                family: "kv_elements",
                reason: format!("list version {} has no element at index {index}", list.version),
            }),
        }
    }

    /// Calls `visit` with each element of `list` from index `from` to
    /// `to` (inclusive), in order, until it returns false.
    pub(crate) fn visit_list(
        &self,
        list: &Collection,
        from: u64,
        to: u64,
        visit: impl FnMut(&[u8]) -> bool,
    ) -> Result<()> {
        list_chunks::visit_range(self.reader, self.db, list.version, list.head + from, list.head + to, visit)
    }

    /// Every element of `list`, in order.
    pub(crate) fn list_values(&self, list: &Collection) -> Result<Vec<Bytes>> {
        let mut values = Vec::with_capacity(list.len as usize);
        if list.len > 0 {
            self.visit_list(list, 0, list.len - 1, |value| {
                values.push(Bytes::copy_from_slice(value));
                true
            })?;
        }
        Ok(values)
    }

    /// LLEN.
    pub fn llen(&self, key: &[u8]) -> Result<Reply> {
        Ok(match self.collection(key, KeyType::List)? {
            Err(error) => error.into(),
            Ok(list) => Reply::Int(list.map_or(0, |l| l.len as i64)),
        })
    }

    /// LINDEX.
    pub fn lindex(&self, key: &[u8], index: i64) -> Result<Reply> {
        self.with_collection(key, KeyType::List, Reply::Nil, |ctx, list| {
            let len = list.len as i64;
            let index = if index < 0 { len + index } else { index };
            if !(0..len).contains(&index) {
                return Ok(Reply::Nil);
            }
            Ok(Reply::Bulk(ctx.list_element(&list, index as u64)?))
        })
    }

    /// LRANGE: one scan over the positions in range.
    pub fn lrange(&self, key: &[u8], start: i64, stop: i64) -> Result<Reply> {
        self.with_collection(key, KeyType::List, Reply::Array(Vec::new()), |ctx, list| {
            let Some((start, stop)) = crate::number::clamp_range(start, stop, list.len as i64) else {
                return Ok(Reply::Array(Vec::new()));
            };
            let wanted = (stop - start + 1) as usize;
            // Every value goes into one buffer: a couple of allocations
            // however long the range.
            let mut buffer = bytes::BytesMut::new();
            let mut lengths = Vec::with_capacity(wanted);
            ctx.visit_list(&list, start as u64, stop as u64, |value| {
                if lengths.is_empty() {
                    buffer.reserve(value.len() * wanted);
                }
                lengths.push(value.len() as u32);
                buffer.extend_from_slice(value);
                true
            })?;
            Ok(Reply::Bulks { buffer: buffer.freeze(), lengths })
        })
    }

    /// LPOS.
    pub fn lpos(&self, key: &[u8], element: &[u8], options: LposOptions) -> Result<Reply> {
        let absent = if options.count.is_some() { Reply::Array(Vec::new()) } else { Reply::Nil };
        self.with_collection(key, KeyType::List, absent, |ctx, list| {
            let len = list.len;
            let limit = if options.max_len == 0 { len } else { options.max_len.min(len) };
            let wanted = match options.count {
                None => 1,
                Some(0) => u64::MAX,
                Some(n) => n,
            };
            let mut skip = options.rank.unsigned_abs() - 1;
            let mut found = Vec::new();
            let mut check = |index: u64, value: &[u8]| {
                if value == element {
                    if skip > 0 {
                        skip -= 1;
                    } else {
                        found.push(Reply::Int(index as i64));
                    }
                }
                (found.len() as u64) < wanted
            };
            if limit > 0 && options.rank > 0 {
                let mut index = 0;
                ctx.visit_list(&list, 0, limit - 1, |value| {
                    index += 1;
                    check(index - 1, value)
                })?;
            } else if limit > 0 {
                // From the tail: the compared range, then walked backwards.
                let mut values = Vec::with_capacity(limit as usize);
                ctx.visit_list(&list, len - limit, len - 1, |value| {
                    values.push(Bytes::copy_from_slice(value));
                    true
                })?;
                for (step, value) in values.iter().rev().enumerate() {
                    if !check(len - 1 - step as u64, value) {
                        break;
                    }
                }
            }
            Ok(match options.count {
                Some(_) => Reply::Array(found),
                None => found.pop().unwrap_or(Reply::Nil),
            })
        })
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn ranges_clamp_like_redis() {
        assert_eq!(crate::number::clamp_range(0, -1, 5), Some((0, 4)));
        assert_eq!(crate::number::clamp_range(-3, 2, 5), Some((2, 2)));
        assert_eq!(crate::number::clamp_range(-100, 100, 5), Some((0, 4)));
        assert_eq!(crate::number::clamp_range(3, 1, 5), None);
        assert_eq!(crate::number::clamp_range(5, 10, 5), None);
        assert_eq!(crate::number::clamp_range(0, -6, 5), None);
        assert_eq!(crate::number::clamp_range(0, 0, 0), None);
    }
}
