//! The contract between a group and its service.

use bytes::Bytes;
use storage::keyspace::Span;
use storage::Batch;

/// A committed log entry handed to the service, in log order.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// The entry's log index.
    pub index: u64,
    /// The leader's wall-clock time when it appended the entry (Unix ms).
    /// Services treat `max(stamp, last applied stamp)` as "now", so time
    /// never runs backwards across entries or leaders.
    pub stamp_ms: u64,
    /// The bytes the service proposed.
    pub payload: Bytes,
}

/// A deterministic state machine driven by a group's log.
///
/// Guarantees the implementation must give:
/// - `apply` is deterministic: the same commands on the same state produce
///   the same responses and the same bytes, on every replica;
/// - `apply` only adds its changes to the given batch; the group writes that
///   batch atomically together with the applied log id and client sessions,
///   so a crash leaves all of a batch or none of it;
/// - user errors (wrong type, not an integer, …) are responses, not `Err`;
///   `Err` means the node can no longer apply (I/O, corruption) and stops.
pub trait StateMachine: Send + Sync + 'static {
    /// A fatal apply error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Applies `commands` in order and returns one encoded response per
    /// command. Reads see the store as of the previous batch; writes go into
    /// `batch`.
    fn apply(&mut self, batch: &mut Batch, commands: Vec<Command>) -> Result<Vec<Bytes>, Self::Error>;

    /// Called once the batch of the last `apply` is written: readers of
    /// the store see its changes from now on.
    fn written(&mut self) {}

    /// The largest stamp applied so far.
    fn last_stamp_ms(&self) -> u64;

    /// Re-reads any cached state after a snapshot replaced the group's
    /// state.
    fn reload(&mut self) -> Result<(), Self::Error>;

    /// The spans of the service's state families that hold this group's
    /// state: what its snapshots carry and what installing one replaces.
    /// They must include the group's prefix of the service's state meta
    /// family (where the group keeps its Raft state), and no other group's
    /// keys.
    fn state_spans(&self) -> Vec<Span>;
}
