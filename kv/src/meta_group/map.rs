//! The cluster map the metadata group replicates, and the commands that
//! change it.
//!
//! The map is small (a record per node) and changes rarely, so it is
//! stored and snapshotted whole, as one value (`storage::keyspace::
//! meta_state::MAP`). Every change that alters it increments `epoch`; a
//! command that changes nothing (a node registering the addresses it
//! already has) leaves the epoch alone, so restarts do not churn it.

use std::collections::BTreeMap;

use raft::NodeId;
use serde::{Deserialize, Serialize};
use storage::keyspace::Shard;

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
}

/// A change proposed to the metadata group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaCommand {
    /// A node announces itself and the shard count it runs with.
    Register { node: NodeRecord, shards: Shard },
    /// A node left the cluster (SESHAT REMOVE-NODE).
    Forget { id: NodeId },
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
            MetaCommand::Register { node, shards } => {
                if self.shards == 0 {
                    self.shards = shards;
                    self.epoch += 1;
                } else if shards != self.shards {
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
                if self.nodes.get(&node.id) != Some(&node) {
                    self.nodes.insert(node.id, node);
                    self.epoch += 1;
                }
            }
            MetaCommand::Forget { id } => {
                if self.nodes.remove(&id).is_some() {
                    self.epoch += 1;
                }
            }
        }
        MetaReply::Done { epoch: self.epoch }
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
}
