//! Administration commands that tools and test code call: ROLE, WAIT,
//! WAITAOF, SHUTDOWN, DEBUG, MONITOR and LOLWUT.
//!
//! Replication in Seshat is Raft's: an acknowledged write is already on a
//! majority of the voters, fsynced. So WAIT and WAITAOF answer at once
//! with what is known to hold the writes, and ROLE reports the Raft leader
//! as the master and the other members as its replicas, by their Raft
//! addresses.

use std::time::Duration;

use kv::{CommandError, Reply};

use super::flags::{ADMIN, FAST, LOADING, NOSCRIPT, NO_MULTI, READONLY, STALE};
use super::{help, reply, spec, wrong_arity, Outcome, Spec};
use crate::args::Args;
use crate::session::Session;

type Result = std::result::Result<Outcome, CommandError>;

pub(super) fn host_port(addr: &str) -> (String, i64) {
    match addr.rsplit_once(':') {
        Some((host, port)) => (host.trim_matches(['[', ']']).to_string(), port.parse().unwrap_or(0)),
        None => (addr.to_string(), 0),
    }
}

fn role(session: &mut Session, _args: &mut Args) -> Result {
    let status = session.server.kv.status();
    if status.role == raft::Role::Leader {
        let replicas = status
            .replication
            .iter()
            .filter_map(|(id, matched)| {
                let member = status.members.iter().find(|m| m.id == *id)?;
                let (host, port) = host_port(&member.addr);
                Some(Reply::Array(vec![
                    Reply::bulk(host),
                    Reply::bulk(port.to_string()),
                    Reply::bulk(matched.to_string()),
                ]))
            })
            .collect();
        return reply(Reply::Array(vec![
            Reply::bulk("master"),
            Reply::Int(status.commit_index as i64),
            Reply::Array(replicas),
        ]));
    }
    let (host, port) = status.leader.as_ref().map_or((String::new(), -1), |leader| host_port(&leader.addr));
    let state = if status.leader.is_some() { "connected" } else { "connect" };
    reply(Reply::Array(vec![
        Reply::bulk("slave"),
        Reply::bulk(host),
        Reply::Int(port),
        Reply::bulk(state),
        Reply::Int(status.applied_index as i64),
    ]))
}

/// How many other voters are known to hold every write acknowledged so
/// far: on the leader, those that matched its commit index; elsewhere the
/// quorum's guarantee (a majority minus this node's leader).
fn replicas_with_writes(session: &Session) -> i64 {
    let status = session.server.kv.status();
    if status.role == raft::Role::Leader {
        return status.replication.iter().filter(|(_, matched)| *matched >= status.commit_index).count() as i64;
    }
    let voters = status.members.iter().filter(|m| m.voter).count();
    (voters / 2) as i64
}

fn non_negative(args: &mut Args, what: &str) -> std::result::Result<i64, CommandError> {
    let n = args.next_i64()?;
    if n < 0 {
        return Err(CommandError::Other(format!("ERR {what} is negative")));
    }
    Ok(n)
}

fn wait(session: &mut Session, args: &mut Args) -> Result {
    let _replicas = args.next_i64()?;
    non_negative(args, "timeout")?;
    reply(Reply::Int(replicas_with_writes(session)))
}

fn waitaof(session: &mut Session, args: &mut Args) -> Result {
    let local = args.next_i64()?;
    let _replicas = args.next_i64()?;
    non_negative(args, "timeout")?;
    if local < 0 {
        return Err(CommandError::Other("ERR value is out of range, must be positive".into()));
    }
    // Every acknowledged write is fsynced here and on a majority.
    reply(Reply::Array(vec![Reply::Int(1), Reply::Int(replicas_with_writes(session))]))
}

/// SHUTDOWN stops this node as SIGTERM does (in-flight commands finish,
/// exit 0); the cluster keeps serving while a majority remains. Every
/// write is already durable, so SAVE and NOSAVE change nothing.
fn shutdown(session: &mut Session, args: &mut Args) -> Result {
    let mut abort = false;
    while let Some(word) = args.next_opt() {
        match String::from_utf8_lossy(&word).to_ascii_uppercase().as_str() {
            "SAVE" | "NOSAVE" | "NOW" | "FORCE" => {}
            "ABORT" => abort = true,
            _ => return Err(CommandError::Syntax),
        }
    }
    if abort {
        return Err(CommandError::Other("ERR No shutdown in progress.".into()));
    }
    tracing::info!(client = session.client.id, "SHUTDOWN");
    session.shutdown.cancel();
    session.closing = true;
    // Redis answers nothing: the connection closes.
    reply(Reply::Sequence(Vec::new()))
}

/// Whether CONFIG `enable-debug-command` lets this client run DEBUG.
pub(super) fn debug_allowed(session: &Session) -> bool {
    match session.server.param("enable-debug-command").as_str() {
        "yes" => true,
        "local" => session.client.addr.ip().is_loopback(),
        _ => false,
    }
}

/// Redis's answer to DEBUG when `enable-debug-command` does not allow it.
pub(super) fn debug_refused() -> CommandError {
    CommandError::Other(
        "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from \
         a local connection, otherwise you need to set this option in the configuration file, and then restart the \
         server."
            .into(),
    )
}

fn debug(session: &mut Session, args: &mut Args) -> Result {
    if !debug_allowed(session) {
        return Err(debug_refused());
    }
    let sub = args.next()?;
    match String::from_utf8_lossy(&sub).to_ascii_uppercase().as_str() {
        "SLEEP" => {
            let seconds = kv::number::parse_f64(&args.next()?)
                .filter(|s| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| CommandError::Other("ERR value is not a valid float".into()))?;
            args.finish().map_err(|_| wrong_arity("debug|sleep"))?;
            // Sleeps this connection only: the node keeps serving the others.
            Ok(Outcome::Operator(Box::pin(async move {
                tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
                Reply::ok()
            })))
        }
        // Every write is durable when acknowledged: there is nothing to
        // save or load again.
        "RELOAD" | "LOADAOF" => reply(Reply::ok()),
        "HELP" => reply(help(&[
            "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "SLEEP <seconds>",
            "    Stop this connection for <seconds> (the node keeps serving others).",
            "RELOAD",
            "    Nothing to do: every acknowledged write is already durable.",
            "LOADAOF",
            "    Nothing to do: every acknowledged write is already durable.",
            "HELP",
            "    Print this help.",
        ])),
        name => Err(CommandError::Other(format!(
            "ERR DEBUG {name} is not supported by Seshat (its data lives in RocksDB, not in Redis's structures)"
        ))),
    }
}

/// MONITOR: this connection receives every later command of the node's
/// clients (see `crate::monitor`).
fn monitor(session: &mut Session, _args: &mut Args) -> Result {
    if session.transaction.is_some() {
        // Redis queues it and answers this at EXEC.
        return Err(CommandError::Other("ERR MONITOR isn't allowed for DENY BLOCKING client".into()));
    }
    if session.monitor.is_none() {
        session.monitor = Some(session.server.monitors.subscribe());
    }
    reply(Reply::ok())
}

fn lolwut(_session: &mut Session, args: &mut Args) -> Result {
    while let Some(word) = args.next_opt() {
        if !word.eq_ignore_ascii_case(b"VERSION") {
            return Err(CommandError::Syntax);
        }
        args.next_i64()?;
    }
    let art = [
        "   _____           _           _   ",
        "  / ____|         | |         | |  ",
        " | (___   ___  ___| |__   __ _| |_ ",
        "  \\___ \\ / _ \\/ __| '_ \\ / _` | __|",
        "  ____) |  __/\\__ \\ | | | (_| | |_ ",
        " |_____/ \\___||___/_| |_|\\__,_|\\__|",
    ];
    let text = format!(
        "{}\n\nSeshat ver. {}: Redis {} commands, replicated by Raft.\n",
        art.join("\n"),
        env!("CARGO_PKG_VERSION"),
        super::server::REDIS_VERSION
    );
    reply(Reply::Verbatim(text))
}

pub(super) const COMMANDS: &[Spec] = &[
    spec!("role", 1, NOSCRIPT | LOADING | STALE | FAST, 0, 0, 0, "server", "2.8.12", "Returns the replication role.", role),
    spec!("wait", 3, 0, 0, 0, 0, "generic", "3.0.0", "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed.", wait),
    spec!("waitaof", 4, NOSCRIPT, 0, 0, 0, "generic", "7.2.0", "Blocks until all of the preceding write commands sent by the connection are written to the append-only file of the master and/or replicas.", waitaof),
    spec!("shutdown", -1, ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI, 0, 0, 0, "server", "1.0.0", "Synchronously saves the database(s) to disk and shuts down the Redis server.", shutdown),
    spec!("debug", -2, ADMIN | NOSCRIPT | LOADING | STALE, 0, 0, 0, "server", "1.0.0", "A container for debugging commands.", debug),
    spec!("monitor", 1, ADMIN | NOSCRIPT | LOADING | STALE, 0, 0, 0, "server", "1.0.0", "Listens for all requests received by the server in real-time.", monitor),
    spec!("lolwut", -1, READONLY | FAST, 0, 0, 0, "server", "5.0.0", "Displays computer art and the Redis version", lolwut),
];

#[cfg(test)]
mod tests {
    use super::host_port;

    #[test]
    fn raft_addresses_split_into_host_and_port() {
        assert_eq!(host_port("127.0.0.1:7379"), ("127.0.0.1".to_string(), 7379));
        assert_eq!(host_port("[::1]:7380"), ("::1".to_string(), 7380));
    }
}
