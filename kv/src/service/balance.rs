//! Leader balancing: spreading the shards' leaders over the nodes, so that
//! every node takes its share of the writes (a shard's writes all go
//! through its leader).
//!
//! Every node runs the same rule for the shards it leads, from its own
//! view of every group (each node holds a replica of every shard): when it
//! leads at least two shards more than the voter leading the fewest, it
//! hands one shard to that voter ([`Group::hand_over`]), choosing a shard
//! in which that voter (nearly) holds the leader's whole log, so the
//! handover does not wait long for it to catch up (writes to the shard
//! wait during a handover, ~0.1 s with three voters). Each handover moves
//! the cluster closer to leaders counts that differ by at most one, and
//! nothing moves once they do. Nothing moves either while a shard has no
//! leader: an election is under way, and the counts would be wrong. A
//! voter whose Raft link from this node is down (a killed node), or that
//! has not answered this node's pings for the failure timeout (a paused
//! one, `crate::meta_group::liveness`), is no target: it leads nothing,
//! so it would always look the least loaded, and a handover to it would
//! hold the shard's writes until it timed out.

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
        let groups = self.groups();
        let statuses: Vec<_> = groups.iter().map(|group| group.status()).collect();
        let mut led: BTreeMap<NodeId, usize> = BTreeMap::new();
        for status in &statuses {
            let leader = status.leader.as_ref()?;
            let reachable = status.members.iter().filter(|member| {
                let down = node.link_down(&member.addr) || self.inner.meta.suspects().contains(member.id);
                member.voter && !down
            });
            for member in reachable {
                led.entry(member.id).or_insert(0);
            }
            *led.entry(leader.id).or_insert(0) += 1;
        }
        let mine = *led.get(&me)?;
        let (&target, &fewest) = led.iter().filter(|(id, _)| **id != me).min_by_key(|(_, count)| **count)?;
        if mine < fewest + 2 {
            return None;
        }
        statuses.iter().enumerate().find_map(|(index, status)| {
            let caught_up = status
                .replication
                .iter()
                .any(|(id, matched)| *id == target && *matched + CAUGHT_UP_SLACK >= status.last_log_index);
            let votes = status.members.iter().any(|member| member.id == target && member.voter);
            (status.role == Role::Leader && votes && caught_up)
                .then(|| (status.id.shard as usize, groups[index].clone(), target))
        })
    }
}
