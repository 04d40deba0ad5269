//! How many shards divide the Redis keyspace: a fact of the data dir,
//! recorded at its first start, the same on every node of a cluster.
//!
//! Initial members take it from `--shards` (default: one per initial
//! member); a joining node asks the member it joins through, over the
//! node transport (the `kv-shards` node service), before it starts its
//! groups, so that it runs the same groups as its peers. The metadata
//! group then refuses a node registering another count
//! ([`crate::meta_group::ClusterMap::apply`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use raft::{answer_now, NodeService, RaftNode, ServiceAnswer};
use storage::keyspace::{raft_meta, Shard};
use storage::{Family, Reader, Store};

use super::{corrupt_fact, recorded as recorded_fact};
use crate::error::{Error, Result};

/// The node service peers ask for the shard count.
const SERVICE: &str = "kv-shards";

/// The number of shards of the service in `store`: the recorded one, which
/// `requested` must match, or (in a new data dir) `requested` or
/// `default`.
pub(super) fn recorded(store: &Store, requested: Option<Shard>, default: Shard) -> Result<Shard> {
    let bytes = recorded_fact(store, raft_meta::SHARDS, || requested.unwrap_or(default).to_be_bytes().to_vec())?;
    let recorded = decode(&bytes)?;
    match requested {
        Some(requested) if requested != recorded => Err(Error::Config(format!(
            "the data dir holds {recorded} shard(s) of the Redis keyspace, not {requested}: \
             start it with --shards {recorded} (changing it needs moving slots, not built yet)"
        ))),
        _ => Ok(recorded),
    }
}

/// The shard count recorded in `store`'s data dir, if any.
pub fn recorded_shards(store: &Store) -> Result<Option<Shard>> {
    match store.get(Family::KvRaftMeta, raft_meta::SHARDS)? {
        None => Ok(None),
        Some(bytes) => decode(&bytes).map(Some),
    }
}

fn decode(bytes: &[u8]) -> Result<Shard> {
    Ok(u32::from_be_bytes(bytes.try_into().map_err(|_| corrupt_fact("the shard count is not 4 bytes"))?))
}

/// Answers peers asking for this node's shard count.
pub(super) fn serve(node: &RaftNode, shards: Shard) {
    node.register_service(SERVICE, Arc::new(ShardCount(shards)));
}

struct ShardCount(Shard);

impl NodeService for ShardCount {
    fn handle(&self, _message: Bytes) -> ServiceAnswer {
        answer_now(Bytes::copy_from_slice(&self.0.to_be_bytes()))
    }
}

/// The shard count of the cluster whose member's Raft transport is at
/// `member`, asked until it answers or `patience` runs out (a cluster
/// starting together may not listen yet).
pub async fn cluster_shards(node: &RaftNode, member: &str, patience: Duration) -> Result<Shard> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let error = match node.call_service(member, SERVICE, Bytes::new(), Duration::from_secs(2)).await {
            Ok(answer) => {
                let bytes: [u8; 4] = answer.as_ref().try_into().map_err(|_| {
                    Error::Config(format!("{member} answered the shard count with {} bytes", answer.len()))
                })?;
                return Ok(Shard::from_be_bytes(bytes));
            }
            Err(error) => error,
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Config(format!("cannot learn the cluster's shard count from {member}: {error}")));
        }
        tracing::info!(%error, member, "asking the member for the cluster's shard count; retrying");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
