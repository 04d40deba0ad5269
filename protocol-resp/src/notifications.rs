//! Publishes keyspace notifications (`kv::notify`): the events of the
//! batches this node applies, for the groups it leads, through the
//! cluster-wide pub/sub.
//!
//! Every replica produces the same events when it applies an entry; only
//! the group's leader publishes them, so a subscriber on any node gets
//! each event once. They go out in apply order: the task publishes one
//! batch at a time and waits for its fan-out before the next, and batches
//! that queued meanwhile go out together as one.

use std::sync::Arc;

use kv::notify::KeyEvent;
use raft::Shutdown;

use crate::server::Server;

/// Runs until `shutdown`.
pub(crate) async fn publish(server: Arc<Server>, shutdown: Shutdown) {
    let mut events = server.kv.key_events();
    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => return,
            next = events.recv() => match next {
                Some(batch) => batch,
                None => return,
            },
        };
        let mut messages = Vec::new();
        let mut collect = |(shard, batch): (kv::Shard, Vec<KeyEvent>)| {
            if server.kv.leads(shard) {
                messages.extend(batch.iter().flat_map(KeyEvent::messages));
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
