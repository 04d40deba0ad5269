//! The metadata group's state machine: the [`ClusterMap`], stored whole in
//! `meta_state` and published to this node's readers after every change.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use raft::{Command, StateMachine};
use storage::keyspace::{meta_state, Span};
use storage::{Batch, Family, Reader, Service, Store};
use tokio::sync::watch;

use serde::Deserialize;

use super::map::{ClusterMap, MetaCommand, MetaReply, NodeRecord};
use crate::error::{Error, Result};

pub(crate) struct MetaMachine {
    store: Store,
    map: ClusterMap,
    last_stamp_ms: u64,
    /// This node's readers of the map (see [`super::MetaGroup::map`]).
    published: watch::Sender<Arc<ClusterMap>>,
}

impl MetaMachine {
    /// Opens the machine over the map stored in `store`.
    pub(crate) fn open(store: Store) -> Result<(MetaMachine, watch::Receiver<Arc<ClusterMap>>)> {
        let map = stored_map(&store)?;
        let (published, readers) = watch::channel(Arc::new(map.clone()));
        Ok((MetaMachine { store, map, last_stamp_ms: 0, published }, readers))
    }
}

fn stored_map(store: &Store) -> Result<ClusterMap> {
    let Some(bytes) = store.get(Family::MetaState, meta_state::MAP)? else { return Ok(ClusterMap::default()) };
    // Newest layout first: each older one is a prefix of the next.
    postcard::from_bytes(&bytes)
        .or_else(|error| postcard::from_bytes::<MapBeforeAwaiting>(&bytes).map(ClusterMap::from).map_err(|_| error))
        .or_else(|error| postcard::from_bytes::<MapBeforePlacement>(&bytes).map(ClusterMap::from).map_err(|_| error))
        .or_else(|error| postcard::from_bytes::<MapBeforeReports>(&bytes).map(ClusterMap::from).map_err(|_| error))
        .map_err(|error| Error::Corrupt { family: Family::MetaState.name(), reason: format!("cluster map: {error}") })
}

// The layouts data dirs written by earlier versions store the map in.
// Each is the one before it plus the fields that version added, and
// postcard lays out a struct as its fields in order, so nesting the
// earlier layout first reads the same bytes.

/// Before the map awaited the initial members: read as awaiting none.
#[derive(Deserialize)]
struct MapBeforeAwaiting {
    earlier: MapBeforePlacement,
    replicas: u32,
    placement: super::placement::Placement,
}

impl From<MapBeforeAwaiting> for ClusterMap {
    fn from(map: MapBeforeAwaiting) -> ClusterMap {
        let MapBeforePlacement { earlier: MapBeforeReports { epoch, shards, nodes }, failure_reports } = map.earlier;
        let (replicas, placement) = (map.replicas, map.placement);
        ClusterMap { epoch, shards, nodes, failure_reports, replicas, placement, awaiting: Default::default() }
    }
}

/// Before placement: every node held every shard, so the placement is
/// planned from none, with the default replica count.
#[derive(Deserialize)]
struct MapBeforePlacement {
    earlier: MapBeforeReports,
    failure_reports: BTreeMap<raft::NodeId, std::collections::BTreeSet<raft::NodeId>>,
}

impl From<MapBeforePlacement> for ClusterMap {
    fn from(map: MapBeforePlacement) -> ClusterMap {
        let replicas = super::map::DEFAULT_REPLICAS;
        let placement =
            super::placement::plan(&map.earlier.nodes, map.earlier.shards, replicas as usize, &Default::default());
        ClusterMap::from(MapBeforeAwaiting { earlier: map, replicas: 0, placement })
    }
}

/// Before failure reports: read as a map without reports.
#[derive(Deserialize)]
struct MapBeforeReports {
    epoch: u64,
    shards: storage::keyspace::Shard,
    nodes: BTreeMap<raft::NodeId, NodeRecord>,
}

impl From<MapBeforeReports> for ClusterMap {
    fn from(map: MapBeforeReports) -> ClusterMap {
        ClusterMap::from(MapBeforePlacement { earlier: map, failure_reports: BTreeMap::new() })
    }
}

impl StateMachine for MetaMachine {
    type Error = Error;

    fn apply(&mut self, batch: &mut Batch, commands: Vec<Command>) -> Result<Vec<Bytes>> {
        let epoch = self.map.epoch;
        let mut replies = Vec::with_capacity(commands.len());
        for command in commands {
            self.last_stamp_ms = self.last_stamp_ms.max(command.stamp_ms);
            let reply = match postcard::from_bytes::<MetaCommand>(&command.payload) {
                Ok(command) => self.map.apply(command),
                Err(error) => MetaReply::Refused(format!("undecodable metadata command: {error}")),
            };
            replies.push(Bytes::from(postcard::to_stdvec(&reply).expect("replies always serialize")));
        }
        if self.map.epoch != epoch {
            let bytes = postcard::to_stdvec(&self.map).expect("the map always serializes");
            batch.put(Family::MetaState, meta_state::MAP, bytes);
            self.published.send_replace(Arc::new(self.map.clone()));
        }
        Ok(replies)
    }

    fn last_stamp_ms(&self) -> u64 {
        self.last_stamp_ms
    }

    fn reload(&mut self) -> Result<()> {
        self.map = stored_map(&self.store)?;
        self.published.send_replace(Arc::new(self.map.clone()));
        Ok(())
    }

    /// The metadata group is the only group of its service.
    fn state_spans(&self) -> Vec<Span> {
        Service::Meta.state_families().iter().map(|family| Span::whole(*family)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_stored_by_earlier_versions_read_with_what_they_lack_filled_in() {
        let dir = tempfile::tempdir().unwrap();
        let storage = storage::Storage::open(dir.path(), storage::Layout::Shared).unwrap();
        let store = storage.store(Service::Meta);
        // A layout's fields in order, as tuples: postcard writes a struct
        // as its fields, one after another.
        let stored = |bytes: Vec<u8>| {
            let mut batch = Batch::new();
            batch.put(Family::MetaState, meta_state::MAP, bytes);
            store.write(batch, storage::Durability::Sync).unwrap();
            stored_map(&store)
        };
        let node = NodeRecord {
            id: 1,
            name: "ab".repeat(20),
            raft_addr: "127.0.0.1:7001".into(),
            resp_addr: "127.0.0.1:6379".into(),
            pg_addr: None,
            zone: Some("a".into()),
        };
        let nodes = BTreeMap::from([(1, node)]);

        let map = stored(postcard::to_stdvec(&(7u64, 3u32, &nodes)).unwrap()).unwrap();
        assert_eq!((map.epoch, map.shards, &map.nodes), (7, 3, &nodes));
        assert!(map.failure_reports.is_empty() && map.replicas == 0);
        assert_eq!(map.placement.len(), 3);

        let failure_reports: BTreeMap<raft::NodeId, std::collections::BTreeSet<raft::NodeId>> =
            BTreeMap::from([(1, [2].into())]);
        let map = stored(postcard::to_stdvec(&(8u64, 3u32, &nodes, &failure_reports)).unwrap()).unwrap();
        assert_eq!((map.epoch, map.failure_reports(1), map.placement.len()), (8, 1, 3));

        // The layout before `awaiting` keeps its replica count and placement.
        let placement: super::super::placement::Placement = BTreeMap::from([(0, vec![1]), (1, vec![1])]);
        let before = (9u64, 2u32, &nodes, &failure_reports, 1u32, &placement);
        let map = stored(postcard::to_stdvec(&before).unwrap()).unwrap();
        assert_eq!((map.epoch, map.failure_reports(1), map.replicas, &map.placement), (9, 1, 1, &placement));
        assert!(map.awaiting.is_empty());

        assert!(matches!(stored(vec![0xff; 3]), Err(Error::Corrupt { .. })));
    }
}
