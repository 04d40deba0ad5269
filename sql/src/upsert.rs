//! `INSERT … ON CONFLICT`: what a proposed row that collides with a
//! stored one on a unique key does instead of failing.
//!
//! The *arbiters* are the unique keys the clause handles: those its
//! target names (columns matching the primary key or a unique index, or
//! a constraint's name), or, for `DO NOTHING` without a target, every
//! unique key. A proposed row is checked (types, NOT NULL, CHECK) first,
//! then looked up on each arbiter; a collision on another unique key is
//! still 23505. `DO UPDATE` rewrites the stored row with expressions over
//! it and `excluded` (the proposed row); a row may be affected once per
//! statement (21000 otherwise), as in PostgreSQL.

use sqlparser::ast;
use storage::{Family, Reader};

use crate::bind::{ident, object_name, Binder};
use crate::catalog::Table;
use crate::error::{code, Result, SqlError};
use crate::exec::decode_row;
use crate::expr::Expr;
use crate::keys;
use crate::scope::Scope;
use crate::subquery::Planner;
use crate::value::Value;
use crate::write::{assignable, default_value};

/// A bound ON CONFLICT clause.
pub struct OnConflict {
    arbiters: Vec<Arbiter>,
    pub action: Action,
}

/// A unique key of the table.
enum Arbiter {
    PrimaryKey,
    /// The unique index at this position of `Table::indexes`.
    Index(usize),
}

pub enum Action {
    Nothing,
    /// New values of columns and the condition to apply them, over the
    /// stored row followed by the proposed one (`excluded`).
    Update {
        assignments: Vec<(usize, Expr)>,
        filter: Option<Expr>,
    },
}

impl OnConflict {
    /// Binds `clause` of an INSERT into `table` (under `alias`, if any).
    pub fn bind(
        table: &Table,
        alias: Option<String>,
        clause: &ast::OnConflict,
        subqueries: Planner<'_>,
    ) -> Result<OnConflict> {
        let arbiters = match &clause.conflict_target {
            None if matches!(clause.action, ast::OnConflictAction::DoUpdate(_)) => {
                return Err(SqlError::new(
                    code::SYNTAX_ERROR,
                    "ON CONFLICT DO UPDATE requires inference specification or constraint name",
                )
                .into())
            }
            None => {
                let key = (!table.primary_key.is_empty()).then_some(Arbiter::PrimaryKey);
                let unique = table.indexes.iter().enumerate().filter(|(_, i)| i.unique);
                key.into_iter().chain(unique.map(|(position, _)| Arbiter::Index(position))).collect()
            }
            Some(ast::ConflictTarget::Columns { predicate: Some(_), .. }) => {
                return Err(SqlError::unsupported("ON CONFLICT (…) WHERE").into())
            }
            Some(ast::ConflictTarget::Columns { columns, predicate: None }) => {
                let mut positions = Vec::new();
                for column in columns {
                    let name = ident(column);
                    let position = table.column(&name).ok_or_else(|| {
                        SqlError::new(code::UNDEFINED_COLUMN, format!("column \"{name}\" does not exist"))
                    })?;
                    positions.push(position);
                }
                by_columns(table, &positions)?
            }
            Some(ast::ConflictTarget::OnConstraint(name)) => vec![by_name(table, &object_name(name)?)?],
        };
        let action = match &clause.action {
            ast::OnConflictAction::DoNothing => Action::Nothing,
            ast::OnConflictAction::DoUpdate(update) => {
                let target = Scope::of(table, alias);
                let scope = target.join(Scope::of(table, Some("excluded".into())))?;
                let mut assignments = Vec::new();
                for assignment in &update.assignments {
                    let ast::AssignmentTarget::ColumnName(name) = &assignment.target else {
                        return Err(SqlError::unsupported("assigning a tuple of columns").into());
                    };
                    let position = table.existing_column(&object_name(name)?)?;
                    let column = &table.columns[position];
                    let expr = match crate::dml::is_default(&assignment.value) {
                        true => Expr::Literal(default_value(column)?),
                        false => {
                            let bound = Binder::new(&scope).with_subqueries(subqueries).bind(&assignment.value)?;
                            assignable(bound, column.data_type, &column.name)?
                        }
                    };
                    assignments.push((position, expr));
                }
                let mut binder = Binder::new(&scope).with_subqueries(subqueries);
                let filter = update.selection.as_ref().map(|s| binder.condition(s, "WHERE")).transpose()?;
                Action::Update { assignments, filter }
            }
        };
        Ok(OnConflict { arbiters, action })
    }

    /// Every expression of the clause.
    pub fn exprs(&self) -> Vec<&Expr> {
        match &self.action {
            Action::Nothing => Vec::new(),
            Action::Update { assignments, filter } => assignments.iter().map(|(_, e)| e).chain(filter).collect(),
        }
    }

    /// The stored row of `table` that the checked proposed `row` collides
    /// with on an arbiter, with its key.
    pub fn conflict(&self, view: &impl Reader, table: &Table, row: &[Value]) -> Result<Option<(Vec<u8>, Vec<Value>)>> {
        for arbiter in &self.arbiters {
            let key = match arbiter {
                Arbiter::PrimaryKey => {
                    let key: Vec<Value> = table.primary_key.iter().map(|&i| row[i].clone()).collect();
                    keys::row(table.id, &key)
                }
                Arbiter::Index(position) => {
                    let index = &table.indexes[*position];
                    let values: Vec<Value> = index.columns.iter().map(|&i| row[i].clone()).collect();
                    if values.iter().any(Value::is_null) {
                        continue;
                    }
                    let prefix = keys::index_prefix(index.id, &values);
                    let entry = view.scan(Family::SqlIndex, &prefix, Some(&keys::prefix_end(&prefix))).next();
                    let Some(entry) = entry else { continue };
                    keys::row_from_primary_key(table.id, &entry?.1)
                }
            };
            if let Some(bytes) = view.get(Family::SqlRows, &key)? {
                return Ok(Some((key, decode_row(&bytes)?)));
            }
        }
        Ok(None)
    }
}

/// The unique key over exactly the columns `positions`, in any order.
fn by_columns(table: &Table, positions: &[usize]) -> Result<Vec<Arbiter>> {
    let mut wanted = positions.to_vec();
    wanted.sort_unstable();
    let same = |columns: &[usize]| {
        let mut columns = columns.to_vec();
        columns.sort_unstable();
        columns == wanted
    };
    if !table.primary_key.is_empty() && same(&table.primary_key) {
        return Ok(vec![Arbiter::PrimaryKey]);
    }
    let matching = table.indexes.iter().enumerate().filter(|(_, i)| i.unique && same(&i.columns));
    let arbiters: Vec<Arbiter> = matching.map(|(position, _)| Arbiter::Index(position)).collect();
    if arbiters.is_empty() {
        return Err(SqlError::new(
            code::INVALID_COLUMN_REFERENCE,
            "there is no unique or exclusion constraint matching the ON CONFLICT specification",
        )
        .into());
    }
    Ok(arbiters)
}

/// The unique key of the constraint named `name`.
fn by_name(table: &Table, name: &str) -> Result<Arbiter> {
    if !table.primary_key.is_empty() && name == format!("{}_pkey", table.name) {
        return Ok(Arbiter::PrimaryKey);
    }
    match table.indexes.iter().position(|i| i.constraint && i.name == name) {
        Some(position) => Ok(Arbiter::Index(position)),
        None => Err(SqlError::new(
            code::UNDEFINED_OBJECT,
            format!("constraint \"{name}\" for table \"{}\" does not exist", table.name),
        )
        .into()),
    }
}
