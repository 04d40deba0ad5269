//! MEMORY: what a key takes, and the node's memory as far as it is known.
//!
//! Seshat's data lives in RocksDB, not in the process's heap, so MEMORY
//! STATS reports the process (resident and peak resident memory) and the
//! dataset (RocksDB's estimate of its live data, key counts) and leaves
//! out Redis's allocator internals, which have no counterpart here.

use kv::{CommandError, ReadOp, Reply};
use storage::{peak_resident_bytes, resident_bytes};

use super::flags::READONLY;
use super::{help, read, read_local, reply, spec, unknown_subcommand, wrong_arity, Outcome, Spec};
use crate::args::Args;
use crate::session::Session;

type Result = std::result::Result<Outcome, CommandError>;

/// Redis's default sample of MEMORY USAGE.
const DEFAULT_SAMPLES: u64 = 5;

fn memory(session: &mut Session, args: &mut Args) -> Result {
    let sub = args.next()?;
    match String::from_utf8_lossy(&sub).to_ascii_uppercase().as_str() {
        "USAGE" => {
            let key = args.next().map_err(|_| wrong_arity("memory|usage"))?;
            let mut samples = DEFAULT_SAMPLES;
            while let Some(option) = args.next_opt() {
                if !option.eq_ignore_ascii_case(b"SAMPLES") || args.remaining() == 0 {
                    return Err(CommandError::Syntax);
                }
                let n = args.next_i64()?;
                if n < 0 {
                    return Err(CommandError::Syntax);
                }
                samples = n as u64;
            }
            read(session, ReadOp::MemoryUsage { key, samples })
        }
        "STATS" => {
            args.finish().map_err(|_| wrong_arity("memory|stats"))?;
            let startup = session.server.startup_resident;
            let dataset = session.server.kv.estimated_size();
            read_local(session, move |ctx| {
                let keys: u64 = ctx.keyspace()?.iter().map(|(_, keys, _)| keys).sum();
                let (total, peak) = (resident_bytes(), peak_resident_bytes());
                let field = |name: &str, value: u64| (Reply::bulk(name.to_string()), Reply::Int(value as i64));
                Ok(Reply::Map(vec![
                    field("peak.allocated", peak),
                    field("total.allocated", total),
                    field("startup.allocated", startup),
                    field("keys.count", keys),
                    field("keys.bytes-per-key", dataset.checked_div(keys).unwrap_or(0)),
                    field("dataset.bytes", dataset),
                ]))
            })
        }
        "DOCTOR" => {
            args.finish().map_err(|_| wrong_arity("memory|doctor"))?;
            let (total, peak) = (resident_bytes(), peak_resident_bytes());
            let text = format!(
                "Hi Sam, I can't find any memory issue in your instance. Seshat keeps its data in RocksDB on disk: \
                 this process uses {total} bytes now and used {peak} bytes at most.\n"
            );
            reply(Reply::Verbatim(text))
        }
        "MALLOC-STATS" => {
            args.finish().map_err(|_| wrong_arity("memory|malloc-stats"))?;
            reply(Reply::Verbatim("Stats not supported for the current allocator\n".into()))
        }
        "PURGE" => {
            args.finish().map_err(|_| wrong_arity("memory|purge"))?;
            reply(Reply::ok())
        }
        "HELP" => reply(help(&[
            "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
            "HELP",
            "    Print this help.",
        ])),
        _ => Err(unknown_subcommand(&sub, "memory")),
    }
}

pub(super) const COMMANDS: &[Spec] = &[spec!(
    "memory",
    -2,
    READONLY,
    0,
    0,
    0,
    "server",
    "4.0.0",
    "A container for memory diagnostics commands.",
    memory
)];
