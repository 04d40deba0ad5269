//! Hands on what the batches this node applies report (`kv::notify`):
//!
//! - keyspace notifications, published through the cluster-wide pub/sub
//!   for the groups this node leads. Every replica produces the same
//!   events when it applies an entry; only the group's leader publishes
//!   them, so a subscriber on any node gets each event once. The key
//!   misses of the reads this node served come the same way, and this
//!   node publishes them, after the events of the writes applied before
//!   the read. They go out
//!   in apply order: the task publishes one batch at a time and waits for
//!   its fan-out before the next, and batches that queued meanwhile go
//!   out together as one;
//! - changed keys, invalidated for this node's tracking clients
//!   (`crate::tracking`) from every group it hosts, leader or not.

use std::sync::Arc;

use kv::notify::{Applied, KeyEvent};
use raft::Shutdown;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::server::Server;

/// Hands on what `events` (the node's [`kv::Kv::applied_changes`])
/// reports until `shutdown`.
pub(crate) async fn hand_on(server: Arc<Server>, mut events: UnboundedReceiver<Applied>, shutdown: Shutdown) {
    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => return,
            next = events.recv() => match next {
                Some(batch) => batch,
                None => return,
            },
        };
        let mut messages = Vec::new();
        let mut collect = |applied: Applied| {
            server.tracking.invalidate(&server, &applied);
            if applied.served || server.kv.leads(applied.shard) {
                messages.extend(applied.events.iter().flat_map(KeyEvent::messages));
            }
        };
        collect(first);
        while let Ok(batch) = events.try_recv() {
            collect(batch);
        }
        if !messages.is_empty() {
            server.pubsub.publish_all(&server.node, server.peers(), messages).await;
        }
    }
}
