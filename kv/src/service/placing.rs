//! Moving the shards' replicas to where the metadata group's placement
//! puts them (`crate::meta_group::placement`). Every node runs
//! [`Kv::run_placement`]; on each round, for each shard:
//! - a node the target names that holds no replica starts an empty one
//!   ([`Kv::host`]), which waits for the leader to add it;
//! - the shard's leader takes the next membership step toward the target
//!   (the newer of its map's and another host's, as below)
//!   ([`next_step`]): adding a node (a learner that catches up, then a
//!   voter), removing a member the target leaves out, or handing its
//!   leadership over when it is the one to leave. One step at a time, so
//!   the group never loses a majority of the replicas holding its data;
//! - a node holding a replica the target leaves out erases it
//!   ([`Kv::unhost`]) once the shard's committed configuration no longer
//!   names it. A removed node may never hear of its removal (the leader
//!   stops sending to it), so it asks another host of the shard; a node
//!   the cluster forgot may have a stale map, so the newer of the two
//!   nodes' targets decides. Nothing is erased that a committed
//!   configuration still counts on.

use std::time::Duration;

use futures_util::future::join_all;
use raft::{Group, NodeId};
use storage::keyspace::Shard;

use super::Kv;
use crate::error::Result;
use crate::meta_group::placement::{next_step, Step};
use crate::meta_group::ClusterMap;

/// How often a node looks at the placement.
const ROUND: Duration = Duration::from_millis(500);
/// Every this many rounds, a node asks whether each replica it holds but
/// does not lead is still a member.
const ROUNDS_PER_MEMBERSHIP_CHECK: u64 = 4;

impl Kv {
    /// Moves this node's replicas toward the placement until `shutdown`
    /// resolves (see the module docs).
    pub async fn run_placement(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut interval = tokio::time::interval(ROUND);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for round in 0u64.. {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = interval.tick() => {}
            }
            let check_membership = round % ROUNDS_PER_MEMBERSHIP_CHECK == 0;
            let place = self.place(check_membership);
            tokio::select! {
                _ = &mut shutdown => return,
                _ = place => {}
            }
        }
    }

    /// One round over every shard; the shards' steps run together.
    async fn place(&self, check_membership: bool) {
        let map = self.meta().map();
        if map.placement.is_empty() {
            // Not registered yet, or initial members are still awaited
            // (`ClusterMap::awaiting`): the groups keep their members.
            return;
        }
        let rounds = (0..self.shards()).map(|shard| self.place_shard(&map, shard, check_membership));
        for (shard, outcome) in join_all(rounds).await.into_iter().enumerate() {
            if let Err(error) = outcome {
                tracing::info!(%error, shard, "moving the shard's replicas; will retry");
            }
        }
    }

    async fn place_shard(&self, map: &ClusterMap, shard: Shard, check_membership: bool) -> Result<()> {
        let me = self.inner.hosting.node.id();
        let target = map.placement.get(&shard).map(Vec::as_slice).unwrap_or_default();
        match self.group_of(shard) {
            None if target.contains(&me) => self.host(shard).await,
            // Keeps the shard's view fresh (SESHAT SHARDS, CLUSTER SLOTS).
            None if check_membership => self.members_elsewhere(shard).await.map(|_| ()),
            None => Ok(()),
            Some(group) if group.is_leader() => {
                let target = match check_membership {
                    true => self.newest_target(map, shard).await,
                    false => target.to_vec(),
                };
                self.step_toward(map, &group, &target).await
            }
            Some(_) if check_membership => self.leave_if_removed(map, shard).await,
            Some(_) => Ok(()),
        }
    }

    /// Takes the leader's next step toward `target`.
    async fn step_toward(&self, map: &ClusterMap, group: &Group, target: &[NodeId]) -> Result<()> {
        let me = self.inner.hosting.node.id();
        // A learner catches up inside `add_node`, which promotes it then.
        let Some(step) = next_step(&group.members(), me, target, |_| true) else { return Ok(()) };
        let shard = group.id().shard;
        tracing::info!(shard, ?step, "moving the shard's replicas toward the placement");
        match step {
            Step::AddLearner(id) | Step::Promote(id) => {
                let Some(node) = map.node(id) else { return Ok(()) };
                group.add_node(id, node.raft_addr.clone()).await?;
            }
            Step::Remove(id) => {
                group.remove_node(id).await?;
            }
            Step::HandOver(to) => group.hand_over(Some(to), None).await?,
        }
        Ok(())
    }

    /// The target of `shard` in the newer of this node's map and another
    /// host's: a leader the cluster forgot may have missed the map that
    /// moves its shards away.
    async fn newest_target(&self, map: &ClusterMap, shard: Shard) -> Vec<NodeId> {
        let mine = map.placement.get(&shard).cloned().unwrap_or_default();
        match self.members_elsewhere(shard).await {
            Ok(membership) if membership.epoch > map.epoch => membership.target,
            _ => mine,
        }
    }

    /// Erases this node's replica of `shard` if no committed configuration
    /// names it and the newest target leaves it out.
    async fn leave_if_removed(&self, map: &ClusterMap, shard: Shard) -> Result<()> {
        let me = self.inner.hosting.node.id();
        let membership = self.members_elsewhere(shard).await?;
        let target = match membership.epoch > map.epoch {
            true => membership.target,
            false => map.placement.get(&shard).cloned().unwrap_or_default(),
        };
        let view = &membership.view;
        if view.voters.contains(&me) || view.learners.contains(&me) || target.contains(&me) {
            return Ok(());
        }
        self.unhost(shard).await
    }
}
