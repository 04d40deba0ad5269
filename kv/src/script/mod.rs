//! Lua scripting (EVAL and friends) as Redis 7.0 runs it, made
//! deterministic so that every replica of a group runs a script alike.
//!
//! # Life of a script
//!
//! 1. The frontend turns `EVAL body numkeys key… arg…` into
//!    [`crate::WriteOp::Eval`]: the body (or, for EVALSHA, its digest),
//!    the keys and arguments, a random seed and the instruction budget.
//!    The entry is the script's whole input besides the state.
//! 2. Every replica applies the entry: it finds the body (EVALSHA: in the
//!    group's stored scripts, else `NOSCRIPT`), compiles it once per VM
//!    ([`engine`]), stores it (EVAL caches the script, as Redis does) and
//!    runs it in the state machine's [`engine::Engine`].
//! 3. Each `redis.call` is parsed by the frontend's command table (the
//!    [`ScriptCommands`] installed at start) into the step a MULTI would
//!    queue, and runs at once in the entry's txn: later commands see
//!    earlier ones, and the script's writes land with the entry, atomically.
//! 4. The script's result is the entry's reply.
//!
//! Read-only scripts (EVAL_RO, EVALSHA_RO, `#!lua flags=no-writes`) run on
//! the read path instead, after the group's read barrier, against one
//! snapshot, in the node's reader VM.
//!
//! # Determinism
//!
//! - `TIME` answers the entry's stamp; `math.random` and the random
//!   commands (SPOP, SRANDMEMBER, RANDOMKEY…) draw from the entry's seed.
//! - A script that runs past its budget of Lua instructions is aborted at
//!   the same instruction on every replica (its writes so far stay, as
//!   those of a script that fails do in Redis).
//! - The sandbox leaves nothing a script could change in the VM, so a
//!   restarted replica's new VM runs later scripts as the others' do.
//! - What stays outside: `tostring` of a table or function shows an
//!   address, and the order `pairs` visits such keys follows addresses.
//!   A script that stores those would make replicas differ (in Redis its
//!   replicas would differ too, unless effects replication hid it).

mod args;
mod bit;
mod cjson;
mod cmsgpack;
mod convert;
pub(crate) mod engine;
pub mod everywhere;
pub mod library;
mod lua_struct;
pub(crate) mod pace;
mod rand48;
pub mod shebang;

use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::command::TxnStep;
use crate::error::CommandError;

/// The Lua instructions a script may run before it is aborted: about a
/// second of Lua on a modern core (Redis's default `busy-reply-threshold`
/// is 5 s, after which it only starts answering BUSY).
pub const DEFAULT_BUDGET: u64 = 200_000_000;

/// A script's SHA1 digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Sha([u8; 20]);

impl Sha {
    /// The digest of `body`.
    pub fn of(body: &[u8]) -> Sha {
        Sha(sha1_smol::Sha1::from(body).digest().bytes())
    }

    /// A digest written as 40 hex digits (either case), as EVALSHA takes it.
    pub fn parse(text: &[u8]) -> Option<Sha> {
        if text.len() != 40 {
            return None;
        }
        let mut digest = [0u8; 20];
        for (i, pair) in text.chunks(2).enumerate() {
            let pair = std::str::from_utf8(pair).ok()?;
            digest[i] = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Sha(digest))
    }

    /// The 40 lower-case hex digits, as the `kv_meta` key and replies
    /// carry them.
    pub fn hex(&self) -> String {
        self.to_string()
    }

    /// Where group `shard` stores the script (`kv_meta` `script/<hex>`).
    pub(crate) fn stored_key(&self, shard: storage::keyspace::Shard) -> Vec<u8> {
        storage::keyspace::kv_meta::script(shard, self.hex().as_bytes())
    }
}

impl fmt::Display for Sha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

/// Where an EVAL-like entry's script comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScriptSource {
    /// EVAL: the body itself.
    Body(Bytes),
    /// EVALSHA: a script the group has stored.
    Sha(Sha),
}

/// A script's `redis.call` as the frontend parsed it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptCall {
    pub step: ScriptStep,
    /// The logical database the script continues in (SELECT changes it).
    pub db: u8,
    /// The keys the command names: each must be one of the group's.
    pub keys: Vec<Bytes>,
}

/// What a script's command does.
#[derive(Debug, Clone, PartialEq)]
pub enum ScriptStep {
    /// What MULTI would queue for it.
    Step(TxnStep),
    /// TIME: the entry's stamp, not the clock.
    Time,
}

/// Turns a script's `redis.call` into what runs it: the RESP frontend's
/// command table, with Redis's checks for scripts (unknown command,
/// arity, `noscript`, writes from a read-only script). The errors are
/// Redis's replies, e.g. `ERR Unknown Redis command called from script`.
///
/// It must be a function of its arguments alone: every replica parses
/// the same calls the same way.
pub trait ScriptCommands: Send + Sync {
    fn parse(&self, words: &[Bytes], db: u8, read_only: bool) -> Result<ScriptCall, CommandError>;
}

/// The node's [`ScriptCommands`], installed by the RESP frontend once it
/// exists, which is before the service's groups start
/// ([`crate::OpenedKv`]): a group's start applies the committed entries
/// its state machine had not, and a script entry must parse as it did
/// on the replicas that applied it already.
#[derive(Default)]
pub struct ScriptCommandsSlot {
    installed: OnceLock<Arc<dyn ScriptCommands>>,
}

impl ScriptCommandsSlot {
    /// Installs the parser (once; a second install is ignored).
    pub fn install(&self, commands: Arc<dyn ScriptCommands>) {
        let _ = self.installed.set(commands);
    }

    /// The installed parser.
    ///
    /// # Panics
    /// If none is installed: the node started a group before its RESP
    /// frontend existed, and would apply scripts differently than the
    /// replicas that applied them already.
    pub(crate) fn get(&self) -> &dyn ScriptCommands {
        self.installed.get().expect("the RESP frontend installs the script parser before the groups start").as_ref()
    }
}

impl fmt::Debug for ScriptCommandsSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptCommandsSlot").finish_non_exhaustive()
    }
}

/// TIME inside a script: the entry's stamp (the read's "now" on the read
/// path), as `[seconds, microseconds]`.
pub(crate) fn time_reply(now_ms: u64) -> crate::reply::Reply {
    use crate::reply::Reply;
    Reply::Array(vec![Reply::bulk((now_ms / 1000).to_string()), Reply::bulk(((now_ms % 1000) * 1000).to_string())])
}

/// Redis's refusal of a script's command on a key of another shard.
pub(crate) fn non_local_key() -> CommandError {
    CommandError::Other("ERR Script attempted to access a non local key in a cluster node".into())
}

/// Redis's answer to EVALSHA of a script it does not have.
pub fn no_script() -> CommandError {
    CommandError::Other("NOSCRIPT No matching script. Please use EVAL.".into())
}

/// EVAL's and FCALL's `numkeys` check, as Redis words its errors;
/// `not_integer` is the command's error for a count that is no integer.
pub fn split_keys(numkeys: &[u8], rest: usize, not_integer: CommandError) -> Result<usize, CommandError> {
    let n = crate::number::parse_i64(numkeys).ok_or(not_integer)?;
    if n < 0 {
        return Err(CommandError::Other("ERR Number of keys can't be negative".into()));
    }
    if n as u64 > rest as u64 {
        return Err(CommandError::Other("ERR Number of keys can't be greater than number of args".into()));
    }
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_print_and_parse_as_hex() {
        let sha = Sha::of(b"return 1");
        assert_eq!(sha.hex(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
        assert_eq!(Sha::parse(b"E0E1F9FABFC9D4800C877A703B823AC0578FF8DB"), Some(sha));
        assert_eq!(Sha::parse(b"xyz"), None);
    }
}
