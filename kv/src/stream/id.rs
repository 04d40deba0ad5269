//! Stream entry IDs: `<ms>-<seq>`, two `u64`s ordered as a pair, and how
//! commands spell them (Redis 7.0's `streamGenericParseIDOrReply`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::CommandError;

/// A stream entry ID. The derived order (ms, then seq) is the stream's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

/// How an ID argument was written when its sequence may be left to the
/// server (XADD's `<ms>-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedId {
    pub id: StreamId,
    /// False for `<ms>-*`: the sequence is the server's to choose.
    pub seq_given: bool,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId { ms: u64::MAX, seq: u64::MAX };

    /// The ID right after this one, if there is one.
    pub fn next(self) -> Option<StreamId> {
        match (self.ms, self.seq) {
            (u64::MAX, u64::MAX) => None,
            (ms, u64::MAX) => Some(StreamId { ms: ms + 1, seq: 0 }),
            (ms, seq) => Some(StreamId { ms, seq: seq + 1 }),
        }
    }

    /// The ID right before this one, if there is one.
    pub fn prev(self) -> Option<StreamId> {
        match (self.ms, self.seq) {
            (0, 0) => None,
            (ms, 0) => Some(StreamId { ms: ms - 1, seq: u64::MAX }),
            (ms, seq) => Some(StreamId { ms, seq: seq - 1 }),
        }
    }

    /// The 16 bytes whose byte order is the IDs' order.
    pub fn encode(self) -> [u8; 16] {
        let mut out = [0; 16];
        out[..8].copy_from_slice(&self.ms.to_be_bytes());
        out[8..].copy_from_slice(&self.seq.to_be_bytes());
        out
    }

    /// Reads [`StreamId::encode`]'s bytes from the start of `bytes`.
    pub fn decode(bytes: &[u8]) -> Option<StreamId> {
        let ms = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let seq = u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?);
        Some(StreamId { ms, seq })
    }

    /// Parses an ID argument: `-` and `+` (unless `strict`), `<ms>` (its
    /// sequence `missing_seq`), `<ms>-<seq>`, and with `allow_auto_seq`
    /// `<ms>-*`.
    pub fn parse(text: &[u8], missing_seq: u64, strict: bool, allow_auto_seq: bool) -> Result<ParsedId, CommandError> {
        let invalid = || CommandError::Other("ERR Invalid stream ID specified as stream command argument".into());
        if text.len() > 127 {
            return Err(invalid());
        }
        let given = |id| ParsedId { id, seq_given: true };
        match text {
            b"-" if !strict => return Ok(given(StreamId::MIN)),
            b"+" if !strict => return Ok(given(StreamId::MAX)),
            b"-" | b"+" => return Err(invalid()),
            _ => {}
        }
        let (ms, seq) = match text.iter().position(|&b| b == b'-') {
            Some(dash) => (&text[..dash], Some(&text[dash + 1..])),
            None => (text, None),
        };
        let ms = parse_u64(ms).ok_or_else(invalid)?;
        Ok(match seq {
            None => given(StreamId { ms, seq: missing_seq }),
            Some(b"*") if allow_auto_seq => ParsedId { id: StreamId { ms, seq: 0 }, seq_given: false },
            Some(seq) => given(StreamId { ms, seq: parse_u64(seq).ok_or_else(invalid)? }),
        })
    }
}

/// Redis's `string2ull`: a decimal `u64`, with `strtoull`'s tolerance of
/// leading spaces and a `+` sign but not of a minus or trailing bytes.
fn parse_u64(text: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(text).ok()?;
    let trimmed = text.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let digits = trimmed.strip_prefix('+').unwrap_or(trimmed);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    #[test]
    fn neighbours_wrap_at_the_sequence_and_stop_at_the_ends() {
        assert_eq!(id(1, u64::MAX).next(), Some(id(2, 0)));
        assert_eq!(id(2, 0).prev(), Some(id(1, u64::MAX)));
        assert_eq!(StreamId::MAX.next(), None);
        assert_eq!(StreamId::MIN.prev(), None);
        assert!(id(1, 5) < id(2, 0) && id(2, 0) < id(2, 1));
        assert!(id(1, 5).encode() < id(2, 0).encode());
        assert_eq!(StreamId::decode(&id(7, 9).encode()), Some(id(7, 9)));
    }

    #[test]
    fn parses_as_redis_does() {
        let parse = |text: &str| StreamId::parse(text.as_bytes(), 0, false, false).map(|p| p.id);
        assert_eq!(parse("5"), Ok(id(5, 0)));
        assert_eq!(parse("5-3"), Ok(id(5, 3)));
        assert_eq!(parse("-"), Ok(StreamId::MIN));
        assert_eq!(parse("+"), Ok(StreamId::MAX));
        assert_eq!(parse("18446744073709551615-18446744073709551615"), Ok(StreamId::MAX));
        for bad in ["", "a", "5-", "-5", "5-x", "18446744073709551616", "5-*", "1.5", "5-3-1"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(StreamId::parse(b"+", 0, true, false).is_err());
        assert_eq!(StreamId::parse(b"7", u64::MAX, false, false).unwrap().id, id(7, u64::MAX));
        let auto = StreamId::parse(b"7-*", 0, true, true).unwrap();
        assert_eq!((auto.id, auto.seq_given), (id(7, 0), false));
        assert_eq!(id(12, 3).to_string(), "12-3");
    }
}
