//! Generic key commands: parse, call `kv`, reply.

use kv::{CommandError, ExpireAt, ExpireCondition, ReadOp, ScanArgs, SortOptions, WriteOp, DATABASES};

use super::flags::{DENYOOM, FAST, READONLY, WRITE};
use super::{help, read, reply, spec, unknown_subcommand, write, Outcome, Spec};
use crate::args::Args;
use crate::session::Session;

type Result = std::result::Result<Outcome, CommandError>;

fn del(session: &mut Session, args: &mut Args) -> Result {
    write(session, WriteOp::Del { keys: args.rest() })
}

fn exists(session: &mut Session, args: &mut Args) -> Result {
    let keys = args.rest();
    read(session, ReadOp::Exists { keys })
}

fn touch(session: &mut Session, args: &mut Args) -> Result {
    let keys = args.rest();
    read(session, ReadOp::Exists { keys })
}

fn type_(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    read(session, ReadOp::Type { key })
}

fn rename(session: &mut Session, args: &mut Args) -> Result {
    let (from, to) = (args.next()?, args.next()?);
    write(session, WriteOp::Rename { from, to, only_if_absent: false })
}

fn renamenx(session: &mut Session, args: &mut Args) -> Result {
    let (from, to) = (args.next()?, args.next()?);
    write(session, WriteOp::Rename { from, to, only_if_absent: true })
}

/// Parses a database number as SELECT, COPY … DB and MOVE take it.
pub(super) fn db_index(args: &mut Args) -> std::result::Result<u8, CommandError> {
    let index =
        args.next_i64().map_err(|_| CommandError::Other("ERR value is not an integer or out of range".into()))?;
    u8::try_from(index).ok().filter(|db| usize::from(*db) < DATABASES).ok_or(CommandError::DbIndexOutOfRange)
}

fn copy(session: &mut Session, args: &mut Args) -> Result {
    let (from, to) = (args.next()?, args.next()?);
    let mut to_db = session.db;
    let mut replace = false;
    while args.remaining() > 0 {
        match args.next_keyword()?.as_str() {
            "REPLACE" => replace = true,
            "DB" if args.remaining() > 0 => to_db = db_index(args)?,
            _ => return Err(CommandError::Syntax),
        }
    }
    write(session, WriteOp::Copy { from, to, to_db, replace })
}

fn move_key(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let to_db = db_index(args)?;
    if to_db == session.db {
        return Err(CommandError::SameObject);
    }
    write(session, WriteOp::Move { key, to_db })
}

/// SWAPDB index1 index2: replicated and atomic like any write (see
/// `kv`'s database map); WATCH on either database aborts.
fn swapdb(session: &mut Session, args: &mut Args) -> Result {
    let index = |args: &mut Args, which: &str| {
        let text = args.next()?;
        let n = kv::number::parse_i64(&text)
            .filter(|n| i32::try_from(*n).is_ok())
            .ok_or_else(|| CommandError::Other(format!("ERR invalid {which} DB index")))?;
        Ok::<i64, CommandError>(n)
    };
    let (a, b) = (index(args, "first")?, index(args, "second")?);
    let in_range = |n: i64| u8::try_from(n).ok().filter(|db| usize::from(*db) < DATABASES);
    let (Some(a), Some(b)) = (in_range(a), in_range(b)) else {
        return Err(CommandError::Other("ERR DB index is out of range".into()));
    };
    if session.server.kv.shards() > 1 {
        // Each group keeps its own map of databases; swapping them all at
        // once needs a cross-shard transaction.
        return Err(CommandError::Other("ERR SWAPDB is not supported with several shards".into()));
    }
    write(session, WriteOp::SwapDb { a, b })
}

fn dump(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    read(session, ReadOp::Dump { key })
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f]. Seshat
/// keeps no access clock or frequency, so IDLETIME and FREQ are checked and
/// ignored.
fn restore(session: &mut Session, args: &mut Args) -> Result {
    let (key, ttl, payload) = (args.next()?, args.next()?, args.next()?);
    let (mut replace, mut absolute, mut idle_or_freq) = (false, false, false);
    while args.remaining() > 0 {
        match args.next_keyword()?.as_str() {
            "REPLACE" => replace = true,
            "ABSTTL" => absolute = true,
            "IDLETIME" if args.remaining() > 0 && !idle_or_freq => {
                if args.next_i64()? < 0 {
                    return Err(CommandError::Other("ERR Invalid IDLETIME value, must be >= 0".into()));
                }
                idle_or_freq = true;
            }
            "FREQ" if args.remaining() > 0 && !idle_or_freq => {
                if !(0..=255).contains(&args.next_i64()?) {
                    return Err(CommandError::Other("ERR Invalid FREQ value, must be >= 0 and <= 255".into()));
                }
                idle_or_freq = true;
            }
            _ => return Err(CommandError::Syntax),
        }
    }
    let ttl_ms = kv::number::parse_i64(&ttl).ok_or(CommandError::NotInteger)?;
    write(session, WriteOp::Restore { key, ttl_ms, absolute, replace, payload })
}

/// SORT and SORT_RO (`read_only`: no STORE).
fn sort_with(session: &mut Session, args: &mut Args, read_only: bool) -> Result {
    let key = args.next()?;
    let mut options = SortOptions::default();
    let mut store = None;
    while args.remaining() > 0 {
        match args.next_keyword()?.as_str() {
            "ASC" => options.desc = false,
            "DESC" => options.desc = true,
            "ALPHA" => options.alpha = true,
            "BY" if args.remaining() > 0 => options.by = Some(args.next()?),
            "GET" if args.remaining() > 0 => options.get.push(args.next()?),
            "LIMIT" if args.remaining() > 1 => options.limit = Some((args.next_i64()?, args.next_i64()?)),
            "STORE" if !read_only && args.remaining() > 0 => store = Some(args.next()?),
            _ => return Err(CommandError::Syntax),
        }
    }
    sort_patterns_in_place(session, &key, &options)?;
    match store {
        Some(destination) => write(session, WriteOp::SortStore { key, options, destination }),
        None => read(session, ReadOp::Sort { key, options }),
    }
}

/// With several shards (or the Redis Cluster protocol), SORT's BY and GET
/// patterns must name keys of the sorted key's shard (slot), as Redis
/// Cluster requires: the sort reads them in that shard's group only. A
/// pattern whose keys could be anywhere is refused.
fn sort_patterns_in_place(
    session: &Session,
    key: &[u8],
    options: &SortOptions,
) -> std::result::Result<(), CommandError> {
    let cluster_enabled = session.server.facts.cluster_enabled;
    let kv = &session.server.kv;
    if kv.shards() == 1 && !cluster_enabled {
        return Ok(());
    }
    let key_slot = storage::keyspace::hash_slot(key);
    let in_place = |pattern: &[u8]| match pattern_slot(pattern) {
        None => false,
        Some(slot) if cluster_enabled => slot == key_slot,
        Some(slot) => kv.slot_shard(slot) == kv.slot_shard(key_slot),
    };
    let (scope, place) = if cluster_enabled { ("Cluster mode", "slots") } else { ("several shards", "shards") };
    let patterns = options.by.iter().map(|by| ("BY", by)).chain(options.get.iter().map(|get| ("GET", get)));
    for (option, pattern) in patterns {
        // Only patterns with a `*` name other keys (BY without one means
        // "do not sort", GET # the element itself).
        if pattern.contains(&b'*') && !in_place(pattern) {
            return Err(CommandError::Other(format!(
                "ERR {option} option of SORT denied in {scope} when keys formed by the pattern may be in different {place}."
            )));
        }
    }
    Ok(())
}

/// The hash slot of every key a SORT pattern can form, if there is one:
/// the slot of a non-empty `{tag}` that closes before any wildcard (`*`,
/// `?`, `[`) or escape, or of the whole pattern if it has none of them.
fn pattern_slot(pattern: &[u8]) -> Option<u16> {
    // Where the first `{` is, while no `}` has closed it; an empty `{}`
    // makes the whole key hashed, whatever braces follow.
    let mut open = None;
    let mut tags = true;
    for (i, byte) in pattern.iter().enumerate() {
        match byte {
            b'*' | b'?' | b'[' | b'\\' => return None,
            b'{' if tags && open.is_none() => open = Some(i),
            b'}' if tags && open.is_some() => match open {
                Some(start) if i == start + 1 => tags = false,
                Some(start) => return Some(storage::keyspace::hash_slot(&pattern[start..=i])),
                None => {}
            },
            _ => {}
        }
    }
    Some(storage::keyspace::hash_slot(pattern))
}

fn sort(session: &mut Session, args: &mut Args) -> Result {
    sort_with(session, args, false)
}

fn sort_ro(session: &mut Session, args: &mut Args) -> Result {
    sort_with(session, args, true)
}

fn keys(session: &mut Session, args: &mut Args) -> Result {
    let pattern = args.next()?;
    read(session, ReadOp::Keys { pattern })
}

/// A SCAN-family cursor.
pub(super) fn cursor(args: &mut Args) -> std::result::Result<u64, CommandError> {
    let cursor = args.next()?;
    std::str::from_utf8(&cursor)
        .ok()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| CommandError::Other("ERR invalid cursor".into()))
}

/// A SCAN-family COUNT: at least 1.
pub(super) fn scan_count(args: &mut Args) -> std::result::Result<usize, CommandError> {
    let count = args.next_i64()?;
    if count < 1 {
        return Err(CommandError::Syntax);
    }
    Ok(count as usize)
}

fn scan(session: &mut Session, args: &mut Args) -> Result {
    let cursor = cursor(args)?;
    let mut scan = ScanArgs::default();
    while args.remaining() > 0 {
        match args.next_keyword()?.as_str() {
            "MATCH" if args.remaining() > 0 => scan.pattern = Some(args.next()?),
            "COUNT" if args.remaining() > 0 => scan.count = Some(scan_count(args)?),
            "TYPE" if args.remaining() > 0 => scan.type_name = Some(args.next()?),
            _ => return Err(CommandError::Syntax),
        }
    }
    read(session, ReadOp::Scan { cursor, args: scan })
}

fn randomkey(session: &mut Session, _args: &mut Args) -> Result {
    read(session, ReadOp::RandomKey)
}

fn dbsize(session: &mut Session, _args: &mut Args) -> Result {
    read(session, ReadOp::DbSize)
}

/// FLUSHDB and FLUSHALL take an optional ASYNC or SYNC; both are immediate
/// here (a flush is a range delete).
fn flush_mode(args: &mut Args) -> std::result::Result<(), CommandError> {
    if let Some(mode) = args.next_opt() {
        if !mode.eq_ignore_ascii_case(b"ASYNC") && !mode.eq_ignore_ascii_case(b"SYNC") {
            return Err(CommandError::Syntax);
        }
    }
    args.finish()
}

fn flushdb(session: &mut Session, args: &mut Args) -> Result {
    flush_mode(args)?;
    write(session, WriteOp::FlushDb)
}

fn flushall(session: &mut Session, args: &mut Args) -> Result {
    flush_mode(args)?;
    write(session, WriteOp::FlushAll)
}

/// EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT.
fn expire_with(session: &mut Session, args: &mut Args, seconds: bool, absolute: bool, command: &str) -> Result {
    let key = args.next()?;
    let amount = args.next_i64()?;
    let mut condition = ExpireCondition::Always;
    while args.remaining() > 0 {
        let keyword = args.next_keyword()?;
        let wanted = match keyword.as_str() {
            "NX" => ExpireCondition::IfNone,
            "XX" => ExpireCondition::IfSome,
            "GT" => ExpireCondition::IfGreater,
            "LT" => ExpireCondition::IfLess,
            _ => return Err(CommandError::Other(format!("ERR Unsupported option {keyword}"))),
        };
        condition = combine(condition, wanted)?;
    }
    let ms = if seconds {
        amount.checked_mul(1000).ok_or_else(|| CommandError::InvalidExpireTime(command.into()))?
    } else {
        amount
    };
    let at = if absolute { ExpireAt::AtMs(ms) } else { ExpireAt::AfterMs(ms) };
    write(session, WriteOp::Expire { key, at, condition, command: command.into() })
}

/// Combines EXPIRE's options the way Redis accepts them: XX may join GT
/// (which already needs an expiry) or LT; NX joins none; GT and LT exclude
/// each other.
fn combine(current: ExpireCondition, wanted: ExpireCondition) -> std::result::Result<ExpireCondition, CommandError> {
    use ExpireCondition::*;
    let nx_conflict =
        || CommandError::Other("ERR NX and XX, GT or LT options at the same time are not compatible".into());
    let gt_lt_conflict = || CommandError::Other("ERR GT and LT options at the same time are not compatible".into());
    match (current, wanted) {
        (Always, wanted) => Ok(wanted),
        (IfNone, IfNone) => Ok(IfNone),
        (IfNone, _) | (_, IfNone) => Err(nx_conflict()),
        (IfGreater, IfLess | IfSomeAndLess) | (IfLess | IfSomeAndLess, IfGreater) => Err(gt_lt_conflict()),
        (IfSome, IfLess) | (IfLess, IfSome) => Ok(IfSomeAndLess),
        (IfSome, other) => Ok(other),
        (current, _) => Ok(current),
    }
}

fn expire(session: &mut Session, args: &mut Args) -> Result {
    expire_with(session, args, true, false, "expire")
}

fn pexpire(session: &mut Session, args: &mut Args) -> Result {
    expire_with(session, args, false, false, "pexpire")
}

fn expireat(session: &mut Session, args: &mut Args) -> Result {
    expire_with(session, args, true, true, "expireat")
}

fn pexpireat(session: &mut Session, args: &mut Args) -> Result {
    expire_with(session, args, false, true, "pexpireat")
}

fn ttl(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    read(session, ReadOp::Ttl { key, millis: false })
}

fn pttl(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    read(session, ReadOp::Ttl { key, millis: true })
}

fn expiretime(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    read(session, ReadOp::ExpireTime { key, millis: false })
}

fn pexpiretime(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    read(session, ReadOp::ExpireTime { key, millis: true })
}

fn persist(session: &mut Session, args: &mut Args) -> Result {
    write(session, WriteOp::Persist { key: args.next()? })
}

fn object(session: &mut Session, args: &mut Args) -> Result {
    let sub = args.next()?;
    let sub_upper = String::from_utf8_lossy(&sub).to_ascii_uppercase();
    if sub_upper == "HELP" {
        args.finish().map_err(|_| super::wrong_arity("object|help"))?;
        return reply(help(&[
            "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
            "HELP",
            "    Print this help.",
        ]));
    }
    let full_name = format!("object|{}", sub_upper.to_ascii_lowercase());
    if !matches!(sub_upper.as_str(), "ENCODING" | "FREQ" | "IDLETIME" | "REFCOUNT") {
        return Err(unknown_subcommand(&sub, "object"));
    }
    let key = args.next().map_err(|_| super::wrong_arity(&full_name))?;
    args.finish().map_err(|_| super::wrong_arity(&full_name))?;
    match sub_upper.as_str() {
        "ENCODING" => {
            let limits = session.server.config.read().expect("config lock").encodings;
            read(session, ReadOp::ObjectEncodingWith { key, limits })
        }
        "FREQ" => read(session, ReadOp::ObjectFreq { key }),
        // Seshat keeps no access times or shared objects: a live key is
        // reported as just used and referenced once.
        "IDLETIME" => read(session, ReadOp::ObjectConstant { key, present: 0 }),
        _ => read(session, ReadOp::ObjectConstant { key, present: 1 }),
    }
}

pub(super) const COMMANDS: &[Spec] = &[
    spec!("del", -2, WRITE, 1, -1, 1, "generic", "1.0.0", "Deletes one or more keys.", del),
    spec!("move", 3, WRITE | FAST, 1, 1, 1, "generic", "1.0.0", "Moves a key to another database.", move_key),
    spec!("swapdb", 3, WRITE | FAST, 0, 0, 0, "server", "4.0.0", "Swaps two Redis databases.", swapdb),
    spec!(
        "dump",
        2,
        READONLY,
        1,
        1,
        1,
        "generic",
        "2.6.0",
        "Returns a serialized representation of the value stored at a key.",
        dump
    ),
    spec!(
        "restore",
        -4,
        WRITE | DENYOOM,
        1,
        1,
        1,
        "generic",
        "2.6.0",
        "Creates a key from the serialized representation of a value.",
        restore
    ),
    spec!(
        "sort",
        -2,
        WRITE | DENYOOM,
        1,
        1,
        1,
        "generic",
        "1.0.0",
        "Sorts the elements in a list, a set, or a sorted set, optionally storing the result.",
        sort
    ),
    spec!(
        "sort_ro",
        -2,
        READONLY,
        1,
        1,
        1,
        "generic",
        "7.0.0",
        "Returns the sorted elements of a list, a set, or a sorted set.",
        sort_ro
    ),
    spec!("unlink", -2, WRITE | FAST, 1, -1, 1, "generic", "4.0.0", "Asynchronously deletes one or more keys.", del),
    spec!(
        "exists",
        -2,
        READONLY | FAST,
        1,
        -1,
        1,
        "generic",
        "1.0.0",
        "Determines whether one or more keys exist.",
        exists
    ),
    spec!(
        "touch",
        -2,
        READONLY | FAST,
        1,
        -1,
        1,
        "generic",
        "3.2.1",
        "Returns the number of existing keys out of those specified after updating the time they were last accessed.",
        touch
    ),
    spec!(
        "type",
        2,
        READONLY | FAST,
        1,
        1,
        1,
        "generic",
        "1.0.0",
        "Determines the type of value stored at a key.",
        type_
    ),
    spec!("rename", 3, WRITE, 1, 2, 1, "generic", "1.0.0", "Renames a key and overwrites the destination.", rename),
    spec!(
        "renamenx",
        3,
        WRITE | FAST,
        1,
        2,
        1,
        "generic",
        "1.0.0",
        "Renames a key only when the target key name doesn't exist.",
        renamenx
    ),
    spec!("copy", -3, WRITE, 1, 2, 1, "generic", "6.2.0", "Copies the value of a key to a new key.", copy),
    spec!("keys", 2, READONLY, 0, 0, 0, "generic", "1.0.0", "Returns all key names that match a pattern.", keys),
    spec!("scan", -2, READONLY, 0, 0, 0, "generic", "2.8.0", "Iterates over the key names in the database.", scan),
    spec!(
        "randomkey",
        1,
        READONLY,
        0,
        0,
        0,
        "generic",
        "1.0.0",
        "Returns a random key name from the database.",
        randomkey
    ),
    spec!(
        "dbsize",
        1,
        READONLY | FAST,
        0,
        0,
        0,
        "server",
        "1.0.0",
        "Returns the number of keys in the database.",
        dbsize
    ),
    spec!("flushdb", -1, WRITE, 0, 0, 0, "server", "1.0.0", "Removes all keys from the current database.", flushdb),
    spec!("flushall", -1, WRITE, 0, 0, 0, "server", "1.0.0", "Removes all keys from all databases.", flushall),
    spec!(
        "expire",
        -3,
        WRITE | FAST,
        1,
        1,
        1,
        "generic",
        "1.0.0",
        "Sets the expiration time of a key in seconds.",
        expire
    ),
    spec!(
        "pexpire",
        -3,
        WRITE | FAST,
        1,
        1,
        1,
        "generic",
        "2.6.0",
        "Sets the expiration time of a key in milliseconds.",
        pexpire
    ),
    spec!(
        "expireat",
        -3,
        WRITE | FAST,
        1,
        1,
        1,
        "generic",
        "1.2.0",
        "Sets the expiration time of a key to a Unix timestamp.",
        expireat
    ),
    spec!(
        "pexpireat",
        -3,
        WRITE | FAST,
        1,
        1,
        1,
        "generic",
        "2.6.0",
        "Sets the expiration time of a key to a Unix milliseconds timestamp.",
        pexpireat
    ),
    spec!(
        "ttl",
        2,
        READONLY | FAST,
        1,
        1,
        1,
        "generic",
        "1.0.0",
        "Returns the expiration time in seconds of a key.",
        ttl
    ),
    spec!(
        "pttl",
        2,
        READONLY | FAST,
        1,
        1,
        1,
        "generic",
        "2.6.0",
        "Returns the expiration time in milliseconds of a key.",
        pttl
    ),
    spec!(
        "expiretime",
        2,
        READONLY | FAST,
        1,
        1,
        1,
        "generic",
        "7.0.0",
        "Returns the expiration time of a key as a Unix timestamp.",
        expiretime
    ),
    spec!(
        "pexpiretime",
        2,
        READONLY | FAST,
        1,
        1,
        1,
        "generic",
        "7.0.0",
        "Returns the expiration time of a key as a Unix milliseconds timestamp.",
        pexpiretime
    ),
    spec!("persist", 2, WRITE | FAST, 1, 1, 1, "generic", "2.2.0", "Removes the expiration time of a key.", persist),
    spec!(
        "object",
        -2,
        READONLY,
        2,
        2,
        1,
        "generic",
        "2.2.3",
        "A container for object introspection commands.",
        object
    ),
];

#[cfg(test)]
mod tests {
    use super::pattern_slot;
    use storage::keyspace::hash_slot;

    #[test]
    fn a_sort_pattern_has_a_slot_only_if_its_keys_share_one() {
        assert_eq!(pattern_slot(b"{user}:weight_*"), Some(hash_slot(b"user")));
        assert_eq!(pattern_slot(b"w_{user}_*->field"), Some(hash_slot(b"user")));
        assert_eq!(pattern_slot(b"weight_*"), None, "the element decides the key");
        assert_eq!(pattern_slot(b"weight_{*}"), None, "the wildcard is the tag");
        assert_eq!(pattern_slot(b"{}{user}_*"), None, "an empty tag: the whole key is hashed");
        assert_eq!(pattern_slot(b"w\\{user}_*"), None);
        assert_eq!(pattern_slot(b"fixed"), Some(hash_slot(b"fixed")));
    }
}
