//! Access paths: which rows of a table a filter can touch, read from its
//! primary key instead of scanning the table.
//!
//! Rows are keyed by their primary key in an order-preserving encoding
//! ([`keys`]), so the conjuncts of a WHERE clause that compare key
//! columns with constants bound a key range:
//! - equalities on every key column: one point read;
//! - equalities on the first key columns (a prefix) and at most one
//!   range (`<`, `<=`, `>`, `>=`) on the next: one range scan;
//! - the same for a secondary index's columns: one range of its entries,
//!   each naming a row to read;
//! - anything else: the whole table.
//!
//! The path only narrows what is read; the executor still evaluates the
//! whole filter on every row it reads, so a path never changes a
//! result.

use crate::catalog::Table;
use crate::expr::{BinaryOp, Expr};
use crate::keys;
use crate::types::DataType;
use crate::value::Value;

/// How a filtered read of a table reaches its rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    /// The one row with this key, if it exists.
    Point(Vec<u8>),
    /// The rows with keys in `[start, end)`.
    Range { start: Vec<u8>, end: Vec<u8> },
    /// The rows that the entries in `[start, end)` of the index named
    /// `name` point to.
    Index { name: String, start: Vec<u8>, end: Vec<u8> },
}

/// What the comparisons of a filter allow on an ordered list of columns
/// (a primary key, an index): equalities on the first `equalities`
/// columns, then maybe a range on the next, as keys in `[start, end)`.
struct Bounds {
    equalities: usize,
    ranged: bool,
    start: Vec<u8>,
    end: Vec<u8>,
}

/// The bounds `comparisons` put on `columns` of `table`, for keys that
/// start with relation `id` then encode those columns' values.
fn bounds(id: u32, table: &Table, columns: &[usize], comparisons: &[(usize, BinaryOp, &Value)]) -> Bounds {
    let mut prefix = Vec::new();
    for &column in columns {
        let ty = table.columns[column].data_type;
        let equal = comparisons.iter().find_map(|&(c, op, v)| (c == column && op == BinaryOp::Eq).then_some(v));
        match equal.and_then(|value| key_value(value, ty)) {
            Some(value) => prefix.push(value),
            None => break,
        }
    }
    let base = keys::index_prefix(id, &prefix);
    let (mut start, mut end) = (base.clone(), keys::prefix_end(&base));
    if prefix.is_empty() {
        (start, end) = keys::rows(id);
    }
    let mut ranged = false;
    if let Some(&next) = columns.get(prefix.len()) {
        let ty = table.columns[next].data_type;
        for &(column, op, value) in comparisons {
            let Some(value) = key_value(value, ty).filter(|_| column == next) else { continue };
            let bound = [base.as_slice(), &keys::values(&[value])].concat();
            let after = keys::prefix_end(&bound);
            match op {
                BinaryOp::Gt => start = start.max(after),
                BinaryOp::GtEq => start = start.max(bound),
                BinaryOp::Lt => end = end.min(bound),
                BinaryOp::LtEq => end = end.min(after),
                _ => continue,
            }
            ranged = true;
        }
    }
    if start >= end {
        // A contradiction (`id > 5 AND id < 3`): nothing to read.
        end = start.clone();
    }
    Bounds { equalities: prefix.len(), ranged, start, end }
}

/// The narrowest path for the rows of `table` that can pass `filter`:
/// a point read when the filter fixes the whole primary key; else the
/// index (or primary key) whose leading columns the filter fixes most,
/// the primary key on a tie; else a range on the first column of the
/// primary key, then of an index; else the whole table.
pub fn path(table: &Table, filter: Option<&Expr>) -> Access {
    let (start, end) = keys::rows(table.id);
    let whole = Access::Range { start, end };
    let Some(filter) = filter else { return whole };
    let mut comparisons = Vec::new();
    conjuncts(filter, &mut comparisons);
    if comparisons.is_empty() {
        return whole;
    }
    let key = (!table.primary_key.is_empty()).then(|| bounds(table.id, table, &table.primary_key, &comparisons));
    if let Some(key) = &key {
        if key.equalities == table.primary_key.len() {
            return Access::Point(key.start.clone());
        }
    }
    let rank = |b: &Bounds| (b.equalities, b.ranged);
    let best_index = table
        .indexes
        .iter()
        .map(|index| (index, bounds(index.id, table, &index.columns, &comparisons)))
        .filter(|(_, b)| rank(b) > (0, false))
        .max_by_key(|(_, b)| rank(b));
    let key = key.filter(|k| rank(k) > (0, false));
    match (key, best_index) {
        (Some(key), Some((_, b))) if rank(&key) >= rank(&b) => Access::Range { start: key.start, end: key.end },
        (_, Some((index, b))) => Access::Index { name: index.name.clone(), start: b.start, end: b.end },
        (Some(key), None) => Access::Range { start: key.start, end: key.end },
        (None, None) => whole,
    }
}

/// The comparisons `column op constant` among the AND-ed conjuncts of
/// `filter`, with the column on the left.
fn conjuncts<'a>(filter: &'a Expr, out: &mut Vec<(usize, BinaryOp, &'a Value)>) {
    let Expr::Binary { op, left, right, .. } = filter else { return };
    match (op, left.as_ref(), right.as_ref()) {
        (BinaryOp::And, _, _) => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        (op, Expr::Column(column), Expr::Literal(value)) => out.push((*column, *op, value)),
        (op, Expr::Literal(value), Expr::Column(column)) => {
            let flipped = match op {
                BinaryOp::Lt => BinaryOp::Gt,
                BinaryOp::LtEq => BinaryOp::GtEq,
                BinaryOp::Gt => BinaryOp::Lt,
                BinaryOp::GtEq => BinaryOp::LtEq,
                other => *other,
            };
            out.push((*column, flipped, value));
        }
        _ => {}
    }
}

/// `value` as a key column of type `ty` stores it, when the comparison
/// and the key order agree (an integer column compared with 1.5 does not
/// use the key).
fn key_value(value: &Value, ty: DataType) -> Option<Value> {
    match (value, ty) {
        (Value::Int(_), t) if t.is_integer() => Some(value.clone()),
        (Value::Float(_), t) if t.is_float() => Some(value.clone()),
        (Value::Int(n), t) if t.is_float() && n.unsigned_abs() < 1 << 53 => Some(Value::Float(*n as f64)),
        (Value::Text(_), t) if t.is_text() => Some(value.clone()),
        (Value::Bool(_), DataType::Bool) => Some(value.clone()),
        (Value::Date(_), DataType::Date) => Some(value.clone()),
        (Value::Timestamp(_), DataType::Timestamp | DataType::Timestamptz) => Some(value.clone()),
        (Value::Uuid(_), DataType::Uuid) => Some(value.clone()),
        (Value::Bytes(_), DataType::Bytea) => Some(value.clone()),
        (Value::Numeric(_), t) if t.is_decimal() => Some(value.clone()),
        (Value::Int(n), t) if t.is_decimal() => Some(Value::Numeric((*n).into())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Column;

    fn table(key: Vec<usize>) -> Table {
        let column = |name: &str, data_type| Column { name: name.into(), data_type, nullable: false, default: None };
        Table {
            id: 7,
            name: "t".into(),
            columns: vec![column("a", DataType::Int4), column("b", DataType::Text), column("c", DataType::Float8)],
            primary_key: key,
            checks: vec![],
            indexes: vec![],
        }
    }

    fn cmp(op: BinaryOp, column: usize, value: Value) -> Expr {
        Expr::Binary {
            op,
            left: Box::new(Expr::Column(column)),
            right: Box::new(Expr::Literal(value)),
            ty: DataType::Bool,
        }
    }

    fn and(left: Expr, right: Expr) -> Expr {
        Expr::Binary { op: BinaryOp::And, left: Box::new(left), right: Box::new(right), ty: DataType::Bool }
    }

    #[test]
    fn equality_on_the_whole_key_is_a_point_read() {
        let filter = and(cmp(BinaryOp::Eq, 1, Value::Text("x".into())), cmp(BinaryOp::Eq, 0, Value::Int(3)));
        assert_eq!(
            path(&table(vec![0, 1]), Some(&filter)),
            Access::Point(keys::row(7, &[Value::Int(3), Value::Text("x".into())]))
        );
    }

    #[test]
    fn a_key_prefix_and_a_range_bound_the_scan() {
        let t = table(vec![0, 2]);
        let filter = and(cmp(BinaryOp::Eq, 0, Value::Int(3)), cmp(BinaryOp::LtEq, 2, Value::Int(10)));
        let Access::Range { start, end } = path(&t, Some(&filter)) else { panic!("a range") };
        let inside = keys::row(7, &[Value::Int(3), Value::Float(10.0)]);
        let outside = keys::row(7, &[Value::Int(3), Value::Float(10.5)]);
        assert!(start <= keys::row(7, &[Value::Int(3), Value::Float(-1e9)]));
        assert!(inside < end && outside >= end);
        assert!(keys::row(7, &[Value::Int(2), Value::Float(0.0)]) < start);
    }

    #[test]
    fn what_the_key_cannot_answer_scans_the_table() {
        let whole = Access::Range { start: keys::rows(7).0, end: keys::rows(7).1 };
        let t = table(vec![0]);
        assert_eq!(path(&t, Some(&cmp(BinaryOp::Eq, 0, Value::Float(1.5)))), whole);
        assert_eq!(path(&t, Some(&cmp(BinaryOp::Eq, 1, Value::Text("x".into())))), whole);
        let or = Expr::Binary {
            op: BinaryOp::Or,
            left: Box::new(cmp(BinaryOp::Eq, 0, Value::Int(1))),
            right: Box::new(cmp(BinaryOp::Eq, 0, Value::Int(2))),
            ty: DataType::Bool,
        };
        assert_eq!(path(&t, Some(&or)), whole);
        assert_eq!(path(&table(vec![]), Some(&cmp(BinaryOp::Eq, 0, Value::Int(1)))), whole);
        let empty = and(cmp(BinaryOp::Gt, 0, Value::Int(5)), cmp(BinaryOp::Lt, 0, Value::Int(3)));
        let Access::Range { start, end } = path(&t, Some(&empty)) else { panic!("a range") };
        assert_eq!(start, end);
    }
}
