//! Change feeds: the keys a shard's batches change, kept for another node
//! that holds no replica of the shard but has clients tracking keys
//! (CLIENT TRACKING) in it. That node follows the feed by long polls
//! (`service::follow`); this is the hosting node's side.
//!
//! Invariants:
//! - A feed holds every key the shard's batches changed on this replica
//!   since it was opened or last polled, in apply order, or "flushed"
//!   when any batch may have changed every key (FLUSHDB, a snapshot
//!   installed, or more changes than a feed keeps).
//! - Polls are numbered: the follower names the sequence number the last
//!   answer gave it. A poll of a feed this node does not have (it
//!   restarted, dropped the feed as idle, or is another node) or with
//!   another number answers "lost"; the follower then opens a new feed
//!   and flushes its clients' caches, so no change goes unreported.
//! - A feed not polled for [`IDLE`] is dropped, so a follower that went
//!   away costs nothing after that.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use storage::keyspace::Shard;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::notify::{Applied, Writer};

/// A feed not polled for this long is dropped.
pub(crate) const IDLE: Duration = Duration::from_secs(5);

/// A feed that collects more keys than this between two polls reports a
/// flush instead.
const MAX_KEYS: usize = 100_000;

/// One answer to a follower: what changed since the previous answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Polled {
    /// The number to name in the next poll.
    pub next: u64,
    pub changed: Vec<(Bytes, Option<Writer>)>,
    /// Every key may have changed.
    pub flushed: bool,
}

struct Feed {
    shard: Shard,
    /// The number of the next poll.
    next: u64,
    changed: Vec<(Bytes, Option<Writer>)>,
    flushed: bool,
    /// When it was last polled (or opened), unless a poll waits now.
    idle_since: Option<Instant>,
    wake: Arc<Notify>,
}

/// This node's change feeds, by the id their followers gave them.
#[derive(Default)]
pub(crate) struct ChangeFeeds {
    feeds: Mutex<HashMap<u64, Feed>>,
    /// Whether any feed is open: batches then collect their changed keys.
    any: AtomicBool,
}

impl ChangeFeeds {
    fn feeds(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Feed>> {
        self.feeds.lock().expect("change feeds lock")
    }

    /// Whether any feed is open.
    pub(crate) fn any(&self) -> bool {
        self.any.load(Ordering::Relaxed)
    }

    /// Opens feed `id` of `shard`: it collects every batch applied from
    /// now on. Answers the first poll's number.
    pub(crate) fn open(&self, id: u64, shard: Shard) -> Polled {
        let mut feeds = self.feeds();
        drop_idle(&mut feeds);
        let wake = Arc::new(Notify::new());
        let feed = Feed { shard, next: 0, changed: Vec::new(), flushed: false, idle_since: Some(Instant::now()), wake };
        feeds.insert(id, feed);
        self.any.store(true, Ordering::Relaxed);
        Polled::default()
    }

    /// Adds what `applied` changed to the feeds of its shard.
    pub(crate) fn collect(&self, applied: &Applied) {
        if !self.any() || (applied.changed.is_empty() && !applied.flushed) {
            return;
        }
        let mut feeds = self.feeds();
        drop_idle(&mut feeds);
        self.any.store(!feeds.is_empty(), Ordering::Relaxed);
        for feed in feeds.values_mut().filter(|feed| feed.shard == applied.shard) {
            feed.flushed |= applied.flushed || feed.changed.len() + applied.changed.len() > MAX_KEYS;
            match feed.flushed {
                true => feed.changed.clear(),
                false => feed.changed.extend(applied.changed.iter().cloned()),
            }
            feed.wake.notify_one();
        }
    }

    /// Poll `next` of feed `id`: what changed since the previous poll, as
    /// soon as anything has, or after `wait` (then possibly nothing).
    /// `None`: the feed is lost (see the module docs).
    pub(crate) async fn poll(&self, id: u64, next: u64, wait: Duration) -> Option<Polled> {
        let wake = {
            let mut feeds = self.feeds();
            let feed = feeds.get_mut(&id).filter(|feed| feed.next == next && feed.idle_since.is_some());
            let Some(feed) = feed else {
                feeds.remove(&id);
                return None;
            };
            feed.idle_since = None;
            feed.wake.clone()
        };
        let _ = tokio::time::timeout(wait, wake.notified()).await;
        let mut feeds = self.feeds();
        let feed = feeds.get_mut(&id)?;
        feed.next += 1;
        feed.idle_since = Some(Instant::now());
        let changed = std::mem::take(&mut feed.changed);
        let flushed = std::mem::take(&mut feed.flushed);
        Some(Polled { next: feed.next, changed, flushed })
    }
}

fn drop_idle(feeds: &mut HashMap<u64, Feed>) {
    feeds.retain(|_, feed| feed.idle_since.is_none_or(|since| since.elapsed() < IDLE));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(shard: Shard, keys: &[&str]) -> Applied {
        let changed = keys.iter().map(|key| (Bytes::copy_from_slice(key.as_bytes()), None)).collect();
        Applied { shard, changed, ..Applied::default() }
    }

    fn keys(polled: &Polled) -> Vec<&[u8]> {
        polled.changed.iter().map(|(key, _)| key.as_ref()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_feed_reports_its_shard_s_changes_in_order_once() {
        let feeds = ChangeFeeds::default();
        assert!(!feeds.any());
        assert_eq!(feeds.open(7, 1).next, 0);
        assert!(feeds.any());
        feeds.collect(&applied(1, &["b", "a"]));
        feeds.collect(&applied(2, &["other"]));
        feeds.collect(&applied(1, &["c"]));
        let first = feeds.poll(7, 0, Duration::from_secs(1)).await.unwrap();
        assert_eq!((first.next, keys(&first), first.flushed), (1, vec![&b"b"[..], b"a", b"c"], false));
        let started = Instant::now();
        let empty = feeds.poll(7, 1, Duration::from_secs(1)).await.unwrap();
        assert_eq!((empty.next, empty.changed.len()), (2, 0));
        assert_eq!(started.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_poll_answers_at_the_first_change() {
        let feeds = Arc::new(ChangeFeeds::default());
        feeds.open(7, 0);
        let poller = feeds.clone();
        let poll = tokio::spawn(async move { poller.poll(7, 0, Duration::from_secs(10)).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        feeds.collect(&applied(0, &["k"]));
        let polled = poll.await.unwrap().unwrap();
        assert_eq!(keys(&polled), vec![&b"k"[..]]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_feed_is_lost_to_a_wrong_number_an_unknown_id_or_idleness() {
        let feeds = ChangeFeeds::default();
        feeds.open(7, 0);
        assert_eq!(feeds.poll(7, 3, Duration::ZERO).await, None);
        assert_eq!(feeds.poll(7, 0, Duration::ZERO).await, None, "a wrong number drops the feed");
        assert_eq!(feeds.poll(8, 0, Duration::ZERO).await, None);
        feeds.open(9, 0);
        tokio::time::sleep(IDLE).await;
        feeds.collect(&applied(0, &["k"]));
        assert!(!feeds.any());
        assert_eq!(feeds.poll(9, 0, Duration::ZERO).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_flush_or_too_many_keys_report_a_flush() {
        let feeds = ChangeFeeds::default();
        feeds.open(7, 0);
        feeds.collect(&applied(0, &["k"]));
        feeds.collect(&Applied { flushed: true, ..Applied::default() });
        feeds.collect(&applied(0, &["later"]));
        let polled = feeds.poll(7, 0, Duration::ZERO).await.unwrap();
        assert!(polled.flushed && polled.changed.is_empty());
        let many: Vec<String> = (0..=MAX_KEYS).map(|i| i.to_string()).collect();
        feeds.collect(&applied(0, &many.iter().map(String::as_str).collect::<Vec<_>>()));
        let polled = feeds.poll(7, 1, Duration::ZERO).await.unwrap();
        assert!(polled.flushed && polled.changed.is_empty());
    }
}
