//! Subqueries in expressions: scalar `(SELECT …)`, `x [NOT] IN (SELECT …)`
//! and `[NOT] EXISTS (SELECT …)`.
//!
//! A subquery that does not refer to the outer query's columns has one
//! result for the whole statement, so it runs while the statement is
//! bound, on the same view the statement then runs on (a read's
//! snapshot, a write's apply overlay): its rows become literals (a value,
//! an IN list, a boolean). Describing a prepared statement binds without
//! running anything: the subquery stays a plan ([`crate::expr::Expr::Subquery`]),
//! only to infer its parameters' types.
//!
//! A subquery that names an outer column (correlated) fails to bind on
//! its own; [`crate::correlated`] rewrites the forms it can to run once,
//! and the others answer 0A000.

use sqlparser::ast;

use crate::error::{code, Error, SqlError};
use crate::plan::QueryPlan;
use crate::value::Value;

/// Whether statements being bound will run now, or are only described.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Evaluate,
    Describe,
}

/// A bound subquery, with its rows when the statement runs.
pub struct Bound {
    pub plan: QueryPlan,
    pub rows: Option<Vec<Vec<Value>>>,
}

/// Binds (and, evaluating, runs) a subquery in the statement's view.
pub type Planner<'a> = &'a dyn Fn(&ast::Query) -> Result<Bound, Error>;

/// A subquery's binding error as the outer statement reports it.
pub fn error(error: Error) -> SqlError {
    match error {
        Error::Sql(e) if e.code == code::UNDEFINED_COLUMN || e.code == code::UNDEFINED_TABLE => SqlError::new(
            code::FEATURE_NOT_SUPPORTED,
            format!("{} (subqueries that refer to the outer query's columns are not supported yet)", e.message),
        ),
        Error::Sql(e) => e,
        other => SqlError::new(code::INTERNAL_ERROR, other.to_string()),
    }
}
