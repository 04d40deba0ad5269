//! Errors: a statement's failure as PostgreSQL reports it (a SQLSTATE and
//! a message), and the service's own failures.

use serde::{Deserialize, Serialize};

/// SQLSTATE codes Seshat answers (PostgreSQL's appendix A).
pub mod code {
    pub const SYNTAX_ERROR: &str = "42601";
    pub const UNDEFINED_TABLE: &str = "42P01";
    pub const UNDEFINED_COLUMN: &str = "42703";
    pub const UNDEFINED_FUNCTION: &str = "42883";
    pub const UNDEFINED_PARAMETER: &str = "42P02";
    pub const INDETERMINATE_DATATYPE: &str = "42P18";
    pub const AMBIGUOUS_PARAMETER: &str = "42P08";
    pub const DUPLICATE_TABLE: &str = "42P07";
    pub const DUPLICATE_COLUMN: &str = "42701";
    pub const AMBIGUOUS_COLUMN: &str = "42702";
    pub const DUPLICATE_ALIAS: &str = "42712";
    pub const DATATYPE_MISMATCH: &str = "42804";
    pub const GROUPING_ERROR: &str = "42803";
    pub const INVALID_TABLE_DEFINITION: &str = "42P16";
    pub const INVALID_OBJECT_DEFINITION: &str = "42P17";
    pub const INVALID_COLUMN_REFERENCE: &str = "42P10";
    pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
    pub const NUMERIC_VALUE_OUT_OF_RANGE: &str = "22003";
    pub const STRING_DATA_RIGHT_TRUNCATION: &str = "22001";
    pub const DIVISION_BY_ZERO: &str = "22012";
    pub const INVALID_DATETIME_FORMAT: &str = "22007";
    pub const DATETIME_FIELD_OVERFLOW: &str = "22008";
    pub const DATETIME_VALUE_OUT_OF_RANGE: &str = "22008";
    pub const SUBSTRING_ERROR: &str = "22011";
    pub const INVALID_ARGUMENT_FOR_POWER_FUNCTION: &str = "2201F";
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    pub const INVALID_ROW_COUNT: &str = "2201W";
    pub const INVALID_BINARY_REPRESENTATION: &str = "22P03";
    pub const CHARACTER_NOT_IN_REPERTOIRE: &str = "22021";
    pub const NOT_NULL_VIOLATION: &str = "23502";
    pub const UNIQUE_VIOLATION: &str = "23505";
    pub const CHECK_VIOLATION: &str = "23514";
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    pub const SERIALIZATION_FAILURE: &str = "40001";
    pub const QUERY_CANCELED: &str = "57014";
    pub const CARDINALITY_VIOLATION: &str = "21000";
    pub const IN_FAILED_SQL_TRANSACTION: &str = "25P02";
    pub const NO_ACTIVE_SQL_TRANSACTION: &str = "25P01";
    pub const READ_ONLY_SQL_TRANSACTION: &str = "25006";
    pub const INVALID_SAVEPOINT_SPECIFICATION: &str = "3B001";
    pub const UNDEFINED_OBJECT: &str = "42704";
    pub const DEPENDENT_OBJECTS_STILL_EXIST: &str = "2BP01";
    pub const CONNECTION_FAILURE: &str = "08006";
    pub const PROTOCOL_VIOLATION: &str = "08P01";
    pub const INTERNAL_ERROR: &str = "XX000";
    pub const BAD_COPY_FILE_FORMAT: &str = "22P04";
    pub const INVALID_REGULAR_EXPRESSION: &str = "2201B";
    pub const ACTIVE_SQL_TRANSACTION: &str = "25001";
    pub const WRONG_OBJECT_TYPE: &str = "42809";
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
}

/// A statement that failed: nothing of it was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct SqlError {
    /// The SQLSTATE.
    pub code: String,
    pub message: String,
    /// Where it happened, as PostgreSQL's CONTEXT line (`COPY t, line 3`).
    pub context: Option<String>,
}

impl SqlError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        SqlError { code: code.to_string(), message: message.into(), context: None }
    }

    /// The error with a CONTEXT line.
    pub fn with_context(mut self, context: impl Into<String>) -> Self {
        self.context = Some(context.into());
        self
    }

    /// 0A000: what Seshat does not do (yet), named.
    pub fn unsupported(what: impl std::fmt::Display) -> Self {
        SqlError::new(code::FEATURE_NOT_SUPPORTED, format!("{what} is not supported by Seshat yet"))
    }
}

/// Why a statement did not complete.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The statement failed as PostgreSQL would fail it.
    #[error(transparent)]
    Sql(#[from] SqlError),
    /// The `sql/0` group could not complete it (no quorum, shutting
    /// down): a write may or may not have applied.
    #[error(transparent)]
    Group(#[from] raft::GroupError),
    #[error("storage: {0}")]
    Storage(#[from] storage::Error),
    /// Stored bytes that do not decode: the node must stop.
    #[error("corrupt SQL data: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, Error>;
