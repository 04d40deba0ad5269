//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! Between MULTI and EXEC a connection queues its commands instead of
//! running them (`super::dispatch`): writes and reads as data, commands that
//! only concern the connection (PING, SELECT) as the reply they gave when
//! queued. EXEC proposes the queue as ONE log entry with the watched keys;
//! the state machine decides WATCH and runs the commands atomically
//! (`kv/src/apply/exec.rs`). As in Redis, an unknown command or a wrong
//! arity while queueing makes EXEC answer EXECABORT, and any other error is
//! that command's reply inside EXEC's array.
//!
//! With several shards, a transaction runs in one group: its commands'
//! keys and the watched keys must all be in one shard (under the Redis
//! Cluster protocol, in one hash slot), else CROSSSLOT, and EXEC answers
//! EXECABORT; commands without keys that read or write the keyspace
//! (DBSIZE, KEYS, FLUSHALL, …) are refused inside it, since one group would
//! run them over its own part only.

use bytes::Bytes;
use kv::script::ScriptSource;
use kv::{CommandError, Reply, TxnStep, WriteOp};

use super::flags::{FAST, LOADING, NOSCRIPT, PROPOSES, STALE};
use super::{cross_slot, reply, spec, Outcome, Spec};
use crate::args::Args;
use crate::session::{Route, Session, Transaction};

type Result = std::result::Result<Outcome, CommandError>;

/// Commands that run at once even inside MULTI (Redis's list).
pub(crate) fn runs_inside_multi(name: &str) -> bool {
    matches!(name, "exec" | "discard" | "multi" | "watch" | "quit" | "reset")
}

/// The commands without keys that read or write the whole keyspace.
const KEYSPACE_WIDE: &[&str] = &["dbsize", "keys", "scan", "randomkey", "flushdb", "flushall", "swapdb"];

/// Checks that the command being queued (whose keys live at
/// `session.route`) can join the open transaction's shard (and slot, under
/// the Redis Cluster protocol), and joins it.
pub(crate) fn join(session: &mut Session, spec: &Spec) -> std::result::Result<(), CommandError> {
    let several = session.server.kv.shards() > 1;
    let cluster_enabled = session.server.facts.cluster_enabled;
    if !several && !cluster_enabled {
        return Ok(());
    }
    let watched = session.watched_route;
    let Some(transaction) = session.transaction.as_mut() else { return Ok(()) };
    let Some(route) = session.route else {
        if several && KEYSPACE_WIDE.contains(&spec.name) {
            return Err(CommandError::Other(format!(
                "ERR {} inside MULTI is not supported with several shards",
                spec.name.to_ascii_uppercase()
            )));
        }
        return Ok(());
    };
    if transaction.route.or(watched).is_some_and(|joined| !joined.admits(route, cluster_enabled)) {
        return Err(cross_slot());
    }
    transaction.route = Some(route);
    Ok(())
}

/// The reply to a queued command.
pub(crate) fn queued() -> Reply {
    Reply::Status("QUEUED".into())
}

fn multi(session: &mut Session, _args: &mut Args) -> Result {
    if session.transaction.is_some() {
        return Err(CommandError::Other("ERR MULTI calls can not be nested".into()));
    }
    session.transaction =
        Some(Transaction { commands: Vec::new(), failed: false, db_at_multi: session.db, route: None });
    session.client.update(|state| state.multi = Some(0));
    reply(Reply::ok())
}

fn exec(session: &mut Session, _args: &mut Args) -> Result {
    let Some(transaction) = session.transaction.take() else {
        return Err(CommandError::Other("ERR EXEC without MULTI".into()));
    };
    session.client.update(|state| state.multi = None);
    let watched = std::mem::take(&mut *session.watched.lock().expect("watched keys lock"));
    let shard = transaction.route.or(session.watched_route.take()).map_or(0, |route| route.shard);
    if transaction.failed {
        session.select(transaction.db_at_multi);
        return Err(CommandError::Other("EXECABORT Transaction discarded because of previous errors.".into()));
    }
    // The scripts it runs or loads reach every shard, as EVAL's do.
    let bodies: Vec<Bytes> = transaction.commands.iter().filter_map(|queued| script_body(&queued.step)).collect();
    let op = WriteOp::Exec { watched, commands: transaction.commands };
    let writer = super::tracking::writer(session);
    Ok(Outcome::Write(session.server.kv.write_scripts(Some(shard), transaction.db_at_multi, op, &bodies, writer)))
}

/// The script a queued EVAL (by its body) or SCRIPT LOAD runs or loads.
fn script_body(step: &TxnStep) -> Option<Bytes> {
    match step {
        TxnStep::Write(WriteOp::Eval { script: ScriptSource::Body(body), .. } | WriteOp::ScriptLoad { body }) => {
            Some(body.clone())
        }
        _ => None,
    }
}

fn discard(session: &mut Session, _args: &mut Args) -> Result {
    if !session.discard() {
        return Err(CommandError::Other("ERR DISCARD without MULTI".into()));
    }
    session.unwatch();
    reply(Reply::ok())
}

fn watch(session: &mut Session, args: &mut Args) -> Result {
    if session.transaction.is_some() {
        return Err(CommandError::Other("ERR WATCH inside MULTI is not allowed".into()));
    }
    let keys = args.rest();
    let route = session.route.unwrap_or(Route { shard: 0, slot: None });
    if session.watched_route.is_some_and(|watched| !watched.admits(route, session.server.facts.cluster_enabled)) {
        return Err(cross_slot());
    }
    session.watched_route = Some(route);
    let shard = route.shard;
    let (kv, db, stale, watched) =
        (session.server.kv.clone(), session.db, session.stale_reads, session.watched.clone());
    Ok(Outcome::Read(Box::pin(async move {
        match kv.watch(shard, db, keys, stale).await {
            Ok(keys) => {
                watched.lock().expect("watched keys lock").extend(keys);
                Reply::ok()
            }
            Err(error) => super::service_error(error),
        }
    })))
}

fn unwatch(session: &mut Session, _args: &mut Args) -> Result {
    session.unwatch();
    reply(Reply::ok())
}

pub(super) const COMMANDS: &[Spec] = &[
    spec!(
        "multi",
        1,
        NOSCRIPT | LOADING | STALE | FAST,
        0,
        0,
        0,
        "transactions",
        "1.2.0",
        "Starts a transaction.",
        multi
    ),
    spec!(
        "exec",
        1,
        NOSCRIPT | LOADING | STALE | PROPOSES,
        0,
        0,
        0,
        "transactions",
        "1.2.0",
        "Executes all commands in a transaction.",
        exec
    ),
    spec!(
        "discard",
        1,
        NOSCRIPT | LOADING | STALE | FAST,
        0,
        0,
        0,
        "transactions",
        "2.0.0",
        "Discards a transaction.",
        discard
    ),
    spec!(
        "watch",
        -2,
        NOSCRIPT | LOADING | STALE | FAST,
        1,
        -1,
        1,
        "transactions",
        "2.2.0",
        "Monitors changes to keys to determine the execution of a transaction.",
        watch
    ),
    spec!(
        "unwatch",
        1,
        NOSCRIPT | LOADING | STALE | FAST,
        0,
        0,
        0,
        "transactions",
        "2.2.0",
        "Forgets about watched keys of a transaction.",
        unwatch
    ),
];
