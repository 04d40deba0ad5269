//! The SQL service: PostgreSQL's SQL over the replicated store.
//!
//! # Life of a statement
//!
//! 1. [`Sql::execute`] parses the string ([`parse`], sqlparser's
//!    PostgreSQL dialect) into statements and runs them in order, each on
//!    its own (autocommit), stopping at the first error.
//! 2. A query waits for the `sql/0` group's read barrier (it sees every
//!    write acknowledged before it, on any node), then binds against the
//!    catalog ([`bind`], [`query`]) and runs ([`exec`]) on one RocksDB
//!    snapshot: the schema and the rows it reads are of the same moment.
//! 3. A statement that writes is proposed to `sql/0` as its SQL text
//!    ([`command`]) and executed at apply on every replica ([`machine`],
//!    [`write`]): binding, checks and writes happen in log order against
//!    the replica's state, so the same log gives the same data everywhere
//!    and a single statement never conflicts with another.
//!
//! # Storage
//!
//! The catalog, rows and counters live in the `sql_*` column families;
//! [`keys`] lists every key shape.
//!
//! # Not yet
//!
//! Explicit transactions, joins, subqueries, secondary indexes, UNIQUE and
//! CHECK constraints, ALTER TABLE, views, NUMERIC and date/time types,
//! prepared statements (extended protocol): each answers 0A000
//! (`feature_not_supported`) naming what is missing.

mod bind;
mod catalog;
mod command;
mod error;
mod exec;
mod expr;
mod keys;
mod machine;
mod parse;
mod plan;
mod query;
mod service;
mod types;
mod value;
mod write;

pub use command::{Outcome, Rows};
pub use error::{code, Error, Result, SqlError};
pub use plan::OutputColumn;
pub use service::{Sql, SqlStart};
pub use types::DataType;
pub use value::Value;
