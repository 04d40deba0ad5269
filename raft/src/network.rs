//! openraft's view of the transport: one [`PeerNetwork`] per target node of
//! a group, sending the group's Raft RPCs over the node's shared [`Peers`].
//!
//! An append-entries request carries at most [`MAX_APPEND_BYTES`] of
//! payload (or a single entry). openraft gives each request one heartbeat
//! interval to answer and resends the same range after a timeout, so a
//! follower lagging by more log than it can receive, store and sync in
//! that time would never catch up: with 64 KiB values, a follower that
//! installed a snapshot then timed out on every request for the ~190 MiB of
//! log behind it, and the cluster churned through elections. A request
//! over the budget is refused before it is sent with openraft's
//! `PayloadTooLarge`, whose hint makes it send fewer entries.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::EntryPayload;
use tokio::time::Instant;

use crate::lease::Leases;
use crate::submit::MAX_BATCH_BYTES;
use crate::transport::wire::{Reply, Rpc};
use crate::transport::{Peers, TransportError};
use crate::types::{Entry, Node, NodeId, TypeConfig};

/// The most payload bytes in one append-entries request: one full batch of
/// proposals.
const MAX_APPEND_BYTES: usize = MAX_BATCH_BYTES;

/// Builds a [`PeerNetwork`] for each target openraft replicates to.
pub(crate) struct NetworkFactory {
    pub(crate) peers: Peers,
    pub(crate) group: String,
    /// How long replication to an unreachable peer pauses: one heartbeat,
    /// so that a node coming back hears from the leader before its election
    /// timeout (openraft's default, 500 ms, made restarted followers start
    /// needless elections).
    pub(crate) retry_pause: Duration,
    /// Told of every append-entries a follower accepts.
    pub(crate) leases: Arc<Leases>,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerNetwork;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> PeerNetwork {
        PeerNetwork {
            peers: self.peers.clone(),
            group: self.group.clone(),
            target,
            addr: node.addr.clone(),
            retry_pause: self.retry_pause,
            leases: self.leases.clone(),
        }
    }
}

/// The RPCs of one group to one target node.
pub(crate) struct PeerNetwork {
    peers: Peers,
    group: String,
    target: NodeId,
    addr: String,
    retry_pause: Duration,
    leases: Arc<Leases>,
}

type RpcResult<T, E = openraft::error::Infallible> = Result<T, RPCError<NodeId, Node, RaftError<NodeId, E>>>;

impl PeerNetwork {
    async fn call(&self, rpc: Rpc, option: &RPCOption) -> Result<Reply, TransportError> {
        self.peers.call(&self.addr, &self.group, rpc, option.hard_ttl()).await
    }

    fn remote<T, E: std::error::Error>(&self, result: Result<T, RaftError<NodeId, E>>) -> RpcResult<T, E> {
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

fn transport_error<E: std::error::Error>(error: TransportError) -> RPCError<NodeId, Node, RaftError<NodeId, E>> {
    match error {
        TransportError::Unreachable { .. } => RPCError::Unreachable(Unreachable::new(&error)),
        TransportError::Lost(_) | TransportError::Timeout { .. } => RPCError::Network(NetworkError::new(&error)),
    }
}

/// How many of `entries`, from the first, fit in [`MAX_APPEND_BYTES`] of
/// payload; at least one.
fn entries_within_budget(entries: &[Entry]) -> usize {
    let mut bytes = 0;
    let fitting = entries
        .iter()
        .take_while(|entry| {
            bytes += match &entry.payload {
                EntryPayload::Normal(requests) => requests.0.iter().map(|request| request.payload.len()).sum(),
                EntryPayload::Blank | EntryPayload::Membership(_) => 0,
            };
            bytes <= MAX_APPEND_BYTES
        })
        .count();
    fitting.max(1)
}

fn unexpected<E: std::error::Error>(what: &str) -> RPCError<NodeId, Node, RaftError<NodeId, E>> {
    let error = std::io::Error::other(format!("peer answered {what} with an unexpected reply"));
    RPCError::Network(NetworkError::new(&error))
}

impl RaftNetwork<TypeConfig> for PeerNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        let fitting = entries_within_budget(&rpc.entries);
        if fitting < rpc.entries.len() {
            return Err(RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint(fitting as u64)));
        }
        let (vote, sent) = (rpc.vote, Instant::now());
        match self.call(Rpc::AppendEntries(rpc), &option).await.map_err(transport_error)? {
            Reply::AppendEntries(result) => {
                // Any answer but a higher vote means the follower took the
                // request as its leader's (its log may still conflict).
                if matches!(&result, Ok(response) if !matches!(response, AppendEntriesResponse::HigherVote(_))) {
                    self.leases.accepted(self.target, vote, sent);
                }
                self.remote(result)
            }
            _ => Err(unexpected("append-entries")),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        match self.call(Rpc::InstallSnapshot(rpc), &option).await.map_err(transport_error)? {
            Reply::InstallSnapshot(result) => self.remote(result),
            _ => Err(unexpected("install-snapshot")),
        }
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(self.retry_pause))
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, option: RPCOption) -> RpcResult<VoteResponse<NodeId>> {
        match self.call(Rpc::Vote(rpc), &option).await.map_err(transport_error)? {
            Reply::Vote(result) => self.remote(result),
            _ => Err(unexpected("vote")),
        }
    }
}
