//! Redis's number syntax: what counts as an integer or a float in a value or
//! an argument, and how results are printed.

/// Parses an integer exactly as Redis's `string2ll`: optional `-`, digits,
/// no leading zeros, no spaces or `+`, within `i64`.
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || bytes.len() > 20 {
        return None;
    }
    if bytes == b"0" {
        return Some(0);
    }
    let (negative, digits) = match bytes[0] {
        b'-' => (true, &bytes[1..]),
        _ => (false, bytes),
    };
    if digits.is_empty() || !(b'1'..=b'9').contains(&digits[0]) || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut magnitude: u64 = 0;
    for &d in digits {
        magnitude = magnitude.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        if magnitude == 1 << 63 {
            Some(i64::MIN)
        } else {
            i64::try_from(magnitude).ok().map(|m| -m)
        }
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Parses a float as Redis does for INCRBYFLOAT and score arguments:
/// no surrounding spaces, not NaN; `inf` and exponents are accepted.
pub fn parse_f64(bytes: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.is_empty()
        || text.starts_with(|c: char| c.is_ascii_whitespace())
        || text.ends_with(|c: char| c.is_ascii_whitespace())
    {
        return None;
    }
    let value: f64 = text.parse().ok().or_else(|| parse_hex_float(text))?;
    (!value.is_nan()).then_some(value)
}

/// A C99 hexadecimal float (`0x1.8p3`, `-0x310`), which Redis accepts
/// because it parses with `strtod`/`strtold`.
fn parse_hex_float(text: &str) -> Option<f64> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let rest = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X"))?;
    let (mantissa, exponent) = match rest.find(['p', 'P']) {
        Some(p) => (&rest[..p], rest[p + 1..].parse::<i32>().ok()?),
        None => (rest, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut value = 0f64;
    for digit in whole.chars() {
        value = value * 16.0 + f64::from(digit.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for digit in fraction.chars() {
        value += f64::from(digit.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    let value = value * 2f64.powi(exponent);
    Some(if negative { -value } else { value })
}

/// Parses a number as C's `strtod` does where Redis uses it (SORT's
/// scores): leading whitespace skipped, an empty rest is 0, trailing bytes
/// and NaN refused.
pub fn parse_strtod(bytes: &[u8]) -> Option<f64> {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    let rest = std::str::from_utf8(&bytes[start..]).ok()?;
    if rest.is_empty() {
        return Some(0.0);
    }
    rest.parse::<f64>().ok().filter(|value| !value.is_nan())
}

/// Formats a float result the way INCRBYFLOAT prints it: the shortest
/// decimal that reads back as the same value, without exponent.
pub fn format_f64(value: f64) -> String {
    if value == 0.0 {
        // Never print "-0".
        return "0".into();
    }
    format!("{value}")
}

/// Redis's "human" rendering of a long double, as GEOPOS replies
/// coordinates: `%.17Lf` with the trailing zeros (and a bare point)
/// dropped, `-0` as `0`. A double converts to a long double exactly, so
/// the exact decimal of the `f64` gives the same digits.
pub fn format_human(value: f64) -> String {
    if value.is_infinite() {
        return if value > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let mut text = format!("{value:.17}");
    while text.ends_with('0') {
        text.pop();
    }
    if text.ends_with('.') {
        text.pop();
    }
    if text == "-0" {
        text = "0".into();
    }
    text
}

/// The text INCRBYFLOAT and HINCRBYFLOAT store for `current + delta`.
///
/// Redis adds in `long double` and prints `%.17Lg`; for the short
/// decimals people use, that is the exact decimal sum (`0.1 + 0.2` is
/// `0.3`, where `f64` would give `0.30000000000000004`). So when both
/// operands are plain decimals and the exact sum has at most 17
/// significant digits in `%g`'s fixed-point range, the exact sum is the
/// answer; otherwise the `f64` sum `next`, printed by [`format_f64`].
pub fn float_sum_text(current: &[u8], delta: f64, next: f64) -> String {
    decimal_sum(current, delta).unwrap_or_else(|| format_f64(next))
}

/// A decimal as `mantissa * 10^-scale`.
fn parse_decimal(text: &str) -> Option<(i128, u32)> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty() || whole.len() + fraction.len() > 30 {
        return None;
    }
    if !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mantissa: i128 = format!("{whole}{fraction}").parse().ok()?;
    Some((if negative { -mantissa } else { mantissa }, fraction.len() as u32))
}

fn decimal_sum(current: &[u8], delta: f64) -> Option<String> {
    let (a, a_scale) = parse_decimal(std::str::from_utf8(current).ok()?)?;
    let (b, b_scale) = parse_decimal(&format!("{delta}"))?;
    let scale = a_scale.max(b_scale);
    let sum = a
        .checked_mul(10i128.checked_pow(scale - a_scale)?)?
        .checked_add(b.checked_mul(10i128.checked_pow(scale - b_scale)?)?)?;
    let mut digits = sum.unsigned_abs().to_string();
    if digits.len() <= scale as usize {
        digits = format!("{}{digits}", "0".repeat(scale as usize + 1 - digits.len()));
    }
    let point = digits.len() - scale as usize;
    let (whole, fraction) = digits.split_at(point);
    let fraction = fraction.trim_end_matches('0');
    let significant = format!("{whole}{fraction}").trim_start_matches('0').len();
    // %g's fixed-point range (exponent -4..17) with 17 significant digits.
    let exponent_ok =
        whole.len() <= 17 && (whole != "0" || fraction.len() - fraction.trim_start_matches('0').len() < 4);
    if sum == 0 {
        return Some("0".into());
    }
    if significant > 17 || !exponent_ok {
        return None;
    }
    let sign = if sum < 0 { "-" } else { "" };
    Some(if fraction.is_empty() { format!("{sign}{whole}") } else { format!("{sign}{whole}.{fraction}") })
}

/// `start..=stop` of a list of `len` elements after Redis's clamping of
/// negative and out-of-range indexes (LRANGE, LTRIM), or `None` if empty.
pub(crate) fn clamp_range(start: i64, stop: i64, len: i64) -> Option<(i64, i64)> {
    let start = if start < 0 { (len + start).max(0) } else { start };
    let stop = if stop < 0 { len + stop } else { stop };
    let stop = stop.min(len - 1);
    (start <= stop && start < len).then_some((start, stop))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_scores_parse_like_strtod() {
        assert_eq!(parse_strtod(b""), Some(0.0));
        assert_eq!(parse_strtod(b"  2.5"), Some(2.5));
        assert_eq!(parse_strtod(b"2.5 "), None);
        assert_eq!(parse_strtod(b"x y"), None);
        assert_eq!(parse_strtod(b"nan"), None);
    }

    #[test]
    fn float_sums_print_the_exact_decimal_like_redis() {
        let sum = |current: &str, delta: f64| {
            let next = current.parse::<f64>().unwrap() + delta;
            float_sum_text(current.as_bytes(), delta, next)
        };
        assert_eq!(sum("0.1", 0.2), "0.3");
        assert_eq!(sum("3.5007", -2.5), "1.0007");
        assert_eq!(sum("10.5", 0.1), "10.6");
        assert_eq!(sum("1", -1.0), "0");
        assert_eq!(sum("-2.75", 1.25), "-1.5");
        assert_eq!(sum("5000", 0.5), "5000.5");
        assert_eq!(sum("007", 1.25), "8.25");
        // Outside the exact path: the f64 sum.
        assert_eq!(sum("1e3", 1.0), "1001");
        assert_eq!(sum("0.00001", 0.0), format_f64(0.00001));
    }

    #[test]
    fn integers_follow_string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [&b""[..], b"-", b"-0", b"01", b"+1", b" 1", b"1 ", b"1.0", b"9223372036854775808", b"abc"] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn floats_parse_and_print_like_redis() {
        assert_eq!(parse_f64(b"10.5"), Some(10.5));
        assert_eq!(parse_f64(b"5.0e3"), Some(5000.0));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b"0x310"), Some(784.0));
        assert_eq!(parse_f64(b"-0x1.8p1"), Some(-3.0));
        assert_eq!(parse_f64(b"0x"), None);
        assert_eq!(format_f64(10.5 + 0.1), "10.6");
        assert_eq!(format_f64(5000.0), "5000");
        assert_eq!(format_f64(-0.0), "0");
        assert_eq!(format_f64(3.0e20), "300000000000000000000");
    }
}
