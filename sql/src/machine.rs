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
//! - a table's rows are deleted by one range deletion after the overlay's
//!   writes, once the table is unreachable (dropped from the catalog; ids
//!   are never reused);
//! - the last applied stamp is kept in `sql_meta`, so time never runs
//!   backwards across restarts;
//! - an apply that changes `sql_catalog` sets `keys::CATALOG_VERSION` to
//!   its last entry's index, so equal versions mean equal catalogs.

use bytes::Bytes;
use raft::{Command, StateMachine};
use storage::{Batch, Family, Overlay, Reader, Store, Writes};

use crate::command::{encode_response, Checked, Outcome, SqlCommand};
use crate::datetime::StatementTime;
use crate::error::{code, Error, SqlError};
use crate::keys;
use crate::write;

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

/// Runs a transaction's statements again over `view`: their writes and
/// dropped tables if every outcome is the one the client saw, `None` if
/// one differs or fails (a concurrent commit changed what it read).
fn commit<R: Reader>(view: &R, statements: &[Checked]) -> Result<Option<(Writes, Vec<u32>)>, Error> {
    let mut transaction = Overlay::new(view);
    let mut dropped = Vec::new();
    for checked in statements {
        let mut statement = Overlay::new(&transaction);
        match write::execute(&mut statement, &checked.sql) {
            Ok(effects) if effects.outcome.digest() == checked.digest => {
                let writes = statement.into_writes();
                transaction.extend(writes);
                dropped.extend(effects.dropped);
            }
            Ok(_) | Err(Error::Sql(_)) => return Ok(None),
            Err(fatal) => return Err(fatal),
        }
    }
    Ok(Some((transaction.into_writes(), dropped)))
}

impl StateMachine for SqlMachine {
    type Error = Error;

    fn apply(&mut self, batch: &mut Batch, commands: Vec<Command>) -> Result<Vec<Bytes>, Error> {
        let mut overlay = Overlay::new(&self.store);
        let mut dropped = Vec::new();
        let mut responses = Vec::with_capacity(commands.len());
        let last_index = commands.last().map(|c| c.index);
        for command in commands {
            self.last_stamp_ms = self.last_stamp_ms.max(command.stamp_ms);
            let decoded = postcard::from_bytes::<SqlCommand>(&command.payload);
            // A statement on its own runs at its entry's stamp, a
            // transaction at the time its session fixed.
            let _time = StatementTime::enter(match &decoded {
                Ok(SqlCommand::CommitAt { now_micros, .. }) => *now_micros,
                _ => command.stamp_ms as i64 * 1000,
            });
            let response = match decoded {
                Ok(SqlCommand::Execute { sql }) => {
                    let mut statement = Overlay::new(&overlay);
                    match write::execute(&mut statement, &sql) {
                        Ok(effects) => {
                            let writes = statement.into_writes();
                            overlay.extend(writes);
                            dropped.extend(effects.dropped);
                            Ok(effects.outcome)
                        }
                        Err(Error::Sql(error)) => Err(error),
                        Err(fatal) => return Err(fatal),
                    }
                }
                Ok(SqlCommand::Commit { statements } | SqlCommand::CommitAt { statements, .. }) => {
                    match commit(&overlay, &statements)? {
                        Some((writes, tables)) => {
                            overlay.extend(writes);
                            dropped.extend(tables);
                            Ok(Outcome::command("COMMIT"))
                        }
                        None => Err(SqlError::new(
                            code::SERIALIZATION_FAILURE,
                            "could not serialize access due to concurrent update",
                        )),
                    }
                }
                // A newer node's command: refused the same way everywhere.
                Err(error) => Err(SqlError::new(code::INTERNAL_ERROR, format!("undecodable SQL command: {error}"))),
            };
            responses.push(Bytes::from(encode_response(&response)));
        }
        if let Some(index) = last_index.filter(|_| overlay.has_pending(Family::SqlCatalog)) {
            overlay.put(Family::SqlMeta, keys::CATALOG_VERSION.to_vec(), index.to_be_bytes().to_vec());
        }
        overlay.into_batch(batch);
        // Ids are never reused: deleting both families' ranges of a
        // dropped table or index is exact.
        for relation in dropped {
            let (start, end) = keys::rows(relation);
            batch.delete_range(Family::SqlRows, start.clone(), end.clone());
            batch.delete_range(Family::SqlIndex, start, end);
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
}
