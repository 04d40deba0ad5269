//! The Redis Cluster protocol (`--cluster-enabled yes`): CLUSTER's
//! subcommands and ASKING, for `redis-cli -c`, `redis-cli --cluster` and
//! the cluster clients of the Redis client libraries.
//!
//! Seshat maps Redis Cluster onto its shards: each shard's group is a
//! "master" of its hash slots (its leader's node), its other members the
//! master's replicas; Raft, not the cluster bus, elects and fails over, so
//! the configuration epoch and the failure reports are not Redis's. So far
//! a node speaks the protocol alone (one node leads every shard and owns
//! every slot): naming other nodes' addresses in CLUSTER NODES and SLOTS,
//! and MOVED, need the metadata group's registry of nodes. Without
//! `--cluster-enabled`, CLUSTER and ASKING answer as Redis without cluster
//! support does.

use bytes::Bytes;
use kv::{CommandError, Reply};
use storage::keyspace::{hash_slot, shard_slots, SLOTS};

use super::flags::FAST;
use super::{help, reply, spec, unknown_subcommand, wrong_arity, Outcome, Spec};
use crate::args::Args;
use crate::session::Session;

type Result = std::result::Result<Outcome, CommandError>;

const HELP: &[&str] = &[
    "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by this node in a slot.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "MYID",
    "    Return the node id.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port@cport> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, master and replicas IP addresses, ports and ids",
    "COUNT-FAILURE-REPORTS <node-id>",
    "    Return number of non-expired failure reports for the <node-id>.",
    "HELP",
    "    Print this help.",
];

fn disabled() -> CommandError {
    CommandError::Other("ERR This instance has cluster support disabled".into())
}

/// The slot argument of COUNTKEYSINSLOT and GETKEYSINSLOT.
fn slot(args: &mut Args) -> std::result::Result<u16, CommandError> {
    let text = args.next()?;
    kv::number::parse_i64(&text)
        .and_then(|slot| u16::try_from(slot).ok())
        .filter(|slot| *slot < SLOTS)
        .ok_or_else(|| CommandError::Other("ERR Invalid slot".into()))
}

/// What every node entry names: this node's address as the client reached
/// it, its RESP port and its bus port (the Raft transport's).
struct Me {
    id: String,
    ip: String,
    port: u16,
    bus_port: u16,
}

impl Me {
    fn of(session: &Session) -> Me {
        Me {
            id: session.server.kv.cluster_name().to_string(),
            ip: session.client.local_addr.ip().to_string(),
            port: session.server.facts.tcp_port,
            bus_port: session.server.node.addr().port(),
        }
    }
}

/// The slot ranges this node serves: every shard's, merged where they
/// touch (one node leads every shard so far).
fn slot_ranges(shards: u32) -> Vec<(u16, u16)> {
    let mut ranges: Vec<(u16, u16)> = Vec::new();
    for shard in 0..shards {
        let slots = shard_slots(shard, shards);
        match ranges.last_mut() {
            Some(last) if last.1 + 1 == *slots.start() => last.1 = *slots.end(),
            _ => ranges.push((*slots.start(), *slots.end())),
        }
    }
    ranges
}

fn cluster(session: &mut Session, args: &mut Args) -> Result {
    if !session.server.facts.cluster_enabled {
        return Err(disabled());
    }
    let sub = args.next()?;
    let kv = session.server.kv.clone();
    let me = Me::of(session);
    let ranges = slot_ranges(kv.shards());
    match String::from_utf8_lossy(&sub).to_ascii_uppercase().as_str() {
        "HELP" => reply(help(HELP)),
        "MYID" => {
            args.finish().map_err(|_| wrong_arity("cluster|myid"))?;
            reply(Reply::bulk(me.id))
        }
        "KEYSLOT" => {
            let key = args.next()?;
            args.finish().map_err(|_| wrong_arity("cluster|keyslot"))?;
            reply(Reply::Int(i64::from(hash_slot(&key))))
        }
        "INFO" => {
            args.finish().map_err(|_| wrong_arity("cluster|info"))?;
            let lines = [
                "cluster_state:ok".to_string(),
                format!("cluster_slots_assigned:{SLOTS}"),
                format!("cluster_slots_ok:{SLOTS}"),
                "cluster_slots_pfail:0".into(),
                "cluster_slots_fail:0".into(),
                "cluster_known_nodes:1".into(),
                "cluster_size:1".into(),
                "cluster_current_epoch:1".into(),
                "cluster_my_epoch:1".into(),
                "cluster_stats_messages_sent:0".into(),
                "cluster_stats_messages_received:0".into(),
                "total_cluster_links_buffer_limit_exceeded:0".into(),
            ];
            reply(Reply::Verbatim(lines.join("\r\n") + "\r\n"))
        }
        "NODES" => {
            args.finish().map_err(|_| wrong_arity("cluster|nodes"))?;
            let slots: Vec<String> = ranges.iter().map(|(first, last)| format!("{first}-{last}")).collect();
            let line = format!(
                "{} {}:{}@{} myself,master - 0 0 1 connected {}\n",
                me.id,
                me.ip,
                me.port,
                me.bus_port,
                slots.join(" ")
            );
            reply(Reply::Verbatim(line))
        }
        "SLOTS" => {
            args.finish().map_err(|_| wrong_arity("cluster|slots"))?;
            let node = || {
                Reply::Array(vec![
                    Reply::bulk(me.ip.clone()),
                    Reply::Int(i64::from(me.port)),
                    Reply::bulk(me.id.clone()),
                    Reply::Array(Vec::new()),
                ])
            };
            let ranges = ranges.iter().map(|(first, last)| {
                Reply::Array(vec![Reply::Int(i64::from(*first)), Reply::Int(i64::from(*last)), node()])
            });
            reply(Reply::Array(ranges.collect()))
        }
        "SHARDS" => {
            args.finish().map_err(|_| wrong_arity("cluster|shards"))?;
            let slots =
                ranges.iter().flat_map(|(first, last)| [Reply::Int(i64::from(*first)), Reply::Int(i64::from(*last))]);
            let offset = kv.groups().iter().map(|group| group.applied_index()).sum::<u64>();
            let node = Reply::Map(vec![
                (Reply::bulk("id"), Reply::bulk(me.id.clone())),
                (Reply::bulk("port"), Reply::Int(i64::from(me.port))),
                (Reply::bulk("ip"), Reply::bulk(me.ip.clone())),
                (Reply::bulk("endpoint"), Reply::bulk(me.ip.clone())),
                (Reply::bulk("role"), Reply::bulk("master")),
                (Reply::bulk("replication-offset"), Reply::Int(offset as i64)),
                (Reply::bulk("health"), Reply::bulk("online")),
            ]);
            let shard = Reply::Map(vec![
                (Reply::bulk("slots"), Reply::Array(slots.collect())),
                (Reply::bulk("nodes"), Reply::Array(vec![node])),
            ]);
            reply(Reply::Array(vec![shard]))
        }
        "COUNTKEYSINSLOT" => {
            let slot = slot(args)?;
            args.finish().map_err(|_| wrong_arity("cluster|countkeysinslot"))?;
            keys_in_slot(session, slot, usize::MAX, |keys| Reply::Int(keys.len() as i64))
        }
        "GETKEYSINSLOT" => {
            let slot = slot(args)?;
            let count = args.next()?;
            args.finish().map_err(|_| wrong_arity("cluster|getkeysinslot"))?;
            let count = kv::number::parse_i64(&count)
                .and_then(|count| usize::try_from(count).ok())
                .ok_or_else(|| CommandError::Other("ERR Invalid number of keys".into()))?;
            keys_in_slot(session, slot, count, |keys| Reply::Array(keys.into_iter().map(Reply::Bulk).collect()))
        }
        "COUNT-FAILURE-REPORTS" => {
            let id = args.next()?;
            args.finish().map_err(|_| wrong_arity("cluster|count-failure-reports"))?;
            if *id != *me.id.as_bytes() {
                return Err(CommandError::Other(format!("ERR Unknown node {}", String::from_utf8_lossy(&id))));
            }
            reply(Reply::Int(0))
        }
        _ => Err(unknown_subcommand(&sub, "cluster")),
    }
}

/// Reads the keys of `slot` in database 0 (Redis Cluster has only that one)
/// after the read barrier of its shard, answering `answer(keys)`.
fn keys_in_slot(
    session: &Session,
    slot: u16,
    limit: usize,
    answer: impl FnOnce(Vec<Bytes>) -> Reply + Send + 'static,
) -> Result {
    let kv = session.server.kv.clone();
    let shard = storage::keyspace::slot_shard(slot, kv.shards());
    Ok(Outcome::Read(Box::pin(async move {
        match kv.read(Some(shard), 0, |ctx| ctx.keys_in_slot(slot, limit)).await {
            Ok(keys) => answer(keys),
            Err(error) => super::service_error(error),
        }
    })))
}

fn asking(session: &mut Session, _args: &mut Args) -> Result {
    if !session.server.facts.cluster_enabled {
        return Err(disabled());
    }
    // No slot ever migrates yet: every slot is served here, ASKING or not.
    reply(Reply::ok())
}

pub(super) const COMMANDS: &[Spec] = &[
    spec!("cluster", -2, 0, 0, 0, 0, "cluster", "3.0.0", "A container for Redis Cluster commands.", cluster),
    spec!(
        "asking",
        1,
        FAST,
        0,
        0,
        0,
        "cluster",
        "3.0.0",
        "Signals that a cluster client is following an -ASK redirect.",
        asking
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_nodes_ranges_cover_every_slot_once() {
        for shards in [1, 2, 3, 16] {
            assert_eq!(slot_ranges(shards), [(0, SLOTS - 1)], "{shards} shards");
        }
    }
}
