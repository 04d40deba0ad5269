//! Planning a query statement over a storage view: what FROM names
//! ([`crate::from`]), then [`crate::bind::select`].

use std::sync::Arc;

use sqlparser::ast;
use storage::Reader;

use crate::bind::{self, ident, object_name};
use crate::catalog::{self, Table};
use crate::error::{code, Result, SqlError};
use crate::exec;
use crate::expr::Expr;
use crate::from;
use crate::plan::{OutputColumn, QueryPlan, SelectPlan, SetOperation, SetOperator, SortKey};
use crate::rows;
use crate::set_ops;
use crate::subquery::{Bound, Mode};
use crate::types::DataType;
use crate::view;

/// The table `name` as `reader` has it, or 42P01 (0A000 for a view: a
/// statement that needs a table cannot write through one yet).
pub fn table(reader: &impl Reader, name: &ast::ObjectName) -> Result<Arc<Table>> {
    let name = object_name(name)?;
    if let Some(table) = catalog::table(reader, &name)? {
        return Ok(table);
    }
    if view::find(reader, &name)?.is_some() {
        return Err(SqlError::unsupported(format!("changing the view \"{name}\" (views are read-only)")).into());
    }
    Err(SqlError::new(code::UNDEFINED_TABLE, format!("relation \"{name}\" does not exist")).into())
}

/// The one table a FROM list names, with its alias (UPDATE's and
/// DELETE's target).
pub fn from_table(reader: &impl Reader, from: &[ast::TableWithJoins]) -> Result<Option<(Arc<Table>, Option<String>)>> {
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

/// The WITH queries a query can name, innermost last.
#[derive(Debug, Clone, Default)]
pub struct Ctes {
    named: Vec<(String, QueryPlan)>,
}

impl Ctes {
    /// The WITH query an unqualified table name refers to.
    pub fn find(&self, name: &ast::ObjectName) -> Option<&QueryPlan> {
        let [ast::ObjectNamePart::Identifier(name)] = name.0.as_slice() else { return None };
        let name = ident(name);
        self.named.iter().rev().find(|(n, _)| *n == name).map(|(_, plan)| plan)
    }
}

/// Binds a query to run now: a SELECT, or set operations over SELECTs.
pub fn plan(reader: &impl Reader, query: &ast::Query) -> Result<QueryPlan> {
    plan_with(reader, query, &Ctes::default(), Mode::Evaluate)
}

/// Binds (and, in [`Mode::Evaluate`], runs) a subquery of a statement in
/// `reader`'s view.
pub fn subquery(reader: &impl Reader, query: &ast::Query, ctes: &Ctes, mode: Mode) -> Result<Bound> {
    let plan = plan_with(reader, query, ctes, mode)?;
    let rows = match mode {
        Mode::Evaluate => Some(exec::query(reader, &plan)?),
        Mode::Describe => None,
    };
    Ok(Bound { plan, rows })
}

/// Binds a query that can also name the WITH queries `outer`.
pub fn plan_with(reader: &impl Reader, query: &ast::Query, outer: &Ctes, mode: Mode) -> Result<QueryPlan> {
    let mut ctes = outer.clone();
    if let Some(with) = &query.with {
        if with.recursive {
            return Err(SqlError::unsupported("WITH RECURSIVE").into());
        }
        let mut names = Vec::new();
        for cte in &with.cte_tables {
            let name = ident(&cte.alias.name);
            if names.contains(&name) {
                return Err(SqlError::new(
                    code::DUPLICATE_ALIAS,
                    format!("WITH query name \"{name}\" specified more than once"),
                )
                .into());
            }
            let mut plan = plan_with(reader, &cte.query, &ctes, mode)?;
            rename_columns(&mut plan, &cte.alias.columns)?;
            names.push(name.clone());
            ctes.named.push((name, plan));
        }
    }
    let ctes = &ctes;
    if query.fetch.is_some() || !query.locks.is_empty() {
        return Err(SqlError::unsupported("FETCH and locking clauses").into());
    }
    let (order_by, limit) = (query.order_by.as_ref(), query.limit_clause.as_ref());
    match query.body.as_ref() {
        ast::SetExpr::Select(select) => {
            let subqueries = |query: &ast::Query| subquery(reader, query, ctes, mode);
            let from = from::bind(reader, &select.from, ctes, mode)?;
            match bind::select(from, select, order_by, limit, &subqueries) {
                Ok(plan) => Ok(QueryPlan::Select(Box::new(plan))),
                Err(error) => match over_empty_system_relation(select, &error) {
                    Some(plan) => Ok(QueryPlan::Select(Box::new(plan))),
                    None => Err(error.into()),
                },
            }
        }
        ast::SetExpr::Query(inner) if order_by.is_none() && limit.is_none() => plan_with(reader, inner, ctes, mode),
        ast::SetExpr::Values(values) => {
            let subqueries = |query: &ast::Query| subquery(reader, query, ctes, mode);
            let (rows, columns) = rows::values(values, &subqueries)?;
            let mut plan = rows::values_plan(rows, columns);
            plan.sort = order_by.map(|o| output_sort(o, &plan.columns)).transpose()?.unwrap_or_default();
            (plan.limit, plan.offset) = bind::limit_offset(limit)?;
            Ok(QueryPlan::Select(Box::new(plan)))
        }
        ast::SetExpr::SetOperation { op, set_quantifier, left, right } => {
            let operator = match op {
                ast::SetOperator::Union => SetOperator::Union,
                ast::SetOperator::Intersect => SetOperator::Intersect,
                ast::SetOperator::Except => SetOperator::Except,
                other => return Err(SqlError::unsupported(format!("{other}")).into()),
            };
            let all = match set_quantifier {
                ast::SetQuantifier::All => true,
                ast::SetQuantifier::Distinct | ast::SetQuantifier::None => false,
                other => return Err(SqlError::unsupported(format!("{op} {other}")).into()),
            };
            let (left, right) = (body(reader, left, ctes, mode)?, body(reader, right, ctes, mode)?);
            let columns = set_ops::columns(operator, &left, &right)?;
            let sort = order_by.map(|o| output_sort(o, &columns)).transpose()?.unwrap_or_default();
            let (limit, offset) = bind::limit_offset(limit)?;
            let operation = SetOperation { operator, all, left, right, columns, sort, limit, offset };
            Ok(QueryPlan::SetOperation(Box::new(operation)))
        }
        other => Err(SqlError::unsupported(format!("the query {other}")).into()),
    }
}

/// A SELECT that could not be bound because it uses what Seshat lacks
/// (arrays, some functions), over a system relation Seshat has no rows in
/// (`pg_policy`, `pg_inherits`, `pg_publication`, …) joined so that the
/// result has no rows either: the empty result, with text columns.
/// psql's `\d` sends such queries, and aborts when one fails; their
/// expressions would never be evaluated. `None` for anything else (the
/// error stands).
fn over_empty_system_relation(select: &ast::Select, error: &SqlError) -> Option<SelectPlan> {
    let tolerated =
        [code::FEATURE_NOT_SUPPORTED, code::UNDEFINED_FUNCTION, code::UNDEFINED_COLUMN, code::DATATYPE_MISMATCH];
    if !tolerated.contains(&error.code.as_str())
        || !matches!(select.group_by, ast::GroupByExpr::Expressions(ref keys, _) if keys.is_empty())
    {
        return None;
    }
    let mut required = Vec::new();
    for item in &select.from {
        required.push(&item.relation);
        for join in &item.joins {
            if matches!(
                join.join_operator,
                ast::JoinOperator::Inner(_) | ast::JoinOperator::Join(_) | ast::JoinOperator::CrossJoin(_)
            ) {
                required.push(&join.relation);
            }
        }
    }
    let empty = required.into_iter().any(|relation| match relation {
        ast::TableFactor::Table { name, .. } => {
            crate::system::names(name).is_some_and(|(_, table)| crate::system::always_empty(&table))
        }
        _ => false,
    });
    if !empty {
        return None;
    }
    let mut columns = Vec::with_capacity(select.projection.len());
    for item in &select.projection {
        let name = match item {
            ast::SelectItem::UnnamedExpr(expr) if !bind::has_aggregate(expr) => bind::output_name(expr),
            ast::SelectItem::ExprWithAlias { expr, alias } if !bind::has_aggregate(expr) => ident(alias),
            _ => return None,
        };
        columns.push(OutputColumn { name, data_type: DataType::Text });
    }
    Some(rows::values_plan(Vec::new(), columns))
}

/// One side of a set operation.
fn body(reader: &impl Reader, body: &ast::SetExpr, ctes: &Ctes, mode: Mode) -> Result<QueryPlan> {
    let query = ast::Query {
        with: None,
        body: Box::new(body.clone()),
        order_by: None,
        limit_clause: None,
        fetch: None,
        locks: Vec::new(),
        for_clause: None,
        settings: None,
        format_clause: None,
        pipe_operators: Vec::new(),
    };
    plan_with(reader, &query, ctes, mode)
}

/// `WITH name (a, b) AS (…)`: the query's first columns renamed.
fn rename_columns(plan: &mut QueryPlan, names: &[ast::TableAliasColumnDef]) -> Result<()> {
    rename_output(plan, &alias_names(names))
}

fn alias_names(names: &[ast::TableAliasColumnDef]) -> Vec<String> {
    names.iter().map(|n| ident(&n.name)).collect()
}

/// The query's first output columns renamed to `names`.
pub fn rename_output(plan: &mut QueryPlan, names: &[String]) -> Result<()> {
    let columns = match plan {
        QueryPlan::Select(select) => &mut select.columns,
        QueryPlan::SetOperation(operation) => &mut operation.columns,
    };
    let renamed = renamed(columns_names(columns), names)?;
    for (column, name) in columns.iter_mut().zip(renamed) {
        column.name = name;
    }
    Ok(())
}

fn columns_names(columns: &[OutputColumn]) -> Vec<String> {
    columns.iter().map(|c| c.name.clone()).collect()
}

/// `names` with the first ones replaced by `renames` (an alias's column
/// list), or 42P10 when there are more renames than columns.
pub fn renamed(mut names: Vec<String>, renames: &[String]) -> Result<Vec<String>> {
    if renames.len() > names.len() {
        return Err(SqlError::new(
            code::INVALID_COLUMN_REFERENCE,
            format!("table has {} columns available but {} columns specified", names.len(), renames.len()),
        )
        .into());
    }
    for (name, rename) in names.iter_mut().zip(renames) {
        name.clone_from(rename);
    }
    Ok(names)
}

/// The output columns of `plan` renamed by `alias`'s column list.
pub fn aliased_columns(plan: &QueryPlan, alias: &Option<ast::TableAlias>) -> Result<Vec<String>> {
    let renames = alias.as_ref().map_or(&[][..], |a| a.columns.as_slice());
    renamed(columns_names(plan.columns()), &alias_names(renames))
}

/// ORDER BY over a set operation's output: column names or ordinals.
fn output_sort(order_by: &ast::OrderBy, columns: &[OutputColumn]) -> Result<Vec<SortKey>> {
    let ast::OrderByKind::Expressions(keys) = &order_by.kind else {
        return Err(SqlError::unsupported("ORDER BY ALL").into());
    };
    let mut sort = Vec::with_capacity(keys.len());
    for key in keys {
        let position = match &key.expr {
            ast::Expr::Value(ast::ValueWithSpan { value: ast::Value::Number(n, _), .. }) => {
                n.parse::<usize>().ok().filter(|p| (1..=columns.len()).contains(p)).map(|p| p - 1).ok_or_else(|| {
                    SqlError::new(
                        code::INVALID_COLUMN_REFERENCE,
                        format!("ORDER BY position {n} is not in select list"),
                    )
                })?
            }
            ast::Expr::Identifier(name) => {
                let name = ident(name);
                columns
                    .iter()
                    .position(|c| c.name == name)
                    .ok_or_else(|| SqlError::new(code::UNDEFINED_COLUMN, format!("column \"{name}\" does not exist")))?
            }
            other => {
                return Err(SqlError::unsupported(format!(
                    "ORDER BY {other} on a UNION/INTERSECT/EXCEPT result (only its column names and positions)"
                ))
                .into())
            }
        };
        let descending = matches!(key.options.sort, Some(ast::OrderBySort::Desc));
        let nulls_first = key.options.nulls_first.unwrap_or(descending);
        sort.push(SortKey { expr: Expr::Column(position), descending, nulls_first });
    }
    Ok(sort)
}
