//! The cluster map the metadata group replicates, and the commands that
//! change it.
//!
//! The map is small (a record per node) and changes rarely, so it is
//! stored and snapshotted whole, as one value (`storage::keyspace::
//! meta_state::MAP`). Every change that alters it increments `epoch`; a
//! command that changes nothing (a node registering the addresses it
//! already has) leaves the epoch alone, so restarts do not churn it.
//!
//! Liveness is agreed here, as Redis Cluster agrees it: each node reports
//! the nodes it cannot reach (`crate::meta_group::liveness`), and a node
//! reported by a majority of the nodes is failed ([`ClusterMap::failed`],
//! Redis's FAIL flag), whatever any one node's links say.

use std::collections::{BTreeMap, BTreeSet};

use raft::NodeId;
use serde::{Deserialize, Serialize};
use storage::keyspace::Shard;

use super::placement::Placement;

/// What the metadata group knows about one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: NodeId,
    /// Its Redis Cluster name (CLUSTER MYID): 40 hex digits.
    pub name: String,
    /// Where its Raft transport listens (the cluster bus).
    pub raft_addr: String,
    /// Where its Redis frontend listens, as clients reach it.
    pub resp_addr: String,
    /// Where its PostgreSQL frontend listens, if it serves one.
    pub pg_addr: Option<String>,
    /// The failure zone it runs in (`--zone`), if named.
    pub zone: Option<String>,
}

/// The cluster's nodes and shards, at one configuration epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMap {
    /// Grows with every change of the map.
    pub epoch: u64,
    /// How many shards divide the Redis keyspace's hash slots (evenly,
    /// `storage::keyspace::shard_slots`); 0 until the first node registers.
    pub shards: Shard,
    pub nodes: BTreeMap<NodeId, NodeRecord>,
    /// By node: the nodes that report they cannot reach it. Invariant:
    /// only registered nodes report or are reported, never themselves.
    pub failure_reports: BTreeMap<NodeId, BTreeSet<NodeId>>,
    /// Replicas per shard (`--replicas`); 0 until set: [`DEFAULT_REPLICAS`].
    pub replicas: u32,
    /// Where each shard's replicas belong (`super::placement`), replanned
    /// whenever the nodes or the replica count change. The groups' own
    /// memberships follow it one step at a time. Empty while `awaiting`
    /// is not.
    pub placement: Placement,
    /// The initial members (`--initial-members`) that have not registered
    /// yet. Every shard's group starts with all of them; planning over the
    /// nodes registered so far would take the late ones out of every
    /// group (and put them back by snapshot once they come), so nothing
    /// is placed until they have all registered or been forgotten.
    pub awaiting: BTreeSet<NodeId>,
}

/// Replicas per shard when no node was started with `--replicas`.
pub const DEFAULT_REPLICAS: u32 = 3;

/// A change proposed to the metadata group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaCommand {
    /// A node announces itself and the shard count it runs with.
    Register { node: NodeRecord, shards: Shard },
    /// A node left the cluster (SESHAT REMOVE-NODE).
    Forget { id: NodeId },
    /// `reporter` can reach `about` (`reachable`) or has not heard from it
    /// for the failure timeout.
    Report { reporter: NodeId, about: NodeId, reachable: bool },
    /// Keep this many replicas of each shard (`--replicas`).
    SetReplicas { replicas: u32 },
    /// As `Register`, by one of the cluster's initial members, which
    /// names them all: if this is the cluster's first registration, the
    /// others are awaited before anything is placed ([`ClusterMap::awaiting`]).
    RegisterInitial { node: NodeRecord, shards: Shard, initial: BTreeSet<NodeId> },
}

/// The metadata group's answer to a [`MetaCommand`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaReply {
    /// Applied; the map is now at this epoch.
    Done { epoch: u64 },
    /// Refused, and why (the map is unchanged).
    Refused(String),
}

impl ClusterMap {
    /// Applies `command`: deterministic, as every replica runs it.
    pub fn apply(&mut self, command: MetaCommand) -> MetaReply {
        match command {
            MetaCommand::Register { node, shards } => return self.register(node, shards, BTreeSet::new()),
            MetaCommand::RegisterInitial { node, shards, initial } => return self.register(node, shards, initial),
            MetaCommand::SetReplicas { replicas } => {
                if replicas == 0 {
                    return MetaReply::Refused("a shard needs at least one replica".into());
                }
                if replicas != self.replicas() {
                    self.replicas = replicas;
                    self.replan();
                    self.epoch += 1;
                }
            }
            MetaCommand::Forget { id } => {
                let awaited = self.awaiting.remove(&id);
                if self.nodes.remove(&id).is_some() || awaited {
                    self.replan();
                    self.failure_reports.remove(&id);
                    self.failure_reports.retain(|_, reporters| {
                        reporters.remove(&id);
                        !reporters.is_empty()
                    });
                    self.epoch += 1;
                }
            }
            MetaCommand::Report { reporter, about, reachable } => {
                if let Some(unknown) = [reporter, about].into_iter().find(|id| !self.nodes.contains_key(id)) {
                    return MetaReply::Refused(format!("node {unknown} is not in the cluster"));
                }
                if reporter == about {
                    return MetaReply::Refused(format!("node {reporter} cannot report on itself"));
                }
                let reporters = self.failure_reports.entry(about).or_default();
                let changed = match reachable {
                    true => reporters.remove(&reporter),
                    false => reporters.insert(reporter),
                };
                if reporters.is_empty() {
                    self.failure_reports.remove(&about);
                }
                if changed {
                    self.epoch += 1;
                }
            }
        }
        MetaReply::Done { epoch: self.epoch }
    }

    /// Registers `node`; `initial` names the initial members if `node` is
    /// one (see [`MetaCommand::RegisterInitial`]).
    fn register(&mut self, node: NodeRecord, shards: Shard, initial: BTreeSet<NodeId>) -> MetaReply {
        if self.shards != 0 && shards != self.shards {
            return MetaReply::Refused(format!(
                "the cluster divides its keyspace into {} shard(s), but node {} runs {shards}: \
                 start it with --shards {} on an empty data dir",
                self.shards, node.id, self.shards
            ));
        }
        if let Some(other) = self.nodes.values().find(|known| known.id != node.id && known.name == node.name) {
            return MetaReply::Refused(format!(
                "node {} has the cluster name {} already; node {} cannot take it",
                other.id, other.name, node.id
            ));
        }
        if self.shards == 0 {
            // The cluster's first registration.
            self.shards = shards;
            self.awaiting = initial;
            self.epoch += 1;
        }
        let awaited = self.awaiting.remove(&node.id);
        if self.nodes.get(&node.id) != Some(&node) || awaited {
            self.nodes.insert(node.id, node);
            self.replan();
            self.epoch += 1;
        }
        MetaReply::Done { epoch: self.epoch }
    }

    /// Replicas per shard.
    pub fn replicas(&self) -> u32 {
        if self.replicas == 0 {
            DEFAULT_REPLICAS
        } else {
            self.replicas
        }
    }

    fn replan(&mut self) {
        self.placement = match self.awaiting.is_empty() {
            true => super::placement::plan(&self.nodes, self.shards, self.replicas() as usize, &self.placement),
            false => Placement::new(),
        };
    }

    /// How many nodes report that they cannot reach node `id`.
    pub fn failure_reports(&self, id: NodeId) -> usize {
        self.failure_reports.get(&id).map_or(0, BTreeSet::len)
    }

    /// Whether a majority of the cluster's nodes report that they cannot
    /// reach node `id` (Redis's FAIL). A node that is down does not report,
    /// so of three nodes the other two must agree, of five three.
    pub fn failed(&self, id: NodeId) -> bool {
        self.failure_reports(id) > self.nodes.len() / 2
    }

    /// The record of node `id`, if it registered.
    pub fn node(&self, id: NodeId) -> Option<&NodeRecord> {
        self.nodes.get(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: NodeId, port: u16) -> NodeRecord {
        NodeRecord {
            id,
            name: format!("{id:040x}"),
            raft_addr: format!("127.0.0.1:{}", port + 1000),
            resp_addr: format!("127.0.0.1:{port}"),
            pg_addr: None,
            zone: None,
        }
    }

    #[test]
    fn the_epoch_grows_with_every_change_and_only_then() {
        let mut map = ClusterMap::default();
        assert_eq!(map.apply(MetaCommand::Register { node: record(1, 6379), shards: 3 }), MetaReply::Done { epoch: 2 });
        assert_eq!(map.shards, 3);
        // The same registration again (a restart) changes nothing.
        assert_eq!(map.apply(MetaCommand::Register { node: record(1, 6379), shards: 3 }), MetaReply::Done { epoch: 2 });
        assert_eq!(map.apply(MetaCommand::Register { node: record(2, 6380), shards: 3 }), MetaReply::Done { epoch: 3 });
        // A node that moved its RESP port is a change.
        assert_eq!(map.apply(MetaCommand::Register { node: record(2, 6381), shards: 3 }), MetaReply::Done { epoch: 4 });
        assert_eq!(map.node(2).map(|n| n.resp_addr.as_str()), Some("127.0.0.1:6381"));
        assert_eq!(map.apply(MetaCommand::Forget { id: 2 }), MetaReply::Done { epoch: 5 });
        assert_eq!(map.apply(MetaCommand::Forget { id: 2 }), MetaReply::Done { epoch: 5 });
        assert!(map.node(2).is_none());
    }

    #[test]
    fn a_node_with_another_shard_count_or_a_taken_name_is_refused() {
        let mut map = ClusterMap::default();
        map.apply(MetaCommand::Register { node: record(1, 6379), shards: 3 });
        let before = map.clone();
        let MetaReply::Refused(reason) = map.apply(MetaCommand::Register { node: record(2, 6380), shards: 2 }) else {
            panic!("a second shard count was accepted");
        };
        assert!(reason.contains("3 shard(s)") && reason.contains("--shards 3"), "{reason}");
        let mut twin = record(2, 6380);
        twin.name = record(1, 0).name;
        assert!(matches!(map.apply(MetaCommand::Register { node: twin, shards: 3 }), MetaReply::Refused(_)));
        assert_eq!(map, before);
    }

    #[test]
    fn the_placement_follows_the_nodes_and_the_replica_count() {
        let mut map = ClusterMap::default();
        for id in 1..=4 {
            map.apply(MetaCommand::Register { node: record(id, 6378 + id as u16), shards: 4 });
        }
        assert_eq!(map.replicas(), DEFAULT_REPLICAS);
        assert!(map.placement.values().all(|members| members.len() == 3), "{:?}", map.placement);
        let epoch = map.epoch;
        assert_eq!(map.apply(MetaCommand::SetReplicas { replicas: 2 }), MetaReply::Done { epoch: epoch + 1 });
        assert!(map.placement.values().all(|members| members.len() == 2), "{:?}", map.placement);
        assert_eq!(map.apply(MetaCommand::SetReplicas { replicas: 2 }), MetaReply::Done { epoch: epoch + 1 });
        assert!(matches!(map.apply(MetaCommand::SetReplicas { replicas: 0 }), MetaReply::Refused(_)));
        map.apply(MetaCommand::Forget { id: 4 });
        assert!(map.placement.values().flatten().all(|id| *id != 4), "{:?}", map.placement);
        assert!(map.placement.values().all(|members| members.len() == 2), "{:?}", map.placement);
    }

    #[test]
    fn nothing_is_placed_until_every_initial_member_registered_or_was_forgotten() {
        let initial: BTreeSet<NodeId> = [1, 2, 3, 4].into();
        let register = |id: NodeId| MetaCommand::RegisterInitial {
            node: record(id, 6378 + id as u16),
            shards: 3,
            initial: initial.clone(),
        };
        let mut map = ClusterMap::default();
        map.apply(register(2));
        map.apply(register(1));
        assert_eq!(map.awaiting, [3, 4].into());
        assert!(map.placement.is_empty(), "placed over two of four nodes: {:?}", map.placement);
        // A node joining meanwhile waits with the rest.
        map.apply(MetaCommand::Register { node: record(5, 6390), shards: 3 });
        assert!(map.placement.is_empty(), "{:?}", map.placement);
        map.apply(register(3));
        assert!(map.placement.is_empty(), "{:?}", map.placement);
        // Node 4 never comes; the operator removes it.
        let epoch = map.epoch;
        assert_eq!(map.apply(MetaCommand::Forget { id: 4 }), MetaReply::Done { epoch: epoch + 1 });
        assert!(map.awaiting.is_empty());
        assert_eq!(map.placement.len(), 3);
        assert!(map.placement.values().flatten().all(|id| [1, 2, 3, 5].contains(id)), "{:?}", map.placement);
        // Registrations after the first name no initial members anew.
        map.apply(MetaCommand::RegisterInitial { node: record(6, 6391), shards: 3, initial: [7].into() });
        assert!(map.awaiting.is_empty() && !map.placement.is_empty());
    }

    #[test]
    fn an_initial_member_that_registers_last_is_placed_at_once() {
        let initial: BTreeSet<NodeId> = [1, 2, 3].into();
        let mut map = ClusterMap::default();
        for id in [3, 1, 2] {
            let node = record(id, 6378 + id as u16);
            map.apply(MetaCommand::RegisterInitial { node, shards: 3, initial: initial.clone() });
        }
        assert!(map.awaiting.is_empty());
        assert!(map.placement.values().all(|members| members == &[1, 2, 3]), "{:?}", map.placement);
    }

    #[test]
    fn a_node_fails_once_a_majority_reports_it_and_recovers_when_one_withdraws() {
        let mut map = ClusterMap::default();
        for id in 1..=5 {
            map.apply(MetaCommand::Register { node: record(id, 6378 + id as u16), shards: 3 });
        }
        let report = |reporter, reachable| MetaCommand::Report { reporter, about: 5, reachable };
        let epoch = map.epoch;
        assert_eq!(map.apply(report(1, false)), MetaReply::Done { epoch: epoch + 1 });
        // The same report again changes nothing.
        assert_eq!(map.apply(report(1, false)), MetaReply::Done { epoch: epoch + 1 });
        map.apply(report(2, false));
        assert_eq!((map.failure_reports(5), map.failed(5)), (2, false));
        map.apply(report(3, false));
        assert_eq!((map.failure_reports(5), map.failed(5)), (3, true));
        map.apply(report(2, true));
        assert_eq!((map.failure_reports(5), map.failed(5)), (2, false));
        // Reports on or by unknown nodes, or on oneself, are refused.
        let before = map.clone();
        assert!(matches!(
            map.apply(MetaCommand::Report { reporter: 9, about: 5, reachable: false }),
            MetaReply::Refused(_)
        ));
        assert!(matches!(
            map.apply(MetaCommand::Report { reporter: 1, about: 9, reachable: false }),
            MetaReply::Refused(_)
        ));
        assert!(matches!(
            map.apply(MetaCommand::Report { reporter: 1, about: 1, reachable: false }),
            MetaReply::Refused(_)
        ));
        assert_eq!(map, before);
        // Forgetting a node drops the reports on it and its own.
        map.apply(MetaCommand::Report { reporter: 5, about: 4, reachable: false });
        map.apply(MetaCommand::Forget { id: 5 });
        assert!(map.failure_reports.is_empty(), "{:?}", map.failure_reports);
    }
}
