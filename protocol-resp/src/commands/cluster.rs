//! Cluster commands: Seshat's own membership commands (`SESHAT …`) and the
//! `READONLY`/`READWRITE` read-consistency switch. The Redis Cluster
//! protocol's commands are in `redis_cluster`.

use kv::{CommandError, Reply};
use raft::{Group, GroupError, Member, RaftNode};

use super::flags::{ADMIN, FAST, LOADING, NOSCRIPT, STALE};
use super::{group_error, help, reply, spec, unknown_subcommand, wrong_arity, Outcome, Spec};
use crate::args::Args;
use crate::session::Session;

type Result = std::result::Result<Outcome, CommandError>;

const SESHAT_HELP: &[&str] = &[
    "SESHAT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "MEMBERS [<group>]",
    "    Return the nodes of the cluster: id, Raft address, voter (in every group) or learner, and whether it leads",
    "    this node's first shard group, then its zone if it names one, then fail (a majority cannot reach it) or fail? (this node",
    "    cannot); or the members of one group (e.g. sql/0) and its leader.",
    "GROUPS",
    "    Return one line per Raft group of this node: name, leader, term, applied index, voters, learners.",
    "SHARDS",
    "    Return one line per shard of the keyspace: group, hash slots, leader, applied index, members, keys, and",
    "    target (the members the placement wants); a shard this node holds no replica of as a host last described it.",
    "LEADER",
    "    Return the id and Raft address of the current leader of this node's first shard group (nil if none is known).",
    "ADD-NODE <id> <raft-addr>",
    "    Add a running node to the metadata and SQL groups (first as a learner, then as a voter once it caught up);",
    "    the shards' leaders then move its share of the shard replicas to it.",
    "REMOVE-NODE <id>",
    "    Remove a node from the cluster map and every group (the leader included); its shard replicas move to the",
    "    others first. Answers once this node's groups no longer list it (at most the membership timeout).",
    "HELP",
    "    Print this help.",
];

fn seshat(session: &mut Session, args: &mut Args) -> Result {
    let sub = args.next()?;
    let kv = session.server.kv.clone();
    let node = session.server.node.clone();
    match String::from_utf8_lossy(&sub).to_ascii_uppercase().as_str() {
        "MEMBERS" => {
            let group = args.next_opt();
            args.finish().map_err(|_| wrong_arity("seshat|members"))?;
            match group {
                None => reply(members_reply(&kv, &node.members(), kv_leader(&kv))),
                Some(name) => {
                    let name = String::from_utf8_lossy(&name);
                    let group = node
                        .group(&name)
                        .ok_or_else(|| CommandError::Other(format!("ERR no group '{name}' on this node")))?;
                    reply(members_reply(&kv, &group.members(), group.status().leader.map(|m| m.id)))
                }
            }
        }
        "GROUPS" => {
            args.finish().map_err(|_| wrong_arity("seshat|groups"))?;
            reply(Reply::Array(node.groups().iter().map(|group| Reply::bulk(group_line(group))).collect()))
        }
        "SHARDS" => {
            args.finish().map_err(|_| wrong_arity("seshat|shards"))?;
            let shards = kv.shards();
            let map = kv.meta().map();
            let mut lines = Vec::with_capacity(shards as usize);
            for shard in 0..shards {
                let target = map.placement.get(&shard).map(Vec::as_slice).unwrap_or_default();
                lines.push(Reply::bulk(shard_line(kv.shard_view(shard), shard, shards, target)));
            }
            reply(Reply::Array(lines))
        }
        "LEADER" => {
            args.finish().map_err(|_| wrong_arity("seshat|leader"))?;
            match kv.group().status().leader {
                Some(leader) => reply(Reply::Array(vec![Reply::Int(leader.id as i64), Reply::bulk(leader.addr)])),
                None => reply(Reply::NilArray),
            }
        }
        "ADD-NODE" => {
            let id = node_id(args)?;
            let addr = String::from_utf8_lossy(&args.next()?).into_owned();
            args.finish().map_err(|_| wrong_arity("seshat|add-node"))?;
            if addr.parse::<std::net::SocketAddr>().is_err() {
                return Err(CommandError::Other(format!("ERR invalid Raft address '{addr}': expected HOST:PORT")));
            }
            Ok(Outcome::Operator(Box::pin(async move {
                let added = node.add_node(id, addr).await;
                membership_reply(&kv, &node, added)
            })))
        }
        "REMOVE-NODE" => {
            let id = node_id(args)?;
            args.finish().map_err(|_| wrong_arity("seshat|remove-node"))?;
            Ok(Outcome::Operator(Box::pin(async move {
                // The map first, while the node still follows the metadata
                // group: it learns that the placement moves its replicas
                // away, which it may be leading.
                let known = node.members().iter().any(|m| m.id == id) || kv.meta().map().node(id).is_some();
                if known {
                    if let Err(error) = kv.meta().forget(id).await {
                        tracing::warn!(%error, node = id, "removing a removed node from the cluster map failed");
                    }
                }
                let removed = node.remove_node(id).await;
                if removed.is_ok() {
                    // The placement moves its shard replicas to the others;
                    // the reply waits for that (as this node's groups see
                    // it), up to the membership timeout.
                    let deadline = tokio::time::Instant::now() + kv.group().settings().membership_timeout;
                    while node.members().iter().any(|m| m.id == id) && tokio::time::Instant::now() < deadline {
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                    // Its blocked clients went with it: no write may serve them.
                    let purge = kv::WriteOp::PurgeWaiters { node: id, keep_boot: None };
                    if let Err(error) = kv.write(None, 0, purge).await {
                        tracing::warn!(%error, node = id, "removing a removed node's blocked clients failed");
                    }
                }
                membership_reply(&kv, &node, removed)
            })))
        }
        "HELP" => reply(help(SESHAT_HELP)),
        _ => Err(unknown_subcommand(&sub, "seshat")),
    }
}

fn node_id(args: &mut Args) -> std::result::Result<u64, CommandError> {
    let id = args.next_i64()?;
    u64::try_from(id)
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| CommandError::Other("ERR node ids are positive integers".into()))
}

fn kv_leader(kv: &kv::Kv) -> Option<u64> {
    kv.group().status().leader.map(|m| m.id)
}

/// After a membership change: the nodes, as MEMBERS lists them.
fn membership_reply(kv: &kv::Kv, node: &RaftNode, result: std::result::Result<(), GroupError>) -> Reply {
    match result {
        Ok(()) => members_reply(kv, &node.members(), kv_leader(kv)),
        Err(error) => Reply::Error(CommandError::Other(group_error(error))),
    }
}

/// One line per member: `id addr voter|learner leader|follower`, then
/// `zone=NAME` for a node the metadata group knows a zone of, then `fail`
/// for a node a majority reported unreachable, or `fail?` for one this
/// node has not heard from for the failure timeout (as CLUSTER NODES).
fn members_reply(kv: &kv::Kv, members: &[Member], leader: Option<u64>) -> Reply {
    let map = kv.meta().map();
    Reply::Array(
        members
            .iter()
            .map(|m| {
                let kind = if m.voter { "voter" } else { "learner" };
                let role = if Some(m.id) == leader { "leader" } else { "follower" };
                let zone = map.nodes.get(&m.id).and_then(|node| node.zone.as_deref());
                let zone = zone.map_or(String::new(), |zone| format!(" zone={zone}"));
                let health = match (map.failed(m.id), kv.meta().suspects().contains(m.id)) {
                    (true, _) => " fail",
                    (false, true) => " fail?",
                    (false, false) => "",
                };
                Reply::bulk(format!("{} {} {kind} {role}{zone}{health}", m.id, m.addr))
            })
            .collect(),
    )
}

/// `kv/0 leader=1 term=2 applied=40 voters=1,2,3 learners=`.
fn group_line(group: &Group) -> String {
    let status = group.status();
    let ids = |voter: bool| {
        let ids: Vec<String> = status.members.iter().filter(|m| m.voter == voter).map(|m| m.id.to_string()).collect();
        ids.join(",")
    };
    let leader = status.leader.as_ref().map_or("none".to_string(), |m| m.id.to_string());
    format!(
        "{} leader={leader} term={} applied={} voters={} learners={}",
        status.id,
        status.term,
        status.applied_index,
        ids(true),
        ids(false)
    )
}

/// One shard of `shards`: its group, slots, leader, applied index,
/// members and keys (in every database) as `view` (this node's replica,
/// or a host's last description; `None`: not heard of yet) has them, and
/// the members the metadata group's placement wants it to have (`target`).
fn shard_line(view: Option<kv::ShardView>, shard: u32, shards: u32, target: &[u64]) -> String {
    let slots = storage::keyspace::shard_slots(shard, shards);
    let ids = |ids: &[u64]| ids.iter().map(u64::to_string).collect::<Vec<_>>();
    let target = ids(target).join(",");
    let Some(view) = view else {
        return format!("kv/{shard} slots={}-{} leader=none target={target}", slots.start(), slots.end());
    };
    let leader = view.leader.map_or("none".to_string(), |id| id.to_string());
    let mut members = ids(&view.voters);
    members.extend(view.learners.iter().map(|id| format!("{id}(learner)")));
    format!(
        "kv/{shard} slots={}-{} leader={leader} applied={} members={} keys={} target={target}",
        slots.start(),
        slots.end(),
        view.applied,
        members.join(","),
        view.keys
    )
}

fn readonly(session: &mut Session, _args: &mut Args) -> Result {
    session.stale_reads = true;
    reply(Reply::ok())
}

fn readwrite(session: &mut Session, _args: &mut Args) -> Result {
    session.stale_reads = false;
    reply(Reply::ok())
}

pub(super) const COMMANDS: &[Spec] = &[
    spec!(
        "seshat",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "server",
        "0.1.0",
        "Seshat cluster membership: MEMBERS, LEADER, ADD-NODE, REMOVE-NODE.",
        seshat
    ),
    spec!(
        "readonly",
        1,
        FAST | LOADING | STALE,
        0,
        0,
        0,
        "cluster",
        "3.0.0",
        "Serves reads from this node's replica without a read index (possibly stale).",
        readonly
    ),
    spec!(
        "readwrite",
        1,
        FAST | LOADING | STALE,
        0,
        0,
        0,
        "cluster",
        "3.0.0",
        "Makes reads linearizable again after READONLY.",
        readwrite
    ),
];
