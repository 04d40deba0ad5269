//! The messages nodes exchange, and their framing.
//!
//! Every message is one length-delimited frame (tokio-util's codec) holding
//! a postcard-encoded [`Message`]. Requests carry an id chosen by the caller;
//! the response carries the same id, so one connection carries many RPCs at
//! once, answered in any order.

use bytes::Bytes;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use serde::{Deserialize, Serialize};
use tokio_util::codec::LengthDelimitedCodec;

use crate::group::{GroupError, Member};
use crate::types::{NodeId, Request, TypeConfig};

/// The largest frame: a snapshot chunk or a batch of entries, with room.
pub(crate) const MAX_FRAME: usize = 256 * 1024 * 1024;

pub(crate) fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder().max_frame_length(MAX_FRAME).new_codec()
}

/// One frame on a node-to-node connection.
#[derive(Serialize, Deserialize)]
pub(crate) enum Message {
    Request { id: u64, group: String, rpc: Rpc },
    Response { id: u64, reply: Reply },
}

/// A request to a peer, addressed to one of its groups.
#[derive(Serialize, Deserialize)]
pub(crate) enum Rpc {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// Writes proposed on a follower, for the leader to append.
    Forward(Vec<Request>),
    /// A follower asks the leader for a linearizable read index.
    ReadIndex,
    /// Membership changes and queries forwarded by a member: executed by
    /// the leader, refused by anyone else (never forwarded twice).
    Admin(AdminOp),
    /// A membership change asked of any member by a node that is not one
    /// yet (`--join`): the member forwards it to the leader.
    Join(AdminOp),
    /// A message for a node service (addressed by the service's name
    /// instead of a group's), outside any Raft log: pub/sub fan-out.
    Service(Bytes),
    /// The leader handing over asks this voter to start an election now.
    Campaign,
}

/// Operator requests about membership.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum AdminOp {
    AddNode {
        id: NodeId,
        addr: String,
    },
    RemoveNode {
        id: NodeId,
    },
    /// Hand leadership to `to` (or the best voter) within `timeout_ms`.
    HandOver {
        to: Option<NodeId>,
        timeout_ms: u64,
    },
    AbortHandover,
}

/// The answer to an [`Rpc`].
#[derive(Serialize, Deserialize)]
pub(crate) enum Reply {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    /// One response per forwarded request, in order.
    Forward(Result<Vec<Bytes>, GroupError>),
    ReadIndex(Result<u64, GroupError>),
    Admin(Result<Vec<Member>, GroupError>),
    Service(Bytes),
    Campaign(Result<(), GroupError>),
    /// The peer does not run the addressed group (or service).
    UnknownGroup,
}

impl Message {
    pub(crate) fn encode(&self) -> Bytes {
        Bytes::from(postcard::to_stdvec(self).expect("messages always serialize"))
    }

    pub(crate) fn decode(frame: &[u8]) -> Result<Message, postcard::Error> {
        postcard::from_bytes(frame)
    }
}

/// Writes the frames queued in `outbox` to `write` until either closes,
/// flushing once per burst of queued frames.
pub(crate) async fn write_frames(
    write: tokio::net::tcp::OwnedWriteHalf,
    mut outbox: tokio::sync::mpsc::UnboundedReceiver<Bytes>,
) {
    use futures_util::SinkExt;
    let mut sink = tokio_util::codec::FramedWrite::new(write, codec());
    while let Some(frame) = outbox.recv().await {
        if sink.feed(frame).await.is_err() {
            return;
        }
        while let Ok(frame) = outbox.try_recv() {
            if sink.feed(frame).await.is_err() {
                return;
            }
        }
        if SinkExt::<Bytes>::flush(&mut sink).await.is_err() {
            return;
        }
    }
}
