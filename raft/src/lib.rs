//! Consensus groups on openraft: the replicated log every Seshat write goes
//! through, and the linearizable read path.
//!
//! A group is identified by (service, shard), e.g. `kv/0`. Its state machine
//! is supplied by the service ([`StateMachine`]), which proposes and applies
//! opaque bytes; this crate decides the order in which commands apply, when
//! they are durable and when a read may run.
//!
//! # Life of a proposal
//!
//! 1. A service calls [`Group::propose`]. The proposal gets this handle's
//!    client session and the next serial number and is queued at once, so a
//!    connection can submit a pipeline of writes and await them in order.
//! 2. The group's submit task merges the proposals queued meanwhile into one
//!    log entry. On the leader it appends the batch (openraft
//!    `client_write`), stamping it with the leader's clock; on a follower it
//!    sends it to the leader over the node transport ([`transport`]). See
//!    [`submit`] for batching and retries.
//! 3. The leader's log store writes it and one WAL sync covers every entry
//!    that arrived meanwhile (group commit, [`log_store`]); openraft
//!    replicates it and commits it at majority.
//! 4. Every replica applies committed entries in ONE RocksDB batch per apply
//!    call with the applied log id and the client sessions ([`sm_store`]);
//!    a retried serial returns the first response instead of applying twice
//!    ([`sessions`]).
//! 5. The leader's response travels back to the proposer.
//!
//! Steps 2–4 run on a runtime of their own ([`pipeline`]), so that the
//! connections' work does not delay a write's acknowledgement.
//!
//! # Reads
//!
//! [`Group::read_barrier`] returns once the local state machine has applied
//! everything acknowledged before the call (read index, [`reads`]).
//!
//! # Keeping openraft contained
//!
//! openraft types appear only in [`types`], the storage adapters, the
//! network adapter and the group internals; the public API is this crate's
//! own ([`Group`], [`GroupError`], [`GroupStatus`], [`Member`]).

// openraft's storage and network traits fix their error types
// (`StorageError`, `RPCError`, ~250 bytes); our helpers return the same.
#![allow(clippy::result_large_err)]

mod blocking;
mod clock;
mod frontend;
mod group;
mod handover;
mod lease;
mod log_store;
mod network;
mod node;
mod pipeline;
mod reads;
mod sessions;
mod settings;
mod sm_store;
mod snapshot;
mod snapshot_receive;
mod snapshot_trigger;
mod state_machine;
mod stored;
mod submit;
mod transport;
mod types;
mod voter_cap;

pub use blocking::run_blocking;
pub use clock::{Clock, ManualClock, SystemClock};
pub use frontend::{accept, Frontend, Shutdown};
pub use group::{Bootstrap, Group, GroupError, GroupId, GroupStatus, Member, Proposal, Role};
pub use handover::HandoverError;
pub use node::{answer_now, NodeService, RaftNode, ServiceAnswer};
pub use settings::{GroupSettings, Zones};
pub use state_machine::{Command, StateMachine};
pub use types::NodeId;

/// Storage adapters, exposed for openraft's conformance suite.
pub mod testing {
    pub use crate::log_store::LogStore;
    pub use crate::sm_store::StateMachineStore;
    pub use crate::types::{StorageError, TypeConfig};

    /// The state-machine store of group `shard` over `service`, for the
    /// conformance suite.
    pub fn state_machine_store<SM: crate::StateMachine>(
        store: storage::Store,
        shard: storage::keyspace::Shard,
        service: SM,
        snapshot_dir: std::path::PathBuf,
    ) -> Result<StateMachineStore<SM>, StorageError> {
        let snapshots = crate::snapshot::SnapshotDir::open(snapshot_dir)
            .map_err(|e| crate::types::storage_error(openraft::ErrorSubject::Store, openraft::ErrorVerb::Read, e))?;
        crate::sm_store::StateMachineStore::open(store, shard, service, snapshots)
    }
}

/// Why a group could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("raft storage: {0}")]
    Storage(#[from] types::StorageError),
    #[error("snapshot directory: {0}")]
    SnapshotDir(#[from] std::io::Error),
    #[error("raft settings: {0}")]
    Config(#[from] openraft::ConfigError),
    #[error("raft: {0}")]
    Raft(String),
}

impl From<openraft::error::Fatal<NodeId>> for StartError {
    fn from(fatal: openraft::error::Fatal<NodeId>) -> Self {
        StartError::Raft(fatal.to_string())
    }
}
