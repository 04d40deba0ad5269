//! Bit commands on strings: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP,
//! BITFIELD, BITFIELD_RO.

use kv::bits::{BitOperation, FieldOp, FieldType, Overflow, MAX_BIT_OFFSET};
use kv::{CommandError, ReadOp, WriteOp};

use super::flags::{DENYOOM, FAST, READONLY, WRITE};
use super::{read, spec, write, Outcome, Spec};
use crate::args::Args;
use crate::session::Session;

type Result = std::result::Result<Outcome, CommandError>;
type Parsed<T> = std::result::Result<T, CommandError>;

fn other(text: &str) -> CommandError {
    CommandError::Other(text.into())
}

fn bit_offset(bytes: &[u8]) -> Parsed<u64> {
    kv::number::parse_i64(bytes)
        .filter(|o| (0..=MAX_BIT_OFFSET as i64).contains(o))
        .map(|o| o as u64)
        .ok_or_else(|| other("ERR bit offset is not an integer or out of range"))
}

fn setbit(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let offset = bit_offset(&args.next()?)?;
    let value = match &args.next()?[..] {
        b"0" => false,
        b"1" => true,
        _ => return Err(other("ERR bit is not an integer or out of range")),
    };
    write(session, WriteOp::SetBit { key, offset, value })
}

fn getbit(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let offset = bit_offset(&args.next()?)?;
    read(session, ReadOp::GetBit { key, offset })
}

/// `BYTE` or `BIT` (default BYTE); true for BIT.
fn unit(args: &mut Args) -> Parsed<bool> {
    match args.next_opt() {
        None => Ok(false),
        Some(unit) => match String::from_utf8_lossy(&unit).to_ascii_uppercase().as_str() {
            "BYTE" => Ok(false),
            "BIT" => Ok(true),
            _ => Err(CommandError::Syntax),
        },
    }
}

fn bitcount(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let range = match args.remaining() {
        0 => None,
        1 => return Err(CommandError::Syntax),
        _ => {
            let (start, end) = (args.next_i64()?, args.next_i64()?);
            let bit_mode = unit(args)?;
            args.finish()?;
            Some((start, end, bit_mode))
        }
    };
    read(session, ReadOp::BitCount { key, range })
}

fn bitpos(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let bit = match &args.next()?[..] {
        b"0" => 0,
        b"1" => 1,
        _ => return Err(other("ERR The bit argument must be 1 or 0.")),
    };
    let start = if args.remaining() > 0 { args.next_i64()? } else { 0 };
    let end = if args.remaining() > 0 { Some(args.next_i64()?) } else { None };
    let bit_mode = unit(args)?;
    args.finish()?;
    read(session, ReadOp::BitPos { key, bit, start, end, bit_mode })
}

fn bitop(session: &mut Session, args: &mut Args) -> Result {
    let operation = match args.next_keyword()?.as_str() {
        "AND" => BitOperation::And,
        "OR" => BitOperation::Or,
        "XOR" => BitOperation::Xor,
        "NOT" => BitOperation::Not,
        _ => return Err(CommandError::Syntax),
    };
    let destination = args.next()?;
    let keys = args.rest();
    if operation == BitOperation::Not && keys.len() != 1 {
        return Err(other("ERR BITOP NOT must be called with a single source key."));
    }
    write(session, WriteOp::BitOp { operation, destination, keys })
}

fn field_type(bytes: &[u8]) -> Parsed<FieldType> {
    let invalid =
        || other("ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.");
    let signed = match bytes.first() {
        Some(b'i' | b'I') => true,
        Some(b'u' | b'U') => false,
        _ => return Err(invalid()),
    };
    let bits = kv::number::parse_i64(&bytes[1..]).ok_or_else(invalid)?;
    let max = if signed { 64 } else { 63 };
    if !(1..=max).contains(&bits) {
        return Err(invalid());
    }
    Ok(FieldType { signed, bits: bits as u32 })
}

/// A field offset: `N` bits, or `#N` fields of the type's width.
fn field_offset(bytes: &[u8], kind: FieldType) -> Parsed<u64> {
    let invalid = || other("ERR bit offset is not an integer or out of range");
    let offset = match bytes.strip_prefix(b"#") {
        Some(index) => bit_offset(index)?.checked_mul(u64::from(kind.bits)).ok_or_else(invalid)?,
        None => bit_offset(bytes)?,
    };
    if offset + u64::from(kind.bits) - 1 > MAX_BIT_OFFSET {
        return Err(invalid());
    }
    Ok(offset)
}

fn field_ops(args: &mut Args, read_only: bool) -> Parsed<Vec<FieldOp>> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    while args.remaining() > 0 {
        let sub = args.next_keyword()?;
        if read_only && sub != "GET" {
            return Err(other("ERR BITFIELD_RO only supports the GET subcommand"));
        }
        match sub.as_str() {
            "GET" if args.remaining() >= 2 => {
                let kind = field_type(&args.next()?)?;
                ops.push(FieldOp::Get { kind, offset: field_offset(&args.next()?, kind)? });
            }
            "SET" if args.remaining() >= 3 => {
                let kind = field_type(&args.next()?)?;
                let offset = field_offset(&args.next()?, kind)?;
                ops.push(FieldOp::Set { kind, offset, value: args.next_i64()?, overflow });
            }
            "INCRBY" if args.remaining() >= 3 => {
                let kind = field_type(&args.next()?)?;
                let offset = field_offset(&args.next()?, kind)?;
                ops.push(FieldOp::IncrBy { kind, offset, delta: args.next_i64()?, overflow });
            }
            "OVERFLOW" if args.remaining() >= 1 => {
                overflow = match args.next_keyword()?.as_str() {
                    "WRAP" => Overflow::Wrap,
                    "SAT" => Overflow::Sat,
                    "FAIL" => Overflow::Fail,
                    _ => return Err(other("ERR Invalid OVERFLOW type specified")),
                };
            }
            _ => return Err(CommandError::Syntax),
        }
    }
    Ok(ops)
}

fn bitfield(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let ops = field_ops(args, false)?;
    if ops.iter().any(FieldOp::writes) {
        write(session, WriteOp::BitField { key, ops })
    } else {
        read(session, ReadOp::BitFieldGet { key, ops })
    }
}

fn bitfield_ro(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let ops = field_ops(args, true)?;
    read(session, ReadOp::BitFieldGet { key, ops })
}

pub(super) const COMMANDS: &[Spec] = &[
    spec!(
        "setbit",
        4,
        WRITE | DENYOOM,
        1,
        1,
        1,
        "bitmap",
        "2.2.0",
        "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.",
        setbit
    ),
    spec!("getbit", 3, READONLY | FAST, 1, 1, 1, "bitmap", "2.2.0", "Returns a bit value by offset.", getbit),
    spec!(
        "bitcount",
        -2,
        READONLY,
        1,
        1,
        1,
        "bitmap",
        "2.6.0",
        "Counts the number of set bits (population counting) in a string.",
        bitcount
    ),
    spec!(
        "bitpos",
        -3,
        READONLY,
        1,
        1,
        1,
        "bitmap",
        "2.8.7",
        "Finds the first set (1) or clear (0) bit in a string.",
        bitpos
    ),
    spec!(
        "bitop",
        -4,
        WRITE | DENYOOM,
        2,
        -1,
        1,
        "bitmap",
        "2.6.0",
        "Performs bitwise operations on multiple strings, and stores the result.",
        bitop
    ),
    spec!(
        "bitfield",
        -2,
        WRITE | DENYOOM,
        1,
        1,
        1,
        "bitmap",
        "3.2.0",
        "Performs arbitrary bitfield integer operations on strings.",
        bitfield
    ),
    spec!(
        "bitfield_ro",
        -2,
        READONLY | FAST,
        1,
        1,
        1,
        "bitmap",
        "6.0.0",
        "Performs arbitrary read-only bitfield integer operations on strings.",
        bitfield_ro
    ),
];
