//! Clients blocked on keys: BLPOP and the other blocking pops.
//!
//! A blocked client registers for its keys, then proposes the
//! non-blocking form of its command; if that finds nothing, it waits to be
//! woken and proposes again, until it gets an answer or times out.
//! Registering before the first proposal means no write can slip between
//! "found nothing" and "waiting".
//!
//! The state machine calls [`Blocked::wake`] with the keys every applied
//! batch wrote, on every node, so a client is woken by writes from any
//! node. Fairness: per key, waiters are kept in arrival order and a write
//! wakes the first one not already woken. The woken client's own pop is a
//! write to the key, which wakes the next one, so a push of n elements
//! serves n waiters in arrival order; a woken client that finds nothing
//! waits again without losing its place.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::Notify;

/// A `(db, key)` that clients block on.
type BlockedKey = (u8, Bytes);

/// The registry of blocked clients of one node.
#[derive(Default)]
pub struct Blocked {
    /// The waiters of each key, in arrival order.
    queues: Mutex<HashMap<BlockedKey, VecDeque<Arc<Waiter>>>>,
    /// How many clients are blocked (INFO `blocked_clients`).
    count: AtomicU64,
}

struct Waiter {
    notify: Notify,
    /// Set when woken, cleared when the client waits again: a write wakes
    /// the first waiter that is not already on its way.
    woken: AtomicBool,
}

/// A client's registration; unregisters when dropped.
pub struct Registration {
    blocked: Arc<Blocked>,
    keys: Vec<BlockedKey>,
    waiter: Arc<Waiter>,
}

impl Blocked {
    /// Registers a client blocked on `keys` of `db`.
    pub fn register(self: &Arc<Self>, db: u8, keys: &[Bytes]) -> Registration {
        let waiter = Arc::new(Waiter { notify: Notify::new(), woken: AtomicBool::new(false) });
        let keys: Vec<BlockedKey> = keys.iter().map(|key| (db, key.clone())).collect();
        let mut queues = self.queues.lock().expect("blocked clients lock");
        for key in &keys {
            queues.entry(key.clone()).or_default().push_back(waiter.clone());
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        Registration { blocked: self.clone(), keys, waiter }
    }

    /// How many clients are blocked now.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Wakes, for each written key, its first waiter not already woken.
    pub(crate) fn wake<'k>(&self, written: impl Iterator<Item = (u8, &'k Bytes)>) {
        if self.count() == 0 {
            return;
        }
        let queues = self.queues.lock().expect("blocked clients lock");
        for (db, key) in written {
            let Some(queue) = queues.get(&(db, key.clone())) else { continue };
            if let Some(waiter) = queue.iter().find(|w| !w.woken.load(Ordering::Acquire)) {
                waiter.woken.store(true, Ordering::Release);
                waiter.notify.notify_one();
            }
        }
    }
}

impl Registration {
    /// Waits until a write to one of the keys wakes this client.
    pub async fn woken(&self) {
        self.waiter.notify.notified().await;
    }

    /// Marks the client as waiting again after a retry found nothing.
    pub fn waiting_again(&self) {
        self.waiter.woken.store(false, Ordering::Release);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut queues = self.blocked.queues.lock().expect("blocked clients lock");
        for key in &self.keys {
            if let Some(queue) = queues.get_mut(key) {
                queue.retain(|w| !Arc::ptr_eq(w, &self.waiter));
                if queue.is_empty() {
                    queues.remove(key);
                }
            }
        }
        self.blocked.count.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_write_wakes_the_first_waiter_not_already_woken() {
        let blocked = Arc::new(Blocked::default());
        let key = Bytes::from_static(b"q");
        let first = blocked.register(0, std::slice::from_ref(&key));
        let second = blocked.register(0, std::slice::from_ref(&key));
        assert_eq!(blocked.count(), 2);
        blocked.wake([(0, &key)].into_iter());
        first.woken().await;
        // The first is on its way: the next write wakes the second.
        blocked.wake([(0, &key)].into_iter());
        second.woken().await;
        // Another database's key wakes nobody.
        blocked.wake([(1, &key)].into_iter());
        drop(first);
        drop(second);
        assert_eq!(blocked.count(), 0);
        assert!(blocked.queues.lock().unwrap().is_empty());
    }
}
