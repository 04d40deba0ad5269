//! List commands, blocking ones included: parse, call `kv`, reply.

use kv::{BlockingPop, CommandError, End, LposOptions, ReadOp, WriteOp};

use super::blocking::{blocking, timeout};
use super::flags::{BLOCKING, DENYOOM, FAST, NOSCRIPT, READONLY, WRITE};
use super::{mpop_args, optional_count, read, spec, write, Outcome, Spec};
use crate::args::Args;
use crate::session::Session;

type Result = std::result::Result<Outcome, CommandError>;

fn side(keyword: &str) -> Option<End> {
    match keyword {
        "LEFT" => Some(End::Left),
        "RIGHT" => Some(End::Right),
        _ => None,
    }
}

fn end(args: &mut Args) -> std::result::Result<End, CommandError> {
    side(&args.next_keyword()?).ok_or(CommandError::Syntax)
}

fn push(session: &mut Session, args: &mut Args, end: End, only_if_exists: bool) -> Result {
    let key = args.next()?;
    write(session, WriteOp::LPush { key, values: args.rest(), end, only_if_exists })
}

fn lpush(session: &mut Session, args: &mut Args) -> Result {
    push(session, args, End::Left, false)
}

fn rpush(session: &mut Session, args: &mut Args) -> Result {
    push(session, args, End::Right, false)
}

fn lpushx(session: &mut Session, args: &mut Args) -> Result {
    push(session, args, End::Left, true)
}

fn rpushx(session: &mut Session, args: &mut Args) -> Result {
    push(session, args, End::Right, true)
}

fn pop(session: &mut Session, args: &mut Args, end: End) -> Result {
    let key = args.next()?;
    let count = optional_count(args)?;
    if args.remaining() > 0 {
        return Err(super::wrong_arity(if end == End::Left { "lpop" } else { "rpop" }));
    }
    write(session, WriteOp::LPop { key, end, count })
}

fn lpop(session: &mut Session, args: &mut Args) -> Result {
    pop(session, args, End::Left)
}

fn rpop(session: &mut Session, args: &mut Args) -> Result {
    pop(session, args, End::Right)
}

fn llen(session: &mut Session, args: &mut Args) -> Result {
    read(session, ReadOp::LLen { key: args.next()? })
}

fn lindex(session: &mut Session, args: &mut Args) -> Result {
    let (key, index) = (args.next()?, args.next_i64()?);
    read(session, ReadOp::LIndex { key, index })
}

fn lrange(session: &mut Session, args: &mut Args) -> Result {
    let (key, start, stop) = (args.next()?, args.next_i64()?, args.next_i64()?);
    read(session, ReadOp::LRange { key, start, stop })
}

fn lset(session: &mut Session, args: &mut Args) -> Result {
    let (key, index, value) = (args.next()?, args.next_i64()?, args.next()?);
    write(session, WriteOp::LSet { key, index, value })
}

fn linsert(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let before = match args.next_keyword()?.as_str() {
        "BEFORE" => true,
        "AFTER" => false,
        _ => return Err(CommandError::Syntax),
    };
    let (pivot, value) = (args.next()?, args.next()?);
    write(session, WriteOp::LInsert { key, before, pivot, value })
}

fn lrem(session: &mut Session, args: &mut Args) -> Result {
    let (key, count, value) = (args.next()?, args.next_i64()?, args.next()?);
    write(session, WriteOp::LRem { key, count, value })
}

fn ltrim(session: &mut Session, args: &mut Args) -> Result {
    let (key, start, stop) = (args.next()?, args.next_i64()?, args.next_i64()?);
    write(session, WriteOp::LTrim { key, start, stop })
}

fn lpos(session: &mut Session, args: &mut Args) -> Result {
    let (key, element) = (args.next()?, args.next()?);
    let mut options = LposOptions { rank: 1, count: None, max_len: 0 };
    while args.remaining() > 0 {
        let option = args.next_keyword()?;
        if args.remaining() == 0 {
            return Err(CommandError::Syntax);
        }
        let value = args.next_i64()?;
        match option.as_str() {
            "RANK" if value == 0 || value == i64::MIN => {
                return Err(CommandError::Other(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use \
                     negative to start from the end of the list"
                        .into(),
                ))
            }
            "RANK" => options.rank = value,
            "COUNT" if value < 0 => return Err(CommandError::Other("ERR COUNT can't be negative".into())),
            "COUNT" => options.count = Some(value as u64),
            "MAXLEN" if value < 0 => return Err(CommandError::Other("ERR MAXLEN can't be negative".into())),
            "MAXLEN" => options.max_len = value as u64,
            _ => return Err(CommandError::Syntax),
        }
    }
    read(session, ReadOp::LPos { key, element, options })
}

fn lmove(session: &mut Session, args: &mut Args) -> Result {
    let (from, to) = (args.next()?, args.next()?);
    let (from_end, to_end) = (end(args)?, end(args)?);
    write(session, WriteOp::LMove { from, to, from_end, to_end })
}

fn rpoplpush(session: &mut Session, args: &mut Args) -> Result {
    let (from, to) = (args.next()?, args.next()?);
    write(session, WriteOp::LMove { from, to, from_end: End::Right, to_end: End::Left })
}

fn lmpop(session: &mut Session, args: &mut Args) -> Result {
    let (keys, end, count) = mpop_args(args, side)?;
    write(session, WriteOp::LPopFirst { keys, end, count, single: false })
}

fn blocking_pop(session: &mut Session, args: &mut Args, end: End) -> Result {
    let mut keys = args.rest();
    let timeout = timeout(&keys.pop().expect("arity guarantees a timeout"))?;
    blocking(session, keys, BlockingPop::List { end, count: 1, single: true }, timeout)
}

fn blpop(session: &mut Session, args: &mut Args) -> Result {
    blocking_pop(session, args, End::Left)
}

fn brpop(session: &mut Session, args: &mut Args) -> Result {
    blocking_pop(session, args, End::Right)
}

fn blmpop(session: &mut Session, args: &mut Args) -> Result {
    let timeout = timeout(&args.next()?)?;
    let (keys, end, count) = mpop_args(args, side)?;
    blocking(session, keys, BlockingPop::List { end, count, single: false }, timeout)
}

fn blmove(session: &mut Session, args: &mut Args) -> Result {
    let (from, to) = (args.next()?, args.next()?);
    let (from_end, to_end) = (end(args)?, end(args)?);
    let timeout = timeout(&args.next()?)?;
    blocking(session, vec![from], BlockingPop::Move { to, from_end, to_end }, timeout)
}

fn brpoplpush(session: &mut Session, args: &mut Args) -> Result {
    let (from, to) = (args.next()?, args.next()?);
    let timeout = timeout(&args.next()?)?;
    blocking(session, vec![from], BlockingPop::Move { to, from_end: End::Right, to_end: End::Left }, timeout)
}

pub(super) const COMMANDS: &[Spec] = &[
    spec!("lpush", -3, WRITE | DENYOOM | FAST, 1, 1, 1, "list", "1.0.0", "Prepends one or more elements to a list. Creates the key if it doesn't exist.", lpush),
    spec!("rpush", -3, WRITE | DENYOOM | FAST, 1, 1, 1, "list", "1.0.0", "Appends one or more elements to a list. Creates the key if it doesn't exist.", rpush),
    spec!("lpushx", -3, WRITE | DENYOOM | FAST, 1, 1, 1, "list", "2.2.0", "Prepends one or more elements to a list only when the list exists.", lpushx),
    spec!("rpushx", -3, WRITE | DENYOOM | FAST, 1, 1, 1, "list", "2.2.0", "Appends an element to a list only when the list exists.", rpushx),
    spec!("lpop", -2, WRITE | FAST, 1, 1, 1, "list", "1.0.0", "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.", lpop),
    spec!("rpop", -2, WRITE | FAST, 1, 1, 1, "list", "1.0.0", "Returns and removes the last elements of a list. Deletes the list if the last element was popped.", rpop),
    spec!("llen", 2, READONLY | FAST, 1, 1, 1, "list", "1.0.0", "Returns the length of a list.", llen),
    spec!("lindex", 3, READONLY, 1, 1, 1, "list", "1.0.0", "Returns an element from a list by its index.", lindex),
    spec!("lrange", 4, READONLY, 1, 1, 1, "list", "1.0.0", "Returns a range of elements from a list.", lrange),
    spec!("lset", 4, WRITE | DENYOOM, 1, 1, 1, "list", "1.0.0", "Sets the value of an element in a list by its index.", lset),
    spec!("linsert", 5, WRITE | DENYOOM, 1, 1, 1, "list", "2.2.0", "Inserts an element before or after another element in a list.", linsert),
    spec!("lrem", 4, WRITE, 1, 1, 1, "list", "1.0.0", "Removes elements from a list. Deletes the list if the last element was removed.", lrem),
    spec!("ltrim", 4, WRITE, 1, 1, 1, "list", "1.0.0", "Removes elements from both ends a list. Deletes the list if all elements were trimmed.", ltrim),
    spec!("lpos", -3, READONLY, 1, 1, 1, "list", "6.0.6", "Returns the index of matching elements in a list.", lpos),
    spec!("lmove", 5, WRITE | DENYOOM, 1, 2, 1, "list", "6.2.0", "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.", lmove),
    spec!("rpoplpush", 3, WRITE | DENYOOM, 1, 2, 1, "list", "1.2.0", "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.", rpoplpush),
    spec!("lmpop", -4, WRITE, 0, 0, 0, "list", "7.0.0", "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.", lmpop),
    spec!("blpop", -3, WRITE | NOSCRIPT | BLOCKING, 1, -2, 1, "list", "2.0.0", "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", blpop),
    spec!("brpop", -3, WRITE | NOSCRIPT | BLOCKING, 1, -2, 1, "list", "2.0.0", "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", brpop),
    spec!("blmpop", -5, WRITE | NOSCRIPT | BLOCKING, 0, 0, 0, "list", "7.0.0", "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", blmpop),
    spec!("blmove", 6, WRITE | DENYOOM | NOSCRIPT | BLOCKING, 1, 2, 1, "list", "6.2.0", "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.", blmove),
    spec!("brpoplpush", 4, WRITE | DENYOOM | NOSCRIPT | BLOCKING, 1, 2, 1, "list", "2.2.0", "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.", brpoplpush),
];
