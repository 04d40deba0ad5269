//! Bit operations on string values (SETBIT, GETBIT, BITCOUNT, BITPOS,
//! BITOP, BITFIELD), as pure functions over bytes. Bit 0 is the most
//! significant bit of byte 0, as in Redis.

use serde::{Deserialize, Serialize};

/// The largest bit offset SETBIT and BITFIELD accept (a 512 MiB string).
pub const MAX_BIT_OFFSET: u64 = 512 * 1024 * 1024 * 8 - 1;

/// The bit at `offset` (0 beyond the end).
pub fn get_bit(bytes: &[u8], offset: u64) -> u8 {
    let byte = (offset / 8) as usize;
    bytes.get(byte).map_or(0, |b| (b >> (7 - offset % 8)) & 1)
}

/// Sets the bit at `offset`, growing `bytes` with zeros; returns the old bit.
pub fn set_bit(bytes: &mut Vec<u8>, offset: u64, value: bool) -> u8 {
    let byte = (offset / 8) as usize;
    if bytes.len() <= byte {
        bytes.resize(byte + 1, 0);
    }
    let mask = 1 << (7 - offset % 8);
    let old = u8::from(bytes[byte] & mask != 0);
    if value {
        bytes[byte] |= mask;
    } else {
        bytes[byte] &= !mask;
    }
    old
}

/// Resolves Redis's inclusive, possibly negative `start..=end` over `len`
/// units; `None` if empty.
fn unit_range(start: i64, end: i64, len: i64) -> Option<(i64, i64)> {
    let start = if start < 0 { (len + start).max(0) } else { start };
    let end = if end < 0 { (len + end).max(0) } else { end };
    let end = end.min(len - 1);
    (len > 0 && start <= end).then_some((start, end))
}

/// BITCOUNT over bytes (or, `bit_mode`, bits) `start..=end`, or the whole
/// value.
pub fn bitcount(bytes: &[u8], range: Option<(i64, i64, bool)>) -> i64 {
    match range {
        // Redis checks this before clamping: -6 -7 is empty even where
        // clamping would make it the first unit.
        Some((start, end, _)) if start < 0 && end < 0 && start > end => 0,
        None => bytes.iter().map(|b| b.count_ones() as i64).sum(),
        Some((start, end, false)) => match unit_range(start, end, bytes.len() as i64) {
            Some((s, e)) => bytes[s as usize..=e as usize].iter().map(|b| b.count_ones() as i64).sum(),
            None => 0,
        },
        Some((start, end, true)) => match unit_range(start, end, bytes.len() as i64 * 8) {
            Some((s, e)) => (s..=e).map(|bit| i64::from(get_bit(bytes, bit as u64))).sum(),
            None => 0,
        },
    }
}

/// BITPOS: the first `bit` in bytes (or, `bit_mode`, bits) `start..=end`;
/// -1 if none. Looking for 0 without an explicit end, a value of all ones
/// answers the first bit past its end, as Redis does.
pub fn bitpos(bytes: &[u8], bit: u8, start: i64, end: Option<i64>, bit_mode: bool) -> i64 {
    let unit = if bit_mode { 1 } else { 8 };
    let len = if bit_mode { bytes.len() as i64 * 8 } else { bytes.len() as i64 };
    let Some((s, e)) = unit_range(start, end.unwrap_or(-1), len) else {
        return -1;
    };
    let (first, last) = (s * unit, e * unit + unit - 1);
    for position in first..=last {
        if get_bit(bytes, position as u64) == bit {
            return position;
        }
    }
    if bit == 0 && end.is_none() {
        last + 1
    } else {
        -1
    }
}

/// The operator of BITOP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BitOperation {
    And,
    Or,
    Xor,
    Not,
}

/// BITOP over `inputs` (absent keys are empty strings, padded with zeros).
pub fn bitop(operation: BitOperation, inputs: &[Vec<u8>]) -> Vec<u8> {
    let len = inputs.iter().map(Vec::len).max().unwrap_or(0);
    let byte = |input: &Vec<u8>, i: usize| input.get(i).copied().unwrap_or(0);
    (0..len)
        .map(|i| match operation {
            BitOperation::Not => !byte(&inputs[0], i),
            BitOperation::And => inputs.iter().fold(0xff, |acc, input| acc & byte(input, i)),
            BitOperation::Or => inputs.iter().fold(0, |acc, input| acc | byte(input, i)),
            BitOperation::Xor => inputs.iter().fold(0, |acc, input| acc ^ byte(input, i)),
        })
        .collect()
}

/// A BITFIELD integer type: `i1`..`i64` or `u1`..`u63`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldType {
    pub signed: bool,
    pub bits: u32,
}

/// What BITFIELD does when SET or INCRBY leaves the type's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Overflow {
    Wrap,
    Sat,
    Fail,
}

/// One BITFIELD subcommand (OVERFLOW applies to the ones after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FieldOp {
    Get { kind: FieldType, offset: u64 },
    Set { kind: FieldType, offset: u64, value: i64, overflow: Overflow },
    IncrBy { kind: FieldType, offset: u64, delta: i64, overflow: Overflow },
}

impl FieldOp {
    /// Whether the subcommand writes.
    pub fn writes(&self) -> bool {
        !matches!(self, FieldOp::Get { .. })
    }
}

/// Reads the raw `bits`-bit field at `offset` as an unsigned number.
fn read_raw(bytes: &[u8], offset: u64, bits: u32) -> u64 {
    (0..u64::from(bits)).fold(0, |acc, i| (acc << 1) | u64::from(get_bit(bytes, offset + i)))
}

fn write_raw(bytes: &mut Vec<u8>, offset: u64, bits: u32, value: u64) {
    for i in 0..u64::from(bits) {
        let bit = (value >> (u64::from(bits) - 1 - i)) & 1;
        set_bit(bytes, offset + i, bit == 1);
    }
}

fn decode(kind: FieldType, raw: u64) -> i64 {
    if kind.signed && kind.bits < 64 && raw >> (kind.bits - 1) & 1 == 1 {
        (raw | (!0u64 << kind.bits)) as i64
    } else {
        raw as i64
    }
}

/// The type's range as i128 bounds.
fn bounds(kind: FieldType) -> (i128, i128) {
    if kind.signed {
        (-(1i128 << (kind.bits - 1)), (1i128 << (kind.bits - 1)) - 1)
    } else {
        (0, (1i128 << kind.bits) - 1)
    }
}

/// `value` brought into the type's range by `overflow`; `None` for FAIL.
fn fit(kind: FieldType, value: i128, overflow: Overflow) -> Option<i64> {
    let (min, max) = bounds(kind);
    if (min..=max).contains(&value) {
        return Some(value as i64);
    }
    match overflow {
        Overflow::Fail => None,
        Overflow::Sat => Some(if value < min { min } else { max } as i64),
        Overflow::Wrap => {
            let modulus = 1i128 << kind.bits;
            let wrapped = value.rem_euclid(modulus);
            Some(decode(kind, wrapped as u64))
        }
    }
}

/// Runs one BITFIELD subcommand; its reply value (`None`: nil).
pub fn bitfield(bytes: &mut Vec<u8>, op: FieldOp) -> Option<i64> {
    match op {
        FieldOp::Get { kind, offset } => Some(decode(kind, read_raw(bytes, offset, kind.bits))),
        FieldOp::Set { kind, offset, value, overflow } => {
            let old = decode(kind, read_raw(bytes, offset, kind.bits));
            let new = fit(kind, i128::from(value), overflow)?;
            write_raw(bytes, offset, kind.bits, new as u64);
            Some(old)
        }
        FieldOp::IncrBy { kind, offset, delta, overflow } => {
            let old = decode(kind, read_raw(bytes, offset, kind.bits));
            let new = fit(kind, i128::from(old) + i128::from(delta), overflow)?;
            write_raw(bytes, offset, kind.bits, new as u64);
            Some(new)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_count_and_search_like_redis() {
        let mut value = Vec::new();
        assert_eq!(set_bit(&mut value, 7, true), 0);
        assert_eq!(value, [1]);
        assert_eq!(set_bit(&mut value, 7, false), 1);
        assert_eq!(bitcount(b"foobar", None), 26);
        assert_eq!(bitcount(b"foobar", Some((0, 0, false))), 4);
        assert_eq!(bitcount(b"foobar", Some((1, 1, false))), 6);
        assert_eq!(bitcount(b"foobar", Some((5, 30, true))), 17);
        assert_eq!(bitcount(b"foobar", Some((-6, -7, false))), 0);
        assert_eq!(bitcount(b"foobar", Some((-3, -1, false))), 10);
        assert_eq!(bitpos(&[0xff, 0xf0, 0x00], 0, 0, None, false), 12);
        assert_eq!(bitpos(&[0x00, 0xff, 0xf0], 1, 2, Some(-1), false), 16);
        assert_eq!(bitpos(&[0xff, 0xff], 0, 0, None, false), 16);
        assert_eq!(bitpos(&[0xff, 0xff], 0, 0, Some(-1), false), -1);
        assert_eq!(bitop(BitOperation::Not, &[vec![0x0f]]), [0xf0]);
        assert_eq!(bitop(BitOperation::And, &[vec![0xff, 0x0f], vec![0x0f]]), [0x0f, 0x00]);
    }

    #[test]
    fn bitfields_wrap_saturate_and_fail() {
        let i8 = FieldType { signed: true, bits: 8 };
        let u2 = FieldType { signed: false, bits: 2 };
        let mut value = Vec::new();
        assert_eq!(
            bitfield(&mut value, FieldOp::Set { kind: i8, offset: 0, value: 100, overflow: Overflow::Wrap }),
            Some(0)
        );
        assert_eq!(
            bitfield(&mut value, FieldOp::IncrBy { kind: i8, offset: 0, delta: 100, overflow: Overflow::Wrap }),
            Some(-56)
        );
        assert_eq!(
            bitfield(&mut value, FieldOp::IncrBy { kind: i8, offset: 0, delta: -100, overflow: Overflow::Sat }),
            Some(-128)
        );
        assert_eq!(
            bitfield(&mut value, FieldOp::IncrBy { kind: u2, offset: 100, delta: 5, overflow: Overflow::Fail }),
            None
        );
        assert_eq!(
            bitfield(&mut value, FieldOp::IncrBy { kind: u2, offset: 100, delta: 5, overflow: Overflow::Wrap }),
            Some(1)
        );
        assert_eq!(bitfield(&mut value, FieldOp::Get { kind: u2, offset: 100 }), Some(1));
    }
}
