//! COPY: rows from a client's stream into a table, and a table's or a
//! query's rows out to the client.
//!
//! # COPY FROM STDIN through the log
//!
//! The data of a COPY can be far larger than one log entry, and the
//! statement must insert all of it or nothing. So its session first
//! *stages* the data: it proposes it in chunks of at most [`CHUNK_BYTES`]
//! (`SqlCommand::Stage`), which apply stores as they are under
//! [`keys::stage_chunk`] (invisible to every query). Then the statement
//! itself is logged as SQL text naming the stage in place of STDIN:
//! `COPY t FROM 'seshat-stage:<id>'` ([`staged_statement`]). Executing that
//! text reads the chunks in order, inserts every row in the statement's
//! overlay (checks, defaults, unique keys as any insert) and deletes the
//! chunks: the same log gives the same rows everywhere, and a failing
//! line fails the statement with nothing written. A stage whose statement
//! failed or whose transaction ended without it is dropped by
//! `SqlCommand::Unstage`, which its session proposes.
//!
//! In a transaction block the session also runs the statement on the
//! transaction's view with the data it holds ([`load`] from memory), since
//! the block's snapshot predates the staged chunks; COMMIT runs the text
//! again at apply, reading the stage, and the outcomes must agree as for
//! every statement of a transaction.
//!
//! A client cannot name a stage: the session refuses COPY from a file.

use std::sync::Arc;

use sqlparser::ast;
use storage::{Family, Overlay, Reader};

use crate::catalog::{self, Table};
use crate::command::{CopyOut, Outcome};
use crate::copy_format::{CopyOptions, Record, RecordReader};
use crate::error::{code, Error, Result, SqlError};
use crate::value::{parse_text, Value};
use crate::write::RowWriter;
use crate::{bind, exec, keys, parse, query, DataType};

/// The most data one `Stage` entry carries (a log entry holds 1 MiB).
pub const CHUNK_BYTES: usize = 512 * 1024;

/// The file name a staged COPY reads from, before the stage id in hex.
const STAGE_PREFIX: &str = "seshat-stage:";

/// `statement` (a COPY FROM STDIN) reading stage `stage` instead.
pub fn staged_statement(statement: &ast::Statement, stage: u128) -> ast::Statement {
    let mut staged = statement.clone();
    if let ast::Statement::Copy { target, .. } = &mut staged {
        *target = ast::CopyTarget::File { filename: format!("{STAGE_PREFIX}{stage:032x}") };
    }
    staged
}

/// The stage a COPY FROM names, if it names one.
fn stage_of(target: &ast::CopyTarget) -> Option<u128> {
    match target {
        ast::CopyTarget::File { filename } => u128::from_str_radix(filename.strip_prefix(STAGE_PREFIX)?, 16).ok(),
        _ => None,
    }
}

/// Where a client's COPY reads or writes, refused unless it is the
/// client's own stream.
pub fn refuse_server_files(statement: &ast::Statement) -> std::result::Result<(), SqlError> {
    match statement {
        ast::Statement::Copy { target: ast::CopyTarget::Stdin | ast::CopyTarget::Stdout, .. } => Ok(()),
        ast::Statement::Copy { to, .. } => Err(SqlError::unsupported(format!(
            "COPY {} a file or program on the server (use {})",
            if *to { "to" } else { "from" },
            if *to { "STDOUT" } else { "STDIN, or psql's \\copy" }
        ))),
        _ => Ok(()),
    }
}

/// A bound `COPY t [(columns)] FROM …`: the table, the columns each
/// record fills, the format.
pub struct CopyFrom {
    pub table: Arc<Table>,
    targets: Vec<usize>,
    pub options: CopyOptions,
}

impl CopyFrom {
    pub fn bind(view: &impl Reader, statement: &ast::Statement) -> Result<CopyFrom> {
        let ast::Statement::Copy { source, to: false, options, legacy_options, .. } = statement else {
            return Err(Error::Corrupt(format!("not a COPY FROM: {statement}")));
        };
        let ast::CopySource::Table { table_name, columns } = source else {
            return Err(SqlError::new(code::SYNTAX_ERROR, "COPY FROM needs a table, not a query").into());
        };
        let options = CopyOptions::of(options, legacy_options)?;
        let table = existing_table(view, table_name, "to")?;
        let targets = match columns.is_empty() {
            true => (0..table.columns.len()).collect(),
            false => {
                columns.iter().map(|c| table.existing_column(&bind::ident(c))).collect::<std::result::Result<_, _>>()?
            }
        };
        Ok(CopyFrom { table, targets, options })
    }

    /// How many fields a record has.
    pub fn width(&self) -> usize {
        self.targets.len()
    }

    /// A record's values for the target columns, converted to their types.
    pub fn values(&self, record: Record) -> std::result::Result<Vec<Value>, SqlError> {
        if record.len() > self.targets.len() {
            return Err(SqlError::new(code::BAD_COPY_FILE_FORMAT, "extra data after last expected column"));
        }
        if let Some(&missing) = self.targets.get(record.len()) {
            let name = &self.table.columns[missing].name;
            return Err(SqlError::new(code::BAD_COPY_FILE_FORMAT, format!("missing data for column \"{name}\"")));
        }
        record
            .into_iter()
            .zip(&self.targets)
            .map(|(field, &target)| {
                let column = &self.table.columns[target];
                match field {
                    None => Ok(Value::Null),
                    // Text is checked (and char(n) padded) as an assignment.
                    Some(text) if column.data_type.is_text() => Ok(Value::Text(text)),
                    Some(text) => parse_text(&text, column.data_type)
                        .map_err(|e| e.with_context(format!("column {}: \"{text}\"", column.name))),
                }
            })
            .collect()
    }

    /// `error` placed at `line` of the data, as PostgreSQL's CONTEXT.
    pub(crate) fn context(&self, error: SqlError, line: u64) -> SqlError {
        let place = format!("COPY {}, line {line}", self.table.name);
        let context = match &error.context {
            Some(column) => format!("{place}, {column}"),
            None => place,
        };
        error.with_context(context)
    }
}

/// The table `name`, or 42P01 (42809 for a view: `doing` is "to" or
/// "from").
fn existing_table(view: &impl Reader, name: &ast::ObjectName, doing: &str) -> Result<Arc<Table>> {
    let name = bind::object_name(name)?;
    if let Some(table) = catalog::table(view, &name)? {
        return Ok(table);
    }
    if crate::view::find(view, &name)?.is_some() {
        let message = format!("cannot copy {doing} view \"{name}\"");
        return Err(SqlError::new(code::WRONG_OBJECT_TYPE, message).into());
    }
    Err(SqlError::new(code::UNDEFINED_TABLE, format!("relation \"{name}\" does not exist")).into())
}

/// Where a COPY's data is: the data in order, cut anywhere.
pub enum Chunks {
    /// Staged in the store, chunks 0, 1, … (read one at a time, up to the
    /// first missing: a session stages them in order, without gaps).
    Staged,
    /// Held by the session (a transaction block's COPY).
    Held(Vec<Vec<u8>>),
}

/// Inserts the records of `chunks` into the table, then deletes the
/// chunks of `stage`: the outcome `COPY n`.
pub fn load<R: Reader>(view: &mut Overlay<'_, R>, copy: &CopyFrom, stage: u128, chunks: Chunks) -> Result<Outcome> {
    let writer = RowWriter::new(&copy.table)?;
    let mut reader = RecordReader::new(copy.options.clone());
    let mut count = 0u64;
    let mut insert = |view: &mut Overlay<'_, R>, record: Record, line: u64| -> Result<()> {
        let at_line = |error: Error| match error {
            Error::Sql(error) => Error::Sql(copy.context(error, line)),
            other => other,
        };
        let values = copy.values(record).map_err(|e| at_line(e.into()))?;
        let mut row = writer.defaults()?;
        for (value, &target) in values.into_iter().zip(&copy.targets) {
            row[target] = value;
        }
        writer.store(view, row).map_err(at_line)?;
        count += 1;
        Ok(())
    };
    let mut held = match chunks {
        Chunks::Held(held) => Some(held.into_iter()),
        Chunks::Staged => None,
    };
    let mut seq = 0u32;
    loop {
        let chunk = match &mut held {
            Some(held) => held.next(),
            None => view.get(Family::SqlRows, &keys::stage_chunk(stage, seq))?,
        };
        let Some(chunk) = chunk else { break };
        seq += 1;
        let mut records = Vec::new();
        let fed = reader.feed(&chunk, |record, line| {
            records.push((record, line));
            Ok::<(), SqlError>(())
        });
        for (record, line) in records {
            insert(view, record, line)?;
        }
        fed.map_err(|e| copy.context(e, reader.line()))?;
    }
    let mut last = Vec::new();
    reader
        .finish(|record, line| {
            last.push((record, line));
            Ok::<(), SqlError>(())
        })
        .map_err(|e| copy.context(e, reader.line()))?;
    for (record, line) in last {
        insert(view, record, line)?;
    }
    for seq in 0..seq {
        view.delete(Family::SqlRows, keys::stage_chunk(stage, seq));
    }
    Ok(Outcome::Command { command: "COPY".into(), rows: Some(count) })
}

/// Executes a logged COPY: FROM a stage (at apply, or a transaction's
/// statement run again), or TO STDOUT.
pub fn run<R: Reader>(view: &mut Overlay<'_, R>, statement: &ast::Statement) -> Result<Outcome> {
    match statement {
        ast::Statement::Copy { to: true, .. } => to(&*view, statement),
        ast::Statement::Copy { to: false, target, .. } => {
            let Some(stage) = stage_of(target) else {
                refuse_server_files(statement)?;
                return Err(
                    SqlError::new(code::PROTOCOL_VIOLATION, "COPY FROM STDIN runs only as its own statement").into()
                );
            };
            let copy = CopyFrom::bind(&*view, statement)?;
            load(view, &copy, stage, Chunks::Staged)
        }
        _ => Err(Error::Corrupt(format!("not a COPY: {statement}"))),
    }
}

/// `COPY t [(columns)] | (query) TO STDOUT`: the rows, as lines of the
/// format.
pub fn to(view: &impl Reader, statement: &ast::Statement) -> Result<Outcome> {
    let ast::Statement::Copy { source, options, legacy_options, .. } = statement else {
        return Err(Error::Corrupt(format!("not a COPY: {statement}")));
    };
    refuse_server_files(statement)?;
    let options = CopyOptions::of(options, legacy_options)?;
    let query = match source {
        ast::CopySource::Query(query) => (**query).clone(),
        ast::CopySource::Table { table_name, columns } => {
            existing_table(view, table_name, "from")?;
            let list = match columns.is_empty() {
                true => "*".to_string(),
                false => columns.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            };
            match parse::statements(&format!("SELECT {list} FROM {table_name}"))?.pop() {
                Some(ast::Statement::Query(query)) => *query,
                _ => return Err(Error::Corrupt("COPY's query did not parse".into())),
            }
        }
    };
    let plan = query::plan(view, &query)?;
    let rows = exec::query(view, &plan)?;
    let types: Vec<DataType> = plan.columns().iter().map(|c| c.data_type).collect();
    let mut lines = Vec::with_capacity(rows.len() + 1);
    if options.header {
        let mut line = Vec::new();
        let names: Vec<String> = plan.columns().iter().map(|c| c.name.clone()).collect();
        options.encode_header(&names, &mut line);
        lines.push(line);
    }
    let count = rows.len() as u64;
    for row in rows {
        let mut line = Vec::new();
        options.encode(&row, &types, &mut line);
        lines.push(line);
    }
    Ok(Outcome::CopyOut(CopyOut { columns: types.len(), lines, rows: count }))
}
