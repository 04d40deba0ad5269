//! Correlated subqueries, decorrelated: a subquery whose WHERE clause
//! ties it to the outer row by equalities runs once, not once per outer
//! row.
//!
//! `EXISTS (SELECT … FROM s WHERE s.a = o.x AND p)` is rewritten to
//! `SELECT …, s.a FROM s WHERE p` (with `s.a` added to GROUP BY when the
//! subquery aggregates), run while the statement is bound like any
//! subquery, and its rows are kept by the value of `s.a`; each outer row
//! then looks up its `o.x`. A subquery that aggregates without GROUP BY
//! (`SELECT count(*) … WHERE s.a = o.x`) has one row even for an outer
//! row nothing matches: that row comes from running it once over no rows.
//!
//! What is recognised: outer columns named with their table's name or
//! alias (`o.x`), in conjuncts of the subquery's own WHERE clause:
//! - `inner = outer`: the key its rows are kept by;
//! - a conjunct that reads only the outer row (`AND o.flag`): a guard,
//!   false or NULL for an outer row that the subquery then has no rows
//!   for (its rows over no rows, for an aggregate);
//! - `inner <op> outer` with another comparison, when the subquery does
//!   not aggregate: the inner side is kept with each row and the
//!   comparison filters an outer row's rows.
//!
//! Anything else that reads the outer row (an unqualified outer column,
//! OR across both, outer columns in the select list or in a nested
//! subquery, LIMIT with correlation) answers 0A000.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::Arc;

use sqlparser::ast;

use crate::bind::ident;
use crate::error::{code, SqlError};
use crate::exec;
use crate::expr::{BinaryOp, Expr};
use crate::scope::Scope;
use crate::types::DataType;
use crate::value::Value;

/// A subquery's rows keyed by the outer values they belong to.
#[derive(Debug, Clone)]
pub struct Correlated {
    /// What the subquery reads of the outer row (over the outer row): the
    /// equalities' outer sides (`keys` of them), then the outer sides of
    /// the `residuals`, then the guard if there is one.
    pub outer_keys: Vec<Expr>,
    keys: usize,
    /// Each residual comparison, and whether its inner side is its left.
    /// A stored row holds the subquery's columns, then these inner sides.
    residuals: Vec<(BinaryOp, bool)>,
    width: usize,
    guarded: bool,
    rows: Arc<HashMap<Vec<u8>, Vec<Vec<Value>>>>,
    /// The subquery's rows for an outer row that no inner row matches.
    unmatched: Arc<Vec<Vec<Value>>>,
}

/// What the outer expression asks of the rows.
#[derive(Debug, Clone)]
pub enum Test {
    /// `(SELECT …)`: its one value (NULL without rows, 21000 with more).
    Scalar,
    /// `[NOT] EXISTS (SELECT …)`.
    Exists { negated: bool },
    /// `operand [NOT] IN (SELECT …)`, with SQL's NULL rules.
    In { operand: Box<Expr>, negated: bool },
}

impl Correlated {
    /// The subquery's rows for `outer_row`.
    fn rows_for(&self, outer_row: &[Value]) -> Result<Vec<&[Value]>, SqlError> {
        let unmatched = || self.unmatched.iter().map(Vec::as_slice).collect();
        if self.guarded {
            let guard = self.outer_keys.last().expect("a guarded subquery has its guard");
            if guard.eval(outer_row)? != Value::Bool(true) {
                return Ok(unmatched());
            }
        }
        let key = exec::join_key(&self.outer_keys[..self.keys], outer_row).map_err(|e| match e {
            crate::error::Error::Sql(e) => e,
            other => SqlError::new(code::INTERNAL_ERROR, other.to_string()),
        })?;
        let Some(rows) = key.and_then(|key| self.rows.get(&key)) else { return Ok(unmatched()) };
        let residual_outer = &self.outer_keys[self.keys..self.keys + self.residuals.len()];
        let outer_values: Vec<Value> = residual_outer.iter().map(|e| e.eval(outer_row)).collect::<Result<_, _>>()?;
        let mut kept = Vec::with_capacity(rows.len());
        'rows: for row in rows {
            for (i, ((op, inner_on_left), outer)) in self.residuals.iter().zip(&outer_values).enumerate() {
                let inner = Expr::Literal(row[self.width + i].clone());
                let outer = Expr::Literal(outer.clone());
                let (left, right) = if *inner_on_left { (inner, outer) } else { (outer, inner) };
                let comparison =
                    Expr::Binary { op: *op, left: Box::new(left), right: Box::new(right), ty: DataType::Bool };
                if comparison.eval(&[])? != Value::Bool(true) {
                    continue 'rows;
                }
            }
            kept.push(&row[..self.width]);
        }
        Ok(kept)
    }

    /// `test` over the subquery's rows for `outer_row`.
    pub fn eval(&self, test: &Test, outer_row: &[Value]) -> Result<Value, SqlError> {
        let rows = self.rows_for(outer_row)?;
        Ok(match test {
            Test::Scalar => match rows.as_slice() {
                [] => Value::Null,
                [row] => row[0].clone(),
                _ => {
                    return Err(SqlError::new(
                        code::CARDINALITY_VIOLATION,
                        "more than one row returned by a subquery used as an expression",
                    ))
                }
            },
            Test::Exists { negated } => Value::Bool(rows.is_empty() == *negated),
            Test::In { operand, negated } => {
                let value = operand.eval(outer_row)?;
                if rows.is_empty() {
                    return Ok(Value::Bool(*negated));
                }
                if value.is_null() {
                    return Ok(Value::Null);
                }
                let mut unknown = false;
                for row in &rows {
                    match value.compare(&row[0]) {
                        Some(std::cmp::Ordering::Equal) => return Ok(Value::Bool(!negated)),
                        None => unknown = true,
                        _ => {}
                    }
                }
                if unknown {
                    Value::Null
                } else {
                    Value::Bool(*negated)
                }
            }
        })
    }
}

/// A correlated subquery rewritten to run once.
pub struct Rewrite {
    /// The subquery without its correlated conjuncts, the equalities'
    /// inner sides appended to its select list (and GROUP BY), then the
    /// residual comparisons' inner sides.
    pub keyed: ast::Query,
    /// The subquery over no rows, when it aggregates without GROUP BY.
    pub unmatched: Option<ast::Query>,
    /// The outer sides of the correlated equalities, over the outer scope.
    pub outer_sides: Vec<ast::Expr>,
    /// The residual comparisons: operator, outer side, whether the inner
    /// side is the left one.
    pub residuals: Vec<(ast::BinaryOperator, ast::Expr, bool)>,
    /// The conjuncts that read only the outer row, AND-ed.
    pub guard: Option<ast::Expr>,
}

fn unsupported(what: &str) -> SqlError {
    SqlError::unsupported(format!("a correlated subquery with {what}"))
}

/// The names a FROM list introduces (aliases, else table names).
fn introduced(from: &[ast::TableWithJoins]) -> HashSet<String> {
    let mut names = HashSet::new();
    let mut add = |factor: &ast::TableFactor| match factor {
        ast::TableFactor::Table { name, alias, .. } => {
            let introduced = match alias {
                Some(alias) => ident(&alias.name),
                None => name.0.last().and_then(|p| p.as_ident()).map(ident).unwrap_or_default(),
            };
            names.insert(introduced);
        }
        ast::TableFactor::Derived { alias: Some(alias), .. } => {
            names.insert(ident(&alias.name));
        }
        _ => {}
    };
    for item in from {
        add(&item.relation);
        item.joins.iter().for_each(|join| add(&join.relation));
    }
    names
}

/// Whether `expr` names a column as `q.c` with `q` among `outer`; and
/// whether it names any column otherwise.
fn references(expr: &ast::Expr, outer: &HashSet<String>) -> (bool, bool) {
    let (mut outer_refs, mut inner_refs) = (false, false);
    let _ = ast::visit_expressions(expr, |e| {
        match e {
            ast::Expr::CompoundIdentifier(parts) if parts.len() == 2 && outer.contains(&ident(&parts[0])) => {
                outer_refs = true
            }
            ast::Expr::CompoundIdentifier(_) | ast::Expr::Identifier(_) => inner_refs = true,
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    (outer_refs, inner_refs)
}

/// The AND-ed parts of a WHERE clause.
fn conjuncts(expr: &ast::Expr, out: &mut Vec<ast::Expr>) {
    match expr {
        ast::Expr::BinaryOp { left, op: ast::BinaryOperator::And, right } => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        ast::Expr::Nested(inner) => conjuncts(inner, out),
        other => out.push(other.clone()),
    }
}

fn and_all(parts: Vec<ast::Expr>) -> Option<ast::Expr> {
    parts.into_iter().reduce(|left, right| ast::Expr::BinaryOp {
        left: Box::new(left),
        op: ast::BinaryOperator::And,
        right: Box::new(right),
    })
}

/// Rewrites `query`, which failed to bind on its own, if it is
/// correlated with `outer` in the way this module handles; `None` if it
/// does not name `outer`'s relations at all (the original error stands).
pub fn rewrite(query: &ast::Query, outer: &Scope) -> Result<Option<Rewrite>, SqlError> {
    let ast::SetExpr::Select(select) = query.body.as_ref() else { return Ok(None) };
    let inner = introduced(&select.from);
    let outer: HashSet<String> =
        outer.relations().iter().map(|r| r.qualifier.clone()).filter(|q| !inner.contains(q)).collect();
    let mut parts = Vec::new();
    if let Some(selection) = &select.selection {
        conjuncts(selection, &mut parts);
    }
    let (mut kept, mut inner_sides, mut outer_sides) = (Vec::new(), Vec::new(), Vec::new());
    let (mut guards, mut residuals, mut residual_inner) = (Vec::new(), Vec::new(), Vec::new());
    for part in parts {
        let (outer_refs, inner_refs) = references(&part, &outer);
        if !outer_refs {
            kept.push(part);
            continue;
        }
        if !inner_refs {
            guards.push(part);
            continue;
        }
        use ast::BinaryOperator as B;
        let ast::Expr::BinaryOp { left, op: op @ (B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq), right } =
            &part
        else {
            return Err(unsupported("a condition mixing the outer and inner rows other than a comparison"));
        };
        let (outer_side, inner_side, inner_on_left) = match (references(left, &outer), references(right, &outer)) {
            ((true, false), (false, _)) => (left, right, false),
            ((false, _), (true, false)) => (right, left, true),
            _ => return Err(unsupported("a comparison mixing outer and inner columns on one side")),
        };
        if *op == B::Eq {
            outer_sides.push(outer_side.as_ref().clone());
            inner_sides.push(inner_side.as_ref().clone());
        } else {
            residuals.push((op.clone(), outer_side.as_ref().clone(), inner_on_left));
            residual_inner.push(inner_side.as_ref().clone());
        }
    }
    if outer_sides.is_empty() && guards.is_empty() && residuals.is_empty() {
        return Ok(None);
    }
    let mut keyed_select = select.as_ref().clone();
    keyed_select.selection = and_all(kept.clone());
    // What is left must not read the outer row.
    let mut rest = ast::Query { body: Box::new(ast::SetExpr::Select(Box::new(keyed_select.clone()))), ..query.clone() };
    let mut reads_outer = false;
    let _ = ast::visit_expressions(&rest, |e| {
        reads_outer |=
            matches!(e, ast::Expr::CompoundIdentifier(parts) if parts.len() == 2 && outer.contains(&ident(&parts[0])));
        ControlFlow::<()>::Continue(())
    });
    if reads_outer {
        return Err(unsupported("outer columns outside its WHERE clause's equalities"));
    }
    if query.limit_clause.is_some() || query.fetch.is_some() {
        return Err(unsupported("LIMIT"));
    }
    let group_by = match &select.group_by {
        ast::GroupByExpr::Expressions(exprs, modifiers) if modifiers.is_empty() => exprs.clone(),
        _ => return Err(unsupported("this GROUP BY")),
    };
    let aggregates = select.projection.iter().any(|item| match item {
        ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => {
            crate::bind::has_aggregate(e)
        }
        _ => false,
    });
    let grouped = aggregates || !group_by.is_empty() || select.having.is_some();
    if !residuals.is_empty() && (grouped || select.distinct.is_some()) {
        return Err(unsupported("a comparison other than = on the outer row and an aggregate or DISTINCT"));
    }
    keyed_select.projection.extend(inner_sides.iter().cloned().map(ast::SelectItem::UnnamedExpr));
    keyed_select.projection.extend(residual_inner.into_iter().map(ast::SelectItem::UnnamedExpr));
    if grouped {
        let mut keys = group_by.clone();
        keys.extend(inner_sides.iter().cloned());
        keyed_select.group_by = ast::GroupByExpr::Expressions(keys, Vec::new());
    }
    rest.body = Box::new(ast::SetExpr::Select(Box::new(keyed_select)));
    // Without GROUP BY, an aggregate has a row over no rows too.
    let unmatched = (aggregates && group_by.is_empty()).then(|| {
        let mut empty = select.as_ref().clone();
        let never = ast::Expr::Value(ast::Value::Boolean(false).into());
        empty.selection = and_all(kept.into_iter().chain([never]).collect());
        ast::Query { body: Box::new(ast::SetExpr::Select(Box::new(empty))), ..query.clone() }
    });
    Ok(Some(Rewrite { keyed: rest, unmatched, outer_sides, residuals, guard: and_all(guards) }))
}

/// What binding a rewritten subquery's outer sides gave.
pub struct Outer {
    /// The equalities' outer sides.
    pub keys: Vec<Expr>,
    /// The residual comparisons: operator, outer side, inner on the left.
    pub residuals: Vec<(BinaryOp, Expr, bool)>,
    pub guard: Option<Expr>,
}

/// The keyed rows of a rewritten subquery: its `width` output columns,
/// keyed by the correlation values after them (then the residual
/// comparisons' inner sides).
pub fn correlated(
    outer: Outer,
    keyed_rows: Vec<Vec<Value>>,
    width: usize,
    unmatched: Vec<Vec<Value>>,
) -> Result<Correlated, SqlError> {
    let keys = outer.keys.len();
    let key_columns: Vec<Expr> = (width..width + keys).map(Expr::Column).collect();
    let mut rows: HashMap<Vec<u8>, Vec<Vec<Value>>> = HashMap::new();
    for mut row in keyed_rows {
        let key = exec::join_key(&key_columns, &row).map_err(|e| SqlError::new(code::INTERNAL_ERROR, e.to_string()))?;
        // A NULL inner key equals no outer value.
        if let Some(key) = key {
            row.drain(width..width + keys);
            rows.entry(key).or_default().push(row);
        }
    }
    let mut outer_keys = outer.keys;
    let mut residuals = Vec::with_capacity(outer.residuals.len());
    for (op, expr, inner_on_left) in outer.residuals {
        outer_keys.push(expr);
        residuals.push((op, inner_on_left));
    }
    let guarded = outer.guard.is_some();
    outer_keys.extend(outer.guard);
    Ok(Correlated { outer_keys, keys, residuals, width, guarded, rows: Arc::new(rows), unmatched: Arc::new(unmatched) })
}
