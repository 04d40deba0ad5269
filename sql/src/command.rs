//! What the `sql/0` log carries and what apply answers.
//!
//! An entry is a [`SqlCommand`]: one writing statement, as SQL text,
//! executed at apply (autocommit), or a transaction's statements to
//! commit; either may come with what its session read and wrote running
//! it ahead, kept if those reads still hold. The answer is an [`Outcome`] or
//! the statement's [`SqlError`]. Both are postcard-encoded; variants are
//! only ever appended, so logs and snapshots stay readable.

use serde::{Deserialize, Serialize};

use crate::error::SqlError;
use crate::plan::OutputColumn;
use crate::read_set::{DeferredRow, ReadSet, WriteSet};
use crate::value::Value;

/// Sessions propose `Execute`, `ExecuteRead`, `CommitSteps`, `Stage` and
/// `Unstage`; apply still reads `Commit`, `CommitAt` and `CommitRead`
/// from logs written by earlier builds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SqlCommand {
    /// Execute one statement that writes, on its own.
    Execute { sql: String },
    /// Commit a transaction: run its statements again, in order, and keep
    /// their writes only if each has the outcome the client saw
    /// ([`Outcome::digest`]); otherwise nothing is written and the answer
    /// is 40001.
    Commit { statements: Vec<Checked> },
    /// As `Commit`, with the time its statements run at (microseconds
    /// since the Unix epoch): the time the session fixed when the
    /// transaction began, so `now()` is what the client saw.
    CommitAt { statements: Vec<Checked>, now_micros: i64 },
    /// One writing statement that its session ran ahead: if every read in
    /// `reads` answers the same at apply, `writes` are kept, `deferred`
    /// rows stored, and `outcome` answered (unless storing a deferred row
    /// fails, which answers its error and writes nothing); otherwise
    /// `sql` is executed as by `Execute` ([`crate::read_set`] has why that
    /// is equivalent).
    ExecuteRead { sql: String, reads: ReadSet, writes: WriteSet, deferred: Vec<DeferredRow>, outcome: Outcome },
    /// As `CommitAt` for a transaction whose session recorded all it read:
    /// if `reads` answer the same at apply, `writes` (the transaction's)
    /// are kept without running its statements again.
    CommitRead { statements: Vec<Checked>, now_micros: i64, reads: ReadSet, writes: WriteSet },
    /// Chunk `seq` of the data of a COPY FROM STDIN, stored until the
    /// statement that names `stage` runs ([`crate::copy`]).
    Stage { stage: u128, seq: u32, data: Vec<u8> },
    /// Drops what is left of stage `stage` (its statement failed, or its
    /// transaction ended without it).
    Unstage { stage: u128 },
    /// As `CommitAt`, statement by statement: a statement its session
    /// recorded ([`Step::ran`]) keeps its recorded writes if its reads
    /// answer the same at apply, over the writes of the statements before
    /// it; any other runs again from its text. COMMIT if every outcome is
    /// the one the client saw, else 40001 and nothing written. A
    /// concurrent change then costs running again only the statements
    /// that read it.
    CommitSteps { steps: Vec<Step>, now_micros: i64 },
}

/// A statement of a transaction with the digest of the outcome the
/// session answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checked {
    pub sql: String,
    pub digest: u128,
}

/// A statement of a transaction as its session ran it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub checked: Checked,
    /// What it read and wrote, over the transaction's snapshot and the
    /// writes of the statements before it; `None` if that could not be
    /// recorded (too much read or written, a counter drawn, the catalog
    /// changed): it then runs again from its text.
    pub ran: Option<Ran>,
}

/// What a statement read and wrote when its session ran it, and the rows
/// of tables without a primary key that it left to apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ran {
    pub reads: ReadSet,
    pub writes: WriteSet,
    pub deferred: Vec<DeferredRow>,
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
    /// COPY FROM STDIN began: the client now sends rows of `columns`
    /// fields (never logged: the session answers it).
    CopyIn {
        columns: usize,
    },
    /// COPY TO STDOUT's lines.
    CopyOut(CopyOut),
}

/// The data COPY TO STDOUT sends: one line per row (the header first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CopyOut {
    pub columns: usize,
    pub lines: Vec<Vec<u8>>,
    /// Rows among the lines (the tag's count).
    pub rows: u64,
}

impl Outcome {
    pub fn command(command: &str) -> Outcome {
        Outcome::Command { command: command.to_string(), rows: None }
    }

    /// A digest of everything the client sees of this outcome (tag, row
    /// count, columns, rows): FNV-1a (128 bits) of its encoding, the same
    /// on every node and version.
    pub fn digest(&self) -> u128 {
        const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
        const PRIME: u128 = 0x0000000001000000000000000000013b;
        let bytes = postcard::to_stdvec(self).expect("outcomes serialize");
        bytes.iter().fold(OFFSET, |hash, &byte| (hash ^ u128::from(byte)).wrapping_mul(PRIME))
    }
}

pub(crate) fn encode_response(response: &Result<Outcome, SqlError>) -> Vec<u8> {
    postcard::to_stdvec(response).expect("responses serialize")
}
