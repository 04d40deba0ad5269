//! What a bound query is: the plan the executor runs, and what it outputs.
//!
//! A SELECT runs in this fixed order: scan the table (or one empty row
//! when there is no FROM), filter by WHERE, group and aggregate (then
//! HAVING), project, DISTINCT, sort, OFFSET and LIMIT.

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
}

impl AggFunc {
    pub fn named(name: &str) -> Option<AggFunc> {
        Some(match name {
            "count" => AggFunc::Count,
            "sum" => AggFunc::Sum,
            "min" => AggFunc::Min,
            "max" => AggFunc::Max,
            "avg" => AggFunc::Avg,
            _ => return None,
        })
    }

    /// The result type over an argument of type `arg` (`None` for `*`);
    /// `None` if the function does not take that type. (PostgreSQL's
    /// `sum(bigint)` and `avg` of integers are `numeric`; without numeric,
    /// Seshat answers `bigint` and `double precision`.)
    pub fn result_type(self, arg: Option<DataType>) -> Option<DataType> {
        match (self, arg) {
            (AggFunc::Count, _) => Some(DataType::Int8),
            (AggFunc::Sum, Some(t)) if t.is_integer() => Some(DataType::Int8),
            (AggFunc::Sum, Some(t)) if t.is_float() => Some(t),
            (AggFunc::Avg, Some(t)) if t.is_numeric() => Some(DataType::Float8),
            (AggFunc::Min | AggFunc::Max, Some(t)) => Some(t),
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

/// A bound SELECT.
#[derive(Debug, Clone)]
pub struct SelectPlan {
    /// The table read, or none (`SELECT 1`).
    pub table: Option<Table>,
    /// WHERE, over the table's rows.
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
        let mut exprs: Vec<&Expr> = self.filter.iter().collect();
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
