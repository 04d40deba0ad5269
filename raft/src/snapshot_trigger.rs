//! Builds a snapshot when the log grew by more than
//! [`GroupSettings::snapshot_bytes`](crate::GroupSettings) since the last
//! one. (openraft itself triggers on the entry count.)

use std::sync::Arc;
use std::time::Duration;

use crate::group::Inner;

const CHECK_INTERVAL: Duration = Duration::from_millis(500);

pub(crate) async fn run(inner: Arc<Inner>) {
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
        if grown >= inner.settings.snapshot_bytes {
            tracing::info!(group = %inner.name, bytes = grown, "log grew past the snapshot threshold");
            grown = 0;
            if inner.raft.trigger().snapshot().await.is_err() {
                return;
            }
        }
    }
}
