//! HyperLogLog commands: parse, call `kv`, reply. The sketches are strings
//! in Redis's layout (`kv::hll`); every change goes through the log.

use kv::{CommandError, ReadOp, WriteOp};

use super::flags::{ADMIN, DENYOOM, FAST, PROPOSES, READONLY, WRITE};
use super::{read, service_error, spec, write, Outcome, Spec};
use crate::args::Args;
use crate::session::Session;

type Result = std::result::Result<Outcome, CommandError>;

/// The `hll-sparse-max-bytes` in force on this node, carried in the entry.
fn sparse_max(session: &Session) -> u64 {
    session.server.config.read().expect("config lock").hll_sparse_max_bytes
}

fn pfadd(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let elements = args.rest();
    let sparse_max = sparse_max(session);
    write(session, WriteOp::PfAdd { key, elements, sparse_max })
}

/// Several keys: a read of their union. One key: a read of the cached
/// cardinality, and only if the cache is stale a write, since computing
/// the cardinality caches it in the value (Redis changes the bytes too);
/// inside MULTI that write, which answers either way.
fn pfcount(session: &mut Session, args: &mut Args) -> Result {
    let mut keys = args.rest();
    if keys.len() != 1 {
        return read(session, ReadOp::PfCountUnion { keys });
    }
    let key = keys.remove(0);
    if session.transaction.is_some() {
        return write(session, WriteOp::PfCount { key });
    }
    let kv = session.server.kv.clone();
    let (shard, db, stale) = (session.shard(), session.db, session.stale_reads);
    Ok(Outcome::Read(Box::pin(async move {
        let cached = {
            let key = key.clone();
            let read = move |ctx: &kv::ReadCtx<'_>| ctx.pfcount_cached(&key);
            match stale {
                true => kv.read_stale(shard, db, read),
                false => kv.read(shard, db, read).await,
            }
        };
        match cached {
            Ok(Some(reply)) => reply,
            Ok(None) => kv.write(shard, db, WriteOp::PfCount { key }).await.unwrap_or_else(service_error),
            Err(error) => service_error(error),
        }
    })))
}

fn pfmerge(session: &mut Session, args: &mut Args) -> Result {
    let dest = args.next()?;
    let sources = args.rest();
    let sparse_max = sparse_max(session);
    write(session, WriteOp::PfMerge { dest, sources, sparse_max })
}

fn pfdebug(session: &mut Session, args: &mut Args) -> Result {
    let subcommand = args.next()?;
    let key = args.next()?;
    write(session, WriteOp::PfDebug { subcommand, key })
}

/// Checks this node's sketch code (register packing, sparse against dense)
/// rather than Redis's C internals.
fn pfselftest(_session: &mut Session, _args: &mut Args) -> Result {
    match kv::hll::self_test() {
        Ok(()) => Ok(Outcome::Reply(kv::Reply::ok())),
        Err(failure) => Err(CommandError::Other(failure)),
    }
}

pub(super) const COMMANDS: &[Spec] = &[
    spec!(
        "pfadd",
        -2,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "hyperloglog",
        "2.8.9",
        "Adds elements to a HyperLogLog key. Creates the key if it doesn't exist.",
        pfadd
    ),
    spec!(
        "pfcount",
        -2,
        READONLY | PROPOSES,
        1,
        -1,
        1,
        "hyperloglog",
        "2.8.9",
        "Returns the approximated cardinality of the set(s) observed by the HyperLogLog key(s).",
        pfcount
    ),
    spec!(
        "pfmerge",
        -2,
        WRITE | DENYOOM,
        1,
        -1,
        1,
        "hyperloglog",
        "2.8.9",
        "Merges one or more HyperLogLog values into a single key.",
        pfmerge
    ),
    spec!(
        "pfdebug",
        3,
        WRITE | DENYOOM | ADMIN,
        2,
        2,
        1,
        "hyperloglog",
        "2.8.9",
        "Internal commands for debugging HyperLogLog values.",
        pfdebug
    ),
    spec!(
        "pfselftest",
        1,
        ADMIN,
        0,
        0,
        0,
        "hyperloglog",
        "2.8.9",
        "An internal command for testing HyperLogLog values.",
        pfselftest
    ),
];
