//! This node's blocked clients, waiting for what the state machine serves
//! them.
//!
//! A client registers before it proposes its `Block`, so a delivery can
//! never come before the client listens. Every replica applies every entry
//! and hands the deliveries to its registry; only the node whose id and
//! boot the waiter names has the client, the others ignore them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use storage::keyspace::Shard;
use tokio::sync::oneshot;

use crate::command::WaiterId;
use crate::reply::Reply;

/// What the state machine did with a queued waiter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Delivery {
    /// Served: the pop's reply (an error when BLMOVE's destination turned
    /// out to hold another type, as Redis answers).
    Served(Reply),
    /// Removed without an answer (`PurgeWaiters`): the client blocks again.
    Purged,
}

/// The clients of this node blocked on keys.
pub struct Blocked {
    node: u64,
    /// Random per process: a restarted node's waiters are not this one's.
    boot: u64,
    next_token: AtomicU64,
    waiting: Mutex<Waiting>,
    /// Per group: the replicated queue's length as this replica last
    /// applied it, and how many of its waiters belong to earlier processes
    /// of this node.
    queues: Mutex<HashMap<Shard, (u64, u64)>>,
}

#[derive(Default)]
struct Waiting {
    by_token: HashMap<u64, Slot>,
    /// How many slots are `queued` (INFO `blocked_clients`).
    queued: u64,
}

struct Slot {
    sender: oneshot::Sender<Delivery>,
    /// Whether the state machine queued the client (its `Block` answered
    /// `Blocked`) and has not served it yet.
    queued: bool,
}

impl Waiting {
    fn remove(&mut self, token: u64) -> Option<Slot> {
        let slot = self.by_token.remove(&token)?;
        self.queued -= u64::from(slot.queued);
        Some(slot)
    }
}

/// A client's place in the registry; leaves it when dropped.
pub(crate) struct Registration<'a> {
    blocked: &'a Blocked,
    pub(crate) id: WaiterId,
    pub(crate) delivery: oneshot::Receiver<Delivery>,
}

impl Blocked {
    /// The registry of node `node` in a new process.
    pub fn new(node: u64) -> Self {
        Blocked {
            node,
            boot: rand::random(),
            next_token: AtomicU64::new(0),
            waiting: Mutex::default(),
            queues: Mutex::default(),
        }
    }

    /// This node's id.
    pub(crate) fn node(&self) -> u64 {
        self.node
    }

    /// This process's boot id.
    pub(crate) fn boot(&self) -> u64 {
        self.boot
    }

    /// How many queued waiters belong to earlier processes of this node, as
    /// this replica last applied the queue.
    pub(crate) fn earlier_boots(&self) -> u64 {
        self.queues.lock().expect("queues lock").values().map(|(_, earlier)| earlier).sum()
    }

    /// Records group `shard`'s replicated queue after an applied batch: its
    /// length and how many of its waiters are this node's earlier
    /// processes'.
    pub(crate) fn queue_applied(&self, shard: Shard, in_cluster: usize, earlier_boots: usize) {
        self.queues.lock().expect("queues lock").insert(shard, (in_cluster as u64, earlier_boots as u64));
    }

    /// How many clients of this node the state machine has queued and not
    /// served yet: a served client stops counting in the apply that
    /// serves it, before any later command is answered.
    pub fn count(&self) -> u64 {
        self.lock().queued
    }

    /// How many clients of every node are queued, as this replica has
    /// applied the queue (INFO `blocked_clients_in_cluster`).
    pub fn in_cluster(&self) -> u64 {
        self.queues.lock().expect("queues lock").values().map(|(queued, _)| queued).sum()
    }

    /// A new waiter id, listening for its delivery.
    pub(crate) fn register(&self) -> Registration<'_> {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let (sender, delivery) = oneshot::channel();
        self.lock().by_token.insert(token, Slot { sender, queued: false });
        Registration { blocked: self, id: WaiterId { node: self.node, boot: self.boot, token }, delivery }
    }

    /// Passes each delivery for a client of this process to it.
    pub(crate) fn deliver(&self, deliveries: Vec<(WaiterId, Delivery)>) {
        let mine = deliveries.into_iter().filter(|(id, _)| id.node == self.node && id.boot == self.boot);
        let mut waiting = None;
        for (id, delivery) in mine {
            let waiting = waiting.get_or_insert_with(|| self.lock());
            if let Some(slot) = waiting.remove(id.token) {
                // The client may have left meanwhile; the reply is dropped,
                // as Redis drops one written to a closed connection.
                let _ = slot.sender.send(delivery);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().expect("blocked clients lock")
    }
}

impl Registration<'_> {
    /// Counts the client as blocked: the state machine queued it. No-op if
    /// it was served (or purged) meanwhile.
    pub(crate) fn queued(&self) {
        let mut waiting = self.blocked.lock();
        if let Some(slot) = waiting.by_token.get_mut(&self.id.token).filter(|slot| !slot.queued) {
            slot.queued = true;
            waiting.queued += 1;
        }
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.blocked.lock().remove(self.id.token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_this_process_s_waiters_get_their_delivery() {
        let blocked = Blocked::new(1);
        let mut registration = blocked.register();
        let id = registration.id;
        let other_boot = WaiterId { boot: id.boot.wrapping_add(1), ..id };
        let other_node = WaiterId { node: 2, ..id };
        blocked.deliver(vec![
            (other_boot, Delivery::Purged),
            (other_node, Delivery::Purged),
            (id, Delivery::Served(Reply::Int(7))),
        ]);
        assert_eq!((&mut registration.delivery).await.unwrap(), Delivery::Served(Reply::Int(7)));
        assert!(blocked.lock().by_token.is_empty());
    }

    #[tokio::test]
    async fn a_client_counts_as_blocked_from_queued_until_served_or_gone() {
        let blocked = Blocked::new(1);
        let first = blocked.register();
        let second = blocked.register();
        assert_eq!(blocked.count(), 0, "not queued yet");
        first.queued();
        second.queued();
        first.queued();
        assert_eq!(blocked.count(), 2);
        blocked.deliver(vec![(first.id, Delivery::Served(Reply::Nil))]);
        assert_eq!(blocked.count(), 1, "served in the apply, before the client reads it");
        first.queued();
        assert_eq!(blocked.count(), 1, "a served client is never counted again");
        drop(second);
        drop(first);
        assert_eq!(blocked.count(), 0);
        assert!(blocked.lock().by_token.is_empty());
    }
}
