//! Consensus groups: the replicated log that every Seshat write goes through.
//!
//! A group is identified by (service, shard), e.g. `kv/0`. Its state machine
//! is supplied by the service ([`StateMachine`]); this crate decides the
//! order in which commands are applied and when they are durable.
//!
//! # Life of a proposal
//!
//! 1. A service calls [`Group::propose`]. The command is queued at once (the
//!    call does not wait), so a connection can submit a pipeline of writes
//!    and await their results in order.
//! 2. The group's applier takes every queued command at once (up to
//!    [`MAX_BATCH`]), gives them consecutive log indexes and hands the whole
//!    batch to [`StateMachine::apply`], which applies it durably as ONE write
//!    batch. One fsync thus covers every proposal that arrived meanwhile
//!    (group commit).
//! 3. Each proposer receives its command's response, in log order.
//!
//! # Today: a group of one
//!
//! This version runs every group on a single node: the node is always the
//! leader and the state machine's own durable write batch is the log. The
//! Raft issue puts openraft under the same [`Group`] API; services do not
//! change.
//!
//! Invariants:
//! - Commands are applied in proposal order, each exactly once, with indexes
//!   `applied_index + 1, + 2, …` and no gaps.
//! - A response is delivered only after its command is durable.
//! - A state-machine error is fatal: the group stops, fails every waiting
//!   and future proposal with [`GroupError::Fatal`] and reports it through
//!   [`Group::fatal`]; nothing after it is applied.

mod frontend;
mod group;
mod state_machine;

pub use frontend::{Frontend, Shutdown};

pub use group::{Group, GroupError, GroupId, GroupStatus, Proposal, Role, MAX_BATCH};
pub use state_machine::{Entry, StateMachine};
