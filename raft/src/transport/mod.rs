//! The node-to-node transport: one TCP connection from each node to each
//! peer it calls, carrying the RPCs of every group (multiplexed by group
//! name) with request ids, so that RPCs are pipelined.
//!
//! - [`Peers`] is the calling side: it connects lazily, reconnects with
//!   exponential backoff after a failure, bounds every call with a timeout
//!   and fails every pending call when a connection breaks.
//! - [`serve`] is the answering side: it reads requests, hands each to the
//!   [`Dispatch`] of the node and writes the replies back as they complete.
//!   Forwarded writes are submitted in the order they arrive, so a pipeline
//!   forwarded by a follower is proposed in order.

mod client;
mod server;
pub(crate) mod wire;

pub(crate) use client::{Peers, TransportError};
pub(crate) use server::{serve, Dispatch, PendingReply};
