//! Leader leases: linearizable reads on the leader without a heartbeat
//! round per read.
//!
//! openraft's followers refuse every vote request for
//! `GroupSettings::leader_lease` after they accept an append-entries from
//! their leader (a heartbeat included), and do not campaign themselves
//! before it has run out. So once a majority of the voters OTHER than the
//! leader accepted an append-entries that the leader sent at `t`, no other
//! node can collect a majority of votes before `t + leader_lease` on their
//! clocks, and until then every write acknowledged anywhere is in the
//! leader's log. The leader itself is not counted: openraft lets a leader
//! grant a higher term's vote.
//!
//! A read then needs no round at all: this node waits until it has applied
//! its last log index (which covers its own term's first entry, so every
//! write of earlier leaders) and reads locally. The read lease is
//! [`READ_LEASE_FRACTION`] of the followers' lease, which leaves room for
//! clocks that run at slightly different rates; time is the monotonic
//! clock, which a paused process or a skewed wall clock does not fool.
//!
//! A node that restarts forgets whose append-entries it accepted, so it
//! holds vote requests for one follower lease after its group starts
//! (`Group::dispatch`), and its own first campaign comes no earlier than
//! `election_timeout` after it starts, which is longer than the read lease.
//!
//! Measured on the 2-core machine, 3 nodes with clients on every node:
//! `redis-benchmark -t get -r 100000 -c 17` per node ~58k -> ~85-98k
//! req/s in total; `make bench-sql` point select 35% -> 79% of
//! PostgreSQL's tps.
//!
//! No lease is claimed while the membership is joint (two majorities would
//! have to be bound), nor by a group whose only voter is this node: there
//! no other node can lead without a membership change, which goes through
//! this node's log, so its last log index is always a valid read index.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use openraft::{RaftMetrics, ServerState, Vote};
use tokio::time::Instant;

use crate::types::{Node, NodeId};

/// The share of the followers' vote-refusal period that the leader relies
/// on. That period is twice the election timeout (`GroupSettings`), so the
/// read lease is shorter than the earliest campaign of a restarted node.
pub(crate) const READ_LEASE_FRACTION: f64 = 0.4;

/// When each follower last accepted an append-entries, per leader vote.
pub(crate) struct Leases {
    /// How long after sending an accepted append-entries the leader may
    /// read on its own.
    read_lease: Duration,
    accepted: Mutex<HashMap<NodeId, (Vote<NodeId>, Instant)>>,
}

impl Leases {
    pub(crate) fn new(followers_lease: Duration) -> Leases {
        Leases { read_lease: followers_lease.mul_f64(READ_LEASE_FRACTION), accepted: Mutex::default() }
    }

    /// `follower` accepted an append-entries of `vote` sent at `sent`.
    pub(crate) fn accepted(&self, follower: NodeId, vote: Vote<NodeId>, sent: Instant) {
        let mut accepted = self.accepted.lock().expect("leases lock");
        let newer = accepted.get(&follower).is_none_or(|(known, at)| *known != vote || *at < sent);
        if newer {
            accepted.insert(follower, (vote, sent));
        }
    }

    /// The log index a read on this node may be served at now, without a
    /// round, if `metrics` show it leading under a lease.
    pub(crate) fn read_index(&self, metrics: &RaftMetrics<NodeId, Node>, now: Instant) -> Option<u64> {
        if metrics.state != ServerState::Leader || !metrics.vote.is_committed() {
            return None;
        }
        let membership = metrics.membership_config.membership();
        let [voters] = membership.get_joint_config().as_slice() else { return None };
        let last_log_index = metrics.last_log_index.unwrap_or(0);
        if voters.iter().all(|voter| *voter == metrics.id) {
            return Some(last_log_index);
        }
        let majority = voters.len() / 2 + 1;
        let accepted = self.accepted.lock().expect("leases lock");
        let bound = voters
            .iter()
            .filter(|voter| **voter != metrics.id)
            .filter_map(|voter| accepted.get(voter))
            .filter(|(vote, sent)| *vote == metrics.vote && now < *sent + self.read_lease)
            .count();
        (bound >= majority).then_some(last_log_index)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;
    use std::time::Duration;

    use openraft::{Membership, RaftMetrics, ServerState, StoredMembership, Vote};
    use tokio::time::Instant;

    use super::Leases;
    use crate::types::{Node, NodeId};

    const LEASE: Duration = Duration::from_millis(600);

    /// Node 1 leading term 2 over `configs`, with log index 10.
    fn leading(configs: Vec<Vec<NodeId>>) -> RaftMetrics<NodeId, Node> {
        let mut metrics = RaftMetrics::new_initial(1);
        metrics.state = ServerState::Leader;
        metrics.vote = Vote::new_committed(2, 1);
        metrics.last_log_index = Some(10);
        let configs: Vec<BTreeSet<NodeId>> = configs.into_iter().map(|c| c.into_iter().collect()).collect();
        let nodes: BTreeSet<NodeId> = configs.iter().flatten().copied().collect();
        metrics.membership_config = Arc::new(StoredMembership::new(None, Membership::new(configs, nodes)));
        metrics
    }

    #[test]
    fn a_majority_of_the_other_voters_binds_the_lease_for_a_share_of_theirs() {
        let (leases, metrics, t) = (Leases::new(LEASE), leading(vec![vec![1, 2, 3]]), Instant::now());
        assert_eq!(leases.read_index(&metrics, t), None, "nobody accepted anything yet");
        leases.accepted(2, Vote::new_committed(2, 1), t);
        assert_eq!(leases.read_index(&metrics, t), None, "the leader itself does not count");
        leases.accepted(3, Vote::new_committed(2, 1), t);
        assert_eq!(leases.read_index(&metrics, t + Duration::from_millis(239)), Some(10));
        assert_eq!(leases.read_index(&metrics, t + Duration::from_millis(240)), None, "expired");
        leases.accepted(3, Vote::new_committed(2, 1), t - Duration::from_millis(50));
        assert_eq!(leases.read_index(&metrics, t + Duration::from_millis(239)), Some(10), "older news is ignored");
    }

    #[test]
    fn no_lease_from_another_term_a_joint_membership_or_a_follower() {
        let (leases, t) = (Leases::new(LEASE), Instant::now());
        for follower in [2, 3] {
            leases.accepted(follower, Vote::new_committed(1, 1), t);
        }
        assert_eq!(leases.read_index(&leading(vec![vec![1, 2, 3]]), t), None, "accepted under an older term");
        for follower in [2, 3] {
            leases.accepted(follower, Vote::new_committed(2, 1), t);
        }
        assert_eq!(leases.read_index(&leading(vec![vec![1, 2, 3]]), t), Some(10));
        assert_eq!(leases.read_index(&leading(vec![vec![1, 2, 3], vec![1, 2, 3, 4]]), t), None, "joint");
        let mut following = leading(vec![vec![1, 2, 3]]);
        following.state = ServerState::Follower;
        assert_eq!(leases.read_index(&following, t), None);
    }

    #[test]
    fn a_sole_voter_always_leads_under_lease() {
        assert_eq!(Leases::new(LEASE).read_index(&leading(vec![vec![1]]), Instant::now()), Some(10));
    }
}
