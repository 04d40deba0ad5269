//! Clients blocked on keys: BLPOP, BRPOP, BLMPOP, BLMOVE, BRPOPLPUSH,
//! BZPOPMIN, BZPOPMAX and BZMPOP.
//!
//! Redis serves a blocked client inside the write that gives it data,
//! before any later command runs: per key, in the order clients blocked,
//! as long as the key has elements. Seshat does the same at apply, so
//! every replica serves the same clients the same elements in the same
//! entry, and no command can take an element between the push and the
//! blocked client.
//!
//! # Life of a blocking pop
//!
//! 1. The connection's node draws a [`WaiterId`](crate::command::WaiterId)
//!    (node id, the process's boot id, a token) and registers it in its
//!    [`Blocked`] registry, so a delivery cannot arrive before anyone
//!    listens.
//! 2. It proposes `WriteOp::Block`. At apply, the pop runs at once if one
//!    of the keys has data (the reply is the data); else the waiter joins
//!    the replicated queue (`apply::waiters`) (kept in `kv_meta`, so snapshots and
//!    restarts carry it) and the reply is `Reply::Blocked`.
//! 3. Every later command that creates one of its keys (or gives it
//!    another type) signals the key as ready. After that command,
//!    `apply::block::serve_ready` serves the key's waiters in queue order,
//!    each with the pop it asked for, until the key is gone; a waiter of
//!    another type stays queued. A BLMOVE's push signals its destination,
//!    which is served in the next round, as Redis does.
//! 4. Every replica hands the deliveries of each applied batch to its
//!    [`Blocked`] registry; the node the client is connected to (same node
//!    id and boot) passes the reply to the waiting connection.
//! 5. A client that times out or disconnects proposes `WriteOp::Unblock`:
//!    if it was still queued it answers the null array; if it was served
//!    meanwhile its delivery is on the way and it answers that instead.
//!
//! A node that restarts proposes `WriteOp::PurgeWaiters` for its earlier
//! boots, so clients that died with it are never served.

mod local;

pub use local::Blocked;
pub(crate) use local::Delivery;
