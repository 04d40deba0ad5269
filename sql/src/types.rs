//! SQL data types Seshat stores, their PostgreSQL names and OIDs, and how
//! sqlparser's type names map to them.

use serde::{Deserialize, Serialize};
use sqlparser::ast;

use crate::error::SqlError;

/// A column's or an expression's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataType {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Text,
    /// `varchar(n)`; `None` for no limit.
    Varchar(Option<u32>),
    /// `char(n)` (`bpchar`): blank-padded to `n`; `None` only for
    /// `bpchar` without a length.
    Char(Option<u32>),
    Bytea,
    Date,
    Timestamp,
    /// `timestamp with time zone`: an instant, shown in the session's
    /// time zone (always UTC).
    Timestamptz,
    Uuid,
    /// `numeric(precision, scale)`; `None` for no limit.
    Numeric(Option<(u32, u32)>),
}

impl DataType {
    /// The name PostgreSQL prints (`format_type`).
    pub fn name(self) -> String {
        match self {
            DataType::Bool => "boolean".into(),
            DataType::Int2 => "smallint".into(),
            DataType::Int4 => "integer".into(),
            DataType::Int8 => "bigint".into(),
            DataType::Float4 => "real".into(),
            DataType::Float8 => "double precision".into(),
            DataType::Text => "text".into(),
            DataType::Varchar(None) => "character varying".into(),
            DataType::Varchar(Some(n)) => format!("character varying({n})"),
            DataType::Char(None) => "bpchar".into(),
            DataType::Char(Some(n)) => format!("character({n})"),
            DataType::Bytea => "bytea".into(),
            DataType::Date => "date".into(),
            DataType::Timestamp => "timestamp without time zone".into(),
            DataType::Timestamptz => "timestamp with time zone".into(),
            DataType::Uuid => "uuid".into(),
            DataType::Numeric(None) => "numeric".into(),
            DataType::Numeric(Some((p, s))) => format!("numeric({p},{s})"),
        }
    }

    /// PostgreSQL's OID of the type (what RowDescription carries).
    pub fn oid(self) -> u32 {
        match self {
            DataType::Bool => 16,
            DataType::Int2 => 21,
            DataType::Int4 => 23,
            DataType::Int8 => 20,
            DataType::Float4 => 700,
            DataType::Float8 => 701,
            DataType::Text => 25,
            DataType::Varchar(_) => 1043,
            DataType::Char(_) => 1042,
            DataType::Bytea => 17,
            DataType::Date => 1082,
            DataType::Timestamp => 1114,
            DataType::Timestamptz => 1184,
            DataType::Uuid => 2950,
            DataType::Numeric(_) => 1700,
        }
    }

    /// The type with PostgreSQL's OID `oid`, if Seshat has it.
    pub fn from_oid(oid: u32) -> Option<DataType> {
        Some(match oid {
            16 => DataType::Bool,
            21 => DataType::Int2,
            23 => DataType::Int4,
            20 => DataType::Int8,
            700 => DataType::Float4,
            701 => DataType::Float8,
            25 => DataType::Text,
            1043 => DataType::Varchar(None),
            1042 => DataType::Char(None),
            17 => DataType::Bytea,
            1082 => DataType::Date,
            1114 => DataType::Timestamp,
            1184 => DataType::Timestamptz,
            2950 => DataType::Uuid,
            1700 => DataType::Numeric(None),
            _ => return None,
        })
    }

    pub fn is_integer(self) -> bool {
        matches!(self, DataType::Int2 | DataType::Int4 | DataType::Int8)
    }

    pub fn is_float(self) -> bool {
        matches!(self, DataType::Float4 | DataType::Float8)
    }

    pub fn is_numeric(self) -> bool {
        self.is_integer() || self.is_float() || self.is_decimal()
    }

    /// `numeric` of any precision.
    pub fn is_decimal(self) -> bool {
        matches!(self, DataType::Numeric(_))
    }

    pub fn is_text(self) -> bool {
        matches!(self, DataType::Text | DataType::Varchar(_) | DataType::Char(_))
    }

    /// `date`, `timestamp` or `timestamptz`.
    pub fn is_datetime(self) -> bool {
        matches!(self, DataType::Date | DataType::Timestamp | DataType::Timestamptz)
    }

    /// Whether values of the two types convert to each other implicitly,
    /// as comparisons and assignments need: the same type, both numbers,
    /// both strings, or both dates/timestamps.
    pub fn same_kind(self, other: DataType) -> bool {
        self == other
            || (self.is_numeric() && other.is_numeric())
            || (self.is_text() && other.is_text())
            || (self.is_datetime() && other.is_datetime())
            || (self.is_decimal() && other.is_decimal())
    }

    /// The one type values of `self` and `other` become when they share a
    /// column (UNION, VALUES, COALESCE, CASE): the same type, the wider
    /// number, text for two string types, the timestamp for a date and a
    /// timestamp; `None` when they cannot.
    pub fn common(self, other: DataType) -> Option<DataType> {
        Some(match (self, other) {
            (a, b) if a == b => a,
            (a, b) if a.is_numeric() && b.is_numeric() => a.wider(b),
            (a, b) if a.is_text() && b.is_text() => DataType::Text,
            (DataType::Date, b) if b.is_datetime() => b,
            (a, DataType::Date) if a.is_datetime() => a,
            (a, b) if a.is_datetime() && b.is_datetime() => DataType::Timestamptz,
            _ => return None,
        })
    }

    /// The type of an arithmetic result over `self` and `other` (both
    /// numeric): the wider one; integers widen to numeric, numeric to
    /// floats, as PostgreSQL's implicit casts do.
    pub fn wider(self, other: DataType) -> DataType {
        let rank = |t: DataType| match t {
            DataType::Int2 => 1,
            DataType::Int4 => 2,
            DataType::Int8 => 3,
            DataType::Numeric(_) => 4,
            DataType::Float4 => 5,
            _ => 6,
        };
        let unconstrained = |t: DataType| if t.is_decimal() { DataType::Numeric(None) } else { t };
        let (this, other) = (unconstrained(self), unconstrained(other));
        match (this, other) {
            // PostgreSQL has no real-and-integer (or -numeric) operators:
            // both become double precision, and so does the result.
            (DataType::Float4, t) | (t, DataType::Float4) if t.is_integer() || t.is_decimal() => DataType::Float8,
            _ if rank(this) >= rank(other) => this,
            _ => other,
        }
    }

    /// The type sqlparser parsed, or 0A000 for types Seshat lacks.
    pub fn from_ast(data_type: &ast::DataType) -> Result<DataType, SqlError> {
        use ast::DataType as T;
        Ok(match data_type {
            T::Bool | T::Boolean => DataType::Bool,
            T::SmallInt(_) | T::Int2(_) => DataType::Int2,
            T::Int(_) | T::Integer(_) | T::Int4(_) => DataType::Int4,
            T::BigInt(_) | T::Int8(_) => DataType::Int8,
            T::Real | T::Float4 => DataType::Float4,
            T::DoublePrecision | T::Float8 | T::Double(ast::ExactNumberInfo::None) => DataType::Float8,
            T::Float(ast::ExactNumberInfo::None) => DataType::Float8,
            T::Float(ast::ExactNumberInfo::Precision(p)) => {
                if *p <= 24 {
                    DataType::Float4
                } else {
                    DataType::Float8
                }
            }
            T::Text | T::String(None) => DataType::Text,
            T::Char(length) | T::Character(length) => match length {
                None => DataType::Char(Some(1)),
                Some(ast::CharacterLength::IntegerLength { length, .. }) => {
                    DataType::Char(Some(type_length(*length, "char")?))
                }
                Some(ast::CharacterLength::Max) => return Err(SqlError::unsupported("char(max)")),
            },
            T::Bytea => DataType::Bytea,
            T::Date => DataType::Date,
            T::Timestamp(None, ast::TimezoneInfo::None | ast::TimezoneInfo::WithoutTimeZone) => DataType::Timestamp,
            T::Timestamp(None, ast::TimezoneInfo::WithTimeZone | ast::TimezoneInfo::Tz) => DataType::Timestamptz,
            T::Uuid => DataType::Uuid,
            T::Numeric(info) | T::Decimal(info) | T::Dec(info) => match info {
                ast::ExactNumberInfo::None => DataType::Numeric(None),
                ast::ExactNumberInfo::Precision(p) => DataType::Numeric(Some((numeric_precision(*p)?, 0))),
                ast::ExactNumberInfo::PrecisionAndScale(p, s) => {
                    let p = numeric_precision(*p)?;
                    let s = u32::try_from(*s).ok().filter(|s| *s <= p).ok_or_else(|| {
                        SqlError::new(
                            crate::error::code::INVALID_PARAMETER_VALUE,
                            format!("NUMERIC scale {s} must be between 0 and precision {p}"),
                        )
                    })?;
                    DataType::Numeric(Some((p, s)))
                }
            },
            // Types named as PostgreSQL's catalog names them, qualified or
            // not (`pg_catalog.text`); `oid`, `name` and `"char"` are
            // bigint and text here.
            T::Custom(name, modifiers) if modifiers.is_empty() => {
                let parts: Vec<String> = name.0.iter().filter_map(|p| p.as_ident()).map(crate::bind::ident).collect();
                let base = match parts.as_slice() {
                    [schema, base] if schema == "pg_catalog" => base.as_str(),
                    [base] => base.as_str(),
                    _ => return Err(SqlError::unsupported(format!("type {data_type}"))),
                };
                match base {
                    "bpchar" => DataType::Char(None),
                    "timestamptz" => DataType::Timestamptz,
                    "timestamp" => DataType::Timestamp,
                    "text" | "name" | "char" | "regproc" => DataType::Text,
                    "varchar" => DataType::Varchar(None),
                    "bool" | "boolean" => DataType::Bool,
                    "int2" | "smallint" => DataType::Int2,
                    "int4" | "integer" | "int" => DataType::Int4,
                    "int8" | "bigint" | "oid" => DataType::Int8,
                    "float4" => DataType::Float4,
                    "float8" => DataType::Float8,
                    "numeric" => DataType::Numeric(None),
                    "date" => DataType::Date,
                    "bytea" => DataType::Bytea,
                    "uuid" => DataType::Uuid,
                    _ => return Err(SqlError::unsupported(format!("type {data_type}"))),
                }
            }
            T::Varchar(length) | T::CharacterVarying(length) | T::CharVarying(length) => match length {
                None => DataType::Varchar(None),
                Some(ast::CharacterLength::IntegerLength { length, .. }) => {
                    DataType::Varchar(Some(type_length(*length, "varchar")?))
                }
                Some(ast::CharacterLength::Max) => return Err(SqlError::unsupported("varchar(max)")),
            },
            other => return Err(SqlError::unsupported(format!("type {other}"))),
        })
    }
}

/// A declared string length, within PostgreSQL's bounds.
fn type_length(length: u64, type_name: &str) -> Result<u32, SqlError> {
    u32::try_from(length).ok().filter(|n| *n >= 1 && *n <= 10_485_760).ok_or_else(|| {
        SqlError::new(
            crate::error::code::INVALID_PARAMETER_VALUE,
            format!("length for type {type_name} must be between 1 and 10485760"),
        )
    })
}

/// A declared numeric precision: Seshat's numeric holds 28 significant
/// digits (PostgreSQL's up to 1000).
fn numeric_precision(precision: u64) -> Result<u32, SqlError> {
    match u32::try_from(precision) {
        Ok(p @ 1..=28) => Ok(p),
        Ok(p @ 29..=1000) => Err(SqlError::unsupported(format!("NUMERIC precision {p} (at most 28 digits)"))),
        _ => Err(SqlError::new(
            crate::error::code::INVALID_PARAMETER_VALUE,
            format!("NUMERIC precision {precision} must be between 1 and 1000"),
        )),
    }
}
