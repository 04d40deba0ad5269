//! The value format of `kv_data`: one record per Redis key.
//!
//! ```text
//! type: u8 | expire_at_ms: u64 BE (0 = no expiry) | modified: u64 BE | payload
//! ```
//!
//! `modified` is the log index of the entry that last wrote the key; WATCH
//! compares it with the index it observed. For a string the payload is the
//! value itself. For a collection (hash, list, set, sorted set, stream) it
//! is a [`Collection`] header: the version its elements live under in
//! `kv_elements` (and `kv_scores`), its length, and for a list the position
//! of its head; a stream's [`StreamMeta`] follows it.

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::stream::{self, StreamMeta};

const HEADER_LEN: usize = 17;
const COLLECTION_LEN: usize = 24;

/// The Redis type of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    String,
    Hash,
    List,
    Set,
    ZSet,
    Stream,
}

impl KeyType {
    fn code(self) -> u8 {
        match self {
            KeyType::String => 1,
            KeyType::Hash => 2,
            KeyType::List => 3,
            KeyType::Set => 4,
            KeyType::ZSet => 5,
            KeyType::Stream => 6,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(KeyType::String),
            2 => Some(KeyType::Hash),
            3 => Some(KeyType::List),
            4 => Some(KeyType::Set),
            5 => Some(KeyType::ZSet),
            6 => Some(KeyType::Stream),
            _ => None,
        }
    }

    /// The name `TYPE` answers.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::String => "string",
            KeyType::Hash => "hash",
            KeyType::List => "list",
            KeyType::Set => "set",
            KeyType::ZSet => "zset",
            KeyType::Stream => "stream",
        }
    }

    /// The bytes of a record's value before anything type-specific: a
    /// collection's header (a stream's [`StreamMeta`] follows it).
    fn header_len(self) -> usize {
        match self {
            KeyType::String => 0,
            KeyType::Stream => COLLECTION_LEN + stream::META_LEN,
            _ => COLLECTION_LEN,
        }
    }
}

/// The header of a collection: where its elements are and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collection {
    /// The version its elements are stored under; unique for all time.
    pub version: u64,
    /// The number of elements (never 0 but for a stream: another empty
    /// collection is deleted).
    pub len: u64,
    /// Lists only: the position of the first element. Elements occupy
    /// positions `head .. head + len`; a new list starts in the middle of
    /// the `u64` range so that it can grow both ways.
    pub head: u64,
}

impl Collection {
    /// An empty collection under a new `version`.
    pub fn new(version: u64) -> Self {
        Collection { version, len: 0, head: 1 << 63 }
    }

    fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(COLLECTION_LEN);
        for field in [self.version, self.len, self.head] {
            out.extend_from_slice(&field.to_be_bytes());
        }
        Bytes::from(out)
    }
}

/// A decoded `kv_data` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: KeyType,
    /// Absolute expiry in Unix milliseconds.
    pub expire_at_ms: Option<u64>,
    /// The log index of the last write (set by the txn on every write).
    pub modified: u64,
    /// A string's value, or a collection's encoded header.
    pub value: Bytes,
}

impl Record {
    /// A string record without expiry.
    pub fn string(value: Bytes) -> Self {
        Record { kind: KeyType::String, expire_at_ms: None, modified: 0, value }
    }

    /// A collection record of type `kind`.
    pub fn collection(kind: KeyType, expire_at_ms: Option<u64>, collection: Collection) -> Self {
        Record { kind, expire_at_ms, modified: 0, value: collection.encode() }
    }

    /// A stream record.
    pub fn stream(expire_at_ms: Option<u64>, collection: Collection, meta: &StreamMeta) -> Self {
        let mut value = collection.encode().to_vec();
        value.extend_from_slice(&meta.encode());
        Record { kind: KeyType::Stream, expire_at_ms, modified: 0, value: Bytes::from(value) }
    }

    /// This collection record with another header, and whatever follows
    /// the header kept.
    pub fn with_header(&self, collection: Collection) -> Self {
        let mut value = collection.encode().to_vec();
        value.extend_from_slice(&self.value[COLLECTION_LEN.min(self.value.len())..]);
        Record { value: Bytes::from(value), ..self.clone() }
    }

    /// The collection header of a non-string record.
    pub fn header(&self) -> Result<Collection> {
        let bytes = &self.value;
        if self.kind == KeyType::String || bytes.len() != self.kind.header_len() {
            return Err(corrupt(format!("a {} record has a {}-byte collection header", self.kind.name(), bytes.len())));
        }
        let field = |i: usize| u64::from_be_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        Ok(Collection { version: field(0), len: field(1), head: field(2) })
    }

    /// A stream record's metadata.
    pub fn stream_meta(&self) -> Result<StreamMeta> {
        match self.kind {
            KeyType::Stream => StreamMeta::decode(&self.value[COLLECTION_LEN.min(self.value.len())..]),
            kind => Err(corrupt(format!("a {} record read as a stream", kind.name()))),
        }
    }

    /// The collection version of a non-string record, if it is one.
    pub fn version(&self) -> Option<u64> {
        (self.kind != KeyType::String).then(|| self.header().map(|c| c.version).ok()).flatten()
    }

    /// True if the key no longer exists at `now_ms`.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at_ms.is_some_and(|at| at <= now_ms)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.value.len());
        out.push(self.kind.code());
        out.extend_from_slice(&self.expire_at_ms.unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&self.modified.to_be_bytes());
        out.extend_from_slice(&self.value);
        out
    }

    /// Decodes a stored record; the value shares `bytes` rather than
    /// copying it.
    pub fn decode(bytes: Bytes) -> Result<Self> {
        if bytes.len() < HEADER_LEN {
            return Err(corrupt(format!("record of {} bytes is shorter than its header", bytes.len())));
        }
        let kind = KeyType::from_code(bytes[0]).ok_or_else(|| corrupt(format!("unknown type code {}", bytes[0])))?;
        let at = u64::from_be_bytes(bytes[1..9].try_into().expect("8 bytes"));
        let modified = u64::from_be_bytes(bytes[9..HEADER_LEN].try_into().expect("8 bytes"));
        let record = Record { kind, expire_at_ms: (at != 0).then_some(at), modified, value: bytes.slice(HEADER_LEN..) };
        if kind != KeyType::String {
            record.header()?;
        }
        Ok(record)
    }
}

fn corrupt(reason: String) -> Error {
    Error::Corrupt { family: "kv_data", reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let list = Collection { version: 9, len: 3, head: (1 << 63) - 2 };
        for record in [
            Record::string(Bytes::from_static(b"")),
            Record {
                kind: KeyType::String,
                expire_at_ms: Some(1_700_000_000_000),
                modified: 42,
                value: Bytes::from_static(b"v"),
            },
            Record::collection(KeyType::List, None, list),
        ] {
            assert_eq!(Record::decode(Bytes::from(record.encode())).unwrap(), record);
        }
        assert_eq!(Record::collection(KeyType::List, None, list).header().unwrap(), list);
        assert!(Record::decode(Bytes::from_static(&[1, 0])).is_err());
        assert!(Record::decode(Bytes::from_static(&[9; 17])).is_err());
        assert!(Record::decode(Bytes::from_static(&[2; 17])).is_err(), "a hash without its header");
        let meta = StreamMeta { entries_added: 3, ..StreamMeta::default() };
        let stream = Record::stream(Some(9), list, &meta);
        let decoded = Record::decode(Bytes::from(stream.encode())).unwrap();
        assert_eq!((decoded.header().unwrap(), decoded.stream_meta().unwrap()), (list, meta));
        let moved = decoded.with_header(Collection { version: 77, ..list });
        assert_eq!((moved.header().unwrap().version, moved.stream_meta().unwrap()), (77, meta));
        let short = Record::collection(KeyType::Stream, None, list);
        assert!(Record::decode(Bytes::from(short.encode())).is_err(), "a stream without its metadata");
    }
}
