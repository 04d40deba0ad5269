//! DUMP/RESTORE payloads in Redis's format, so keys move between Seshat
//! and Redis in either direction.
//!
//! A payload is `type byte | object | RDB version (u16 LE) | CRC-64 (u64
//! LE)`, the CRC (Jones polynomial, reflected, as Redis's `crc64`) covering
//! everything before it. Seshat writes [`RDB_VERSION`] 10 (Redis 7.0) and
//! the plain object encodings every Redis since 2.x loads: string (0), list
//! (1), set (2), hash (4) and sorted set with binary scores (5). It reads
//! those and the compact encodings Redis 7 writes: integer and LZF strings,
//! listpacks (hash 16, sorted set 17, set 20), quicklists of listpacks (18)
//! and intsets (11). Streams, modules and pre-7 ziplist encodings are
//! refused as bad data, as is an empty collection.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The RDB version Seshat writes: Redis 7.0's. Payloads up to it load.
pub const RDB_VERSION: u16 = 10;
/// The newest RDB version whose encodings this module reads (Redis 7.2).
const NEWEST_READABLE: u16 = 11;

/// A key's value as a payload carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Dumped {
    String(Bytes),
    /// Elements head to tail.
    List(Vec<Bytes>),
    Set(Vec<Bytes>),
    Hash(Vec<(Bytes, Bytes)>),
    SortedSet(Vec<(Bytes, f64)>),
}

/// Why a payload does not load; the two cases Redis words differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpError {
    /// A newer RDB version or a CRC mismatch.
    VersionOrChecksum,
    /// A well-formed envelope around something this module cannot read.
    BadData,
}

mod rdb_type {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET_2: u8 = 5;
    pub const HASH: u8 = 4;
    pub const SET_INTSET: u8 = 11;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const SET_LISTPACK: u8 = 20;
}

/// The payload DUMP answers for `value`.
pub fn encode(value: &Dumped) -> Bytes {
    let mut out = Vec::new();
    match value {
        Dumped::String(bytes) => {
            out.push(rdb_type::STRING);
            put_string(&mut out, bytes);
        }
        Dumped::List(items) | Dumped::Set(items) => {
            out.push(if matches!(value, Dumped::List(_)) { rdb_type::LIST } else { rdb_type::SET });
            put_length(&mut out, items.len() as u64);
            for item in items {
                put_string(&mut out, item);
            }
        }
        Dumped::Hash(pairs) => {
            out.push(rdb_type::HASH);
            put_length(&mut out, pairs.len() as u64);
            for (field, value) in pairs {
                put_string(&mut out, field);
                put_string(&mut out, value);
            }
        }
        Dumped::SortedSet(pairs) => {
            out.push(rdb_type::ZSET_2);
            put_length(&mut out, pairs.len() as u64);
            for (member, score) in pairs {
                put_string(&mut out, member);
                out.extend_from_slice(&score.to_le_bytes());
            }
        }
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Bytes::from(out)
}

/// The value in `payload`, checked as RESTORE checks it.
pub fn decode(payload: &[u8]) -> Result<Dumped, DumpError> {
    let Some(body_len) = payload.len().checked_sub(10) else {
        return Err(DumpError::VersionOrChecksum);
    };
    let version = u16::from_le_bytes([payload[body_len], payload[body_len + 1]]);
    let crc = u64::from_le_bytes(payload[body_len + 2..].try_into().expect("8 bytes"));
    if version > NEWEST_READABLE || crc64(&payload[..body_len + 2]) != crc {
        return Err(DumpError::VersionOrChecksum);
    }
    let mut input = Input { bytes: &payload[..body_len] };
    let value = input.object().ok_or(DumpError::BadData)?;
    let empty = match &value {
        Dumped::String(_) => false,
        Dumped::List(items) | Dumped::Set(items) => items.is_empty(),
        Dumped::Hash(pairs) => pairs.is_empty(),
        Dumped::SortedSet(pairs) => pairs.is_empty(),
    };
    if empty || !input.bytes.is_empty() {
        return Err(DumpError::BadData);
    }
    Ok(value)
}

/// RDB's opcode of a function library (`RDB_OPCODE_FUNCTION2`): its code
/// as a string.
const FUNCTION_LIBRARY: u8 = 245;

/// FUNCTION DUMP's payload of the libraries whose codes are `codes`.
pub fn encode_functions(codes: &[Bytes]) -> Bytes {
    let mut out = Vec::new();
    for code in codes {
        out.push(FUNCTION_LIBRARY);
        put_string(&mut out, code);
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Bytes::from(out)
}

/// The library codes of a FUNCTION RESTORE payload, or Redis's error.
pub fn decode_functions(payload: &[u8]) -> Result<Vec<Bytes>, String> {
    let wrong = || "DUMP payload version or checksum are wrong".to_string();
    let body_len = payload.len().checked_sub(10).ok_or_else(wrong)?;
    let version = u16::from_le_bytes([payload[body_len], payload[body_len + 1]]);
    let crc = u64::from_le_bytes(payload[body_len + 2..].try_into().expect("8 bytes"));
    if version > NEWEST_READABLE || crc64(&payload[..body_len + 2]) != crc {
        return Err(wrong());
    }
    let mut input = Input { bytes: &payload[..body_len] };
    let mut codes = Vec::new();
    while !input.bytes.is_empty() {
        let kind = input.byte().ok_or("can not read data type")?;
        if kind != FUNCTION_LIBRARY {
            return Err("given type is not a function".into());
        }
        codes.push(input.string().ok_or("failed loading the given functions payload")?);
    }
    Ok(codes)
}

/// RDB length encoding: 6, 14, 32 or 64 bits.
fn put_length(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.extend_from_slice(&[0x40 | (len >> 8) as u8, len as u8]);
    } else if len <= u64::from(u32::MAX) {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    put_length(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A cursor over payload bytes; every read is `None` past the end.
struct Input<'a> {
    bytes: &'a [u8],
}

/// What a length field holds: a length, or the tag of a special string
/// encoding.
enum Length {
    Plain(u64),
    Special(u8),
}

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.bytes.len() {
            return None;
        }
        let (taken, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(taken)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn length_field(&mut self) -> Option<Length> {
        let first = self.byte()?;
        Some(match first >> 6 {
            0 => Length::Plain(u64::from(first & 0x3f)),
            1 => Length::Plain(u64::from(first & 0x3f) << 8 | u64::from(self.byte()?)),
            2 if first == 0x80 => Length::Plain(u64::from(u32::from_be_bytes(self.take(4)?.try_into().ok()?))),
            2 if first == 0x81 => Length::Plain(u64::from_be_bytes(self.take(8)?.try_into().ok()?)),
            2 => return None,
            _ => Length::Special(first & 0x3f),
        })
    }

    /// A collection's element count, bounded by the bytes left (every
    /// element takes at least one), so a corrupt count allocates nothing.
    fn count(&mut self) -> Option<usize> {
        match self.length_field()? {
            Length::Plain(n) if n <= self.bytes.len() as u64 => Some(n as usize),
            _ => None,
        }
    }

    fn string(&mut self) -> Option<Bytes> {
        match self.length_field()? {
            Length::Plain(len) => Some(Bytes::copy_from_slice(self.take(usize::try_from(len).ok()?)?)),
            Length::Special(0) => Some(Bytes::from((self.byte()? as i8).to_string())),
            Length::Special(1) => Some(Bytes::from(i16::from_le_bytes(self.take(2)?.try_into().ok()?).to_string())),
            Length::Special(2) => Some(Bytes::from(i32::from_le_bytes(self.take(4)?.try_into().ok()?).to_string())),
            Length::Special(3) => {
                let Length::Plain(compressed) = self.length_field()? else { return None };
                let Length::Plain(len) = self.length_field()? else { return None };
                let compressed = self.take(usize::try_from(compressed).ok()?)?;
                lzf_decompress(compressed, usize::try_from(len).ok()?).map(Bytes::from)
            }
            Length::Special(_) => None,
        }
    }

    fn object(&mut self) -> Option<Dumped> {
        Some(match self.byte()? {
            rdb_type::STRING => Dumped::String(self.string()?),
            rdb_type::LIST => Dumped::List(self.strings()?),
            rdb_type::SET => Dumped::Set(self.strings()?),
            rdb_type::HASH => {
                let count = self.count()?;
                Dumped::Hash((0..count).map(|_| Some((self.string()?, self.string()?))).collect::<Option<_>>()?)
            }
            rdb_type::ZSET_2 => {
                let count = self.count()?;
                let pairs = (0..count).map(|_| {
                    let member = self.string()?;
                    let score = f64::from_le_bytes(self.take(8)?.try_into().ok()?);
                    (!score.is_nan()).then_some((member, score))
                });
                Dumped::SortedSet(pairs.collect::<Option<_>>()?)
            }
            rdb_type::SET_INTSET => Dumped::Set(intset(&self.string()?)?),
            rdb_type::SET_LISTPACK => Dumped::Set(listpack(&self.string()?)?),
            rdb_type::HASH_LISTPACK => Dumped::Hash(pairs(listpack(&self.string()?)?)?),
            rdb_type::ZSET_LISTPACK => {
                let pairs = pairs(listpack(&self.string()?)?)?;
                let scored = pairs.into_iter().map(|(member, score)| {
                    let score = crate::number::parse_f64(&score)?;
                    Some((member, score))
                });
                Dumped::SortedSet(scored.collect::<Option<_>>()?)
            }
            rdb_type::LIST_QUICKLIST_2 => {
                let nodes = self.count()?;
                let mut items = Vec::new();
                for _ in 0..nodes {
                    match self.length_field()? {
                        // A node holding one large element as is.
                        Length::Plain(1) => items.push(self.string()?),
                        Length::Plain(2) => items.extend(listpack(&self.string()?)?),
                        _ => return None,
                    }
                }
                Dumped::List(items)
            }
            _ => return None,
        })
    }

    fn strings(&mut self) -> Option<Vec<Bytes>> {
        let count = self.count()?;
        (0..count).map(|_| self.string()).collect()
    }
}

/// Consecutive items as pairs; an odd count is corrupt.
fn pairs(items: Vec<Bytes>) -> Option<Vec<(Bytes, Bytes)>> {
    if !items.len().is_multiple_of(2) {
        return None;
    }
    let mut items = items.into_iter();
    let mut pairs = Vec::with_capacity(items.len() / 2);
    while let (Some(a), Some(b)) = (items.next(), items.next()) {
        pairs.push((a, b));
    }
    Some(pairs)
}

/// The entries of a listpack, integers as their decimal text.
fn listpack(bytes: &[u8]) -> Option<Vec<Bytes>> {
    let mut input = Input { bytes: bytes.get(6..)? };
    let mut items = Vec::new();
    loop {
        let first = input.byte()?;
        let (item, entry_len) = match first {
            0xff => break,
            0x00..=0x7f => (Bytes::from(first.to_string()), 1),
            0x80..=0xbf => {
                let len = usize::from(first & 0x3f);
                (Bytes::copy_from_slice(input.take(len)?), 1 + len)
            }
            0xc0..=0xdf => {
                let raw = u16::from(first & 0x1f) << 8 | u16::from(input.byte()?);
                // 13-bit two's complement.
                let value = i64::from(raw) - if raw >= 1 << 12 { 1 << 13 } else { 0 };
                (Bytes::from(value.to_string()), 2)
            }
            0xe0..=0xef => {
                let len = usize::from(first & 0x0f) << 8 | usize::from(input.byte()?);
                (Bytes::copy_from_slice(input.take(len)?), 2 + len)
            }
            0xf0 => {
                let len = u32::from_le_bytes(input.take(4)?.try_into().ok()?) as usize;
                (Bytes::copy_from_slice(input.take(len)?), 5 + len)
            }
            0xf1..=0xf4 => {
                let width = [2, 3, 4, 8][usize::from(first - 0xf1)];
                let mut le = [0u8; 8];
                le[..width].copy_from_slice(input.take(width)?);
                // Sign-extend from `width` bytes.
                let shift = 64 - 8 * width as u32;
                let value = (i64::from_le_bytes(le) << shift) >> shift;
                (Bytes::from(value.to_string()), 1 + width)
            }
            _ => return None,
        };
        // Skip the entry's back-length: 7 bits per byte.
        let backlen = match entry_len {
            0..=127 => 1,
            128..=16_382 => 2,
            16_383..=2_097_150 => 3,
            2_097_151..=268_435_454 => 4,
            _ => 5,
        };
        input.take(backlen)?;
        items.push(item);
    }
    Some(items)
}

/// The members of an intset: `encoding (u32 LE: 2, 4 or 8) | count (u32
/// LE) | values LE`.
fn intset(bytes: &[u8]) -> Option<Vec<Bytes>> {
    let width = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
    let count = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?) as usize;
    if ![2, 4, 8].contains(&width) || bytes.len() != 8 + width * count {
        return None;
    }
    let members = bytes[8..].chunks_exact(width).map(|chunk| {
        let value = match width {
            2 => i64::from(i16::from_le_bytes(chunk.try_into().expect("2 bytes"))),
            4 => i64::from(i32::from_le_bytes(chunk.try_into().expect("4 bytes"))),
            _ => i64::from_le_bytes(chunk.try_into().expect("8 bytes")),
        };
        Bytes::from(value.to_string())
    });
    Some(members.collect())
}

/// LZF (liblzf) decompression into exactly `len` bytes.
fn lzf_decompress(input: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(len.min(input.len().saturating_mul(256)));
    let mut i = 0;
    while i < input.len() {
        let control = usize::from(input[i]);
        i += 1;
        if control < 32 {
            // A literal run of control + 1 bytes.
            let run = input.get(i..i + control + 1)?;
            out.extend_from_slice(run);
            i += control + 1;
        } else {
            // A back reference: length, then distance.
            let mut run = control >> 5;
            if run == 7 {
                run += usize::from(*input.get(i)?);
                i += 1;
            }
            let distance = ((control & 0x1f) << 8) + usize::from(*input.get(i)?) + 1;
            i += 1;
            let start = out.len().checked_sub(distance)?;
            for k in 0..run + 2 {
                out.push(out[start + k]);
            }
        }
        if out.len() > len {
            return None;
        }
    }
    (out.len() == len).then_some(out)
}

/// Redis's CRC-64: Jones polynomial, reflected, initial value 0.
fn crc64(bytes: &[u8]) -> u64 {
    const TABLE: [u64; 256] = {
        let mut table = [0u64; 256];
        let mut i = 0;
        while i < 256 {
            let mut crc = i as u64;
            let mut bit = 0;
            while bit < 8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0x95ac_9329_ac4b_c9b5 } else { crc >> 1 };
                bit += 1;
            }
            table[i] = crc;
            i += 1;
        }
        table
    };
    bytes.iter().fold(0, |crc, &b| TABLE[((crc ^ u64::from(b)) & 0xff) as usize] ^ (crc >> 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn the_checksum_is_redis_crc64() {
        assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    #[test]
    fn every_type_round_trips() {
        let long = Bytes::from(vec![b'x'; 20_000]);
        let values = [
            Dumped::String(b("hello")),
            Dumped::String(long.clone()),
            Dumped::List(vec![b("a"), long, b("")]),
            Dumped::Set(vec![b("m1"), b("m2")]),
            Dumped::Hash(vec![(b("f"), b("v"))]),
            Dumped::SortedSet(vec![(b("a"), 1.5), (b("b"), f64::NEG_INFINITY)]),
        ];
        for value in values {
            assert_eq!(decode(&encode(&value)), Ok(value));
        }
    }

    #[test]
    fn redis_payloads_load() {
        // `SET n 12345; DUMP n` on redis-server 7.0.15: an INT16 string.
        let int = b"\x00\xc190\n\x00\x9d\x94\xea'\x93\xfc\x08\xb9";
        assert_eq!(decode(int), Ok(Dumped::String(b("12345"))));
    }

    #[test]
    fn damaged_or_newer_payloads_are_refused() {
        let mut payload = encode(&Dumped::String(b("v"))).to_vec();
        let last = payload.len() - 1;
        payload[last] ^= 1;
        assert_eq!(decode(&payload), Err(DumpError::VersionOrChecksum));
        assert_eq!(decode(b"short"), Err(DumpError::VersionOrChecksum));
        let mut newer = vec![rdb_type::STRING, 1, b'v'];
        newer.extend_from_slice(&99u16.to_le_bytes());
        let crc = crc64(&newer);
        newer.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(decode(&newer), Err(DumpError::VersionOrChecksum));
    }

    #[test]
    fn unknown_types_and_empty_collections_are_bad_data() {
        let sealed = |body: &[u8]| {
            let mut payload = body.to_vec();
            payload.extend_from_slice(&RDB_VERSION.to_le_bytes());
            let crc = crc64(&payload);
            payload.extend_from_slice(&crc.to_le_bytes());
            payload
        };
        assert_eq!(decode(&sealed(&[15, 0])), Err(DumpError::BadData), "a stream");
        assert_eq!(decode(&sealed(&[rdb_type::SET, 0])), Err(DumpError::BadData), "empty");
        assert_eq!(decode(&sealed(&[rdb_type::SET, 0x3f])), Err(DumpError::BadData), "count past the end");
        assert_eq!(decode(&sealed(&[rdb_type::STRING, 1, b'v', 0])), Err(DumpError::BadData), "trailing bytes");
    }

    #[test]
    fn listpack_entries_decode_every_encoding() {
        let mut lp = vec![0u8; 6];
        lp.extend_from_slice(&[0x05, 1]); // 7-bit uint 5
        lp.extend_from_slice(&[0x82, b'h', b'i', 3]); // 6-bit string "hi"
        lp.extend_from_slice(&[0xdf, 0xff, 2]); // 13-bit int -1
        lp.extend_from_slice(&[0xf1, 0x00, 0x80, 3]); // int16 -32768
        lp.extend_from_slice(&[0xf4, 1, 0, 0, 0, 0, 0, 0, 0, 9]); // int64 1
        lp.push(0xff);
        assert_eq!(listpack(&lp), Some(vec![b("5"), b("hi"), b("-1"), b("-32768"), b("1")]));
    }

    #[test]
    fn intsets_and_lzf_decode() {
        let mut set = 2u32.to_le_bytes().to_vec();
        set.extend_from_slice(&2u32.to_le_bytes());
        set.extend_from_slice(&(-3i16).to_le_bytes());
        set.extend_from_slice(&7i16.to_le_bytes());
        assert_eq!(intset(&set), Some(vec![b("-3"), b("7")]));
        // "abcabcabc": a literal "abc", then a back reference of 6 bytes at
        // distance 3.
        assert_eq!(lzf_decompress(&[2, b'a', b'b', b'c', 0x80, 2], 9), Some(b"abcabcabc".to_vec()));
        assert_eq!(lzf_decompress(&[2, b'a', b'b', b'c', 0x80, 9], 9), None, "reference before the start");
    }
}
