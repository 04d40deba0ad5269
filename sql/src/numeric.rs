//! `numeric`: exact decimals with PostgreSQL's scale rules, on
//! `rust_decimal` (28 significant digits; more is 22003, where
//! PostgreSQL goes to 1000).
//!
//! A value keeps its scale (display digits after the point): `1.50` stays
//! `1.50`. Sums and differences take the larger scale, products the sum
//! of the scales, quotients PostgreSQL's `select_div_scale` (at least 16
//! significant digits), all rounded half away from zero.

use std::cmp::Ordering;

use rust_decimal::{Decimal, RoundingStrategy};

use crate::error::{code, SqlError};

/// The most digits after the point a result keeps.
const MAX_SCALE: u32 = 28;

/// PostgreSQL's minimum significant digits of a quotient.
const MIN_SIG_DIGITS: i64 = 16;

fn overflow() -> SqlError {
    SqlError::new(code::NUMERIC_VALUE_OUT_OF_RANGE, "value overflows numeric format")
}

/// Serde for a decimal as its 16-byte form (postcard cannot read
/// `rust_decimal`'s own string form).
pub mod bytes {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
        value.serialize().serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
        Ok(Decimal::deserialize(<[u8; 16]>::deserialize(deserializer)?))
    }
}

/// PostgreSQL's text input of a numeric: digits with an optional point
/// and exponent; `None` when it is not a number.
pub fn parse(text: &str) -> Result<Option<Decimal>, SqlError> {
    let text = text.trim();
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => {
            let Ok(exponent) = text[at + 1..].parse::<i32>() else { return Ok(None) };
            (&text[..at], exponent)
        }
        None => (text, 0),
    };
    let digits = mantissa.trim_start_matches(['+', '-']);
    if digits.is_empty()
        || digits == "."
        || mantissa.len() - digits.len() > 1
        || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        || digits.bytes().filter(|&b| b == b'.').count() > 1
    {
        return Ok(None);
    }
    let mut value = Decimal::from_str_exact(mantissa).map_err(|_| overflow())?;
    if exponent != 0 {
        let scale = i64::from(value.scale()) - i64::from(exponent);
        let power = Decimal::from_i128_with_scale(1, 0);
        let ten = Decimal::from(10);
        let mut factor = power;
        for _ in 0..exponent.unsigned_abs().min(40) {
            factor = factor.checked_mul(ten).ok_or_else(overflow)?;
        }
        value =
            if exponent > 0 { value.checked_mul(factor) } else { value.checked_div(factor) }.ok_or_else(overflow)?;
        value.rescale(u32::try_from(scale.clamp(0, i64::from(MAX_SCALE))).expect("clamped"));
    }
    Ok(Some(value))
}

/// The text PostgreSQL prints: every digit of the scale, no `-0`.
pub fn text(value: &Decimal) -> String {
    let mut value = *value;
    if value.is_zero() {
        value.set_sign_positive(true);
    }
    value.to_string()
}

/// `value` rounded to `scale` digits after the point, half away from zero.
pub fn round(value: Decimal, scale: u32) -> Decimal {
    let mut rounded = value.round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(scale);
    rounded
}

/// `value` as a `numeric(precision, scale)` column stores it.
pub fn fit(value: Decimal, precision: u32, scale: u32) -> Result<Decimal, SqlError> {
    let rounded = round(value, scale);
    let integer_digits = rounded.trunc().abs().to_string().trim_start_matches('0').len() as u32;
    if integer_digits > precision - scale {
        return Err(SqlError::new(code::NUMERIC_VALUE_OUT_OF_RANGE, "numeric field overflow"));
    }
    Ok(rounded)
}

pub fn add(a: Decimal, b: Decimal) -> Result<Decimal, SqlError> {
    let scale = a.scale().max(b.scale());
    a.checked_add(b).map(|sum| round(sum, scale)).ok_or_else(overflow)
}

pub fn sub(a: Decimal, b: Decimal) -> Result<Decimal, SqlError> {
    let scale = a.scale().max(b.scale());
    a.checked_sub(b).map(|difference| round(difference, scale)).ok_or_else(overflow)
}

pub fn mul(a: Decimal, b: Decimal) -> Result<Decimal, SqlError> {
    let scale = (a.scale() + b.scale()).min(MAX_SCALE);
    a.checked_mul(b).map(|product| round(product, scale)).ok_or_else(overflow)
}

fn division_by_zero() -> SqlError {
    SqlError::new(code::DIVISION_BY_ZERO, "division by zero")
}

pub fn div(a: Decimal, b: Decimal) -> Result<Decimal, SqlError> {
    if b.is_zero() {
        return Err(division_by_zero());
    }
    let scale = division_scale(&a, &b);
    a.checked_div(b).map(|quotient| round(quotient, scale)).ok_or_else(overflow)
}

pub fn rem(a: Decimal, b: Decimal) -> Result<Decimal, SqlError> {
    if b.is_zero() {
        return Err(division_by_zero());
    }
    let scale = a.scale().max(b.scale());
    a.checked_rem(b).map(|r| round(r, scale)).ok_or_else(overflow)
}

/// The weight and first digit of `value` in base 10000, as PostgreSQL
/// stores numerics: `value` is `first * 10000^weight` plus less.
fn base_10000_lead(value: &Decimal) -> (i64, i64) {
    if value.is_zero() {
        return (0, 0);
    }
    let magnitude = value.abs();
    // Digits before the point, or the position of the first nonzero
    // digit after it (negative).
    let text = magnitude.to_string();
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let whole = whole.trim_start_matches('0');
    if !whole.is_empty() {
        let digits = whole.len() as i64;
        let weight = (digits - 1) / 4;
        let lead_len = (digits - 1) % 4 + 1;
        let first: i64 = whole[..lead_len as usize].parse().expect("digits");
        return (weight, first);
    }
    let zeros = fraction.len() - fraction.trim_start_matches('0').len();
    // Fraction digits group in fours from the point: group g (0-based)
    // has weight -(g + 1).
    let group = zeros / 4;
    let weight = -(group as i64) - 1;
    let padded = format!("{fraction:0<width$}", width = (group + 1) * 4);
    let first: i64 = padded[group * 4..group * 4 + 4].parse().expect("digits");
    (weight, first)
}

/// PostgreSQL's `select_div_scale`: enough digits after the point for
/// at least 16 significant digits, and no fewer than either operand has.
fn division_scale(a: &Decimal, b: &Decimal) -> u32 {
    let (weight1, first1) = base_10000_lead(a);
    let (weight2, first2) = base_10000_lead(b);
    let mut quotient_weight = weight1 - weight2;
    if first1 <= first2 {
        quotient_weight -= 1;
    }
    let scale = (MIN_SIG_DIGITS - quotient_weight * 4).max(i64::from(a.scale())).max(i64::from(b.scale())).max(0);
    u32::try_from(scale.min(i64::from(MAX_SCALE))).expect("bounded")
}

/// Compares exactly.
pub fn compare(a: &Decimal, b: &Decimal) -> Ordering {
    a.cmp(b)
}

/// From an integer (scale 0).
pub fn from_int(n: i64) -> Decimal {
    Decimal::from(n)
}

/// From a float, as PostgreSQL's cast: its 15 significant digits.
pub fn from_float(x: f64) -> Result<Decimal, SqlError> {
    if !x.is_finite() {
        return Err(SqlError::unsupported("numeric NaN and Infinity"));
    }
    let text = format!("{x:.*e}", 14);
    let parsed = parse(&text)?.ok_or_else(overflow)?;
    Ok(parsed.normalize())
}

/// To an integer, rounded half away from zero; `None` out of `i64`.
pub fn to_int(value: &Decimal) -> Option<i64> {
    let rounded = value.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
    i64::try_from(rounded.mantissa() / 10i128.pow(rounded.scale())).ok()
}

pub fn to_float(value: &Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    value.to_f64().unwrap_or(f64::NAN)
}

/// Appends an order-preserving encoding: equal values (whatever their
/// scale) encode equally, and byte order is numeric order.
pub fn encode_key(value: &Decimal, out: &mut Vec<u8>) {
    let normalized = value.normalize();
    if normalized.is_zero() {
        out.push(0x01);
        return;
    }
    // value = 0.d1d2… × 10^exponent, d1 ≠ 0.
    let text = normalized.abs().to_string();
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let whole = whole.trim_start_matches('0');
    let (exponent, digits) = if whole.is_empty() {
        let significant = fraction.trim_start_matches('0');
        (-((fraction.len() - significant.len()) as i16), significant.to_string())
    } else {
        (whole.len() as i16, format!("{whole}{fraction}"))
    };
    let digits = digits.trim_end_matches('0');
    let mut body = ((exponent as u16) ^ 0x8000).to_be_bytes().to_vec();
    body.extend(digits.bytes());
    body.push(0x00);
    if normalized.is_sign_negative() {
        out.push(0x00);
        out.extend(body.iter().map(|b| !b));
    } else {
        out.push(0x02);
        out.extend(body);
    }
}

/// PostgreSQL's binary form (`numeric_send`): digit count, weight, sign,
/// display scale, then base-10000 digits.
pub fn to_binary(value: &Decimal) -> Vec<u8> {
    let scale = value.scale();
    let text = text(&value.abs());
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let whole = whole.trim_start_matches('0');
    // Pad the whole part on the left and the fraction on the right to
    // groups of four.
    let whole = format!("{}{whole}", "0".repeat((4 - whole.len() % 4) % 4));
    let fraction = format!("{fraction}{}", "0".repeat((4 - fraction.len() % 4) % 4));
    let mut groups: Vec<i16> = whole
        .as_bytes()
        .chunks(4)
        .chain(fraction.as_bytes().chunks(4))
        .map(|g| std::str::from_utf8(g).expect("digits").parse().expect("digits"))
        .collect();
    let mut weight = (whole.len() / 4) as i16 - 1;
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let sign: u16 = if value.is_sign_negative() && !value.is_zero() { 0x4000 } else { 0 };
    let mut out = Vec::with_capacity(8 + 2 * groups.len());
    out.extend((groups.len() as i16).to_be_bytes());
    out.extend(weight.to_be_bytes());
    out.extend(sign.to_be_bytes());
    out.extend((scale as i16).to_be_bytes());
    for group in groups {
        out.extend(group.to_be_bytes());
    }
    out
}

/// Reads PostgreSQL's binary form; `None` when malformed.
pub fn from_binary(bytes: &[u8]) -> Option<Decimal> {
    let field = |i: usize| bytes.get(i * 2..i * 2 + 2).map(|b| i16::from_be_bytes([b[0], b[1]]));
    let (count, weight, sign, scale) = (field(0)?, field(1)?, field(2)? as u16, field(3)?);
    if count < 0 || scale < 0 || bytes.len() != 8 + 2 * count as usize || !matches!(sign, 0 | 0x4000) {
        return None;
    }
    let mut value = Decimal::ZERO;
    let base = Decimal::from(10_000);
    for i in 0..count as usize {
        let digit = field(4 + i)?;
        if !(0..10_000).contains(&digit) {
            return None;
        }
        let position = i64::from(weight) - i as i64;
        let mut term = Decimal::from(digit);
        for _ in 0..position.unsigned_abs() {
            term = if position > 0 { term.checked_mul(base)? } else { term.checked_div(base)? };
        }
        value = value.checked_add(term)?;
    }
    let mut value = round(value, u32::try_from(scale).ok()?.min(MAX_SCALE));
    value.set_sign_negative(sign == 0x4000);
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> Decimal {
        parse(text).unwrap().unwrap()
    }

    #[test]
    fn arithmetic_keeps_postgresql_scales() {
        assert_eq!(text(&add(n("1.50"), n("2")).unwrap()), "3.50");
        assert_eq!(text(&mul(n("1.5"), n("2.25")).unwrap()), "3.375");
        assert_eq!(text(&div(n("1"), n("3")).unwrap()), "0.33333333333333333333");
        assert_eq!(text(&div(n("10"), n("4")).unwrap()), "2.5000000000000000");
        assert_eq!(text(&div(n("1000000"), n("3")).unwrap()), "333333.333333333333");
        assert_eq!(text(&n("1e3")), "1000");
        assert_eq!(text(&n("-0.0")), "0.0");
        assert_eq!(text(&fit(n("2.345"), 5, 2).unwrap()), "2.35");
        assert!(fit(n("1234.5"), 5, 2).is_err());
        assert_eq!(parse("1.2.3").unwrap(), None);
    }

    #[test]
    fn keys_order_and_equate_like_numbers() {
        let key = |t: &str| {
            let mut out = Vec::new();
            encode_key(&n(t), &mut out);
            out
        };
        let ordered = ["-100", "-1.5", "-1.25", "-0.001", "0", "0.001", "0.0011", "1", "1.25", "1.5", "10", "100.5"];
        let keys: Vec<Vec<u8>> = ordered.iter().map(|t| key(t)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{ordered:?}");
        assert_eq!(key("1.50"), key("1.5"));
    }

    #[test]
    fn binary_form_round_trips() {
        for t in ["0", "1.50", "-12345.6789", "0.0001", "10000", "123456789.000001"] {
            let value = n(t);
            assert_eq!(text(&from_binary(&to_binary(&value)).unwrap()), t, "{t}");
        }
        assert_eq!(to_binary(&n("10000")), [0, 1, 0, 1, 0, 0, 0, 0, 0, 1]);
    }
}
