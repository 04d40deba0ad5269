//! Following the changes of the shards this node holds no replica of, for
//! its clients that track keys (CLIENT TRACKING).
//!
//! While any client of this node tracks, one task per such shard follows a
//! change feed (`crate::change_feed`) on a node that hosts the shard, its
//! leader when known (`remote`'s choice of node), by long polls, and hands
//! each answer on as a batch of the shard, as the node's own replicas
//! hand on theirs. Invariants:
//!
//! - A feed reports every batch its node applies after the feed opened, in
//!   order. A read a client runs after the feed opened is linearized after
//!   the batches applied before, so any later change to a key it read is
//!   reported.
//! - Whenever a feed opens, the task hands on a flush of the shard: a key
//!   read while no feed ran may have changed unreported, so every tracking
//!   client is told to drop its whole cache (Redis's null invalidation).
//!   It flushes when a feed is lost too (a poll failed, the hosting node
//!   dropped it, or the shard's leader moved and polls go to another
//!   node), so caches do not outlive a broken feed by more than a poll.
//! - A task ends within a poll's wait once no client tracks or this node
//!   hosts the shard (its own replica reports the changes from then on);
//!   a tick restarts tasks that are missing.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use storage::keyspace::Shard;
use tokio::sync::watch;

use super::{Inner, Kv};
use crate::meta_group::PING_INTERVAL;
use crate::notify::Applied;

/// How long CLIENT TRACKING ON waits for the feeds to open.
const OPEN_WAIT: Duration = Duration::from_secs(2);

/// The shards this node follows.
pub(super) struct Following {
    /// The shards a task follows.
    running: Mutex<BTreeSet<Shard>>,
    /// The shards whose feed is open.
    open: watch::Sender<BTreeSet<Shard>>,
}

impl Default for Following {
    fn default() -> Self {
        Following { running: Mutex::default(), open: watch::Sender::new(BTreeSet::new()) }
    }
}

/// Starts the tick that follows the shards this node stops hosting while
/// clients track, and restarts tasks that ended.
pub(super) fn start(inner: &Arc<Inner>) {
    let inner = Arc::downgrade(inner);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(PING_INTERVAL).await;
            let Some(inner) = inner.upgrade() else { return };
            Kv { inner }.follow_missing();
        }
    });
}

impl Kv {
    /// Starts a task for every shard this node should follow and does not.
    pub(super) fn follow_missing(&self) {
        if !self.inner.key_events.tracked_here() {
            return;
        }
        let mut running = self.inner.following.running.lock().expect("following lock");
        for shard in 0..self.shards() {
            if self.group_of(shard).is_none() && running.insert(shard) {
                tokio::spawn(follow(Arc::downgrade(&self.inner), shard));
            }
        }
    }

    /// Waits (a short while at most) until the changes of every shard
    /// reach this node: it hosts the shard or follows an open feed.
    pub async fn changes_followed(&self) {
        let mut open = self.inner.following.open.subscribe();
        let every =
            |open: &BTreeSet<Shard>| (0..self.shards()).all(|s| open.contains(&s) || self.group_of(s).is_some());
        let _ = tokio::time::timeout(OPEN_WAIT, open.wait_for(every)).await;
    }

    /// Whether this node follows `shard`'s changes now.
    fn follows(&self, shard: Shard) -> bool {
        self.inner.key_events.tracked_here() && self.group_of(shard).is_none()
    }

    fn set_open(&self, shard: Shard, open: bool) {
        self.inner.following.open.send_if_modified(|shards| match open {
            true => shards.insert(shard),
            false => shards.remove(&shard),
        });
    }

    /// Hands on a flush of `shard`: its feed opened or was lost.
    fn flush_followed(&self, shard: Shard) {
        self.inner.key_events.hand_on(Applied { shard, flushed: true, ..Applied::default() });
    }
}

/// Follows `shard` while this node should (see the module docs).
async fn follow(inner: Weak<Inner>, shard: Shard) {
    let kv = |inner: &Weak<Inner>| inner.upgrade().map(|inner| Kv { inner });
    'feeds: while let Some(opening) = kv(&inner).filter(|kv| kv.follows(shard)) {
        let feed = rand::random::<u64>();
        let Ok(Some(first)) = opening.poll_changes(shard, feed, None).await else {
            tokio::time::sleep(PING_INTERVAL).await;
            continue;
        };
        tracing::info!(shard, "following the changes of a shard held elsewhere, for tracking clients");
        opening.set_open(shard, true);
        opening.flush_followed(shard);
        drop(opening);
        let mut next = first.next;
        while let Some(polling) = kv(&inner).filter(|kv| kv.follows(shard)) {
            match polling.poll_changes(shard, feed, Some(next)).await {
                Ok(Some(polled)) => {
                    next = polled.next;
                    if !polled.changed.is_empty() || polled.flushed {
                        let (changed, flushed) = (polled.changed, polled.flushed);
                        polling.inner.key_events.hand_on(Applied { shard, changed, flushed, ..Applied::default() });
                    }
                }
                _ => {
                    polling.set_open(shard, false);
                    polling.flush_followed(shard);
                    continue 'feeds;
                }
            }
        }
        break;
    }
    if let Some(kv) = kv(&inner) {
        kv.set_open(shard, false);
        kv.inner.following.running.lock().expect("following lock").remove(&shard);
    }
}
