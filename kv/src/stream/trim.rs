//! Trimming a stream from its oldest entries (XTRIM, XADD's MAXLEN and
//! MINID), node by node as Redis 7.0's `streamTrim` does: a whole node goes
//! while the condition allows it; then, unless `~`, entries one by one
//! inside the next node. `LIMIT` caps the entries removed, in whole nodes.

use serde::{Deserialize, Serialize};

use super::StreamId;
use crate::error::Result;

/// What to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrimStrategy {
    /// At most this many entries.
    MaxLen(u64),
    /// No entry below this ID.
    MinId(StreamId),
}

/// A trim as XADD and XTRIM carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trim {
    pub strategy: TrimStrategy,
    /// `~`: only whole nodes.
    pub approx: bool,
    /// The most entries to remove (0: no limit). Only with `~`.
    pub limit: u64,
}

/// The IDs a trim removes from a stream of `len` entries, given its entries
/// as `(id, node)` from the oldest. Reads no further than one node past
/// the last it removes from.
pub(crate) fn doomed(
    trim: &Trim,
    mut len: u64,
    entries: impl Iterator<Item = Result<(StreamId, u64)>>,
) -> Result<Vec<StreamId>> {
    let mut entries = entries.peekable();
    let mut doomed = Vec::new();
    loop {
        if matches!(trim.strategy, TrimStrategy::MaxLen(max) if len <= max) {
            break;
        }
        let Some(first) = entries.next() else { break };
        let (first, node) = first?;
        let mut ids = vec![first];
        while let Some(next) = entries.next_if(|next| next.as_ref().map_or(true, |(_, n)| *n == node)) {
            ids.push(next?.0);
        }
        let count = ids.len() as u64;
        if trim.limit > 0 && doomed.len() as u64 + count > trim.limit {
            break;
        }
        let whole_node = match trim.strategy {
            TrimStrategy::MaxLen(max) => len - count >= max,
            TrimStrategy::MinId(min) => *ids.last().expect("a node has entries") < min,
        };
        if whole_node {
            doomed.extend(ids);
            len -= count;
            continue;
        }
        if !trim.approx {
            for id in ids {
                let keep = match trim.strategy {
                    TrimStrategy::MaxLen(max) => len <= max,
                    TrimStrategy::MinId(min) => id >= min,
                };
                if keep {
                    break;
                }
                doomed.push(id);
                len -= 1;
            }
        }
        break;
    }
    Ok(doomed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` entries `1-0 ..= n-0` in nodes of `per_node`.
    fn stream(n: u64, per_node: u64) -> impl Iterator<Item = Result<(StreamId, u64)>> {
        (1..=n).map(move |ms| Ok((StreamId { ms, seq: 0 }, (ms - 1) / per_node)))
    }

    fn trimmed(strategy: TrimStrategy, approx: bool, limit: u64, n: u64) -> usize {
        doomed(&Trim { strategy, approx, limit }, n, stream(n, 100)).unwrap().len()
    }

    #[test]
    fn exact_trims_to_the_mark_and_approximate_by_whole_nodes() {
        assert_eq!(trimmed(TrimStrategy::MaxLen(10), false, 0, 250), 240);
        assert_eq!(trimmed(TrimStrategy::MaxLen(10), true, 0, 250), 200);
        assert_eq!(trimmed(TrimStrategy::MaxLen(60), true, 0, 250), 100);
        assert_eq!(trimmed(TrimStrategy::MaxLen(300), false, 0, 250), 0);
        assert_eq!(trimmed(TrimStrategy::MaxLen(0), true, 0, 250), 250);
        assert_eq!(trimmed(TrimStrategy::MaxLen(0), true, 150, 250), 100, "LIMIT stops at a whole node");
        let min = StreamId { ms: 150, seq: 0 };
        assert_eq!(trimmed(TrimStrategy::MinId(min), false, 0, 250), 149);
        assert_eq!(trimmed(TrimStrategy::MinId(min), true, 0, 250), 100);
    }
}
