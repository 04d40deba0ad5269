//! What a bound query is: the plan the executor runs, and what it outputs.
//!
//! A SELECT runs in this fixed order: read the source (tables, joined;
//! one empty row when there is no FROM), filter by what is left of WHERE,
//! group and aggregate (then HAVING), project, DISTINCT, sort, OFFSET and
//! LIMIT.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::catalog::Table;
use crate::expr::Expr;
use crate::types::DataType;

/// A column of a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputColumn {
    pub name: String,
    pub data_type: DataType,
}

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    Count,
    Sum,
    Min,
    Max,
    Avg,
    BoolAnd,
    BoolOr,
    StringAgg,
}

impl AggFunc {
    pub fn named(name: &str) -> Option<AggFunc> {
        Some(match name {
            "count" => AggFunc::Count,
            "sum" => AggFunc::Sum,
            "min" => AggFunc::Min,
            "max" => AggFunc::Max,
            "avg" => AggFunc::Avg,
            "bool_and" | "every" => AggFunc::BoolAnd,
            "bool_or" => AggFunc::BoolOr,
            "string_agg" => AggFunc::StringAgg,
            _ => return None,
        })
    }

    /// The result type over an argument of type `arg` (`None` for `*`);
    /// `None` if the function does not take that type. As PostgreSQL:
    /// `sum` of smallint or integer is bigint, of bigint or numeric
    /// numeric; `avg` of integers or numeric is numeric, of floats
    /// double precision.
    pub fn result_type(self, arg: Option<DataType>) -> Option<DataType> {
        match (self, arg) {
            (AggFunc::Count, _) => Some(DataType::Int8),
            (AggFunc::Sum, Some(DataType::Int2 | DataType::Int4)) => Some(DataType::Int8),
            (AggFunc::Sum, Some(t)) if t.is_integer() || t.is_decimal() => Some(DataType::Numeric(None)),
            (AggFunc::Sum, Some(t)) if t.is_float() => Some(t),
            (AggFunc::Avg, Some(t)) if t.is_integer() || t.is_decimal() => Some(DataType::Numeric(None)),
            (AggFunc::Avg, Some(t)) if t.is_float() => Some(DataType::Float8),
            (AggFunc::Min | AggFunc::Max, Some(t)) => Some(t),
            (AggFunc::BoolAnd | AggFunc::BoolOr, Some(DataType::Bool)) => Some(DataType::Bool),
            (AggFunc::StringAgg, Some(t)) if t.is_text() => Some(DataType::Text),
            _ => None,
        }
    }
}

/// One aggregate call: its argument is over the input rows.
#[derive(Debug, Clone)]
pub struct Aggregate {
    pub func: AggFunc,
    /// `None` for `count(*)`.
    pub arg: Option<Expr>,
    pub distinct: bool,
    /// string_agg's delimiter.
    pub separator: Option<String>,
    /// The result's type.
    pub ty: DataType,
}

/// GROUP BY and aggregates: each group's row is its key values followed
/// by its aggregates' results; the projection, HAVING and sort keys are
/// over that row.
#[derive(Debug, Clone)]
pub struct Aggregation {
    pub keys: Vec<Expr>,
    pub aggregates: Vec<Aggregate>,
    pub having: Option<Expr>,
}

#[derive(Debug, Clone)]
pub struct SortKey {
    pub expr: Expr,
    pub descending: bool,
    pub nulls_first: bool,
}

/// How two sources' rows are paired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// Matching pairs only (also CROSS and comma joins, with no condition).
    Inner,
    /// And each unmatched left row with NULLs.
    Left,
    /// And each unmatched right row with NULLs.
    Right,
    /// And both.
    Full,
}

/// Where a query's rows come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// One row of no columns (no FROM).
    Nothing,
    /// A table's rows that pass `filter` (over the table's columns), read
    /// along the narrowest access path the filter allows.
    Table { table: Arc<Table>, filter: Option<Expr> },
    /// A subquery's rows (in FROM, or a WITH query) that pass `filter`.
    Derived { query: Box<QueryPlan>, filter: Option<Expr> },
    /// Left and right rows side by side, paired where `keys` are equal
    /// (a hash join; NULL keys never match) and `condition` holds (over
    /// the joined row).
    Join {
        kind: JoinKind,
        left: Box<Source>,
        right: Box<Source>,
        /// (over a left row, over a right row) pairs.
        keys: Vec<(Expr, Expr)>,
        condition: Option<Expr>,
    },
    /// The input's columns rearranged: column i is input column `order[i]`.
    Permute { input: Box<Source>, order: Vec<usize> },
    /// A VALUES list's rows (constant expressions) that pass `filter`.
    Values { rows: Vec<Vec<Expr>>, width: usize, filter: Option<Expr> },
    /// `generate_series(start, stop [, step])` of type `ty`: one column.
    Series { bounds: Vec<Expr>, ty: DataType, filter: Option<Expr> },
}

impl Source {
    /// A table's or subquery's rows filtered by `filter` (over them).
    pub fn filtered(self, filter: Option<Expr>) -> Source {
        match self {
            Source::Table { table, .. } => Source::Table { table, filter },
            Source::Derived { query, .. } => Source::Derived { query, filter },
            Source::Values { rows, width, .. } => Source::Values { rows, width, filter },
            Source::Series { bounds, ty, .. } => Source::Series { bounds, ty, filter },
            other => unreachable!("only scans are filtered: {other:?}"),
        }
    }

    /// How many columns its rows have.
    pub fn width(&self) -> usize {
        match self {
            Source::Nothing => 0,
            Source::Table { table, .. } => table.columns.len(),
            Source::Derived { query, .. } => query.columns().len(),
            Source::Join { left, right, .. } => left.width() + right.width(),
            Source::Permute { order, .. } => order.len(),
            Source::Values { width, .. } => *width,
            Source::Series { .. } => 1,
        }
    }

    /// Every expression in it.
    pub fn exprs(&self) -> Vec<&Expr> {
        match self {
            Source::Nothing => Vec::new(),
            Source::Table { filter, .. } => filter.iter().collect(),
            Source::Derived { query, filter } => {
                let mut exprs = query.exprs();
                exprs.extend(filter);
                exprs
            }
            Source::Join { left, right, keys, condition, .. } => {
                let mut exprs = left.exprs();
                exprs.extend(right.exprs());
                exprs.extend(keys.iter().flat_map(|(l, r)| [l, r]));
                exprs.extend(condition);
                exprs
            }
            Source::Permute { input, .. } => input.exprs(),
            Source::Values { rows, filter, .. } => rows.iter().flatten().chain(filter).collect(),
            Source::Series { bounds, filter, .. } => bounds.iter().chain(filter).collect(),
        }
    }
}

/// A bound SELECT.
#[derive(Debug, Clone)]
pub struct SelectPlan {
    pub source: Source,
    /// What is left of WHERE after the planner pushed what it could into
    /// the source, over the source's rows.
    pub filter: Option<Expr>,
    pub aggregation: Option<Aggregation>,
    /// The output expressions, over the table's rows or the groups'.
    pub projection: Vec<Expr>,
    pub columns: Vec<OutputColumn>,
    pub distinct: bool,
    /// Sort keys, over the same rows as the projection.
    pub sort: Vec<SortKey>,
    /// LIMIT and OFFSET, `bigint` constants evaluated when the query runs.
    pub limit: Option<Expr>,
    pub offset: Option<Expr>,
}

impl SelectPlan {
    /// Every expression of the plan.
    pub fn exprs(&self) -> Vec<&Expr> {
        let mut exprs = self.source.exprs();
        exprs.extend(&self.filter);
        if let Some(aggregation) = &self.aggregation {
            exprs.extend(&aggregation.keys);
            exprs.extend(aggregation.aggregates.iter().filter_map(|a| a.arg.as_ref()));
            exprs.extend(&aggregation.having);
        }
        exprs.extend(&self.projection);
        exprs.extend(self.sort.iter().map(|k| &k.expr));
        exprs.extend(&self.limit);
        exprs.extend(&self.offset);
        exprs
    }
}

/// A bound query: a SELECT, or a set operation over two queries.
#[derive(Debug, Clone)]
pub enum QueryPlan {
    Select(Box<SelectPlan>),
    SetOperation(Box<SetOperation>),
}

impl QueryPlan {
    /// Whether running it reads at most one stored row: a SELECT of no
    /// table, or of one table by a point read of its primary key.
    pub fn reads_at_most_one_row(&self) -> bool {
        let QueryPlan::Select(select) = self else { return false };
        match &select.source {
            Source::Nothing => true,
            Source::Table { table, filter } => {
                matches!(crate::access::path(table, filter.as_ref()), crate::access::Access::Point(_))
            }
            _ => false,
        }
    }

    pub fn columns(&self) -> &[OutputColumn] {
        match self {
            QueryPlan::Select(select) => &select.columns,
            QueryPlan::SetOperation(operation) => &operation.columns,
        }
    }

    /// Every expression of the plan.
    pub fn exprs(&self) -> Vec<&Expr> {
        match self {
            QueryPlan::Select(select) => select.exprs(),
            QueryPlan::SetOperation(operation) => {
                let mut exprs = operation.left.exprs();
                exprs.extend(operation.right.exprs());
                exprs.extend(operation.sort.iter().map(|k| &k.expr));
                exprs.extend(&operation.limit);
                exprs.extend(&operation.offset);
                exprs
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOperator {
    Union,
    Intersect,
    Except,
}

/// `left UNION|INTERSECT|EXCEPT [ALL] right`, then ORDER BY (over its
/// output columns), OFFSET and LIMIT.
#[derive(Debug, Clone)]
pub struct SetOperation {
    pub operator: SetOperator,
    /// ALL keeps duplicates (multiset semantics); without it, the result
    /// is a set.
    pub all: bool,
    pub left: QueryPlan,
    pub right: QueryPlan,
    pub columns: Vec<OutputColumn>,
    pub sort: Vec<SortKey>,
    pub limit: Option<Expr>,
    pub offset: Option<Expr>,
}
