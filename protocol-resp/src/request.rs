//! Splitting the input stream into requests, with Redis's limits.
//!
//! A request is either a multibulk (`*<n>\r\n` then `n` bulk strings, what
//! every client library sends) or an inline command (a text line, what a
//! person types into telnet). Before a multibulk is buffered whole, its
//! headers are checked as they arrive, so a client announcing a 4 GiB
//! argument is refused at once instead of being buffered: this is where
//! `proto-max-bulk-len`, the argument count limit and the stricter limits for
//! unauthenticated clients apply. A complete multibulk is then decoded by
//! `redis-protocol`.
//!
//! Every error is final for the connection: Redis answers
//! `-ERR Protocol error: …` and closes, and so do we.

use bytes::{Buf, Bytes, BytesMut};

/// The longest inline request or header line, as Redis's `PROTO_INLINE_MAX_SIZE`.
pub const MAX_INLINE_LEN: usize = 64 * 1024;
/// Unauthenticated clients may send at most this many arguments…
const UNAUTHENTICATED_MAX_ARGS: i64 = 10;
/// …each at most this long.
const UNAUTHENTICATED_MAX_BULK: i64 = 16 * 1024;

/// Limits on what a client may send.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `proto-max-bulk-len`: the longest argument.
    pub max_bulk_len: usize,
    /// The most arguments in one request.
    pub max_args: usize,
    /// Whether the client has authenticated (or needs not).
    pub authenticated: bool,
}

/// A framing violation; the text follows `Protocol error: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

/// Incremental request parser for one connection.
#[derive(Debug, Default)]
pub struct RequestParser {
    /// Progress through the headers of the multibulk at the buffer's start,
    /// so that a large request arriving in pieces is scanned once.
    scan: Option<MultibulkScan>,
}

#[derive(Debug, Clone, Copy)]
struct MultibulkScan {
    /// Offset of the next unchecked header (or of the end, when done).
    position: usize,
    /// Arguments whose header has not been checked yet.
    remaining: usize,
}

impl RequestParser {
    /// Takes the next complete request from the front of `buffer`, if any.
    /// Returns `Ok(Some(args))` with at least one argument; empty requests
    /// are skipped silently, as Redis does.
    pub fn next(&mut self, buffer: &mut BytesMut, limits: Limits) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            if buffer.is_empty() {
                return Ok(None);
            }
            let request = if buffer[0] == b'*' { self.multibulk(buffer, limits)? } else { inline(buffer)? };
            match request {
                Some(args) if args.is_empty() => continue,
                other => return Ok(other),
            }
        }
    }

    fn multibulk(&mut self, buffer: &mut BytesMut, limits: Limits) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let mut scan = match self.scan {
            Some(scan) => scan,
            None => {
                let Some(line_end) = find_crlf(buffer, 0) else {
                    return too_long(buffer.len(), "too big mbulk count string");
                };
                let count = parse_len(&buffer[1..line_end]).ok_or_else(|| error("invalid multibulk length"))?;
                if count <= 0 {
                    buffer.advance(line_end + 2);
                    return Ok(Some(Vec::new()));
                }
                if !limits.authenticated && count > UNAUTHENTICATED_MAX_ARGS {
                    return Err(error("unauthenticated multibulk length"));
                }
                if count > limits.max_args as i64 {
                    return Err(error("invalid multibulk length"));
                }
                MultibulkScan { position: line_end + 2, remaining: count as usize }
            }
        };
        while scan.remaining > 0 {
            if scan.position >= buffer.len() {
                self.scan = Some(scan);
                return Ok(None);
            }
            if buffer[scan.position] != b'$' {
                return Err(error(&format!("expected '$', got '{}'", buffer[scan.position] as char)));
            }
            let Some(line_end) = find_crlf(buffer, scan.position) else {
                self.scan = Some(scan);
                return too_long(buffer.len() - scan.position, "too big bulk count string");
            };
            let len = parse_len(&buffer[scan.position + 1..line_end]).ok_or_else(|| error("invalid bulk length"))?;
            if len < 0 || len as u64 > limits.max_bulk_len as u64 {
                return Err(error("invalid bulk length"));
            }
            if !limits.authenticated && len > UNAUTHENTICATED_MAX_BULK {
                return Err(error("unauthenticated bulk length"));
            }
            scan.position = line_end + 2 + len as usize + 2;
            scan.remaining -= 1;
        }
        if buffer.len() < scan.position {
            // Headers are all valid; wait for the last argument's bytes.
            buffer.reserve(scan.position - buffer.len());
            self.scan = Some(scan);
            return Ok(None);
        }
        self.scan = None;
        let frame = buffer.split_to(scan.position).freeze();
        decode_multibulk(&frame).map(Some)
    }
}

/// Decodes a complete, header-checked multibulk with `redis-protocol`.
fn decode_multibulk(frame: &Bytes) -> Result<Vec<Bytes>, ProtocolError> {
    use redis_protocol::resp2::types::BytesFrame;
    match redis_protocol::resp2::decode::decode_bytes(frame) {
        Ok(Some((BytesFrame::Array(items), used))) if used == frame.len() => items
            .into_iter()
            .map(|item| match item {
                BytesFrame::BulkString(bytes) => Ok(bytes),
                _ => Err(error("expected a bulk string")),
            })
            .collect(),
        Ok(_) => Err(error("malformed multibulk request")),
        Err(e) => Err(error(&format!("malformed multibulk request: {}", e.details()))),
    }
}

/// Takes one inline request (a line) from the front of `buffer`.
fn inline(buffer: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let Some(newline) = buffer.iter().position(|&b| b == b'\n') else {
        return too_long(buffer.len(), "too big inline request");
    };
    if newline > MAX_INLINE_LEN {
        return Err(error("too big inline request"));
    }
    let line = buffer.split_to(newline + 1);
    let line = line.strip_suffix(b"\n").unwrap_or(&line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    split_args(line).map(Some).ok_or_else(|| error("unbalanced quotes in request"))
}

/// Splits an inline line into arguments like Redis's `sdssplitargs`:
/// spaces separate, `"…"` allows escapes (`\n`, `\xHH`, …), `'…'` allows `\'`.
/// Returns `None` for unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == line.len() {
            return Some(args);
        }
        let mut current = Vec::new();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            if in_double {
                let c = *line.get(i)?;
                if c == b'\\' && i + 3 < line.len() && line[i + 1] == b'x' && is_hex(line[i + 2]) && is_hex(line[i + 3])
                {
                    current.push(hex(line[i + 2]) * 16 + hex(line[i + 3]));
                    i += 3;
                } else if c == b'\\' && i + 1 < line.len() {
                    i += 1;
                    current.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    // A closing quote must be followed by a space or the end.
                    if i + 1 < line.len() && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    in_double = false;
                    i += 1;
                    break;
                } else {
                    current.push(c);
                }
            } else if in_single {
                let c = *line.get(i)?;
                if c == b'\\' && i + 1 < line.len() && line[i + 1] == b'\'' {
                    i += 1;
                    current.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < line.len() && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    in_single = false;
                    i += 1;
                    break;
                } else {
                    current.push(c);
                }
            } else {
                match line.get(i) {
                    None => break,
                    Some(c) if c.is_ascii_whitespace() => break,
                    Some(b'"') => in_double = true,
                    Some(b'\'') => in_single = true,
                    Some(&c) => current.push(c),
                }
            }
            i += 1;
        }
        if in_double || in_single {
            return None;
        }
        args.push(Bytes::from(current));
    }
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

fn hex(b: u8) -> u8 {
    (b as char).to_digit(16).expect("checked hex digit") as u8
}

fn find_crlf(buffer: &[u8], from: usize) -> Option<usize> {
    let window = &buffer[from..buffer.len().min(from + MAX_INLINE_LEN + 2)];
    window.windows(2).position(|w| w == b"\r\n").map(|p| from + p)
}

/// A length in a header: a decimal integer as Redis's `string2ll` reads it.
fn parse_len(digits: &[u8]) -> Option<i64> {
    kv::number::parse_i64(digits)
}

/// Waiting for more bytes is fine until a line grows past the inline limit.
fn too_long<T>(pending: usize, what: &str) -> Result<Option<T>, ProtocolError> {
    if pending > MAX_INLINE_LEN {
        Err(error(what))
    } else {
        Ok(None)
    }
}

fn error(text: &str) -> ProtocolError {
    ProtocolError(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { max_bulk_len: 1024, max_args: 100, authenticated: true };

    fn parse_all(input: &[u8], limits: Limits) -> Result<Vec<Vec<String>>, ProtocolError> {
        let mut parser = RequestParser::default();
        let mut buffer = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(args) = parser.next(&mut buffer, limits)? {
            out.push(args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect());
        }
        Ok(out)
    }

    #[test]
    fn pipelined_multibulk_requests_split_in_order() {
        let input =
            b"*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\n*0\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\n";
        assert_eq!(parse_all(input, LIMITS).unwrap(), vec![vec!["PING"], vec!["SET", "a", "b"], vec!["GET", "a"]]);
    }

    #[test]
    fn a_request_arriving_byte_by_byte_is_assembled_once() {
        let input = b"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n";
        let mut parser = RequestParser::default();
        let mut buffer = BytesMut::new();
        for (i, byte) in input.iter().enumerate() {
            buffer.extend_from_slice(&[*byte]);
            let parsed = parser.next(&mut buffer, LIMITS).unwrap();
            if i + 1 < input.len() {
                assert_eq!(parsed, None, "complete too early at byte {i}");
            } else {
                assert_eq!(parsed, Some(vec![Bytes::from("ECHO"), Bytes::from("hello")]));
            }
        }
        assert!(buffer.is_empty());
    }

    #[test]
    fn inline_requests_follow_sdssplitargs() {
        let input = b"SET k \"a b\\x41\\n\"\r\nGET 'it\\'s'\nPING\r\n\r\n";
        assert_eq!(
            parse_all(input, LIMITS).unwrap(),
            vec![vec!["SET", "k", "a bA\n"], vec!["GET", "it's"], vec!["PING"]]
        );
        assert_eq!(parse_all(b"SET \"abc\r\n", LIMITS), Err(error("unbalanced quotes in request")));
        assert_eq!(parse_all(b"SET \"abc\"x\r\n", LIMITS), Err(error("unbalanced quotes in request")));
    }

    #[test]
    fn limits_are_enforced_before_buffering() {
        // Announced, not sent: refused from the header alone.
        assert_eq!(parse_all(b"*1\r\n$2000\r\n", LIMITS), Err(error("invalid bulk length")));
        assert_eq!(parse_all(b"*101\r\n", LIMITS), Err(error("invalid multibulk length")));
        assert_eq!(parse_all(b"*abc\r\n", LIMITS), Err(error("invalid multibulk length")));
        assert_eq!(parse_all(b"*1\r\n$-5\r\n", LIMITS), Err(error("invalid bulk length")));
        assert_eq!(parse_all(b"*1\r\n:5\r\n", LIMITS), Err(error("expected '$', got ':'")));
        let long = vec![b'a'; MAX_INLINE_LEN + 10];
        assert_eq!(parse_all(&long, LIMITS), Err(error("too big inline request")));
        let unauthenticated = Limits { authenticated: false, ..LIMITS };
        assert_eq!(parse_all(b"*11\r\n", unauthenticated), Err(error("unauthenticated multibulk length")));
        assert_eq!(
            parse_all(b"*1\r\n$16385\r\n", Limits { max_bulk_len: 1 << 20, ..unauthenticated }),
            Err(error("unauthenticated bulk length"))
        );
    }

    #[test]
    fn the_two_bytes_after_a_bulk_are_skipped_unchecked_as_in_redis() {
        assert_eq!(parse_all(b"*1\r\n$4\r\nPINGxx", LIMITS).unwrap(), vec![vec!["PING"]]);
    }
}
