//! What the `sql/0` log carries and what apply answers.
//!
//! An entry is a [`SqlCommand`]: today one writing statement, as SQL
//! text, executed at apply (autocommit). The answer is an [`Outcome`] or
//! the statement's [`SqlError`]. Both are postcard-encoded; variants are
//! only ever appended, so logs and snapshots stay readable.

use serde::{Deserialize, Serialize};

use crate::error::SqlError;
use crate::plan::OutputColumn;
use crate::value::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SqlCommand {
    /// Execute one statement that writes, on its own.
    Execute { sql: String },
}

impl SqlCommand {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("commands serialize")
    }
}

/// Rows a statement returns, with the command PostgreSQL's tag names
/// before the row count (`SELECT`, or `INSERT 0`/`UPDATE`/`DELETE` with
/// RETURNING).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rows {
    pub columns: Vec<OutputColumn>,
    pub rows: Vec<Vec<Value>>,
    pub command: String,
}

/// What a statement did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    Rows(Rows),
    /// A command tag: `CREATE TABLE`, or `INSERT 0` / `UPDATE` / `DELETE`
    /// with the number of rows.
    Command {
        command: String,
        rows: Option<u64>,
    },
}

impl Outcome {
    pub fn command(command: &str) -> Outcome {
        Outcome::Command { command: command.to_string(), rows: None }
    }
}

pub(crate) fn encode_response(response: &Result<Outcome, SqlError>) -> Vec<u8> {
    postcard::to_stdvec(response).expect("responses serialize")
}
