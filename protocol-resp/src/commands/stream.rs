//! Stream commands (`kv::stream`): parse as Redis 7.0's `t_stream.c`
//! does, in its order of checks, then read or write through `kv`.

use bytes::Bytes;
use kv::stream::{AddId, StreamId, Trim, TrimStrategy};
use std::time::Duration;

use kv::stream::group::GroupCommand;
use kv::{BlockingPop, CommandError, InfoKind, PendingRange, ReadOp, WriteOp};

use super::blocking::blocking;
use super::flags::{BLOCKING, DENYOOM, FAST, READONLY, WRITE};
use super::{help, read, reply, spec, unknown_subcommand, write, wrong_arity, Outcome, Spec};
use crate::args::Args;
use crate::session::Session;

type Result = std::result::Result<Outcome, CommandError>;

/// Redis's default `LIMIT` of `~` trimming: 100 nodes of
/// `stream-node-max-entries` (100, the size `kv::stream` emulates).
const DEFAULT_APPROX_LIMIT: u64 = 100 * kv::stream::NODE_ENTRIES;

fn error(message: &str) -> CommandError {
    CommandError::Other(format!("ERR {message}"))
}

fn integer(word: &[u8]) -> std::result::Result<i64, CommandError> {
    kv::number::parse_i64(word).ok_or(CommandError::NotInteger)
}

fn strict_id(word: &[u8]) -> std::result::Result<StreamId, CommandError> {
    Ok(StreamId::parse(word, 0, true, false)?.id)
}

/// XADD's and XTRIM's options as `streamParseAddOrTrimArgsOrReply` reads
/// them from `words` (the arguments after the key).
struct TrimArgs {
    trim: Option<Trim>,
    no_mkstream: bool,
    /// XADD: the ID, if not `*`.
    id: Option<AddId>,
    /// XADD: where the ID is in `words`.
    id_at: usize,
}

fn trim_args(words: &[Bytes], xadd: bool) -> std::result::Result<TrimArgs, CommandError> {
    let mut parsed = TrimArgs { trim: None, no_mkstream: false, id: None, id_at: words.len() };
    let (mut strategy, mut approx, mut limit) = (None, false, None);
    let mut i = 0;
    while i < words.len() {
        let more = words.len() - 1 - i;
        let option = words[i].to_ascii_uppercase();
        match option.as_slice() {
            b"*" if xadd => {
                parsed.id_at = i;
                break;
            }
            b"MAXLEN" | b"MINID" if more > 0 => {
                if strategy.is_some() {
                    return Err(error("syntax error, MAXLEN and MINID options at the same time are not compatible"));
                }
                approx = false;
                if more >= 2 && (words[i + 1].as_ref() == b"~" || words[i + 1].as_ref() == b"=") {
                    approx = words[i + 1].as_ref() == b"~";
                    i += 1;
                }
                let threshold = &words[i + 1];
                strategy = Some(if option.as_slice() == b"MAXLEN" {
                    let max = integer(threshold)?;
                    if max < 0 {
                        return Err(error("The MAXLEN argument must be >= 0."));
                    }
                    TrimStrategy::MaxLen(max as u64)
                } else {
                    TrimStrategy::MinId(strict_id(threshold)?)
                });
                i += 1;
            }
            b"LIMIT" if more > 0 => {
                let count = integer(&words[i + 1])?;
                if count < 0 {
                    return Err(error("The LIMIT argument must be >= 0."));
                }
                limit = Some(count as u64);
                i += 1;
            }
            b"NOMKSTREAM" if xadd => parsed.no_mkstream = true,
            _ if xadd => {
                let id = StreamId::parse(&words[i], 0, true, true)?;
                parsed.id = Some(if id.seq_given { AddId::Exact(id.id) } else { AddId::AutoSeq(id.id.ms) });
                parsed.id_at = i;
                break;
            }
            _ => return Err(CommandError::Syntax),
        }
        i += 1;
    }
    if limit.is_some_and(|limit| limit > 0) && strategy.is_none() {
        return Err(error("syntax error, LIMIT cannot be used without specifying a trimming strategy"));
    }
    if !xadd && strategy.is_none() {
        return Err(error("syntax error, XTRIM must be called with a trimming strategy"));
    }
    if limit.is_some() && !approx {
        return Err(error("syntax error, LIMIT cannot be used without the special ~ option"));
    }
    let limit = match limit {
        Some(limit) => limit,
        None if approx => DEFAULT_APPROX_LIMIT,
        None => 0,
    };
    parsed.trim = strategy.map(|strategy| Trim { strategy, approx, limit });
    Ok(parsed)
}

fn xadd(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let words = args.rest();
    let parsed = trim_args(&words, true)?;
    let fields = words.get(parsed.id_at + 1..).unwrap_or_default();
    if fields.len() < 2 || fields.len() % 2 == 1 {
        return Err(wrong_arity("xadd"));
    }
    let fields = fields.chunks(2).map(|pair| (pair[0].clone(), pair[1].clone())).collect();
    let id = parsed.id.unwrap_or(AddId::Auto);
    write(session, WriteOp::XAdd { key, id, fields, no_mkstream: parsed.no_mkstream, trim: parsed.trim })
}

fn xtrim(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let trim = trim_args(&args.rest(), false)?.trim.expect("XTRIM's options name a strategy");
    write(session, WriteOp::XTrim { key, trim })
}

fn xdel(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let ids = args.rest();
    write(session, WriteOp::XDel { key, ids })
}

fn xlen(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    args.finish()?;
    read(session, ReadOp::XLen { key })
}

/// An end of an XRANGE interval: `-`, `+`, `<ms>[-<seq>]`, or `(` and an
/// ID (exclusive); `missing_seq` completes `<ms>`.
fn interval_end(word: &[u8], missing_seq: u64) -> std::result::Result<(StreamId, bool), CommandError> {
    match word.strip_prefix(b"(").filter(|_| word.len() > 1) {
        Some(id) => Ok((StreamId::parse(id, missing_seq, true, false)?.id, true)),
        None => Ok((StreamId::parse(word, missing_seq, false, false)?.id, false)),
    }
}

fn range(session: &mut Session, args: &mut Args, rev: bool) -> Result {
    let key = args.next()?;
    let (first, second) = (args.next()?, args.next()?);
    let (start, end) = if rev { (second, first) } else { (first, second) };
    let (start, exclusive) = interval_end(&start, 0)?;
    let start = match exclusive {
        true => start.next().ok_or_else(|| error("invalid start ID for the interval"))?,
        false => start,
    };
    let (end, exclusive) = interval_end(&end, u64::MAX)?;
    let end = match exclusive {
        true => end.prev().ok_or_else(|| error("invalid end ID for the interval"))?,
        false => end,
    };
    let mut count = None;
    while let Some(option) = args.next_opt() {
        if !option.eq_ignore_ascii_case(b"COUNT") || args.remaining() == 0 {
            return Err(CommandError::Syntax);
        }
        count = Some(args.next_i64()?.max(0) as u64);
    }
    read(session, ReadOp::XRange { key, start, end, count, rev })
}

fn xrange(session: &mut Session, args: &mut Args) -> Result {
    range(session, args, false)
}

fn xrevrange(session: &mut Session, args: &mut Args) -> Result {
    range(session, args, true)
}

fn xsetid(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let last_id = strict_id(&args.next()?)?;
    let (mut entries_added, mut max_deleted) = (None, None);
    while let Some(option) = args.next_opt() {
        let option = option.to_ascii_uppercase();
        match option.as_slice() {
            b"ENTRIESADDED" if args.remaining() > 0 => {
                let added = args.next_i64()?;
                if added < 0 {
                    return Err(error("entries_added must be positive"));
                }
                entries_added = Some(added as u64);
            }
            b"MAXDELETEDID" if args.remaining() > 0 => {
                let id = strict_id(&args.next()?)?;
                if last_id < id {
                    return Err(error("The ID specified in XSETID is smaller than the provided max_deleted_entry_id"));
                }
                max_deleted = Some(id);
            }
            _ => return Err(CommandError::Syntax),
        }
    }
    write(session, WriteOp::XSetId { key, last_id, entries_added, max_deleted })
}

/// XREAD's and XREADGROUP's options, as Redis reads them.
struct ReadArgs {
    count: u64,
    /// BLOCK's milliseconds (0: forever).
    block: Option<u64>,
    keys: Vec<Bytes>,
    ids: Vec<Bytes>,
    /// XREADGROUP's group, consumer and NOACK.
    group: Option<(Bytes, Bytes, bool)>,
}

fn read_args(args: &mut Args, xreadgroup: bool) -> std::result::Result<ReadArgs, CommandError> {
    let (mut count, mut block, mut group, mut noack) = (0, None, None, false);
    while let Some(option) = args.next_opt() {
        let more = args.remaining();
        let option = option.to_ascii_uppercase();
        match option.as_slice() {
            b"BLOCK" if more > 0 => {
                let ms = kv::number::parse_i64(&args.next()?)
                    .ok_or_else(|| error("timeout is not an integer or out of range"))?;
                if ms < 0 {
                    return Err(error("timeout is negative"));
                }
                block = Some(ms as u64);
            }
            b"COUNT" if more > 0 => count = args.next_i64()?.max(0) as u64,
            b"STREAMS" if more > 0 => {
                let mut streams = args.rest();
                if !streams.len().is_multiple_of(2) {
                    return Err(error(
                        "Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                    ));
                }
                let ids = streams.split_off(streams.len() / 2);
                let group = group.map(|(name, consumer)| (name, consumer, noack));
                return Ok(ReadArgs { count, block, keys: streams, ids, group });
            }
            b"GROUP" if more >= 2 => {
                if !xreadgroup {
                    return Err(error("The GROUP option is only supported by XREADGROUP. You called XREAD instead."));
                }
                group = Some((args.next()?, args.next()?));
            }
            b"NOACK" => {
                if !xreadgroup {
                    return Err(error("The NOACK option is only supported by XREADGROUP. You called XREAD instead."));
                }
                noack = true;
            }
            _ => return Err(CommandError::Syntax),
        }
    }
    Err(CommandError::Syntax)
}

/// XREAD; with BLOCK, a client that finds nothing waits in the shard's
/// replicated queue of blocked clients until a write adds entries above
/// its IDs (`kv::BlockingPop::Stream`). Inside MULTI it never blocks.
fn xread(session: &mut Session, args: &mut Args) -> Result {
    let ReadArgs { count, block, keys, ids, .. } = read_args(args, false)?;
    match block {
        None => read(session, ReadOp::XRead { keys, ids, count }),
        Some(ms) => {
            let timeout = (ms > 0).then(|| Duration::from_millis(ms));
            blocking(session, keys, BlockingPop::Stream { ids, count }, timeout)
        }
    }
}

/// Redis's `addReplySubcommandSyntaxError`.
fn subcommand_syntax(subcommand: &[u8], command: &str) -> CommandError {
    let subcommand = String::from_utf8_lossy(subcommand);
    error(&format!("unknown subcommand or wrong number of arguments for '{subcommand}'. Try {command} HELP."))
}

/// Checks a container's subcommand arity as Redis 7's command table does
/// (`n` words exactly, or at least `-n`, the command and subcommand
/// included).
fn sub_arity(words: usize, arity: i64, full_name: &str) -> std::result::Result<(), CommandError> {
    let words = words as i64 + 2;
    match (arity >= 0 && words == arity) || (arity < 0 && words >= -arity) {
        true => Ok(()),
        false => Err(wrong_arity(full_name)),
    }
}

fn xgroup(session: &mut Session, args: &mut Args) -> Result {
    let typed = args.next()?;
    let sub = String::from_utf8_lossy(&typed).to_ascii_lowercase();
    let words = args.rest();
    let arity = match sub.as_str() {
        "help" => 2,
        "create" | "setid" => -5,
        "destroy" => 4,
        "createconsumer" | "delconsumer" => 5,
        _ => return Err(unknown_subcommand(&typed, "xgroup")),
    };
    sub_arity(words.len(), arity, &format!("xgroup|{sub}"))?;
    if sub == "help" {
        return reply(help(XGROUP_HELP));
    }
    let (key, group) = (words[0].clone(), words[1].clone());
    let (mut mkstream, mut entries_read) = (false, kv::stream::group::ENTRIES_READ_UNKNOWN);
    let mut i = 3;
    while i < words.len() {
        let option = words[i].to_ascii_uppercase();
        match option.as_slice() {
            b"MKSTREAM" if sub == "create" => mkstream = true,
            b"ENTRIESREAD" if (sub == "create" || sub == "setid") && i + 1 < words.len() => {
                i += 1;
                entries_read = integer(&words[i])?;
                if entries_read < 0 && entries_read != kv::stream::group::ENTRIES_READ_UNKNOWN {
                    return Err(error("value for ENTRIESREAD must be positive or -1"));
                }
            }
            _ => return Err(subcommand_syntax(&typed, "XGROUP")),
        }
        i += 1;
    }
    let argc = words.len() + 2;
    let well_formed = match sub.as_str() {
        "create" => argc <= 8,
        "setid" => argc == 5 || argc == 7,
        _ => true,
    };
    let command = match sub.as_str() {
        _ if !well_formed => GroupCommand::Malformed { subcommand: typed, needs_group: sub == "setid" },
        "create" => GroupCommand::Create { id: words[2].clone(), mkstream, entries_read },
        "setid" => GroupCommand::SetId { id: words[2].clone(), entries_read },
        "destroy" => GroupCommand::Destroy,
        "createconsumer" => GroupCommand::CreateConsumer { consumer: words[2].clone() },
        _ => GroupCommand::DelConsumer { consumer: words[2].clone() },
    };
    write(session, WriteOp::XGroup { key, group, command })
}

const XGROUP_HELP: &[&str] = &[
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
];

fn xreadgroup(session: &mut Session, args: &mut Args) -> Result {
    let ReadArgs { count, block, keys, ids, group } = read_args(args, true)?;
    let Some((group, consumer, noack)) = group else {
        return Err(error("Missing GROUP option for XREADGROUP"));
    };
    match block {
        None => write(session, WriteOp::XReadGroup { group, consumer, keys, ids, count, noack }),
        Some(ms) => {
            let timeout = (ms > 0).then(|| Duration::from_millis(ms));
            blocking(session, keys, BlockingPop::Group { group, consumer, ids, count, noack }, timeout)
        }
    }
}

fn xack(session: &mut Session, args: &mut Args) -> Result {
    let (key, group) = (args.next()?, args.next()?);
    let ids = args.rest();
    write(session, WriteOp::XAck { key, group, ids })
}

fn xclaim(session: &mut Session, args: &mut Args) -> Result {
    let (key, group, consumer) = (args.next()?, args.next()?, args.next()?);
    let args = args.rest();
    write(session, WriteOp::XClaim { key, group, consumer, args })
}

fn xautoclaim(session: &mut Session, args: &mut Args) -> Result {
    let (key, group, consumer) = (args.next()?, args.next()?, args.next()?);
    let min_idle = kv::number::parse_i64(&args.next()?)
        .ok_or_else(|| error("Invalid min-idle-time argument for XAUTOCLAIM"))?
        .max(0) as u64;
    let (start, exclusive) = interval_end(&args.next()?, 0)?;
    let start = match exclusive {
        true => start.next().ok_or_else(|| error("invalid start ID for the interval"))?,
        false => start,
    };
    let (mut count, mut justid) = (100, false);
    while let Some(option) = args.next_opt() {
        let option = option.to_ascii_uppercase();
        match option.as_slice() {
            b"COUNT" if args.remaining() > 0 => {
                const MAX: i64 = i64::MAX / 16;
                count = kv::number::parse_i64(&args.next()?)
                    .filter(|n| (1..=MAX).contains(n))
                    .ok_or_else(|| error("COUNT must be > 0"))? as u64;
            }
            b"JUSTID" => justid = true,
            _ => return Err(CommandError::Syntax),
        }
    }
    write(session, WriteOp::XAutoClaim { key, group, consumer, min_idle, start, count, justid })
}

fn xpending(session: &mut Session, args: &mut Args) -> Result {
    let (key, group) = (args.next()?, args.next()?);
    let words = args.rest();
    let argc = words.len() + 3;
    if argc != 3 && !(6..=9).contains(&argc) {
        return Err(CommandError::Syntax);
    }
    let range = match words.is_empty() {
        true => None,
        false => {
            let (mut at, mut min_idle) = (0, 0);
            if words[0].eq_ignore_ascii_case(b"IDLE") {
                min_idle = integer(&words[1])?;
                if argc < 8 {
                    return Err(CommandError::Syntax);
                }
                at = 2;
            }
            let count = integer(&words[at + 2])?.max(0) as u64;
            let (start, exclusive) = interval_end(&words[at], 0)?;
            let start = match exclusive {
                true => start.next().ok_or_else(|| error("invalid start ID for the interval"))?,
                false => start,
            };
            let (end, exclusive) = interval_end(&words[at + 1], u64::MAX)?;
            let end = match exclusive {
                true => end.prev().ok_or_else(|| error("invalid end ID for the interval"))?,
                false => end,
            };
            let consumer = words.get(at + 3).cloned();
            Some(PendingRange { min_idle, start, end, count, consumer })
        }
    };
    read(session, ReadOp::XPending { key, group, range })
}

fn xinfo(session: &mut Session, args: &mut Args) -> Result {
    let typed = args.next()?;
    let sub = String::from_utf8_lossy(&typed).to_ascii_lowercase();
    let words = args.rest();
    let arity = match sub.as_str() {
        "help" => 2,
        "consumers" => 4,
        "groups" => 3,
        "stream" => -3,
        _ => return Err(unknown_subcommand(&typed, "xinfo")),
    };
    sub_arity(words.len(), arity, &format!("xinfo|{sub}"))?;
    let key = match sub.as_str() {
        "help" => return reply(help(XINFO_HELP)),
        _ => words[0].clone(),
    };
    let kind = match sub.as_str() {
        "consumers" => InfoKind::Consumers { group: words[1].clone() },
        "groups" => InfoKind::Groups,
        _ => InfoKind::Stream { typed, options: words[1..].to_vec() },
    };
    read(session, ReadOp::XInfo { key, kind })
}

const XINFO_HELP: &[&str] = &[
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
];

#[rustfmt::skip]
pub(super) const COMMANDS: &[Spec] = &[
    spec!("xack", -4, WRITE | FAST, 1, 1, 1, "stream", "5.0.0", "Returns the number of messages that were successfully acknowledged by the consumer group member of a stream.", xack),
    spec!("xadd", -5, WRITE | DENYOOM | FAST, 1, 1, 1, "stream", "5.0.0", "Appends a new message to a stream. Creates the key if it doesn't exist.", xadd),
    spec!("xautoclaim", -6, WRITE | FAST, 1, 1, 1, "stream", "6.2.0", "Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member.", xautoclaim),
    spec!("xclaim", -6, WRITE | FAST, 1, 1, 1, "stream", "5.0.0", "Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member.", xclaim),
    spec!("xdel", -3, WRITE | FAST, 1, 1, 1, "stream", "5.0.0", "Returns the number of messages after removing them from a stream.", xdel),
    spec!("xgroup", -2, WRITE | DENYOOM, 2, 2, 1, "stream", "5.0.0", "A container for consumer groups commands.", xgroup),
    spec!("xinfo", -2, READONLY, 2, 2, 1, "stream", "5.0.0", "A container for stream introspection commands.", xinfo),
    spec!("xlen", 2, READONLY | FAST, 1, 1, 1, "stream", "5.0.0", "Return the number of messages in a stream.", xlen),
    spec!("xpending", -3, READONLY, 1, 1, 1, "stream", "5.0.0", "Returns the information and entries from a stream consumer group's pending entries list.", xpending),
    spec!("xrange", -4, READONLY, 1, 1, 1, "stream", "5.0.0", "Returns the messages from a stream within a range of IDs.", xrange),
    spec!("xread", -4, READONLY | BLOCKING, 0, 0, 0, "stream", "5.0.0", "Returns messages from multiple streams with IDs greater than the ones requested. Blocks until a message is available otherwise.", xread),
    spec!("xreadgroup", -7, WRITE | BLOCKING, 0, 0, 0, "stream", "5.0.0", "Returns new or historical messages from a stream for a consumer in a group. Blocks until a message is available otherwise.", xreadgroup),
    spec!("xrevrange", -4, READONLY, 1, 1, 1, "stream", "5.0.0", "Returns the messages from a stream within a range of IDs in reverse order.", xrevrange),
    spec!("xsetid", -3, WRITE | DENYOOM | FAST, 1, 1, 1, "stream", "5.0.0", "An internal command for replicating stream values.", xsetid),
    spec!("xtrim", -4, WRITE, 1, 1, 1, "stream", "5.0.0", "Deletes messages from the beginning of a stream.", xtrim),
];
