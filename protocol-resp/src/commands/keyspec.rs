//! Which arguments of a request are keys, and how the command uses each:
//! COMMAND GETKEYS and GETKEYSANDFLAGS, which cluster clients call for
//! commands whose keys move with their arguments (`numkeys`, SORT's
//! STORE).
//!
//! Fixed positions come from the command table (first key, last key,
//! step); the commands with movable keys are listed here. The flags follow
//! Redis 7's key specifications family by family: `RO`/`RW`/`OW`/`RM`
//! (read only, read-write, overwrite, remove) and what is done (`access`,
//! `update`, `insert`, `delete`).

use bytes::Bytes;

use super::flags;
use super::Spec;

/// How a command uses one key.
pub(crate) type KeyFlags = &'static [&'static str];

const READ: KeyFlags = &["RO", "access"];
/// Read without looking at the value (OBJECT, MEMORY USAGE, TOUCH).
const READ_META: KeyFlags = &["RO"];
const READ_WRITE: KeyFlags = &["RW", "access", "update"];
const INSERT: KeyFlags = &["RW", "insert"];
const UPDATE: KeyFlags = &["RW", "update"];
const POP: KeyFlags = &["RW", "access", "delete"];
const REMOVE_SOME: KeyFlags = &["RW", "delete"];
const OVERWRITE_NEW: KeyFlags = &["OW", "insert"];
const OVERWRITE: KeyFlags = &["OW", "update"];
const REMOVE: KeyFlags = &["RM", "delete"];

/// The arguments do not parse as the command's key layout.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct InvalidArguments;

/// The keys of `words` (the command name first) for `spec`, with flags.
pub(crate) fn keys(spec: &Spec, words: &[Bytes]) -> Result<Vec<(Bytes, KeyFlags)>, InvalidArguments> {
    let word = |i: usize| words.get(i).cloned().ok_or(InvalidArguments);
    let counted = |at: usize| -> Result<Vec<Bytes>, InvalidArguments> {
        let n = words.get(at).and_then(|w| kv::number::parse_i64(w)).filter(|n| *n > 0).ok_or(InvalidArguments)?;
        let keys = words.get(at + 1..at + 1 + n as usize).ok_or(InvalidArguments)?;
        Ok(keys.to_vec())
    };
    let with = |keys: Vec<Bytes>, flags: KeyFlags| keys.into_iter().map(|k| (k, flags)).collect::<Vec<_>>();
    Ok(match spec.name {
        "lmpop" | "zmpop" => with(counted(1)?, POP),
        "blmpop" | "bzmpop" => with(counted(2)?, POP),
        "sintercard" | "zintercard" | "zunion" | "zinter" | "zdiff" => with(counted(1)?, READ),
        "zunionstore" | "zinterstore" | "zdiffstore" => {
            let mut keys = vec![(word(1)?, OVERWRITE)];
            keys.extend(with(counted(2)?, READ));
            keys
        }
        "sort" | "sort_ro" => {
            let mut keys = vec![(word(1)?, READ)];
            let mut i = 2;
            while i < words.len() {
                let option = words[i].to_ascii_uppercase();
                i += match option.as_slice() {
                    b"LIMIT" => 3,
                    b"GET" | b"BY" => 2,
                    b"STORE" if i + 1 < words.len() => {
                        keys.push((words[i + 1].clone(), OVERWRITE));
                        2
                    }
                    _ => 1,
                };
            }
            keys
        }
        "georadius" | "georadiusbymember" => {
            // STORE or STOREDIST after the fixed arguments; the last wins.
            let stored = (5..words.len().saturating_sub(1))
                .filter(|&i| words[i].eq_ignore_ascii_case(b"STORE") || words[i].eq_ignore_ascii_case(b"STOREDIST"))
                .last();
            let mut keys = vec![(word(1)?, READ)];
            keys.extend(stored.map(|i| (words[i + 1].clone(), OVERWRITE)));
            keys
        }
        "xread" | "xreadgroup" => {
            // After STREAMS: the keys, then as many IDs.
            let streams = words.iter().position(|w| w.eq_ignore_ascii_case(b"STREAMS")).ok_or(InvalidArguments)?;
            let rest = &words[streams + 1..];
            if rest.is_empty() || !rest.len().is_multiple_of(2) {
                return Err(InvalidArguments);
            }
            let flags = if spec.name == "xread" { READ } else { READ_WRITE };
            with(rest[..rest.len() / 2].to_vec(), flags)
        }
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" => {
            let n = words.get(2).and_then(|w| kv::number::parse_i64(w)).filter(|n| *n >= 0).ok_or(InvalidArguments)?;
            let keys = words.get(3..3 + n as usize).ok_or(InvalidArguments)?;
            let flags = if spec.name.ends_with("_ro") { READ } else { READ_WRITE };
            with(keys.to_vec(), flags)
        }
        "memory" if words.get(1).is_some_and(|w| w.eq_ignore_ascii_case(b"USAGE")) => vec![(word(2)?, READ_META)],
        _ => fixed(spec, words),
    })
}

/// The keys at the table's positions.
fn fixed(spec: &Spec, words: &[Bytes]) -> Vec<(Bytes, KeyFlags)> {
    if spec.first_key <= 0 {
        return Vec::new();
    }
    let last = if spec.last_key < 0 { words.len() as i64 + spec.last_key } else { spec.last_key };
    let step = spec.step.max(1) as usize;
    let positions = (spec.first_key as usize..=last.max(0) as usize).step_by(step);
    let keys: Vec<usize> = positions.filter(|i| *i < words.len()).collect();
    let count = keys.len();
    keys.into_iter().enumerate().map(|(n, i)| (words[i].clone(), flags_of(spec, n, count))).collect()
}

/// The flags of the `n`-th of `count` keys of a fixed-position command.
fn flags_of(spec: &Spec, n: usize, count: usize) -> KeyFlags {
    let last = n + 1 == count && count > 1;
    match spec.name {
        "object" | "touch" => READ_META,
        _ if spec.flags & flags::WRITE == 0 => READ,
        "del" | "unlink" => REMOVE,
        "setnx" | "msetnx" => OVERWRITE_NEW,
        "set" | "setex" | "psetex" | "mset" | "restore" => OVERWRITE,
        "getdel" | "lpop" | "rpop" | "spop" | "zpopmin" | "zpopmax" | "blpop" | "brpop" | "bzpopmin" | "bzpopmax" => {
            POP
        }
        "lmove" | "blmove" | "rpoplpush" | "brpoplpush" | "smove" if last => INSERT,
        "lmove" | "blmove" | "rpoplpush" | "brpoplpush" | "smove" | "rename" | "renamenx" if n == 0 => POP,
        "renamenx" => OVERWRITE_NEW,
        "rename" => OVERWRITE,
        "copy" if last => OVERWRITE,
        "copy" => READ,
        "sinterstore" | "sunionstore" | "sdiffstore" if n == 0 => UPDATE,
        "zrangestore" | "bitop" | "geosearchstore" if n == 0 => OVERWRITE,
        "sinterstore" | "sunionstore" | "sdiffstore" | "zrangestore" | "bitop" | "geosearchstore" => READ,
        "lpush" | "rpush" | "lpushx" | "rpushx" | "linsert" | "sadd" | "append" | "hsetnx" => INSERT,
        "lrem" | "ltrim" | "srem" | "zrem" | "hdel" | "zremrangebyscore" | "zremrangebyrank" | "zremrangebylex" => {
            REMOVE_SOME
        }
        "expire" | "pexpire" | "expireat" | "pexpireat" | "persist" => UPDATE,
        "hset" | "hmset" | "zadd" | "geoadd" | "lset" | "setrange" => UPDATE,
        _ => READ_WRITE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::lookup;

    fn keys_of(line: &str) -> Result<Vec<(String, KeyFlags)>, InvalidArguments> {
        let words: Vec<Bytes> = line.split(' ').map(|w| Bytes::copy_from_slice(w.as_bytes())).collect();
        let spec = lookup(&words[0]).expect("a known command");
        Ok(keys(spec, &words)?.into_iter().map(|(k, f)| (String::from_utf8(k.to_vec()).unwrap(), f)).collect())
    }

    #[test]
    fn keys_are_found_where_redis_finds_them() {
        let names = |line| keys_of(line).unwrap().into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(names("LMPOP 2 a b LEFT"), ["a", "b"]);
        assert_eq!(names("BZMPOP 0 1 z MIN"), ["z"]);
        assert_eq!(names("ZUNIONSTORE d 2 a b"), ["d", "a", "b"]);
        assert_eq!(names("SORT a BY x LIMIT 0 1 STORE d"), ["a", "d"]);
        assert_eq!(names("SORT a STORE"), ["a"]);
        assert_eq!(names("GEORADIUS g 15 37 200 km STORE d"), ["g", "d"]);
        assert_eq!(names("GEORADIUSBYMEMBER g m 200 km STORE d STOREDIST e"), ["g", "e"]);
        assert_eq!(names("GEORADIUS g 15 37 200 km WITHDIST"), ["g"]);
        assert_eq!(names("GEOSEARCHSTORE d g FROMMEMBER m BYRADIUS 1 km"), ["d", "g"]);
        assert_eq!(names("MSET a 1 b 2"), ["a", "b"]);
        assert_eq!(names("BLPOP a b 0"), ["a", "b"]);
        assert_eq!(names("EVAL s 2 a b c"), ["a", "b"]);
        assert!(names("EVALSHA s 0 c").is_empty());
        assert_eq!(keys_of("EVAL s 3 a b"), Err(InvalidArguments));
        assert_eq!(names("XREAD COUNT 2 STREAMS a b 0 0"), ["a", "b"]);
        assert_eq!(keys_of("XREAD STREAMS a b 0"), Err(InvalidArguments));
        assert_eq!(keys_of("LMPOP 3 a LEFT"), Err(InvalidArguments));
        assert_eq!(keys_of("LMPOP 0 a LEFT"), Err(InvalidArguments));
        assert_eq!(keys_of("RENAME a b").unwrap(), [("a".into(), POP), ("b".into(), OVERWRITE)]);
        assert_eq!(keys_of("LMOVE a b LEFT LEFT").unwrap(), [("a".into(), POP), ("b".into(), INSERT)]);
        assert_eq!(keys_of("DEL a").unwrap(), [("a".into(), REMOVE)]);
    }
}
