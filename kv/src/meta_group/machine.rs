//! The metadata group's state machine: the [`ClusterMap`], stored whole in
//! `meta_state` and published to this node's readers after every change.

use std::sync::Arc;

use bytes::Bytes;
use raft::{Command, StateMachine};
use storage::keyspace::{meta_state, Span};
use storage::{Batch, Family, Reader, Service, Store};
use tokio::sync::watch;

use super::map::{ClusterMap, MetaCommand, MetaReply};
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
    match store.get(Family::MetaState, meta_state::MAP)? {
        None => Ok(ClusterMap::default()),
        Some(bytes) => postcard::from_bytes(&bytes).map_err(|error| Error::Corrupt {
            family: Family::MetaState.name(),
            reason: format!("cluster map: {error}"),
        }),
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
