//! Timing and log-compaction settings of a group.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use openraft::{Config, SnapshotPolicy};

use crate::types::NodeId;

/// How a group times its heartbeats, elections and requests, and when it
/// compacts its log.
#[derive(Debug, Clone)]
pub struct GroupSettings {
    /// The leader's heartbeat interval.
    pub heartbeat: Duration,
    /// Each node draws a random timeout `t` in `[election_timeout, 2 ×
    /// election_timeout)` at start. A follower that heard from a leader
    /// starts an election after `2 × election_timeout + t` without hearing
    /// from it again (openraft first lets the leader's lease expire); one
    /// that never did, after `t`.
    pub election_timeout: Duration,
    /// A write or linearizable read that no leader with a quorum completes
    /// within this time fails with `Unavailable`.
    pub request_timeout: Duration,
    /// The longest a membership change (including a new node catching up)
    /// may take.
    pub membership_timeout: Duration,
    /// Build a snapshot (and purge the log) after this many entries...
    pub snapshot_entries: u64,
    /// ... or after this many bytes of log were appended since the last
    /// one; either way only once the log since the last snapshot is at
    /// least half that snapshot's size (see [`crate::snapshot_trigger`]).
    pub snapshot_bytes: u64,
    /// Entries kept in the log behind a snapshot, so that a briefly lagging
    /// follower catches up from the log rather than by snapshot.
    pub log_keep_entries: u64,
    /// The longest a batch of writes waits for more to join it when the
    /// previous batch was larger; it never waits longer than the previous
    /// batch took to commit (group commit delay, see [`crate::submit`]).
    /// Zero submits every batch as soon as it is taken.
    pub commit_linger: Duration,
    /// At most this many voters, the other members following as learners
    /// (see [`crate::voter_cap`]); `None`: every member votes.
    pub max_voters: Option<usize>,
    /// Where each node runs, for spreading capped voters over zones.
    pub zones: Zones,
    /// The service places this group's replicas itself (the kv shards,
    /// over a subset of the nodes): the node-level membership operations
    /// ([`crate::RaftNode::add_node`], `remove_node`, `join`) leave it out.
    pub placed: bool,
}

/// Each node's failure zone, as the service knows it (the metadata
/// group's map); `None` for a node that names none. Cheap to clone.
#[derive(Clone, Default)]
pub struct Zones(Option<Arc<dyn Fn(NodeId) -> Option<String> + Send + Sync>>);

impl Zones {
    /// Zones as `zone_of` tells them.
    pub fn new(zone_of: impl Fn(NodeId) -> Option<String> + Send + Sync + 'static) -> Zones {
        Zones(Some(Arc::new(zone_of)))
    }

    /// Node `id`'s zone, if known.
    pub(crate) fn of(&self, id: NodeId) -> Option<String> {
        self.0.as_ref().and_then(|zone_of| zone_of(id))
    }
}

impl fmt::Debug for Zones {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "Zones(known)" } else { "Zones(none)" })
    }
}

impl Default for GroupSettings {
    fn default() -> Self {
        GroupSettings {
            heartbeat: Duration::from_millis(100),
            election_timeout: Duration::from_millis(300),
            request_timeout: Duration::from_millis(5000),
            membership_timeout: Duration::from_secs(30),
            snapshot_entries: 100_000,
            snapshot_bytes: 64 * 1024 * 1024,
            log_keep_entries: 1000,
            commit_linger: Duration::from_millis(2),
            max_voters: None,
            zones: Zones::default(),
            placed: false,
        }
    }
}

impl GroupSettings {
    /// How long a follower refuses to vote for anyone else after hearing
    /// from its leader: openraft's lease is its longest election timeout.
    pub(crate) fn leader_lease(&self) -> Duration {
        self.election_timeout * 2
    }

    pub(crate) fn openraft_config(&self) -> Result<Config, openraft::ConfigError> {
        let election_ms = self.election_timeout.as_millis() as u64;
        Config {
            cluster_name: "seshat".into(),
            heartbeat_interval: self.heartbeat.as_millis() as u64,
            election_timeout_min: election_ms,
            election_timeout_max: self.leader_lease().as_millis() as u64,
            install_snapshot_timeout: 10_000,
            // Snapshots are triggered by `snapshot_trigger`.
            snapshot_policy: SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: self.log_keep_entries,
            snapshot_max_chunk_size: 1024 * 1024,
            max_payload_entries: 1024,
            ..Default::default()
        }
        .validate()
    }
}
