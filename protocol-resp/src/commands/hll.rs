//! HyperLogLog commands: parse, call `kv`, reply. The sketches are strings
//! in Redis's layout (`kv::hll`); every change goes through the log.

use kv::{CommandError, ReadOp, WriteOp};

use super::flags::{ADMIN, DENYOOM, FAST, PROPOSES, READONLY, WRITE};
use super::{read, spec, write, Outcome, Spec};
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

/// One key: a write, since computing the cardinality caches it in the
/// value (Redis changes the bytes too); several: a read of their union.
fn pfcount(session: &mut Session, args: &mut Args) -> Result {
    let mut keys = args.rest();
    match keys.len() {
        1 => write(session, WriteOp::PfCount { key: keys.remove(0) }),
        _ => read(session, ReadOp::PfCountUnion { keys }),
    }
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
