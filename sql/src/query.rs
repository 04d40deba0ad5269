//! Planning a query statement over a storage view: what FROM names
//! ([`crate::from`]), then [`crate::bind::select`].

use sqlparser::ast;
use storage::Reader;

use crate::bind::{self, ident, object_name};
use crate::catalog::{self, Table};
use crate::error::{code, Result, SqlError};
use crate::from;
use crate::plan::SelectPlan;

/// The table `name` as `reader` has it, or 42P01.
pub fn table(reader: &impl Reader, name: &ast::ObjectName) -> Result<Table> {
    let name = object_name(name)?;
    catalog::table(reader, &name)?
        .ok_or_else(|| SqlError::new(code::UNDEFINED_TABLE, format!("relation \"{name}\" does not exist")).into())
}

/// The one table a FROM list names, with its alias (UPDATE's and
/// DELETE's target).
pub fn from_table(reader: &impl Reader, from: &[ast::TableWithJoins]) -> Result<Option<(Table, Option<String>)>> {
    match from {
        [] => Ok(None),
        [only] if only.joins.is_empty() => match &only.relation {
            ast::TableFactor::Table { name, alias, args: None, with_hints, .. } if with_hints.is_empty() => {
                if alias.as_ref().is_some_and(|a| !a.columns.is_empty()) {
                    return Err(SqlError::unsupported("column aliases in FROM").into());
                }
                Ok(Some((table(reader, name)?, alias.as_ref().map(|a| ident(&a.name)))))
            }
            other => Err(SqlError::unsupported(format!("FROM {other}")).into()),
        },
        _ => Err(SqlError::unsupported("joins").into()),
    }
}

/// Binds a SELECT statement.
pub fn plan(reader: &impl Reader, query: &ast::Query) -> Result<SelectPlan> {
    if query.with.is_some() {
        return Err(SqlError::unsupported("WITH").into());
    }
    if query.fetch.is_some() || !query.locks.is_empty() {
        return Err(SqlError::unsupported("FETCH and locking clauses").into());
    }
    let ast::SetExpr::Select(select) = query.body.as_ref() else {
        return Err(SqlError::unsupported(format!("the query {}", query.body)).into());
    };
    let from = from::bind(reader, &select.from)?;
    Ok(bind::select(from, select, query.order_by.as_ref(), query.limit_clause.as_ref())?)
}
