//! The `struct` library (struct.c 1.7, as Redis 7.0 ships it): Lua
//! values packed into binary strings laid out like C structs, and back.
//!
//! A format is a string of options: `>` `<` pick big or little endian,
//! `!n` the largest alignment, `x` a zero byte, `b B h H l L T` and
//! `in In` (signed, unsigned) integers of 1, 2, 8, 8 and n bytes, `f d`
//! floats, `cn` n bytes of a string (`c0`: all of it when packing, the
//! previous number's length when unpacking), `s` a zero-terminated
//! string, and spaces, which are ignored.
//!
//! The sizes, alignments and defaults are those of the C library on
//! x86_64 Linux, where redis-server runs: native little endian, `long`
//! and `size_t` of 8 bytes, no alignment unless `!` asks for it, and `!`
//! alone aligning to 8. Integers go through 64 bits, as C's `long` does:
//! packing writes zeros past the eighth byte, unpacking keeps the last
//! eight bytes read.

use mlua::{Lua, Table, Value, Variadic};

use super::args::{bad_argument, check_number, check_string, opt_integer};

/// The largest integer option, in bytes (`i32`).
const MAX_INT_SIZE: usize = 32;
/// The alignment `!` with no number asks for: C's for a double.
const MAX_ALIGN: usize = 8;
/// Lua 5.1's limit on the values a C function leaves on its stack.
const MAX_STACK: usize = 8000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endian {
    Big,
    Little,
}

/// The options in force while a format is read.
struct Header {
    endian: Endian,
    align: usize,
}

impl Default for Header {
    fn default() -> Self {
        Header { endian: Endian::Little, align: 1 }
    }
}

/// A format being read, option by option.
struct Format<'f> {
    text: &'f [u8],
    at: usize,
    /// The function reading it, named in argument errors.
    function: &'static str,
}

impl<'f> Format<'f> {
    fn new(text: &'f [u8], function: &'static str) -> Self {
        Format { text, at: 0, function }
    }

    fn next_option(&mut self) -> Option<u8> {
        let option = *self.text.get(self.at)?;
        self.at += 1;
        Some(option)
    }

    /// The decimal number at this point of the format, or `default` when
    /// none is; like C's `int`, it may not pass `i32::MAX`.
    fn number(&mut self, default: usize) -> mlua::Result<usize> {
        if !self.text.get(self.at).is_some_and(u8::is_ascii_digit) {
            return Ok(default);
        }
        let mut number: i32 = 0;
        while let Some(digit) = self.text.get(self.at).filter(|byte| byte.is_ascii_digit()) {
            number = number
                .checked_mul(10)
                .and_then(|number| number.checked_add(i32::from(digit - b'0')))
                .ok_or_else(|| mlua::Error::runtime("integral size overflow"))?;
            self.at += 1;
        }
        Ok(number as usize)
    }

    /// The size in bytes of `option`'s item (0 for the options that
    /// have none or no fixed one), reading its number if it takes one.
    fn size(&mut self, option: u8) -> mlua::Result<usize> {
        Ok(match option {
            b'b' | b'B' | b'x' => 1,
            b'h' | b'H' => 2,
            b'l' | b'L' | b'T' | b'd' => 8,
            b'f' => 4,
            b'c' => self.number(1)?,
            b'i' | b'I' => {
                let size = self.number(4)?;
                if size > MAX_INT_SIZE {
                    return Err(mlua::Error::runtime(format!(
                        "integral size {size} is larger than limit of {MAX_INT_SIZE}"
                    )));
                }
                size
            }
            _ => 0,
        })
    }

    /// Applies an option that sets endianness or alignment; any other
    /// option is not one of the format language.
    fn control(&mut self, option: u8, header: &mut Header) -> mlua::Result<()> {
        match option {
            b' ' => {}
            b'>' => header.endian = Endian::Big,
            b'<' => header.endian = Endian::Little,
            b'!' => {
                let align = self.number(MAX_ALIGN)?;
                if !align.is_power_of_two() {
                    return Err(mlua::Error::runtime(format!("alignment {align} is not a power of 2")));
                }
                header.align = align;
            }
            _ => {
                let message = format!("invalid format option '{}'", char::from(option));
                return Err(bad_argument(self.function, 1, &message));
            }
        }
        Ok(())
    }
}

/// The zero bytes that align an item of `size` bytes at offset `at`
/// (C's arithmetic, also for sizes that are not powers of two).
fn padding(at: usize, header: &Header, option: u8, size: usize) -> usize {
    if size == 0 || option == b'c' {
        return 0;
    }
    let size = size.min(header.align);
    size.wrapping_sub(at & size.wrapping_sub(1)) & size.wrapping_sub(1)
}

fn is_integer_option(option: u8) -> bool {
    matches!(option, b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I')
}

/// `number`'s low `size` bytes, through a 64-bit integer as C's cast
/// takes it (negative numbers through a signed one).
fn put_integer(number: f64, endian: Endian, size: usize, out: &mut Vec<u8>) {
    let mut value = if number < 0.0 { number as i64 as u64 } else { number as u64 };
    let start = out.len();
    for _ in 0..size {
        out.push(value as u8);
        value = value.checked_shr(8).unwrap_or(0);
    }
    if endian == Endian::Big {
        out[start..].reverse();
    }
}

/// The integer `bytes` hold, its sign extended from the top bit of
/// `bytes.len()` bytes when `signed`.
fn get_integer(bytes: &[u8], endian: Endian, signed: bool) -> f64 {
    let fold = |value: u64, byte: &u8| (value << 8) | u64::from(*byte);
    let value = match endian {
        Endian::Big => bytes.iter().fold(0, fold),
        Endian::Little => bytes.iter().rev().fold(0, fold),
    };
    if !signed {
        return value as f64;
    }
    let sign_bits = u64::MAX.wrapping_shl((bytes.len() * 8).wrapping_sub(1) as u32);
    match value & sign_bits {
        0 => value as i64 as f64,
        _ => (value | sign_bits) as i64 as f64,
    }
}

fn in_order<const N: usize>(mut bytes: [u8; N], endian: Endian) -> [u8; N] {
    if endian == Endian::Big {
        bytes.reverse();
    }
    bytes
}

fn pack(lua: &Lua, args: &[Value]) -> mlua::Result<mlua::LuaString> {
    // struct.c pushes a nil after the arguments before it reads them, so
    // a missing value is "got nil" there, not "got no value".
    let args = &[args, &[Value::Nil]].concat();
    let text = check_string(lua, "pack", 1, args)?;
    let text = text.as_bytes();
    let mut format = Format::new(&text, "pack");
    let mut header = Header::default();
    let mut out = Vec::new();
    let mut position = 2;
    while let Some(option) = format.next_option() {
        let size = format.size(option)?;
        let padding = padding(out.len(), &header, option, size);
        out.resize(out.len() + padding, 0);
        match option {
            option if is_integer_option(option) => {
                put_integer(check_number(lua, "pack", position, args)?, header.endian, size, &mut out);
                position += 1;
            }
            b'x' => out.push(0),
            b'f' => {
                let number = check_number(lua, "pack", position, args)? as f32;
                out.extend(in_order(number.to_le_bytes(), header.endian));
                position += 1;
            }
            b'd' => {
                let number = check_number(lua, "pack", position, args)?;
                out.extend(in_order(number.to_le_bytes(), header.endian));
                position += 1;
            }
            b'c' | b's' => {
                let string = check_string(lua, "pack", position, args)?;
                let string = string.as_bytes();
                position += 1;
                let size = if size == 0 { string.len() } else { size };
                if string.len() < size {
                    // struct.c checks after moving to the next argument,
                    // and so names it.
                    return Err(bad_argument("pack", position, "string too short"));
                }
                out.extend_from_slice(&string[..size]);
                if option == b's' {
                    out.push(0);
                }
            }
            option => format.control(option, &mut header)?,
        }
    }
    lua.create_string(out)
}

fn unpack(lua: &Lua, args: &[Value]) -> mlua::Result<Variadic<Value>> {
    let text = check_string(lua, "unpack", 1, args)?;
    let text = text.as_bytes();
    let mut format = Format::new(&text, "unpack");
    let data = check_string(lua, "unpack", 2, args)?;
    let data = data.as_bytes();
    // A size_t in C: a negative offset wraps and then fails the bounds.
    let offset = opt_integer(lua, "unpack", 3, args, 1)? as usize;
    if offset == 0 {
        return Err(bad_argument("unpack", 3, "offset must be 1 or greater"));
    }
    let mut at = offset - 1;
    let fits = |at: usize, size: usize| size <= data.len() && at <= data.len() - size;
    let too_short = || bad_argument("unpack", 2, "data string too short");
    let mut header = Header::default();
    let mut results = Variadic::new();
    while let Some(option) = format.next_option() {
        let mut size = format.size(option)?;
        at = at.wrapping_add(padding(at, &header, option, size));
        if !fits(at, size) {
            return Err(too_short());
        }
        if args.len().max(3) + results.len() + 2 > MAX_STACK {
            return Err(mlua::Error::runtime("stack overflow (too many results)"));
        }
        match option {
            option if is_integer_option(option) => {
                let number = get_integer(&data[at..at + size], header.endian, option.is_ascii_lowercase());
                results.push(Value::Number(number));
            }
            b'x' => {}
            b'f' => {
                let bytes = data[at..at + 4].try_into().expect("four bytes");
                results.push(Value::Number(f64::from(f32::from_le_bytes(in_order(bytes, header.endian)))));
            }
            b'd' => {
                let bytes = data[at..at + 8].try_into().expect("eight bytes");
                results.push(Value::Number(f64::from_le_bytes(in_order(bytes, header.endian))));
            }
            b'c' => {
                if size == 0 {
                    let length = match results.last() {
                        Some(last) => lua.coerce_number(last.clone())?,
                        None => None,
                    };
                    let length = length.ok_or_else(|| mlua::Error::runtime("format 'c0' needs a previous size"))?;
                    results.pop();
                    size = if length < 0.0 { length as i64 as usize } else { length as usize };
                    if !fits(at, size) {
                        return Err(too_short());
                    }
                }
                results.push(Value::String(lua.create_string(&data[at..at + size])?));
            }
            b's' => {
                let length = data[at..]
                    .iter()
                    .position(|&byte| byte == 0)
                    .ok_or_else(|| mlua::Error::runtime("unfinished string in data"))?;
                results.push(Value::String(lua.create_string(&data[at..at + length])?));
                size = length + 1;
            }
            option => format.control(option, &mut header)?,
        }
        at = at.wrapping_add(size);
    }
    results.push(Value::Number(at.wrapping_add(1) as f64));
    Ok(results)
}

fn size(lua: &Lua, args: &[Value]) -> mlua::Result<f64> {
    let text = check_string(lua, "size", 1, args)?;
    let text = text.as_bytes();
    let mut format = Format::new(&text, "size");
    let mut header = Header::default();
    let mut total: usize = 0;
    while let Some(option) = format.next_option() {
        let size = format.size(option)?;
        total = total.wrapping_add(padding(total, &header, option, size));
        if option == b's' {
            return Err(bad_argument("size", 1, "option 's' has no fixed size"));
        }
        if option == b'c' && size == 0 {
            return Err(bad_argument("size", 1, "option 'c0' has no fixed size"));
        }
        // struct.c leaves letters and digits it does not know alone here.
        if !option.is_ascii_alphanumeric() {
            format.control(option, &mut header)?;
        }
        total = total.wrapping_add(size);
    }
    Ok(total as f64)
}

pub(crate) fn library(lua: &Lua) -> mlua::Result<Table> {
    let library = lua.create_table()?;
    library.set("pack", lua.create_function(|lua, args: Variadic<Value>| pack(lua, &args))?)?;
    library.set("unpack", lua.create_function(|lua, args: Variadic<Value>| unpack(lua, &args))?)?;
    library.set("size", lua.create_function(|lua, args: Variadic<Value>| size(lua, &args))?)?;
    Ok(library)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lua() -> Lua {
        let lua = Lua::new();
        lua.globals().set("struct", library(&lua).unwrap()).unwrap();
        lua
    }

    fn bytes(lua: &Lua, code: &str) -> Vec<u8> {
        lua.load(code).eval::<mlua::LuaString>().unwrap().as_bytes().to_vec()
    }

    fn error(lua: &Lua, code: &str) -> String {
        let error = lua.load(code).exec().unwrap_err();
        super::super::engine::innermost(&error)
    }

    #[test]
    fn integers_pack_in_either_order_with_alignment() {
        let lua = lua();
        assert_eq!(bytes(&lua, "return struct.pack('>h', 258)"), [1, 2]);
        assert_eq!(bytes(&lua, "return struct.pack('<i3', -2)"), [0xfe, 0xff, 0xff]);
        assert_eq!(bytes(&lua, "return struct.pack('!4 b i', 1, 2)"), [1, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(bytes(&lua, "return struct.pack('>i10', -1)"), [0, 0, 255, 255, 255, 255, 255, 255, 255, 255]);
        assert_eq!(bytes(&lua, "return struct.pack('c0 s', 'ab', 'c')"), b"abc\0");
    }

    #[test]
    fn unpack_reads_back_and_answers_the_next_offset() {
        let lua = lua();
        let values: Vec<f64> = lua
            .load("return {struct.unpack('>h b B', struct.pack('>h b B', -300, -1, 255))}")
            .eval::<Vec<f64>>()
            .unwrap();
        assert_eq!(values, [-300.0, -1.0, 255.0, 5.0]);
        let text: (String, f64) = lua.load("return struct.unpack('b c0', '\\3abcd')").eval().unwrap();
        assert_eq!(text, ("abc".to_owned(), 5.0));
        assert_eq!(lua.load("return struct.unpack('<d', struct.pack('<d', 1.5))").eval::<f64>().unwrap(), 1.5);
        assert_eq!(lua.load("return struct.unpack('s', 'hi\\0', 1)").eval::<String>().unwrap(), "hi");
        assert_eq!(lua.load("return struct.size('!8 b d i2')").eval::<f64>().unwrap(), 18.0);
    }

    #[test]
    fn errors_word_as_struct_c_does() {
        let lua = lua();
        assert_eq!(error(&lua, "struct.pack('y')"), "bad argument #1 to 'pack' (invalid format option 'y')");
        assert_eq!(error(&lua, "struct.pack('c3', 'ab')"), "bad argument #3 to 'pack' (string too short)");
        assert_eq!(error(&lua, "struct.pack('i')"), "bad argument #2 to 'pack' (number expected, got nil)");
        assert_eq!(error(&lua, "struct.pack('i i i', 1)"), "bad argument #3 to 'pack' (number expected, got nil)");
        assert_eq!(error(&lua, "struct.unpack('b')"), "bad argument #2 to 'unpack' (string expected, got no value)");
        assert_eq!(error(&lua, "struct.pack('i33')"), "integral size 33 is larger than limit of 32");
        assert_eq!(error(&lua, "struct.pack('!3')"), "alignment 3 is not a power of 2");
        assert_eq!(error(&lua, "struct.unpack('i', 'ab')"), "bad argument #2 to 'unpack' (data string too short)");
        assert_eq!(
            error(&lua, "struct.unpack('b', 'a', 0)"),
            "bad argument #3 to 'unpack' (offset must be 1 or greater)"
        );
        assert_eq!(error(&lua, "struct.unpack('c0', 'a')"), "format 'c0' needs a previous size");
        assert_eq!(error(&lua, "struct.unpack('s', 'a')"), "unfinished string in data");
        assert_eq!(error(&lua, "struct.size('s')"), "bad argument #1 to 'size' (option 's' has no fixed size)");
        assert_eq!(error(&lua, "struct.pack('i99999999999')"), "integral size overflow");
    }
}
