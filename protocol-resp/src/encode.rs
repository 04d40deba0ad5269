//! Encoding replies for the connection's protocol version with
//! `redis-protocol`.
//!
//! RESP3 types fall back to their RESP2 forms as Redis does: a map becomes a
//! flat array, a set an array, a double a bulk string, a boolean 1 or 0, a
//! verbatim string a bulk string.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use kv::Reply;
use redis_protocol::bytes_utils::Str;
use redis_protocol::resp2::types::BytesFrame as Frame2;
use redis_protocol::resp3::types::{BytesFrame as Frame3, VerbatimStringFormat};

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
    match (protocol, reply) {
        (_, Reply::Sequence(replies)) => replies.iter().for_each(|reply| encode(out, reply, protocol)),
        // RESP2 has a null array distinct from the null bulk string, which
        // redis-protocol's RESP2 frames cannot express.
        (Protocol::Resp2, Reply::NilArray) => out.extend_from_slice(b"*-1\r\n"),
        (Protocol::Resp2, reply) => {
            redis_protocol::resp2::encode::extend_encode(out, &resp2(reply), false).expect("encoding into memory");
        }
        (Protocol::Resp3, reply) => {
            redis_protocol::resp3::encode::complete::extend_encode(out, &resp3(reply), false)
                .expect("encoding into memory");
        }
    }
}

/// A status line's bytes, borrowed when the text is static.
fn status_bytes(text: Cow<'static, str>) -> Bytes {
    match text {
        Cow::Borrowed(text) => Bytes::from_static(text.as_bytes()),
        Cow::Owned(text) => Bytes::from(text),
    }
}

fn error_line(error: &kv::CommandError) -> Str {
    Str::from(error.to_string())
}

fn resp2(reply: &Reply) -> Frame2 {
    match reply {
        Reply::Status(text) => Frame2::SimpleString(status_bytes(text.clone())),
        Reply::Error(error) => Frame2::Error(error_line(error)),
        Reply::Int(n) => Frame2::Integer(*n),
        Reply::Bulk(bytes) => Frame2::BulkString(bytes.clone()),
        Reply::Nil | Reply::NilArray => Frame2::Null,
        Reply::Array(items) | Reply::Set(items) | Reply::Push(items) => {
            Frame2::Array(items.iter().map(resp2).collect())
        }
        Reply::Sequence(_) => unreachable!("encode() writes a sequence reply by reply"),
        Reply::Map(pairs) | Reply::Pairs(pairs) => {
            Frame2::Array(pairs.iter().flat_map(|(k, v)| [resp2(k), resp2(v)]).collect())
        }
        Reply::Double(value) => Frame2::BulkString(Bytes::from(kv::format_score(*value))),
        Reply::Bool(value) => Frame2::Integer(i64::from(*value)),
        Reply::Verbatim(text) => Frame2::BulkString(Bytes::from(text.clone())),
    }
}

fn resp3(reply: &Reply) -> Frame3 {
    match reply {
        Reply::Status(text) => Frame3::SimpleString { data: status_bytes(text.clone()), attributes: None },
        Reply::Error(error) => Frame3::SimpleError { data: error_line(error), attributes: None },
        Reply::Int(n) => Frame3::Number { data: *n, attributes: None },
        Reply::Bulk(bytes) => Frame3::BlobString { data: bytes.clone(), attributes: None },
        Reply::Nil | Reply::NilArray => Frame3::Null,
        Reply::Array(items) => Frame3::Array { data: items.iter().map(resp3).collect(), attributes: None },
        Reply::Set(items) => Frame3::Set { data: items.iter().map(resp3).collect(), attributes: None },
        Reply::Push(items) => Frame3::Push { data: items.iter().map(resp3).collect(), attributes: None },
        Reply::Sequence(_) => unreachable!("encode() writes a sequence reply by reply"),
        Reply::Pairs(pairs) => Frame3::Array {
            data: pairs
                .iter()
                .map(|(k, v)| Frame3::Array { data: vec![resp3(k), resp3(v)], attributes: None })
                .collect(),
            attributes: None,
        },
        Reply::Map(pairs) => {
            Frame3::Map { data: pairs.iter().map(|(k, v)| (resp3(k), resp3(v))).collect(), attributes: None }
        }
        Reply::Double(value) => Frame3::Double { data: *value, attributes: None },
        Reply::Bool(value) => Frame3::Boolean { data: *value, attributes: None },
        Reply::Verbatim(text) => Frame3::VerbatimString {
            data: Bytes::from(text.clone()),
            format: VerbatimStringFormat::Text,
            attributes: None,
        },
    }
}

/// A double as Redis prints it in RESP2 (`%.17g`-like, `inf`, `-inf`).
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
    }
}
