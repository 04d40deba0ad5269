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
        self.is_integer() || self.is_float()
    }

    pub fn is_text(self) -> bool {
        matches!(self, DataType::Text | DataType::Varchar(_))
    }

    /// Whether values of the two types convert to each other implicitly,
    /// as comparisons and assignments need: the same type, both numbers,
    /// or both strings.
    pub fn same_kind(self, other: DataType) -> bool {
        self == other || (self.is_numeric() && other.is_numeric()) || (self.is_text() && other.is_text())
    }

    /// The type of an arithmetic result over `self` and `other` (both
    /// numeric): the wider one, floats over integers.
    pub fn wider(self, other: DataType) -> DataType {
        let rank = |t: DataType| match t {
            DataType::Int2 => 1,
            DataType::Int4 => 2,
            DataType::Int8 => 3,
            DataType::Float4 => 4,
            _ => 5,
        };
        match (self, other) {
            // PostgreSQL has no real-and-integer operators: the integer
            // becomes double precision, and so does the result.
            (DataType::Float4, t) | (t, DataType::Float4) if t.is_integer() => DataType::Float8,
            _ if rank(self) >= rank(other) => self,
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
            T::Varchar(length) | T::CharacterVarying(length) | T::CharVarying(length) => match length {
                None => DataType::Varchar(None),
                Some(ast::CharacterLength::IntegerLength { length, .. }) => {
                    let n = u32::try_from(*length).ok().filter(|n| *n >= 1 && *n <= 10_485_760).ok_or_else(|| {
                        SqlError::new(
                            crate::error::code::INVALID_PARAMETER_VALUE,
                            "length for type varchar must be between 1 and 10485760",
                        )
                    })?;
                    DataType::Varchar(Some(n))
                }
                Some(ast::CharacterLength::Max) => return Err(SqlError::unsupported("varchar(max)")),
            },
            other => return Err(SqlError::unsupported(format!("type {other}"))),
        })
    }
}
