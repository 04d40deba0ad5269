//! Running a [`QueryPlan`] over a storage view (a snapshot for a read, the
//! apply overlay inside a write), in the order the plan documents.

use std::cmp::Ordering;
use std::collections::HashMap;

use storage::{Family, Reader};

use crate::access::{self, Access};
use crate::analyze;
use crate::cancel;
use crate::catalog::Table;
use crate::error::{code, Error, Result, SqlError};
use crate::expr::Expr;
use crate::keys;
use crate::numeric;
use crate::plan::{AggFunc, Aggregate, Aggregation, JoinKind, QueryPlan, SelectPlan, SortKey, Source};
use crate::rows;
use crate::types::DataType;
use crate::value::Value;

/// Calls `visit` with the storage key and the values of each row of
/// `table` that passes `filter`, reading only the rows the filter allows
/// ([`access::path`]): in primary-key order, or in an index's order when
/// the path is an index. Rows are decoded one at a time; only what
/// `visit` keeps stays in memory. The scan stops when `visit` returns
/// false (a LIMIT has its rows).
pub fn scan_matching(
    reader: &impl Reader,
    table: &Table,
    filter: Option<&Expr>,
    mut visit: impl FnMut(&[u8], Vec<Value>) -> bool,
) -> Result<()> {
    let (start, end) = match access::path(table, filter) {
        Access::Point(key) => {
            if let Some(value) = reader.get(Family::SqlRows, &key)? {
                let row = decode_row(&value)?;
                if filter.map_or(Ok(true), |f| f.holds(&row))? {
                    visit(&key, row);
                }
            }
            return Ok(());
        }
        Access::Range { start, end } => (start, end),
        Access::Index { start, end, .. } => {
            for entry in reader.scan(Family::SqlIndex, &start, Some(&end)) {
                cancel::check()?;
                let (_, primary_key) = entry?;
                let key = keys::row_from_primary_key(table.id, &primary_key);
                let value = reader
                    .get(Family::SqlRows, &key)?
                    .ok_or_else(|| Error::Corrupt(format!("an index entry of table '{}' names no row", table.name)))?;
                let row = decode_row(&value)?;
                if filter.map_or(Ok(true), |f| f.holds(&row))? && !visit(&key, row) {
                    break;
                }
            }
            return Ok(());
        }
    };
    for entry in reader.scan(Family::SqlRows, &start, Some(&end)) {
        cancel::check()?;
        let (key, value) = entry?;
        let row = decode_row(&value)?;
        if let Some(filter) = filter {
            if !filter.holds(&row)? {
                continue;
            }
        }
        if !visit(&key, row) {
            break;
        }
    }
    Ok(())
}

/// The rows of `table` that pass `filter`, with their storage keys: what
/// an UPDATE or DELETE changes (collected first, as it writes to the view
/// it reads).
pub fn matching_rows(reader: &impl Reader, table: &Table, filter: Option<&Expr>) -> Result<Vec<(Vec<u8>, Vec<Value>)>> {
    let mut rows = Vec::new();
    scan_matching(reader, table, filter, |key, row| {
        rows.push((key.to_vec(), row));
        true
    })?;
    Ok(rows)
}

pub fn decode_row(bytes: &[u8]) -> Result<Vec<Value>> {
    postcard::from_bytes(bytes).map_err(|e| Error::Corrupt(format!("row: {e}")))
}

pub fn encode_row(row: &[Value]) -> Vec<u8> {
    postcard::to_stdvec(row).expect("rows serialize")
}

/// The rows of `table` that pass `filter`, at most `most` of them.
fn table_rows(
    reader: &impl Reader,
    table: &Table,
    filter: Option<&Expr>,
    most: Option<u64>,
) -> Result<Vec<Vec<Value>>> {
    let mut rows = Vec::new();
    if most == Some(0) {
        return Ok(rows);
    }
    scan_matching(reader, table, filter, |_, row| {
        rows.push(row);
        most.is_none_or(|most| (rows.len() as u64) < most)
    })?;
    Ok(rows)
}

/// LIMIT pushdown: how many rows of a table scan a SELECT needs when
/// the scan's rows go straight to OFFSET and LIMIT (no filter left, no
/// grouping, sorting or DISTINCT); `None` when it needs them all.
fn scan_limit(plan: &SelectPlan) -> Result<Option<u64>> {
    let direct = matches!(plan.source, Source::Table { .. })
        && plan.filter.is_none()
        && plan.aggregation.is_none()
        && plan.sort.is_empty()
        && !plan.distinct;
    if !direct {
        return Ok(None);
    }
    let Some(limit) = count(plan.limit.as_ref(), "LIMIT")? else { return Ok(None) };
    let offset = count(plan.offset.as_ref(), "OFFSET")?.unwrap_or(0);
    Ok(Some(limit.saturating_add(offset)))
}

/// The rows `plan` returns.
pub fn select(reader: &impl Reader, plan: &SelectPlan) -> Result<Vec<Vec<Value>>> {
    let mut rows = match (&plan.source, scan_limit(plan)?) {
        (Source::Table { table, filter }, Some(most)) => {
            analyze::measure(&plan.source, || table_rows(reader, table, filter.as_ref(), Some(most)))?
        }
        (source, _) => source_rows(reader, source)?,
    };
    rows = kept(rows, plan.filter.as_ref())?;
    if let Some(aggregation) = &plan.aggregation {
        rows = aggregate(aggregation, rows)?;
    }
    // Each output row with its sort key values.
    let mut output: Vec<(Vec<Value>, Vec<Value>)> = Vec::with_capacity(rows.len());
    for row in &rows {
        let projected: Vec<Value> =
            plan.projection.iter().map(|e| e.eval(row)).collect::<std::result::Result<_, _>>()?;
        let sort: Vec<Value> = plan.sort.iter().map(|k| k.expr.eval(row)).collect::<std::result::Result<_, _>>()?;
        output.push((projected, sort));
    }
    if plan.distinct {
        let mut seen = std::collections::HashSet::new();
        output.retain(|(row, _)| seen.insert(keys::values(row)));
    }
    order_and_limit(output, &plan.sort, plan.offset.as_ref(), plan.limit.as_ref())
}

/// The rows `plan` returns.
pub fn query(reader: &impl Reader, plan: &QueryPlan) -> Result<Vec<Vec<Value>>> {
    analyze::measure(plan, || query_unmeasured(reader, plan))
}

fn query_unmeasured(reader: &impl Reader, plan: &QueryPlan) -> Result<Vec<Vec<Value>>> {
    match plan {
        QueryPlan::Select(select) => self::select(reader, select),
        QueryPlan::SetOperation(operation) => {
            let left = query(reader, &operation.left)?;
            let right = query(reader, &operation.right)?;
            let rows = operation.combine(left, right)?;
            let mut output = Vec::with_capacity(rows.len());
            for row in rows {
                let sort = operation.sort.iter().map(|k| k.expr.eval(&row)).collect::<std::result::Result<_, _>>()?;
                output.push((row, sort));
            }
            order_and_limit(output, &operation.sort, operation.offset.as_ref(), operation.limit.as_ref())
        }
    }
}

/// Output rows (each with its sort key values) sorted, then OFFSET and
/// LIMIT.
fn order_and_limit(
    mut output: Vec<(Vec<Value>, Vec<Value>)>,
    sort: &[SortKey],
    offset: Option<&Expr>,
    limit: Option<&Expr>,
) -> Result<Vec<Vec<Value>>> {
    if !sort.is_empty() {
        output.sort_by(|(_, a), (_, b)| compare_keys(sort, a, b));
    }
    let offset = count(offset, "OFFSET")?.unwrap_or(0);
    let rows = output.into_iter().map(|(row, _)| row).skip(offset as usize);
    Ok(match count(limit, "LIMIT")? {
        Some(limit) => rows.take(limit as usize).collect(),
        None => rows.collect(),
    })
}

/// A LIMIT or OFFSET: `None` when absent or NULL, never negative.
fn count(expr: Option<&Expr>, what: &str) -> Result<Option<u64>> {
    match expr.map(|e| e.eval(&[])).transpose()? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Int(n)) if n >= 0 => Ok(Some(n as u64)),
        Some(_) => Err(SqlError::new(code::INVALID_ROW_COUNT, format!("{what} must not be negative")).into()),
    }
}

/// The rows `source` produces.
pub(crate) fn source_rows(reader: &impl Reader, source: &Source) -> Result<Vec<Vec<Value>>> {
    analyze::measure(source, || source_rows_unmeasured(reader, source))
}

fn source_rows_unmeasured(reader: &impl Reader, source: &Source) -> Result<Vec<Vec<Value>>> {
    Ok(match source {
        Source::Nothing => vec![Vec::new()],
        Source::Table { table, filter } => table_rows(reader, table, filter.as_ref(), None)?,
        Source::Derived { query, filter } => kept(self::query(reader, query)?, filter.as_ref())?,
        Source::Values { rows, filter, .. } => {
            let rows = rows
                .iter()
                .map(|row| row.iter().map(|e| e.eval(&[])).collect())
                .collect::<std::result::Result<_, _>>()?;
            kept(rows, filter.as_ref())?
        }
        Source::Series { bounds, ty, filter } => kept(rows::series_rows(bounds, *ty)?, filter.as_ref())?,
        Source::Join { kind, left, right, keys, condition } => {
            let (left_rows, right_rows) = (source_rows(reader, left)?, source_rows(reader, right)?);
            join(*kind, left_rows, right_rows, (left.width(), right.width()), keys, condition.as_ref())?
        }
        Source::Permute { input, order } => {
            source_rows(reader, input)?.into_iter().map(|row| order.iter().map(|&i| row[i].clone()).collect()).collect()
        }
    })
}

/// The `rows` that pass `filter`.
pub(crate) fn kept(rows: Vec<Vec<Value>>, filter: Option<&Expr>) -> Result<Vec<Vec<Value>>> {
    let Some(filter) = filter else { return Ok(rows) };
    let mut kept = Vec::with_capacity(rows.len());
    for row in rows {
        if filter.holds(&row)? {
            kept.push(row);
        }
    }
    Ok(kept)
}

/// A hash-join key: equal for values SQL's `=` finds equal (numbers as
/// doubles), `None` when one is NULL (which matches nothing).
pub(crate) fn join_key<'e>(exprs: impl IntoIterator<Item = &'e Expr>, row: &[Value]) -> Result<Option<Vec<u8>>> {
    let mut values = Vec::new();
    for expr in exprs {
        values.push(match expr.eval(row)? {
            Value::Null => return Ok(None),
            Value::Int(n) => Value::Float(n as f64),
            Value::Numeric(d) => Value::Float(numeric::to_float(&d)),
            // A date equals the timestamp of its midnight.
            Value::Date(days) => Value::Timestamp(crate::datetime::date_to_timestamp(days)),
            other => other,
        });
    }
    Ok(Some(keys::values(&values)))
}

/// Pairs `left` and `right` rows where `keys` match and `condition`
/// holds, adding the unmatched rows an outer join keeps.
fn join(
    kind: JoinKind,
    left: Vec<Vec<Value>>,
    right: Vec<Vec<Value>>,
    (left_width, right_width): (usize, usize),
    keys: &[(Expr, Expr)],
    condition: Option<&Expr>,
) -> Result<Vec<Vec<Value>>> {
    let (left_keys, right_keys): (Vec<&Expr>, Vec<&Expr>) = keys.iter().map(|(l, r)| (l, r)).unzip();
    // The right rows by key; without keys, every right row is a candidate.
    let mut buckets: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
    if !keys.is_empty() {
        for (i, row) in right.iter().enumerate() {
            if let Some(key) = join_key(right_keys.iter().copied(), row)? {
                buckets.entry(key).or_default().push(i);
            }
        }
    }
    let everything: Vec<usize> = if keys.is_empty() { (0..right.len()).collect() } else { Vec::new() };
    let mut right_matched = vec![false; right.len()];
    let mut out = Vec::new();
    for left_row in &left {
        cancel::check()?;
        let candidates: &[usize] = if keys.is_empty() {
            &everything
        } else {
            match join_key(left_keys.iter().copied(), left_row)? {
                Some(key) => buckets.get(&key).map_or(&[], Vec::as_slice),
                None => &[],
            }
        };
        let mut matched = false;
        for &i in candidates {
            let mut joined = Vec::with_capacity(left_width + right_width);
            joined.extend_from_slice(left_row);
            joined.extend_from_slice(&right[i]);
            if condition.map_or(Ok(true), |c| c.holds(&joined))? {
                matched = true;
                right_matched[i] = true;
                out.push(joined);
            }
        }
        if !matched && matches!(kind, JoinKind::Left | JoinKind::Full) {
            let mut joined = left_row.clone();
            joined.resize(left_width + right_width, Value::Null);
            out.push(joined);
        }
    }
    if matches!(kind, JoinKind::Right | JoinKind::Full) {
        for (row, matched) in right.into_iter().zip(right_matched) {
            if !matched {
                let mut joined = vec![Value::Null; left_width];
                joined.extend(row);
                out.push(joined);
            }
        }
    }
    Ok(out)
}

fn compare_keys(keys: &[SortKey], a: &[Value], b: &[Value]) -> Ordering {
    for (key, (a, b)) in keys.iter().zip(a.iter().zip(b)) {
        let order = match (a.is_null(), b.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => {
                if key.nulls_first {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (false, true) => {
                if key.nulls_first {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (false, false) => {
                let order = a.compare(b).unwrap_or(Ordering::Equal);
                if key.descending {
                    order.reverse()
                } else {
                    order
                }
            }
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

/// Groups `rows` by the keys and computes the aggregates; without GROUP
/// BY, one group even over no rows (`count(*)` of an empty table is 0).
fn aggregate(aggregation: &Aggregation, rows: Vec<Vec<Value>>) -> Result<Vec<Vec<Value>>> {
    let mut groups: Vec<(Vec<Value>, Vec<Accumulator>)> = Vec::new();
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    let fresh = || aggregation.aggregates.iter().map(Accumulator::new).collect::<Vec<_>>();
    if aggregation.keys.is_empty() {
        groups.push((Vec::new(), fresh()));
        index.insert(Vec::new(), 0);
    }
    for row in rows {
        let key: Vec<Value> = aggregation.keys.iter().map(|k| k.eval(&row)).collect::<std::result::Result<_, _>>()?;
        let encoded = if aggregation.keys.is_empty() { Vec::new() } else { keys::values(&key) };
        let group = *index.entry(encoded).or_insert_with(|| {
            groups.push((key, fresh()));
            groups.len() - 1
        });
        for (accumulator, aggregate) in groups[group].1.iter_mut().zip(&aggregation.aggregates) {
            let value = match &aggregate.arg {
                Some(arg) => Some(arg.eval(&row)?),
                None => None,
            };
            accumulator.add(value)?;
        }
    }
    let mut out = Vec::with_capacity(groups.len());
    for (mut key, accumulators) in groups {
        for accumulator in accumulators {
            key.push(accumulator.finish()?);
        }
        if let Some(having) = &aggregation.having {
            if !having.holds(&key)? {
                continue;
            }
        }
        out.push(key);
    }
    Ok(out)
}

/// The running state of one aggregate in one group.
struct Accumulator {
    func: AggFunc,
    separator: Option<String>,
    count: i64,
    value: Value,
    /// sum and avg: the running sums of integer, float and numeric inputs
    /// (a column gives one kind; each is exact for its kind).
    int_sum: i128,
    float_sum: f64,
    decimal_sum: rust_decimal::Decimal,
    ty: DataType,
    distinct: Option<std::collections::HashSet<Vec<u8>>>,
}

impl Accumulator {
    fn new(aggregate: &Aggregate) -> Accumulator {
        Accumulator {
            func: aggregate.func,
            separator: aggregate.separator.clone(),
            count: 0,
            value: Value::Null,
            int_sum: 0,
            float_sum: 0.0,
            decimal_sum: rust_decimal::Decimal::ZERO,
            ty: aggregate.ty,
            distinct: aggregate.distinct.then(std::collections::HashSet::new),
        }
    }

    /// Adds one input (`None` for `count(*)`'s rows); NULLs are skipped.
    fn add(&mut self, value: Option<Value>) -> std::result::Result<(), SqlError> {
        let Some(value) = value else {
            self.count += 1;
            return Ok(());
        };
        if value.is_null() {
            return Ok(());
        }
        if let Some(seen) = &mut self.distinct {
            if !seen.insert(keys::values(std::slice::from_ref(&value))) {
                return Ok(());
            }
        }
        self.count += 1;
        match self.func {
            AggFunc::Count => {}
            AggFunc::Sum | AggFunc::Avg => match value {
                Value::Int(n) => self.int_sum += i128::from(n),
                Value::Float(x) => self.float_sum += x,
                Value::Numeric(d) => self.decimal_sum = numeric::add(self.decimal_sum, d)?,
                other => return Err(SqlError::new(code::INTERNAL_ERROR, format!("sum of {other:?}"))),
            },
            AggFunc::BoolAnd | AggFunc::BoolOr => {
                let and = self.func == AggFunc::BoolAnd;
                self.value = match (&self.value, &value) {
                    (Value::Bool(a), Value::Bool(b)) => Value::Bool(if and { *a && *b } else { *a || *b }),
                    _ => value,
                };
            }
            AggFunc::StringAgg => {
                self.value = match (std::mem::replace(&mut self.value, Value::Null), value) {
                    (Value::Text(mut joined), Value::Text(next)) => {
                        joined.push_str(self.separator.as_deref().unwrap_or_default());
                        joined.push_str(&next);
                        Value::Text(joined)
                    }
                    (_, first) => first,
                };
            }
            AggFunc::Min | AggFunc::Max => {
                let replace = self.value.is_null()
                    || match value.compare(&self.value) {
                        Some(Ordering::Less) => self.func == AggFunc::Min,
                        Some(Ordering::Greater) => self.func == AggFunc::Max,
                        _ => false,
                    };
                if replace {
                    self.value = value;
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> std::result::Result<Value, SqlError> {
        let exact_sum = || -> std::result::Result<rust_decimal::Decimal, SqlError> {
            let ints = rust_decimal::Decimal::try_from_i128_with_scale(self.int_sum, 0)
                .map_err(|_| SqlError::new(code::NUMERIC_VALUE_OUT_OF_RANGE, "value overflows numeric format"))?;
            numeric::add(self.decimal_sum, ints)
        };
        Ok(match self.func {
            AggFunc::Count => Value::Int(self.count),
            AggFunc::Sum | AggFunc::Avg if self.count == 0 => Value::Null,
            AggFunc::Sum => match self.ty {
                DataType::Int8 => {
                    Value::Int(i64::try_from(self.int_sum).map_err(|_| crate::value::out_of_range(DataType::Int8))?)
                }
                DataType::Numeric(_) => Value::Numeric(exact_sum()?),
                ty => Value::Float(self.float_sum).cast(ty)?,
            },
            AggFunc::Avg => match self.ty {
                DataType::Numeric(_) => Value::Numeric(numeric::div(exact_sum()?, numeric::from_int(self.count))?),
                _ => Value::Float(self.float_sum / self.count as f64),
            },
            _ => self.value,
        })
    }
}
