//! Set commands: parse, call `kv`, reply.

use bytes::Bytes;
use kv::{CommandError, ReadOp, SetAlgebra, WriteOp};

use super::flags::{DENYOOM, FAST, READONLY, WRITE};
use super::hash::element_scan;
use super::keys::cursor;
use super::{optional_count, read, spec, write, Outcome, Spec};
use crate::args::Args;
use crate::session::Session;

type Result = std::result::Result<Outcome, CommandError>;

fn sadd(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    write(session, WriteOp::SAdd { key, members: args.rest() })
}

fn srem(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    write(session, WriteOp::SRem { key, members: args.rest() })
}

fn smembers(session: &mut Session, args: &mut Args) -> Result {
    read(session, ReadOp::SMembers { key: args.next()? })
}

fn sismember(session: &mut Session, args: &mut Args) -> Result {
    let (key, member) = (args.next()?, args.next()?);
    read(session, ReadOp::SIsMember { key, members: vec![member], many: false })
}

fn smismember(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    read(session, ReadOp::SIsMember { key, members: args.rest(), many: true })
}

fn scard(session: &mut Session, args: &mut Args) -> Result {
    read(session, ReadOp::SCard { key: args.next()? })
}

fn spop(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let count = optional_count(args)?;
    if args.remaining() > 0 {
        return Err(CommandError::Syntax);
    }
    // The proposer draws; the log carries the draw to every replica.
    write(session, WriteOp::SPop { key, count, seed: rand::random() })
}

fn srandmember(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let count = match args.next_opt() {
        None => None,
        Some(count) => match kv::number::parse_i64(&count) {
            None => return Err(CommandError::NotInteger),
            Some(i64::MIN) => return Err(CommandError::Other("ERR value is out of range".into())),
            Some(n) => Some(n),
        },
    };
    if args.remaining() > 0 {
        return Err(CommandError::Syntax);
    }
    read(session, ReadOp::SRandMember { key, count })
}

fn smove(session: &mut Session, args: &mut Args) -> Result {
    let (from, to, member) = (args.next()?, args.next()?, args.next()?);
    write(session, WriteOp::SMove { from, to, member })
}

fn algebra(session: &mut Session, args: &mut Args, algebra: SetAlgebra) -> Result {
    read(session, ReadOp::SAlgebra { algebra, keys: args.rest() })
}

fn sinter(session: &mut Session, args: &mut Args) -> Result {
    algebra(session, args, SetAlgebra::Inter)
}

fn sunion(session: &mut Session, args: &mut Args) -> Result {
    algebra(session, args, SetAlgebra::Union)
}

fn sdiff(session: &mut Session, args: &mut Args) -> Result {
    algebra(session, args, SetAlgebra::Diff)
}

fn store(session: &mut Session, args: &mut Args, algebra: SetAlgebra) -> Result {
    let destination = args.next()?;
    write(session, WriteOp::SStore { algebra, destination, keys: args.rest() })
}

fn sinterstore(session: &mut Session, args: &mut Args) -> Result {
    store(session, args, SetAlgebra::Inter)
}

fn sunionstore(session: &mut Session, args: &mut Args) -> Result {
    store(session, args, SetAlgebra::Union)
}

fn sdiffstore(session: &mut Session, args: &mut Args) -> Result {
    store(session, args, SetAlgebra::Diff)
}

/// `numkeys key…` of SINTERCARD and ZINTERCARD-like commands.
pub(super) fn numkeys(args: &mut Args) -> std::result::Result<Vec<Bytes>, CommandError> {
    let numkeys = super::positive_numkeys(args)?;
    if numkeys as usize > args.remaining() {
        return Err(CommandError::Other("ERR Number of keys can't be greater than number of args".into()));
    }
    (0..numkeys).map(|_| args.next()).collect()
}

/// `[LIMIT n]` of SINTERCARD and ZINTERCARD (0: no limit).
pub(super) fn card_limit(args: &mut Args) -> std::result::Result<u64, CommandError> {
    let mut limit = 0;
    while args.remaining() > 0 {
        match args.next_keyword()?.as_str() {
            "LIMIT" if args.remaining() > 0 => {
                limit = kv::number::parse_i64(&args.next()?)
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| CommandError::Other("ERR LIMIT can't be negative".into()))?
                    as u64;
            }
            _ => return Err(CommandError::Syntax),
        }
    }
    Ok(limit)
}

fn sintercard(session: &mut Session, args: &mut Args) -> Result {
    let keys = numkeys(args)?;
    let limit = card_limit(args)?;
    read(session, ReadOp::SInterCard { keys, limit })
}

fn sscan(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let cursor = cursor(args)?;
    let args = element_scan(args)?;
    read(session, ReadOp::SScan { key, cursor, args })
}

pub(super) const COMMANDS: &[Spec] = &[
    spec!("sadd", -3, WRITE | DENYOOM | FAST, 1, 1, 1, "set", "1.0.0", "Adds one or more members to a set. Creates the key if it doesn't exist.", sadd),
    spec!("srem", -3, WRITE | FAST, 1, 1, 1, "set", "1.0.0", "Removes one or more members from a set. Deletes the set if the last member was removed.", srem),
    spec!("smembers", 2, READONLY, 1, 1, 1, "set", "1.0.0", "Returns all members of a set.", smembers),
    spec!("sismember", 3, READONLY | FAST, 1, 1, 1, "set", "1.0.0", "Determines whether a member belongs to a set.", sismember),
    spec!("smismember", -3, READONLY | FAST, 1, 1, 1, "set", "6.2.0", "Determines whether multiple members belong to a set.", smismember),
    spec!("scard", 2, READONLY | FAST, 1, 1, 1, "set", "1.0.0", "Returns the number of members in a set.", scard),
    spec!("spop", -2, WRITE | FAST, 1, 1, 1, "set", "1.0.0", "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.", spop),
    spec!("srandmember", -2, READONLY, 1, 1, 1, "set", "1.0.0", "Get one or multiple random members from a set", srandmember),
    spec!("smove", 4, WRITE | FAST, 1, 2, 1, "set", "1.0.0", "Moves a member from one set to another.", smove),
    spec!("sinter", -2, READONLY, 1, -1, 1, "set", "1.0.0", "Returns the intersect of multiple sets.", sinter),
    spec!("sunion", -2, READONLY, 1, -1, 1, "set", "1.0.0", "Returns the union of multiple sets.", sunion),
    spec!("sdiff", -2, READONLY, 1, -1, 1, "set", "1.0.0", "Returns the difference of multiple sets.", sdiff),
    spec!("sinterstore", -3, WRITE | DENYOOM, 1, -1, 1, "set", "1.0.0", "Stores the intersect of multiple sets in a key.", sinterstore),
    spec!("sunionstore", -3, WRITE | DENYOOM, 1, -1, 1, "set", "1.0.0", "Stores the union of multiple sets in a key.", sunionstore),
    spec!("sdiffstore", -3, WRITE | DENYOOM, 1, -1, 1, "set", "1.0.0", "Stores the difference of multiple sets in a key.", sdiffstore),
    spec!("sintercard", -3, READONLY, 0, 0, 0, "set", "7.0.0", "Returns the number of members of the intersect of multiple sets.", sintercard),
    spec!("sscan", -3, READONLY, 1, 1, 1, "set", "2.0.0", "Iterates over members of a set.", sscan),
];
