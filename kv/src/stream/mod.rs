//! Streams: how one is stored, and what its commands share.
//!
//! A stream is a collection record (`crate::record`, type `stream`) whose
//! header's `len` is the number of entries (0 is allowed: unlike other
//! collections, an emptied stream stays) followed by a [`StreamMeta`]. Its
//! elements live under the header's version in `kv_elements`, one sub-key
//! shape per kind, each led by a tag byte:
//!
//! ```text
//! 0 | id (16)                                   entry: node | fields
//! 1 | group                                     consumer group
//! 2 | len(group) u32 | group | id               the group's pending entry
//! 3 | len(group) u32 | group | consumer         consumer
//! 4 | len(group) u32 | group | len(consumer) u32 | consumer | id
//!                                               the consumer's pending entry
//! ```
//!
//! IDs encode so that byte order is ID order, so a range read is one scan
//! and trimming from the front is O(removed). Deleted entries are gone
//! (no tombstones); `max_deleted` remembers the largest deleted ID, as
//! Redis's `max_deleted_entry_id` does.
//!
//! Redis keeps entries in radix-tree nodes of up to `stream-node-max-entries`
//! (100) and `~` trimming only drops whole nodes. Each entry here records the
//! node Redis would have put it in by count (a new node every
//! [`NODE_ENTRIES`] entries, or when the stream was empty), so `~` trims
//! as Redis does unless Redis closed a node early at its
//! `stream-node-max-bytes` (4096 bytes: long entries).

pub mod group;
pub mod id;
pub mod trim;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::reply::Reply;
pub use id::{ParsedId, StreamId};
pub use trim::{Trim, TrimStrategy};

/// The ID XADD asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AddId {
    /// `*`: from the entry's stamp, never below the last ID.
    Auto,
    /// `<ms>-*`: the next sequence of `ms`.
    AutoSeq(u64),
    /// `<ms>-<seq>`.
    Exact(StreamId),
}

/// Entries per emulated radix-tree node (Redis's `stream-node-max-entries`
/// default).
pub const NODE_ENTRIES: u64 = 100;

/// The most bytes of fields and values one entry may have (Redis's
/// `STREAM_LISTPACK_MAX_SIZE`).
pub const ENTRY_MAX_BYTES: usize = 1 << 30;

/// Sub-key tags (module docs).
pub(crate) const ENTRY: u8 = 0;

/// The bytes of a [`StreamMeta`] after the collection header.
pub(crate) const META_LEN: usize = 64;

/// What a stream record carries besides its collection header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamMeta {
    /// The largest ID ever added (or set by XSETID).
    pub last_id: StreamId,
    /// The largest ID XDEL removed.
    pub max_deleted: StreamId,
    /// How many entries were ever added.
    pub entries_added: u64,
    /// The node the last added entry went to, and how many entries were
    /// added to that node (module docs).
    pub tail_node: u64,
    pub tail_node_count: u64,
}

impl StreamMeta {
    pub(crate) fn encode(&self) -> [u8; META_LEN] {
        let mut out = [0; META_LEN];
        out[..16].copy_from_slice(&self.last_id.encode());
        out[16..32].copy_from_slice(&self.max_deleted.encode());
        for (i, field) in [self.entries_added, self.tail_node, self.tail_node_count, 0].into_iter().enumerate() {
            out[32 + i * 8..40 + i * 8].copy_from_slice(&field.to_be_bytes());
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != META_LEN {
            return Err(corrupt(format!("stream metadata of {} bytes", bytes.len())));
        }
        let field = |i: usize| u64::from_be_bytes(bytes[32 + i * 8..40 + i * 8].try_into().expect("8 bytes"));
        Ok(StreamMeta {
            last_id: StreamId::decode(&bytes[..16]).expect("16 bytes"),
            max_deleted: StreamId::decode(&bytes[16..32]).expect("16 bytes"),
            entries_added: field(0),
            tail_node: field(1),
            tail_node_count: field(2),
        })
    }

    /// The node a new entry goes to, given the stream's length before it.
    pub(crate) fn place_entry(&mut self, len: u64) -> u64 {
        if len == 0 || self.tail_node_count >= NODE_ENTRIES {
            self.tail_node += 1;
            self.tail_node_count = 0;
        }
        self.tail_node_count += 1;
        self.tail_node
    }
}

/// The sub-key of the entry `id`.
pub(crate) fn entry_sub(id: StreamId) -> [u8; 17] {
    let mut sub = [ENTRY; 17];
    sub[1..].copy_from_slice(&id.encode());
    sub
}

/// The ID of an entry's sub-key.
pub(crate) fn entry_id(sub: &[u8]) -> Result<StreamId> {
    match sub.split_first() {
        Some((&ENTRY, id)) if id.len() == 16 => Ok(StreamId::decode(id).expect("16 bytes")),
        _ => Err(corrupt(format!("a stream entry's sub-key has {} bytes", sub.len()))),
    }
}

/// One entry's stored value: its node and its field-value pairs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredEntry {
    pub node: u64,
    pub fields: Vec<(Bytes, Bytes)>,
}

impl StoredEntry {
    pub fn encode(&self) -> Bytes {
        Bytes::from(postcard::to_stdvec(self).expect("entries always serialize"))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        postcard::from_bytes(bytes).map_err(|e| corrupt(format!("stream entry: {e}")))
    }
}

/// One entry as a reply: `[id, [field, value, …]]`.
pub(crate) fn entry_reply(id: StreamId, entry: StoredEntry) -> Reply {
    let mut fields = Vec::with_capacity(entry.fields.len() * 2);
    for (field, value) in entry.fields {
        fields.push(Reply::Bulk(field));
        fields.push(Reply::Bulk(value));
    }
    Reply::Array(vec![Reply::bulk(id.to_string()), Reply::Array(fields)])
}

pub(crate) fn corrupt(reason: String) -> Error {
    Error::Corrupt { family: "kv_elements", reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_and_places_entries_in_nodes_of_a_hundred() {
        let mut meta = StreamMeta {
            last_id: StreamId { ms: 5, seq: 1 },
            max_deleted: StreamId { ms: 3, seq: 0 },
            entries_added: 7,
            ..StreamMeta::default()
        };
        assert_eq!(StreamMeta::decode(&meta.encode()).unwrap(), meta);
        let nodes: Vec<u64> = (0..250).map(|len| meta.place_entry(len)).collect();
        assert_eq!((nodes[0], nodes[99], nodes[100], nodes[249]), (1, 1, 2, 3));
        assert_eq!(meta.place_entry(0), 4, "an empty stream starts a node");
        assert_eq!(entry_id(&entry_sub(StreamId { ms: 9, seq: 2 })).unwrap(), StreamId { ms: 9, seq: 2 });
    }
}
