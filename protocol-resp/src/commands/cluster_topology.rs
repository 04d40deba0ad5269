//! The cluster as the Redis Cluster protocol shows it, built from this
//! node's view: each shard's group (its leader and voters, as this
//! replica knows them, or as a host described it last for a shard this
//! node holds no replica of) and the metadata group's map (every node's
//! name and addresses).
//!
//! A shard is a Redis Cluster "master" (its leader's node) with its
//! slots, and its other voters are that master's replicas. A node of
//! Redis Cluster is either a master or a replica; a Seshat node leads
//! some shards and follows others, so CLUSTER NODES shows it as a master
//! of the slots of the shards it leads, and as a replica (of the first
//! shard it follows) only when it leads none. CLUSTER SLOTS and SHARDS
//! list every shard with all its members, which describes it exactly.

use std::collections::BTreeMap;
use std::sync::Arc;

use kv::meta_group::ClusterMap;
use raft::NodeId;
use storage::keyspace::shard_slots;

use crate::session::Session;

/// One node as clients reach it.
pub(super) struct TopologyNode {
    /// Its Redis Cluster name (40 hex digits).
    pub name: String,
    pub ip: String,
    pub port: u16,
    pub bus_port: u16,
    pub myself: bool,
    /// This node has not heard from it for the failure timeout (Redis's
    /// PFAIL: the `fail?` flag and `disconnected` link state).
    pub suspected: bool,
    /// A majority of the nodes cannot reach it, as the metadata group
    /// agreed (Redis's FAIL: the `fail` flag).
    pub failed: bool,
}

/// One shard: its slots, leader and voters.
pub(super) struct TopologyShard {
    pub first_slot: u16,
    pub last_slot: u16,
    pub leader: Option<NodeId>,
    /// Voters, leader included, by id.
    pub voters: Vec<NodeId>,
    /// The group's applied index on this node (replication offset).
    pub applied: u64,
}

pub(super) struct Topology {
    pub nodes: BTreeMap<NodeId, TopologyNode>,
    pub shards: Vec<TopologyShard>,
    pub epoch: u64,
}

impl Topology {
    /// The cluster as `session`'s node sees it now.
    pub(super) fn of(session: &Session) -> Topology {
        let kv = &session.server.kv;
        let map: Arc<ClusterMap> = kv.meta().map();
        let me = session.server.node.id();
        let count = kv.shards();
        let mut shards = Vec::new();
        for shard in 0..count {
            let slots = shard_slots(shard, count);
            // A shard this node holds no replica of, not described by a
            // host yet: its target members, leader unknown.
            let view = kv.shard_view(shard).unwrap_or_else(|| kv::ShardView {
                shard,
                leader: None,
                voters: map.placement.get(&shard).cloned().unwrap_or_default(),
                learners: Vec::new(),
                applied: 0,
                keys: 0,
            });
            let mut voters = view.voters;
            voters.sort_unstable();
            shards.push(TopologyShard {
                first_slot: *slots.start(),
                last_slot: *slots.end(),
                leader: view.leader,
                voters,
                applied: view.applied,
            });
        }
        let mut nodes = BTreeMap::new();
        // This node as the client reached it (its address may be one of
        // several of the host); the others as they registered.
        nodes.insert(
            me,
            TopologyNode {
                name: kv.cluster_name().to_string(),
                ip: session.client.local_addr.ip().to_string(),
                port: session.server.facts.tcp_port,
                bus_port: session.server.node.addr().port(),
                myself: true,
                suspected: false,
                failed: false,
            },
        );
        for record in map.nodes.values().filter(|record| record.id != me) {
            let (ip, port) = split_addr(&record.resp_addr);
            let (_, bus_port) = split_addr(&record.raft_addr);
            let suspected = kv.meta().suspects().contains(record.id);
            let failed = map.failed(record.id);
            nodes.insert(
                record.id,
                TopologyNode { name: record.name.clone(), ip, port, bus_port, myself: false, suspected, failed },
            );
        }
        Topology { nodes, shards, epoch: map.epoch.max(1) }
    }

    /// The slot ranges of the shards `node` leads, merged where they touch.
    pub(super) fn led_ranges(&self, node: NodeId) -> Vec<(u16, u16)> {
        let mut ranges: Vec<(u16, u16)> = Vec::new();
        for shard in self.shards.iter().filter(|shard| shard.leader == Some(node)) {
            match ranges.last_mut() {
                Some(last) if last.1 + 1 == shard.first_slot => last.1 = shard.last_slot,
                _ => ranges.push((shard.first_slot, shard.last_slot)),
            }
        }
        ranges
    }

    /// The leader `node` shows as its master in CLUSTER NODES when it
    /// leads no shard: the leader of the first shard it votes in.
    pub(super) fn master_of(&self, node: NodeId) -> Option<NodeId> {
        if self.shards.iter().any(|shard| shard.leader == Some(node)) {
            return None;
        }
        self.shards.iter().filter(|shard| shard.voters.contains(&node)).find_map(|shard| shard.leader)
    }

    /// The shards as CLUSTER SLOTS lists them: consecutive shards with the
    /// same leader and voters merged into one range, shards without a
    /// leader left out (as Redis leaves out slots no master serves).
    pub(super) fn served_ranges(&self) -> Vec<(u16, u16, NodeId, &[NodeId])> {
        let mut ranges: Vec<(u16, u16, NodeId, &[NodeId])> = Vec::new();
        for shard in &self.shards {
            let Some(leader) = shard.leader else { continue };
            match ranges.last_mut() {
                Some(last)
                    if last.1 + 1 == shard.first_slot && last.2 == leader && last.3 == shard.voters.as_slice() =>
                {
                    last.1 = shard.last_slot
                }
                _ => ranges.push((shard.first_slot, shard.last_slot, leader, &shard.voters)),
            }
        }
        ranges
    }

    /// How many slots belong to shards with a leader.
    pub(super) fn slots_served(&self) -> u32 {
        self.shards
            .iter()
            .filter(|shard| shard.leader.is_some())
            .map(|shard| u32::from(shard.last_slot - shard.first_slot) + 1)
            .sum()
    }

    /// The nodes leading at least one shard.
    pub(super) fn masters(&self) -> usize {
        let mut leaders: Vec<NodeId> = self.shards.iter().filter_map(|shard| shard.leader).collect();
        leaders.sort_unstable();
        leaders.dedup();
        leaders.len()
    }
}

/// `host:port` as its host and port (port 0 if it has none).
fn split_addr(addr: &str) -> (String, u16) {
    match addr.rsplit_once(':') {
        Some((host, port)) => (host.trim_matches(['[', ']']).to_string(), port.parse().unwrap_or(0)),
        None => (addr.to_string(), 0),
    }
}
