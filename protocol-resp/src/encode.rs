//! Encoding replies for the connection's protocol version, straight into
//! the connection's output buffer (no intermediate frames: replies of
//! hundreds of elements, LRANGE's, are encoded without allocating).
//!
//! RESP3 types fall back to their RESP2 forms as Redis does: a map becomes a
//! flat array, a set or push an array, a double a bulk string (`%.17g`), a
//! boolean 1 or 0, a verbatim string a bulk string, nil a null bulk string
//! (`$-1`) or, for a missing array, a null array (`*-1`).

use bytes::{BufMut, BytesMut};
use kv::Reply;

/// The RESP version a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Resp2,
    Resp3,
}

impl Protocol {
    pub fn version(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

/// Appends `reply`, encoded for `protocol`, to `out`.
pub fn encode(out: &mut BytesMut, reply: &Reply, protocol: Protocol) {
    let resp3 = protocol == Protocol::Resp3;
    match reply {
        Reply::Status(text) => line(out, b'+', text.as_bytes()),
        Reply::Error(error) => line(out, b'-', error.to_string().as_bytes()),
        Reply::Int(n) => number(out, b':', *n),
        Reply::Bulk(bytes) => bulk(out, bytes),
        Reply::Nil if resp3 => out.put_slice(b"_\r\n"),
        // `Blocked` never leaves `kv` (its blocking calls wait instead); if
        // it did, the client would read what a timed-out pop answers.
        Reply::NilArray | Reply::Blocked if resp3 => out.put_slice(b"_\r\n"),
        Reply::Nil => out.put_slice(b"$-1\r\n"),
        Reply::NilArray | Reply::Blocked => out.put_slice(b"*-1\r\n"),
        Reply::Array(items) => aggregate(out, b'*', items, protocol),
        Reply::Bulks { buffer, lengths } => {
            number(out, b'*', lengths.len() as i64);
            let mut at = 0;
            for &len in lengths {
                let len = len as usize;
                bulk(out, &buffer[at..at + len]);
                at += len;
            }
        }
        Reply::Set(items) => aggregate(out, if resp3 { b'~' } else { b'*' }, items, protocol),
        Reply::Push(items) => aggregate(out, if resp3 { b'>' } else { b'*' }, items, protocol),
        Reply::Sequence(replies) => replies.iter().for_each(|reply| encode(out, reply, protocol)),
        Reply::Map(pairs) => {
            if resp3 {
                number(out, b'%', pairs.len() as i64);
            } else {
                number(out, b'*', 2 * pairs.len() as i64);
            }
            for (key, value) in pairs {
                encode(out, key, protocol);
                encode(out, value, protocol);
            }
        }
        Reply::KeyedArrays(pairs) => {
            number(out, if resp3 { b'%' } else { b'*' }, pairs.len() as i64);
            for (key, value) in pairs {
                if !resp3 {
                    out.put_slice(b"*2\r\n");
                }
                encode(out, key, protocol);
                encode(out, value, protocol);
            }
        }
        Reply::Pairs(pairs) => {
            number(out, b'*', if resp3 { pairs.len() } else { 2 * pairs.len() } as i64);
            for (key, value) in pairs {
                if resp3 {
                    out.put_slice(b"*2\r\n");
                }
                encode(out, key, protocol);
                encode(out, value, protocol);
            }
        }
        Reply::Double(value) if resp3 => line(out, b',', resp3_double(*value).as_bytes()),
        Reply::Double(value) => bulk(out, kv::format_score(*value).as_bytes()),
        Reply::Bool(value) if resp3 => out.put_slice(if *value { b"#t\r\n" } else { b"#f\r\n" }),
        Reply::Bool(value) => number(out, b':', i64::from(*value)),
        Reply::Verbatim(text) if resp3 => {
            number(out, b'=', text.len() as i64 + 4);
            out.put_slice(b"txt:");
            out.put_slice(text.as_bytes());
            out.put_slice(b"\r\n");
        }
        Reply::Verbatim(text) => bulk(out, text.as_bytes()),
        Reply::HumanDouble(value) if resp3 => line(out, b',', kv::number::format_human(*value).as_bytes()),
        Reply::HumanDouble(value) => bulk(out, kv::number::format_human(*value).as_bytes()),
    }
}

/// `<kind><text>\r\n`; CR and LF in the text become spaces, so a line
/// can never break the framing.
fn line(out: &mut BytesMut, kind: u8, text: &[u8]) {
    out.put_u8(kind);
    if text.iter().any(|&b| b == b'\r' || b == b'\n') {
        out.extend(text.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
    } else {
        out.put_slice(text);
    }
    out.put_slice(b"\r\n");
}

/// `<kind><n>\r\n`.
fn number(out: &mut BytesMut, kind: u8, n: i64) {
    out.put_u8(kind);
    let mut digits = itoa::Buffer::new();
    out.put_slice(digits.format(n).as_bytes());
    out.put_slice(b"\r\n");
}

fn bulk(out: &mut BytesMut, bytes: &[u8]) {
    number(out, b'$', bytes.len() as i64);
    out.put_slice(bytes);
    out.put_slice(b"\r\n");
}

fn aggregate(out: &mut BytesMut, kind: u8, items: &[Reply], protocol: Protocol) {
    number(out, kind, items.len() as i64);
    for item in items {
        encode(out, item, protocol);
    }
}

/// A RESP3 double: `inf`, `-inf`, `nan`, or the shortest text that reads
/// back as the same value.
fn resp3_double(value: f64) -> String {
    if value.is_nan() {
        "nan".into()
    } else if value.is_infinite() {
        if value > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv::CommandError;

    fn encoded(reply: Reply, protocol: Protocol) -> String {
        let mut out = BytesMut::new();
        encode(&mut out, &reply, protocol);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn replies_encode_for_each_protocol() {
        let map = Reply::Map(vec![(Reply::bulk("proto"), Reply::Int(3))]);
        assert_eq!(encoded(map.clone(), Protocol::Resp2), "*2\r\n$5\r\nproto\r\n:3\r\n");
        assert_eq!(encoded(map, Protocol::Resp3), "%1\r\n$5\r\nproto\r\n:3\r\n");
        assert_eq!(encoded(Reply::Nil, Protocol::Resp2), "$-1\r\n");
        assert_eq!(encoded(Reply::NilArray, Protocol::Resp2), "*-1\r\n");
        assert_eq!(encoded(Reply::Nil, Protocol::Resp3), "_\r\n");
        assert_eq!(encoded(Reply::Bool(true), Protocol::Resp2), ":1\r\n");
        assert_eq!(encoded(Reply::Bool(true), Protocol::Resp3), "#t\r\n");
        assert_eq!(encoded(Reply::ok(), Protocol::Resp2), "+OK\r\n");
        assert_eq!(
            encoded(Reply::Error(CommandError::WrongType), Protocol::Resp2),
            "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
        );
        assert_eq!(encoded(Reply::Verbatim("a".into()), Protocol::Resp3), "=5\r\ntxt:a\r\n");
        let pairs = Reply::Pairs(vec![(Reply::bulk("m"), Reply::Double(1.5))]);
        assert_eq!(encoded(pairs.clone(), Protocol::Resp2), "*2\r\n$1\r\nm\r\n$3\r\n1.5\r\n");
        assert_eq!(encoded(pairs, Protocol::Resp3), "*1\r\n*2\r\n$1\r\nm\r\n,1.5\r\n");
        let bulks = Reply::Bulks { buffer: bytes::Bytes::from_static(b"abcd"), lengths: vec![1, 0, 3] };
        assert_eq!(encoded(bulks, Protocol::Resp3), "*3\r\n$1\r\na\r\n$0\r\n\r\n$3\r\nbcd\r\n");
        let push = Reply::Push(vec![Reply::bulk("message"), Reply::Int(-2)]);
        assert_eq!(encoded(push.clone(), Protocol::Resp2), "*2\r\n$7\r\nmessage\r\n:-2\r\n");
        assert_eq!(encoded(push, Protocol::Resp3), ">2\r\n$7\r\nmessage\r\n:-2\r\n");
        assert_eq!(encoded(Reply::Set(vec![]), Protocol::Resp3), "~0\r\n");
        assert_eq!(encoded(Reply::Double(f64::NEG_INFINITY), Protocol::Resp3), ",-inf\r\n");
        assert_eq!(encoded(Reply::Status("a\r\nb".into()), Protocol::Resp2), "+a  b\r\n");
    }
}
