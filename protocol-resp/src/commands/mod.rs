//! The command table and dispatch.
//!
//! Each family file (`string`, `keys`, `server`, `connection`) parses its
//! commands' arguments, calls `kv` and formats the reply, and ends with its
//! table: name, arity, flags, key positions and docs. The flags decide the
//! route: a write becomes a proposal, a read-only command a linearizable
//! read, the rest run on the connection.
//!
//! Checks happen in Redis's order: unknown command, arity, authentication.

mod admin;
mod bits;
mod blocking;
mod cluster;
mod cluster_topology;
mod connection;
mod failover;
mod functions;
mod geo;
mod hash;
mod hll;
mod keys;
pub(crate) mod keyspec;
mod list;
mod memory;
mod monitoring;
mod pubsub;
mod redis_cluster;
mod scripting;
mod server;
mod set;
mod split;
mod stream;
mod string;
mod tracking;
mod transaction;
mod zset;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::LazyLock;

use bytes::Bytes;
use kv::{CommandError, QueuedCommand, ReadCtx, ReadOp, Reply, TxnStep, WriteOp};
use raft::GroupError;

use crate::args::Args;
use crate::session::{Route, Session};

/// Command flags, as COMMAND INFO lists them.
pub(crate) mod flags {
    pub const WRITE: u32 = 1;
    pub const READONLY: u32 = 1 << 1;
    pub const ADMIN: u32 = 1 << 2;
    pub const FAST: u32 = 1 << 3;
    pub const NO_AUTH: u32 = 1 << 4;
    pub const DENYOOM: u32 = 1 << 5;
    pub const LOADING: u32 = 1 << 6;
    pub const STALE: u32 = 1 << 7;
    pub const NOSCRIPT: u32 = 1 << 8;
    /// Internal, not listed by COMMAND: a command that is not a write but
    /// may propose one (EXEC), so it waits for the connection's earlier
    /// reads like a write.
    pub const PROPOSES: u32 = 1 << 9;
    /// Internal, not listed by COMMAND: refused inside MULTI (its effect is
    /// on this node or connection, which a log entry cannot carry).
    pub const NO_MULTI: u32 = 1 << 10;
    /// May wait for other clients' writes (blocking pops); the time it
    /// waits is left out of SLOWLOG and LATENCY, as Redis does.
    pub const BLOCKING: u32 = 1 << 11;

    pub const NAMES: [(u32, &str); 10] = [
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (NOSCRIPT, "noscript"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (BLOCKING, "blocking"),
    ];
}

/// What running a command produced.
pub(crate) enum Outcome {
    /// The reply is known now.
    Reply(Reply),
    /// A proposed write (already queued); its reply arrives once applied.
    Write(kv::WriteReply),
    /// A read, started when polled: after every earlier write of the
    /// connection has completed. Reads have no effects, so the reads of one
    /// pipeline may run together (and share one read-index round).
    Read(Pin<Box<dyn Future<Output = Reply> + Send>>),
    /// An operator command with effects (membership changes), started when
    /// polled, after every earlier command has completed.
    Operator(Pin<Box<dyn Future<Output = Reply> + Send>>),
}

type Handler = fn(&mut Session, &mut Args<'_>) -> Result<Outcome, CommandError>;

/// A row of the command table.
pub(crate) struct Spec {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis arity: `n` exactly n words (name included), `-n` at least n.
    pub arity: i64,
    pub flags: u32,
    pub first_key: i64,
    pub last_key: i64,
    pub step: i64,
    pub group: &'static str,
    pub since: &'static str,
    pub summary: &'static str,
    pub handler: Handler,
}

static TABLE: LazyLock<HashMap<&'static str, &'static Spec>> =
    LazyLock::new(|| all().map(|spec| (spec.name, spec)).collect());

/// Every command, family by family.
pub(crate) fn all() -> impl Iterator<Item = &'static Spec> {
    [
        string::COMMANDS,
        bits::COMMANDS,
        hash::COMMANDS,
        hll::COMMANDS,
        stream::COMMANDS,
        scripting::COMMANDS,
        functions::COMMANDS,
        geo::COMMANDS,
        list::COMMANDS,
        set::COMMANDS,
        zset::COMMANDS,
        keys::COMMANDS,
        transaction::COMMANDS,
        pubsub::COMMANDS,
        server::COMMANDS,
        admin::COMMANDS,
        failover::COMMANDS,
        monitoring::COMMANDS,
        memory::COMMANDS,
        connection::COMMANDS,
        cluster::COMMANDS,
        redis_cluster::COMMANDS,
    ]
    .into_iter()
    .flatten()
}

/// The longest command name in the table has fewer bytes than this.
const MAX_NAME_LEN: usize = 32;

/// The spec of a command by name, in any case, without allocating.
pub(crate) fn lookup(name: &[u8]) -> Option<&'static Spec> {
    let mut buffer = [0u8; MAX_NAME_LEN];
    let lower = buffer.get_mut(..name.len())?;
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    TABLE.get(std::str::from_utf8(lower).ok()?).copied()
}

/// A request with its command looked up once.
pub(crate) struct Request {
    /// The command name, then its arguments.
    words: Vec<Bytes>,
    spec: Option<&'static Spec>,
}

impl Request {
    /// `words` is the command name and its arguments (the parser never
    /// yields an empty request).
    pub(crate) fn new(words: Vec<Bytes>) -> Request {
        let spec = lookup(words.first().expect("a request has a command name"));
        Request { words, spec }
    }

    /// The command name and its arguments, as the client sent them.
    pub(crate) fn words(&self) -> &[Bytes] {
        &self.words
    }

    /// Gives the words back once the request has been dispatched.
    pub(crate) fn into_words(self) -> Vec<Bytes> {
        self.words
    }

    fn name(&self) -> &Bytes {
        &self.words[0]
    }

    fn args(&self) -> &[Bytes] {
        &self.words[1..]
    }

    /// The command's table row, if it is a known command.
    pub(crate) fn spec(&self) -> Option<&'static Spec> {
        self.spec
    }

    /// True if the request is a write command, or may propose one (EXEC).
    pub(crate) fn is_write(&self) -> bool {
        self.spec.is_some_and(|spec| spec.flags & (flags::WRITE | flags::PROPOSES) != 0)
    }
}

pub(crate) use pubsub::unsubscribe_all;

/// Runs one request, or queues it inside MULTI.
pub(crate) fn dispatch(session: &mut Session, request: &Request) -> Outcome {
    let refused = match request.spec {
        None => Some(unknown_command(request.name(), request.args())),
        Some(spec) => {
            let words = request.words.len() as i64;
            if (spec.arity > 0 && words != spec.arity) || (spec.arity < 0 && words < -spec.arity) {
                Some(wrong_arity(spec.name))
            } else if !session.authenticated && spec.flags & flags::NO_AUTH == 0 {
                Some(CommandError::Other("NOAUTH Authentication required.".into()))
            } else {
                None
            }
        }
    };
    if let Some(refusal) = refused {
        if let Some(transaction) = &mut session.transaction {
            transaction.failed = true;
        }
        return error(refusal);
    }
    let spec = request.spec.expect("refused above if unknown");
    if session.protocol == crate::encode::Protocol::Resp2
        && session.subscriptions() > 0
        && !pubsub::allowed_when_subscribed(spec.name)
    {
        let name = match request.args().first().filter(|_| CONTAINERS.contains(&spec.name)) {
            Some(sub) => format!("{}|{}", spec.name, String::from_utf8_lossy(sub).to_ascii_lowercase()),
            None => spec.name.to_string(),
        };
        return error(pubsub::subscribed_mode_error(&name));
    }
    session.server.stats.total_commands_processed.fetch_add(1, Ordering::Relaxed);
    session.client.update(|state| {
        state.last_command = spec.name;
        state.last_active = std::time::Instant::now();
    });
    session.route = match route(session, spec, &request.words) {
        Ok(route) => route,
        Err(_)
            if split::splittable(spec.name)
                && session.transaction.is_none()
                && !session.server.facts.cluster_enabled =>
        {
            return split::run(session, spec.name, request.args().to_vec());
        }
        Err(refusal) => {
            if let Some(transaction) = &mut session.transaction {
                transaction.failed = true;
            }
            return error(refusal);
        }
    };
    if let Some(redirect) = redis_cluster::redirect(session, spec) {
        if let Some(transaction) = &mut session.transaction {
            transaction.failed = true;
        }
        return error(redirect);
    }
    if session.tracking {
        tracking::before_command(session, spec, &request.words);
    }
    let mut args = Args::of_request(&request.words);
    if session.transaction.is_some() && !transaction::runs_inside_multi(spec.name) {
        if let Err(refusal) = transaction::join(session, spec) {
            if let Some(transaction) = &mut session.transaction {
                transaction.failed = true;
            }
            return error(refusal);
        }
        // Refused before queueing, as Redis refuses protected commands.
        if spec.name == "debug" && !admin::debug_allowed(session) {
            if let Some(transaction) = &mut session.transaction {
                transaction.failed = true;
            }
            return error(admin::debug_refused());
        }
        if spec.flags & flags::NO_MULTI != 0 {
            if let Some(transaction) = &mut session.transaction {
                transaction.failed = true;
            }
            return error(CommandError::Other("ERR Command not allowed inside a transaction".into()));
        }
        return queue(session, spec, &mut args);
    }
    match (spec.handler)(session, &mut args) {
        Ok(outcome) => outcome,
        Err(e) => error(e),
    }
}

/// The shard of the request's keys (`None`: it has none), or CROSSSLOT if
/// they are in several shards (in several hash slots under the Redis
/// Cluster protocol, as Redis Cluster answers). With one shard and no
/// cluster protocol, every request goes to it, its slot left out (not
/// hashed).
fn route(session: &Session, spec: &Spec, words: &[Bytes]) -> Result<Option<Route>, CommandError> {
    let kv = &session.server.kv;
    let cluster_enabled = session.server.facts.cluster_enabled;
    if kv.shards() == 1 && !cluster_enabled {
        return Ok(Some(Route { shard: 0, slot: None }));
    }
    // Arguments that do not parse as the command's keys get the command's
    // own syntax error.
    let Ok(keys) = keyspec::keys(spec, words) else { return Ok(None) };
    let mut slots = keys.iter().map(|(key, _)| storage::keyspace::hash_slot(key));
    let Some(first) = slots.next() else { return Ok(None) };
    let shard = kv.slot_shard(first);
    let crosses = |slot: u16| match cluster_enabled {
        true => slot != first,
        false => kv.slot_shard(slot) != shard,
    };
    if slots.any(crosses) {
        return Err(cross_slot());
    }
    Ok(Some(Route { shard, slot: Some(first) }))
}

/// Redis Cluster's refusal of a request whose keys are in several slots
/// (here: several shards).
pub(crate) fn cross_slot() -> CommandError {
    CommandError::Other("CROSSSLOT Keys in request don't hash to the same slot".into())
}

/// Queues a command of an open MULTI: reads and writes queue themselves
/// (see [`read`] and [`write`]); a command that answered on the spot
/// queues its reply, an error included (Redis reports those at EXEC). A
/// command that would run a read or operation only this connection can
/// run is refused, and EXEC will answer EXECABORT.
fn queue(session: &mut Session, spec: &Spec, args: &mut Args) -> Outcome {
    let before = session.transaction.as_ref().map_or(0, |t| t.commands.len());
    let result = (spec.handler)(session, args);
    let db = session.db;
    let Some(transaction) = session.transaction.as_mut() else {
        return error(CommandError::Other("ERR the transaction ended while queueing".into()));
    };
    if transaction.commands.len() == before {
        let step = match result {
            Ok(Outcome::Reply(reply)) => TxnStep::Reply(reply),
            Err(error) => TxnStep::Reply(Reply::Error(error)),
            Ok(_) => {
                transaction.failed = true;
                return error(CommandError::Other("ERR Command not allowed inside a transaction".into()));
            }
        };
        transaction.commands.push(QueuedCommand { db, step });
    }
    let queued = transaction.commands.len();
    session.client.update(|state| state.multi = Some(queued));
    Outcome::Reply(transaction::queued())
}

/// Commands whose first argument names a subcommand (Redis reports them
/// as `client|reply`).
const CONTAINERS: &[&str] = &[
    "client", "config", "command", "object", "memory", "slowlog", "latency", "pubsub", "cluster", "seshat", "debug",
    "script",
];

/// Redis's "unknown command" line, quoting the first arguments.
fn unknown_command(name: &[u8], args: &[Bytes]) -> CommandError {
    let mut quoted = String::new();
    for arg in args {
        if quoted.len() >= 128 {
            break;
        }
        let room = 128 - quoted.len();
        let text = String::from_utf8_lossy(arg);
        quoted.push_str(&format!("'{}' ", text.chars().take(room).collect::<String>()));
    }
    let name: String = String::from_utf8_lossy(name).chars().take(128).collect();
    let line = format!("ERR unknown command '{name}', with args beginning with: {quoted}");
    CommandError::Other(line.replace(['\r', '\n'], " "))
}

/// Redis's "unknown subcommand" line.
pub(crate) fn unknown_subcommand(sub: &[u8], command: &str) -> CommandError {
    let sub: String = String::from_utf8_lossy(sub).chars().take(128).collect();
    CommandError::Other(format!("ERR unknown subcommand '{sub}'. Try {} HELP.", command.to_ascii_uppercase()))
}

/// A HELP reply: one status line per text line.
pub(crate) fn help(lines: &[&'static str]) -> Reply {
    Reply::Array(lines.iter().map(|line| Reply::Status((*line).into())).collect())
}

/// A container's subcommand arity check (`ok`): else Redis's error for
/// `container|name`, with the arguments consumed.
pub(crate) fn subcommand_arity(args: &mut Args, ok: bool, container: &str, name: &str) -> Result<(), CommandError> {
    if ok {
        return Ok(());
    }
    let _ = args.rest();
    Err(wrong_arity(&format!("{container}|{name}")))
}

/// Redis's arity error for a command or subcommand, e.g. `get`, `config|get`.
pub(crate) fn wrong_arity(full_name: &str) -> CommandError {
    CommandError::Other(format!("ERR wrong number of arguments for '{full_name}' command"))
}

pub(crate) fn error(error: CommandError) -> Outcome {
    Outcome::Reply(Reply::Error(error))
}

pub(crate) fn reply(reply: Reply) -> Result<Outcome, CommandError> {
    Ok(Outcome::Reply(reply))
}

/// Proposes `op` in the session's database, or queues it inside MULTI.
pub(crate) fn write(session: &mut Session, op: WriteOp) -> Result<Outcome, CommandError> {
    if let Some(transaction) = &mut session.transaction {
        transaction.commands.push(QueuedCommand { db: session.db, step: TxnStep::Write(op) });
        return Ok(Outcome::Reply(transaction::queued()));
    }
    let writer = tracking::writer(session);
    Ok(Outcome::Write(session.server.kv.write_from(session.shard(), session.db, op, writer)))
}

/// A read in the session's database: linearizable, or from the local
/// replica as it is after `READONLY`; queued inside MULTI.
pub(crate) fn read(session: &mut Session, op: ReadOp) -> Result<Outcome, CommandError> {
    if let Some(transaction) = &mut session.transaction {
        transaction.commands.push(QueuedCommand { db: session.db, step: TxnStep::Read(op) });
        return Ok(Outcome::Reply(transaction::queued()));
    }
    let kv = session.server.kv.clone();
    let (shard, db, stale) = (session.shard(), session.db, session.stale_reads);
    Ok(Outcome::Read(Box::pin(async move { kv.read_op(shard, db, op, stale).await.unwrap_or_else(service_error) })))
}

/// A report of this node's own state (INFO, MEMORY STATS): it cannot run
/// inside EXEC on every replica, so it is refused inside MULTI. Its counts
/// come from this node's replicas without a read barrier, as a Redis
/// replica's INFO describes its own copy: it answers while a shard has no
/// leader, which is when an operator needs it most.
pub(crate) fn read_local<F>(session: &Session, read: F) -> Result<Outcome, CommandError>
where
    F: FnOnce(&ReadCtx<'_>) -> kv::Result<Reply> + Send + 'static,
{
    let kv = session.server.kv.clone();
    let (shard, db) = (session.shard(), session.db);
    Ok(Outcome::Read(Box::pin(async move { kv.read_stale(shard, db, read).unwrap_or_else(service_error) })))
}

/// The reply of a completed proposal.
pub(crate) fn write_result(result: kv::Result<Reply>) -> Reply {
    result.unwrap_or_else(service_error)
}

/// A failure of the service itself, as the client sees it.
pub(crate) fn service_error(error: kv::Error) -> Reply {
    tracing::warn!(%error, "command failed in the service");
    Reply::Error(CommandError::Other(match error {
        kv::Error::Group(error) => group_error(error),
        other => format!("ERR {other}"),
    }))
}

/// A group failure as a Redis error line.
pub(crate) fn group_error(error: GroupError) -> String {
    match error {
        GroupError::ShuttingDown(_) => "ERR Seshat is shutting down".into(),
        GroupError::Unavailable { reason, .. } => format!("CLUSTERDOWN The cluster is down: {reason}"),
        GroupError::NotLeader { .. } => "CLUSTERDOWN The cluster is down: leadership changed".into(),
        GroupError::Membership(reason) => format!("ERR {reason}"),
        GroupError::Handover(reason) => format!("ERR {reason}"),
        error @ GroupError::Fatal { .. } => format!("ERR {error}"),
    }
}

/// The optional COUNT of LPOP, RPOP and SPOP: a non-negative integer,
/// else Redis's "must be positive" error.
pub(crate) fn optional_count(args: &mut Args) -> Result<Option<u64>, CommandError> {
    match args.next_opt() {
        None => Ok(None),
        Some(count) => match kv::number::parse_i64(&count) {
            Some(n) if n >= 0 => Ok(Some(n as u64)),
            _ => Err(CommandError::Other("ERR value is out of range, must be positive".into())),
        },
    }
}

/// The `numkeys` of SINTERCARD and the *MPOP family: a positive integer,
/// else (not even an integer) Redis's `numkeys should be greater than 0`.
pub(crate) fn positive_numkeys(args: &mut Args) -> Result<i64, CommandError> {
    kv::number::parse_i64(&args.next()?)
        .filter(|n| *n > 0)
        .ok_or_else(|| CommandError::Other("ERR numkeys should be greater than 0".into()))
}

/// `numkeys key… <side> [COUNT n]` of LMPOP, BLMPOP, ZMPOP and BZMPOP;
/// `side` reads the direction keyword (LEFT/RIGHT, MIN/MAX).
pub(crate) fn mpop_args<T>(
    args: &mut Args,
    side: impl Fn(&str) -> Option<T>,
) -> Result<(Vec<Bytes>, T, u64), CommandError> {
    let numkeys = positive_numkeys(args)?;
    if numkeys as usize >= args.remaining() {
        return Err(CommandError::Syntax);
    }
    let keys = (0..numkeys).map(|_| args.next()).collect::<Result<Vec<_>, _>>()?;
    let side = side(&args.next_keyword()?).ok_or(CommandError::Syntax)?;
    let mut count = None;
    while args.remaining() > 0 {
        match args.next_keyword()?.as_str() {
            "COUNT" if count.is_none() && args.remaining() > 0 => {
                let n = kv::number::parse_i64(&args.next()?)
                    .filter(|n| *n > 0)
                    .ok_or_else(|| CommandError::Other("ERR count should be greater than 0".into()))?;
                count = Some(n as u64);
            }
            _ => return Err(CommandError::Syntax),
        }
    }
    Ok((keys, side, count.unwrap_or(1)))
}

/// Builds a table row; `spec!(name, arity, flags, first, last, step, group,
/// since, summary, handler)`.
macro_rules! spec {
    ($name:literal, $arity:expr, $flags:expr, $first:expr, $last:expr, $step:expr, $group:literal, $since:literal, $summary:literal, $handler:expr) => {
        $crate::commands::Spec {
            name: $name,
            arity: $arity,
            flags: $flags,
            first_key: $first,
            last_key: $last,
            step: $step,
            group: $group,
            since: $since,
            summary: $summary,
            handler: $handler,
        }
    };
}
pub(crate) use spec;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_unique_lowercase_names_and_valid_arities() {
        let mut seen = std::collections::HashSet::new();
        for spec in all() {
            assert!(seen.insert(spec.name), "{} listed twice", spec.name);
            assert_eq!(spec.name, spec.name.to_ascii_lowercase());
            assert_ne!(spec.arity, 0, "{}", spec.name);
            assert!(spec.flags & (flags::WRITE | flags::READONLY) != flags::WRITE | flags::READONLY, "{}", spec.name);
        }
    }

    #[test]
    fn lookup_ignores_case_and_refuses_long_names() {
        assert_eq!(lookup(b"gEt").map(|spec| spec.name), Some("get"));
        assert!(lookup(&[b'a'; 100]).is_none());
        assert!(lookup(b"").is_none());
        assert!(all().all(|spec| spec.name.len() < MAX_NAME_LEN));
    }

    #[test]
    fn unknown_commands_quote_their_first_arguments() {
        let error = unknown_command(b"FOO", &[Bytes::from("a"), Bytes::from("b\nc")]);
        assert_eq!(error.to_string(), "ERR unknown command 'FOO', with args beginning with: 'a' 'b c' ");
    }
}
