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
//!   voters other than the leader become learners, from the zone with the
//!   most voters first, the highest id first;
//! - too few, with learners waiting (a voter was removed): learners become
//!   voters, from the zones with the fewest voters first, the most caught
//!   up first;
//! - as many as the cap, while a learner's zone has no voter and another
//!   zone has several: that learner takes the seat of a voter of the most
//!   crowded zone. Each such swap adds a zone, so swaps end.
//!
//! Zones (`--zone`, known through the service's map) spread the voters so
//! that a zone's loss takes as few as possible; without zones the choice
//! is by id and log alone.
//!
//! A voter that is down stays a voter: only removal (`REMOVE-NODE`) frees
//! its seat, as replacing it behind the operator's back could move the
//! quorum onto nodes that lack the group's latest entries.

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use openraft::ChangeMembers;

use crate::group::{Inner, Member};
use crate::types::NodeId;

/// How often the leader of a capped group checks its voters.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The voters a capped group should have, if not the ones it has: see the
/// module docs. `matched` is each member's log index as the leader knows
/// it; `zone_of` each node's zone.
pub(crate) fn voters_to_be(
    members: &[Member],
    leader: NodeId,
    matched: &[(NodeId, u64)],
    cap: usize,
    zone_of: &dyn Fn(NodeId) -> Option<String>,
) -> Option<BTreeSet<NodeId>> {
    let current: BTreeSet<NodeId> = members.iter().filter(|m| m.voter).map(|m| m.id).collect();
    let target = cap.min(members.len()).max(1);
    let index_of = |id: NodeId| matched.iter().find(|(m, _)| *m == id).map_or(0, |(_, index)| *index);
    let mut learners: Vec<NodeId> = members.iter().filter(|m| !m.voter).map(|m| m.id).collect();
    // The most caught up first; ties by id, for a deterministic choice.
    learners.sort_by_key(|id| (Reverse(index_of(*id)), *id));
    let mut voters = current.clone();
    let sharing = |voters: &BTreeSet<NodeId>, id: NodeId| {
        let zone = zone_of(id);
        voters.iter().filter(|v| zone_of(**v) == zone).count()
    };
    // Too many: from the zone with the most voters, the highest id.
    while voters.len() > target {
        let Some(surplus) =
            voters.iter().copied().filter(|id| *id != leader).max_by_key(|id| (sharing(&voters, *id), *id))
        else {
            break;
        };
        voters.remove(&surplus);
    }
    // Too few: learners of the zones with the fewest voters.
    while voters.len() < target {
        let waiting = learners.iter().copied().filter(|id| !voters.contains(id));
        let Some(best) = waiting.min_by_key(|id| sharing(&voters, *id)) else { break };
        voters.insert(best);
    }
    // At the cap: a learner of a zone no voter is in takes the seat of a
    // voter whose zone another voter shares.
    let newcomer = learners
        .iter()
        .copied()
        .find(|id| !voters.contains(id) && zone_of(*id).is_some() && sharing(&voters, *id) == 0);
    let shared = voters.iter().copied().filter(|id| *id != leader && sharing(&voters, *id) >= 2);
    if let (Some(newcomer), Some(seat)) = (newcomer, shared.max_by_key(|id| (sharing(&voters, *id), *id))) {
        voters.remove(&seat);
        voters.insert(newcomer);
    }
    (voters != current).then_some(voters)
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
        let zone_of = |id| inner.settings.zones.of(id);
        let Some(voters) = voters_to_be(&members, inner.node_id, &matched, cap, &zone_of) else { continue };
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

    const NO_ZONES: fn(NodeId) -> Option<String> = |_| None;

    /// Nodes 1–4 in zone a, 5 and 6 in b, 7 in c.
    fn zone(id: NodeId) -> Option<String> {
        Some(
            match id {
                1..=4 => "a",
                5 | 6 => "b",
                _ => "c",
            }
            .to_string(),
        )
    }

    fn members(voters: &[NodeId], learners: &[NodeId]) -> Vec<Member> {
        let member = |id: &NodeId, voter| Member { id: *id, addr: format!("n{id}"), voter };
        voters.iter().map(|id| member(id, true)).chain(learners.iter().map(|id| member(id, false))).collect()
    }

    #[test]
    fn a_group_at_its_cap_or_below_it_without_learners_stays() {
        assert_eq!(voters_to_be(&members(&[1, 2, 3, 4, 5], &[6, 7]), 1, &[], 5, &NO_ZONES), None);
        assert_eq!(voters_to_be(&members(&[1, 2, 3], &[]), 1, &[], 5, &NO_ZONES), None);
    }

    #[test]
    fn surplus_voters_with_the_highest_ids_become_learners_never_the_leader() {
        let all = members(&[1, 2, 3, 4, 5, 6, 7], &[]);
        assert_eq!(voters_to_be(&all, 2, &[], 5, &NO_ZONES), Some(BTreeSet::from([1, 2, 3, 4, 5])));
        assert_eq!(voters_to_be(&all, 7, &[], 5, &NO_ZONES), Some(BTreeSet::from([1, 2, 3, 4, 7])));
    }

    #[test]
    fn the_most_caught_up_learners_fill_free_seats() {
        let group = members(&[1, 2, 3, 4], &[5, 6, 7]);
        let matched = [(5, 10), (6, 40), (7, 40)];
        assert_eq!(voters_to_be(&group, 1, &matched, 5, &NO_ZONES), Some(BTreeSet::from([1, 2, 3, 4, 6])));
        let group = members(&[1, 2], &[5, 6, 7]);
        assert_eq!(voters_to_be(&group, 1, &matched, 5, &NO_ZONES), Some(BTreeSet::from([1, 2, 5, 6, 7])));
    }

    #[test]
    fn zones_spread_the_voters() {
        // Bootstrap surplus leaves the crowded zone first.
        let all = members(&[1, 2, 3, 4, 5, 6, 7], &[]);
        assert_eq!(voters_to_be(&all, 1, &[], 5, &zone), Some(BTreeSet::from([1, 2, 5, 6, 7])));
        // A free seat goes to an unrepresented zone's most caught-up
        // learner; zone c then takes a seat of crowded zone a.
        let group = members(&[1, 2, 3, 4], &[5, 6, 7]);
        let matched = [(5, 40), (6, 40), (7, 1)];
        assert_eq!(voters_to_be(&group, 1, &matched, 5, &zone), Some(BTreeSet::from([1, 2, 3, 5, 7])));
        // At the cap, a new zone's learner takes a crowded zone's seat,
        // never the leader's; then nothing moves.
        let group = members(&[1, 2, 3, 4, 5], &[7]);
        assert_eq!(voters_to_be(&group, 4, &[], 5, &zone), Some(BTreeSet::from([1, 2, 4, 5, 7])));
        assert_eq!(voters_to_be(&members(&[1, 2, 4, 5, 7], &[3, 6]), 4, &[], 5, &zone), None);
        // A learner without a zone brings none.
        let unknown = |id: NodeId| (id != 7).then(|| "a".to_string());
        assert_eq!(voters_to_be(&group, 4, &[], 5, &unknown), None);
    }
}
