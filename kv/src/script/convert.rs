//! Redis's conversions between replies and Lua values, both ways.
//!
//! A command's reply becomes a Lua value as the script's protocol
//! (`redis.setresp`, 2 by default) would carry it: RESP2 gives a status
//! as `{ok=…}`, an error as `{err=…}`, nil as `false`, a map as a flat
//! array; RESP3 adds `{map=…}`, `{set=…}`, `{double=…}`, booleans and nil.
//! A script's result becomes a reply by Redis's rules: a number is an
//! integer (truncated), a table an array up to its first nil unless it
//! has `err`, `ok`, `double`, `map`, `set`… fields.

use bytes::Bytes;
use mlua::{Lua, Table, Value};

use crate::error::CommandError;
use crate::number::format_human;
use crate::reply::Reply;
use crate::sorted::format_score;

/// `reply` as a Lua value for a script speaking RESP3 (`resp3`) or RESP2.
pub(crate) fn reply_to_lua(lua: &Lua, reply: &Reply, resp3: bool) -> mlua::Result<Value> {
    let string = |bytes: &[u8]| lua.create_string(bytes).map(Value::String);
    let single = |field: &str, value: Value| -> mlua::Result<Value> {
        let table = lua.create_table()?;
        table.raw_set(field, value)?;
        Ok(Value::Table(table))
    };
    let array = |items: &mut dyn Iterator<Item = mlua::Result<Value>>| -> mlua::Result<Value> {
        let table = lua.create_table()?;
        for (i, item) in items.enumerate() {
            table.raw_set(i + 1, item?)?;
        }
        Ok(Value::Table(table))
    };
    let pair = |key: &Reply, value: &Reply| -> mlua::Result<Value> {
        array(&mut [key, value].into_iter().map(|item| reply_to_lua(lua, item, resp3)))
    };
    let map = |pairs: &[(Reply, Reply)]| -> mlua::Result<Value> {
        let table = lua.create_table()?;
        for (key, value) in pairs {
            table.raw_set(reply_to_lua(lua, key, resp3)?, reply_to_lua(lua, value, resp3)?)?;
        }
        single("map", Value::Table(table))
    };
    match reply {
        Reply::Status(text) => single("ok", string(text.as_bytes())?),
        Reply::Error(error) => single("err", string(lua_error_text(&format!("-{error}")).as_bytes())?),
        Reply::Int(n) => Ok(Value::Number(*n as f64)),
        Reply::Bulk(bytes) => string(bytes),
        Reply::Nil | Reply::NilArray | Reply::Blocked => Ok(if resp3 { Value::Nil } else { Value::Boolean(false) }),
        Reply::Array(items) | Reply::Push(items) | Reply::Sequence(items) => {
            array(&mut items.iter().map(|item| reply_to_lua(lua, item, resp3)))
        }
        Reply::Set(items) if resp3 => {
            let table = lua.create_table()?;
            for item in items {
                table.raw_set(reply_to_lua(lua, item, resp3)?, true)?;
            }
            single("set", Value::Table(table))
        }
        Reply::Set(items) => array(&mut items.iter().map(|item| reply_to_lua(lua, item, resp3))),
        Reply::Bulks { buffer, lengths } => {
            let mut at = 0;
            array(&mut lengths.iter().map(|&len| {
                let bytes = &buffer[at..at + len as usize];
                at += len as usize;
                string(bytes)
            }))
        }
        Reply::Map(pairs) | Reply::KeyedArrays(pairs) if resp3 => map(pairs),
        Reply::Map(pairs) | Reply::Pairs(pairs) if !resp3 => {
            array(&mut pairs.iter().flat_map(|(key, value)| [key, value]).map(|item| reply_to_lua(lua, item, resp3)))
        }
        Reply::KeyedArrays(pairs) | Reply::Pairs(pairs) => {
            array(&mut pairs.iter().map(|(key, value)| pair(key, value)))
        }
        Reply::Map(_) => unreachable!("RESP2 and RESP3 maps are both handled above"),
        Reply::Double(value) if resp3 => single("double", Value::Number(*value)),
        Reply::Double(value) => string(format_score(*value).as_bytes()),
        Reply::HumanDouble(value) if resp3 => single("double", Value::Number(*value)),
        Reply::HumanDouble(value) => string(format_human(*value).as_bytes()),
        Reply::Bool(flag) if resp3 => Ok(Value::Boolean(*flag)),
        Reply::Bool(flag) => Ok(Value::Number(f64::from(u8::from(*flag)))),
        Reply::Verbatim(text) if resp3 => {
            let table = lua.create_table()?;
            table.raw_set("format", "txt")?;
            table.raw_set("string", text.as_str())?;
            single("verbatim_string", Value::Table(table))
        }
        Reply::Verbatim(text) => string(text.as_bytes()),
    }
}

/// A script's result (or a value inside it) as a reply; `resp3` is the
/// script's protocol (booleans: RESP3 booleans, else 1 and nil).
pub(crate) fn value_to_reply(value: &Value, resp3: bool) -> Reply {
    match value {
        Value::String(text) => Reply::Bulk(Bytes::copy_from_slice(&text.as_bytes())),
        Value::Boolean(flag) if resp3 => Reply::Bool(*flag),
        Value::Boolean(true) => Reply::Int(1),
        Value::Integer(n) => Reply::Int(*n),
        Value::Number(n) => Reply::Int(c_cast(*n)),
        Value::Table(table) => table_to_reply(table, resp3),
        _ => Reply::Nil,
    }
}

/// `number` as redis-server's `(long long)` cast takes it on x86_64:
/// truncated, and `i64::MIN` for NaN and anything out of range (where
/// Rust's `as` would saturate).
fn c_cast(number: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    match number {
        n if (-LIMIT..LIMIT).contains(&n) => n as i64,
        _ => i64::MIN,
    }
}

fn table_to_reply(table: &Table, resp3: bool) -> Reply {
    let field = |name: &str| table.raw_get::<Value>(name).unwrap_or(Value::Nil);
    if let Value::String(text) = field("err") {
        return Reply::Error(CommandError::Other(text.to_string_lossy()));
    }
    if let Value::String(text) = field("ok") {
        return Reply::Status(text.to_string_lossy().into());
    }
    match field("double") {
        Value::Number(n) => return Reply::Double(n),
        Value::Integer(n) => return Reply::Double(n as f64),
        _ => {}
    }
    if let Value::String(text) = field("big_number") {
        return Reply::Bulk(Bytes::copy_from_slice(&text.as_bytes()));
    }
    if let Value::Table(verbatim) = field("verbatim_string") {
        if let (Ok(Value::String(_)), Ok(Value::String(text))) =
            (verbatim.raw_get::<Value>("format"), verbatim.raw_get::<Value>("string"))
        {
            return Reply::Verbatim(text.to_string_lossy());
        }
    }
    if let Value::Table(map) = field("map") {
        let pairs = map.pairs::<Value, Value>().filter_map(Result::ok);
        return Reply::Map(pairs.map(|(k, v)| (value_to_reply(&k, resp3), value_to_reply(&v, resp3))).collect());
    }
    if let Value::Table(set) = field("set") {
        let members = set.pairs::<Value, Value>().filter_map(Result::ok);
        return Reply::Set(members.map(|(k, _)| value_to_reply(&k, resp3)).collect());
    }
    let mut items = Vec::new();
    for i in 1.. {
        match table.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(item) => items.push(value_to_reply(&item, resp3)),
        }
    }
    Reply::Array(items)
}

/// Redis's error text of a Lua error table: `-CODE message` keeps its
/// code, anything else gets `ERR` (`luaPushErrorBuff`).
pub(crate) fn lua_error_text(text: &str) -> String {
    let (code, message) = match text.strip_prefix('-') {
        Some(rest) => match rest.split_once(' ') {
            Some((code, message)) => (code, message),
            None => ("ERR", rest),
        },
        None => ("ERR", text),
    };
    format!("{code} {}", message.trim_matches(['\r', '\n']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_texts_keep_or_gain_a_code() {
        assert_eq!(lua_error_text("-WRONGTYPE Operation"), "WRONGTYPE Operation");
        assert_eq!(lua_error_text("-oops"), "ERR oops");
        assert_eq!(lua_error_text("plain words"), "ERR plain words");
    }

    #[test]
    fn replies_round_trip_as_redis_converts_them() {
        let lua = Lua::new();
        let reply = Reply::Array(vec![Reply::Int(3), Reply::Nil, Reply::bulk("x")]);
        let value = reply_to_lua(&lua, &reply, false).unwrap();
        // RESP2 nil is false, which converts back to a nil bulk.
        assert_eq!(value_to_reply(&value, false), Reply::Array(vec![Reply::Int(3), Reply::Nil, Reply::bulk("x")]));
        let status = reply_to_lua(&lua, &Reply::ok(), false).unwrap();
        assert_eq!(value_to_reply(&status, false), Reply::ok());
        let map = Reply::Map(vec![(Reply::bulk("k"), Reply::Int(1))]);
        assert_eq!(value_to_reply(&reply_to_lua(&lua, &map, true).unwrap(), true), map);
        assert_eq!(value_to_reply(&Value::Number(3.9), false), Reply::Int(3));
        for out_of_range in [f64::NAN, f64::INFINITY, -1e300, 9_223_372_036_854_775_808.0] {
            assert_eq!(value_to_reply(&Value::Number(out_of_range), false), Reply::Int(i64::MIN));
        }
        assert_eq!(value_to_reply(&Value::Boolean(true), true), Reply::Bool(true));
    }
}
