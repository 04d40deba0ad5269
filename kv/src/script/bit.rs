//! The `bit` library (LuaBitOp 1.0, as Redis ships it): 32-bit
//! operations on Lua numbers, answering signed 32-bit numbers.

use mlua::{Lua, Table, Value, Variadic};

use super::args::check_number;

/// A number's 32 bits as LuaBitOp takes them: rounded to an integer,
/// then modulo 2^32.
fn to_bits(number: f64) -> u32 {
    number.round_ties_even().rem_euclid(4_294_967_296.0) as u64 as u32
}

fn signed(bits: u32) -> f64 {
    f64::from(bits as i32)
}

pub(crate) fn library(lua: &Lua) -> mlua::Result<Table> {
    let bit = lua.create_table()?;
    let unary = |name: &'static str, op: fn(u32) -> u32| {
        lua.create_function(move |lua, args: Variadic<Value>| {
            Ok(signed(op(to_bits(check_number(lua, name, 1, &args)?))))
        })
    };
    bit.set("tobit", unary("tobit", |x| x)?)?;
    bit.set("bnot", unary("bnot", |x| !x)?)?;
    bit.set("bswap", unary("bswap", u32::swap_bytes)?)?;
    let fold = |name: &'static str, op: fn(u32, u32) -> u32| {
        lua.create_function(move |lua, args: Variadic<Value>| {
            let mut acc = to_bits(check_number(lua, name, 1, &args)?);
            for position in 2..=args.len() {
                acc = op(acc, to_bits(check_number(lua, name, position, &args)?));
            }
            Ok(signed(acc))
        })
    };
    bit.set("band", fold("band", |a, b| a & b)?)?;
    bit.set("bor", fold("bor", |a, b| a | b)?)?;
    bit.set("bxor", fold("bxor", |a, b| a ^ b)?)?;
    let shift = |name: &'static str, op: fn(u32, u32) -> u32| {
        lua.create_function(move |lua, args: Variadic<Value>| {
            Ok(signed(op(
                to_bits(check_number(lua, name, 1, &args)?),
                to_bits(check_number(lua, name, 2, &args)?) & 31,
            )))
        })
    };
    bit.set("lshift", shift("lshift", |x, n| x << n)?)?;
    bit.set("rshift", shift("rshift", |x, n| x >> n)?)?;
    bit.set("arshift", shift("arshift", |x, n| ((x as i32) >> n) as u32)?)?;
    bit.set("rol", shift("rol", |x, n| x.rotate_left(n))?)?;
    bit.set("ror", shift("ror", |x, n| x.rotate_right(n))?)?;
    bit.set(
        "tohex",
        lua.create_function(|lua, args: Variadic<Value>| {
            let x = check_number(lua, "tohex", 1, &args)?;
            let mut digits = match args.len() > 1 {
                true => to_bits(check_number(lua, "tohex", 2, &args)?) as i32,
                false => 8,
            };
            let upper = digits < 0;
            digits = digits.unsigned_abs().min(8) as i32;
            let bits = u64::from(to_bits(x)) & ((1u64 << (4 * digits)) - 1);
            Ok(match upper {
                true => format!("{bits:0width$X}", width = digits as usize),
                false => format!("{bits:0width$x}", width = digits as usize),
            })
        })?,
    )?;
    Ok(bit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_wrap_and_round_as_luabitop_does() {
        assert_eq!(to_bits(-1.0), u32::MAX);
        assert_eq!(to_bits(4_294_967_296.0 + 5.0), 5);
        assert_eq!(to_bits(2.5), 2);
        let lua = Lua::new();
        lua.globals().set("bit", library(&lua).unwrap()).unwrap();
        let number = |code: &str| lua.load(code).eval::<f64>().unwrap();
        let text = |code: &str| lua.load(code).eval::<String>().unwrap();
        assert_eq!(number("return bit.band(0xff, 0x0f, 0x3)"), 3.0);
        assert_eq!(number("return bit.lshift(1, 31)"), -2147483648.0);
        assert_eq!(text("return bit.tohex(255, -4)"), "00FF");
        assert_eq!(text("return bit.tohex(-1)"), "ffffffff");
    }
}
