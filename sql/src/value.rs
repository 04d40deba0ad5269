//! Values, PostgreSQL's text forms of them, comparisons and casts.
//!
//! Integers of every width are held as `i64` and floats of both widths as
//! `f64`; the [`DataType`] an expression or column has decides the range a
//! value must fit (22003 otherwise) and how it prints.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use rust_decimal::Decimal;

use crate::datetime;
use crate::error::{code, SqlError};
use crate::numeric;
use crate::types::DataType;

/// A value of a row or an expression. `Null` is SQL's NULL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    // Appended after the first release: stored rows encode variants by
    // position.
    Bytes(Vec<u8>),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since 1970-01-01 00:00 (UTC for `timestamptz`).
    Timestamp(i64),
    Uuid(u128),
    Numeric(#[serde(with = "crate::numeric::bytes")] Decimal),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The text PostgreSQL sends for this value of type `ty` (`None` for
    /// NULL).
    pub fn to_text(&self, ty: DataType) -> Option<String> {
        Some(match self {
            Value::Null => return None,
            Value::Bool(b) => if *b { "t" } else { "f" }.to_string(),
            Value::Int(n) => n.to_string(),
            Value::Float(x) if ty == DataType::Float4 => float_text(*x as f32 as f64, 6, true),
            Value::Float(x) => float_text(*x, 15, false),
            Value::Text(s) => s.clone(),
            Value::Bytes(bytes) => {
                let mut text = String::with_capacity(2 + 2 * bytes.len());
                text.push_str("\\x");
                for byte in bytes {
                    text.push_str(&format!("{byte:02x}"));
                }
                text
            }
            Value::Date(days) => datetime::date_text(*days),
            Value::Timestamp(micros) => datetime::timestamp_text(*micros, ty),
            Value::Uuid(uuid) => uuid_text(*uuid),
            Value::Numeric(value) => numeric::text(value),
        })
    }

    /// SQL comparison: `None` when either side is NULL. Integers and
    /// floats compare numerically; text compares by bytes (the C collation).
    pub fn compare(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Null, _) | (_, Value::Null) => None,
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
            (Value::Int(a), Value::Float(b)) => Some(float_order(*a as f64, *b)),
            (Value::Float(a), Value::Int(b)) => Some(float_order(*a, *b as f64)),
            (Value::Float(a), Value::Float(b)) => Some(float_order(*a, *b)),
            (Value::Text(a), Value::Text(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
            (Value::Bytes(a), Value::Bytes(b)) => Some(a.cmp(b)),
            (Value::Date(a), Value::Date(b)) => Some(a.cmp(b)),
            (Value::Timestamp(a), Value::Timestamp(b)) => Some(a.cmp(b)),
            (Value::Date(a), Value::Timestamp(b)) => Some(datetime::date_to_timestamp(*a).cmp(b)),
            (Value::Timestamp(a), Value::Date(b)) => Some(a.cmp(&datetime::date_to_timestamp(*b))),
            (Value::Uuid(a), Value::Uuid(b)) => Some(a.cmp(b)),
            (Value::Numeric(a), Value::Numeric(b)) => Some(numeric::compare(a, b)),
            (Value::Numeric(a), Value::Int(b)) => Some(numeric::compare(a, &numeric::from_int(*b))),
            (Value::Int(a), Value::Numeric(b)) => Some(numeric::compare(&numeric::from_int(*a), b)),
            // As PostgreSQL: numeric against a float compares as floats.
            (Value::Numeric(a), Value::Float(b)) => Some(float_order(numeric::to_float(a), *b)),
            (Value::Float(a), Value::Numeric(b)) => Some(float_order(*a, numeric::to_float(b))),
            _ => None,
        }
    }

    /// The order ORDER BY and primary keys use: NULL after every value.
    pub fn sort_order(&self, other: &Value) -> Ordering {
        match (self.is_null(), other.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => self.compare(other).unwrap_or(Ordering::Equal),
        }
    }

    /// Converts to `to` as `CAST` does (PostgreSQL's rules for these types).
    pub fn cast(self, to: DataType) -> Result<Value, SqlError> {
        match (self, to) {
            (Value::Null, _) => Ok(Value::Null),
            (Value::Bool(b), DataType::Bool) => Ok(Value::Bool(b)),
            (Value::Bool(b), DataType::Int4) => Ok(Value::Int(b as i64)),
            (Value::Bool(b), t) if t.is_text() => fit_text(if b { "true" } else { "false" }.to_string(), t, true),
            (Value::Int(n), DataType::Bool) => Ok(Value::Bool(n != 0)),
            (Value::Int(n), t) if t.is_integer() => check_int(n, t),
            (Value::Int(n), t) if t.is_float() => Ok(Value::Float(n as f64)),
            (Value::Int(n), t) if t.is_text() => fit_text(n.to_string(), t, true),
            (Value::Float(x), t) if t.is_integer() => {
                if !x.is_finite() || x.round_ties_even() < -9.3e18 || x.round_ties_even() > 9.3e18 {
                    return Err(out_of_range(t));
                }
                check_int(x.round_ties_even() as i64, t)
            }
            (Value::Float(x), DataType::Float4) => {
                let narrowed = x as f32;
                if x.is_finite() && narrowed.is_infinite() {
                    return Err(SqlError::new(code::NUMERIC_VALUE_OUT_OF_RANGE, "value out of range: overflow"));
                }
                Ok(Value::Float(narrowed as f64))
            }
            (Value::Float(x), DataType::Float8) => Ok(Value::Float(x)),
            (Value::Float(x), t) if t.is_text() => fit_text(float_text(x, 15, false), t, true),
            (Value::Int(n), DataType::Numeric(limit)) => fit_numeric(numeric::from_int(n), limit),
            (Value::Float(x), DataType::Numeric(limit)) => fit_numeric(numeric::from_float(x)?, limit),
            (Value::Numeric(d), DataType::Numeric(limit)) => fit_numeric(d, limit),
            (Value::Numeric(d), t) if t.is_integer() => match numeric::to_int(&d) {
                Some(n) => check_int(n, t),
                None => Err(out_of_range(t)),
            },
            (Value::Numeric(d), t) if t.is_float() => Value::Float(numeric::to_float(&d)).cast(t),
            (Value::Date(d), DataType::Date) => Ok(Value::Date(d)),
            (Value::Date(d), DataType::Timestamp | DataType::Timestamptz) => {
                Ok(Value::Timestamp(datetime::date_to_timestamp(d)))
            }
            (Value::Timestamp(t), DataType::Timestamp | DataType::Timestamptz) => Ok(Value::Timestamp(t)),
            (Value::Timestamp(t), DataType::Date) => Ok(Value::Date(datetime::timestamp_to_date(t)?)),
            (Value::Uuid(u), DataType::Uuid) => Ok(Value::Uuid(u)),
            (Value::Bytes(b), DataType::Bytea) => Ok(Value::Bytes(b)),
            (Value::Text(s), DataType::Bytea) => Ok(Value::Bytes(parse_bytea(&s)?)),
            (Value::Text(s), t) => parse_text(&s, t),
            (
                value @ (Value::Bytes(_) | Value::Date(_) | Value::Timestamp(_) | Value::Uuid(_) | Value::Numeric(_)),
                t,
            ) if t.is_text() => {
                let text = value.to_text(value.natural_type()).unwrap_or_default();
                fit_text(text, t, true)
            }
            (value, t) => {
                Err(SqlError::new(code::DATATYPE_MISMATCH, format!("cannot cast {} to {}", value.kind(), t.name())))
            }
        }
    }

    /// Converts a value for storage in a column of type `to` (an
    /// assignment cast: a too-long string is an error, not truncated).
    pub fn assign(self, to: DataType) -> Result<Value, SqlError> {
        match (self, to) {
            (Value::Text(s), t) if t.is_text() => fit_text(s, t, false),
            (
                value @ (Value::Bytes(_) | Value::Date(_) | Value::Timestamp(_) | Value::Uuid(_) | Value::Numeric(_)),
                t,
            ) if t.is_text() => value.cast(t),
            (value, t) => value.cast(t),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "double precision",
            Value::Text(_) => "text",
            Value::Bytes(_) => "bytea",
            Value::Date(_) => "date",
            Value::Timestamp(_) => "timestamp",
            Value::Uuid(_) => "uuid",
            Value::Numeric(_) => "numeric",
        }
    }

    /// The type whose text form a value takes when cast to text without a
    /// declared type (a timestamp prints without an offset).
    fn natural_type(&self) -> DataType {
        match self {
            Value::Timestamp(_) => DataType::Timestamp,
            Value::Date(_) => DataType::Date,
            _ => DataType::Text,
        }
    }
}

fn fit_numeric(value: Decimal, limit: Option<(u32, u32)>) -> Result<Value, SqlError> {
    Ok(Value::Numeric(match limit {
        Some((precision, scale)) => numeric::fit(value, precision, scale)?,
        None => value,
    }))
}

/// A uuid's text: 8-4-4-4-12 lowercase hex digits.
fn uuid_text(uuid: u128) -> String {
    let hex = format!("{uuid:032x}");
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// PostgreSQL's uuid input: 32 hex digits, optionally in braces, with a
/// hyphen after any group of four.
fn parse_uuid(text: &str) -> Result<u128, SqlError> {
    let invalid =
        || SqlError::new(code::INVALID_TEXT_REPRESENTATION, format!("invalid input syntax for type uuid: \"{text}\""));
    let trimmed = text.trim();
    let inner = trimmed.strip_prefix('{').and_then(|t| t.strip_suffix('}')).unwrap_or(trimmed);
    let mut digits = String::with_capacity(32);
    let mut previous = None;
    for c in inner.chars() {
        match c {
            '-' if previous.is_some_and(|p: char| p != '-') && digits.len().is_multiple_of(4) => {}
            c if c.is_ascii_hexdigit() => digits.push(c),
            _ => return Err(invalid()),
        }
        previous = Some(c);
    }
    if digits.len() != 32 || inner.ends_with('-') {
        return Err(invalid());
    }
    u128::from_str_radix(&digits, 16).map_err(|_| invalid())
}

/// PostgreSQL's bytea input: `\x` then hex digit pairs, or the escape
/// form (bytes as themselves, `\\` and `\ooo` octal escapes).
fn parse_bytea(text: &str) -> Result<Vec<u8>, SqlError> {
    if let Some(hex) = text.strip_prefix("\\x") {
        let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        let invalid = |what: &str| SqlError::new(code::INVALID_TEXT_REPRESENTATION, what.to_string());
        if digits.len() % 2 == 1 {
            return Err(invalid("invalid hexadecimal data: odd number of digits"));
        }
        return digits
            .chunks(2)
            .map(|pair| {
                let pair = std::str::from_utf8(pair).unwrap_or("");
                u8::from_str_radix(pair, 16).map_err(|_| {
                    invalid(&format!(
                        "invalid hexadecimal digit: \"{}\"",
                        pair.chars().find(|c| !c.is_ascii_hexdigit()).unwrap_or('?')
                    ))
                })
            })
            .collect();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
        } else if bytes.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else if let Some(octal) =
            bytes.get(i + 1..i + 4).filter(|o| o[0] <= b'3' && o.iter().all(|b| (b'0'..=b'7').contains(b)))
        {
            out.push((octal[0] - b'0') * 64 + (octal[1] - b'0') * 8 + (octal[2] - b'0'));
            i += 4;
        } else {
            return Err(SqlError::new(code::INVALID_TEXT_REPRESENTATION, "invalid input syntax for type bytea"));
        }
    }
    Ok(out)
}

fn float_order(a: f64, b: f64) -> Ordering {
    // PostgreSQL orders NaN above every other float and equal to itself.
    a.partial_cmp(&b).unwrap_or_else(|| a.is_nan().cmp(&b.is_nan()))
}

pub(crate) fn out_of_range(ty: DataType) -> SqlError {
    let name = match ty {
        DataType::Int2 => "smallint",
        DataType::Int8 => "bigint",
        _ => "integer",
    };
    SqlError::new(code::NUMERIC_VALUE_OUT_OF_RANGE, format!("{name} out of range"))
}

/// `n` if it fits integer type `ty`, else 22003.
pub(crate) fn check_int(n: i64, ty: DataType) -> Result<Value, SqlError> {
    let fits = match ty {
        DataType::Int2 => i16::try_from(n).is_ok(),
        DataType::Int4 => i32::try_from(n).is_ok(),
        _ => true,
    };
    if fits {
        Ok(Value::Int(n))
    } else {
        Err(out_of_range(ty))
    }
}

/// `s` as a value of `ty` (`varchar(n)` truncates on an explicit cast,
/// refuses on assignment).
fn fit_text(s: String, ty: DataType, explicit: bool) -> Result<Value, SqlError> {
    let (limit, pad) = match ty {
        DataType::Varchar(Some(limit)) => (limit as usize, false),
        DataType::Char(Some(limit)) => (limit as usize, true),
        _ => return Ok(Value::Text(s)),
    };
    let fitted = match s.char_indices().nth(limit) {
        None => s,
        Some((cut, _)) if explicit => s[..cut].to_string(),
        Some(_) if s.chars().skip(limit).all(|c| c == ' ') => s.chars().take(limit).collect(),
        Some(_) => {
            return Err(SqlError::new(
                code::STRING_DATA_RIGHT_TRUNCATION,
                format!("value too long for type {}", ty.name()),
            ))
        }
    };
    // char(n) pads with blanks to its length.
    let length = fitted.chars().count();
    Ok(Value::Text(if pad && length < limit { format!("{fitted:<limit$}") } else { fitted }))
}

fn invalid_input(ty: DataType, text: &str) -> SqlError {
    let name = match ty {
        DataType::Float4 => "real".to_string(),
        DataType::Numeric(_) => "numeric".to_string(),
        other => other.name(),
    };
    SqlError::new(code::INVALID_TEXT_REPRESENTATION, format!("invalid input syntax for type {name}: \"{text}\""))
}

/// Parses PostgreSQL's text input of `ty`.
pub fn parse_text(s: &str, ty: DataType) -> Result<Value, SqlError> {
    let trimmed = s.trim();
    match ty {
        DataType::Bool => {
            let lower = trimmed.to_ascii_lowercase();
            let is_prefix = |word: &str| !lower.is_empty() && word.starts_with(lower.as_str());
            if is_prefix("true") || is_prefix("yes") || lower == "on" || lower == "1" {
                Ok(Value::Bool(true))
            } else if is_prefix("false") || is_prefix("no") || lower == "off" || lower == "of" || lower == "0" {
                Ok(Value::Bool(false))
            } else {
                Err(SqlError::new(
                    code::INVALID_TEXT_REPRESENTATION,
                    format!("invalid input syntax for type boolean: \"{s}\""),
                ))
            }
        }
        t if t.is_integer() => {
            let digits = trimmed.strip_prefix('+').unwrap_or(trimmed);
            if digits.is_empty() || !digits.trim_start_matches('-').bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid_input(t, s));
            }
            match digits.parse::<i64>() {
                Ok(n) => check_int(n, t),
                Err(_) => Err(out_of_range(t)),
            }
        }
        t if t.is_float() => {
            let lower = trimmed.to_ascii_lowercase();
            let x = match lower.as_str() {
                "nan" => f64::NAN,
                "infinity" | "+infinity" | "inf" | "+inf" => f64::INFINITY,
                "-infinity" | "-inf" => f64::NEG_INFINITY,
                _ if lower.contains("inf") || lower.contains("nan") || lower.is_empty() => {
                    return Err(invalid_input(t, s))
                }
                _ => lower.parse::<f64>().map_err(|_| invalid_input(t, s))?,
            };
            if x.is_infinite() && !lower.contains("inf") {
                return Err(SqlError::new(
                    code::NUMERIC_VALUE_OUT_OF_RANGE,
                    format!("\"{trimmed}\" is out of range for type {}", t.name()),
                ));
            }
            Value::Float(x).cast(t)
        }
        DataType::Date => Ok(Value::Date(datetime::parse_date(s)?)),
        DataType::Timestamp | DataType::Timestamptz => Ok(Value::Timestamp(datetime::parse_timestamp(s, ty)?)),
        DataType::Uuid => Ok(Value::Uuid(parse_uuid(s)?)),
        DataType::Bytea => Ok(Value::Bytes(parse_bytea(s)?)),
        DataType::Numeric(limit) => match numeric::parse(s)? {
            Some(value) => fit_numeric(value, limit),
            None => Err(invalid_input(ty, s)),
        },
        t => fit_text(s.to_string(), t, true),
    }
}

/// PostgreSQL's output of a float: the shortest text that reads back as
/// the same value, in exponent form when the decimal exponent is below -4
/// or at least `digits` (15 for double precision, 6 for real).
fn float_text(x: f64, digits: i32, single: bool) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let scientific = if single { format!("{:e}", x as f32) } else { format!("{x:e}") };
    let (mantissa, exponent) = scientific.split_once('e').expect("{:e} has an exponent");
    let exponent: i32 = exponent.parse().expect("{:e} exponent is an integer");
    if exponent < -4 || exponent >= digits {
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    if single {
        format!("{}", x as f32)
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_postgresql() {
        let text = |x: f64| Value::Float(x).to_text(DataType::Float8).unwrap();
        assert_eq!(text(1.5), "1.5");
        assert_eq!(text(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(text(1e20), "1e+20");
        assert_eq!(text(123456789012345.0), "123456789012345");
        assert_eq!(text(1234567890123456.0), "1.234567890123456e+15");
        assert_eq!(text(0.0001), "0.0001");
        assert_eq!(text(0.00001), "1e-05");
        assert_eq!(text(-2.0), "-2");
        assert_eq!(text(f64::INFINITY), "Infinity");
        assert_eq!(Value::Float(0.1).to_text(DataType::Float4).unwrap(), "0.1");
        assert_eq!(Value::Float(1234567.0).to_text(DataType::Float4).unwrap(), "1.234567e+06");
    }

    #[test]
    fn text_input_follows_postgresql() {
        assert_eq!(parse_text(" 42 ", DataType::Int4), Ok(Value::Int(42)));
        assert_eq!(parse_text("4x", DataType::Int4).unwrap_err().code, code::INVALID_TEXT_REPRESENTATION);
        assert_eq!(parse_text("40000", DataType::Int2).unwrap_err().message, "smallint out of range");
        assert_eq!(parse_text("ye", DataType::Bool), Ok(Value::Bool(true)));
        assert_eq!(parse_text("off", DataType::Bool), Ok(Value::Bool(false)));
        assert_eq!(parse_text("1e400", DataType::Float8).unwrap_err().code, code::NUMERIC_VALUE_OUT_OF_RANGE);
        assert_eq!(Value::Float(2.5).cast(DataType::Int4), Ok(Value::Int(2)));
        assert_eq!(Value::Float(3.5).cast(DataType::Int4), Ok(Value::Int(4)));
        let long = Value::Text("abcd".into());
        assert_eq!(long.clone().cast(DataType::Varchar(Some(2))), Ok(Value::Text("ab".into())));
        assert_eq!(long.assign(DataType::Varchar(Some(2))).unwrap_err().code, code::STRING_DATA_RIGHT_TRUNCATION);
    }
}
