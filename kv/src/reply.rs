//! The Redis reply model, independent of RESP version.

use std::borrow::Cow;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::CommandError;

/// A reply as Redis models it. The RESP frontend encodes it for the
/// connection's protocol: RESP3 types fall back to their RESP2 forms
/// (a map becomes a flat array, a double a bulk string, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// A status line such as `OK` or `PONG` (static ones cost no allocation).
    Status(Cow<'static, str>),
    /// An error, inside an array or as the whole reply.
    Error(CommandError),
    Int(i64),
    Bulk(Bytes),
    /// The null bulk string (`$-1`, RESP3 `_`).
    Nil,
    /// The null array (`*-1`, RESP3 `_`).
    NilArray,
    Array(Vec<Reply>),
    /// An array of bulk strings packed in one buffer: `lengths[i]` bytes
    /// each, one after the other (LRANGE's hundreds of values without a
    /// reply or a reference count per value).
    Bulks {
        buffer: Bytes,
        lengths: Vec<u32>,
    },
    /// RESP3 map; RESP2 flat array of key, value, key, value, …
    Map(Vec<(Reply, Reply)>),
    /// Pairs such as HRANDFIELD WITHVALUES or ZRANGE WITHSCORES answer:
    /// RESP3 an array of 2-element arrays; RESP2 a flat array.
    Pairs(Vec<(Reply, Reply)>),
    /// Out-of-band data (pub/sub messages and subscription replies):
    /// RESP3 push; RESP2 array.
    Push(Vec<Reply>),
    /// Several replies to one command, one after the other (SUBSCRIBE
    /// answers once per channel).
    Sequence(Vec<Reply>),
    /// RESP3 set; RESP2 array.
    Set(Vec<Reply>),
    /// RESP3 double; RESP2 bulk string.
    Double(f64),
    /// RESP3 boolean; RESP2 integer 1 or 0.
    Bool(bool),
    /// RESP3 verbatim text (format `txt`); RESP2 bulk string.
    Verbatim(String),
    /// A blocking pop found no data and its client is now queued: the
    /// answer comes later (`crate::blocking`). Internal to `kv`; a frontend
    /// never gets it as a command's reply.
    Blocked,
    /// A double as Redis prints coordinates (`%.17Lf` without trailing
    /// zeros, `crate::number::format_human`): RESP3 double; RESP2 bulk
    /// string.
    HumanDouble(f64),
    /// XREAD's streams: RESP3 a map; RESP2 an array of `[key, value]`
    /// arrays.
    KeyedArrays(Vec<(Reply, Reply)>),
}

impl Reply {
    /// The reply's bytes as the state machine returns them through Raft.
    pub fn encode(&self) -> bytes::Bytes {
        bytes::Bytes::from(postcard::to_stdvec(self).expect("replies always serialize"))
    }

    /// Decodes bytes written by [`Reply::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Reply, postcard::Error> {
        postcard::from_bytes(bytes)
    }

    /// `+OK`.
    pub fn ok() -> Reply {
        Reply::Status(Cow::Borrowed("OK"))
    }

    /// A bulk string from anything byte-like.
    pub fn bulk(value: impl Into<Bytes>) -> Reply {
        Reply::Bulk(value.into())
    }

    /// A bulk string, or the null bulk string for `None`.
    pub fn bulk_or_nil(value: Option<Bytes>) -> Reply {
        value.map_or(Reply::Nil, Reply::Bulk)
    }
}

impl From<CommandError> for Reply {
    fn from(error: CommandError) -> Self {
        Reply::Error(error)
    }
}

impl From<Result<Reply, CommandError>> for Reply {
    fn from(result: Result<Reply, CommandError>) -> Self {
        result.unwrap_or_else(Reply::Error)
    }
}
