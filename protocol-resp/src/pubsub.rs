//! Pub/sub: this node's subscriptions, and the fan-out of PUBLISH to every
//! node of the cluster.
//!
//! Messages do not go through the Raft log (Redis pub/sub is fire and
//! forget, and a log entry per message would cost a majority fsync). A
//! PUBLISH delivers to this node's subscribers, then sends the message to
//! every other member over the node transport (the `pubsub` node service),
//! which delivers to theirs. The reply counts the receivers on this node
//! plus those that members reported before the fan-out timeout: receivers
//! "as far as known". A member that cannot be reached misses the message,
//! as a disconnected Redis subscriber would.
//!
//! Order: a connection's PUBLISHes run one after another, each waiting for
//! its fan-out, and a peer delivers one connection's messages in arrival
//! order, so subscribers see one publisher's messages in order.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kv::Reply;
use raft::{answer_now, NodeService, RaftNode, ServiceAnswer};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// The node service name PUBLISH fans out to.
pub const SERVICE: &str = "pubsub";

/// The node service name a batch of messages (keyspace notifications)
/// fans out to: one call per peer per batch, delivered in order.
pub const BATCH_SERVICE: &str = "pubsub-batch";

/// How long PUBLISH waits for members to report their receivers.
const FAN_OUT_TIMEOUT: Duration = Duration::from_millis(1000);

/// Where a subscribed connection receives its messages.
pub(crate) type Inbox = mpsc::UnboundedSender<Reply>;

/// One node's subscriptions. Cheap to clone.
#[derive(Clone, Default)]
pub struct PubSub {
    inner: Arc<Mutex<Subscriptions>>,
}

#[derive(Default)]
struct Subscriptions {
    /// Channel → subscribed client ids → their inboxes.
    channels: HashMap<Bytes, BTreeMap<u64, Inbox>>,
    /// Pattern → subscribed client ids → their inboxes.
    patterns: HashMap<Bytes, BTreeMap<u64, Inbox>>,
}

/// A published message as it travels between nodes.
#[derive(Serialize, Deserialize)]
struct Published {
    channel: Bytes,
    message: Bytes,
}

impl PubSub {
    /// Subscribes `client` to `channel` (pattern if `pattern`); returns
    /// false if it already was.
    pub(crate) fn subscribe(&self, client: u64, inbox: &Inbox, channel: &Bytes, pattern: bool) -> bool {
        let mut subscriptions = self.inner.lock().expect("pubsub lock");
        let table = if pattern { &mut subscriptions.patterns } else { &mut subscriptions.channels };
        table.entry(channel.clone()).or_default().insert(client, inbox.clone()).is_none()
    }

    /// Unsubscribes `client` from `channel`; returns whether it was.
    pub(crate) fn unsubscribe(&self, client: u64, channel: &Bytes, pattern: bool) -> bool {
        let mut subscriptions = self.inner.lock().expect("pubsub lock");
        let table = if pattern { &mut subscriptions.patterns } else { &mut subscriptions.channels };
        let Some(subscribers) = table.get_mut(channel) else { return false };
        let removed = subscribers.remove(&client).is_some();
        if subscribers.is_empty() {
            table.remove(channel);
        }
        removed
    }

    /// Delivers `message` to this node's subscribers of `channel` and of
    /// matching patterns; returns how many received it.
    pub fn deliver(&self, channel: &Bytes, message: &Bytes) -> usize {
        let subscriptions = self.inner.lock().expect("pubsub lock");
        let mut receivers = 0;
        if let Some(subscribers) = subscriptions.channels.get(channel) {
            let push =
                Reply::Push(vec![Reply::bulk("message"), Reply::Bulk(channel.clone()), Reply::Bulk(message.clone())]);
            receivers += subscribers.values().filter(|inbox| inbox.send(push.clone()).is_ok()).count();
        }
        for (pattern, subscribers) in &subscriptions.patterns {
            if !kv::glob_matches(pattern, channel) {
                continue;
            }
            let push = Reply::Push(vec![
                Reply::bulk("pmessage"),
                Reply::Bulk(pattern.clone()),
                Reply::Bulk(channel.clone()),
                Reply::Bulk(message.clone()),
            ]);
            receivers += subscribers.values().filter(|inbox| inbox.send(push.clone()).is_ok()).count();
        }
        receivers
    }

    /// PUBLISH: delivers here and on every other member of `node`'s
    /// cluster; returns the receivers counted.
    pub(crate) async fn publish(&self, node: &RaftNode, members: Vec<String>, channel: Bytes, message: Bytes) -> i64 {
        let local = self.deliver(&channel, &message);
        let payload =
            Bytes::from(postcard::to_stdvec(&Published { channel, message }).expect("published messages serialize"));
        let calls = members.iter().map(|addr| node.call_service(addr, SERVICE, payload.clone(), FAN_OUT_TIMEOUT));
        let remote: usize = futures_util::future::join_all(calls)
            .await
            .into_iter()
            .filter_map(|answer| answer.ok())
            .filter_map(|answer| postcard::from_bytes::<u64>(&answer).ok())
            .map(|n| n as usize)
            .sum();
        (local + remote) as i64
    }

    /// Delivers `messages` (`(channel, message)`, in order) here and on
    /// every other member, one call per member; waits for the fan-out (up
    /// to its timeout), so that batches published one after the other
    /// arrive in order.
    pub(crate) async fn publish_all(&self, node: &RaftNode, members: Vec<String>, messages: Vec<(Bytes, Bytes)>) {
        for (channel, message) in &messages {
            self.deliver(channel, message);
        }
        let batch: Vec<Published> =
            messages.into_iter().map(|(channel, message)| Published { channel, message }).collect();
        let payload = Bytes::from(postcard::to_stdvec(&batch).expect("published messages serialize"));
        let calls = members.iter().map(|addr| node.call_service(addr, BATCH_SERVICE, payload.clone(), FAN_OUT_TIMEOUT));
        futures_util::future::join_all(calls).await;
    }

    /// Whether `client` is subscribed to any channel or pattern.
    pub(crate) fn is_subscriber(&self, client: u64) -> bool {
        let subscriptions = self.inner.lock().expect("pubsub lock");
        let mut tables = [&subscriptions.channels, &subscriptions.patterns].into_iter();
        tables.any(|table| table.values().any(|subscribers| subscribers.contains_key(&client)))
    }

    /// PUBSUB CHANNELS: the channels with subscribers here matching
    /// `pattern` (all if `None`).
    pub(crate) fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let subscriptions = self.inner.lock().expect("pubsub lock");
        let mut channels: Vec<Bytes> = subscriptions
            .channels
            .keys()
            .filter(|channel| pattern.is_none_or(|p| kv::glob_matches(p, channel)))
            .cloned()
            .collect();
        channels.sort();
        channels
    }

    /// PUBSUB NUMSUB: the subscribers of `channel` here.
    pub(crate) fn numsub(&self, channel: &Bytes) -> usize {
        self.inner.lock().expect("pubsub lock").channels.get(channel).map_or(0, BTreeMap::len)
    }

    /// PUBSUB NUMPAT: the patterns subscribed to here.
    pub(crate) fn numpat(&self) -> usize {
        self.inner.lock().expect("pubsub lock").patterns.len()
    }

    /// Drops every subscription of `client` (its connection closed).
    pub(crate) fn forget(&self, client: u64) {
        let mut guard = self.inner.lock().expect("pubsub lock");
        let subscriptions = &mut *guard;
        for table in [&mut subscriptions.channels, &mut subscriptions.patterns] {
            table.retain(|_, subscribers| {
                subscribers.remove(&client);
                !subscribers.is_empty()
            });
        }
    }
}

/// Peers' batches of messages, delivered to this node's subscribers in
/// order.
pub struct Batches(pub PubSub);

impl NodeService for Batches {
    fn handle(&self, message: Bytes) -> ServiceAnswer {
        match postcard::from_bytes::<Vec<Published>>(&message) {
            Ok(batch) => batch.iter().for_each(|published| {
                self.0.deliver(&published.channel, &published.message);
            }),
            Err(error) => tracing::warn!(%error, "undecodable pub/sub batch from a peer"),
        }
        answer_now(Bytes::new())
    }
}

/// Peers' PUBLISH fan-out, delivered to this node's subscribers.
impl NodeService for PubSub {
    fn handle(&self, message: Bytes) -> ServiceAnswer {
        let receivers = match postcard::from_bytes::<Published>(&message) {
            Ok(published) => self.deliver(&published.channel, &published.message) as u64,
            Err(error) => {
                tracing::warn!(%error, "undecodable pub/sub message from a peer");
                0
            }
        };
        answer_now(Bytes::from(postcard::to_stdvec(&receivers).expect("counts serialize")))
    }
}
