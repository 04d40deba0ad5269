//! The Redis Cluster protocol (`--cluster-enabled yes`): CLUSTER's
//! subcommands and ASKING, for `redis-cli -c`, `redis-cli --cluster` and
//! the cluster clients of the Redis client libraries.
//!
//! Seshat maps Redis Cluster onto its shards: each shard's group is a
//! "master" of its hash slots (its leader's node), its other members the
//! master's replicas; Raft, not the cluster bus, elects and fails over, so
//! the configuration epoch is the metadata group's. A node is `fail?`
//! when this node has not heard from it for the failure timeout, `fail`
//! when a majority reported it to the metadata group (whose reports
//! COUNT-FAILURE-REPORTS counts, `kv::meta_group::liveness`). The views
//! come from [`Topology`]; a keyed request for
//! a shard another node leads answers MOVED with that node's RESP address
//! from the metadata group ([`redirect`]). Without `--cluster-enabled`,
//! CLUSTER and ASKING answer as Redis without cluster support does.

use bytes::Bytes;
use kv::{CommandError, Reply};
use storage::keyspace::{hash_slot, SLOTS};

use raft::NodeId;

use super::cluster_topology::Topology;
use super::flags::{FAST, WRITE};
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

fn cluster(session: &mut Session, args: &mut Args) -> Result {
    if !session.server.facts.cluster_enabled {
        return Err(disabled());
    }
    let sub = args.next()?;
    let topology = Topology::of(session);
    let me = session.server.node.id();
    match String::from_utf8_lossy(&sub).to_ascii_uppercase().as_str() {
        "HELP" => reply(help(HELP)),
        "MYID" => {
            args.finish().map_err(|_| wrong_arity("cluster|myid"))?;
            reply(Reply::bulk(topology.nodes[&me].name.clone()))
        }
        "KEYSLOT" => {
            let key = args.next()?;
            args.finish().map_err(|_| wrong_arity("cluster|keyslot"))?;
            reply(Reply::Int(i64::from(hash_slot(&key))))
        }
        "INFO" => {
            args.finish().map_err(|_| wrong_arity("cluster|info"))?;
            let served = topology.slots_served();
            let state = if served == u32::from(SLOTS) { "ok" } else { "fail" };
            let lines = [
                format!("cluster_state:{state}"),
                format!("cluster_slots_assigned:{SLOTS}"),
                format!("cluster_slots_ok:{served}"),
                "cluster_slots_pfail:0".into(),
                format!("cluster_slots_fail:{}", u32::from(SLOTS) - served),
                format!("cluster_known_nodes:{}", topology.nodes.len()),
                format!("cluster_size:{}", topology.masters()),
                format!("cluster_current_epoch:{}", topology.epoch),
                format!("cluster_my_epoch:{}", topology.epoch),
                "cluster_stats_messages_sent:0".into(),
                "cluster_stats_messages_received:0".into(),
                "total_cluster_links_buffer_limit_exceeded:0".into(),
            ];
            reply(Reply::Verbatim(lines.join("\r\n") + "\r\n"))
        }
        "NODES" => {
            args.finish().map_err(|_| wrong_arity("cluster|nodes"))?;
            let mut text = String::new();
            for (id, node) in &topology.nodes {
                let master = topology.master_of(*id);
                let role = if master.is_some() { "slave" } else { "master" };
                let mut flags = if node.myself { format!("myself,{role}") } else { role.to_string() };
                if node.failed {
                    flags.push_str(",fail");
                } else if node.suspected {
                    flags.push_str(",fail?");
                }
                let link = if node.suspected { "disconnected" } else { "connected" };
                let master_name = master.and_then(|m| topology.nodes.get(&m)).map_or("-", |m| m.name.as_str());
                let slots: Vec<String> =
                    topology.led_ranges(*id).iter().map(|(first, last)| format!("{first}-{last}")).collect();
                let line = format!(
                    "{} {}:{}@{} {flags} {master_name} 0 0 {} {link} {}",
                    node.name,
                    node.ip,
                    node.port,
                    node.bus_port,
                    topology.epoch,
                    slots.join(" ")
                );
                text.push_str(line.trim_end());
                text.push('\n');
            }
            reply(Reply::Verbatim(text))
        }
        "SLOTS" => {
            args.finish().map_err(|_| wrong_arity("cluster|slots"))?;
            let entry = |id: &NodeId| {
                topology.nodes.get(id).map(|node| {
                    Reply::Array(vec![
                        Reply::bulk(node.ip.clone()),
                        Reply::Int(i64::from(node.port)),
                        Reply::bulk(node.name.clone()),
                        Reply::Array(Vec::new()),
                    ])
                })
            };
            let mut ranges = Vec::new();
            for (first, last, leader, voters) in topology.served_ranges() {
                let Some(master) = entry(&leader) else { continue };
                let mut line = vec![Reply::Int(i64::from(first)), Reply::Int(i64::from(last)), master];
                // As Redis, failed replicas are left out.
                let replicas = voters.iter().filter(|id| **id != leader);
                line.extend(replicas.filter(|id| topology.nodes.get(id).is_some_and(|n| !n.failed)).filter_map(entry));
                ranges.push(Reply::Array(line));
            }
            reply(Reply::Array(ranges))
        }
        "SHARDS" => {
            args.finish().map_err(|_| wrong_arity("cluster|shards"))?;
            let mut shards = Vec::new();
            for shard in &topology.shards {
                let slots = vec![Reply::Int(i64::from(shard.first_slot)), Reply::Int(i64::from(shard.last_slot))];
                let mut members = Vec::new();
                for id in &shard.voters {
                    let Some(node) = topology.nodes.get(id) else { continue };
                    let role = if shard.leader == Some(*id) { "master" } else { "replica" };
                    members.push(Reply::Map(vec![
                        (Reply::bulk("id"), Reply::bulk(node.name.clone())),
                        (Reply::bulk("port"), Reply::Int(i64::from(node.port))),
                        (Reply::bulk("ip"), Reply::bulk(node.ip.clone())),
                        (Reply::bulk("endpoint"), Reply::bulk(node.ip.clone())),
                        (Reply::bulk("role"), Reply::bulk(role)),
                        (Reply::bulk("replication-offset"), Reply::Int(shard.applied as i64)),
                        (Reply::bulk("health"), Reply::bulk(if node.failed { "fail" } else { "online" })),
                    ]));
                }
                shards.push(Reply::Map(vec![
                    (Reply::bulk("slots"), Reply::Array(slots)),
                    (Reply::bulk("nodes"), Reply::Array(members)),
                ]));
            }
            reply(Reply::Array(shards))
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
            let Some(node) = topology.nodes.iter().find(|(_, node)| *id == *node.name.as_bytes()).map(|(id, _)| *id)
            else {
                return Err(CommandError::Other(format!("ERR Unknown node {}", String::from_utf8_lossy(&id))));
            };
            reply(Reply::Int(session.server.kv.meta().map().failure_reports(node) as i64))
        }
        _ => Err(unknown_subcommand(&sub, "cluster")),
    }
}

/// Reads the keys of `slot` in database 0 (Redis Cluster has only that one)
/// after the read barrier of its shard, answering `answer(keys)`. A node
/// without a replica of the shard has none of its keys (as a Redis
/// Cluster node has none of a slot it does not serve).
fn keys_in_slot(
    session: &Session,
    slot: u16,
    limit: usize,
    answer: impl FnOnce(Vec<Bytes>) -> Reply + Send + 'static,
) -> Result {
    let kv = session.server.kv.clone();
    let shard = kv.slot_shard(slot);
    if kv.group_of(shard).is_none() {
        return reply(answer(Vec::new()));
    }
    Ok(Outcome::Read(Box::pin(async move {
        match kv.read(Some(shard), 0, |ctx| ctx.keys_in_slot(slot, limit)).await {
            Ok(keys) => answer(keys),
            Err(error) => super::service_error(error),
        }
    })))
}

/// Under the cluster protocol, where a keyed request goes instead of
/// this node: `-MOVED <slot> <ip:port>` when another node leads its
/// slot's shard (a read after READONLY stays if this node holds a replica
/// of the shard), `-CLUSTERDOWN` when the shard has no leader. `None`:
/// this node serves it, as it does without the cluster protocol: while
/// the leader has not registered its address yet, and, for a shard this
/// node holds no replica of, until it has heard which node leads it (the
/// request goes through a node that hosts it, whose answer names the
/// leader).
pub(super) fn redirect(session: &Session, spec: &Spec) -> Option<CommandError> {
    if !session.server.facts.cluster_enabled {
        return None;
    }
    let route = session.route?;
    let slot = route.slot?;
    let kv = &session.server.kv;
    let (leader, hosted) = match kv.group_of(route.shard) {
        Some(group) => (group.leader_id(), true),
        None => (Some(kv.remote_leader(route.shard)?), false),
    };
    if leader == Some(session.server.node.id()) || (hosted && session.stale_reads && spec.flags & WRITE == 0) {
        return None;
    }
    let Some(leader) = leader else {
        return Some(CommandError::Other("CLUSTERDOWN The cluster is down".into()));
    };
    let map = session.server.kv.meta().map();
    let record = map.node(leader)?;
    Some(CommandError::Other(format!("MOVED {slot} {}", record.resp_addr)))
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
