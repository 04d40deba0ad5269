//! The `cjson` library scripts use (lua-cjson 2.1 as Redis ships it):
//! `encode`, `decode` and `null`, with cjson's rules: a table whose keys
//! are 1..n is an array (an empty one an object), numbers print as
//! `%.14g`, `/` is escaped, and `null` decodes to `cjson.null`.

use mlua::{LightUserData, Lua, Table, Value};

/// The deepest nesting encode and decode accept, as cjson's default.
const MAX_DEPTH: usize = 1000;

pub(crate) fn library(lua: &Lua) -> mlua::Result<Table> {
    let cjson = lua.create_table()?;
    cjson.set("null", Value::LightUserData(LightUserData(std::ptr::null_mut())))?;
    cjson.set(
        "encode",
        lua.create_function(|lua, value: Value| {
            let mut out = Vec::new();
            encode(&value, 0, &mut out)?;
            lua.create_string(&out)
        })?,
    )?;
    cjson.set(
        "decode",
        lua.create_function(|lua, text: mlua::LuaString| {
            let bytes = text.as_bytes();
            let json: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|error| mlua::Error::runtime(decode_error(&bytes, &error)))?;
            decode(lua, &json, 0)
        })?,
    )?;
    Ok(cjson)
}

fn encode(value: &Value, depth: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    match value {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(data) if data.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(flag) => out.extend_from_slice(if *flag { b"true" } else { b"false" }),
        Value::Integer(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::Number(n) => number(*n, out)?,
        Value::String(text) => string(&text.as_bytes(), out),
        Value::Table(table) => {
            if depth + 1 > MAX_DEPTH {
                return Err(mlua::Error::runtime(format!("Cannot serialise, excessive nesting ({})", depth + 1)));
            }
            match array_length(table)? {
                Some(length) => {
                    out.push(b'[');
                    for i in 1..=length {
                        if i > 1 {
                            out.push(b',');
                        }
                        encode(&table.raw_get::<Value>(i)?, depth + 1, out)?;
                    }
                    out.push(b']');
                }
                None => {
                    out.push(b'{');
                    let mut first = true;
                    for pair in table.pairs::<Value, Value>() {
                        let (key, value) = pair?;
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        match &key {
                            Value::String(text) => string(&text.as_bytes(), out),
                            Value::Integer(_) | Value::Number(_) => {
                                out.push(b'"');
                                encode(&key, depth + 1, out)?;
                                out.push(b'"');
                            }
                            _ => {
                                return Err(mlua::Error::runtime(
                                    "Cannot serialise table: table key must be a number or string",
                                ))
                            }
                        }
                        out.push(b':');
                        encode(&value, depth + 1, out)?;
                    }
                    out.push(b'}');
                }
            }
        }
        other => {
            return Err(mlua::Error::runtime(format!("Cannot serialise {}: type not supported", other.type_name())))
        }
    }
    Ok(())
}

/// `Some(n)` if the table is an array 1..n (cjson: only positive integer
/// keys, not excessively sparse), `None` for an object.
fn array_length(table: &Table) -> mlua::Result<Option<usize>> {
    let (mut max, mut count) = (0usize, 0usize);
    for pair in table.pairs::<Value, Value>() {
        let (key, _) = pair?;
        let index = match key {
            Value::Integer(n) if n >= 1 => n as usize,
            Value::Number(n) if n >= 1.0 && n.fract() == 0.0 => n as usize,
            _ => return Ok(None),
        };
        max = max.max(index);
        count += 1;
    }
    if count == 0 {
        return Ok(None);
    }
    if max > 10 && max > 2 * count {
        return Err(mlua::Error::runtime("Cannot serialise table: excessively sparse array"));
    }
    Ok(Some(max))
}

fn number(n: f64, out: &mut Vec<u8>) -> mlua::Result<()> {
    if !n.is_finite() {
        return Err(mlua::Error::runtime(format!("Cannot serialise number: must not be NaN or Inf ({n})")));
    }
    out.extend_from_slice(format_g14(n).as_bytes());
    Ok(())
}

/// C's `%.14g`.
fn format_g14(n: f64) -> String {
    if n == 0.0 {
        return if n.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let exponent = n.abs().log10().floor() as i32;
    let scientific = format!("{n:.13e}");
    let (mantissa, exp) = scientific.split_once('e').expect("`e` formatting has an exponent");
    let exp: i32 = exp.parse().unwrap_or(exponent);
    if (-4..14).contains(&exp) {
        let decimals = (13 - exp).max(0) as usize;
        let fixed = format!("{n:.decimals$}");
        match fixed.contains('.') {
            true => fixed.trim_end_matches('0').trim_end_matches('.').to_string(),
            false => fixed,
        }
    } else {
        let mantissa = match mantissa.contains('.') {
            true => mantissa.trim_end_matches('0').trim_end_matches('.'),
            false => mantissa,
        };
        format!("{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    }
}

fn string(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &byte in bytes {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0..=0x1f | 0x7f => out.extend_from_slice(format!("\\u{byte:04x}").as_bytes()),
            _ => out.push(byte),
        }
    }
    out.push(b'"');
}

/// cjson's words for JSON it cannot read, at the character (1-based)
/// where the offending token starts.
fn decode_error(text: &[u8], error: &serde_json::Error) -> String {
    // serde_json reports the line and column where it stopped, inside
    // the token; cjson the token's first character.
    let mut at = 0;
    let mut line = 1;
    for (i, byte) in text.iter().enumerate() {
        if line == error.line() {
            at = i + error.column().saturating_sub(1);
            break;
        }
        if *byte == b'\n' {
            line += 1;
        }
    }
    let at = at.min(text.len());
    let start = text[..at].iter().rposition(|b| !b.is_ascii_alphanumeric()).map_or(0, |i| i + 1);
    match error.classify() {
        serde_json::error::Category::Eof => format!("Expected value but found T_END at character {}", text.len() + 1),
        _ => format!("Expected value but found invalid token at character {}", start + 1),
    }
}

fn decode(lua: &Lua, json: &serde_json::Value, depth: usize) -> mlua::Result<Value> {
    if depth > MAX_DEPTH {
        return Err(mlua::Error::runtime(format!("Found too many nested data structures ({depth})")));
    }
    Ok(match json {
        serde_json::Value::Null => Value::LightUserData(LightUserData(std::ptr::null_mut())),
        serde_json::Value::Bool(flag) => Value::Boolean(*flag),
        serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(text) => Value::String(lua.create_string(text)?),
        serde_json::Value::Array(items) => {
            let table = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                table.raw_set(i + 1, decode(lua, item, depth + 1)?)?;
            }
            Value::Table(table)
        }
        serde_json::Value::Object(fields) => {
            let table = lua.create_table_with_capacity(0, fields.len())?;
            for (key, item) in fields {
                table.raw_set(lua.create_string(key)?, decode(lua, item, depth + 1)?)?;
            }
            Value::Table(table)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_as_percent_14g() {
        assert_eq!(format_g14(1.0), "1");
        assert_eq!(format_g14(0.1), "0.1");
        assert_eq!(format_g14(1e20), "1e+20");
        assert_eq!(format_g14(123456789012345.0), "1.2345678901234e+14");
        assert_eq!(format_g14(0.00001), "1e-05");
        assert_eq!(format_g14(-2.5), "-2.5");
    }

    #[test]
    fn tables_encode_and_decode_as_cjson_does() {
        let lua = Lua::new();
        lua.globals().set("cjson", library(&lua).unwrap()).unwrap();
        let eval = |code: &str| lua.load(code).eval::<String>().unwrap();
        assert_eq!(eval("return cjson.encode({1, 'a/b', true})"), r#"[1,"a\/b",true]"#);
        assert_eq!(eval("return cjson.encode({})"), "{}");
        assert_eq!(eval("return cjson.encode({x = {y = cjson.null}})"), r#"{"x":{"y":null}}"#);
        assert_eq!(
            eval(
                r#"local t = cjson.decode('{"a":[1,2,{"b":null}]}') return tostring(t.a[3].b == cjson.null) .. t.a[2]"#
            ),
            "true2"
        );
    }
}
