//! Values on the wire: parameters from Bind and rows in DataRow, in
//! PostgreSQL's text or binary format for each supported type.
//!
//! Binary formats (network byte order, as PostgreSQL's `*send`/`*recv`):
//! boolean one byte; smallint, integer, bigint two, four and eight byte
//! two's complement; real and double precision IEEE 754; text, varchar
//! and char their UTF-8 bytes; bytea its bytes; date four-byte days and
//! timestamps eight-byte microseconds since 2000-01-01; uuid its 16
//! bytes; numeric PostgreSQL's base-10000 digits (`numeric_send`).

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::api::Type;
use pgwire::messages::data::DataRow;
use sql::{code, DataType, OutputColumn, SqlError, Value};

/// Bind parameter `index` (zero-based) of type `ty`, sent in `format`.
pub fn decode_param(bytes: &[u8], ty: DataType, format: FieldFormat, index: usize) -> Result<Value, SqlError> {
    if format == FieldFormat::Text {
        let text = std::str::from_utf8(bytes).map_err(|_| {
            SqlError::new(code::CHARACTER_NOT_IN_REPERTOIRE, "invalid byte sequence for encoding \"UTF8\"")
        })?;
        return sql::parse_text(text, ty);
    }
    let malformed = || {
        SqlError::new(
            code::INVALID_BINARY_REPRESENTATION,
            format!("incorrect binary data format in bind parameter {}", index + 1),
        )
    };
    let fixed = |n: usize| -> Result<&[u8], SqlError> { (bytes.len() == n).then_some(bytes).ok_or_else(malformed) };
    Ok(match ty {
        DataType::Bool => Value::Bool(fixed(1)?[0] != 0),
        DataType::Int2 => Value::Int(i16::from_be_bytes(fixed(2)?.try_into().expect("2 bytes")).into()),
        DataType::Int4 => Value::Int(i32::from_be_bytes(fixed(4)?.try_into().expect("4 bytes")).into()),
        DataType::Int8 => Value::Int(i64::from_be_bytes(fixed(8)?.try_into().expect("8 bytes"))),
        DataType::Float4 => Value::Float(f32::from_be_bytes(fixed(4)?.try_into().expect("4 bytes")).into()),
        DataType::Float8 => Value::Float(f64::from_be_bytes(fixed(8)?.try_into().expect("8 bytes"))),
        DataType::Text | DataType::Varchar(_) | DataType::Char(_) => {
            let text = String::from_utf8(bytes.to_vec()).map_err(|_| malformed())?;
            // char(n) pads; the value is checked like any other.
            Value::Text(text).cast(ty)?
        }
        DataType::Bytea => Value::Bytes(bytes.to_vec()),
        DataType::Date => Value::Date(
            i32::from_be_bytes(fixed(4)?.try_into().expect("4 bytes"))
                .checked_add(DAYS_1970_TO_2000)
                .ok_or_else(malformed)?,
        ),
        DataType::Timestamp | DataType::Timestamptz => Value::Timestamp(
            i64::from_be_bytes(fixed(8)?.try_into().expect("8 bytes"))
                .checked_add(MICROS_1970_TO_2000)
                .ok_or_else(malformed)?,
        ),
        DataType::Uuid => Value::Uuid(u128::from_be_bytes(fixed(16)?.try_into().expect("16 bytes"))),
        DataType::Numeric(_) => Value::Numeric(sql::numeric_from_binary(bytes).ok_or_else(malformed)?).cast(ty)?,
    })
}

/// PostgreSQL's binary dates and timestamps count from 2000-01-01;
/// Seshat's from 1970-01-01.
const DAYS_1970_TO_2000: i32 = 10_957;
const MICROS_1970_TO_2000: i64 = 946_684_800_000_000;

/// The RowDescription of `columns`, each in the format `formats` asks
/// for (text when `None`: a statement's Describe).
pub fn fields(columns: &[OutputColumn], formats: Option<&Format>) -> Arc<Vec<FieldInfo>> {
    Arc::new(
        columns
            .iter()
            .enumerate()
            .map(|(i, column)| {
                let ty = Type::from_oid(column.data_type.oid()).unwrap_or(Type::TEXT);
                let format = formats.map_or(FieldFormat::Text, |f| f.format_for(i));
                FieldInfo::new(column.name.clone(), None, None, ty, format)
            })
            .collect(),
    )
}

/// One DataRow: `row`'s values of `types`, each in its field's format.
pub fn data_row(row: &[Value], types: &[DataType], fields: &[FieldInfo]) -> DataRow {
    let mut data = BytesMut::with_capacity(16 * row.len());
    for ((value, &ty), field) in row.iter().zip(types).zip(fields) {
        let length_at = data.len();
        data.put_i32(-1);
        let written = match field.format() {
            FieldFormat::Text => value.to_text(ty).map(|text| data.put_slice(text.as_bytes())),
            FieldFormat::Binary => encode_binary(value, ty, &mut data),
        };
        if written.is_some() {
            let length = (data.len() - length_at - 4) as i32;
            data[length_at..length_at + 4].copy_from_slice(&length.to_be_bytes());
        }
    }
    DataRow::new(data, row.len() as i16)
}

/// Appends `value`'s binary form; `None` (nothing written) for NULL.
fn encode_binary(value: &Value, ty: DataType, out: &mut BytesMut) -> Option<()> {
    match (value, ty) {
        (Value::Null, _) => return None,
        (Value::Bool(b), _) => out.put_u8(u8::from(*b)),
        (Value::Int(n), DataType::Int2) => out.put_i16(*n as i16),
        (Value::Int(n), DataType::Int4) => out.put_i32(*n as i32),
        (Value::Int(n), DataType::Float4) => out.put_f32(*n as f32),
        (Value::Int(n), DataType::Float8) => out.put_f64(*n as f64),
        (Value::Int(n), _) => out.put_i64(*n),
        (Value::Float(x), DataType::Float4) => out.put_f32(*x as f32),
        (Value::Float(x), _) => out.put_f64(*x),
        (Value::Text(s), _) => out.put_slice(s.as_bytes()),
        (Value::Bytes(bytes), _) => out.put_slice(bytes),
        (Value::Date(days), _) => out.put_i32(days - DAYS_1970_TO_2000),
        (Value::Timestamp(micros), _) => out.put_i64(micros - MICROS_1970_TO_2000),
        (Value::Uuid(uuid), _) => out.put_u128(*uuid),
        (Value::Numeric(value), _) => out.put_slice(&sql::numeric_to_binary(value)),
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_parameters_decode_by_type_and_refuse_wrong_lengths() {
        let binary = FieldFormat::Binary;
        assert_eq!(decode_param(&7i16.to_be_bytes(), DataType::Int2, binary, 0).unwrap(), Value::Int(7));
        assert_eq!(decode_param(&(-7i32).to_be_bytes(), DataType::Int4, binary, 0).unwrap(), Value::Int(-7));
        assert_eq!(decode_param(&1.5f64.to_be_bytes(), DataType::Float8, binary, 0).unwrap(), Value::Float(1.5));
        assert_eq!(decode_param(&[1], DataType::Bool, binary, 0).unwrap(), Value::Bool(true));
        let error = decode_param(&[0, 1], DataType::Int4, binary, 2).unwrap_err();
        assert_eq!(error.code, "22P03");
        assert_eq!(error.message, "incorrect binary data format in bind parameter 3");
        assert_eq!(decode_param(b"abc", DataType::Text, binary, 0).unwrap(), Value::Text("abc".into()));
    }

    #[test]
    fn text_parameters_parse_as_postgresql_input() {
        let text = FieldFormat::Text;
        assert_eq!(decode_param(b" 42", DataType::Int8, text, 0).unwrap(), Value::Int(42));
        assert_eq!(decode_param(b"x", DataType::Int4, text, 0).unwrap_err().code, "22P02");
    }
}
