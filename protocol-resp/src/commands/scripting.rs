//! Lua scripting: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT.
//!
//! A script that may write is one log entry (`kv::WriteOp::Eval`): every
//! replica runs it against the same state (see `kv::script`). A read-only
//! one (the `_RO` forms, or a body whose shebang says `no-writes`) runs on
//! the read path after the read barrier; inside MULTI it is queued as a
//! read-only entry. Scripts are stored per shard: SCRIPT LOAD and FLUSH
//! reach every shard, EVAL stores its script in the shard of its keys.

use bytes::Bytes;
use kv::script::{self, shebang, ScriptSource, Sha, DEFAULT_BUDGET};
use kv::{CommandError, ReadOp, Reply, WriteOp};

use super::flags::{NOSCRIPT, PROPOSES, READONLY, STALE};
use super::{help, read, reply, spec, unknown_subcommand, write, Outcome, Spec};
use crate::args::Args;
use crate::session::Session;

type Result = std::result::Result<Outcome, CommandError>;

fn eval(session: &mut Session, args: &mut Args) -> Result {
    run(session, args, false, false)
}

fn evalsha(session: &mut Session, args: &mut Args) -> Result {
    run(session, args, true, false)
}

fn eval_ro(session: &mut Session, args: &mut Args) -> Result {
    run(session, args, false, true)
}

fn evalsha_ro(session: &mut Session, args: &mut Args) -> Result {
    run(session, args, true, true)
}

/// `script numkeys key… arg…`; `by_sha`: the script is a digest.
fn run(session: &mut Session, args: &mut Args, by_sha: bool, read_only: bool) -> Result {
    let text = args.next()?;
    let (keys, script_args) = keys_and_args(args, CommandError::NotInteger)?;
    let (source, no_writes) = match by_sha {
        // A digest that is not 40 hex digits names no script.
        true => (ScriptSource::Sha(Sha::parse(&text).ok_or_else(script::no_script)?), false),
        false => {
            let flags = shebang::flags(&text).unwrap_or_default();
            (ScriptSource::Body(text), flags.shebang && flags.no_writes)
        }
    };
    if (read_only || no_writes) && session.transaction.is_none() {
        return read_only_run(session, kv::ReadCode::Script(source), keys, script_args);
    }
    let seed = rand::random();
    let body = match &source {
        ScriptSource::Body(body) if session.transaction.is_none() => Some(body.clone()),
        _ => None,
    };
    let op = WriteOp::Eval { script: source, keys, args: script_args, seed, budget: DEFAULT_BUDGET, read_only };
    match body {
        // Stored in every shard, as Redis's one script cache holds it.
        Some(body) => {
            let writer = super::tracking::writer(session);
            Ok(Outcome::Write(session.server.kv.write_scripts(
                session.shard(),
                session.db,
                op,
                std::slice::from_ref(&body),
                writer,
            )))
        }
        None => write(session, op),
    }
}

/// `numkeys key… arg…` of EVAL and FCALL: the keys and the arguments.
pub(super) fn keys_and_args(
    args: &mut Args,
    not_integer: CommandError,
) -> std::result::Result<(Vec<Bytes>, Vec<Bytes>), CommandError> {
    let numkeys = args.next()?;
    let count = script::split_keys(&numkeys, args.remaining(), not_integer)?;
    let mut keys = args.rest();
    let rest = keys.split_off(count);
    Ok((keys, rest))
}

/// A read-only script or function on the read path.
pub(super) fn read_only_run(session: &Session, code: kv::ReadCode, keys: Vec<Bytes>, args: Vec<Bytes>) -> Result {
    let kv = session.server.kv.clone();
    let (shard, db, stale) = (session.shard(), session.db, session.stale_reads);
    Ok(Outcome::Read(Box::pin(async move {
        kv.eval_read(shard, db, code, keys, args, stale).await.unwrap_or_else(super::service_error)
    })))
}

fn script_command(session: &mut Session, args: &mut Args) -> Result {
    let sub = args.next()?;
    let name = String::from_utf8_lossy(&sub).to_ascii_lowercase();
    let arity = |args: &mut Args, ok: bool| super::subcommand_arity(args, ok, "script", &name);
    match name.as_str() {
        "help" => {
            arity(args, args.remaining() == 0)?;
            reply(help(HELP))
        }
        "load" => {
            arity(args, args.remaining() == 1)?;
            let body = args.next()?;
            everywhere(session, WriteOp::ScriptLoad { body })
        }
        "exists" => {
            arity(args, args.remaining() >= 1)?;
            let shas = args.rest().iter().map(|text| Sha::parse(text)).collect();
            read(session, ReadOp::ScriptExists { shas })
        }
        "flush" => {
            arity(args, args.remaining() <= 1)?;
            if let Some(mode) = args.next_opt() {
                if !mode.eq_ignore_ascii_case(b"ASYNC") && !mode.eq_ignore_ascii_case(b"SYNC") {
                    return Err(CommandError::Other("ERR SCRIPT FLUSH only support SYNC|ASYNC option".into()));
                }
            }
            session.server.kv.flush_script_reader();
            everywhere(session, WriteOp::ScriptFlush)
        }
        // Scripts cannot run long enough to be killed: their budget of
        // instructions ends them on every replica alike.
        "kill" => {
            arity(args, args.remaining() == 0)?;
            Err(CommandError::Other("NOTBUSY No scripts in execution right now.".into()))
        }
        "debug" => {
            arity(args, args.remaining() == 1)?;
            match args.next_keyword()?.as_str() {
                "NO" => reply(Reply::ok()),
                "YES" | "SYNC" => {
                    Err(CommandError::Other("ERR SCRIPT DEBUG (the Lua debugger) is not supported by Seshat".into()))
                }
                _ => Err(CommandError::Other("ERR Use SCRIPT DEBUG YES/SYNC/NO".into())),
            }
        }
        _ => {
            let _ = args.rest();
            Err(unknown_subcommand(&sub, "script"))
        }
    }
}

/// A write every shard's group applies (outside MULTI), its replies merged.
pub(super) fn everywhere(session: &mut Session, op: WriteOp) -> Result {
    let kv = &session.server.kv;
    if session.transaction.is_some() || kv.shards() == 1 {
        return write(session, op);
    }
    let parts = (0..kv.shards()).map(|shard| (shard, op.clone())).collect();
    Ok(Outcome::Write(kv.write_parts(session.db, parts)))
}

const HELP: &[&str] = &[
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
];

#[rustfmt::skip]
pub(super) const COMMANDS: &[Spec] = &[
    spec!("eval", -3, NOSCRIPT | STALE | PROPOSES, 0, 0, 0, "scripting", "2.6.0", "Executes a server-side Lua script.", eval),
    spec!("evalsha", -3, NOSCRIPT | STALE | PROPOSES, 0, 0, 0, "scripting", "2.6.0", "Executes a server-side Lua script by SHA1 digest.", evalsha),
    spec!("eval_ro", -3, NOSCRIPT | STALE | READONLY, 0, 0, 0, "scripting", "7.0.0", "Executes a read-only server-side Lua script.", eval_ro),
    spec!("evalsha_ro", -3, NOSCRIPT | STALE | READONLY, 0, 0, 0, "scripting", "7.0.0", "Executes a read-only server-side Lua script by SHA1 digest.", evalsha_ro),
    spec!("script", -2, NOSCRIPT, 0, 0, 0, "scripting", "2.6.0", "A container for Lua scripts management commands.", script_command),
];
