//! The blocking pop as a client of this node runs it (steps 1, 2 and 5 of
//! `crate::blocking`'s life of a blocking pop).

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
