//! Statements that change data, executed at apply on every replica
//! against the apply overlay: the same log gives the same bytes
//! everywhere. A statement either completes or fails with nothing
//! written (its writes stay in its own overlay until it completes).
//!
//! Checked on every write: column types (assignment casts), lengths, NOT
//! NULL, CHECK constraints, primary-key and unique-index uniqueness
//! ([`crate::index`] keeps indexes in step). A table without a primary key keys
//! its rows by a hidden row id from a per-table counter.
//!
//! The statements themselves are in [`crate::ddl`] (catalog),
//! [`crate::alter`] (TRUNCATE, ALTER TABLE) and [`crate::dml`] (rows); this module runs them and holds the checks
//! every stored row passes.

use sqlparser::ast;
use storage::{Family, Overlay, Reader};

use crate::alter;
use crate::analyze;
use crate::bind;
use crate::bind::Binder;
use crate::catalog::{Check, Column, Table};
use crate::command::{Outcome, Rows};
use crate::ddl;
use crate::dml::DmlPlan;
use crate::error::{code, Error, Result, SqlError};
use crate::exec::{self, encode_row};
use crate::explain::Lines;
use crate::expr::Expr;
use crate::index;
use crate::keys;
use crate::parse;
use crate::plan::OutputColumn;
use crate::query;
use crate::read_set::{self, Defer};
use crate::scope::Scope;
use crate::subquery::Mode;
use crate::types::DataType;
use crate::value::Value;

/// What a completed statement leaves besides its overlay writes.
pub struct Effects {
    pub outcome: Outcome,
    /// Tables whose rows the batch must delete (by range: they are no
    /// longer reachable from the catalog).
    pub dropped: Vec<u32>,
}

impl Effects {
    fn done(outcome: Outcome) -> Effects {
        Effects { outcome, dropped: Vec::new() }
    }
}

/// Executes `sql`, one statement, against `view`: a query reads it,
/// anything else writes to it. The same function runs a statement in a
/// session's transaction and again when the transaction commits at apply.
pub fn execute<R: Reader>(view: &mut Overlay<'_, R>, sql: &str) -> Result<Effects> {
    let mut statements = parse::statements(sql)?;
    if statements.len() != 1 {
        return Err(Error::Corrupt(format!("a logged statement is {} statements", statements.len())));
    }
    run(view, statements.remove(0))
}

/// Executes `statement`, as [`execute`] does its text.
pub fn run<R: Reader>(view: &mut Overlay<'_, R>, statement: ast::Statement) -> Result<Effects> {
    match statement {
        ast::Statement::Query(query) => {
            let plan = query::plan(&*view, &query)?;
            let rows = exec::query(&*view, &plan)?;
            let columns = plan.columns().to_vec();
            Ok(Effects::done(Outcome::Rows(Rows { columns, rows, command: "SELECT".into() })))
        }
        ast::Statement::CreateTable(create) => ddl::create_table(view, &create).map(Effects::done),
        ast::Statement::Drop { object_type: ast::ObjectType::Table, if_exists, names, cascade: false, .. } => {
            ddl::drop_tables(view, &names, if_exists)
        }
        ast::Statement::CreateIndex(create) => ddl::create_index(view, &create).map(Effects::done),
        ast::Statement::CreateView(create) => crate::view::create(view, &create).map(Effects::done),
        ast::Statement::Drop { object_type: ast::ObjectType::View, if_exists, names, cascade: false, .. } => {
            crate::view::drop(view, &names, if_exists)
        }
        ast::Statement::Drop { object_type: ast::ObjectType::Index, if_exists, names, cascade: false, .. } => {
            ddl::drop_indexes(view, &names, if_exists)
        }
        ast::Statement::Explain { statement, analyze, format: None, options: None, .. } => {
            explain(&*view, &statement, analyze).map(Effects::done)
        }
        ast::Statement::Truncate(truncate) => alter::truncate(view, &truncate),
        ast::Statement::Copy { .. } => crate::copy::run(view, &statement).map(Effects::done),
        ast::Statement::Vacuum(vacuum) => maintenance(&*view, vacuum.table_name.as_ref(), "VACUUM"),
        ast::Statement::Analyze(analyze) => maintenance(&*view, analyze.table_name.as_ref(), "ANALYZE"),
        ast::Statement::AlterTable(alter) => alter::alter_table(view, &alter),
        statement => match DmlPlan::bind(&*view, &statement, Mode::Evaluate)? {
            Some(plan) => plan.apply(view).map(Effects::done),
            None => Err(SqlError::unsupported(format!("the statement {statement}")).into()),
        },
    }
}

/// VACUUM or ANALYZE: nothing to do (RocksDB compacts on its own, the
/// planner keeps no statistics), once the table is known to exist.
fn maintenance(view: &impl Reader, table: Option<&ast::ObjectName>, command: &str) -> Result<Effects> {
    if let Some(name) = table {
        let name = bind::object_name(name)?;
        if crate::catalog::table(view, &name)?.is_none() {
            return Err(SqlError::new(code::UNDEFINED_TABLE, format!("relation \"{name}\" does not exist")).into());
        }
    }
    Ok(Effects::done(Outcome::command(command)))
}

/// EXPLAIN `statement`: its plan, bound in `view`, as rows of text;
/// with ANALYZE, a query runs and each node shows what it did.
pub fn explain(view: &impl Reader, statement: &ast::Statement, analyze: bool) -> Result<Outcome> {
    let mut lines = Lines::default();
    match statement {
        ast::Statement::Query(query) if analyze => {
            let started = std::time::Instant::now();
            let plan = query::plan(view, query)?;
            let (rows, profile) = analyze::profiled(|| exec::query(view, &plan));
            rows?;
            lines = Lines::analyzed(profile);
            lines.query(0, &plan);
            let millis = started.elapsed().as_secs_f64() * 1000.0;
            lines.node(0, format!("Execution Time: {millis:.3} ms"));
        }
        ast::Statement::Query(query) => lines.query(0, &query::plan(view, query)?),
        other if analyze => {
            let what = other.to_string().split_whitespace().next().unwrap_or_default().to_uppercase();
            return Err(SqlError::unsupported(format!("EXPLAIN ANALYZE of {what}")).into());
        }
        other => match DmlPlan::bind(view, other, Mode::Evaluate)? {
            Some(plan) => plan.explain(&mut lines),
            None => return Err(SqlError::unsupported(format!("EXPLAIN of {other}")).into()),
        },
    }
    let rows = lines.into_lines().into_iter().map(|line| vec![Value::Text(line)]).collect();
    let columns = vec![OutputColumn { name: "QUERY PLAN".into(), data_type: DataType::Text }];
    Ok(Outcome::Rows(Rows { columns, rows, command: "EXPLAIN".into() }))
}

fn read_counter(view: &impl Reader, key: &[u8]) -> Result<u64> {
    Ok(match view.get(Family::SqlMeta, key)? {
        Some(bytes) => u64::from_be_bytes(bytes.as_slice().try_into().map_err(|_| Error::Corrupt("counter".into()))?),
        None => 1,
    })
}

/// The hidden row ids of rows a transaction stores provisionally
/// ([`read_set::Defer::Visible`]): only its session's overlay ever holds
/// them, above any id a table's counter draws.
static PROVISIONAL_ROWID: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1 << 62);

/// Draws the next value of counter `key` (starting at 1).
pub fn draw<R: Reader>(view: &mut Overlay<'_, R>, key: &[u8]) -> Result<u64> {
    let next = read_counter(view, key)?;
    view.put(Family::SqlMeta, key.to_vec(), (next + 1).to_be_bytes().to_vec());
    Ok(next)
}
/// Checks that `bound` can be stored in a column of type `to`.
pub fn assignable(bound: bind::Typed, to: DataType, column: &str) -> Result<Expr> {
    let ty = bound.ty;
    bound.coerce(to).map(|b| b.expr).map_err(|error| match error.code.as_str() {
        code::DATATYPE_MISMATCH => SqlError::new(
            code::DATATYPE_MISMATCH,
            format!("column \"{column}\" is of type {} but expression is of type {}", to.name(), ty.name()),
        )
        .into(),
        _ => error.into(),
    })
}

/// The value a column gets when an insert does not give one.
pub fn default_value(column: &Column) -> Result<Value> {
    let Some(text) = &column.default else { return Ok(Value::Null) };
    let expr = parse::expression(text)?;
    let bound = assignable(bind::constant(&expr)?, column.data_type, &column.name)?;
    Ok(bound.eval(&[])?)
}

/// How one statement stores rows of one table: the table's DEFAULT values
/// and CHECK constraints bound once, then every row checked against them.
/// (A DEFAULT is a constant expression, so one value serves every row;
/// it is evaluated the first time a row needs it.)
pub struct RowWriter<'t> {
    table: &'t Table,
    defaults: std::cell::OnceCell<Vec<Value>>,
    checks: Vec<(&'t str, Expr)>,
}

impl<'t> RowWriter<'t> {
    pub fn new(table: &'t Table) -> Result<RowWriter<'t>> {
        let checks =
            table.checks.iter().map(|c| Ok((c.name.as_str(), bound_check(table, c)?))).collect::<Result<_>>()?;
        Ok(RowWriter { table, defaults: std::cell::OnceCell::new(), checks })
    }

    /// A row of the columns' default values.
    pub fn defaults(&self) -> Result<Vec<Value>> {
        if let Some(defaults) = self.defaults.get() {
            return Ok(defaults.clone());
        }
        let defaults: Vec<Value> = self.table.columns.iter().map(default_value).collect::<Result<_>>()?;
        Ok(self.defaults.get_or_init(|| defaults).clone())
    }

    /// `row` converted to the columns' types, or why it cannot be stored
    /// (a value that does not fit, a NULL in a NOT NULL column, a CHECK
    /// constraint that is false).
    pub fn check(&self, mut row: Vec<Value>) -> Result<Vec<Value>> {
        let table = self.table;
        for (value, column) in row.iter_mut().zip(&table.columns) {
            *value = std::mem::replace(value, Value::Null).assign(column.data_type)?;
            if value.is_null() && !column.nullable {
                return Err(SqlError::new(
                    code::NOT_NULL_VIOLATION,
                    format!(
                        "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                        column.name, table.name
                    ),
                )
                .into());
            }
        }
        for (name, check) in &self.checks {
            if check.eval(&row)? == Value::Bool(false) {
                return Err(SqlError::new(
                    code::CHECK_VIOLATION,
                    format!("new row for relation \"{}\" violates check constraint \"{name}\"", table.name),
                )
                .into());
            }
        }
        Ok(row)
    }

    /// Checks a complete row and inserts it: its stored values. A row of
    /// a table without a primary key is left to apply when the statement
    /// runs ahead ([`read_set::defer`]), and in a transaction also stored
    /// under a provisional hidden row id.
    pub fn insert<R: Reader>(&self, view: &mut Overlay<'_, R>, row: Vec<Value>) -> Result<Vec<Value>> {
        let row = self.check(row)?;
        if self.table.primary_key.is_empty() {
            match read_set::defer(&self.table.name, &row) {
                Defer::No => {}
                Defer::Hidden => return Ok(row),
                Defer::Visible => {
                    let mut provisional = Overlay::new(&*view);
                    let rowid = PROVISIONAL_ROWID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let row = self.put(&mut provisional, keys::row(self.table.id, &[Value::Int(rowid)]), row)?.1;
                    let writes = provisional.into_writes();
                    read_set::stored_provisionally(&writes);
                    view.extend(writes);
                    return Ok(row);
                }
            }
        }
        Ok(self.store_checked(view, row)?.1)
    }

    /// Checks a complete row and stores it under a new key, which it
    /// returns with the stored values; refuses a key that exists.
    pub fn store<R: Reader>(&self, view: &mut Overlay<'_, R>, row: Vec<Value>) -> Result<(Vec<u8>, Vec<Value>)> {
        let row = self.check(row)?;
        self.store_checked(view, row)
    }

    /// Stores `row`, which [`RowWriter::check`] passed, as
    /// [`RowWriter::store`] does.
    pub fn store_checked<R: Reader>(
        &self,
        view: &mut Overlay<'_, R>,
        row: Vec<Value>,
    ) -> Result<(Vec<u8>, Vec<Value>)> {
        let table = self.table;
        let key = if table.primary_key.is_empty() {
            let rowid = draw(view, &keys::next_rowid(table.id))?;
            keys::row(table.id, &[Value::Int(rowid as i64)])
        } else {
            let key: Vec<Value> = table.primary_key.iter().map(|&i| row[i].clone()).collect();
            let key_bytes = keys::row(table.id, &key);
            if view.get(Family::SqlRows, &key_bytes)?.is_some() {
                return Err(duplicate_key(table).into());
            }
            key_bytes
        };
        self.put(view, key, row)
    }

    /// Stores `row` under the new key `key`, with its index entries.
    fn put<R: Reader>(
        &self,
        view: &mut Overlay<'_, R>,
        key: Vec<u8>,
        row: Vec<Value>,
    ) -> Result<(Vec<u8>, Vec<Value>)> {
        index::add(view, self.table, &key, &row)?;
        view.put(Family::SqlRows, key.clone(), encode_row(&row));
        Ok((key, row))
    }

    /// Checks `new`, the new values of the row `old` stored under `key`,
    /// and stores it (under a new key if its primary key changed); returns
    /// its key and stored values.
    pub fn replace<R: Reader>(
        &self,
        view: &mut Overlay<'_, R>,
        key: Vec<u8>,
        old: &[Value],
        new: Vec<Value>,
    ) -> Result<(Vec<u8>, Vec<Value>)> {
        let table = self.table;
        let key_changed = table.primary_key.iter().any(|&i| new[i].compare(&old[i]) != Some(std::cmp::Ordering::Equal));
        if key_changed {
            delete(view, table, key, old);
            return self.store(view, new);
        }
        let new = self.check(new)?;
        index::update(view, table, &key, old, &new)?;
        view.put(Family::SqlRows, key.clone(), encode_row(&new));
        Ok((key, new))
    }
}

/// Deletes the row `row` of `table` stored under `key`, and its index
/// entries.
pub fn delete<R: Reader>(view: &mut Overlay<'_, R>, table: &Table, key: Vec<u8>, row: &[Value]) {
    index::remove(view, table, &key, row);
    view.delete(Family::SqlRows, key);
}

/// The row positions CHECK constraint `check` of `table` reads.
pub fn check_columns(table: &Table, check: &Check) -> Result<std::collections::BTreeSet<usize>> {
    Ok(bound_check(table, check)?.columns())
}

fn bound_check(table: &Table, check: &Check) -> Result<Expr> {
    let expr = parse::expression(&check.expr)?;
    Ok(Binder::new(&Scope::of(table, None)).condition(&expr, "CHECK")?)
}

fn duplicate_key(table: &Table) -> SqlError {
    SqlError::new(
        code::UNIQUE_VIOLATION,
        format!("duplicate key value violates unique constraint \"{}_pkey\"", table.name),
    )
}
