//! String commands: parse, call `kv`, reply.

use bytes::Bytes;
use kv::{CommandError, LcsOutput, ReadOp, SetCondition, SetExpiry, SetReply, WriteOp};

use super::flags::{DENYOOM, FAST, READONLY, WRITE};
use super::{read, spec, write, Outcome, Spec};
use crate::args::Args;
use crate::session::Session;

type Result = std::result::Result<Outcome, CommandError>;

/// Converts an EX/PX-style amount to milliseconds, rejecting non-positive
/// and overflowing values with Redis's error for `command`.
pub(super) fn expiry_ms(amount: i64, seconds: bool, command: &str) -> std::result::Result<u64, CommandError> {
    let invalid = || CommandError::InvalidExpireTime(command.into());
    if amount <= 0 {
        return Err(invalid());
    }
    let ms = if seconds { amount.checked_mul(1000).ok_or_else(invalid)? } else { amount };
    Ok(ms as u64)
}

/// Parses one of EX/PX/EXAT/PXAT followed by its amount.
fn timed_expiry(keyword: &str, args: &mut Args, command: &str) -> std::result::Result<SetExpiry, CommandError> {
    let amount = args.next_i64()?;
    Ok(match keyword {
        "EX" => SetExpiry::AfterMs(expiry_ms(amount, true, command)?),
        "PX" => SetExpiry::AfterMs(expiry_ms(amount, false, command)?),
        "EXAT" => SetExpiry::AtMs(expiry_ms(amount, true, command)?),
        _ => SetExpiry::AtMs(expiry_ms(amount, false, command)?),
    })
}

fn set(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let value = args.next()?;
    let mut condition = SetCondition::Always;
    let mut expiry = SetExpiry::Clear;
    let mut get = false;
    let mut expiry_given = false;
    while args.remaining() > 0 {
        let keyword = args.next_keyword()?;
        match keyword.as_str() {
            "NX" if condition == SetCondition::Always => condition = SetCondition::IfAbsent,
            "XX" if condition == SetCondition::Always => condition = SetCondition::IfPresent,
            "GET" => get = true,
            "KEEPTTL" if !expiry_given => {
                expiry = SetExpiry::Keep;
                expiry_given = true;
            }
            "EX" | "PX" | "EXAT" | "PXAT" if !expiry_given && args.remaining() > 0 => {
                expiry = timed_expiry(&keyword, args, "set")?;
                expiry_given = true;
            }
            _ => return Err(CommandError::Syntax),
        }
    }
    let reply = if get { SetReply::OldValue } else { SetReply::Ok };
    write(session, WriteOp::Set { key, value, condition, expiry, reply })
}

fn setnx(session: &mut Session, args: &mut Args) -> Result {
    let (key, value) = (args.next()?, args.next()?);
    write(
        session,
        WriteOp::Set { key, value, condition: SetCondition::IfAbsent, expiry: SetExpiry::Clear, reply: SetReply::Flag },
    )
}

fn setex_with(session: &mut Session, args: &mut Args, seconds: bool, command: &str) -> Result {
    let key = args.next()?;
    let amount = args.next_i64()?;
    let value = args.next()?;
    let expiry = SetExpiry::AfterMs(expiry_ms(amount, seconds, command)?);
    write(session, WriteOp::Set { key, value, condition: SetCondition::Always, expiry, reply: SetReply::Ok })
}

fn setex(session: &mut Session, args: &mut Args) -> Result {
    setex_with(session, args, true, "setex")
}

fn psetex(session: &mut Session, args: &mut Args) -> Result {
    setex_with(session, args, false, "psetex")
}

fn getset(session: &mut Session, args: &mut Args) -> Result {
    let (key, value) = (args.next()?, args.next()?);
    write(
        session,
        WriteOp::Set {
            key,
            value,
            condition: SetCondition::Always,
            expiry: SetExpiry::Clear,
            reply: SetReply::OldValue,
        },
    )
}

fn get(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    read(session, ReadOp::Get { key })
}

fn getdel(session: &mut Session, args: &mut Args) -> Result {
    write(session, WriteOp::GetDel { key: args.next()? })
}

fn getex(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let expiry = match args.next_opt() {
        None => return read(session, ReadOp::Get { key }),
        Some(keyword) => match String::from_utf8_lossy(&keyword).to_ascii_uppercase().as_str() {
            "PERSIST" => SetExpiry::Clear,
            timed @ ("EX" | "PX" | "EXAT" | "PXAT") => timed_expiry(timed, args, "getex")?,
            _ => return Err(CommandError::Syntax),
        },
    };
    args.finish()?;
    write(session, WriteOp::GetEx { key, expiry })
}

fn mget(session: &mut Session, args: &mut Args) -> Result {
    let keys = args.rest();
    read(session, ReadOp::MGet { keys })
}

fn pairs(args: &mut Args, command: &str) -> std::result::Result<Vec<(Bytes, Bytes)>, CommandError> {
    if !args.remaining().is_multiple_of(2) {
        return Err(super::wrong_arity(command));
    }
    let mut pairs = Vec::with_capacity(args.remaining() / 2);
    while args.remaining() > 0 {
        pairs.push((args.next()?, args.next()?));
    }
    Ok(pairs)
}

fn mset(session: &mut Session, args: &mut Args) -> Result {
    write(session, WriteOp::MSet { pairs: pairs(args, "mset")?, only_if_none_exist: false })
}

fn msetnx(session: &mut Session, args: &mut Args) -> Result {
    write(session, WriteOp::MSet { pairs: pairs(args, "msetnx")?, only_if_none_exist: true })
}

fn incr(session: &mut Session, args: &mut Args) -> Result {
    write(session, WriteOp::IncrBy { key: args.next()?, delta: 1 })
}

fn decr(session: &mut Session, args: &mut Args) -> Result {
    write(session, WriteOp::IncrBy { key: args.next()?, delta: -1 })
}

fn incrby(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let delta = args.next_i64()?;
    write(session, WriteOp::IncrBy { key, delta })
}

fn decrby(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let delta = args.next_i64()?;
    let delta = delta.checked_neg().ok_or(CommandError::DecrementOverflow)?;
    write(session, WriteOp::IncrBy { key, delta })
}

fn incrbyfloat(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let delta = args.next_f64()?;
    if delta.is_infinite() {
        return Err(CommandError::NanOrInfinity);
    }
    write(session, WriteOp::IncrByFloat { key, delta })
}

fn append(session: &mut Session, args: &mut Args) -> Result {
    let (key, value) = (args.next()?, args.next()?);
    write(session, WriteOp::Append { key, value })
}

fn strlen(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    read(session, ReadOp::StrLen { key })
}

fn getrange(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let (start, end) = (args.next_i64()?, args.next_i64()?);
    read(session, ReadOp::GetRange { key, start, end })
}

fn setrange(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let offset = args.next_i64()?;
    let value = args.next()?;
    let offset = u64::try_from(offset).map_err(|_| CommandError::OffsetOutOfRange)?;
    write(session, WriteOp::SetRange { key, offset, value })
}

fn lcs(session: &mut Session, args: &mut Args) -> Result {
    let (a, b) = (args.next()?, args.next()?);
    let (mut len, mut idx, mut with_len, mut min_len) = (false, false, false, 0u64);
    while args.remaining() > 0 {
        match args.next_keyword()?.as_str() {
            "LEN" => len = true,
            "IDX" => idx = true,
            "WITHMATCHLEN" => with_len = true,
            "MINMATCHLEN" if args.remaining() > 0 => min_len = args.next_i64()?.max(0) as u64,
            _ => return Err(CommandError::Syntax),
        }
    }
    let output = match (len, idx) {
        (true, true) => {
            return Err(CommandError::Other("ERR If you want both the length and indexes, please just use IDX.".into()))
        }
        (true, false) => LcsOutput::Length,
        (false, true) => LcsOutput::Ranges { min_len, with_len },
        (false, false) => LcsOutput::String,
    };
    read(session, ReadOp::Lcs { a, b, output })
}

pub(super) const COMMANDS: &[Spec] = &[
    spec!("get", 2, READONLY | FAST, 1, 1, 1, "string", "1.0.0", "Returns the string value of a key.", get),
    spec!(
        "set",
        -3,
        WRITE | DENYOOM,
        1,
        1,
        1,
        "string",
        "1.0.0",
        "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.",
        set
    ),
    spec!(
        "setnx",
        3,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "string",
        "1.0.0",
        "Set the string value of a key only when the key doesn't exist.",
        setnx
    ),
    spec!(
        "setex",
        4,
        WRITE | DENYOOM,
        1,
        1,
        1,
        "string",
        "2.0.0",
        "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.",
        setex
    ),
    spec!(
        "psetex",
        4,
        WRITE | DENYOOM,
        1,
        1,
        1,
        "string",
        "2.6.0",
        "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.",
        psetex
    ),
    spec!(
        "getset",
        3,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "string",
        "1.0.0",
        "Returns the previous string value of a key after setting it to a new value.",
        getset
    ),
    spec!(
        "getdel",
        2,
        WRITE | FAST,
        1,
        1,
        1,
        "string",
        "6.2.0",
        "Returns the string value of a key after deleting the key.",
        getdel
    ),
    spec!(
        "getex",
        -2,
        WRITE | FAST,
        1,
        1,
        1,
        "string",
        "6.2.0",
        "Returns the string value of a key after setting its expiration time.",
        getex
    ),
    spec!(
        "mget",
        -2,
        READONLY | FAST,
        1,
        -1,
        1,
        "string",
        "1.0.0",
        "Atomically returns the string values of one or more keys.",
        mget
    ),
    spec!(
        "mset",
        -3,
        WRITE | DENYOOM,
        1,
        -1,
        2,
        "string",
        "1.0.1",
        "Atomically creates or modifies the string values of one or more keys.",
        mset
    ),
    spec!(
        "msetnx",
        -3,
        WRITE | DENYOOM,
        1,
        -1,
        2,
        "string",
        "1.0.1",
        "Atomically modifies the string values of one or more keys only when all keys don't exist.",
        msetnx
    ),
    spec!(
        "incr",
        2,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "string",
        "1.0.0",
        "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
        incr
    ),
    spec!(
        "decr",
        2,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "string",
        "1.0.0",
        "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
        decr
    ),
    spec!(
        "incrby",
        3,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "string",
        "1.0.0",
        "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
        incrby
    ),
    spec!(
        "decrby",
        3,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "string",
        "1.0.0",
        "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.",
        decrby
    ),
    spec!(
        "incrbyfloat",
        3,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "string",
        "2.6.0",
        "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
        incrbyfloat
    ),
    spec!(
        "append",
        3,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "string",
        "2.0.0",
        "Appends a string to the value of a key. Creates the key if it doesn't exist.",
        append
    ),
    spec!("strlen", 2, READONLY | FAST, 1, 1, 1, "string", "2.2.0", "Returns the length of a string value.", strlen),
    spec!(
        "getrange",
        4,
        READONLY,
        1,
        1,
        1,
        "string",
        "2.4.0",
        "Returns a substring of the string stored at a key.",
        getrange
    ),
    spec!("substr", 4, READONLY, 1, 1, 1, "string", "1.0.0", "Returns a substring from a string value.", getrange),
    spec!("lcs", -3, READONLY, 1, 2, 1, "string", "7.0.0", "Finds the longest common substring.", lcs),
    spec!(
        "setrange",
        4,
        WRITE | DENYOOM,
        1,
        1,
        1,
        "string",
        "2.2.0",
        "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.",
        setrange
    ),
];
