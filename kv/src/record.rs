//! The value format of `kv_data`: one record per Redis key.
//!
//! ```text
//! type: u8 | expire_at_ms: u64 BE (0 = no expiry) | payload
//! ```
//!
//! For a string the payload is the value itself. Composite types (hashes,
//! lists, sets, sorted sets) will put their version and size in the payload
//! and keep their elements under versioned sub-keys in other families.

use bytes::Bytes;

use crate::error::{Error, Result};

const HEADER_LEN: usize = 9;

/// The Redis type of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    String,
}

impl KeyType {
    fn code(self) -> u8 {
        match self {
            KeyType::String => 1,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(KeyType::String),
            _ => None,
        }
    }

    /// The name `TYPE` answers.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::String => "string",
        }
    }
}

/// A decoded `kv_data` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: KeyType,
    /// Absolute expiry in Unix milliseconds.
    pub expire_at_ms: Option<u64>,
    pub value: Bytes,
}

impl Record {
    /// A string record without expiry.
    pub fn string(value: Bytes) -> Self {
        Record { kind: KeyType::String, expire_at_ms: None, value }
    }

    /// True if the key no longer exists at `now_ms`.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at_ms.is_some_and(|at| at <= now_ms)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.value.len());
        out.push(self.kind.code());
        out.extend_from_slice(&self.expire_at_ms.unwrap_or(0).to_be_bytes());
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
        let at = u64::from_be_bytes(bytes[1..HEADER_LEN].try_into().expect("8 bytes"));
        Ok(Record { kind, expire_at_ms: (at != 0).then_some(at), value: bytes.slice(HEADER_LEN..) })
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
        for record in [
            Record::string(Bytes::from_static(b"")),
            Record { kind: KeyType::String, expire_at_ms: Some(1_700_000_000_000), value: Bytes::from_static(b"v") },
        ] {
            assert_eq!(Record::decode(Bytes::from(record.encode())).unwrap(), record);
        }
        assert!(Record::decode(Bytes::from_static(&[1, 0])).is_err());
        assert!(Record::decode(Bytes::from_static(&[9, 0, 0, 0, 0, 0, 0, 0, 0])).is_err());
    }
}
