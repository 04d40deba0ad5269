//! SORT and SORT_RO: the elements of a list, set or sorted set, ordered
//! numerically or (ALPHA) by bytes, by themselves or by keys a pattern
//! names (BY), projected through patterns (GET), with LIMIT.
//!
//! The same code serves SORT ... STORE at apply time, over the apply txn.

use std::cmp::Ordering;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::ReadCtx;
use crate::error::{CommandError, Result};
use crate::number::parse_strtod;
use crate::record::KeyType;
use crate::sorted::{self, ZSet};

/// The options of SORT.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SortOptions {
    /// BY pattern; a pattern without `*` means "do not sort".
    pub by: Option<Bytes>,
    /// LIMIT offset count.
    pub limit: Option<(i64, i64)>,
    /// GET patterns (`#` is the element itself).
    pub get: Vec<Bytes>,
    pub desc: bool,
    pub alpha: bool,
}

impl ReadCtx<'_> {
    /// The value a SORT pattern names for `element`: `*` replaced by the
    /// element, then a string key, or a hash field after `->`.
    fn sort_lookup(&self, pattern: &[u8], element: &[u8]) -> Result<Option<Bytes>> {
        if pattern == b"#" {
            return Ok(Some(Bytes::copy_from_slice(element)));
        }
        let Some(star) = pattern.iter().position(|&b| b == b'*') else {
            return Ok(None);
        };
        let (key_pattern, field) = match pattern.windows(2).rposition(|w| w == b"->") {
            Some(arrow) if arrow > star && arrow + 2 < pattern.len() => {
                (&pattern[..arrow], Some(&pattern[arrow + 2..]))
            }
            _ => (pattern, None),
        };
        let mut key = key_pattern[..star].to_vec();
        key.extend_from_slice(element);
        key.extend_from_slice(&key_pattern[star + 1..]);
        let Some(record) = self.lookup(&key)? else {
            return Ok(None);
        };
        Ok(match (field, record.kind) {
            (None, KeyType::String) => Some(record.value),
            (Some(field), KeyType::Hash) => self.element(record.header()?.version, field)?.map(Bytes::from),
            _ => None,
        })
    }

    /// The sorted (and projected) elements, or the user error. `storing`:
    /// for SORT … STORE, where Redis sorts a set even with BY nosort so
    /// that what it stores does not depend on hash order.
    pub(crate) fn sorted_elements(
        &self,
        key: &[u8],
        options: &SortOptions,
        storing: bool,
    ) -> Result<std::result::Result<Vec<Option<Bytes>>, CommandError>> {
        self.consistent(|ctx| {
            let Some(record) = ctx.lookup(key)? else {
                return Ok(Ok(Vec::new()));
            };
            let mut elements: Vec<Bytes> = match record.kind {
                KeyType::List => ctx.list_values(&record.header()?)?,
                KeyType::Set => {
                    ctx.elements(record.header()?.version)?.into_iter().map(|(member, _)| Bytes::from(member)).collect()
                }
                KeyType::ZSet => {
                    let header = record.header()?;
                    let zset = ZSet { db: ctx.db, version: header.version, len: header.len };
                    sorted::all(ctx.reader, &zset)?.into_iter().map(|(member, _)| member).collect()
                }
                _ => return Ok(Err(CommandError::WrongType)),
            };
            let nosort = options.by.as_ref().is_some_and(|by| !by.contains(&b'*'));
            let set_stored = nosort && storing && record.kind == KeyType::Set;
            let alpha = options.alpha || set_stored;
            if nosort && !set_stored {
                // BY without `*`: the value's own order (a sorted set's is
                // by score), reversed by DESC.
                if options.desc {
                    elements.reverse();
                }
            } else {
                let mut keyed = Vec::with_capacity(elements.len());
                for element in elements {
                    let by = match &options.by {
                        Some(pattern) if !set_stored => ctx.sort_lookup(pattern, &element)?,
                        _ => Some(element.clone()),
                    };
                    let score = if alpha {
                        0.0
                    } else {
                        match &by {
                            None => 0.0,
                            Some(value) => match parse_strtod(value) {
                                Some(score) => score,
                                None => {
                                    return Ok(Err(CommandError::Other(
                                        "ERR One or more scores can't be converted into double".into(),
                                    )))
                                }
                            },
                        }
                    };
                    keyed.push((element, by, score));
                }
                keyed.sort_by(|a, b| {
                    let order = if alpha {
                        a.1.cmp(&b.1)
                    } else {
                        a.2.partial_cmp(&b.2).unwrap_or(Ordering::Equal).then_with(|| a.0.cmp(&b.0))
                    };
                    if options.desc {
                        order.reverse()
                    } else {
                        order
                    }
                });
                elements = keyed.into_iter().map(|(element, _, _)| element).collect();
            }
            let (offset, count) = match options.limit {
                Some((offset, count)) => (offset.max(0) as usize, if count < 0 { usize::MAX } else { count as usize }),
                None => (0, usize::MAX),
            };
            let mut out = Vec::new();
            for element in elements.into_iter().skip(offset).take(count) {
                if options.get.is_empty() {
                    out.push(Some(element));
                } else {
                    for pattern in &options.get {
                        out.push(ctx.sort_lookup(pattern, &element)?);
                    }
                }
            }
            Ok(Ok(out))
        })
    }

    /// SORT without STORE, SORT_RO.
    pub fn sort(&self, key: &[u8], options: &SortOptions) -> Result<crate::reply::Reply> {
        use crate::reply::Reply;
        Ok(match self.sorted_elements(key, options, false)? {
            Ok(values) => Reply::Array(values.into_iter().map(Reply::bulk_or_nil).collect()),
            Err(error) => error.into(),
        })
    }
}
