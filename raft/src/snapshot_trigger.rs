//! Decides when a group builds a snapshot, after which openraft purges the
//! log behind it (keeping `log_keep_entries`). openraft's own policy is
//! off; this task checks every [`CHECK_INTERVAL`].
//!
//! A snapshot is due once the log since the last one holds
//! `snapshot_entries` entries or `snapshot_bytes` bytes, and is built only
//! when that log is also at least half the size of the last snapshot
//! file. Building one copies the whole state, so without the second rule
//! a large state was copied again every `snapshot_bytes` of writes:
//! loading 10M keys of 100 bytes into one node, the node was building
//! snapshots back to back (each a growing copy of the whole state, 565 MB
//! by 3.5M keys), which competed with the load for the disk and both
//! cores. With it, the bytes written into snapshots are at most twice the
//! bytes written into the log, and the log holds at most about half the
//! state beyond the thresholds. (CockroachDB truncates a range's log on a
//! similar rule: once the log outgrows the range.)
//!
//! The log's bytes are counted from this process's start: after a restart
//! the first snapshot waits for its share again, never less.

use std::sync::Arc;
use std::time::Duration;

use crate::group::Inner;
use crate::snapshot::SnapshotDir;

const CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// The log since the last snapshot must reach this share of that
/// snapshot's size (as 1/N) before the next one is built.
const STATE_SHARE_DIVISOR: u64 = 2;

pub(crate) async fn run(inner: Arc<Inner>, snapshots: SnapshotDir) {
    let mut grown = 0u64;
    let mut last_snapshot = None;
    loop {
        tokio::select! {
            _ = inner.stopped.cancelled() => return,
            _ = tokio::time::sleep(CHECK_INTERVAL) => {}
        }
        let metrics = inner.raft.metrics().borrow().clone();
        if metrics.running_state.is_err() || metrics.state == openraft::ServerState::Shutdown {
            return;
        }
        if metrics.snapshot != last_snapshot {
            last_snapshot = metrics.snapshot;
            grown = 0;
        }
        grown += inner.log.take_appended_bytes();
        let snapshot_index = last_snapshot.map_or(0, |id| id.index);
        let entries = metrics.last_applied.map_or(0, |id| id.index).saturating_sub(snapshot_index);
        let due = entries >= inner.settings.snapshot_entries || grown >= inner.settings.snapshot_bytes;
        if !due {
            continue;
        }
        let state_bytes = snapshots.current_size();
        if grown < state_bytes / STATE_SHARE_DIVISOR {
            continue;
        }
        tracing::info!(group = %inner.name, entries, bytes = grown, state_bytes, "building a snapshot");
        grown = 0;
        if inner.raft.trigger().snapshot().await.is_err() {
            return;
        }
    }
}
