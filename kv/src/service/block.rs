//! The blocking pop as a client of this node runs it (steps 1, 2 and 5 of
//! `crate::blocking`'s life of a blocking pop), here or, for a shard this
//! node holds no replica of, through a node that does (`remote`).
//!
//! When this node's replica of the shard is erased while a client waits
//! (the placement moved it), the client leaves the queue and waits again
//! through a node that hosts the shard. If an entry this node never
//! applied served it first, the client gets the timeout's answer and that
//! element is lost: the one case where a pop is lost without a crash.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use storage::keyspace::Shard;

use super::Kv;
use crate::blocking::Delivery;
use crate::command::{BlockingPop, WaiterId, WriteOp};
use crate::error::Result;
use crate::reply::Reply;

impl Kv {
    /// Pops from the first of `keys` of `db` (all of `shard`) that has
    /// data, or blocks until
    /// a write gives one of them data (then the reply is what the state
    /// machine served this client), until `timeout` (`None`: forever; then
    /// the null array) or until `gone` resolves (the client was killed or
    /// the node stops; the reply is then never read).
    pub async fn block(
        &self,
        shard: Shard,
        db: u8,
        keys: Vec<Bytes>,
        pop: BlockingPop,
        timeout: Option<Duration>,
        gone: impl Future<Output = ()>,
    ) -> Result<Reply> {
        if self.group_of(shard).is_none() {
            return self.block_remote(shard, db, keys, pop, timeout, gone).await;
        }
        let blocked = self.blocked().clone();
        let deadline = timeout.map(|timeout| tokio::time::Instant::now() + timeout);
        tokio::pin!(gone);
        loop {
            let mut registration = blocked.register();
            let mut queued = Queued { kv: self, shard, db, waiter: Some(registration.id) };
            let op = WriteOp::Block { keys: keys.clone(), pop: pop.clone(), waiter: registration.id };
            match self.write(Some(shard), db, op).await? {
                Reply::Blocked => registration.queued(),
                served_at_once => {
                    queued.waiter = None;
                    return Ok(served_at_once);
                }
            }
            let expired = async {
                match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                delivery = &mut registration.delivery => {
                    queued.waiter = None;
                    match delivery {
                        Ok(Delivery::Served(reply)) => return Ok(reply),
                        // Purged while this node was cut off: block again.
                        Ok(Delivery::Purged) | Err(_) => continue,
                    }
                }
                _ = expired => {}
                _ = &mut gone => return Ok(Reply::NilArray),
                _ = self.unhosted(shard) => {
                    // This node's replica moved away: wait through a node
                    // that hosts the shard, if this waiter is still queued.
                    // If an entry this node no longer applies served it,
                    // that element is lost (see the module docs).
                    queued.waiter = None;
                    let unblock = WriteOp::Unblock { waiter: registration.id };
                    if self.write(Some(shard), db, unblock).await? != Reply::Int(1) {
                        return Ok(Reply::NilArray);
                    }
                    let now = tokio::time::Instant::now();
                    let timeout = deadline.map(|deadline| deadline.saturating_duration_since(now));
                    return self.block_remote(shard, db, keys, pop, timeout, gone).await;
                }
            }
            // Timed out: leave the queue, unless a write served this client
            // meanwhile; then its delivery is on the way.
            if self.write(Some(shard), db, WriteOp::Unblock { waiter: registration.id }).await? == Reply::Int(1) {
                queued.waiter = None;
                return Ok(Reply::NilArray);
            }
            queued.waiter = None;
            // Served or purged before the Unblock: by an entry before it,
            // which this node has applied once a read barrier passes.
            let group = self.group_for(Some(shard))?;
            let delivery = tokio::select! {
                delivery = &mut registration.delivery => delivery.ok(),
                _ = group.read_barrier() => registration.delivery.try_recv().ok(),
                _ = &mut gone => None,
            };
            return Ok(match delivery {
                Some(Delivery::Served(reply)) => reply,
                Some(Delivery::Purged) | None => Reply::NilArray,
            });
        }
    }
}

impl Kv {
    /// Resolves once this node holds no replica of `shard`.
    pub(super) async fn unhosted(&self, shard: Shard) {
        loop {
            let changed = self.inner.hosting_changed.notified();
            if self.group_of(shard).is_none() {
                return;
            }
            changed.await;
        }
    }
}

/// A waiter that may still be queued: if the client leaves without knowing
/// (an error, a disconnect), the guard proposes its removal so that no
/// later write serves a client that is gone.
struct Queued<'a> {
    kv: &'a Kv,
    shard: Shard,
    db: u8,
    waiter: Option<WaiterId>,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        let Some(waiter) = self.waiter else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (kv, shard, db) = (self.kv.clone(), self.shard, self.db);
        runtime.spawn(async move {
            if let Err(error) = kv.write(Some(shard), db, WriteOp::Unblock { waiter }).await {
                tracing::warn!(%error, ?waiter, "could not remove a departed blocked client");
            }
        });
    }
}
