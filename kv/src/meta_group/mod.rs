//! The metadata group (`meta/0`): the single source of truth for the
//! cluster's nodes (id, Redis Cluster name, Raft, RESP and PostgreSQL
//! addresses, zone, and which nodes a majority cannot reach: `liveness`),
//! its shard count, and a configuration epoch that grows with every
//! change ([`ClusterMap`]).
//!
//! At most [`MAX_VOTERS`] nodes vote in it, spread over the nodes' zones
//! (`--zone`); the others run learners (`raft::GroupSettings::max_voters`).
//! Every node runs a replica and reads the map from it ([`MetaGroup::map`]):
//! a cache that follows the group's log, so it may trail the latest epoch
//! by the replication lag. Nothing trusts it for a write: it names where
//! a shard's leader takes clients (MOVED, CLUSTER NODES), while the
//! shard's own group decides who leads.
//!
//! A node registers itself once its frontends listen
//! ([`MetaGroup::register`]), again after a start that changed its
//! addresses (its own replica's map tells), and is forgotten when removed.
//! Registration checks the shard count: a node started with another
//! `--shards` than the cluster's is refused and stops.

mod liveness;
mod machine;
mod map;
pub mod placement;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use raft::{Bootstrap, Clock, Group, GroupError, GroupId, GroupSettings, NodeId, RaftNode, Zones};
use storage::keyspace::Shard;
use storage::Store;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use liveness::{Suspects, FAILURE_TIMEOUT, PING_INTERVAL};
pub use map::{ClusterMap, MetaCommand, MetaReply, NodeRecord};

use crate::error::{Error, Result};
use machine::MetaMachine;

/// The most nodes that vote in the metadata group; the others follow its
/// log as learners, so the map reaches every node while its writes need
/// at most three acknowledgements.
pub const MAX_VOTERS: usize = 5;

/// Each node's zone as the map names it, for spreading the voters.
fn zones_in(map: watch::Receiver<Arc<ClusterMap>>) -> Zones {
    Zones::new(move |id| map.borrow().nodes.get(&id).and_then(|node| node.zone.clone()))
}

/// How the metadata group runs on this node.
pub struct MetaStart<'a> {
    pub node: &'a RaftNode,
    /// The `meta` service's store.
    pub store: Store,
    pub snapshot_dir: PathBuf,
    pub settings: GroupSettings,
    pub clock: Arc<dyn Clock>,
    pub bootstrap: Bootstrap,
}

/// This node's handle on the metadata group. Cheap to clone.
#[derive(Clone)]
pub struct MetaGroup {
    group: Group,
    map: watch::Receiver<Arc<ClusterMap>>,
    suspects: Suspects,
}

impl MetaGroup {
    /// Starts this node's replica of `meta/0`.
    pub async fn start(start: MetaStart<'_>) -> Result<MetaGroup> {
        let (machine, map) = MetaMachine::open(start.store.clone())?;
        let group = Group::start(
            start.node,
            GroupId { service: "meta", shard: 0 },
            start.store,
            machine,
            start.snapshot_dir,
            GroupSettings { max_voters: Some(MAX_VOTERS), zones: zones_in(map.clone()), ..start.settings },
            start.clock,
            start.bootstrap,
        )
        .await?;
        liveness::serve(start.node);
        Ok(MetaGroup { group, map, suspects: Suspects::default() })
    }

    /// The map as this node's replica last applied it.
    pub fn map(&self) -> Arc<ClusterMap> {
        self.map.borrow().clone()
    }

    /// The group, for status and membership.
    pub fn group(&self) -> &Group {
        &self.group
    }

    /// Proposes `command` and returns the group's answer.
    pub async fn propose(&self, command: &MetaCommand) -> Result<MetaReply> {
        let payload = Bytes::from(postcard::to_stdvec(command).expect("commands always serialize"));
        let reply = self.group.propose(payload).await?;
        postcard::from_bytes(&reply).map_err(|error| Error::Reply(error.to_string()))
    }

    /// Registers `node`, which runs `shards` shards (`initial`: the
    /// cluster's initial members, if `node` is one of them), and sets the
    /// replica count to `replicas` if given, retrying while the group is
    /// unavailable (a joining node waits to be added) until both are
    /// applied or `shutdown`. `Err` carries a refusal: this node cannot
    /// serve in this cluster.
    pub async fn register(
        &self,
        node: NodeRecord,
        shards: Shard,
        initial: Option<BTreeSet<NodeId>>,
        replicas: Option<u32>,
        shutdown: CancellationToken,
    ) -> Result<u64> {
        let known = self.map();
        let mut epoch = known.epoch;
        if known.node(node.id) != Some(&node) || known.shards != shards {
            let command = match initial {
                Some(initial) => MetaCommand::RegisterInitial { node, shards, initial },
                None => MetaCommand::Register { node, shards },
            };
            epoch = self.propose_until_applied(command, &shutdown).await?;
        }
        if let Some(replicas) = replicas.filter(|replicas| *replicas != self.map().replicas()) {
            epoch = self.propose_until_applied(MetaCommand::SetReplicas { replicas }, &shutdown).await?;
        }
        Ok(epoch)
    }

    /// Proposes `command` until it is applied (the new epoch), refused or
    /// `shutdown`.
    async fn propose_until_applied(&self, command: MetaCommand, shutdown: &CancellationToken) -> Result<u64> {
        let mut pause = Duration::from_millis(100);
        loop {
            match self.propose(&command).await {
                Ok(MetaReply::Done { epoch }) => return Ok(epoch),
                Ok(MetaReply::Refused(reason)) => return Err(Error::Config(reason)),
                Err(Error::Group(GroupError::ShuttingDown(group))) => {
                    return Err(Error::Group(GroupError::ShuttingDown(group)))
                }
                Err(error) => tracing::info!(%error, ?command, "proposing to the metadata group; retrying"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Err(Error::Group(GroupError::ShuttingDown("meta/0".into()))),
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    /// Removes node `id` from the map.
    pub async fn forget(&self, id: NodeId) -> Result<u64> {
        match self.propose(&MetaCommand::Forget { id }).await? {
            MetaReply::Done { epoch } => Ok(epoch),
            MetaReply::Refused(reason) => Err(Error::Config(reason)),
        }
    }

    pub async fn shutdown(&self) {
        self.group.shutdown().await;
    }

    /// Resolves with the reason once the group stopped on a fatal error.
    pub async fn fatal(&self) -> String {
        self.group.fatal().await
    }
}
