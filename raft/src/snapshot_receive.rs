//! A follower receiving a snapshot counts the transfer as word from the
//! leader.
//!
//! While openraft's leader streams a snapshot to a follower it sends that
//! follower nothing else: its heartbeats go through the same replication
//! stream, which awaits the whole transfer. And openraft's follower resets
//! its election timer on append-entries, not on snapshot chunks. So a
//! transfer, or the install at its end, lasting longer than the election
//! timeout made the follower campaign. Its log being behind, it could never
//! win, but its higher term deposed the leader, whose next term restarted
//! the transfer from the first chunk, again and again: with a 384 MiB
//! snapshot and 300 ms elections, 20 restarts in a minute and no install.
//! (Linearizable reads through the follower hid it: the leader's
//! read-index rounds heartbeat each follower directly.)
//!
//! So while the follower handles a chunk it tells its own openraft, every
//! heartbeat interval, that it heard from the sender: an empty
//! append-entries under the sender's vote, from the log's beginning
//! (`prev_log_id: None`, which always matches) and committing nothing. It
//! changes no log and no commit index; openraft refuses it, as any message
//! of an older term, if the sender's vote is older than the follower's.

use std::time::Duration;

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, InstallSnapshotResponse};

use crate::types::{NodeId, Raft, TypeConfig};

/// Handles one snapshot chunk, telling openraft that the sender was heard
/// from at once and then every `heartbeat` until it is handled (at once,
/// as a chunk usually takes less than a heartbeat to handle).
pub(crate) async fn chunk(
    raft: &Raft,
    rpc: InstallSnapshotRequest<TypeConfig>,
    heartbeat: Duration,
) -> Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
    let heard = AppendEntriesRequest { vote: rpc.vote, prev_log_id: None, entries: Vec::new(), leader_commit: None };
    let install = raft.install_snapshot(rpc);
    tokio::pin!(install);
    let mut ticks = tokio::time::interval(heartbeat);
    loop {
        tokio::select! {
            reply = &mut install => return reply,
            _ = ticks.tick() => {
                // A refusal (a newer term here) is the chunk's to report.
                let _ = raft.append_entries(heard.clone()).await;
            }
        }
    }
}
