//! Sorted sets: the two families that hold them and range queries over
//! them, shared by reads and by apply (both go through a [`Reader`]).
//!
//! - `kv_elements`: `[db][version][member] → score` (8 bytes, `f64`
//!   bits big-endian): ZSCORE, membership.
//! - `kv_scores`: `[db][version][score bits][member] → ""`, where the score
//!   bits are order-preserving ([`kv_elements::score_bits`]): the set in
//!   Redis's order (score, then member bytes), so every range query is a
//!   scan in one direction or the other, never a sort.
//!
//! Ranks are positions in that order: ZRANK and ZRANGE by index cost
//! O(rank) here, not Redis's O(log n) (no order-statistics index yet).

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use storage::keyspace::kv_elements;
use storage::{Family, Reader};

use crate::error::{Error, Result};

/// One end of a score range (`(1.5` is exclusive; `-inf`, `+inf`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ScoreBound {
    Inclusive(f64),
    Exclusive(f64),
}

/// One end of a lexicographic range (`-`, `+`, `[a`, `(a`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LexBound {
    Min,
    Max,
    Inclusive(Bytes),
    Exclusive(Bytes),
}

/// Which elements a range selects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RangeSpec {
    /// By index in the (possibly reversed) order; negative from the end.
    Rank { start: i64, stop: i64 },
    /// By score, `min <= score <= max` (bounds in ascending order).
    Score { min: ScoreBound, max: ScoreBound },
    /// By member bytes, `min <= member <= max`.
    Lex { min: LexBound, max: LexBound },
}

/// A ZRANGE-style query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Range {
    pub spec: RangeSpec,
    /// Highest first.
    pub rev: bool,
    /// LIMIT offset count (count < 0: all); score and lex ranges only.
    pub limit: Option<(i64, i64)>,
}

/// A sorted set's location.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ZSet {
    pub db: u8,
    pub version: u64,
    pub len: u64,
}

/// The stored form of a score in `kv_elements`. -0 is stored as 0, so
/// equal scores always sort by member.
pub(crate) fn encode_score(score: f64) -> Bytes {
    let score = if score == 0.0 { 0.0 } else { score };
    Bytes::copy_from_slice(&score.to_bits().to_be_bytes())
}

pub(crate) fn decode_score(bytes: &[u8]) -> Result<f64> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| corrupt(format!("a score of {} bytes", bytes.len())))?;
    Ok(f64::from_bits(u64::from_be_bytes(array)))
}

fn corrupt(reason: String) -> Error {
    Error::Corrupt { family: "kv_elements", reason }
}

/// The `kv_scores` key of `member` with `score`.
pub(crate) fn score_key(zset: &ZSet, score: f64, member: &[u8]) -> Vec<u8> {
    let score = if score == 0.0 { 0.0 } else { score };
    let mut key = kv_elements::key(zset.db, zset.version, &kv_elements::score_bits(score));
    key.extend_from_slice(member);
    key
}

/// The `kv_elements` key of `member`.
pub(crate) fn member_key(zset: &ZSet, member: &[u8]) -> Vec<u8> {
    kv_elements::key(zset.db, zset.version, member)
}

/// The score of `member`, if it is in the set.
pub(crate) fn score(reader: &dyn Reader, zset: &ZSet, member: &[u8]) -> Result<Option<f64>> {
    reader.get(Family::KvElements, &member_key(zset, member))?.map(|bytes| decode_score(&bytes)).transpose()
}

/// The `kv_scores` key where scores `>= score` (or `> score`) begin.
fn score_start(zset: &ZSet, bound: ScoreBound) -> Vec<u8> {
    let (score, exclusive) = match bound {
        ScoreBound::Inclusive(score) => (score, false),
        ScoreBound::Exclusive(score) => (score, true),
    };
    let score = if score == 0.0 { 0.0 } else { score };
    let bits = u64::from_be_bytes(kv_elements::score_bits(score));
    let bits = if exclusive { bits.saturating_add(1) } else { bits };
    let mut key = kv_elements::prefix(zset.db, zset.version).to_vec();
    key.extend_from_slice(&bits.to_be_bytes());
    key
}

/// The `kv_scores` key where scores `> score` (or `>= score`) begin.
fn score_end(zset: &ZSet, bound: ScoreBound) -> Vec<u8> {
    match bound {
        ScoreBound::Inclusive(score) => score_start(zset, ScoreBound::Exclusive(score)),
        ScoreBound::Exclusive(score) => score_start(zset, ScoreBound::Inclusive(score)),
    }
}

/// Every `(member, score)` with a score key in `[start, end)`, ascending
/// or (`rev`) descending.
fn entries<'r>(
    reader: &'r dyn Reader,
    start: &[u8],
    end: &[u8],
    rev: bool,
) -> impl Iterator<Item = Result<(Bytes, f64)>> + 'r {
    let scan = if rev {
        reader.scan_rev(Family::KvScores, start, end)
    } else {
        reader.scan(Family::KvScores, start, Some(end))
    };
    scan.map(|entry| {
        let (key, _) = entry?;
        let sub = kv_elements::sub_key(&key);
        if sub.len() < 8 {
            return Err(corrupt(format!("a kv_scores key of {} bytes", key.len())));
        }
        let score = kv_elements::score_from_bits(sub[..8].try_into().expect("8 bytes"));
        Ok((Bytes::copy_from_slice(&sub[8..]), score))
    })
}

fn lex_above_min(member: &[u8], min: &LexBound) -> bool {
    match min {
        LexBound::Min => true,
        LexBound::Max => false,
        LexBound::Inclusive(bound) => member >= &bound[..],
        LexBound::Exclusive(bound) => member > &bound[..],
    }
}

fn lex_below_max(member: &[u8], max: &LexBound) -> bool {
    match max {
        LexBound::Min => false,
        LexBound::Max => true,
        LexBound::Inclusive(bound) => member <= &bound[..],
        LexBound::Exclusive(bound) => member < &bound[..],
    }
}

/// The elements `range` selects, in its order.
pub(crate) fn range(reader: &dyn Reader, zset: &ZSet, range: &Range) -> Result<Vec<(Bytes, f64)>> {
    let (all_start, all_end) = kv_elements::range(zset.db, zset.version);
    let (offset, count) = match range.limit {
        Some((offset, _)) if offset < 0 => return Ok(Vec::new()),
        Some((offset, count)) => (offset as usize, if count < 0 { usize::MAX } else { count as usize }),
        None => (0, usize::MAX),
    };
    let mut out = Vec::new();
    match &range.spec {
        RangeSpec::Rank { start, stop } => {
            let Some((start, stop)) = crate::number::clamp_range(*start, *stop, zset.len as i64) else {
                return Ok(out);
            };
            let wanted = (stop - start + 1) as usize;
            for entry in entries(reader, &all_start, &all_end, range.rev).skip(start as usize).take(wanted) {
                out.push(entry?);
            }
        }
        RangeSpec::Score { min, max } => {
            let (start, end) = (score_start(zset, *min), score_end(zset, *max));
            if start >= end {
                return Ok(out);
            }
            for entry in entries(reader, &start, &end, range.rev).skip(offset).take(count) {
                out.push(entry?);
            }
        }
        RangeSpec::Lex { min, max } => {
            let mut skipped = 0;
            for entry in entries(reader, &all_start, &all_end, range.rev) {
                let (member, score) = entry?;
                let (inside_start, past_end) = if range.rev {
                    (lex_below_max(&member, max), !lex_above_min(&member, min))
                } else {
                    (lex_above_min(&member, min), !lex_below_max(&member, max))
                };
                if past_end || out.len() >= count {
                    break;
                }
                if !inside_start {
                    continue;
                }
                if skipped < offset {
                    skipped += 1;
                    continue;
                }
                out.push((member, score));
            }
        }
    }
    Ok(out)
}

/// Every `(member, score)` with `min <= score < max`, ascending, read as
/// it is consumed (a geo search stops early under ANY).
pub(crate) fn score_window<'r>(
    reader: &'r dyn Reader,
    zset: &ZSet,
    min: f64,
    max: f64,
) -> impl Iterator<Item = Result<(Bytes, f64)>> + 'r {
    let (start, end) = (score_start(zset, ScoreBound::Inclusive(min)), score_start(zset, ScoreBound::Inclusive(max)));
    entries(reader, &start, &end, false)
}

/// The 0-based rank of `member` (from the highest if `rev`) and its score.
pub(crate) fn rank(reader: &dyn Reader, zset: &ZSet, member: &[u8], rev: bool) -> Result<Option<(u64, f64)>> {
    let Some(score) = score(reader, zset, member)? else {
        return Ok(None);
    };
    let (all_start, _) = kv_elements::range(zset.db, zset.version);
    let own = score_key(zset, score, member);
    let below = reader.scan(Family::KvScores, &all_start, Some(&own)).count() as u64;
    Ok(Some((if rev { zset.len - 1 - below } else { below }, score)))
}

/// Every `(member, score)` of the set in ascending order.
pub(crate) fn all(reader: &dyn Reader, zset: &ZSet) -> Result<Vec<(Bytes, f64)>> {
    let (start, end) = kv_elements::range(zset.db, zset.version);
    entries(reader, &start, &end, false).collect()
}

/// How ZUNION, ZINTER and ZDIFF combine their inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Combine {
    Union,
    Inter,
    Diff,
}

/// How ZUNION and ZINTER merge the scores of one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Aggregate {
    Sum,
    Min,
    Max,
}

/// Combines `inputs` (each `(member, score)`, scores already weighted)
/// and returns the result in Redis's order (score, then member).
pub(crate) fn combine(inputs: Vec<Vec<(Bytes, f64)>>, combine: Combine, aggregate: Aggregate) -> Vec<(Bytes, f64)> {
    use std::collections::BTreeMap;
    let mut inputs = inputs.into_iter();
    let first: BTreeMap<Bytes, f64> = inputs.next().unwrap_or_default().into_iter().collect();
    let merge = |a: f64, b: f64| match aggregate {
        Aggregate::Sum => {
            let sum = a + b;
            // inf + -inf: Redis answers 0.
            if sum.is_nan() {
                0.0
            } else {
                sum
            }
        }
        Aggregate::Min => a.min(b),
        Aggregate::Max => a.max(b),
    };
    let result = inputs.fold(first, |mut acc, input| {
        let input: BTreeMap<Bytes, f64> = input.into_iter().collect();
        match combine {
            Combine::Union => {
                for (member, score) in input {
                    let merged = acc.get(&member).map_or(score, |current| merge(*current, score));
                    acc.insert(member, merged);
                }
                acc
            }
            Combine::Inter => acc
                .into_iter()
                .filter_map(|(member, score)| input.get(&member).map(|other| (member, merge(score, *other))))
                .collect(),
            Combine::Diff => acc.into_iter().filter(|(member, _)| !input.contains_key(member)).collect(),
        }
    });
    let mut result: Vec<(Bytes, f64)> = result.into_iter().collect();
    result.sort_by(|(a_member, a_score), (b_member, b_score)| {
        a_score.total_cmp(b_score).then_with(|| a_member.cmp(b_member))
    });
    result
}

/// `score * weight`, with Redis's rule that NaN (inf * 0) counts as 0.
pub(crate) fn weighted(score: f64, weight: f64) -> f64 {
    let value = score * weight;
    if value.is_nan() {
        0.0
    } else {
        value
    }
}

/// Redis's `%.17g` rendering of a score (`inf`, `-inf`, `1e+20`,
/// `0.10000000000000001`), as RESP2 replies carry it.
pub fn format_score(value: f64) -> String {
    if value.is_infinite() {
        return if value > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let scientific = format!("{value:.16e}");
    let (mantissa, exponent) = scientific.split_once('e').expect("`e` formatting has an exponent");
    let exponent: i32 = exponent.parse().expect("an integer exponent");
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    if !(-4..17).contains(&exponent) {
        let mut mantissa = format!("{}.{}", &digits[..1], &digits[1..]);
        trim_fraction(&mut mantissa);
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{mantissa}e{exponent_sign}{:02}", exponent.abs());
    }
    let mut text = if exponent >= 0 {
        let point = exponent as usize + 1;
        format!("{}.{}", &digits[..point], &digits[point..])
    } else {
        format!("0.{}{digits}", "0".repeat((-exponent - 1) as usize))
    };
    trim_fraction(&mut text);
    format!("{sign}{text}")
}

/// Drops trailing zeros of a fraction, and the point if nothing is left.
fn trim_fraction(text: &mut String) {
    if text.contains('.') {
        while text.ends_with('0') {
            text.pop();
        }
        if text.ends_with('.') {
            text.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::format_score;

    #[test]
    fn scores_render_like_printf_17g() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1"),
            (1.5, "1.5"),
            (0.1, "0.10000000000000001"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e20, "1e+20"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
            (-2.5e-5, "-2.5000000000000001e-05"),
            (0.0001, "0.0001"),
            (123456789.125, "123456789.125"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (0.0, "0"),
            (-3.0, "-3"),
        ];
        for (value, expected) in cases {
            assert_eq!(format_score(*value), *expected, "{value}");
        }
    }
}
