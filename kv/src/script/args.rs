//! Arguments checked as Lua's C libraries check them (`luaL_checknumber`,
//! `luaL_checklstring`, `luaL_optinteger`), with their error wording, for
//! the libraries Seshat writes in Rust. Each check names its function, as
//! `luaL_argerror` names the function a script called.

use mlua::{Lua, Value};

/// `bad argument #position to 'function' (message)`.
pub(crate) fn bad_argument(function: &str, position: usize, message: &str) -> mlua::Error {
    mlua::Error::runtime(format!("bad argument #{position} to '{function}' ({message})"))
}

fn argument(args: &[Value], position: usize) -> Value {
    args.get(position - 1).cloned().unwrap_or(Value::Nil)
}

fn type_error(function: &str, position: usize, expected: &str, args: &[Value]) -> mlua::Error {
    let got = match args.get(position - 1) {
        Some(value) => value.type_name(),
        None => "no value",
    };
    bad_argument(function, position, &format!("{expected} expected, got {got}"))
}

/// Argument `position`: a number, or a string Lua reads as one.
pub(crate) fn check_number(lua: &Lua, function: &str, position: usize, args: &[Value]) -> mlua::Result<f64> {
    lua.coerce_number(argument(args, position))?.ok_or_else(|| type_error(function, position, "number", args))
}

/// Argument `position`: a string, or a number in Lua's `%.14g`.
pub(crate) fn check_string(
    lua: &Lua,
    function: &str,
    position: usize,
    args: &[Value],
) -> mlua::Result<mlua::LuaString> {
    lua.coerce_string(argument(args, position))?.ok_or_else(|| type_error(function, position, "string", args))
}

/// Argument `position` truncated to an integer as Lua 5.1 does, or
/// `default` when it is nil or absent.
pub(crate) fn opt_integer(
    lua: &Lua,
    function: &str,
    position: usize,
    args: &[Value],
    default: i64,
) -> mlua::Result<i64> {
    match argument(args, position) {
        Value::Nil => Ok(default),
        _ => Ok(check_number(lua, function, position, args)? as i64),
    }
}
