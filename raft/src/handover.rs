//! Leadership handover: the leader hands its role to another voter
//! (Redis's FAILOVER, and later leader balancing).
//!
//! openraft 0.9 has no transfer-leader call, and a follower refuses every
//! vote while its leader lease (`2 × election_timeout` since it last heard
//! from the leader) runs. So the handover makes the leader go quiet on
//! purpose and lets the target be the first to notice:
//!
//! 1. The leader stops taking new work: proposals wait in the submit queue
//!    and read-index rounds wait (both would send entries or heartbeats
//!    that renew the followers' leases), and its idle heartbeats stop.
//! 2. It waits until the target has every entry of its log, so the target
//!    wins on the log check, and no new entry came for a short margin (the
//!    batches in flight are in). In a group of two or three voters the
//!    target and this leader are a majority, and openraft lets a leader
//!    grant a higher term's vote, so that is all. In a larger group the
//!    target needs followers too, which refuse every vote while their
//!    leases run: there the leader also waits one lease (plus the margin)
//!    after the last entry it sent.
//! 3. It asks the target to campaign (`Rpc::Campaign`). The target's vote
//!    request carries a higher term; every voter whose lease has run out
//!    grants it (the old leader included, which steps down). A follower
//!    would only start an election of its own `election_timeout` or more
//!    after its lease ran out, so the target comes first. If the campaign
//!    did not win within an election timeout, the leader asks again.
//! 4. Whatever the outcome, heartbeats resume and the held work continues,
//!    forwarded to whoever leads now.
//!
//! Safety never depends on any of this: it is an ordinary Raft election,
//! and the leader serves no read under its lease while a handover runs
//! (`crate::reads`), as the target may win before that lease would have
//! run out. Only who wins, and how long writes wait, depend on the timing:
//! with three voters about the margin (75 ms with the default timings,
//! ~0.7 s when it also waited out the lease); with more, about one lease
//! (~0.7 s). A leader elected less than one lease ago refuses to vote
//! (openraft's lease on its own vote): the campaign is then asked again
//! after an election timeout. Writes and reads are never refused during a
//! handover; they wait, bounded by their own deadline.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::group::{GroupError, Inner};
use crate::transport::wire::{Reply, Rpc};
use crate::types::NodeId;

/// Why a handover did not happen (or was not in progress).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Serialize, Deserialize)]
pub enum HandoverError {
    #[error("a leadership handover is already in progress")]
    InProgress,
    #[error("no leadership handover is in progress")]
    NotInProgress,
    #[error("the group has no other voter to hand leadership to")]
    NoOtherVoter,
    #[error("node {0} is not a member of the group")]
    NotAMember(NodeId),
    #[error("node {0} is a learner, not a voter: it cannot lead")]
    NotAVoter(NodeId),
    #[error("node {0} already leads the group")]
    AlreadyLeads(NodeId),
    #[error("node {target} did not catch up with the leader's log in time")]
    TargetBehind { target: NodeId },
    #[error("the handover was aborted")]
    Aborted,
    #[error("no other node took leadership in time; this node still leads")]
    TimedOut,
    /// Leadership moved, but not to the node asked for.
    #[error("node {leader} won the election instead of node {target}")]
    OtherWinner { target: NodeId, leader: NodeId },
}

/// The handover in progress on this node, if any. While one is, the
/// leader holds new proposals and read-index rounds.
pub(crate) struct Handovers {
    /// `Some(abort)` while a handover runs.
    current: watch::Sender<Option<CancellationToken>>,
}

impl Handovers {
    pub(crate) fn new() -> Self {
        Handovers { current: watch::Sender::new(None) }
    }

    /// Waits until no handover is in progress, or until `deadline`.
    pub(crate) async fn wait_idle(&self, deadline: Instant) {
        let mut current = self.current.subscribe();
        let _ = tokio::time::timeout_at(deadline, current.wait_for(|current| current.is_none())).await;
    }

    pub(crate) fn in_progress(&self) -> bool {
        self.current.borrow().is_some()
    }

    /// Aborts the handover in progress.
    pub(crate) fn abort(&self) -> Result<(), HandoverError> {
        match &*self.current.borrow() {
            Some(abort) => {
                abort.cancel();
                Ok(())
            }
            None => Err(HandoverError::NotInProgress),
        }
    }

    /// Marks a handover in progress until the returned guard drops.
    fn begin(&self) -> Result<InProgress<'_>, HandoverError> {
        let abort = CancellationToken::new();
        let started = self.current.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(abort.clone());
            true
        });
        if !started {
            return Err(HandoverError::InProgress);
        }
        Ok(InProgress { handovers: self, abort })
    }
}

/// Ends the handover when dropped: held work continues.
struct InProgress<'a> {
    handovers: &'a Handovers,
    abort: CancellationToken,
}

impl Drop for InProgress<'_> {
    fn drop(&mut self) {
        self.handovers.current.send_replace(None);
    }
}

/// Turns idle heartbeats back on when dropped.
struct HeartbeatsOff<'a>(&'a Inner);

impl Drop for HeartbeatsOff<'_> {
    fn drop(&mut self) {
        self.0.raft.runtime_config().heartbeat(true);
    }
}

/// Runs a handover on the leader: to `target`, or to the voter with the
/// most of the log when `None`. Returns the new leader.
pub(crate) async fn run(inner: &Arc<Inner>, target: Option<NodeId>, deadline: Instant) -> Result<NodeId, GroupError> {
    let handover = |error| Err(GroupError::Handover(error));
    if inner.leader_id() != Some(inner.node_id) {
        return Err(GroupError::NotLeader { leader: inner.leader_id() });
    }
    let target = match choose_target(inner, target) {
        Ok(target) => target,
        Err(error) => return handover(error),
    };
    let in_progress = match inner.handovers.begin() {
        Ok(in_progress) => in_progress,
        Err(error) => return handover(error),
    };
    tracing::info!(group = %inner.name, target, "leadership handover started");
    inner.raft.runtime_config().heartbeat(false);
    let _heartbeats_off = HeartbeatsOff(inner);
    let outcome = tokio::select! {
        _ = in_progress.abort.cancelled() => handover(HandoverError::Aborted),
        _ = tokio::time::sleep_until(deadline) => match caught_up(inner, target) {
            true => handover(HandoverError::TimedOut),
            false => handover(HandoverError::TargetBehind { target }),
        },
        outcome = hand_over(inner, target) => outcome,
    };
    match &outcome {
        Ok(leader) => tracing::info!(group = %inner.name, leader, "leadership handed over"),
        Err(error) => tracing::warn!(group = %inner.name, %error, "leadership handover failed"),
    }
    outcome
}

fn choose_target(inner: &Inner, target: Option<NodeId>) -> Result<NodeId, HandoverError> {
    let metrics = inner.raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership();
    if let Some(target) = target {
        if membership.get_node(&target).is_none() {
            return Err(HandoverError::NotAMember(target));
        }
        if target == inner.node_id {
            return Err(HandoverError::AlreadyLeads(target));
        }
        if !membership.voter_ids().any(|id| id == target) {
            return Err(HandoverError::NotAVoter(target));
        }
        return Ok(target);
    }
    let matched = |id: &NodeId| {
        metrics.replication.as_ref().and_then(|r| r.get(id).copied().flatten()).map_or(0, |log_id| log_id.index)
    };
    membership
        .voter_ids()
        .filter(|id| *id != inner.node_id)
        .max_by_key(|id| (matched(id), std::cmp::Reverse(*id)))
        .ok_or(HandoverError::NoOtherVoter)
}

/// Steps 2 and 3: waits for the target (and, in a group of more than
/// three voters, the leases), then has the target campaign until someone
/// else leads.
async fn hand_over(inner: &Arc<Inner>, target: NodeId) -> Result<NodeId, GroupError> {
    let margin = inner.settings.election_timeout / 4;
    let mut metrics = inner.raft.metrics();
    let voters = metrics.borrow().membership_config.membership().voter_ids().count();
    // The target and this leader: a majority of at most three voters.
    let lease = if 2 * 2 > voters { Duration::ZERO } else { inner.settings.leader_lease() };
    // The leader sends nothing once the target holds its whole log and no
    // new entry arrives: new work is held, in-flight batches finish.
    let mut quiet_since = Instant::now();
    let mut last_index = None;
    loop {
        let index = metrics.borrow_and_update().last_log_index;
        let caught_up = caught_up(inner, target);
        if last_index != Some(index) {
            last_index = Some(index);
            quiet_since = Instant::now();
        }
        if caught_up && Instant::now() >= quiet_since + lease + margin {
            break;
        }
        let wake =
            if caught_up { quiet_since + lease + margin } else { Instant::now() + inner.settings.leader_lease() };
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() {
                return Err(GroupError::ShuttingDown(inner.name.to_string()));
            },
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
    let addr = inner.member_addr(target).ok_or(GroupError::Handover(HandoverError::NotAMember(target)))?;
    loop {
        match inner.node.peers().call(&addr, &inner.name, Rpc::Campaign, inner.settings.election_timeout).await {
            Ok(Reply::Campaign(result)) => result?,
            Ok(_) => return Err(inner.unavailable(format!("node {target} does not run the group"))),
            Err(error) => tracing::info!(group = %inner.name, target, %error, "campaign request failed; retrying"),
        }
        let settled = tokio::time::timeout(inner.settings.election_timeout, async {
            metrics
                .wait_for(|m| m.current_leader.is_some_and(|leader| leader != inner.node_id))
                .await
                .map(|m| m.current_leader.expect("checked by wait_for"))
        })
        .await;
        match settled {
            Ok(Ok(leader)) if leader == target => return Ok(leader),
            Ok(Ok(leader)) => return Err(GroupError::Handover(HandoverError::OtherWinner { target, leader })),
            Ok(Err(_)) => return Err(GroupError::ShuttingDown(inner.name.to_string())),
            Err(_) => {}
        }
    }
}

/// Whether `target` holds every entry of this leader's log.
fn caught_up(inner: &Inner, target: NodeId) -> bool {
    let metrics = inner.raft.metrics();
    let metrics = metrics.borrow();
    let matched = metrics.replication.as_ref().and_then(|r| r.get(&target).copied().flatten());
    matched.map(|id| id.index) >= metrics.last_log_index
}

/// A campaign asked of this node by the leader handing over: starts an
/// election now rather than after its own timeout.
pub(crate) async fn campaign(inner: &Inner) -> Result<(), GroupError> {
    inner
        .raft
        .trigger()
        .elect()
        .await
        .map_err(|fatal| GroupError::Fatal { group: inner.name.to_string(), reason: fatal.to_string() })
}
