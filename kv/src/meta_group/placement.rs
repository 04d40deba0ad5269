//! Where each shard's replicas belong: the target the metadata group
//! keeps for every shard, recomputed whenever a node joins or leaves.
//!
//! [`plan`] is deterministic (every replica of the map computes the same
//! target) and moves little: it starts from the current target, keeps
//! every member that is still a node, and only then adds, trims and
//! swaps. Its result, for `n` nodes and replication `r`:
//! - every shard has `min(r, n)` distinct members, all of them nodes;
//! - the nodes' replica counts differ by at most one;
//! - a shard's members span as many zones as they can: a free seat goes
//!   to a zone the shard lacks, a surplus member leaves a zone the shard
//!   has twice, and balancing takes a zone out of a shard only when no
//!   other move evens the counts;
//! - a node leaving moves only its own replicas, and a node joining
//!   takes about its share (`shards * r / n`) and no more;
//! - planning a target again changes nothing.
//!
//! Ties are broken by a rotation per shard, so the shards' first choices
//! fall on different nodes.

use std::collections::{BTreeMap, BTreeSet};

use raft::NodeId;
use storage::keyspace::Shard;

use super::NodeRecord;

/// Every shard's target members (sorted ids), by shard.
pub type Placement = BTreeMap<Shard, Vec<NodeId>>;

/// The target placement of `shards` shards with `replicas` replicas each
/// over `nodes`, starting from `current` (see the module docs).
pub fn plan(nodes: &BTreeMap<NodeId, NodeRecord>, shards: Shard, replicas: usize, current: &Placement) -> Placement {
    let ids: Vec<NodeId> = nodes.keys().copied().collect();
    if ids.is_empty() || shards == 0 {
        return Placement::new();
    }
    let wanted = replicas.clamp(1, ids.len());
    let zone = |id: NodeId| nodes.get(&id).and_then(|node| node.zone.as_deref());
    let mut planner = Planner { ids: &ids, zone: &zone, counts: ids.iter().map(|id| (*id, 0)).collect() };
    let mut placement: Placement = (0..shards)
        .map(|shard| {
            let kept: BTreeSet<NodeId> =
                current.get(&shard).into_iter().flatten().copied().filter(|id| nodes.contains_key(id)).collect();
            (shard, kept.into_iter().collect())
        })
        .collect();
    for members in placement.values() {
        for id in members {
            *planner.counts.get_mut(id).expect("kept members are nodes") += 1;
        }
    }
    for (shard, members) in &mut placement {
        while members.len() > wanted {
            planner.trim(members);
        }
        while members.len() < wanted {
            planner.fill(*shard, members);
        }
    }
    planner.balance(&mut placement);
    placement
}

struct Planner<'a, Z: Fn(NodeId) -> Option<&'a str>> {
    /// Every node, ascending.
    ids: &'a [NodeId],
    zone: &'a Z,
    /// Replicas per node in the placement being built.
    counts: BTreeMap<NodeId, usize>,
}

impl<'a, Z: Fn(NodeId) -> Option<&'a str>> Planner<'a, Z> {
    /// How many of `members` other than `except` are in `id`'s zone (0
    /// for a node without one: it crowds no zone).
    fn zone_crowding(&self, members: &[NodeId], id: NodeId, except: Option<NodeId>) -> usize {
        let Some(zone) = (self.zone)(id) else { return 0 };
        members.iter().filter(|m| Some(**m) != except && **m != id && (self.zone)(**m) == Some(zone)).count()
    }

    /// The rank of `id` in `shard`'s rotation of the nodes: the tie-break
    /// that spreads the shards' choices.
    fn rotation(&self, shard: Shard, id: NodeId) -> usize {
        let n = self.ids.len();
        let index = self.ids.iter().position(|known| *known == id).expect("a node");
        (index + n - shard as usize % n) % n
    }

    /// Drops one member: one sharing its zone with another member first,
    /// then the most loaded, then the highest id.
    fn trim(&mut self, members: &mut Vec<NodeId>) {
        let (at, id) = members
            .iter()
            .copied()
            .enumerate()
            .max_by_key(|(_, id)| (self.zone_crowding(members, *id, None) > 0, self.counts[id], *id))
            .expect("trim only a shard with members");
        members.remove(at);
        *self.counts.get_mut(&id).expect("a node") -= 1;
    }

    /// Adds one node to `shard`: one whose zone the shard lacks first,
    /// then the least loaded, then the shard's rotation.
    fn fill(&mut self, shard: Shard, members: &mut Vec<NodeId>) {
        let id = self
            .ids
            .iter()
            .copied()
            .filter(|id| !members.contains(id))
            .min_by_key(|id| (self.zone_crowding(members, *id, None), self.counts[id], self.rotation(shard, *id)))
            .expect("fill only below the node count");
        members.push(id);
        members.sort_unstable();
        *self.counts.get_mut(&id).expect("a node") += 1;
    }

    /// Moves replicas from the most loaded nodes to the least loaded until
    /// counts differ by at most one, keeping the shards' zones if it can.
    fn balance(&mut self, placement: &mut Placement) {
        // Each move narrows the gap between the extremes; this bound only
        // guards against a bug looping forever.
        for _ in 0..placement.len() * self.ids.len() + 1 {
            let by_load = |(id, count): (&NodeId, &usize)| (*count, std::cmp::Reverse(*id));
            let (&most, &high) = self.counts.iter().max_by_key(|entry| by_load(*entry)).expect("nodes");
            let (&least, &low) = self.counts.iter().min_by_key(|entry| by_load(*entry)).expect("nodes");
            if high <= low + 1 {
                return;
            }
            // A shard `most` serves and `least` does not, preferring one
            // where the swap crowds no zone more than before.
            let movable = |members: &&Vec<NodeId>| members.contains(&most) && !members.contains(&least);
            let keeps_zones = |members: &Vec<NodeId>| {
                self.zone_crowding(members, least, Some(most)) <= self.zone_crowding(members, most, None)
            };
            let candidates = || placement.iter().filter(|(_, members)| movable(members));
            let swap = candidates()
                .find(|(_, members)| keeps_zones(members))
                .or_else(|| candidates().next())
                .map(|(shard, _)| *shard);
            let Some(shard) = swap else { return };
            let members = placement.get_mut(&shard).expect("found above");
            members.retain(|id| *id != most);
            members.push(least);
            members.sort_unstable();
            *self.counts.get_mut(&most).expect("a node") -= 1;
            *self.counts.get_mut(&least).expect("a node") += 1;
        }
    }
}

/// The next membership change that brings a shard's group toward its
/// target: one step at a time, so the group never loses a majority of
/// the replicas that hold its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Add a target node as a learner: it receives the shard's data.
    AddLearner(NodeId),
    /// Make a caught-up target learner a voter.
    Promote(NodeId),
    /// Remove a member the target does not name (voter or learner).
    Remove(NodeId),
    /// The leader itself leaves the target: hand leadership to this
    /// target voter first.
    HandOver(NodeId),
}

/// The first step from the group's `members` (as `raft::Member`s, by id
/// and kind) led by `leader` toward `target`: copies first (learners for
/// every target node missing), then votes (caught-up target learners
/// become voters), then removals (learners, then voters; the leader
/// hands over first). `None` once the members are the target's, all
/// voting. `caught_up` says whether a learner holds nearly all the log.
pub fn next_step(
    members: &[raft::Member],
    leader: NodeId,
    target: &[NodeId],
    caught_up: impl Fn(NodeId) -> bool,
) -> Option<Step> {
    let member = |id: NodeId| members.iter().find(|m| m.id == id);
    if let Some(missing) = target.iter().copied().find(|id| member(*id).is_none()) {
        return Some(Step::AddLearner(missing));
    }
    let learners = || members.iter().filter(|m| !m.voter).map(|m| m.id);
    if let Some(ready) = learners().find(|id| target.contains(id) && caught_up(*id)) {
        return Some(Step::Promote(ready));
    }
    if learners().any(|id| target.contains(&id)) {
        // A target learner is still catching up: nothing leaves before it
        // votes.
        return None;
    }
    if let Some(surplus) = learners().find(|id| !target.contains(id)) {
        return Some(Step::Remove(surplus));
    }
    let surplus = members.iter().filter(|m| m.voter && !target.contains(&m.id)).map(|m| m.id);
    let surplus: Vec<NodeId> = surplus.collect();
    match surplus.iter().copied().find(|id| *id != leader) {
        Some(voter) => Some(Step::Remove(voter)),
        None if surplus.contains(&leader) => target.first().copied().map(Step::HandOver),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(zones: &[Option<&str>]) -> BTreeMap<NodeId, NodeRecord> {
        zones
            .iter()
            .enumerate()
            .map(|(i, zone)| {
                let id = i as NodeId + 1;
                let record = NodeRecord {
                    id,
                    name: format!("{id:040x}"),
                    raft_addr: format!("127.0.0.1:{}", 17000 + id),
                    resp_addr: format!("127.0.0.1:{}", 16000 + id),
                    pg_addr: None,
                    zone: zone.map(str::to_string),
                };
                (id, record)
            })
            .collect()
    }

    fn counts(placement: &Placement) -> BTreeMap<NodeId, usize> {
        let mut counts = BTreeMap::new();
        for id in placement.values().flatten() {
            *counts.entry(*id).or_insert(0) += 1;
        }
        counts
    }

    /// The invariants of the module docs for `placement` over `nodes`.
    fn check(nodes: &BTreeMap<NodeId, NodeRecord>, shards: Shard, replicas: usize, placement: &Placement) {
        let wanted = replicas.min(nodes.len());
        assert_eq!(placement.len(), shards as usize);
        for members in placement.values() {
            let distinct: BTreeSet<_> = members.iter().collect();
            assert_eq!((members.len(), distinct.len()), (wanted, wanted), "{placement:?}");
            assert!(members.iter().all(|id| nodes.contains_key(id)), "{placement:?}");
            assert!(members.windows(2).all(|pair| pair[0] < pair[1]), "{placement:?}");
        }
        let counts = counts(placement);
        let (high, low) = (
            nodes.keys().map(|id| counts.get(id).copied().unwrap_or(0)).max().unwrap(),
            nodes.keys().map(|id| counts.get(id).copied().unwrap_or(0)).min().unwrap(),
        );
        assert!(high <= low + 1, "counts {counts:?} in {placement:?}");
        assert_eq!(plan(nodes, shards, replicas, placement), *placement, "planning again changes nothing");
    }

    fn member(id: NodeId, voter: bool) -> raft::Member {
        raft::Member { id, addr: format!("127.0.0.1:{}", 17000 + id), voter }
    }

    /// Applies `step` to `members` as the group would.
    fn take(members: &mut Vec<raft::Member>, leader: &mut NodeId, step: Step) {
        match step {
            Step::AddLearner(id) => members.push(member(id, false)),
            Step::Promote(id) => members.iter_mut().filter(|m| m.id == id).for_each(|m| m.voter = true),
            Step::Remove(id) => members.retain(|m| m.id != id),
            Step::HandOver(id) => *leader = id,
        }
    }

    #[test]
    fn moving_a_shard_copies_first_then_votes_then_removes_the_leader_last() {
        let mut members = vec![member(1, true), member(2, true), member(3, true)];
        let mut leader = 1;
        let target = [3, 4, 5];
        let mut steps = Vec::new();
        while let Some(step) = next_step(&members, leader, &target, |_| true) {
            // Never fewer voters than the target has: no majority is lost.
            take(&mut members, &mut leader, step);
            assert!(members.iter().filter(|m| m.voter).count() >= 3, "{steps:?} {step:?}");
            steps.push(step);
            assert!(steps.len() < 20, "{steps:?}");
        }
        use Step::*;
        assert_eq!(steps, [AddLearner(4), AddLearner(5), Promote(4), Promote(5), Remove(2), HandOver(3), Remove(1)]);
        let mut ids: Vec<_> = members.iter().map(|m| (m.id, m.voter)).collect();
        ids.sort_unstable();
        assert_eq!(ids, [(3, true), (4, true), (5, true)]);
        assert_eq!(leader, 3);
    }

    #[test]
    fn nothing_leaves_while_a_target_learner_catches_up() {
        let members = [member(1, true), member(2, true), member(3, false), member(4, false)];
        assert_eq!(next_step(&members, 1, &[1, 3], |_| false), None);
        assert_eq!(next_step(&members, 1, &[1, 3], |id| id == 3), Some(Step::Promote(3)));
        let converged = [member(1, true), member(3, true)];
        assert_eq!(next_step(&converged, 1, &[1, 3], |_| true), None);
    }

    fn moved(before: &Placement, after: &Placement) -> usize {
        after.iter().map(|(shard, members)| members.iter().filter(|id| !before[shard].contains(id)).count()).sum()
    }

    #[test]
    fn up_to_r_nodes_every_node_holds_every_shard() {
        for count in 1..=3 {
            let nodes = nodes(&vec![None; count]);
            let placement = plan(&nodes, 4, 3, &Placement::new());
            check(&nodes, 4, 3, &placement);
            assert!(placement.values().all(|members| members.len() == count));
        }
    }

    #[test]
    fn replicas_spread_evenly_and_the_shards_first_choices_differ() {
        let nodes = nodes(&[None; 6]);
        let placement = plan(&nodes, 6, 3, &Placement::new());
        check(&nodes, 6, 3, &placement);
        assert!(counts(&placement).values().all(|count| *count == 3), "{placement:?}");
        let firsts: BTreeSet<_> = placement.values().map(|members| members[0]).collect();
        assert!(firsts.len() > 1, "{placement:?}");
    }

    #[test]
    fn a_joining_node_takes_its_share_and_a_leaving_one_moves_only_its_own() {
        let six = nodes(&[None; 6]);
        let before = plan(&six, 12, 3, &Placement::new());
        let seven = nodes(&[None; 7]);
        let grown = plan(&seven, 12, 3, &before);
        check(&seven, 12, 3, &grown);
        // 36 replicas over 7 nodes: the newcomer takes 5 or 6, and only
        // those move.
        let taken = counts(&grown)[&7];
        assert!((5..=6).contains(&taken), "{grown:?}");
        assert_eq!(moved(&before, &grown), taken);

        let mut five = six.clone();
        five.remove(&4);
        let shrunk = plan(&five, 12, 3, &before);
        check(&five, 12, 3, &shrunk);
        for (shard, members) in &before {
            let kept: Vec<_> = members.iter().filter(|id| **id != 4).collect();
            assert!(
                kept.iter().all(|id| shrunk[shard].contains(id)),
                "shard {shard}: {members:?} → {:?}",
                shrunk[shard]
            );
        }
        assert_eq!(moved(&before, &shrunk), counts(&before)[&4]);
    }

    #[test]
    fn shards_span_the_zones() {
        let nodes = nodes(&[Some("a"), Some("a"), Some("b"), Some("b"), Some("c"), Some("c")]);
        let placement = plan(&nodes, 8, 3, &Placement::new());
        check(&nodes, 8, 3, &placement);
        for members in placement.values() {
            let zones: BTreeSet<_> = members.iter().map(|id| nodes[id].zone.clone()).collect();
            assert_eq!(zones.len(), 3, "{placement:?}");
        }
    }

    #[test]
    fn any_sequence_of_joins_and_leaves_keeps_the_invariants() {
        let zones = [Some("a"), Some("b"), None, Some("c")];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        for shards in [1, 3, 7] {
            for replicas in [1, 3, 5] {
                let mut nodes = BTreeMap::new();
                let mut placement = Placement::new();
                let mut next_id = 1;
                for _ in 0..40 {
                    if nodes.len() < 2 || next(3) > 0 {
                        let mut record = self::nodes(&[zones[next(4) as usize]]).remove(&1).unwrap();
                        record.id = next_id;
                        nodes.insert(next_id, record);
                        next_id += 1;
                    } else {
                        let gone = *nodes.keys().nth(next(nodes.len() as u64) as usize).unwrap();
                        nodes.remove(&gone);
                    }
                    let before = placement.clone();
                    placement = plan(&nodes, shards, replicas, &before);
                    check(&nodes, shards, replicas, &placement);
                }
            }
        }
    }
}
