//! Errors of the Redis service.
//!
//! Two kinds, never mixed:
//! - [`CommandError`]: a deterministic user error (wrong type, not an
//!   integer, …). It is a *result* of a command: every replica computes the
//!   same one, and the frontend sends it to the client.
//! - [`Error`]: the service could not do its job (storage failure, the group
//!   stopped). Never produced by apply for a user's mistake.

use serde::{Deserialize, Serialize};

/// A deterministic, user-visible command error. `Display` gives Redis's
/// exact error line (without the leading `-`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CommandError {
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    #[error("ERR value is not a valid float")]
    NotFloat,
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    #[error("ERR decrement would overflow")]
    DecrementOverflow,
    #[error("ERR increment would produce NaN or Infinity")]
    NanOrInfinity,
    #[error("ERR no such key")]
    NoSuchKey,
    #[error("ERR syntax error")]
    Syntax,
    #[error("ERR invalid expire time in '{0}' command")]
    InvalidExpireTime(String),
    #[error("ERR offset is out of range")]
    OffsetOutOfRange,
    #[error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")]
    StringTooLong,
    #[error("ERR source and destination objects are the same")]
    SameObject,
    #[error("ERR DB index is out of range")]
    DbIndexOutOfRange,
    /// Any other Redis error; the text is the whole line, e.g. `ERR …`.
    #[error("{0}")]
    Other(String),
}

/// A failure of the service itself.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Storage(#[from] storage::Error),
    #[error(transparent)]
    Group(#[from] raft::GroupError),
    #[error("corrupt record in {family}: {reason}")]
    Corrupt { family: &'static str, reason: String },
    /// The shard's group has no replica on this node (placement put it
    /// elsewhere), and this path does not reach one elsewhere.
    #[error("shard {0} has no replica on this node")]
    NotHosted(storage::keyspace::Shard),
    /// A peer that ran the request for this node failed (its error, as
    /// text).
    #[error("{0}")]
    Remote(String),
    /// Boxed: openraft's storage errors are large, and `Error` travels in
    /// every apply result.
    #[error("starting the kv group: {0}")]
    Start(Box<raft::StartError>),
    #[error("the leader sent a reply this node cannot decode: {0}")]
    Reply(String),
    /// The service cannot start with the settings given.
    #[error("{0}")]
    Config(String),
}

impl From<raft::StartError> for Error {
    fn from(error: raft::StartError) -> Self {
        Error::Start(Box::new(error))
    }
}

/// The service's result type.
pub type Result<T> = std::result::Result<T, Error>;
