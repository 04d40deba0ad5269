//! Rows that come from no table: `VALUES` lists (as a query, or in FROM)
//! and the `generate_series` table function in FROM.
//!
//! A VALUES list's column types are unified as UNION's are (the first
//! typed value's kind, widened over numbers; text when all are untyped
//! literals); its columns are named `column1`, `column2`, …. A series
//! counts from start to stop by step (integers or numerics); its column
//! takes the alias's name, else the function's. Both are evaluated when
//! the query runs.

use sqlparser::ast;

use crate::bind::{Binder, Typed};
use crate::error::{code, SqlError};
use crate::expr::{BinaryOp, Expr};
use crate::plan::{OutputColumn, SelectPlan, Source};
use crate::scope::Scope;
use crate::subquery::Planner;
use crate::types::DataType;
use crate::value::Value;

/// The most rows a series may have: it is materialized, so a mistaken
/// bound must not exhaust the node's memory.
const MAX_SERIES_ROWS: usize = 10_000_000;

/// Binds a VALUES list: its rows' expressions (of one type per column)
/// and its columns.
pub fn values(values: &ast::Values, subqueries: Planner<'_>) -> Result<(Vec<Vec<Expr>>, Vec<OutputColumn>), SqlError> {
    let scope = Scope::default();
    let width = values.rows.first().map_or(0, |row| row.len());
    let mut bound: Vec<Vec<Typed>> = Vec::with_capacity(values.rows.len());
    for row in &values.rows {
        if row.len() != width {
            return Err(SqlError::new(code::SYNTAX_ERROR, "VALUES lists must all be the same length"));
        }
        let mut binder = Binder::new(&scope).with_subqueries(subqueries);
        bound.push(row.iter().map(|e| binder.bind(e)).collect::<Result<_, _>>()?);
    }
    let mut columns = Vec::with_capacity(width);
    for i in 0..width {
        let mut ty: Option<DataType> = None;
        for row in &bound {
            let value = &row[i];
            if value.untyped {
                continue;
            }
            ty = Some(match ty {
                None => value.ty,
                Some(t) => t.common(value.ty).ok_or_else(|| {
                    SqlError::new(
                        code::DATATYPE_MISMATCH,
                        format!("VALUES types {} and {} cannot be matched", t.name(), value.ty.name()),
                    )
                })?,
            });
        }
        columns.push(OutputColumn { name: format!("column{}", i + 1), data_type: ty.unwrap_or(DataType::Text) });
    }
    let rows = bound
        .into_iter()
        .map(|row| {
            row.into_iter()
                .zip(&columns)
                .map(|(value, column)| value.unify(column.data_type))
                .collect::<Result<Vec<_>, SqlError>>()
        })
        .collect::<Result<_, _>>()?;
    Ok((rows, columns))
}

/// A query that is a VALUES list.
pub fn values_plan(rows: Vec<Vec<Expr>>, columns: Vec<OutputColumn>) -> SelectPlan {
    let width = columns.len();
    SelectPlan {
        source: Source::Values { rows, width, filter: None },
        filter: None,
        aggregation: None,
        projection: (0..width).map(Expr::Column).collect(),
        columns,
        distinct: false,
        sort: Vec::new(),
        limit: None,
        offset: None,
    }
}

/// Binds `generate_series(start, stop [, step])`: its bounds, and the
/// type of its values.
pub fn series(args: &[ast::Expr]) -> Result<(Vec<Expr>, DataType), SqlError> {
    if !(2..=3).contains(&args.len()) {
        return Err(SqlError::new(
            code::UNDEFINED_FUNCTION,
            format!("function generate_series with {} arguments does not exist", args.len()),
        ));
    }
    let scope = Scope::default();
    let mut binder = Binder::new(&scope);
    let bound: Vec<Typed> = args.iter().map(|a| binder.bind(a)).collect::<Result<_, _>>()?;
    let ty = bound.iter().filter(|b| !b.untyped).map(|b| b.ty).try_fold(DataType::Int4, |ty, next| {
        (ty.is_numeric() && next.is_numeric() && !next.is_float()).then(|| ty.wider(next))
    });
    let Some(ty) = ty.filter(|t| t.is_integer() || t.is_decimal()) else {
        let types: Vec<String> = bound.iter().map(|b| if b.untyped { "unknown".into() } else { b.ty.name() }).collect();
        return Err(SqlError::unsupported(format!("generate_series({})", types.join(", "))));
    };
    let exprs = bound.into_iter().map(|b| b.coerce(ty).map(|b| b.expr)).collect::<Result<_, _>>()?;
    Ok((exprs, ty))
}

/// The values of a series from `bounds` (start, stop, step), as rows.
pub fn series_rows(bounds: &[Expr], ty: DataType) -> Result<Vec<Vec<Value>>, SqlError> {
    let values: Vec<Value> = bounds.iter().map(|b| b.eval(&[])?.cast(ty)).collect::<Result<_, _>>()?;
    if values.iter().any(Value::is_null) {
        return Ok(Vec::new());
    }
    let step = values.get(2).cloned().unwrap_or(Value::Int(1));
    let zero = Value::Int(0);
    let ascending = match step.compare(&zero) {
        Some(std::cmp::Ordering::Greater) => true,
        Some(std::cmp::Ordering::Less) => false,
        _ => return Err(SqlError::new(code::INVALID_PARAMETER_VALUE, "step size cannot equal zero")),
    };
    let (mut current, stop) = (values[0].clone(), &values[1]);
    let mut rows = Vec::new();
    loop {
        let within = match current.compare(stop) {
            Some(std::cmp::Ordering::Less) => ascending,
            Some(std::cmp::Ordering::Greater) => !ascending,
            _ => true,
        };
        if !within {
            return Ok(rows);
        }
        if rows.len() % 4096 == 0 {
            crate::cancel::check()?;
        }
        if rows.len() == MAX_SERIES_ROWS {
            return Err(SqlError::unsupported(format!("a series of more than {MAX_SERIES_ROWS} rows")));
        }
        let next = Expr::Binary {
            op: BinaryOp::Add,
            left: Box::new(Expr::Literal(current.clone())),
            right: Box::new(Expr::Literal(step.clone())),
            ty,
        };
        rows.push(vec![current]);
        // Past the type's range, the series ends (as PostgreSQL's does).
        current = match next.eval(&[]) {
            Ok(value) => value,
            Err(error) if error.code == code::NUMERIC_VALUE_OUT_OF_RANGE => return Ok(rows),
            Err(error) => return Err(error),
        };
    }
}
