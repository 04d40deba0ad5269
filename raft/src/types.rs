//! The openraft type configuration and the log entry envelope.
//!
//! Everything openraft-specific that other modules name goes through here,
//! so that moving to another openraft line touches few files. Services never
//! see these types: they propose and apply opaque bytes.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A node's id in the cluster.
pub type NodeId = u64;

/// What the log records about a node: where its Raft transport listens.
pub type Node = openraft::BasicNode;

openraft::declare_raft_types!(
    /// Seshat's openraft configuration: an entry carries a batch of
    /// [`Request`]s, the state machine answers with one encoded response per
    /// request, snapshots are files.
    pub TypeConfig:
        D = Requests,
        R = Vec<Bytes>,
        NodeId = NodeId,
        Node = Node,
        SnapshotData = tokio::fs::File,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type StoredMembership = openraft::StoredMembership<NodeId, Node>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Node>;
pub type StorageError = openraft::StorageError<NodeId>;

/// The application payload of one log entry: a service command with the
/// client session that exactly-once delivery needs and the leader's clock.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The proposing client session: one per running [`crate::Group`] handle.
    pub client: u64,
    /// The request's serial number within the session; retries reuse it.
    pub serial: u64,
    /// Every serial below this has been answered and will never be retried,
    /// so the state machine may forget their responses.
    pub acked_below: u64,
    /// The leader's wall clock when it appended the entry, in Unix ms.
    pub stamp_ms: u64,
    /// The service's command bytes.
    pub payload: Bytes,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Request({}:{} {} bytes)", self.client, self.serial, self.payload.len())
    }
}

/// The payload of one log entry: the requests the leader appended together.
/// openraft appends, replicates, syncs and applies per entry; batching the
/// requests queued meanwhile into one entry pays those costs once per batch.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requests(pub Vec<Request>);

impl fmt::Debug for Requests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Requests({})", self.0.len())
    }
}

impl fmt::Display for Requests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A storage failure as openraft wants it reported.
pub(crate) fn storage_error(
    subject: openraft::ErrorSubject<NodeId>,
    verb: openraft::ErrorVerb,
    error: impl std::error::Error + 'static,
) -> StorageError {
    openraft::StorageIOError::new(subject, verb, openraft::AnyError::new(&error)).into()
}
