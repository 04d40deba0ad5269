//! Sorted-set commands: parse, call `kv`, reply.

use bytes::Bytes;
use kv::{
    Aggregate, BlockingPop, Combine, CommandError, LexBound, PopShape, Range, RangeSpec, ReadOp, ScoreBound, WriteOp,
    ZAddFlags,
};

use super::blocking::{blocking, timeout};
use super::flags::{BLOCKING, DENYOOM, FAST, NOSCRIPT, READONLY, WRITE};
use super::hash::{element_scan, random_count};
use super::keys::cursor;
use super::{mpop_args, read, spec, write, Outcome, Spec};
use crate::args::Args;
use crate::session::Session;

type Result = std::result::Result<Outcome, CommandError>;
type Parsed<T> = std::result::Result<T, CommandError>;

fn other(text: &str) -> CommandError {
    CommandError::Other(text.into())
}

fn score(bytes: &[u8]) -> Parsed<f64> {
    kv::number::parse_f64(bytes).ok_or(CommandError::NotFloat)
}

/// `1.5`, `(1.5`, `-inf`, `+inf`.
fn score_bound(bytes: &[u8]) -> Parsed<ScoreBound> {
    let invalid = || other("ERR min or max is not a float");
    match bytes.strip_prefix(b"(") {
        Some(rest) => kv::number::parse_f64(rest).map(ScoreBound::Exclusive).ok_or_else(invalid),
        None => kv::number::parse_f64(bytes).map(ScoreBound::Inclusive).ok_or_else(invalid),
    }
}

/// `-`, `+`, `[member`, `(member`.
fn lex_bound(bytes: &Bytes) -> Parsed<LexBound> {
    match bytes.first() {
        Some(b'-') if bytes.len() == 1 => Ok(LexBound::Min),
        Some(b'+') if bytes.len() == 1 => Ok(LexBound::Max),
        Some(b'[') => Ok(LexBound::Inclusive(bytes.slice(1..))),
        Some(b'(') => Ok(LexBound::Exclusive(bytes.slice(1..))),
        _ => Err(other("ERR min or max not valid string range item")),
    }
}

fn zadd(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let mut flags = ZAddFlags::default();
    let mut rest = args.rest().into_iter().peekable();
    while let Some(option) = rest.peek() {
        let flag = match String::from_utf8_lossy(option).to_ascii_uppercase().as_str() {
            "NX" => &mut flags.nx,
            "XX" => &mut flags.xx,
            "GT" => &mut flags.gt,
            "LT" => &mut flags.lt,
            "CH" => &mut flags.ch,
            "INCR" => &mut flags.incr,
            _ => break,
        };
        *flag = true;
        rest.next();
    }
    let rest: Vec<Bytes> = rest.collect();
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return Err(CommandError::Syntax);
    }
    if flags.nx && flags.xx {
        return Err(other("ERR XX and NX options at the same time are not compatible"));
    }
    if ((flags.gt || flags.lt) && flags.nx) || (flags.gt && flags.lt) {
        return Err(other("ERR GT, LT, and/or NX options at the same time are not compatible"));
    }
    if flags.incr && rest.len() > 2 {
        return Err(other("ERR INCR option supports a single increment-element pair"));
    }
    let mut pairs = Vec::with_capacity(rest.len() / 2);
    for pair in rest.chunks(2) {
        pairs.push((score(&pair[0])?, pair[1].clone()));
    }
    write(session, WriteOp::ZAdd { key, flags, pairs })
}

fn zincrby(session: &mut Session, args: &mut Args) -> Result {
    let (key, delta, member) = (args.next()?, args.next()?, args.next()?);
    let flags = ZAddFlags { incr: true, ..ZAddFlags::default() };
    write(session, WriteOp::ZAdd { key, flags, pairs: vec![(score(&delta)?, member)] })
}

fn zscore(session: &mut Session, args: &mut Args) -> Result {
    let (key, member) = (args.next()?, args.next()?);
    read(session, ReadOp::ZScore { key, members: vec![member], many: false })
}

fn zmscore(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    read(session, ReadOp::ZScore { key, members: args.rest(), many: true })
}

fn zcard(session: &mut Session, args: &mut Args) -> Result {
    read(session, ReadOp::ZCard { key: args.next()? })
}

fn zcount(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let (min, max) = (score_bound(&args.next()?)?, score_bound(&args.next()?)?);
    read(session, ReadOp::ZCount { key, spec: RangeSpec::Score { min, max } })
}

fn zlexcount(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let (min, max) = (lex_bound(&args.next()?)?, lex_bound(&args.next()?)?);
    read(session, ReadOp::ZCount { key, spec: RangeSpec::Lex { min, max } })
}

/// How a range's two bounds are read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    Rank,
    Score,
    Lex,
}

/// The bounds as given (`first second`; reversed ranges give the high one
/// first) into a spec in ascending terms.
fn spec_of(by: By, first: &Bytes, second: &Bytes, rev: bool) -> Parsed<RangeSpec> {
    let (low, high) = if rev && by != By::Rank { (second, first) } else { (first, second) };
    Ok(match by {
        By::Rank => {
            let index = |b: &Bytes| kv::number::parse_i64(b).ok_or(CommandError::NotInteger);
            RangeSpec::Rank { start: index(low)?, stop: index(high)? }
        }
        By::Score => RangeSpec::Score { min: score_bound(low)?, max: score_bound(high)? },
        By::Lex => RangeSpec::Lex { min: lex_bound(low)?, max: lex_bound(high)? },
    })
}

/// `LIMIT offset count`.
fn limit(args: &mut Args) -> Parsed<(i64, i64)> {
    if args.remaining() < 2 {
        return Err(CommandError::Syntax);
    }
    Ok((args.next_i64()?, args.next_i64()?))
}

/// ZRANGE's and ZRANGESTORE's `min max [BYSCORE|BYLEX] [REV] [LIMIT o c]
/// [WITHSCORES]` (WITHSCORES only if `allow_scores`).
fn zrange_args(args: &mut Args, allow_scores: bool) -> Parsed<(Range, bool)> {
    let (first, second) = (args.next()?, args.next()?);
    let (mut by, mut rev, mut with_scores, mut limited) = (By::Rank, false, false, None);
    while args.remaining() > 0 {
        match args.next_keyword()?.as_str() {
            "BYSCORE" => by = By::Score,
            "BYLEX" => by = By::Lex,
            "REV" => rev = true,
            "LIMIT" => limited = Some(limit(args)?),
            "WITHSCORES" if allow_scores => with_scores = true,
            _ => return Err(CommandError::Syntax),
        }
    }
    if limited.is_some() && by == By::Rank {
        return Err(other("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"));
    }
    if with_scores && by == By::Lex {
        return Err(other("ERR syntax error, WITHSCORES not supported in combination with BYLEX"));
    }
    let spec = spec_of(by, &first, &second, rev)?;
    Ok((Range { spec, rev, limit: limited }, with_scores))
}

fn zrange(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let (range, with_scores) = zrange_args(args, true)?;
    read(session, ReadOp::ZRange { key, range, with_scores })
}

fn zrangestore(session: &mut Session, args: &mut Args) -> Result {
    let (destination, source) = (args.next()?, args.next()?);
    let (range, _) = zrange_args(args, false)?;
    write(session, WriteOp::ZRangeStore { destination, source, range })
}

fn zrevrange(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let (first, second) = (args.next()?, args.next()?);
    let with_scores = match args.next_opt() {
        None => false,
        Some(option) if option.eq_ignore_ascii_case(b"WITHSCORES") && args.remaining() == 0 => true,
        Some(_) => return Err(CommandError::Syntax),
    };
    let range = Range { spec: spec_of(By::Rank, &first, &second, true)?, rev: true, limit: None };
    read(session, ReadOp::ZRange { key, range, with_scores })
}

/// ZRANGEBYSCORE, ZREVRANGEBYSCORE, ZRANGEBYLEX, ZREVRANGEBYLEX.
fn range_by(session: &mut Session, args: &mut Args, by: By, rev: bool) -> Result {
    let key = args.next()?;
    let (first, second) = (args.next()?, args.next()?);
    let (mut with_scores, mut limited) = (false, None);
    while args.remaining() > 0 {
        match args.next_keyword()?.as_str() {
            "WITHSCORES" if by == By::Score => with_scores = true,
            "LIMIT" => limited = Some(limit(args)?),
            _ => return Err(CommandError::Syntax),
        }
    }
    let range = Range { spec: spec_of(by, &first, &second, rev)?, rev, limit: limited };
    read(session, ReadOp::ZRange { key, range, with_scores })
}

fn zrangebyscore(session: &mut Session, args: &mut Args) -> Result {
    range_by(session, args, By::Score, false)
}

fn zrevrangebyscore(session: &mut Session, args: &mut Args) -> Result {
    range_by(session, args, By::Score, true)
}

fn zrangebylex(session: &mut Session, args: &mut Args) -> Result {
    range_by(session, args, By::Lex, false)
}

fn zrevrangebylex(session: &mut Session, args: &mut Args) -> Result {
    range_by(session, args, By::Lex, true)
}

fn zrank(session: &mut Session, args: &mut Args) -> Result {
    let (key, member) = (args.next()?, args.next()?);
    read(session, ReadOp::ZRank { key, member, rev: false })
}

fn zrevrank(session: &mut Session, args: &mut Args) -> Result {
    let (key, member) = (args.next()?, args.next()?);
    read(session, ReadOp::ZRank { key, member, rev: true })
}

fn zrem(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    write(session, WriteOp::ZRem { key, members: args.rest() })
}

fn zremrange(session: &mut Session, args: &mut Args, by: By) -> Result {
    let key = args.next()?;
    let (first, second) = (args.next()?, args.next()?);
    write(session, WriteOp::ZRemRange { key, spec: spec_of(by, &first, &second, false)? })
}

fn zremrangebyrank(session: &mut Session, args: &mut Args) -> Result {
    zremrange(session, args, By::Rank)
}

fn zremrangebyscore(session: &mut Session, args: &mut Args) -> Result {
    zremrange(session, args, By::Score)
}

fn zremrangebylex(session: &mut Session, args: &mut Args) -> Result {
    zremrange(session, args, By::Lex)
}

fn zpop(session: &mut Session, args: &mut Args, max: bool) -> Result {
    let key = args.next()?;
    let count = match args.next_opt() {
        None => None,
        Some(count) => match kv::number::parse_i64(&count) {
            Some(n) if n >= 0 => Some(n as u64),
            Some(_) => return Err(other("ERR value is out of range, must be positive")),
            None => return Err(CommandError::NotInteger),
        },
    };
    if args.remaining() > 0 {
        return Err(CommandError::Syntax);
    }
    write(session, WriteOp::ZPop { key, max, count })
}

fn zpopmin(session: &mut Session, args: &mut Args) -> Result {
    zpop(session, args, false)
}

fn zpopmax(session: &mut Session, args: &mut Args) -> Result {
    zpop(session, args, true)
}

fn bzpop(session: &mut Session, args: &mut Args, max: bool) -> Result {
    let mut keys = args.rest();
    let timeout = timeout(&keys.pop().expect("arity guarantees a timeout"))?;
    blocking(session, keys, BlockingPop::ZSet { max, count: 1, shape: PopShape::Flat }, timeout)
}

fn bzpopmin(session: &mut Session, args: &mut Args) -> Result {
    bzpop(session, args, false)
}

fn bzpopmax(session: &mut Session, args: &mut Args) -> Result {
    bzpop(session, args, true)
}

/// MIN or MAX of ZMPOP and BZMPOP: true for MAX.
fn side(keyword: &str) -> Option<bool> {
    match keyword {
        "MIN" => Some(false),
        "MAX" => Some(true),
        _ => None,
    }
}

fn zmpop(session: &mut Session, args: &mut Args) -> Result {
    let (keys, max, count) = mpop_args(args, side)?;
    write(session, WriteOp::ZPopFirst { keys, max, count, shape: PopShape::Nested })
}

fn bzmpop(session: &mut Session, args: &mut Args) -> Result {
    let timeout = timeout(&args.next()?)?;
    let (keys, max, count) = mpop_args(args, side)?;
    blocking(session, keys, BlockingPop::ZSet { max, count, shape: PopShape::Nested }, timeout)
}

/// The input keys and options of ZUNION/ZINTER/ZDIFF and their STORE
/// forms: `numkeys key… [WEIGHTS w…] [AGGREGATE SUM|MIN|MAX]
/// [WITHSCORES]` (WEIGHTS and AGGREGATE not for ZDIFF).
struct CombineArgs {
    keys: Vec<Bytes>,
    weights: Vec<f64>,
    aggregate: Aggregate,
    with_scores: bool,
}

fn combine_args(args: &mut Args, command: &str, combine: Combine, allow_scores: bool) -> Parsed<CombineArgs> {
    let numkeys = args.next_i64()?;
    if numkeys < 1 {
        return Err(CommandError::Other(format!("ERR at least 1 input key is needed for '{command}' command")));
    }
    if numkeys as usize > args.remaining() {
        return Err(CommandError::Syntax);
    }
    let keys = (0..numkeys).map(|_| args.next()).collect::<Parsed<Vec<_>>>()?;
    let mut parsed = CombineArgs { keys, weights: Vec::new(), aggregate: Aggregate::Sum, with_scores: false };
    while args.remaining() > 0 {
        match args.next_keyword()?.as_str() {
            "WEIGHTS" if combine != Combine::Diff && args.remaining() >= parsed.keys.len() => {
                for _ in 0..parsed.keys.len() {
                    let weight =
                        kv::number::parse_f64(&args.next()?).ok_or_else(|| other("ERR weight value is not a float"))?;
                    parsed.weights.push(weight);
                }
            }
            "AGGREGATE" if combine != Combine::Diff && args.remaining() > 0 => {
                parsed.aggregate = match args.next_keyword()?.as_str() {
                    "SUM" => Aggregate::Sum,
                    "MIN" => Aggregate::Min,
                    "MAX" => Aggregate::Max,
                    _ => return Err(CommandError::Syntax),
                };
            }
            "WITHSCORES" if allow_scores => parsed.with_scores = true,
            _ => return Err(CommandError::Syntax),
        }
    }
    Ok(parsed)
}

fn zcombine(session: &mut Session, args: &mut Args, combine: Combine, command: &str) -> Result {
    let CombineArgs { keys, weights, aggregate, with_scores } = combine_args(args, command, combine, true)?;
    read(session, ReadOp::ZCombine { keys, weights, combine, aggregate, with_scores })
}

fn zunion(session: &mut Session, args: &mut Args) -> Result {
    zcombine(session, args, Combine::Union, "zunion")
}

fn zinter(session: &mut Session, args: &mut Args) -> Result {
    zcombine(session, args, Combine::Inter, "zinter")
}

fn zdiff(session: &mut Session, args: &mut Args) -> Result {
    zcombine(session, args, Combine::Diff, "zdiff")
}

fn zstore(session: &mut Session, args: &mut Args, combine: Combine, command: &str) -> Result {
    let destination = args.next()?;
    let CombineArgs { keys, weights, aggregate, .. } = combine_args(args, command, combine, false)?;
    write(session, WriteOp::ZStore { destination, keys, weights, combine, aggregate })
}

fn zunionstore(session: &mut Session, args: &mut Args) -> Result {
    zstore(session, args, Combine::Union, "zunionstore")
}

fn zinterstore(session: &mut Session, args: &mut Args) -> Result {
    zstore(session, args, Combine::Inter, "zinterstore")
}

fn zdiffstore(session: &mut Session, args: &mut Args) -> Result {
    zstore(session, args, Combine::Diff, "zdiffstore")
}

fn zintercard(session: &mut Session, args: &mut Args) -> Result {
    let numkeys = args.next_i64()?;
    if numkeys < 1 {
        return Err(other("ERR at least 1 input key is needed for 'zintercard' command"));
    }
    if numkeys as usize > args.remaining() {
        return Err(CommandError::Syntax);
    }
    let keys = (0..numkeys).map(|_| args.next()).collect::<Parsed<Vec<_>>>()?;
    let limit = super::set::card_limit(args)?;
    read(session, ReadOp::ZInterCard { keys, limit })
}

fn zrandmember(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let (count, with_scores) = random_count(args, "WITHSCORES")?;
    read(session, ReadOp::ZRandMember { key, count, with_scores })
}

fn zscan(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let cursor = cursor(args)?;
    let args = element_scan(args)?;
    read(session, ReadOp::ZScan { key, cursor, args })
}

pub(super) const COMMANDS: &[Spec] = &[
    spec!("zadd", -4, WRITE | DENYOOM | FAST, 1, 1, 1, "sorted-set", "1.2.0", "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.", zadd),
    spec!("zincrby", 4, WRITE | DENYOOM | FAST, 1, 1, 1, "sorted-set", "1.2.0", "Increments the score of a member in a sorted set.", zincrby),
    spec!("zscore", 3, READONLY | FAST, 1, 1, 1, "sorted-set", "1.2.0", "Returns the score of a member in a sorted set.", zscore),
    spec!("zmscore", -3, READONLY | FAST, 1, 1, 1, "sorted-set", "6.2.0", "Returns the score of one or more members in a sorted set.", zmscore),
    spec!("zcard", 2, READONLY | FAST, 1, 1, 1, "sorted-set", "1.2.0", "Returns the number of members in a sorted set.", zcard),
    spec!("zcount", 4, READONLY | FAST, 1, 1, 1, "sorted-set", "2.0.0", "Returns the count of members in a sorted set that have scores within a range.", zcount),
    spec!("zlexcount", 4, READONLY | FAST, 1, 1, 1, "sorted-set", "2.8.9", "Returns the number of members in a sorted set within a lexicographical range.", zlexcount),
    spec!("zrange", -4, READONLY, 1, 1, 1, "sorted-set", "1.2.0", "Returns members in a sorted set within a range of indexes.", zrange),
    spec!("zrangestore", -5, WRITE | DENYOOM, 1, 2, 1, "sorted-set", "6.2.0", "Stores a range of members from sorted set in a key.", zrangestore),
    spec!("zrevrange", -4, READONLY, 1, 1, 1, "sorted-set", "1.2.0", "Returns members in a sorted set within a range of indexes in reverse order.", zrevrange),
    spec!("zrangebyscore", -4, READONLY, 1, 1, 1, "sorted-set", "1.0.5", "Returns members in a sorted set within a range of scores.", zrangebyscore),
    spec!("zrevrangebyscore", -4, READONLY, 1, 1, 1, "sorted-set", "2.2.0", "Returns members in a sorted set within a range of scores in reverse order.", zrevrangebyscore),
    spec!("zrangebylex", -4, READONLY, 1, 1, 1, "sorted-set", "2.8.9", "Returns members in a sorted set within a lexicographical range.", zrangebylex),
    spec!("zrevrangebylex", -4, READONLY, 1, 1, 1, "sorted-set", "2.8.9", "Returns members in a sorted set within a lexicographical range in reverse order.", zrevrangebylex),
    spec!("zrank", 3, READONLY | FAST, 1, 1, 1, "sorted-set", "2.0.0", "Returns the index of a member in a sorted set ordered by ascending scores.", zrank),
    spec!("zrevrank", 3, READONLY | FAST, 1, 1, 1, "sorted-set", "2.0.0", "Returns the index of a member in a sorted set ordered by descending scores.", zrevrank),
    spec!("zrem", -3, WRITE | FAST, 1, 1, 1, "sorted-set", "1.2.0", "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.", zrem),
    spec!("zremrangebyrank", 4, WRITE, 1, 1, 1, "sorted-set", "2.0.0", "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.", zremrangebyrank),
    spec!("zremrangebyscore", 4, WRITE, 1, 1, 1, "sorted-set", "1.2.0", "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.", zremrangebyscore),
    spec!("zremrangebylex", 4, WRITE, 1, 1, 1, "sorted-set", "2.8.9", "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.", zremrangebylex),
    spec!("zpopmin", -2, WRITE | FAST, 1, 1, 1, "sorted-set", "5.0.0", "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", zpopmin),
    spec!("zpopmax", -2, WRITE | FAST, 1, 1, 1, "sorted-set", "5.0.0", "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", zpopmax),
    spec!("bzpopmin", -3, WRITE | FAST | NOSCRIPT | BLOCKING, 1, -2, 1, "sorted-set", "5.0.0", "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", bzpopmin),
    spec!("bzpopmax", -3, WRITE | FAST | NOSCRIPT | BLOCKING, 1, -2, 1, "sorted-set", "5.0.0", "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.  Deletes the sorted set if the last element was popped.", bzpopmax),
    spec!("zmpop", -4, WRITE, 0, 0, 0, "sorted-set", "7.0.0", "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped.", zmpop),
    spec!("bzmpop", -5, WRITE | NOSCRIPT | BLOCKING, 0, 0, 0, "sorted-set", "7.0.0", "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", bzmpop),
    spec!("zunion", -3, READONLY, 0, 0, 0, "sorted-set", "6.2.0", "Returns the union of multiple sorted sets.", zunion),
    spec!("zinter", -3, READONLY, 0, 0, 0, "sorted-set", "6.2.0", "Returns the intersect of multiple sorted sets.", zinter),
    spec!("zdiff", -3, READONLY, 0, 0, 0, "sorted-set", "6.2.0", "Returns the difference between multiple sorted sets.", zdiff),
    spec!("zunionstore", -4, WRITE | DENYOOM, 1, 1, 1, "sorted-set", "2.0.0", "Stores the union of multiple sorted sets in a key.", zunionstore),
    spec!("zinterstore", -4, WRITE | DENYOOM, 1, 1, 1, "sorted-set", "2.0.0", "Stores the intersect of multiple sorted sets in a key.", zinterstore),
    spec!("zdiffstore", -4, WRITE | DENYOOM, 1, 1, 1, "sorted-set", "6.2.0", "Stores the difference of multiple sorted sets in a key.", zdiffstore),
    spec!("zintercard", -3, READONLY, 0, 0, 0, "sorted-set", "7.0.0", "Returns the number of members of the intersect of multiple sorted sets.", zintercard),
    spec!("zrandmember", -2, READONLY, 1, 1, 1, "sorted-set", "6.2.0", "Returns one or more random members from a sorted set.", zrandmember),
    spec!("zscan", -3, READONLY, 1, 1, 1, "sorted-set", "2.8.0", "Iterates over members and scores of a sorted set.", zscan),
];
