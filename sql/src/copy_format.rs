//! COPY's data formats, text and CSV, as PostgreSQL reads and writes them.
//!
//! [`RecordReader`] reads records from data that arrives in pieces of any
//! size (CopyData messages, staged chunks): it keeps only the incomplete
//! last record between pieces, so memory is bounded by the longest record,
//! not the input. [`CopyOptions::encode`] writes one row as one line.
//!
//! - **text**: a record per line (`\n`, or `\r\n`), fields split at the
//!   delimiter (tab by default), backslash escapes (`\b \f \n \r \t \v`,
//!   octal `\NNN`, hex `\xHH`, any other character itself), a field equal
//!   to the NULL string (`\N` by default) before unescaping is NULL.
//! - **csv**: fields split at the delimiter (`,`) outside quotes, quotes
//!   (`"`) with the escape character (`"`) doubling them, records may span
//!   lines inside quotes; an unquoted field equal to the NULL string (empty
//!   by default) is NULL, a quoted one never is.
//! - Either: a line `\.` alone ends the data; `HEADER` skips the first
//!   record on input and writes the column names on output.

use sqlparser::ast;

use crate::error::{code, SqlError};
use crate::value::Value;
use crate::DataType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Csv,
}

/// The options of one COPY statement.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    pub format: Format,
    pub delimiter: u8,
    pub null: String,
    pub header: bool,
    pub quote: u8,
    pub escape: u8,
}

fn bad_option(message: impl Into<String>) -> SqlError {
    SqlError::new(code::SYNTAX_ERROR, message)
}

fn single_byte(c: char, what: &str) -> Result<u8, SqlError> {
    u8::try_from(c)
        .ok()
        .filter(u8::is_ascii)
        .ok_or_else(|| bad_option(format!("COPY {what} must be a single one-byte character")))
}

impl CopyOptions {
    /// The options of a COPY statement, PostgreSQL's defaults for the rest.
    pub fn of(options: &[ast::CopyOption], legacy: &[ast::CopyLegacyOption]) -> Result<CopyOptions, SqlError> {
        let mut format = Format::Text;
        let (mut delimiter, mut null, mut header, mut quote, mut escape) = (None, None, false, None, None);
        for option in options {
            match option {
                ast::CopyOption::Format(name) => {
                    format = match name.value.to_ascii_lowercase().as_str() {
                        "text" => Format::Text,
                        "csv" => Format::Csv,
                        "binary" => return Err(SqlError::unsupported("COPY's binary format")),
                        other => return Err(bad_option(format!("COPY format \"{other}\" not recognized"))),
                    }
                }
                // FREEZE only hints that rows may be stored frozen.
                ast::CopyOption::Freeze(_) => {}
                ast::CopyOption::Delimiter(c) => delimiter = Some(single_byte(*c, "delimiter")?),
                ast::CopyOption::Null(s) => null = Some(s.clone()),
                ast::CopyOption::Header(h) => header = *h,
                ast::CopyOption::Quote(c) => quote = Some(single_byte(*c, "quote")?),
                ast::CopyOption::Escape(c) => escape = Some(single_byte(*c, "escape")?),
                ast::CopyOption::Encoding(e) if e.eq_ignore_ascii_case("utf8") || e.eq_ignore_ascii_case("utf-8") => {}
                other => return Err(SqlError::unsupported(format!("the COPY option {other}"))),
            }
        }
        for option in legacy {
            match option {
                ast::CopyLegacyOption::Csv(csv) if csv.is_empty() => format = Format::Csv,
                ast::CopyLegacyOption::Delimiter(c) => delimiter = Some(single_byte(*c, "delimiter")?),
                ast::CopyLegacyOption::Null(s) => null = Some(s.clone()),
                ast::CopyLegacyOption::Header => header = true,
                other => return Err(SqlError::unsupported(format!("the COPY option {other}"))),
            }
        }
        if format == Format::Text && (quote.is_some() || escape.is_some()) {
            return Err(SqlError::new(code::FEATURE_NOT_SUPPORTED, "COPY quote available only in CSV mode"));
        }
        let csv = format == Format::Csv;
        let options = CopyOptions {
            format,
            delimiter: delimiter.unwrap_or(if csv { b',' } else { b'\t' }),
            null: null.unwrap_or_else(|| if csv { String::new() } else { "\\N".into() }),
            header,
            quote: quote.unwrap_or(b'"'),
            escape: escape.or(quote).unwrap_or(b'"'),
        };
        if matches!(options.delimiter, b'\r' | b'\n') || (!csv && options.delimiter == b'\\') {
            return Err(bad_option("COPY delimiter cannot be newline, carriage return or backslash"));
        }
        if csv && options.delimiter == options.quote {
            return Err(bad_option("COPY delimiter and quote must be different"));
        }
        Ok(options)
    }

    /// `row` (of columns of `types`) as one line of this format.
    pub fn encode(&self, row: &[Value], types: &[DataType], out: &mut Vec<u8>) {
        for (i, (value, &ty)) in row.iter().zip(types).enumerate() {
            if i > 0 {
                out.push(self.delimiter);
            }
            match value.to_text(ty) {
                None => out.extend_from_slice(self.null.as_bytes()),
                Some(text) => match self.format {
                    Format::Text => self.escape_text(&text, out),
                    Format::Csv => self.quote_csv(&text, out),
                },
            }
        }
        out.push(b'\n');
    }

    /// The column names as a header line.
    pub fn encode_header(&self, names: &[String], out: &mut Vec<u8>) {
        let row: Vec<Value> = names.iter().map(|n| Value::Text(n.clone())).collect();
        self.encode(&row, &vec![DataType::Text; names.len()], out);
    }

    fn escape_text(&self, text: &str, out: &mut Vec<u8>) {
        for &byte in text.as_bytes() {
            match byte {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                0x0b => out.extend_from_slice(b"\\v"),
                b if b == self.delimiter => out.extend_from_slice(&[b'\\', b]),
                b => out.push(b),
            }
        }
    }

    fn quote_csv(&self, text: &str, out: &mut Vec<u8>) {
        let bytes = text.as_bytes();
        let needs_quotes = text == self.null
            || text == "\\."
            || bytes.iter().any(|&b| b == self.delimiter || b == self.quote || b == b'\n' || b == b'\r');
        if !needs_quotes {
            out.extend_from_slice(bytes);
            return;
        }
        out.push(self.quote);
        for &b in bytes {
            if b == self.quote || b == self.escape {
                out.push(self.escape);
            }
            out.push(b);
        }
        out.push(self.quote);
    }
}

/// One record's fields: `None` for NULL.
pub type Record = Vec<Option<String>>;

/// Reads records from data given in pieces ([`RecordReader::feed`]).
pub struct RecordReader {
    options: CopyOptions,
    /// Bytes of the incomplete record at the end of what was fed.
    pending: Vec<u8>,
    /// Lines read so far (the number of the last line of the last record).
    line: u64,
    /// The header line is still to skip.
    skip_header: bool,
    /// `\.` was read: the rest of the data is ignored.
    ended: bool,
}

impl RecordReader {
    pub fn new(options: CopyOptions) -> RecordReader {
        let skip_header = options.header;
        RecordReader { options, pending: Vec::new(), line: 0, skip_header, ended: false }
    }

    /// The line number of the last record returned (for error context).
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Adds `data` and calls `each` with every record it completes, with
    /// the line it ends on; stops at the first error `each` answers.
    pub fn feed<E>(&mut self, data: &[u8], mut each: impl FnMut(Record, u64) -> Result<(), E>) -> Result<(), E>
    where
        E: From<SqlError>,
    {
        if self.ended {
            return Ok(());
        }
        let mut buffer = std::mem::take(&mut self.pending);
        buffer.extend_from_slice(data);
        let mut start = 0;
        while let Some(end) = record_end(&self.options, &buffer[start..]) {
            let raw = &buffer[start..start + end];
            start += end + 1;
            if let Some(record) = self.record(raw)? {
                each(record, self.line)?;
            }
            if self.ended {
                return Ok(());
            }
        }
        buffer.drain(..start);
        self.pending = buffer;
        Ok(())
    }

    /// Ends the data: a last record without a newline is read too.
    pub fn finish<E>(&mut self, mut each: impl FnMut(Record, u64) -> Result<(), E>) -> Result<(), E>
    where
        E: From<SqlError>,
    {
        if self.ended || self.pending.is_empty() {
            return Ok(());
        }
        let raw = std::mem::take(&mut self.pending);
        if let Some(record) = self.record(&raw)? {
            each(record, self.line)?;
        }
        Ok(())
    }

    /// The record of line(s) `raw` (without its newline): `None` for the
    /// header or the end marker.
    fn record(&mut self, raw: &[u8]) -> Result<Option<Record>, SqlError> {
        self.line += 1 + raw.iter().filter(|&&b| b == b'\n').count() as u64;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw == b"\\." {
            self.ended = true;
            return Ok(None);
        }
        if std::mem::take(&mut self.skip_header) {
            return Ok(None);
        }
        match self.options.format {
            Format::Text => self.text_record(raw).map(Some),
            Format::Csv => self.csv_record(raw).map(Some),
        }
    }

    fn error(&self, code: &str, message: impl Into<String>) -> SqlError {
        SqlError::new(code, message)
    }

    fn utf8(&self, bytes: Vec<u8>) -> Result<String, SqlError> {
        String::from_utf8(bytes)
            .map_err(|_| self.error(code::CHARACTER_NOT_IN_REPERTOIRE, "invalid byte sequence for encoding \"UTF8\""))
    }

    fn text_record(&self, raw: &[u8]) -> Result<Record, SqlError> {
        let mut fields = Vec::new();
        let mut i = 0;
        loop {
            // The raw field: up to an unescaped delimiter.
            let start = i;
            while i < raw.len() && raw[i] != self.options.delimiter {
                i += if raw[i] == b'\\' { 2 } else { 1 };
            }
            let end = i.min(raw.len());
            let field = &raw[start..end];
            fields.push(match field == self.options.null.as_bytes() {
                true => None,
                false => Some(self.utf8(unescape(field))?),
            });
            if i >= raw.len() {
                return Ok(fields);
            }
            i += 1;
        }
    }

    fn csv_record(&self, raw: &[u8]) -> Result<Record, SqlError> {
        let (delimiter, quote, escape) = (self.options.delimiter, self.options.quote, self.options.escape);
        let mut fields = Vec::new();
        let mut i = 0;
        loop {
            let mut value = Vec::new();
            let mut was_quoted = false;
            let mut quoted = false;
            while i < raw.len() {
                let b = raw[i];
                if quoted {
                    if b == escape && raw.get(i + 1) == Some(&quote) {
                        value.push(quote);
                        i += 2;
                        continue;
                    }
                    if b == quote {
                        quoted = false;
                    } else {
                        value.push(b);
                    }
                } else if b == quote {
                    quoted = true;
                    was_quoted = true;
                } else if b == delimiter {
                    break;
                } else {
                    value.push(b);
                }
                i += 1;
            }
            if quoted {
                return Err(self.error(code::BAD_COPY_FILE_FORMAT, "unterminated CSV quoted field"));
            }
            fields.push(match !was_quoted && value == self.options.null.as_bytes() {
                true => None,
                false => Some(self.utf8(value)?),
            });
            if i >= raw.len() {
                return Ok(fields);
            }
            i += 1;
        }
    }
}

/// The length of the record at the start of `bytes`, up to the newline
/// that ends it, if that has arrived (in CSV, a newline inside quotes is
/// the field's).
fn record_end(options: &CopyOptions, bytes: &[u8]) -> Option<usize> {
    match options.format {
        Format::Text => bytes.iter().position(|&b| b == b'\n'),
        Format::Csv => {
            let mut quoted = false;
            let mut i = 0;
            while i < bytes.len() {
                let b = bytes[i];
                if quoted && b == options.escape && bytes.get(i + 1) == Some(&options.quote) {
                    i += 2;
                    continue;
                }
                if b == options.quote {
                    quoted = !quoted;
                } else if b == b'\n' && !quoted {
                    return Some(i);
                }
                i += 1;
            }
            None
        }
    }
}

/// A text-format field with its backslash escapes decoded.
fn unescape(field: &[u8]) -> Vec<u8> {
    if !field.contains(&b'\\') {
        return field.to_vec();
    }
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let b = field[i];
        i += 1;
        if b != b'\\' || i == field.len() {
            out.push(b);
            continue;
        }
        let c = field[i];
        i += 1;
        match c {
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'0'..=b'7' => {
                let mut value = u32::from(c - b'0');
                for _ in 0..2 {
                    match field.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(value as u8);
            }
            b'x' if field.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let mut value = 0u8;
                for _ in 0..2 {
                    match field.get(i).and_then(|d| (*d as char).to_digit(16)) {
                        Some(d) => {
                            value = value * 16 + d as u8;
                            i += 1;
                        }
                        None => break,
                    }
                }
                out.push(value);
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(format: Format) -> CopyOptions {
        let mut options = CopyOptions::of(&[], &[]).unwrap();
        if format == Format::Csv {
            options = CopyOptions::of(&[ast::CopyOption::Format(ast::Ident::new("csv"))], &[]).unwrap();
        }
        options
    }

    /// Every record of `data` fed in pieces of `piece` bytes.
    fn read(options: CopyOptions, data: &[u8], piece: usize) -> Result<Vec<(Record, u64)>, SqlError> {
        let mut reader = RecordReader::new(options);
        let mut out = Vec::new();
        for chunk in data.chunks(piece) {
            reader.feed(chunk, |r, line| {
                out.push((r, line));
                Ok::<(), SqlError>(())
            })?;
        }
        reader.finish(|r, line| {
            out.push((r, line));
            Ok::<(), SqlError>(())
        })?;
        Ok(out)
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn text_records_in_any_pieces() {
        let data = b"1\ta\\tb\t\\N\n2\t\\x41\\101\\\\\t\r\n3\tlast";
        for piece in [1, 2, 5, 100] {
            let records = read(options(Format::Text), data, piece).unwrap();
            assert_eq!(
                records,
                vec![
                    (vec![s("1"), s("a\tb"), None], 1),
                    (vec![s("2"), s("AA\\"), s("")], 2),
                    (vec![s("3"), s("last")], 3),
                ]
            );
        }
        let ended = read(options(Format::Text), b"1\n\\.\nignored\n", 3).unwrap();
        assert_eq!(ended, vec![(vec![s("1")], 1)]);
    }

    #[test]
    fn csv_records_with_quotes_spanning_lines() {
        let data = b"id,name\n1,\"a,\"\"b\"\"\nc\"\n2,\n3,\"\"\n";
        let mut csv = options(Format::Csv);
        csv.header = true;
        for piece in [1, 3, 100] {
            let records = read(csv.clone(), data, piece).unwrap();
            assert_eq!(
                records,
                vec![(vec![s("1"), s("a,\"b\"\nc")], 3), (vec![s("2"), None], 4), (vec![s("3"), s("")], 5)]
            );
        }
        let error = read(options(Format::Csv), b"1,\"open\n", 4).unwrap_err();
        assert_eq!(error.code, code::BAD_COPY_FILE_FORMAT);
    }

    #[test]
    fn encoding_round_trips_through_reading() {
        let row = vec![Value::Int(1), Value::Text("a\tb,\"c\"\n\\".into()), Value::Null, Value::Text("".into())];
        let types = [DataType::Int4, DataType::Text, DataType::Text, DataType::Text];
        for format in [Format::Text, Format::Csv] {
            let mut line = Vec::new();
            options(format).encode(&row, &types, &mut line);
            let records = read(options(format), &line, 7).unwrap();
            assert_eq!(records, vec![(vec![s("1"), s("a\tb,\"c\"\n\\"), None, s("")], records[0].1)]);
        }
    }
}
