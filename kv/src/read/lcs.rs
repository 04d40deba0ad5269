//! LCS: the longest common subsequence of two string values.
//!
//! The dynamic-programming table and the backtrack follow Redis's
//! `lcsCommand`, so that ties resolve the same way and IDX reports the same
//! ranges, from the end of the strings towards their start.

use bytes::Bytes;

use super::ReadCtx;
use crate::error::{CommandError, Result};
use crate::record::KeyType;
use crate::reply::Reply;

/// What LCS answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LcsOutput {
    /// The subsequence itself.
    String,
    /// Its length (LEN).
    Length,
    /// The matching ranges (IDX), with their lengths if `with_len`, keeping
    /// only ranges of at least `min_len`.
    Ranges { min_len: u64, with_len: bool },
}

/// The largest DP table LCS builds, in cells of 4 bytes: like Redis, the
/// table may not exceed `proto-max-bulk-len` (the default here).
const MAX_CELLS: u64 = crate::STRING_MAX_LEN as u64 / 4;

impl ReadCtx<'_> {
    /// LCS of the string values of `a` and `b` (absent keys are empty).
    pub fn lcs(&self, a: &[u8], b: &[u8], output: LcsOutput) -> Result<Reply> {
        let mut values = Vec::with_capacity(2);
        let records = self.consistent(|ctx| Ok([ctx.lookup(a)?, ctx.lookup(b)?]))?;
        for record in records {
            match record {
                Some(record) if record.kind != KeyType::String => {
                    return Ok(CommandError::Other("ERR The specified keys must contain string values".into()).into())
                }
                record => values.push(record.map_or_else(Bytes::new, |r| r.value)),
            }
        }
        let (a, b) = (&values[0], &values[1]);
        if (a.len() as u64 + 1) * (b.len() as u64 + 1) > MAX_CELLS {
            return Ok(CommandError::Other(
                "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len".into(),
            )
            .into());
        }
        Ok(lcs(a, b, output))
    }
}

fn lcs(a: &[u8], b: &[u8], output: LcsOutput) -> Reply {
    let width = b.len() + 1;
    // table[i * width + j]: LCS length of a[..i] and b[..j].
    let mut table = vec![0u32; (a.len() + 1) * width];
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            table[i * width + j] = if a[i - 1] == b[j - 1] {
                table[(i - 1) * width + j - 1] + 1
            } else {
                table[(i - 1) * width + j].max(table[i * width + j - 1])
            };
        }
    }
    let len = table[a.len() * width + b.len()] as usize;
    match output {
        LcsOutput::Length => return Reply::Int(len as i64),
        LcsOutput::String | LcsOutput::Ranges { .. } => {}
    }
    // Backtrack from the end, collecting the subsequence and the ranges.
    let mut result = vec![0u8; len];
    let mut next = len;
    let mut ranges = Vec::new();
    // The current run of consecutive matches: (a_start, a_end, b_start, b_end).
    let mut run: Option<(usize, usize, usize, usize)> = None;
    let (mut i, mut j) = (a.len(), b.len());
    let keep = |run: (usize, usize, usize, usize), ranges: &mut Vec<Reply>| {
        if let LcsOutput::Ranges { min_len, with_len } = output {
            let (a_start, a_end, b_start, b_end) = run;
            let run_len = (a_end - a_start + 1) as u64;
            if run_len >= min_len {
                let pair = |s: usize, e: usize| Reply::Array(vec![Reply::Int(s as i64), Reply::Int(e as i64)]);
                let mut item = vec![pair(a_start, a_end), pair(b_start, b_end)];
                if with_len {
                    item.push(Reply::Int(run_len as i64));
                }
                ranges.push(Reply::Array(item));
            }
        }
    };
    while i > 0 && j > 0 {
        if a[i - 1] == b[j - 1] {
            next -= 1;
            result[next] = a[i - 1];
            run = match run {
                Some((a_start, a_end, b_start, b_end)) if a_start == i && b_start == j => {
                    Some((i - 1, a_end, j - 1, b_end))
                }
                Some(previous) => {
                    keep(previous, &mut ranges);
                    Some((i - 1, i - 1, j - 1, j - 1))
                }
                None => Some((i - 1, i - 1, j - 1, j - 1)),
            };
            i -= 1;
            j -= 1;
        } else if table[(i - 1) * width + j] > table[i * width + j - 1] {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    if let Some(last) = run {
        keep(last, &mut ranges);
    }
    match output {
        LcsOutput::Ranges { .. } => Reply::Map(vec![
            (Reply::bulk("matches"), Reply::Array(ranges)),
            (Reply::bulk("len"), Reply::Int(len as i64)),
        ]),
        _ => Reply::Bulk(Bytes::from(result)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lcs_of_redis_documentation_example() {
        let (a, b) = (b"ohmytext", b"mynewtext");
        assert_eq!(lcs(a, b, LcsOutput::String), Reply::bulk("mytext"));
        assert_eq!(lcs(a, b, LcsOutput::Length), Reply::Int(6));
        assert_eq!(lcs(b"", b"abc", LcsOutput::String), Reply::bulk(""));
    }
}
