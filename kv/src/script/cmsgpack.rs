//! The `cmsgpack` library (lua-cmsgpack 0.4.0, as Redis ships it):
//! `pack(…)` encodes each argument as MessagePack and concatenates them,
//! `unpack(s)` decodes every value, `unpack_one(s [, offset])` and
//! `unpack_limit(s, limit [, offset])` decode some and return the next
//! offset first (-1 at the end). A table whose keys are exactly 1..n is an
//! array, any other a map; a number that is an integer is packed as the
//! smallest integer type, another as a float when that loses nothing,
//! else a double; tables nested 16 deep pack as nil.

use mlua::{Lua, MultiValue, Table, Value};

const MAX_NESTING: usize = 16;

pub(crate) fn library(lua: &Lua) -> mlua::Result<Table> {
    let cmsgpack = lua.create_table()?;
    cmsgpack.set(
        "pack",
        lua.create_function(|lua, values: MultiValue| {
            if values.is_empty() {
                return Err(mlua::Error::runtime("bad argument #0 to 'pack' (MessagePack pack needs input.)"));
            }
            let mut out = Vec::new();
            for value in values.iter() {
                encode(value, 0, &mut out)?;
            }
            lua.create_string(&out)
        })?,
    )?;
    cmsgpack.set(
        "unpack",
        lua.create_function(|lua, data: mlua::LuaString| unpack(lua, &data.as_bytes(), usize::MAX, 0, false))?,
    )?;
    cmsgpack.set(
        "unpack_one",
        lua.create_function(|lua, (data, offset): (mlua::LuaString, Option<i64>)| {
            unpack(lua, &data.as_bytes(), 1, offset.unwrap_or(0), true)
        })?,
    )?;
    cmsgpack.set(
        "unpack_limit",
        lua.create_function(|lua, (data, limit, offset): (mlua::LuaString, i64, Option<i64>)| {
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            unpack(lua, &data.as_bytes(), limit, offset.unwrap_or(0), true)
        })?,
    )?;
    Ok(cmsgpack)
}

fn encode(value: &Value, level: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    match value {
        Value::String(text) => bytes(&text.as_bytes(), out),
        Value::Boolean(flag) => out.push(if *flag { 0xc3 } else { 0xc2 }),
        Value::Integer(n) => integer(*n, out),
        Value::Number(n) if !n.is_infinite() && (*n as i64) as f64 == *n => integer(*n as i64, out),
        Value::Number(n) => {
            let narrow = *n as f32;
            if f64::from(narrow) == *n {
                out.push(0xca);
                out.extend_from_slice(&narrow.to_be_bytes());
            } else {
                out.push(0xcb);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        Value::Table(table) if level < MAX_NESTING => {
            if is_array(table)? {
                let length = table.raw_len();
                header(length as u64, 0x90, 0xdc, 0xdd, out);
                for i in 1..=length {
                    encode(&table.raw_get::<Value>(i)?, level + 1, out)?;
                }
            } else {
                let pairs: Vec<(Value, Value)> = table.pairs::<Value, Value>().collect::<mlua::Result<_>>()?;
                header(pairs.len() as u64, 0x80, 0xde, 0xdf, out);
                for (key, value) in &pairs {
                    encode(key, level + 1, out)?;
                    encode(value, level + 1, out)?;
                }
            }
        }
        _ => out.push(0xc0),
    }
    Ok(())
}

/// Whether the table's keys are exactly 1..n.
fn is_array(table: &Table) -> mlua::Result<bool> {
    let (mut count, mut max) = (0i64, 0i64);
    for pair in table.pairs::<Value, Value>() {
        let index = match pair?.0 {
            Value::Integer(n) if n > 0 && i32::try_from(n).is_ok() => n,
            Value::Number(n) if n > 0.0 && (n as i32) as f64 == n => n as i64,
            _ => return Ok(false),
        };
        max = max.max(index);
        count += 1;
    }
    Ok(max == count)
}

fn header(n: u64, fix: u8, short: u8, long: u8, out: &mut Vec<u8>) {
    if n <= 15 {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(short);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(long);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn bytes(text: &[u8], out: &mut Vec<u8>) {
    let len = text.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(text);
}

fn integer(n: i64, out: &mut Vec<u8>) {
    match n {
        0..=127 => out.push(n as u8),
        128..=0xff => out.extend_from_slice(&[0xcc, n as u8]),
        256..=0xffff => {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        65536..=0xffff_ffff => {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        0x1_0000_0000.. => {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
        -32..=-1 => out.push(n as i8 as u8),
        -128..=-33 => out.extend_from_slice(&[0xd0, n as i8 as u8]),
        -32768..=-129 => {
            out.push(0xd1);
            out.extend_from_slice(&(n as i16).to_be_bytes());
        }
        -2_147_483_648..=-32769 => {
            out.push(0xd2);
            out.extend_from_slice(&(n as i32).to_be_bytes());
        }
        _ => {
            out.push(0xd3);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// Why a decode stopped.
enum Stop {
    Missing,
    BadFormat,
    Lua(mlua::Error),
}

impl From<mlua::Error> for Stop {
    fn from(error: mlua::Error) -> Self {
        Stop::Lua(error)
    }
}

fn unpack(lua: &Lua, data: &[u8], limit: usize, offset: i64, with_offset: bool) -> mlua::Result<MultiValue> {
    if offset < 0 {
        return Err(mlua::Error::runtime(format!(
            "Invalid request to unpack with offset of {offset} and limit of {}.",
            data.len()
        )));
    }
    let offset = offset as usize;
    if offset > data.len() {
        return Err(mlua::Error::runtime(format!("Start offset {offset} greater than input length {}.", data.len())));
    }
    let mut at = offset;
    let mut values = Vec::new();
    while at < data.len() && values.len() < limit {
        match decode(lua, data, &mut at) {
            Ok(value) => values.push(value),
            Err(Stop::Missing) => return Err(mlua::Error::runtime("Missing bytes in input.")),
            Err(Stop::BadFormat) => return Err(mlua::Error::runtime("Bad data format in input.")),
            Err(Stop::Lua(error)) => return Err(error),
        }
    }
    if with_offset {
        let next = if at == data.len() { -1 } else { at as i64 };
        values.insert(0, Value::Number(next as f64));
    }
    Ok(MultiValue::from_vec(values))
}

fn take<'d>(data: &'d [u8], at: &mut usize, n: usize) -> Result<&'d [u8], Stop> {
    let bytes = data.get(*at..*at + n).ok_or(Stop::Missing)?;
    *at += n;
    Ok(bytes)
}

fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |n, b| (n << 8) | u64::from(*b))
}

fn decode(lua: &Lua, data: &[u8], at: &mut usize) -> Result<Value, Stop> {
    let kind = take(data, at, 1)?[0];
    let number = |n: f64| Ok(Value::Number(n));
    let string =
        |at: &mut usize, n: usize| -> Result<Value, Stop> { Ok(Value::String(lua.create_string(take(data, at, n)?)?)) };
    match kind {
        0xcc => number(be(take(data, at, 1)?) as f64),
        0xd0 => number(f64::from(take(data, at, 1)?[0] as i8)),
        0xcd => number(be(take(data, at, 2)?) as f64),
        // lua-cmsgpack casts the high byte alone: `(int16_t)(p1 << 8) | p2`.
        0xd1 => {
            let b = take(data, at, 2)?;
            number(f64::from(i32::from((i32::from(b[0]) << 8) as i16) | i32::from(b[1])))
        }
        0xce => number(be(take(data, at, 4)?) as f64),
        0xd2 => number(f64::from(be(take(data, at, 4)?) as u32 as i32)),
        0xcf => number(be(take(data, at, 8)?) as f64),
        0xd3 => number(be(take(data, at, 8)?) as i64 as f64),
        0xc0 => Ok(Value::Nil),
        0xc3 => Ok(Value::Boolean(true)),
        0xc2 => Ok(Value::Boolean(false)),
        0xca => number(f64::from(f32::from_bits(be(take(data, at, 4)?) as u32))),
        0xcb => number(f64::from_bits(be(take(data, at, 8)?))),
        0xd9 => {
            let n = be(take(data, at, 1)?) as usize;
            string(at, n)
        }
        0xda => {
            let n = be(take(data, at, 2)?) as usize;
            string(at, n)
        }
        0xdb => {
            let n = be(take(data, at, 4)?) as usize;
            string(at, n)
        }
        0xdc => {
            let n = be(take(data, at, 2)?) as usize;
            array(lua, data, at, n)
        }
        0xdd => {
            let n = be(take(data, at, 4)?) as usize;
            array(lua, data, at, n)
        }
        0xde => {
            let n = be(take(data, at, 2)?) as usize;
            map(lua, data, at, n)
        }
        0xdf => {
            let n = be(take(data, at, 4)?) as usize;
            map(lua, data, at, n)
        }
        _ if kind & 0x80 == 0 => number(f64::from(kind)),
        _ if kind & 0xe0 == 0xe0 => number(f64::from(kind as i8)),
        _ if kind & 0xe0 == 0xa0 => string(at, usize::from(kind & 0x1f)),
        _ if kind & 0xf0 == 0x90 => array(lua, data, at, usize::from(kind & 0xf)),
        _ if kind & 0xf0 == 0x80 => map(lua, data, at, usize::from(kind & 0xf)),
        _ => Err(Stop::BadFormat),
    }
}

fn array(lua: &Lua, data: &[u8], at: &mut usize, n: usize) -> Result<Value, Stop> {
    let table = lua.create_table()?;
    for i in 1..=n {
        let value = decode(lua, data, at)?;
        table.raw_set(i, value)?;
    }
    Ok(Value::Table(table))
}

fn map(lua: &Lua, data: &[u8], at: &mut usize, n: usize) -> Result<Value, Stop> {
    let table = lua.create_table()?;
    for _ in 0..n {
        let key = decode(lua, data, at)?;
        let value = decode(lua, data, at)?;
        if !matches!(key, Value::Nil) {
            table.raw_set(key, value)?;
        }
    }
    Ok(Value::Table(table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_pack_as_lua_cmsgpack_packs_them() {
        let lua = Lua::new();
        lua.globals().set("cmsgpack", library(&lua).unwrap()).unwrap();
        let packed = |code: &str| lua.load(code).eval::<mlua::LuaString>().unwrap().as_bytes().to_vec();
        assert_eq!(packed("return cmsgpack.pack({1, 2, 3}, {a = 1})"), [0x93, 1, 2, 3, 0x81, 0xa1, b'a', 1]);
        assert_eq!(packed("return cmsgpack.pack(-1, 300, 1.5)"), [0xff, 0xcd, 1, 44, 0xca, 0x3f, 0xc0, 0, 0]);
        let round = "local a, b, c = cmsgpack.unpack(cmsgpack.pack('x', {k = {true}}, -70000)) \
                     return a .. tostring(b.k[1]) .. c";
        assert_eq!(lua.load(round).eval::<String>().unwrap(), "xtrue-70000");
        let limited = "local next, v = cmsgpack.unpack_one(cmsgpack.pack(7, 8)) return next * 10 + v";
        assert_eq!(lua.load(limited).eval::<f64>().unwrap(), 17.0);
    }
}
