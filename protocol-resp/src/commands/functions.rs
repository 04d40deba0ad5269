//! Redis 7 functions: FUNCTION (LOAD, DELETE, FLUSH, LIST, DUMP, RESTORE,
//! STATS, KILL, HELP), FCALL and FCALL_RO.
//!
//! Libraries are replicated state (`kv::script::library`): LOAD, DELETE,
//! FLUSH and RESTORE are writes that reach every shard; LIST, DUMP and
//! STATS read the shard of no key. FCALL is one log entry like EVAL;
//! FCALL_RO runs on the read path.

use kv::script::DEFAULT_BUDGET;
use kv::{CommandError, ReadOp, RestorePolicy, WriteOp};

use super::flags::{NOSCRIPT, PROPOSES, READONLY, STALE};
use super::scripting::{everywhere, keys_and_args, read_only_run};
use super::{help, read, reply, spec, unknown_subcommand, write, Outcome, Spec};
use crate::args::Args;
use crate::session::Session;

type Result = std::result::Result<Outcome, CommandError>;

fn error(text: &str) -> CommandError {
    CommandError::Other(format!("ERR {text}"))
}

fn fcall(session: &mut Session, args: &mut Args) -> Result {
    call(session, args, false)
}

fn fcall_ro(session: &mut Session, args: &mut Args) -> Result {
    call(session, args, true)
}

/// `function numkeys key… arg…`.
fn call(session: &mut Session, args: &mut Args, read_only: bool) -> Result {
    let function = args.next()?;
    let (keys, call_args) = keys_and_args(args, error("Bad number of keys provided"))?;
    if read_only && session.transaction.is_none() {
        return read_only_run(session, kv::ReadCode::Function(function), keys, call_args);
    }
    let seed = rand::random();
    write(session, WriteOp::FCall { function, keys, args: call_args, seed, budget: DEFAULT_BUDGET, read_only })
}

fn function(session: &mut Session, args: &mut Args) -> Result {
    let sub = args.next()?;
    let name = String::from_utf8_lossy(&sub).to_ascii_lowercase();
    let arity = |args: &mut Args, ok: bool| super::subcommand_arity(args, ok, "function", &name);
    match name.as_str() {
        "help" => {
            arity(args, args.remaining() == 0)?;
            reply(help(HELP))
        }
        "load" => {
            arity(args, args.remaining() >= 1)?;
            let mut words = args.rest();
            let mut replace = false;
            while words.len() > 1 {
                let option = words.remove(0);
                if !option.eq_ignore_ascii_case(b"REPLACE") {
                    return Err(error(&format!("Unknown option given: {}", String::from_utf8_lossy(&option))));
                }
                replace = true;
            }
            let code = words.pop().ok_or_else(|| error("Function code is missing"))?;
            everywhere(session, WriteOp::FunctionLoad { code, replace, budget: DEFAULT_BUDGET })
        }
        "delete" => {
            arity(args, args.remaining() == 1)?;
            everywhere(session, WriteOp::FunctionDelete { library: args.next()? })
        }
        "flush" => {
            arity(args, args.remaining() <= 1)?;
            if let Some(mode) = args.next_opt() {
                if !mode.eq_ignore_ascii_case(b"ASYNC") && !mode.eq_ignore_ascii_case(b"SYNC") {
                    return Err(error("FUNCTION FLUSH only supports SYNC|ASYNC option"));
                }
            }
            everywhere(session, WriteOp::FunctionFlush)
        }
        "restore" => {
            arity(args, (1..=2).contains(&args.remaining()))?;
            let payload = args.next()?;
            let policy = match args.next_opt() {
                None => RestorePolicy::Append,
                Some(policy) if policy.eq_ignore_ascii_case(b"APPEND") => RestorePolicy::Append,
                Some(policy) if policy.eq_ignore_ascii_case(b"REPLACE") => RestorePolicy::Replace,
                Some(policy) if policy.eq_ignore_ascii_case(b"FLUSH") => RestorePolicy::Flush,
                Some(_) => {
                    return Err(error("Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."))
                }
            };
            everywhere(session, WriteOp::FunctionRestore { payload, policy, budget: DEFAULT_BUDGET })
        }
        "list" => {
            let (mut pattern, mut with_code) = (None, false);
            while let Some(option) = args.next_opt() {
                if !with_code && option.eq_ignore_ascii_case(b"WITHCODE") {
                    with_code = true;
                } else if pattern.is_none() && option.eq_ignore_ascii_case(b"LIBRARYNAME") {
                    pattern = Some(args.next().map_err(|_| error("library name argument was not given"))?);
                } else {
                    let _ = args.rest();
                    return Err(error(&format!("Unknown argument {}", String::from_utf8_lossy(&option))));
                }
            }
            read(session, ReadOp::FunctionList { pattern, with_code })
        }
        "dump" => {
            arity(args, args.remaining() == 0)?;
            read(session, ReadOp::FunctionDump)
        }
        "stats" => {
            arity(args, args.remaining() == 0)?;
            read(session, ReadOp::FunctionStats)
        }
        // Functions cannot run long enough to be killed: their budget of
        // instructions ends them on every replica alike.
        "kill" => {
            arity(args, args.remaining() == 0)?;
            Err(CommandError::Other("NOTBUSY No scripts in execution right now.".into()))
        }
        _ => {
            let _ = args.rest();
            Err(unknown_subcommand(&sub, "function"))
        }
    }
}

const HELP: &[&str] = &[
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Prints this help.",
];

#[rustfmt::skip]
pub(super) const COMMANDS: &[Spec] = &[
    spec!("fcall", -3, NOSCRIPT | STALE | PROPOSES, 0, 0, 0, "scripting", "7.0.0", "Invokes a function.", fcall),
    spec!("fcall_ro", -3, NOSCRIPT | STALE | READONLY, 0, 0, 0, "scripting", "7.0.0", "Invokes a read-only function.", fcall_ro),
    spec!("function", -2, NOSCRIPT, 0, 0, 0, "scripting", "7.0.0", "A container for function commands.", function),
];
