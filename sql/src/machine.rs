//! The `sql/0` state machine: applies logged statements in log order, all
//! of one apply call through one overlay that becomes one write batch.
//!
//! Invariants:
//! - each statement runs in an overlay of its own over the apply overlay,
//!   merged only when it completes: a failed statement writes nothing;
//! - a transaction's statements run again in order at its commit, each
//!   in an overlay over the transaction's: its writes are kept only if
//!   every statement has the outcome the client saw, so a committed
//!   transaction is equivalent to running it whole at its log position;
//! - an entry a session ran ahead keeps its recorded writes only if its
//!   recorded reads answer the same here (`read_set`), else it runs as
//!   above: either way the result is that of running it at its position;
//!   a transaction's statements are each taken that way in turn, over
//!   the writes of the ones before it (`CommitSteps`);
//! - a table's rows are deleted by one range deletion after the overlay's
//!   writes, once the table is unreachable (dropped from the catalog; ids
//!   are never reused);
//! - a staged COPY chunk is stored until the COPY that names its stage
//!   runs (and deletes it) or an Unstage drops the stage (by range, after
//!   the overlay's writes);
//! - the last applied stamp is kept in `sql_meta`, so time never runs
//!   backwards across restarts;
//! - an entry that changes `sql_catalog` sets `keys::CATALOG_VERSION` to
//!   its index, in the overlay, so equal versions mean equal catalogs
//!   even between the entries of one apply (a later entry's recorded
//!   reads of the version fail to hold).

use bytes::Bytes;
use raft::{Command, StateMachine};
use storage::keyspace::Span;
use storage::{Batch, Family, Overlay, Reader, Service, Store, Writes};

use crate::catalog;
use crate::command::{encode_response, Checked, Outcome, SqlCommand, Step};
use crate::datetime::StatementTime;
use crate::error::{code, Error, SqlError};
use crate::keys;
use crate::read_set::{DeferredRow, WriteSet};
use crate::service::run_blocking;
use crate::write;
use crate::write::RowWriter;

pub struct SqlMachine {
    store: Store,
    last_stamp_ms: u64,
}

impl SqlMachine {
    pub fn open(store: Store) -> Result<SqlMachine, Error> {
        let mut machine = SqlMachine { store, last_stamp_ms: 0 };
        machine.reload()?;
        Ok(machine)
    }
}

/// Executes one statement's `sql` over `overlay`: its outcome, or the
/// SQL error that left nothing written.
fn execute<R: Reader>(
    overlay: &mut Overlay<'_, R>,
    dropped: &mut Vec<u32>,
    sql: &str,
    index: u64,
) -> Result<Result<Outcome, SqlError>, Error> {
    let mut statement = Overlay::new(&*overlay);
    match write::execute(&mut statement, sql) {
        Ok(effects) => {
            take_over(overlay, statement.into_writes(), index);
            dropped.extend(effects.dropped);
            Ok(Ok(effects.outcome))
        }
        Err(Error::Sql(error)) => Ok(Err(error)),
        Err(fatal) => Err(fatal),
    }
}

/// Commits a transaction by running its statements again over
/// `overlay`: COMMIT if every outcome is the one the client saw (their
/// writes then join `overlay`), else 40001 and nothing written.
fn commit<R: Reader>(
    overlay: &mut Overlay<'_, R>,
    dropped: &mut Vec<u32>,
    statements: &[Checked],
    index: u64,
) -> Result<Result<Outcome, SqlError>, Error> {
    match run_again(&*overlay, statements)? {
        Some((writes, tables)) => {
            take_over(overlay, writes, index);
            dropped.extend(tables);
            Ok(Ok(Outcome::command("COMMIT")))
        }
        None => Ok(Err(serialization_failure())),
    }
}

/// Commits a transaction statement by statement ([`SqlCommand::CommitSteps`]):
/// a statement whose recorded reads answer the same over `overlay` and the
/// writes of the statements before it keeps its recorded writes (by the
/// invariant of [`crate::read_set`], running it would write and answer the
/// same); any other runs again from its text. COMMIT if every outcome is
/// the one the client saw (the writes then join `overlay`), else 40001
/// and nothing written.
fn commit_steps<R: Reader>(
    overlay: &mut Overlay<'_, R>,
    dropped: &mut Vec<u32>,
    steps: Vec<Step>,
    index: u64,
) -> Result<Result<Outcome, SqlError>, Error> {
    let mut transaction = Overlay::new(&*overlay);
    let mut tables = Vec::new();
    for Step { checked, ran } in steps {
        let same = match ran {
            Some(ran) if ran.reads.holds(&transaction)? => keep(&mut transaction, ran.writes, ran.deferred)?.is_ok(),
            _ => run_blocking(|| run_checked(&mut transaction, &mut tables, &checked))?,
        };
        if !same {
            return Ok(Err(serialization_failure()));
        }
    }
    take_over(overlay, transaction.into_writes(), index);
    dropped.extend(tables);
    Ok(Ok(Outcome::command("COMMIT")))
}

fn serialization_failure() -> SqlError {
    SqlError::new(code::SERIALIZATION_FAILURE, "could not serialize access due to concurrent update")
}

/// Takes over the writes of entry `index`; if they change the catalog,
/// stamps its version with `index`.
fn take_over<R: Reader>(overlay: &mut Overlay<'_, R>, writes: Writes, index: u64) {
    let catalog_changed = writes.touches(Family::SqlCatalog);
    overlay.extend(writes);
    if catalog_changed {
        overlay.put(Family::SqlMeta, keys::CATALOG_VERSION.to_vec(), index.to_be_bytes().to_vec());
    }
}

/// Runs a transaction's statements again over `view`: their writes and
/// dropped tables if every outcome is the one the client saw, `None` if
/// one differs or fails (a concurrent commit changed what it read).
fn run_again<R: Reader>(view: &R, statements: &[Checked]) -> Result<Option<(Writes, Vec<u32>)>, Error> {
    let mut transaction = Overlay::new(view);
    let mut dropped = Vec::new();
    for checked in statements {
        if !run_checked(&mut transaction, &mut dropped, checked)? {
            return Ok(None);
        }
    }
    Ok(Some((transaction.into_writes(), dropped)))
}

/// Runs a transaction's statement from its text over `transaction`;
/// whether it had the outcome the client saw (its writes and dropped
/// tables then join `transaction` and `dropped`).
fn run_checked<R: Reader>(
    transaction: &mut Overlay<'_, R>,
    dropped: &mut Vec<u32>,
    checked: &Checked,
) -> Result<bool, Error> {
    let mut statement = Overlay::new(&*transaction);
    match write::execute(&mut statement, &checked.sql) {
        Ok(effects) if effects.outcome.digest() == checked.digest => {
            let writes = statement.into_writes();
            transaction.extend(writes);
            dropped.extend(effects.dropped);
            Ok(true)
        }
        Ok(_) | Err(Error::Sql(_)) => Ok(false),
        Err(fatal) => Err(fatal),
    }
}

/// Keeps the writes of a statement run ahead and stores the rows it
/// deferred, in order; if one cannot be stored (a unique index refuses
/// it), its error, and nothing of the statement is written.
fn keep<R: Reader>(
    overlay: &mut Overlay<'_, R>,
    writes: WriteSet,
    deferred: Vec<DeferredRow>,
) -> Result<Result<(), SqlError>, Error> {
    let mut statement = Overlay::new(&*overlay);
    statement.extend(writes.into_writes()?);
    for DeferredRow { table, row } in deferred {
        let Some(table) = catalog::table(&statement, &table)? else {
            return Err(Error::Corrupt(format!("a deferred row of table {table}, which does not exist")));
        };
        // Checked in the session against this same catalog (the reads of
        // its version held).
        match RowWriter::new(&table).and_then(|writer| writer.store_checked(&mut statement, row)) {
            Ok(_) => {}
            Err(Error::Sql(error)) => return Ok(Err(error)),
            Err(fatal) => return Err(fatal),
        }
    }
    let writes = statement.into_writes();
    overlay.extend(writes);
    Ok(Ok(()))
}

impl StateMachine for SqlMachine {
    type Error = Error;

    fn apply(&mut self, batch: &mut Batch, commands: Vec<Command>) -> Result<Vec<Bytes>, Error> {
        let mut overlay = Overlay::new(&self.store);
        let mut dropped = Vec::new();
        let mut unstaged = Vec::new();
        let mut responses = Vec::with_capacity(commands.len());
        for command in commands {
            self.last_stamp_ms = self.last_stamp_ms.max(command.stamp_ms);
            let decoded = postcard::from_bytes::<SqlCommand>(&command.payload);
            // A statement on its own runs at its entry's stamp, a
            // transaction at the time its session fixed.
            let _time = StatementTime::enter(match &decoded {
                Ok(
                    SqlCommand::CommitAt { now_micros, .. }
                    | SqlCommand::CommitRead { now_micros, .. }
                    | SqlCommand::CommitSteps { now_micros, .. },
                ) => *now_micros,
                _ => command.stamp_ms as i64 * 1000,
            });
            let response = match decoded {
                // Executing statements can take long (a COPY of a million
                // rows): off the runtime's worker, so that this node's
                // heartbeats and other tasks go on meanwhile.
                Ok(SqlCommand::Execute { sql }) => {
                    run_blocking(|| execute(&mut overlay, &mut dropped, &sql, command.index))?
                }
                Ok(SqlCommand::ExecuteRead { sql, reads, writes, deferred, outcome }) => {
                    match reads.holds(&overlay)? {
                        true => keep(&mut overlay, writes, deferred)?.map(|()| outcome),
                        false => run_blocking(|| execute(&mut overlay, &mut dropped, &sql, command.index))?,
                    }
                }
                Ok(SqlCommand::Commit { statements } | SqlCommand::CommitAt { statements, .. }) => {
                    run_blocking(|| commit(&mut overlay, &mut dropped, &statements, command.index))?
                }
                Ok(SqlCommand::CommitRead { statements, reads, writes, .. }) => match reads.holds(&overlay)? {
                    true => {
                        overlay.extend(writes.into_writes()?);
                        Ok(Outcome::command("COMMIT"))
                    }
                    false => run_blocking(|| commit(&mut overlay, &mut dropped, &statements, command.index))?,
                },
                Ok(SqlCommand::CommitSteps { steps, .. }) => {
                    commit_steps(&mut overlay, &mut dropped, steps, command.index)?
                }
                Ok(SqlCommand::Stage { stage, seq, data }) => {
                    overlay.put(Family::SqlRows, keys::stage_chunk(stage, seq), data);
                    Ok(Outcome::command("STAGE"))
                }
                Ok(SqlCommand::Unstage { stage }) => {
                    unstaged.push(stage);
                    Ok(Outcome::command("UNSTAGE"))
                }
                // A newer node's command: refused the same way everywhere.
                Err(error) => Err(SqlError::new(code::INTERNAL_ERROR, format!("undecodable SQL command: {error}"))),
            };
            responses.push(Bytes::from(encode_response(&response)));
        }
        overlay.into_batch(batch);
        // Ids are never reused: deleting both families' ranges of a
        // dropped table or index is exact.
        for relation in dropped {
            let (start, end) = keys::rows(relation);
            batch.delete_range(Family::SqlRows, start.clone(), end.clone());
            batch.delete_range(Family::SqlIndex, start, end);
        }
        // Stage ids are never reused: nothing after its Unstage writes it.
        for stage in unstaged {
            let (start, end) = keys::stage(stage);
            batch.delete_range(Family::SqlRows, start, end);
        }
        batch.put(Family::SqlMeta, keys::LAST_STAMP.to_vec(), self.last_stamp_ms.to_be_bytes().to_vec());
        Ok(responses)
    }

    fn last_stamp_ms(&self) -> u64 {
        self.last_stamp_ms
    }

    fn reload(&mut self) -> Result<(), Error> {
        self.last_stamp_ms = match self.store.get(Family::SqlMeta, keys::LAST_STAMP)? {
            Some(bytes) => {
                u64::from_be_bytes(bytes.as_slice().try_into().map_err(|_| Error::Corrupt("last stamp".into()))?)
            }
            None => 0,
        };
        Ok(())
    }

    /// The SQL service has one group (`sql/0`), which owns its families.
    fn state_spans(&self) -> Vec<Span> {
        Service::Sql.state_families().iter().map(|family| Span::whole(*family)).collect()
    }
}
