//! UNION, INTERSECT and EXCEPT: binding (columns matched by position,
//! types unified as PostgreSQL does for these types) and combining rows.
//!
//! Without ALL the result is a set (duplicates removed); with ALL, a row
//! appearing m times on the left and n times on the right appears m + n
//! times in UNION ALL, min(m, n) in INTERSECT ALL and max(m - n, 0) in
//! EXCEPT ALL. Rows compare as GROUP BY does (NULLs equal).

use std::collections::HashMap;

use crate::error::{code, SqlError};
use crate::keys;
use crate::plan::{OutputColumn, QueryPlan, SetOperation, SetOperator};
use crate::value::Value;

/// The output columns of `left op right`: the left's names, each type
/// the common type of both sides.
pub fn columns(operator: SetOperator, left: &QueryPlan, right: &QueryPlan) -> Result<Vec<OutputColumn>, SqlError> {
    let name = match operator {
        SetOperator::Union => "UNION",
        SetOperator::Intersect => "INTERSECT",
        SetOperator::Except => "EXCEPT",
    };
    let (left, right) = (left.columns(), right.columns());
    if left.len() != right.len() {
        return Err(SqlError::new(
            code::SYNTAX_ERROR,
            format!("each {name} query must have the same number of columns"),
        ));
    }
    left.iter()
        .zip(right)
        .map(|(l, r)| {
            let data_type = l.data_type.common(r.data_type).ok_or_else(|| {
                SqlError::new(
                    code::DATATYPE_MISMATCH,
                    format!("{name} types {} and {} cannot be matched", l.data_type.name(), r.data_type.name()),
                )
            })?;
            Ok(OutputColumn { name: l.name.clone(), data_type })
        })
        .collect()
}

impl SetOperation {
    /// The rows of the operation over the left and right rows.
    pub fn combine(&self, left: Vec<Vec<Value>>, right: Vec<Vec<Value>>) -> Result<Vec<Vec<Value>>, SqlError> {
        let left = self.convert(left)?;
        let right = self.convert(right)?;
        let mut right_counts: HashMap<Vec<u8>, usize> = HashMap::new();
        if self.operator != SetOperator::Union {
            for row in &right {
                *right_counts.entry(keys::values(row)).or_default() += 1;
            }
        }
        let mut seen: HashMap<Vec<u8>, ()> = HashMap::new();
        let mut out = Vec::new();
        let mut keep = |row: Vec<Value>, out: &mut Vec<Vec<Value>>| {
            if self.all || seen.insert(keys::values(&row), ()).is_none() {
                out.push(row);
            }
        };
        match self.operator {
            SetOperator::Union => {
                for row in left.into_iter().chain(right) {
                    keep(row, &mut out);
                }
            }
            SetOperator::Intersect | SetOperator::Except => {
                for row in left {
                    let key = keys::values(&row);
                    let in_right = match right_counts.get_mut(&key) {
                        Some(n) if *n > 0 => {
                            // ALL pairs each left row with one right row.
                            if self.all {
                                *n -= 1;
                            }
                            true
                        }
                        _ => false,
                    };
                    if in_right == (self.operator == SetOperator::Intersect) {
                        keep(row, &mut out);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Each side's values in the result's column types.
    fn convert(&self, rows: Vec<Vec<Value>>) -> Result<Vec<Vec<Value>>, SqlError> {
        rows.into_iter()
            .map(|row| row.into_iter().zip(&self.columns).map(|(value, column)| value.cast(column.data_type)).collect())
            .collect()
    }
}
