//! Groups that cap their voters: the metadata group votes on at most five
//! nodes however many the cluster has, and every other member follows its
//! log as a learner (a read-only replica that counts toward no quorum).
//!
//! The rule is one target, held by the leader: `min(cap, members)` voters.
//! Bootstrap makes every initial member a voter and a joining node starts
//! as a learner ([`crate::group`]'s `AddNode` promotes it only while there
//! is room); every second, the leader of a capped group compares the voters
//! with the target and makes one membership change toward it
//! ([`voters_to_be`]):
//! - too many voters (a bootstrap with more initial members than the cap):
//!   the highest ids other than the leader become learners;
//! - too few, with learners waiting (a voter was removed): the learners
//!   with the most of the log become voters.
//!
//! A voter that is down stays a voter: only removal (`REMOVE-NODE`) frees
//! its seat, as replacing it behind the operator's back could move the
//! quorum onto nodes that lack the group's latest entries.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use openraft::ChangeMembers;

use crate::group::{Inner, Member};
use crate::types::NodeId;

/// How often the leader of a capped group checks its voters.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The voters a capped group should have, if not the ones it has: see the
/// module docs. `matched` is each member's log index as the leader knows it.
pub(crate) fn voters_to_be(
    members: &[Member],
    leader: NodeId,
    matched: &[(NodeId, u64)],
    cap: usize,
) -> Option<BTreeSet<NodeId>> {
    let mut voters: BTreeSet<NodeId> = members.iter().filter(|m| m.voter).map(|m| m.id).collect();
    let target = cap.min(members.len()).max(1);
    if voters.len() == target {
        return None;
    }
    if voters.len() > target {
        let surplus: Vec<NodeId> =
            voters.iter().rev().copied().filter(|id| *id != leader).take(voters.len() - target).collect();
        for id in surplus {
            voters.remove(&id);
        }
    } else {
        let index_of = |id: NodeId| matched.iter().find(|(m, _)| *m == id).map_or(0, |(_, index)| *index);
        let mut learners: Vec<NodeId> = members.iter().filter(|m| !m.voter).map(|m| m.id).collect();
        // The most caught up first; ties by id, for a deterministic choice.
        learners.sort_by_key(|id| (std::cmp::Reverse(index_of(*id)), *id));
        voters.extend(learners.into_iter().take(target - voters.len()));
    }
    Some(voters)
}

/// Keeps the group's voters at its cap while this node leads it, until
/// the group stops.
pub(crate) async fn run(inner: Arc<Inner>, cap: usize) {
    loop {
        tokio::select! {
            _ = inner.stopped.cancelled() => return,
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
        let (members, matched) = {
            let metrics = inner.raft.metrics().borrow().clone();
            let Some(replication) = metrics.replication.filter(|_| metrics.current_leader == Some(inner.node_id))
            else {
                continue;
            };
            let matched: Vec<(NodeId, u64)> =
                replication.iter().map(|(id, log)| (*id, log.map_or(0, |log| log.index))).collect();
            (crate::group::members_of(&metrics.membership_config), matched)
        };
        let Some(voters) = voters_to_be(&members, inner.node_id, &matched, cap) else { continue };
        tracing::info!(group = %inner.name, ?voters, cap, "moving the group's voters toward its cap");
        // Demoted voters stay as learners; a change in flight is retried
        // at the next check.
        if let Err(error) = inner.raft.change_membership(ChangeMembers::ReplaceAllVoters(voters), true).await {
            tracing::info!(group = %inner.name, %error, "voter change not made; retrying");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(voters: &[NodeId], learners: &[NodeId]) -> Vec<Member> {
        let member = |id: &NodeId, voter| Member { id: *id, addr: format!("n{id}"), voter };
        voters.iter().map(|id| member(id, true)).chain(learners.iter().map(|id| member(id, false))).collect()
    }

    #[test]
    fn a_group_at_its_cap_or_below_it_without_learners_stays() {
        assert_eq!(voters_to_be(&members(&[1, 2, 3, 4, 5], &[6, 7]), 1, &[], 5), None);
        assert_eq!(voters_to_be(&members(&[1, 2, 3], &[]), 1, &[], 5), None);
    }

    #[test]
    fn surplus_voters_with_the_highest_ids_become_learners_never_the_leader() {
        let all = members(&[1, 2, 3, 4, 5, 6, 7], &[]);
        assert_eq!(voters_to_be(&all, 2, &[], 5), Some(BTreeSet::from([1, 2, 3, 4, 5])));
        assert_eq!(voters_to_be(&all, 7, &[], 5), Some(BTreeSet::from([1, 2, 3, 4, 7])));
    }

    #[test]
    fn the_most_caught_up_learners_fill_free_seats() {
        let group = members(&[1, 2, 3, 4], &[5, 6, 7]);
        let matched = [(5, 10), (6, 40), (7, 40)];
        assert_eq!(voters_to_be(&group, 1, &matched, 5), Some(BTreeSet::from([1, 2, 3, 4, 6])));
        let group = members(&[1, 2], &[5, 6, 7]);
        assert_eq!(voters_to_be(&group, 1, &matched, 5), Some(BTreeSet::from([1, 2, 5, 6, 7])));
    }
}
