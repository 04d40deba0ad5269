//! How a list's elements are stored: in chunks of up to [`SLOTS`]
//! consecutive positions, one `kv_elements` entry per chunk, so that
//! reading a range touches one RocksDB entry per 32 elements instead of one
//! per element.
//!
//! A list's elements have positions `head .. head + len` (the header's
//! `head` and `len`); position `p` lives in chunk `p / SLOTS`, under the
//! sub-key `CHUNK | chunk (u64 BE)`. A chunk's value is the position of its
//! first element (u64 BE) followed by its elements in order, each a varint
//! `len << 1 | big` and, unless `big`, the `len` bytes. An element longer
//! than [`BIG`] bytes is kept whole under `ELEMENT | position (u64 BE)`, so
//! that changing a chunk never rewrites more than `SLOTS × BIG` bytes.
//!
//! Invariants:
//! - every position of the list is in exactly one chunk, and a chunk holds
//!   consecutive positions from its first one;
//! - a chunk with no elements is deleted, never stored empty;
//! - an element key exists exactly for the big elements of the chunks.

use bytes::{Buf, BufMut, Bytes};
use storage::keyspace::kv_elements;
use storage::{Family, Reader};

use crate::error::{Error, Result};

/// Positions per chunk.
pub(crate) const SLOTS: u64 = 32;
/// Elements longer than this are stored on their own.
pub(crate) const BIG: usize = 512;

const CHUNK: u8 = 0;
const ELEMENT: u8 = 1;

/// One element of a chunk.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Slot {
    Inline(Bytes),
    /// Stored under its own element key.
    Big,
}

/// A decoded chunk: the position of its first element and its elements.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Chunk {
    pub first: u64,
    pub slots: Vec<Slot>,
}

/// The chunk number of `position`.
pub(crate) fn chunk_of(position: u64) -> u64 {
    position / SLOTS
}

/// The `kv_elements` key of chunk `chunk` of list `version`.
pub(crate) fn chunk_key(db: u8, version: u64, chunk: u64) -> Vec<u8> {
    let mut sub = [CHUNK; 9];
    sub[1..].copy_from_slice(&chunk.to_be_bytes());
    kv_elements::key(db, version, &sub)
}

/// The `kv_elements` key of the big element at `position`.
pub(crate) fn element_key(db: u8, version: u64, position: u64) -> Vec<u8> {
    let mut sub = [ELEMENT; 9];
    sub[1..].copy_from_slice(&position.to_be_bytes());
    kv_elements::key(db, version, &sub)
}

impl Chunk {
    pub(crate) fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(8 + self.slots.len() * 8);
        out.put_u64(self.first);
        for slot in &self.slots {
            match slot {
                Slot::Inline(value) => {
                    put_varint(&mut out, (value.len() as u64) << 1);
                    out.extend_from_slice(value);
                }
                Slot::Big => put_varint(&mut out, 1),
            }
        }
        Bytes::from(out)
    }

    /// Decodes a stored chunk; inline values are slices of `bytes`, not
    /// copies.
    pub(crate) fn decode(bytes: &Bytes) -> Result<Chunk> {
        let mut slots = Vec::new();
        let first = for_each_slot(bytes, |_, slot| {
            slots.push(match slot {
                Some(value) => Slot::Inline(bytes.slice_ref(value)),
                None => Slot::Big,
            });
            true
        })?;
        Ok(Chunk { first, slots })
    }

    /// The position after the last element.
    pub(crate) fn end(&self) -> u64 {
        self.first + self.slots.len() as u64
    }
}

/// Calls `visit` with the position and value of each element of an encoded
/// chunk (`None`: a big one) until it returns false; returns the chunk's
/// first position.
fn for_each_slot(mut bytes: &[u8], mut visit: impl FnMut(u64, Option<&[u8]>) -> bool) -> Result<u64> {
    if bytes.len() < 8 {
        return Err(corrupt("a list chunk shorter than its header"));
    }
    let first = bytes.get_u64();
    let mut position = first;
    while !bytes.is_empty() {
        let tag = get_varint(&mut bytes).ok_or_else(|| corrupt("a truncated list chunk"))?;
        let slot = if tag & 1 == 1 {
            None
        } else {
            let len = usize::try_from(tag >> 1).map_err(|_| corrupt("a list element too long"))?;
            if len > bytes.len() {
                return Err(corrupt("a truncated list element"));
            }
            let (value, rest) = bytes.split_at(len);
            bytes = rest;
            Some(value)
        };
        if !visit(position, slot) {
            break;
        }
        position += 1;
    }
    Ok(first)
}

/// The element `value` at `position`, as a slot; a big one is written to
/// its own key through `put`.
pub(crate) fn slot_for(value: Bytes, position: u64, mut put: impl FnMut(u64, Bytes)) -> Slot {
    if value.len() > BIG {
        put(position, value);
        Slot::Big
    } else {
        Slot::Inline(value)
    }
}

/// The chunk `chunk` of list `version`, if stored.
pub(crate) fn read_chunk(reader: &(impl Reader + ?Sized), db: u8, version: u64, chunk: u64) -> Result<Option<Chunk>> {
    match reader.get(Family::KvElements, &chunk_key(db, version, chunk))? {
        Some(bytes) => Ok(Some(Chunk::decode(&Bytes::from(bytes))?)),
        None => Ok(None),
    }
}

/// The value of `slot` at `position`.
pub(crate) fn slot_value(
    reader: &(impl Reader + ?Sized),
    db: u8,
    version: u64,
    position: u64,
    slot: &Slot,
) -> Result<Bytes> {
    match slot {
        Slot::Inline(value) => Ok(value.clone()),
        Slot::Big => big_value(reader, db, version, position),
    }
}

fn big_value(reader: &(impl Reader + ?Sized), db: u8, version: u64, position: u64) -> Result<Bytes> {
    match reader.get(Family::KvElements, &element_key(db, version, position))? {
        Some(value) => Ok(Bytes::from(value)),
        None => Err(corrupt(&format!("list version {version} has no element at position {position}"))),
    }
}

/// Calls `visit` with the value at each position `from..=to` in order,
/// until it returns false. Inline values are lent straight from storage.
pub(crate) fn visit_range(
    reader: &(impl Reader + ?Sized),
    db: u8,
    version: u64,
    from: u64,
    to: u64,
    mut visit: impl FnMut(&[u8]) -> bool,
) -> Result<()> {
    let start = chunk_key(db, version, chunk_of(from));
    let end = chunk_key(db, version, chunk_of(to) + 1);
    let mut failure = None;
    let mut done = false;
    reader.visit(Family::KvElements, &start, &end, &mut |_, chunk| {
        let decoded = for_each_slot(chunk, |position, slot| {
            if position < from {
                return true;
            }
            if position > to {
                done = true;
                return false;
            }
            let more = match slot {
                Some(value) => visit(value),
                None => match big_value(reader, db, version, position) {
                    Ok(value) => visit(&value),
                    Err(error) => {
                        failure = Some(error);
                        false
                    }
                },
            };
            done = !more;
            more
        });
        if let Err(error) = decoded {
            failure = Some(error);
        }
        failure.is_none() && !done
    })?;
    match failure {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn get_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(value);
        }
    }
    None
}

fn corrupt(reason: &str) -> Error {
    Error::Corrupt { family: "kv_elements", reason: reason.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip_with_big_and_empty_elements() {
        let chunk = Chunk {
            first: u64::MAX / 2,
            slots: vec![Slot::Inline(Bytes::from_static(b"a")), Slot::Big, Slot::Inline(Bytes::new())],
        };
        assert_eq!(Chunk::decode(&chunk.encode()).unwrap(), chunk);
        assert_eq!(chunk.end(), u64::MAX / 2 + 3);
    }

    #[test]
    fn varints_round_trip_and_truncation_is_corrupt() {
        for value in [0, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            let mut input = &out[..];
            assert_eq!(get_varint(&mut input), Some(value));
            assert!(input.is_empty());
        }
        let chunk = Chunk { first: 7, slots: vec![Slot::Inline(Bytes::from_static(b"hello"))] }.encode();
        assert!(Chunk::decode(&chunk.slice(..chunk.len() - 1)).is_err());
        assert!(Chunk::decode(&Bytes::from_static(&[0, 1])).is_err());
    }

    #[test]
    fn only_values_longer_than_big_leave_the_chunk() {
        let mut stored = Vec::new();
        assert_eq!(
            slot_for(Bytes::from(vec![b'x'; BIG]), 9, |p, v| stored.push((p, v))),
            Slot::Inline(Bytes::from(vec![b'x'; BIG]))
        );
        assert!(stored.is_empty());
        assert_eq!(slot_for(Bytes::from(vec![b'x'; BIG + 1]), 9, |p, v| stored.push((p, v))), Slot::Big);
        assert_eq!(stored, vec![(9, Bytes::from(vec![b'x'; BIG + 1]))]);
    }
}
