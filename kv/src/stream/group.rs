//! Consumer groups as stored under their stream's version (the layout is
//! in the parent module's docs): the group, its pending entries (PEL),
//! its consumers and each consumer's own view of the PEL.
//!
//! Every pending entry is stored twice, in the group's PEL (with its
//! owner, delivery time and count) and as a bare key in its owner's PEL,
//! so that a consumer's history is one scan. The two always change
//! together. Counts (pending entries, consumers) are not stored: the
//! commands that report them scan.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{corrupt, StreamId};
use crate::error::Result;

/// What XGROUP does, as parsed before the key is looked up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupCommand {
    /// `id`: `$` or an ID, checked after the key.
    Create {
        id: Bytes,
        mkstream: bool,
        entries_read: i64,
    },
    SetId {
        id: Bytes,
        entries_read: i64,
    },
    Destroy,
    CreateConsumer {
        consumer: Bytes,
    },
    DelConsumer {
        consumer: Bytes,
    },
    /// A subcommand Redis answers with its syntax error once the key (and,
    /// for `needs_group`, the group) checks pass.
    Malformed {
        subcommand: Bytes,
        needs_group: bool,
    },
}

pub(crate) const GROUP: u8 = 1;
pub(crate) const PENDING: u8 = 2;
pub(crate) const CONSUMER: u8 = 3;
pub(crate) const CONSUMER_PENDING: u8 = 4;

/// Redis's `SCG_INVALID_ENTRIES_READ`.
pub const ENTRIES_READ_UNKNOWN: i64 = -1;

/// A consumer group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GroupMeta {
    /// The last entry delivered to the group.
    pub last_id: StreamId,
    /// How many entries the group has read (its logical position), or
    /// [`ENTRIES_READ_UNKNOWN`].
    pub entries_read: i64,
}

/// A pending entry: delivered to `consumer`, not acknowledged yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Nack {
    pub consumer: Bytes,
    pub delivery_time: u64,
    pub delivery_count: u64,
}

/// A consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ConsumerMeta {
    pub seen_time: u64,
}

/// Elements read by sub-key: `(sub-key, value)` pairs in order.
pub(crate) type SubEntries = Vec<(Vec<u8>, Vec<u8>)>;

pub(crate) fn encode<T: Serialize>(value: &T) -> Bytes {
    Bytes::from(postcard::to_stdvec(value).expect("stream metadata always serializes"))
}

pub(crate) fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| corrupt(format!("consumer group data: {e}")))
}

/// What a group's read counter and lag depend on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamView {
    pub len: u64,
    /// The first entry's ID (0-0 when empty).
    pub first_id: StreamId,
    pub meta: super::StreamMeta,
}

impl StreamView {
    /// Whether XDEL may have left a gap from `start` on (Redis's
    /// `streamRangeHasTombstones`).
    pub fn has_tombstones_from(&self, start: StreamId) -> bool {
        let max_deleted = self.meta.max_deleted;
        if self.len == 0 || max_deleted == StreamId::MIN || self.first_id > max_deleted {
            return false;
        }
        start <= max_deleted
    }

    /// The read counter of `id` if it can be known (Redis's
    /// `streamEstimateDistanceFromFirstEverEntry`).
    pub fn entries_read_at(&self, id: StreamId) -> Option<i64> {
        let added = self.meta.entries_added as i64;
        if added == 0 {
            return Some(0);
        }
        if self.len == 0 && id <= self.meta.last_id {
            return Some(added);
        }
        match id.cmp(&self.meta.last_id) {
            std::cmp::Ordering::Equal => return Some(added),
            std::cmp::Ordering::Greater => return None,
            std::cmp::Ordering::Less => {}
        }
        let max_deleted = self.meta.max_deleted;
        if max_deleted == StreamId::MIN || max_deleted < self.first_id {
            if id < self.first_id {
                return Some(added - self.len as i64);
            }
            if id == self.first_id {
                return Some(added - self.len as i64 + 1);
            }
        }
        None
    }

    /// How many entries the group has yet to read, if known.
    pub fn lag(&self, group: &GroupMeta) -> Option<i64> {
        let added = self.meta.entries_added as i64;
        if added == 0 {
            return Some(0);
        }
        if group.entries_read != ENTRIES_READ_UNKNOWN && !self.has_tombstones_from(group.last_id) {
            return Some(added - group.entries_read);
        }
        self.entries_read_at(group.last_id).map(|read| added - read)
    }

    /// The group has been delivered entry `id` (above its last ID).
    pub fn deliver(&self, group: &mut GroupMeta, id: StreamId) {
        if group.entries_read != ENTRIES_READ_UNKNOWN && !self.has_tombstones_from(id) {
            group.entries_read += 1;
        } else if self.meta.entries_added > 0 {
            group.entries_read = self.entries_read_at(id).unwrap_or(ENTRIES_READ_UNKNOWN);
        }
        group.last_id = id;
    }
}

fn named(tag: u8, name: &[u8]) -> Vec<u8> {
    let mut sub = Vec::with_capacity(5 + name.len() + 16);
    sub.push(tag);
    sub.extend_from_slice(&(name.len() as u32).to_be_bytes());
    sub.extend_from_slice(name);
    sub
}

/// The sub-key of group `name`.
pub(crate) fn group_sub(name: &[u8]) -> Vec<u8> {
    let mut sub = vec![GROUP];
    sub.extend_from_slice(name);
    sub
}

/// The sub-key prefix of group `group`'s PEL; an ID follows it.
pub(crate) fn pending_prefix(group: &[u8]) -> Vec<u8> {
    named(PENDING, group)
}

pub(crate) fn pending_sub(group: &[u8], id: StreamId) -> Vec<u8> {
    let mut sub = pending_prefix(group);
    sub.extend_from_slice(&id.encode());
    sub
}

/// The sub-key prefix of group `group`'s consumers; a name follows it.
pub(crate) fn consumer_prefix(group: &[u8]) -> Vec<u8> {
    named(CONSUMER, group)
}

pub(crate) fn consumer_sub(group: &[u8], consumer: &[u8]) -> Vec<u8> {
    let mut sub = consumer_prefix(group);
    sub.extend_from_slice(consumer);
    sub
}

/// The sub-key prefix of every consumer PEL of group `group`.
pub(crate) fn consumer_pendings_prefix(group: &[u8]) -> Vec<u8> {
    named(CONSUMER_PENDING, group)
}

/// The sub-key prefix of one consumer's PEL; an ID follows it.
pub(crate) fn consumer_pending_prefix(group: &[u8], consumer: &[u8]) -> Vec<u8> {
    let mut sub = consumer_pendings_prefix(group);
    sub.extend_from_slice(&(consumer.len() as u32).to_be_bytes());
    sub.extend_from_slice(consumer);
    sub
}

pub(crate) fn consumer_pending_sub(group: &[u8], consumer: &[u8], id: StreamId) -> Vec<u8> {
    let mut sub = consumer_pending_prefix(group, consumer);
    sub.extend_from_slice(&id.encode());
    sub
}

/// The ID at the end of a PEL sub-key.
pub(crate) fn pending_id(sub: &[u8]) -> Result<StreamId> {
    sub.len()
        .checked_sub(16)
        .and_then(|at| StreamId::decode(&sub[at..]))
        .ok_or_else(|| corrupt(format!("a pending entry's sub-key has {} bytes", sub.len())))
}

/// The end (exclusive) of the sub-keys that start with `prefix`.
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    vec![u8::MAX; prefix.len() + 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_keys_keep_groups_and_consumers_apart_and_ids_in_order() {
        let id = |ms| StreamId { ms, seq: 0 };
        // "ab" + "c" never runs into "a" + "bc": lengths lead.
        assert_ne!(consumer_pending_prefix(b"ab", b"c"), consumer_pending_prefix(b"a", b"bc"));
        assert!(pending_sub(b"g", id(1)) < pending_sub(b"g", id(2)));
        assert!(pending_sub(b"g", id(u64::MAX)) < prefix_end(&pending_prefix(b"g")));
        assert_eq!(pending_id(&consumer_pending_sub(b"g", b"c", id(7))).unwrap(), id(7));
        assert_eq!(prefix_end(&[1, 0xff]), vec![2]);
        let nack = Nack { consumer: Bytes::from_static(b"c"), delivery_time: 5, delivery_count: 2 };
        assert_eq!(decode::<Nack>(&encode(&nack)).unwrap(), nack);
    }
}
