//! Leader balancing: spreading the shards' leaders over the nodes, so that
//! every node takes its share of the writes (a shard's writes all go
//! through its leader).
//!
//! Every node runs the same rule for the shards it leads. It counts every
//! shard's leader: the shards it holds a replica of from its own groups,
//! the others as their hosts last described them (`Kv::shard_view`,
//! refreshed by the placement driver). When it leads at least two shards
//! more than a voter of one of those shards, it hands that shard to the
//! voter leading the fewest ([`Group::hand_over`]), if that voter (nearly)
//! holds the leader's whole log, so the handover does not wait long for it
//! to catch up (writes to the shard wait during a handover, ~0.1 s with
//! three voters). Each handover lowers the sum of the squared counts (a
//! described view may lag by a placement round; the next rounds correct
//! a move made on it), so handovers stop; once they have, no leader leads two shards more than
//! any voter of a shard it leads. With a replica of every shard on every
//! node that means counts that differ by at most one; with `--replicas`
//! below the node count, a node can only hand a shard to that shard's
//! voters, so a node hosting none of a busy node's shards may lead one
//! fewer than that bound would give it.
//!
//! Counting only the shards a node hosts (as this did when every node
//! hosted every shard) would undercount the voters' leaderships: two nodes
//! could hand one shard back and forth, each seeing the other lead none.
//!
//! Nothing moves while a shard has no known leader: an election is under
//! way, and the counts would be wrong. A voter whose Raft link from this
//! node is down (a killed node), or that has not answered this node's
//! pings for the failure timeout (a paused one,
//! `crate::meta_group::liveness`), is no target: it leads nothing, so it
//! would always look the least loaded, and a handover to it would hold the
//! shard's writes until it timed out.

use std::collections::BTreeMap;
use std::time::Duration;

use raft::{Group, NodeId, RaftNode, Role};

use super::Kv;

/// How often a node compares the leaders' counts.
const INTERVAL: Duration = Duration::from_secs(2);

/// How many entries a target may trail the leader's log by and still be
/// chosen: under load a healthy follower trails by the entries in flight,
/// and the handover lets it catch up before it campaigns.
const CAUGHT_UP_SLACK: u64 = 8;

/// The longest a handover may hold the shard's writes.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(2);

impl Kv {
    /// Balances the shards' leaders until `shutdown` resolves.
    pub async fn run_leader_balancer(&self, node: RaftNode, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let me = node.id();
        // Nodes compare at different moments, so two of them rarely hand
        // shards to the same voter at once.
        let offset = Duration::from_millis(97 * (me % 10));
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + INTERVAL + offset, INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = interval.tick() => {}
            }
            let Some((shard, group, target)) = self.unbalanced(&node) else { continue };
            tracing::info!(shard, target, "handing a shard's leadership over to balance the leaders");
            if let Err(error) = group.hand_over(Some(target), Some(HANDOVER_TIMEOUT)).await {
                tracing::info!(shard, target, %error, "leader balancing handover did not complete");
            }
        }
    }

    /// A shard `node` leads, with the voter to hand it to, when `node`
    /// leads two or more shards more than that voter.
    fn unbalanced(&self, node: &RaftNode) -> Option<(usize, Group, NodeId)> {
        let me = node.id();
        let mut led: BTreeMap<NodeId, usize> = BTreeMap::new();
        for shard in 0..self.shards() {
            *led.entry(self.shard_view(shard)?.leader?).or_insert(0) += 1;
        }
        let mine = *led.get(&me)?;
        let groups = self.groups();
        let mut best: Option<(usize, usize, NodeId)> = None;
        for (index, status) in groups.iter().map(Group::status).enumerate() {
            if status.role != Role::Leader {
                continue;
            }
            for member in &status.members {
                let down = node.link_down(&member.addr) || self.inner.meta.suspects().contains(member.id);
                let caught_up = status
                    .replication
                    .iter()
                    .any(|(id, matched)| *id == member.id && *matched + CAUGHT_UP_SLACK >= status.last_log_index);
                if member.id == me || !member.voter || down || !caught_up {
                    continue;
                }
                let leads = led.get(&member.id).copied().unwrap_or(0);
                if mine >= leads + 2 && best.is_none_or(|(fewest, _, _)| leads < fewest) {
                    best = Some((leads, index, member.id));
                }
            }
        }
        let (_, index, target) = best?;
        let group = groups[index].clone();
        Some((group.id().shard as usize, group, target))
    }
}
