//! The contract between a group and its service.

/// A log entry handed to the state machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry<C> {
    /// The entry's log index; consecutive within a batch and across batches.
    pub index: u64,
    /// The service's command.
    pub command: C,
}

/// A deterministic state machine driven by a group's log.
///
/// Guarantees the implementation must give:
/// - `apply` is deterministic: the same entries on the same state produce the
///   same responses and the same bytes, on every replica;
/// - `apply` is atomic and durable per call: after it returns `Ok`, every
///   entry of the batch and the new applied index are on stable storage
///   together, or (after a crash) none of them are;
/// - user errors (wrong type, not an integer, …) are responses, not `Err`;
///   `Err` means the node can no longer apply (I/O, corruption) and stops.
pub trait StateMachine: Send + 'static {
    /// A log-ready command: everything `apply` needs, with no reference to
    /// wall-clock time or randomness outside itself.
    type Command: Send + 'static;
    /// The result of applying one command.
    type Response: Send + 'static;
    /// A fatal apply error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The index of the last applied entry (0 if none).
    fn applied_index(&self) -> u64;

    /// Applies `entries` in order and returns one response per entry.
    fn apply(&mut self, entries: Vec<Entry<Self::Command>>) -> Result<Vec<Self::Response>, Self::Error>;
}
