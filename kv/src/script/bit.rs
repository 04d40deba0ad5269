//! The `bit` library (LuaBitOp 1.0, as Redis ships it): 32-bit
//! operations on Lua numbers, answering signed 32-bit numbers.

use mlua::{Lua, Table, Variadic};

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
    bit.set("tobit", lua.create_function(|_, x: f64| Ok(signed(to_bits(x))))?)?;
    bit.set("bnot", lua.create_function(|_, x: f64| Ok(signed(!to_bits(x))))?)?;
    bit.set("bswap", lua.create_function(|_, x: f64| Ok(signed(to_bits(x).swap_bytes())))?)?;
    let fold = |lua: &Lua, op: fn(u32, u32) -> u32| {
        lua.create_function(move |_, (first, rest): (f64, Variadic<f64>)| {
            Ok(signed(rest.iter().fold(to_bits(first), |acc, x| op(acc, to_bits(*x)))))
        })
    };
    bit.set("band", fold(lua, |a, b| a & b)?)?;
    bit.set("bor", fold(lua, |a, b| a | b)?)?;
    bit.set("bxor", fold(lua, |a, b| a ^ b)?)?;
    let shift = |lua: &Lua, op: fn(u32, u32) -> u32| {
        lua.create_function(move |_, (x, n): (f64, f64)| Ok(signed(op(to_bits(x), to_bits(n) & 31))))
    };
    bit.set("lshift", shift(lua, |x, n| x << n)?)?;
    bit.set("rshift", shift(lua, |x, n| x >> n)?)?;
    bit.set("arshift", shift(lua, |x, n| ((x as i32) >> n) as u32)?)?;
    bit.set("rol", shift(lua, |x, n| x.rotate_left(n))?)?;
    bit.set("ror", shift(lua, |x, n| x.rotate_right(n))?)?;
    bit.set(
        "tohex",
        lua.create_function(|_, (x, digits): (f64, Option<f64>)| {
            let mut digits = digits.map_or(8, |n| to_bits(n) as i32);
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
