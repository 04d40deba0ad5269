//! `UPDATE … FROM` and `DELETE … USING`: the target table's rows joined
//! with other relations, each target row changed once.
//!
//! The WHERE clause's conjuncts split three ways: those over the target
//! alone choose its access path ([`crate::access`]), those over the other
//! relations alone are pushed into their scans ([`crate::from`]), and the
//! rest join the two: equalities between a target expression and another
//! one become hash keys, and every mixed conjunct is checked on each
//! candidate pair. As in PostgreSQL, a target row that joins several rows
//! is changed once, with the first of them.

use std::collections::HashMap;

use storage::Reader;

use crate::error::Result;
use crate::exec;
use crate::expr::Expr;
use crate::from::{self, From};
use crate::plan::Source;
use crate::value::Value;

/// The other relations of an UPDATE or DELETE, bound, and how the target
/// joins them.
pub struct Joined {
    /// The other relations' rows, their own filters pushed down.
    source: Source,
    /// What is left of their filter, over their row.
    source_filter: Option<Expr>,
    /// The conjuncts over the target row alone.
    target_filter: Option<Expr>,
    /// Equalities `(over the target row, over the other row)`.
    keys: Vec<(Expr, Expr)>,
    /// Every other conjunct, over the target row followed by the other.
    condition: Option<Expr>,
}

/// A target row that joins: its key, its values, and the other row it
/// joined with.
pub struct Match {
    pub key: Vec<u8>,
    pub row: Vec<Value>,
    pub other: Vec<Value>,
}

impl Joined {
    /// Splits `filter` (over the target's `target_width` columns followed
    /// by `from`'s) into the parts above.
    pub fn new(from: From, target_width: usize, filter: Option<Expr>) -> Joined {
        let from_width = from.scope.width();
        let (mut target_only, mut other_only, mut mixed) = (Vec::new(), Vec::new(), Vec::new());
        for conjunct in filter.map(Expr::conjuncts).unwrap_or_default() {
            let columns = conjunct.columns();
            if !columns.is_empty() && columns.iter().all(|&c| c < target_width) {
                target_only.push(conjunct);
            } else if !columns.is_empty() && columns.iter().all(|&c| c >= target_width) {
                other_only.push(conjunct.remap(&|c| c - target_width));
            } else {
                mixed.push(conjunct);
            }
        }
        let (source, source_filter) = from.plan(Expr::all(other_only));
        let keys = from::hash_keys(&mixed, 0..target_width, target_width..target_width + from_width);
        Joined { source, source_filter, target_filter: Expr::all(target_only), keys, condition: Expr::all(mixed) }
    }

    /// Every expression, for parameter inference.
    pub fn exprs(&self) -> Vec<&Expr> {
        let mut exprs = self.source.exprs();
        exprs.extend(&self.source_filter);
        exprs.extend(&self.target_filter);
        exprs.extend(self.keys.iter().flat_map(|(a, b)| [a, b]));
        exprs.extend(&self.condition);
        exprs
    }

    /// The other relations' scan, as EXPLAIN prints it.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// How many equalities join the target to the other relations.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// The conjuncts over the target alone.
    pub fn target_filter(&self) -> Option<&Expr> {
        self.target_filter.as_ref()
    }

    /// The target rows of `table` that join, collected before anything
    /// is written.
    pub fn matches(&self, view: &impl Reader, table: &crate::catalog::Table) -> Result<Vec<Match>> {
        let others = exec::kept(exec::source_rows(view, &self.source)?, self.source_filter.as_ref())?;
        // The other rows by their key values (a NULL key joins nothing).
        let mut by_key: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
        if !self.keys.is_empty() {
            for (i, row) in others.iter().enumerate() {
                if let Some(key) = exec::join_key(self.keys.iter().map(|(_, other)| other), row)? {
                    by_key.entry(key).or_default().push(i);
                }
            }
        }
        let all: Vec<usize> = (0..others.len()).collect();
        let none = Vec::new();
        let mut matches = Vec::new();
        for (key, row) in exec::matching_rows(view, table, self.target_filter.as_ref())? {
            let candidates: &[usize] = if self.keys.is_empty() {
                &all
            } else {
                match exec::join_key(self.keys.iter().map(|(target, _)| target), &row)? {
                    Some(values) => by_key.get(&values).unwrap_or(&none),
                    None => continue,
                }
            };
            let mut joined = None;
            for &i in candidates {
                let combined: Vec<Value> = row.iter().chain(&others[i]).cloned().collect();
                if self.condition.as_ref().map_or(Ok(true), |c| c.holds(&combined))? {
                    joined = Some(i);
                    break;
                }
            }
            if let Some(i) = joined {
                matches.push(Match { key, row, other: others[i].clone() });
            }
        }
        Ok(matches)
    }
}
