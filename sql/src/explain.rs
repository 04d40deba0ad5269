//! EXPLAIN: the plan tree the executor runs, one line per node, children
//! indented under `->` as PostgreSQL prints them. It shows the planner's
//! choices: each table's access path (point read, key range scan or
//! sequential scan), where filters were pushed, the join order and which
//! joins hash. Expressions are not printed.

use crate::access::{self, Access};
use crate::analyze::Profile;
use crate::keys;
use crate::plan::{JoinKind, QueryPlan, SelectPlan, SetOperator, Source};

/// The lines of a plan, built depth first.
#[derive(Default)]
pub struct Lines {
    lines: Vec<String>,
    /// What each node did, for EXPLAIN ANALYZE.
    profile: Option<Profile>,
}

impl Lines {
    /// Lines that show what each node did in `profile`.
    pub fn analyzed(profile: Profile) -> Lines {
        Lines { lines: Vec::new(), profile: Some(profile) }
    }

    /// Appends `node`'s measure to line `line`, when analyzing.
    fn actual<T>(&mut self, line: usize, node: &T) {
        let Some(measure) = self.profile.as_ref().and_then(|p| p.of(node)) else { return };
        let Some(text) = self.lines.get_mut(line) else { return };
        let millis = measure.time.as_secs_f64() * 1000.0;
        text.push_str(&format!(" (actual rows={} time={millis:.3} ms loops={})", measure.rows, measure.loops));
    }

    pub fn node(&mut self, depth: usize, text: String) {
        self.lines.push(match depth {
            0 => text,
            _ => format!("{}->  {text}", "      ".repeat(depth - 1) + "  "),
        });
    }

    pub fn into_lines(self) -> Vec<String> {
        self.lines
    }

    pub fn query(&mut self, depth: usize, plan: &QueryPlan) {
        let first = self.lines.len();
        self.query_lines(depth, plan);
        self.actual(first, plan);
    }

    fn query_lines(&mut self, depth: usize, plan: &QueryPlan) {
        match plan {
            QueryPlan::Select(select) => self.select(depth, select),
            QueryPlan::SetOperation(operation) => {
                let limited = operation.limit.is_some() || operation.offset.is_some();
                let depth = self.limit_and_sort(depth, limited, operation.sort.len());
                let name = match operation.operator {
                    SetOperator::Union => "Union",
                    SetOperator::Intersect => "Intersect",
                    SetOperator::Except => "Except",
                };
                self.node(depth, format!("{name}{}", if operation.all { " All" } else { "" }));
                self.query(depth + 1, &operation.left);
                self.query(depth + 1, &operation.right);
            }
        }
    }

    /// Limit and Sort nodes where a query has them; the depth below them.
    fn limit_and_sort(&mut self, mut depth: usize, limited: bool, sort_keys: usize) -> usize {
        if limited {
            self.node(depth, "Limit".into());
            depth += 1;
        }
        if sort_keys > 0 {
            self.node(depth, format!("Sort ({sort_keys} keys)"));
            depth += 1;
        }
        depth
    }

    fn select(&mut self, depth: usize, plan: &SelectPlan) {
        let limited = plan.limit.is_some() || plan.offset.is_some();
        let mut depth = self.limit_and_sort(depth, limited, plan.sort.len());
        if plan.distinct {
            self.node(depth, "Distinct".into());
            depth += 1;
        }
        if let Some(aggregation) = &plan.aggregation {
            let having = if aggregation.having.is_some() { ", having" } else { "" };
            self.node(
                depth,
                format!(
                    "Aggregate ({} group keys, {} aggregates{having})",
                    aggregation.keys.len(),
                    aggregation.aggregates.len()
                ),
            );
            depth += 1;
        }
        if plan.filter.is_some() {
            self.node(depth, "Filter".into());
            depth += 1;
        }
        self.source(depth, &plan.source);
    }

    pub fn source(&mut self, depth: usize, source: &Source) {
        let first = self.lines.len();
        self.source_lines(depth, source);
        // A Permute prints its input's line; the input's measure is kept.
        if !matches!(source, Source::Permute { .. }) {
            self.actual(first, source);
        }
    }

    fn source_lines(&mut self, depth: usize, source: &Source) {
        match source {
            Source::Nothing => self.node(depth, "Result".into()),
            Source::Table { table, filter } => {
                let (all_start, all_end) = keys::rows(table.id);
                let path = match access::path(table, filter.as_ref()) {
                    Access::Point(_) => "Point Read".to_string(),
                    Access::Range { start, end } if start == all_start && end == all_end => "Seq Scan".into(),
                    Access::Range { .. } => "Key Range Scan".into(),
                    Access::Index { name, .. } => format!("Index Scan using {name}"),
                };
                let filtered = if filter.is_some() { " (filtered)" } else { "" };
                self.node(depth, format!("{path} on {}{filtered}", table.name));
            }
            Source::Derived { query, filter } => {
                let filtered = if filter.is_some() { " (filtered)" } else { "" };
                self.node(depth, format!("Subquery Scan{filtered}"));
                self.query(depth + 1, query);
            }
            Source::Join { kind, left, right, keys, condition } => {
                let kind = match kind {
                    JoinKind::Inner => "inner",
                    JoinKind::Left => "left",
                    JoinKind::Right => "right",
                    JoinKind::Full => "full",
                };
                let line = match (keys.len(), condition) {
                    (0, None) => format!("Nested Loop ({kind}, no condition)"),
                    (0, Some(_)) => format!("Nested Loop ({kind})"),
                    (1, _) => format!("Hash Join ({kind}, 1 key)"),
                    (n, _) => format!("Hash Join ({kind}, {n} keys)"),
                };
                self.node(depth, line);
                self.source(depth + 1, left);
                self.source(depth + 1, right);
            }
            Source::Values { rows, filter, .. } => {
                let filtered = if filter.is_some() { " (filtered)" } else { "" };
                self.node(depth, format!("Values Scan ({} rows){filtered}", rows.len()));
            }
            Source::Series { filter, .. } => {
                let filtered = if filter.is_some() { " (filtered)" } else { "" };
                self.node(depth, format!("Function Scan on generate_series{filtered}"));
            }
            // Putting columns back in FROM order is not a step worth a line.
            Source::Permute { input, .. } => self.source(depth, input),
        }
    }
}
