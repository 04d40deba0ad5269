//! Dates and timestamps: PostgreSQL's ISO text forms (DateStyle `ISO`,
//! TimeZone `UTC`), and the time a statement runs at.
//!
//! A `date` is held as days since 1970-01-01; `timestamp` and
//! `timestamptz` as microseconds since 1970-01-01 00:00 (UTC for
//! `timestamptz`, whose text carries `+00`).
//!
//! # Statement time
//!
//! `now()`, `current_timestamp`, `current_date` and `localtimestamp` are
//! the time of the statement's transaction, bound as constants. Replicas
//! must agree on them, so whoever runs a statement says which time it
//! runs at ([`StatementTime::enter`]): apply uses the log entry's stamp
//! (or, for a transaction, the time its session fixed at its first
//! statement and logged with the commit); a read outside a transaction
//! uses the node's clock, which is also the default.

use std::cell::Cell;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

use crate::error::{code, SqlError};
use crate::types::DataType;

pub const MICROS_PER_DAY: i64 = 86_400_000_000;

thread_local! {
    static STATEMENT_TIME: Cell<Option<i64>> = const { Cell::new(None) };
    /// Whether a statement read its time since the innermost guard began.
    static TIME_READ: Cell<bool> = const { Cell::new(false) };
}

/// While alive, statements on this thread run at a given time.
pub struct StatementTime {
    previous: Option<i64>,
    previous_read: bool,
}

impl StatementTime {
    /// Statements bound on this thread until the guard drops run at
    /// `micros` (since the Unix epoch).
    pub fn enter(micros: i64) -> StatementTime {
        StatementTime {
            previous: STATEMENT_TIME.with(|t| t.replace(Some(micros))),
            previous_read: TIME_READ.with(|r| r.replace(false)),
        }
    }

    /// Whether a statement read the time since this guard began (`now()`
    /// and its kin): its outcome then depends on when it ran.
    pub fn was_read(&self) -> bool {
        TIME_READ.with(Cell::get)
    }
}

impl Drop for StatementTime {
    fn drop(&mut self) {
        STATEMENT_TIME.with(|t| t.set(self.previous));
        TIME_READ.with(|r| r.set(self.previous_read || r.get()));
    }
}

/// The node's clock, in microseconds since the Unix epoch.
pub fn wall_clock_micros() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
}

/// The time the current statement runs at.
pub fn statement_micros() -> i64 {
    TIME_READ.with(|r| r.set(true));
    STATEMENT_TIME.with(Cell::get).unwrap_or_else(wall_clock_micros)
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date")
}

fn invalid(ty: DataType, text: &str) -> SqlError {
    let name = match ty {
        DataType::Timestamp => "timestamp".to_string(),
        other => other.name(),
    };
    SqlError::new(code::INVALID_DATETIME_FORMAT, format!("invalid input syntax for type {name}: \"{text}\""))
}

fn out_of_range(text: &str) -> SqlError {
    SqlError::new(code::DATETIME_FIELD_OVERFLOW, format!("date/time field value out of range: \"{text}\""))
}

/// The range PostgreSQL reports when a result leaves the types' range.
pub fn result_out_of_range(ty: DataType) -> SqlError {
    let what = if ty == DataType::Date { "date" } else { "timestamp" };
    SqlError::new(code::DATETIME_VALUE_OUT_OF_RANGE, format!("{what} out of range"))
}

/// Parses `YYYY-MM-DD` (with an optional ` BC`) into days since the epoch.
fn parse_date_part(text: &str, ty: DataType, original: &str) -> Result<NaiveDate, SqlError> {
    let (text, bc) = match text.strip_suffix(" BC").or_else(|| text.strip_suffix(" bc")) {
        Some(rest) => (rest.trim_end(), true),
        None => (text, false),
    };
    let mut parts = text.splitn(3, '-');
    let (Some(year), Some(month), Some(day)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid(ty, original));
    };
    let number = |s: &str| -> Result<u32, SqlError> {
        if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(ty, original));
        }
        s.parse().map_err(|_| invalid(ty, original))
    };
    let (year, month, day) = (number(year)?, number(month)?, number(day)?);
    let year = i32::try_from(year).map_err(|_| out_of_range(original))?;
    let year = if bc { 1 - year } else { year };
    if year == 0 && !bc {
        return Err(out_of_range(original));
    }
    NaiveDate::from_ymd_opt(year, month, day).ok_or_else(|| out_of_range(original))
}

/// PostgreSQL's text input of a date.
pub fn parse_date(text: &str) -> Result<i32, SqlError> {
    let trimmed = text.trim();
    // A timestamp's date part is a date too ('2020-01-02 10:00').
    let date_part = trimmed.split([' ', 'T']).next().unwrap_or_default();
    let date_part = if trimmed.ends_with(" BC") { trimmed } else { date_part };
    let date = parse_date_part(date_part, DataType::Date, text)?;
    Ok(date.signed_duration_since(epoch()).num_days() as i32)
}

/// PostgreSQL's text input of a timestamp (`ty` with or without time
/// zone): a date, then optionally a time and, for `timestamptz`, an
/// offset (`Z`, `+HH`, `+HH:MM`, `+HHMM`; none is UTC). A `timestamp`
/// ignores an offset, as PostgreSQL does.
pub fn parse_timestamp(text: &str, ty: DataType) -> Result<i64, SqlError> {
    let trimmed = text.trim();
    let (date_text, rest) = match trimmed.find([' ', 'T']) {
        Some(at) if !trimmed[at..].trim_start().starts_with("BC") => (&trimmed[..at], trimmed[at + 1..].trim()),
        _ => (trimmed, ""),
    };
    let date = parse_date_part(date_text, ty, text)?;
    let (time_text, offset_seconds) = split_offset(rest, ty, text)?;
    let time = if time_text.is_empty() { NaiveTime::MIN } else { parse_time(time_text, ty, text)? };
    let local = NaiveDateTime::new(date, time);
    let micros = local.and_utc().timestamp_micros();
    let offset = if ty == DataType::Timestamptz { offset_seconds * 1_000_000 } else { 0 };
    Ok(micros - offset)
}

/// Splits a time's text from a trailing offset (seconds east of UTC).
fn split_offset<'a>(rest: &'a str, ty: DataType, original: &str) -> Result<(&'a str, i64), SqlError> {
    if let Some(time) = rest.strip_suffix('Z').or_else(|| rest.strip_suffix(" UTC")) {
        return Ok((time.trim_end(), 0));
    }
    let Some(at) = rest.rfind(['+', '-']) else { return Ok((rest, 0)) };
    let (time, offset) = (rest[..at].trim_end(), &rest[at..]);
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let digits: String = offset[1..].chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(ty, original));
    }
    let padded = format!("{digits:0<6}");
    let (h, m, s): (i64, i64, i64) = (
        padded[0..2].parse().map_err(|_| invalid(ty, original))?,
        padded[2..4].parse().map_err(|_| invalid(ty, original))?,
        padded[4..6].parse().map_err(|_| invalid(ty, original))?,
    );
    let digits_len = digits.len();
    let (h, m, s) = if digits_len == 1 { (padded[0..1].parse().unwrap_or(0), 0, 0) } else { (h, m, s) };
    if h > 15 || m > 59 || s > 59 {
        return Err(SqlError::new(
            code::INVALID_DATETIME_FORMAT,
            format!("time zone displacement out of range: \"{original}\""),
        ));
    }
    Ok((time, sign * (h * 3600 + m * 60 + s)))
}

/// `HH:MM[:SS[.ffffff]]`.
fn parse_time(text: &str, ty: DataType, original: &str) -> Result<NaiveTime, SqlError> {
    let mut parts = text.split(':');
    let field = |s: Option<&str>| -> Result<u32, SqlError> {
        let s = s.ok_or_else(|| invalid(ty, original))?;
        if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(ty, original));
        }
        s.parse().map_err(|_| invalid(ty, original))
    };
    let hour = field(parts.next())?;
    let minute = field(parts.next())?;
    let (second, micro) = match parts.next() {
        None => (0, 0),
        Some(seconds) => {
            let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
            let second = field(Some(whole))?;
            if !fraction.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(ty, original));
            }
            // Microseconds, rounded half away from zero as PostgreSQL does.
            let mut digits: Vec<u32> = fraction.bytes().map(|b| u32::from(b - b'0')).collect();
            digits.resize(7, 0);
            let mut micro = digits[..6].iter().fold(0, |n, d| n * 10 + d);
            if digits[6] >= 5 {
                micro += 1;
            }
            (second, micro)
        }
    };
    if parts.next().is_some() {
        return Err(invalid(ty, original));
    }
    // PostgreSQL also reads 24:00:00 and leap seconds (:60); Seshat
    // refuses them as out of range.
    let time = NaiveTime::from_hms_micro_opt(hour, minute, second, micro.min(999_999));
    let time = time.filter(|_| second < 60).ok_or_else(|| out_of_range(original))?;
    // A fraction that rounds up to a whole second carries into it.
    if micro == 1_000_000 {
        return Ok(time + chrono::Duration::microseconds(1));
    }
    Ok(time)
}

/// A date's text: `YYYY-MM-DD`, ` BC` before year 1.
pub fn date_text(days: i32) -> String {
    match epoch().checked_add_signed(chrono::Duration::days(days.into())) {
        Some(date) => ymd_text(date),
        None => format!("(date {days} out of range)"),
    }
}

fn ymd_text(date: NaiveDate) -> String {
    let year = date.year();
    if year <= 0 {
        format!("{:04}-{:02}-{:02} BC", 1 - year, date.month(), date.day())
    } else {
        format!("{year:04}-{:02}-{:02}", date.month(), date.day())
    }
}

/// A timestamp's text: `YYYY-MM-DD HH:MM:SS[.ffffff]` (trailing zeros of
/// the fraction dropped), `+00` after a `timestamptz`.
pub fn timestamp_text(micros: i64, ty: DataType) -> String {
    let Some(moment) = DateTime::from_timestamp_micros(micros).map(|t| t.naive_utc()) else {
        return format!("(timestamp {micros} out of range)");
    };
    let time = moment.time();
    let mut text = String::new();
    let date = ymd_text(moment.date());
    let (date, bc) = match date.strip_suffix(" BC") {
        Some(date) => (date.to_string(), true),
        None => (date, false),
    };
    text.push_str(&date);
    text.push_str(&format!(" {:02}:{:02}:{:02}", time.hour(), time.minute(), time.second()));
    let micro = micros.rem_euclid(1_000_000);
    if micro != 0 {
        let fraction = format!("{micro:06}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    if ty == DataType::Timestamptz {
        text.push_str("+00");
    }
    if bc {
        text.push_str(" BC");
    }
    text
}

/// The start of day `days` as a timestamp.
pub fn date_to_timestamp(days: i32) -> i64 {
    i64::from(days) * MICROS_PER_DAY
}

/// The day of timestamp `micros`.
pub fn timestamp_to_date(micros: i64) -> Result<i32, SqlError> {
    i32::try_from(micros.div_euclid(MICROS_PER_DAY)).map_err(|_| result_out_of_range(DataType::Date))
}

/// The calendar fields of timestamp `micros`.
pub fn fields(micros: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp_micros(micros).map(|t| t.naive_utc())
}

/// `field` of timestamp `micros` as PostgreSQL's `date_part`/`extract`
/// number, or `None` for a field it does not know.
pub fn part(field: &str, micros: i64) -> Option<f64> {
    let t = fields(micros)?;
    let seconds = f64::from(t.second()) + (micros.rem_euclid(1_000_000) as f64) / 1e6;
    Some(match field {
        "year" | "years" => f64::from(t.year()),
        "month" | "months" | "mon" => f64::from(t.month()),
        "day" | "days" => f64::from(t.day()),
        "hour" | "hours" => f64::from(t.hour()),
        "minute" | "minutes" | "min" => f64::from(t.minute()),
        "second" | "seconds" | "sec" => seconds,
        "millisecond" | "milliseconds" => seconds * 1000.0,
        "microsecond" | "microseconds" => (seconds * 1e6).round(),
        "dow" => f64::from(t.weekday().num_days_from_sunday()),
        "isodow" => f64::from(t.weekday().number_from_monday()),
        "doy" => f64::from(t.ordinal()),
        "week" => f64::from(t.iso_week().week()),
        "quarter" => f64::from((t.month() - 1) / 3 + 1),
        "decade" => f64::from(t.year().div_euclid(10)),
        "century" => f64::from(if t.year() > 0 { (t.year() + 99) / 100 } else { -((99 - (t.year() - 1)) / 100) }),
        "epoch" => micros as f64 / 1e6,
        _ => return None,
    })
}

/// Timestamp `micros` truncated to the start of `field` (`date_trunc`).
pub fn truncate(field: &str, micros: i64) -> Option<i64> {
    let t = fields(micros)?;
    let date = t.date();
    let day_start = |d: NaiveDate| d.and_time(NaiveTime::MIN).and_utc().timestamp_micros();
    Some(match field {
        "microseconds" | "microsecond" => micros,
        "milliseconds" | "millisecond" => micros - micros.rem_euclid(1_000),
        "second" | "seconds" => micros - micros.rem_euclid(1_000_000),
        "minute" | "minutes" => micros - micros.rem_euclid(60_000_000),
        "hour" | "hours" => micros - micros.rem_euclid(3_600_000_000),
        "day" | "days" => day_start(date),
        "week" | "weeks" => day_start(date - chrono::Duration::days(date.weekday().num_days_from_monday().into())),
        "month" | "months" => day_start(date.with_day(1)?),
        "quarter" => day_start(NaiveDate::from_ymd_opt(date.year(), (date.month() - 1) / 3 * 3 + 1, 1)?),
        "year" | "years" => day_start(NaiveDate::from_ymd_opt(date.year(), 1, 1)?),
        "decade" => day_start(NaiveDate::from_ymd_opt(date.year().div_euclid(10) * 10, 1, 1)?),
        "century" => day_start(NaiveDate::from_ymd_opt((date.year() - 1).div_euclid(100) * 100 + 1, 1, 1)?),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_timestamps_read_and_print_like_postgresql() {
        let day = parse_date("2024-02-29").unwrap();
        assert_eq!(date_text(day), "2024-02-29");
        assert_eq!(date_text(parse_date(" 0044-03-15 BC").unwrap()), "0044-03-15 BC");
        assert_eq!(parse_date("2023-02-29").unwrap_err().code, code::DATETIME_FIELD_OVERFLOW);
        assert_eq!(parse_date("yesterday-ish").unwrap_err().code, code::INVALID_DATETIME_FORMAT);
        let ts = parse_timestamp("2024-02-29 13:04:05.5", DataType::Timestamp).unwrap();
        assert_eq!(timestamp_text(ts, DataType::Timestamp), "2024-02-29 13:04:05.5");
        let tz = parse_timestamp("2024-02-29T13:04:05+02:00", DataType::Timestamptz).unwrap();
        assert_eq!(timestamp_text(tz, DataType::Timestamptz), "2024-02-29 11:04:05+00");
        let ignored = parse_timestamp("2024-02-29 13:04:05+02", DataType::Timestamp).unwrap();
        assert_eq!(timestamp_text(ignored, DataType::Timestamp), "2024-02-29 13:04:05");
        assert_eq!(timestamp_text(-1, DataType::Timestamp), "1969-12-31 23:59:59.999999");
        assert_eq!(timestamp_to_date(-1).unwrap(), -1);
        assert_eq!(
            truncate("month", ts).map(|t| timestamp_text(t, DataType::Timestamp)).unwrap(),
            "2024-02-01 00:00:00"
        );
        assert_eq!(part("dow", ts), Some(4.0));
    }
}
