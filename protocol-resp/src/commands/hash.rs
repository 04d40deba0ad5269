//! Hash commands: parse, call `kv`, reply.

use kv::{CommandError, ElementScan, HashPart, HashSetMode, ReadOp, WriteOp};

use super::flags::{DENYOOM, FAST, READONLY, WRITE};
use super::keys::{cursor, scan_count};
use super::{read, spec, write, wrong_arity, Outcome, Spec};
use crate::args::Args;
use crate::session::Session;

type Result = std::result::Result<Outcome, CommandError>;

fn hset_with(session: &mut Session, args: &mut Args, mode: HashSetMode, command: &str) -> Result {
    let key = args.next()?;
    if !args.remaining().is_multiple_of(2) {
        return Err(wrong_arity(command));
    }
    let mut pairs = Vec::with_capacity(args.remaining() / 2);
    while args.remaining() > 0 {
        pairs.push((args.next()?, args.next()?));
    }
    write(session, WriteOp::HSet { key, pairs, mode })
}

fn hset(session: &mut Session, args: &mut Args) -> Result {
    hset_with(session, args, HashSetMode::Count, "hset")
}

fn hmset(session: &mut Session, args: &mut Args) -> Result {
    hset_with(session, args, HashSetMode::Ok, "hmset")
}

fn hsetnx(session: &mut Session, args: &mut Args) -> Result {
    hset_with(session, args, HashSetMode::IfAbsent, "hsetnx")
}

fn hdel(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    write(session, WriteOp::HDel { key, fields: args.rest() })
}

fn hincrby(session: &mut Session, args: &mut Args) -> Result {
    let (key, field, delta) = (args.next()?, args.next()?, args.next_i64()?);
    write(session, WriteOp::HIncrBy { key, field, delta })
}

fn hincrbyfloat(session: &mut Session, args: &mut Args) -> Result {
    let (key, field, delta) = (args.next()?, args.next()?, args.next_f64()?);
    if !delta.is_finite() {
        return Err(CommandError::Other("ERR value is NaN or Infinity".into()));
    }
    write(session, WriteOp::HIncrByFloat { key, field, delta })
}

fn hget(session: &mut Session, args: &mut Args) -> Result {
    let (key, field) = (args.next()?, args.next()?);
    read(session, ReadOp::HGet { key, field })
}

fn hmget(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    read(session, ReadOp::HMGet { key, fields: args.rest() })
}

fn hgetall(session: &mut Session, args: &mut Args) -> Result {
    read(session, ReadOp::HGetAll { key: args.next()?, part: HashPart::Both })
}

fn hkeys(session: &mut Session, args: &mut Args) -> Result {
    read(session, ReadOp::HGetAll { key: args.next()?, part: HashPart::Fields })
}

fn hvals(session: &mut Session, args: &mut Args) -> Result {
    read(session, ReadOp::HGetAll { key: args.next()?, part: HashPart::Values })
}

fn hexists(session: &mut Session, args: &mut Args) -> Result {
    let (key, field) = (args.next()?, args.next()?);
    read(session, ReadOp::HExists { key, field })
}

fn hlen(session: &mut Session, args: &mut Args) -> Result {
    read(session, ReadOp::HLen { key: args.next()? })
}

fn hstrlen(session: &mut Session, args: &mut Args) -> Result {
    let (key, field) = (args.next()?, args.next()?);
    read(session, ReadOp::HStrLen { key, field })
}

/// The COUNT and WITHVALUES/WITHSCORES of HRANDFIELD and ZRANDMEMBER, with
/// Redis's checks.
pub(super) fn random_count(args: &mut Args, with: &str) -> std::result::Result<(Option<i64>, bool), CommandError> {
    if args.remaining() == 0 {
        return Ok((None, false));
    }
    let count = args.next_i64()?;
    if count == i64::MIN {
        return Err(CommandError::Other("ERR value is out of range".into()));
    }
    let with_values = match args.next_opt() {
        None => false,
        Some(option) if option.eq_ignore_ascii_case(with.as_bytes()) && args.remaining() == 0 => true,
        Some(_) => return Err(CommandError::Syntax),
    };
    if with_values && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err(CommandError::Other("ERR value is out of range".into()));
    }
    Ok((Some(count), with_values))
}

fn hrandfield(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let (count, with_values) = random_count(args, "WITHVALUES")?;
    read(session, ReadOp::HRandField { key, count, with_values })
}

/// The MATCH and COUNT options of HSCAN, SSCAN and ZSCAN.
pub(super) fn element_scan(args: &mut Args) -> std::result::Result<ElementScan, CommandError> {
    let mut scan = ElementScan::default();
    while args.remaining() > 0 {
        match args.next_keyword()?.as_str() {
            "MATCH" if args.remaining() > 0 => scan.pattern = Some(args.next()?),
            "COUNT" if args.remaining() > 0 => scan.count = Some(scan_count(args)?),
            _ => return Err(CommandError::Syntax),
        }
    }
    Ok(scan)
}

fn hscan(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let cursor = cursor(args)?;
    let args = element_scan(args)?;
    read(session, ReadOp::HScan { key, cursor, args })
}

pub(super) const COMMANDS: &[Spec] = &[
    spec!("hset", -4, WRITE | DENYOOM | FAST, 1, 1, 1, "hash", "2.0.0", "Creates or modifies the value of a field in a hash.", hset),
    spec!("hmset", -4, WRITE | DENYOOM | FAST, 1, 1, 1, "hash", "2.0.0", "Sets the values of multiple fields.", hmset),
    spec!(
        "hsetnx",
        4,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "hash",
        "2.0.0",
        "Sets the value of a field in a hash only when the field doesn't exist.",
        hsetnx
    ),
    spec!("hdel", -3, WRITE | FAST, 1, 1, 1, "hash", "2.0.0", "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.", hdel),
    spec!(
        "hincrby",
        4,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "hash",
        "2.0.0",
        "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.",
        hincrby
    ),
    spec!(
        "hincrbyfloat",
        4,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "hash",
        "2.6.0",
        "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.",
        hincrbyfloat
    ),
    spec!("hget", 3, READONLY | FAST, 1, 1, 1, "hash", "2.0.0", "Returns the value of a field in a hash.", hget),
    spec!("hmget", -3, READONLY | FAST, 1, 1, 1, "hash", "2.0.0", "Returns the values of all fields in a hash.", hmget),
    spec!("hgetall", 2, READONLY, 1, 1, 1, "hash", "2.0.0", "Returns all fields and values in a hash.", hgetall),
    spec!("hkeys", 2, READONLY, 1, 1, 1, "hash", "2.0.0", "Returns all fields in a hash.", hkeys),
    spec!("hvals", 2, READONLY, 1, 1, 1, "hash", "2.0.0", "Returns all values in a hash.", hvals),
    spec!("hexists", 3, READONLY | FAST, 1, 1, 1, "hash", "2.0.0", "Determines whether a field exists in a hash.", hexists),
    spec!("hlen", 2, READONLY | FAST, 1, 1, 1, "hash", "2.0.0", "Returns the number of fields in a hash.", hlen),
    spec!("hstrlen", 3, READONLY | FAST, 1, 1, 1, "hash", "3.2.0", "Returns the length of the value of a field.", hstrlen),
    spec!("hrandfield", -2, READONLY, 1, 1, 1, "hash", "6.2.0", "Returns one or more random fields from a hash.", hrandfield),
    spec!("hscan", -3, READONLY, 1, 1, 1, "hash", "2.8.0", "Iterates over fields and values of a hash.", hscan),
];
