//! Bound expressions and their evaluation, with SQL's three-valued logic:
//! an operator over NULL gives NULL, `NULL AND false` is false, `NULL OR
//! true` is true, and a WHERE clause keeps a row only when it is true.

use crate::datetime;
use crate::error::{code, SqlError};
use crate::functions::{self, Function};
use crate::numeric;
use crate::types::DataType;
use crate::value::{check_int, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    And,
    Or,
    Concat,
}

/// An expression whose names are resolved to positions in the row it is
/// evaluated over, and whose type is known.
#[derive(Debug, Clone)]
pub enum Expr {
    Literal(Value),
    /// The value at this position of the input row.
    Column(usize),
    /// `ty` is the result type (it decides integer ranges).
    Binary {
        op: BinaryOp,
        left: Box<Expr>,
        right: Box<Expr>,
        ty: DataType,
    },
    Not(Box<Expr>),
    Negate(Box<Expr>, DataType),
    IsNull {
        expr: Box<Expr>,
        negated: bool,
    },
    Cast {
        expr: Box<Expr>,
        to: DataType,
    },
    InList {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        negated: bool,
        case_insensitive: bool,
    },
    Case {
        operand: Option<Box<Expr>>,
        branches: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    Coalesce(Vec<Expr>),
    Call {
        function: Function,
        args: Vec<Expr>,
        ty: DataType,
    },
    /// Parameter `$index+1` of a prepared statement, with the type its
    /// context gave it (`None` while nothing has). Only ever bound to
    /// infer parameter types: an executed statement has its parameters
    /// substituted by typed literals first.
    Param {
        index: usize,
        ty: Option<DataType>,
    },
    /// A subquery of a statement only described, never run: kept so that
    /// its parameters' types are inferred ([`crate::subquery`]).
    Subquery(Box<crate::plan::QueryPlan>),
    /// A correlated subquery, run once and keyed by the outer values it
    /// depends on ([`crate::correlated`]).
    Correlated {
        subquery: Box<crate::correlated::Correlated>,
        test: crate::correlated::Test,
    },
}

impl Expr {
    /// Evaluates over `row`.
    pub fn eval(&self, row: &[Value]) -> Result<Value, SqlError> {
        Ok(match self {
            Expr::Literal(value) => value.clone(),
            Expr::Column(i) => row[*i].clone(),
            Expr::Binary { op: BinaryOp::And, left, right, .. } => {
                match (truth(&left.eval(row)?), truth(&right.eval(row)?)) {
                    (Some(false), _) | (_, Some(false)) => Value::Bool(false),
                    (Some(true), Some(true)) => Value::Bool(true),
                    _ => Value::Null,
                }
            }
            Expr::Binary { op: BinaryOp::Or, left, right, .. } => {
                match (truth(&left.eval(row)?), truth(&right.eval(row)?)) {
                    (Some(true), _) | (_, Some(true)) => Value::Bool(true),
                    (Some(false), Some(false)) => Value::Bool(false),
                    _ => Value::Null,
                }
            }
            Expr::Binary { op, left, right, ty } => binary(*op, left.eval(row)?, right.eval(row)?, *ty)?,
            Expr::Not(expr) => match truth(&expr.eval(row)?) {
                Some(b) => Value::Bool(!b),
                None => Value::Null,
            },
            Expr::Negate(expr, ty) => match expr.eval(row)? {
                Value::Int(n) => check_int(n.checked_neg().ok_or_else(|| crate::value::out_of_range(*ty))?, *ty)?,
                Value::Float(x) => Value::Float(-x),
                Value::Numeric(d) => Value::Numeric(-d),
                other => other,
            },
            Expr::IsNull { expr, negated } => Value::Bool(expr.eval(row)?.is_null() != *negated),
            Expr::Cast { expr, to } => expr.eval(row)?.cast(*to)?,
            Expr::InList { expr, list, negated } => {
                let value = expr.eval(row)?;
                if value.is_null() {
                    return Ok(Value::Null);
                }
                let mut saw_null = false;
                for item in list {
                    match value.compare(&item.eval(row)?) {
                        Some(std::cmp::Ordering::Equal) => return Ok(Value::Bool(!negated)),
                        None => saw_null = true,
                        Some(_) => {}
                    }
                }
                if saw_null {
                    Value::Null
                } else {
                    Value::Bool(*negated)
                }
            }
            Expr::Like { expr, pattern, negated, case_insensitive } => match (expr.eval(row)?, pattern.eval(row)?) {
                (Value::Text(text), Value::Text(pattern)) => {
                    let matched = if *case_insensitive {
                        like(&text.to_lowercase(), &pattern.to_lowercase())?
                    } else {
                        like(&text, &pattern)?
                    };
                    Value::Bool(matched != *negated)
                }
                _ => Value::Null,
            },
            Expr::Case { operand, branches, otherwise } => {
                let operand = operand.as_ref().map(|o| o.eval(row)).transpose()?;
                for (when, then) in branches {
                    let when = when.eval(row)?;
                    let hit = match &operand {
                        Some(operand) => operand.compare(&when) == Some(std::cmp::Ordering::Equal),
                        None => truth(&when) == Some(true),
                    };
                    if hit {
                        return then.eval(row);
                    }
                }
                match otherwise {
                    Some(otherwise) => otherwise.eval(row)?,
                    None => Value::Null,
                }
            }
            Expr::Coalesce(args) => {
                for arg in args {
                    let value = arg.eval(row)?;
                    if !value.is_null() {
                        return Ok(value);
                    }
                }
                Value::Null
            }
            Expr::Call { function, args, ty } => {
                let args: Vec<Value> = args.iter().map(|a| a.eval(row)).collect::<Result<_, _>>()?;
                functions::call(*function, args, *ty)?
            }
            Expr::Param { index, .. } => {
                return Err(SqlError::new(code::UNDEFINED_PARAMETER, format!("there is no parameter ${}", index + 1)))
            }
            Expr::Subquery(_) => {
                return Err(SqlError::new(code::INTERNAL_ERROR, "a described subquery cannot be evaluated"))
            }
            Expr::Correlated { subquery, test } => subquery.eval(test, row)?,
        })
    }

    /// Calls `visit` on this expression and every expression inside it.
    pub fn walk<'s>(&'s self, visit: &mut impl FnMut(&'s Expr)) {
        visit(self);
        match self {
            // A subquery's expressions are over its own rows: not walked.
            Expr::Literal(_) | Expr::Column(_) | Expr::Param { .. } | Expr::Subquery(_) => {}
            Expr::Binary { left, right, .. } => {
                left.walk(visit);
                right.walk(visit);
            }
            Expr::Not(expr) | Expr::Negate(expr, _) | Expr::IsNull { expr, .. } | Expr::Cast { expr, .. } => {
                expr.walk(visit)
            }
            Expr::InList { expr, list, .. } => {
                expr.walk(visit);
                list.iter().for_each(|item| item.walk(visit));
            }
            Expr::Like { expr, pattern, .. } => {
                expr.walk(visit);
                pattern.walk(visit);
            }
            Expr::Case { operand, branches, otherwise } => {
                operand.iter().for_each(|o| o.walk(visit));
                for (when, then) in branches {
                    when.walk(visit);
                    then.walk(visit);
                }
                otherwise.iter().for_each(|o| o.walk(visit));
            }
            Expr::Coalesce(args) | Expr::Call { args, .. } => args.iter().for_each(|a| a.walk(visit)),
            Expr::Correlated { subquery, test } => {
                subquery.outer_keys.iter().for_each(|k| k.walk(visit));
                if let crate::correlated::Test::In { operand, .. } = test {
                    operand.walk(visit);
                }
            }
        }
    }

    /// The row positions it reads.
    pub fn columns(&self) -> std::collections::BTreeSet<usize> {
        let mut columns = std::collections::BTreeSet::new();
        self.walk(&mut |e| {
            if let Expr::Column(i) = e {
                columns.insert(*i);
            }
        });
        columns
    }

    /// The same expression over another row layout: column `i` becomes
    /// column `position(i)`.
    pub fn remap(&self, position: &impl Fn(usize) -> usize) -> Expr {
        let boxed = |e: &Expr| Box::new(e.remap(position));
        match self {
            Expr::Column(i) => Expr::Column(position(*i)),
            Expr::Literal(_) | Expr::Param { .. } | Expr::Subquery(_) => self.clone(),
            Expr::Binary { op, left, right, ty } => {
                Expr::Binary { op: *op, left: boxed(left), right: boxed(right), ty: *ty }
            }
            Expr::Not(e) => Expr::Not(boxed(e)),
            Expr::Negate(e, ty) => Expr::Negate(boxed(e), *ty),
            Expr::IsNull { expr, negated } => Expr::IsNull { expr: boxed(expr), negated: *negated },
            Expr::Cast { expr, to } => Expr::Cast { expr: boxed(expr), to: *to },
            Expr::InList { expr, list, negated } => Expr::InList {
                expr: boxed(expr),
                list: list.iter().map(|e| e.remap(position)).collect(),
                negated: *negated,
            },
            Expr::Like { expr, pattern, negated, case_insensitive } => Expr::Like {
                expr: boxed(expr),
                pattern: boxed(pattern),
                negated: *negated,
                case_insensitive: *case_insensitive,
            },
            Expr::Case { operand, branches, otherwise } => Expr::Case {
                operand: operand.as_deref().map(boxed),
                branches: branches.iter().map(|(w, t)| (w.remap(position), t.remap(position))).collect(),
                otherwise: otherwise.as_deref().map(boxed),
            },
            Expr::Coalesce(args) => Expr::Coalesce(args.iter().map(|a| a.remap(position)).collect()),
            Expr::Call { function, args, ty } => {
                Expr::Call { function: *function, args: args.iter().map(|a| a.remap(position)).collect(), ty: *ty }
            }
            Expr::Correlated { subquery, test } => {
                let mut subquery = subquery.clone();
                subquery.outer_keys = subquery.outer_keys.iter().map(|k| k.remap(position)).collect();
                let test = match test {
                    crate::correlated::Test::In { operand, negated } => {
                        crate::correlated::Test::In { operand: boxed(operand), negated: *negated }
                    }
                    other => other.clone(),
                };
                Expr::Correlated { subquery, test }
            }
        }
    }

    /// Whether it reads nothing but constants: no column, parameter or
    /// subquery.
    fn is_constant(&self) -> bool {
        let mut constant = true;
        self.walk(&mut |e| {
            if matches!(e, Expr::Column(_) | Expr::Param { .. } | Expr::Subquery(_) | Expr::Correlated { .. }) {
                constant = false;
            }
        });
        constant
    }

    /// Constant folding: every subexpression that reads nothing but
    /// constants replaced by its value (`id = 1 + 1` becomes `id = 2`,
    /// which a key lookup can use). One whose evaluation fails stays, to
    /// fail when a row needs it.
    pub fn folded(self) -> Expr {
        if !matches!(self, Expr::Literal(_)) && self.is_constant() {
            return match self.eval(&[]) {
                Ok(value) => Expr::Literal(value),
                Err(_) => self,
            };
        }
        let fold = |e: Box<Expr>| Box::new(e.folded());
        let fold_all = |list: Vec<Expr>| list.into_iter().map(Expr::folded).collect();
        match self {
            Expr::Binary { op, left, right, ty } => Expr::Binary { op, left: fold(left), right: fold(right), ty },
            Expr::Not(e) => Expr::Not(fold(e)),
            Expr::Negate(e, ty) => Expr::Negate(fold(e), ty),
            Expr::IsNull { expr, negated } => Expr::IsNull { expr: fold(expr), negated },
            Expr::Cast { expr, to } => Expr::Cast { expr: fold(expr), to },
            Expr::InList { expr, list, negated } => Expr::InList { expr: fold(expr), list: fold_all(list), negated },
            Expr::Like { expr, pattern, negated, case_insensitive } => {
                Expr::Like { expr: fold(expr), pattern: fold(pattern), negated, case_insensitive }
            }
            Expr::Case { operand, branches, otherwise } => Expr::Case {
                operand: operand.map(fold),
                branches: branches.into_iter().map(|(w, t)| (w.folded(), t.folded())).collect(),
                otherwise: otherwise.map(fold),
            },
            Expr::Coalesce(args) => Expr::Coalesce(fold_all(args)),
            Expr::Call { function, args, ty } => Expr::Call { function, args: fold_all(args), ty },
            other => other,
        }
    }

    /// The AND-ed parts of a condition (`a AND (b AND c)`: a, b, c).
    pub fn conjuncts(self) -> Vec<Expr> {
        match self {
            Expr::Binary { op: BinaryOp::And, left, right, .. } => {
                let mut parts = left.conjuncts();
                parts.extend(right.conjuncts());
                parts
            }
            other => vec![other],
        }
    }

    /// The conjunction of `parts`, or `None` for none.
    pub fn all(parts: Vec<Expr>) -> Option<Expr> {
        parts.into_iter().reduce(|left, right| Expr::Binary {
            op: BinaryOp::And,
            left: Box::new(left),
            right: Box::new(right),
            ty: DataType::Bool,
        })
    }

    /// Whether the expression keeps a row in a WHERE clause: true, not
    /// false or NULL.
    pub fn holds(&self, row: &[Value]) -> Result<bool, SqlError> {
        Ok(truth(&self.eval(row)?) == Some(true))
    }
}

fn truth(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        _ => None,
    }
}

fn division_by_zero() -> SqlError {
    SqlError::new(code::DIVISION_BY_ZERO, "division by zero")
}

fn float_result(x: f64, inputs_finite: bool) -> Result<Value, SqlError> {
    if x.is_infinite() && inputs_finite {
        return Err(SqlError::new(code::NUMERIC_VALUE_OUT_OF_RANGE, "value out of range: overflow"));
    }
    Ok(Value::Float(x))
}

fn binary(op: BinaryOp, left: Value, right: Value, ty: DataType) -> Result<Value, SqlError> {
    use std::cmp::Ordering::*;
    if left.is_null() || right.is_null() {
        return Ok(Value::Null);
    }
    let compare = |wanted: fn(std::cmp::Ordering) -> bool| match left.compare(&right) {
        Some(order) => Value::Bool(wanted(order)),
        None => Value::Null,
    };
    Ok(match op {
        BinaryOp::Eq => compare(|o| o == Equal),
        BinaryOp::NotEq => compare(|o| o != Equal),
        BinaryOp::Lt => compare(|o| o == Less),
        BinaryOp::LtEq => compare(|o| o != Greater),
        BinaryOp::Gt => compare(|o| o == Greater),
        BinaryOp::GtEq => compare(|o| o != Less),
        BinaryOp::Concat => {
            let text = |v: &Value| match v {
                Value::Text(s) => s.clone(),
                Value::Float(_) => v.to_text(DataType::Float8).unwrap_or_default(),
                other => other.to_text(DataType::Text).unwrap_or_default(),
            };
            Value::Text(text(&left) + &text(&right))
        }
        BinaryOp::And | BinaryOp::Or => unreachable!("evaluated with three-valued logic"),
        arithmetic if ty.is_decimal() => {
            let (Some(a), Some(b)) = (as_decimal(&left), as_decimal(&right)) else {
                return Err(SqlError::new(code::DATATYPE_MISMATCH, "operator does not exist for these types"));
            };
            let result = match arithmetic {
                BinaryOp::Add => numeric::add(a, b),
                BinaryOp::Sub => numeric::sub(a, b),
                BinaryOp::Mul => numeric::mul(a, b),
                BinaryOp::Div => numeric::div(a, b),
                _ => numeric::rem(a, b),
            }?;
            Value::Numeric(result).cast(ty)?
        }
        arithmetic => match (left, right) {
            (Value::Date(d), Value::Int(n)) | (Value::Int(n), Value::Date(d)) if arithmetic == BinaryOp::Add => {
                date_plus(d, n)?
            }
            (Value::Date(d), Value::Int(n)) if arithmetic == BinaryOp::Sub => date_plus(d, n.saturating_neg())?,
            (Value::Date(a), Value::Date(b)) if arithmetic == BinaryOp::Sub => Value::Int(i64::from(a) - i64::from(b)),
            (Value::Int(a), Value::Int(b)) => {
                let result = match arithmetic {
                    BinaryOp::Add => a.checked_add(b),
                    BinaryOp::Sub => a.checked_sub(b),
                    BinaryOp::Mul => a.checked_mul(b),
                    BinaryOp::Div if b == 0 => return Err(division_by_zero()),
                    BinaryOp::Div => a.checked_div(b),
                    BinaryOp::Mod if b == 0 => return Err(division_by_zero()),
                    BinaryOp::Mod => Some(a.checked_rem(b).unwrap_or(0)),
                    _ => unreachable!("comparisons handled above"),
                };
                check_int(result.ok_or_else(|| crate::value::out_of_range(ty))?, ty)?
            }
            (a, b) => {
                let (Some(a), Some(b)) = (as_float(&a), as_float(&b)) else {
                    return Err(SqlError::new(code::DATATYPE_MISMATCH, "operator does not exist for these types"));
                };
                let finite = a.is_finite() && b.is_finite();
                let x = match arithmetic {
                    BinaryOp::Add => a + b,
                    BinaryOp::Sub => a - b,
                    BinaryOp::Mul => a * b,
                    BinaryOp::Div if b == 0.0 => return Err(division_by_zero()),
                    BinaryOp::Div => a / b,
                    _ => return Err(SqlError::unsupported("the % operator on floating-point numbers")),
                };
                float_result(x, finite)?.cast(ty)?
            }
        },
    })
}

fn as_float(value: &Value) -> Option<f64> {
    match value {
        Value::Int(n) => Some(*n as f64),
        Value::Float(x) => Some(*x),
        Value::Numeric(d) => Some(numeric::to_float(d)),
        _ => None,
    }
}

fn as_decimal(value: &Value) -> Option<rust_decimal::Decimal> {
    match value {
        Value::Int(n) => Some(numeric::from_int(*n)),
        Value::Numeric(d) => Some(*d),
        _ => None,
    }
}

/// Date `days` plus `n` days.
fn date_plus(days: i32, n: i64) -> Result<Value, SqlError> {
    i64::from(days)
        .checked_add(n)
        .and_then(|d| i32::try_from(d).ok())
        .filter(|d| d.unsigned_abs() < 100_000_000)
        .map(Value::Date)
        .ok_or_else(|| datetime::result_out_of_range(DataType::Date))
}

/// SQL LIKE: `%` any run, `_` one character, `\` escapes the next one.
fn like(text: &str, pattern: &str) -> Result<bool, SqlError> {
    let text: Vec<char> = text.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    if pattern.last() == Some(&'\\') && pattern.iter().rev().take_while(|c| **c == '\\').count() % 2 == 1 {
        return Err(SqlError::new("22025", "LIKE pattern must not end with escape character"));
    }
    Ok(like_at(&text, &pattern))
}

fn like_at(text: &[char], pattern: &[char]) -> bool {
    match pattern.first() {
        None => text.is_empty(),
        Some('%') => (0..=text.len()).any(|skip| like_at(&text[skip..], &pattern[1..])),
        Some('_') => !text.is_empty() && like_at(&text[1..], &pattern[1..]),
        Some('\\') if pattern.len() > 1 => text.first() == Some(&pattern[1]) && like_at(&text[1..], &pattern[2..]),
        Some(c) => text.first() == Some(c) && like_at(&text[1..], &pattern[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(v: Value) -> Box<Expr> {
        Box::new(Expr::Literal(v))
    }

    #[test]
    fn three_valued_logic() {
        let or = Expr::Binary {
            op: BinaryOp::Or,
            left: lit(Value::Null),
            right: lit(Value::Bool(true)),
            ty: DataType::Bool,
        };
        assert_eq!(or.eval(&[]).unwrap(), Value::Bool(true));
        let and = Expr::Binary {
            op: BinaryOp::And,
            left: lit(Value::Null),
            right: lit(Value::Bool(true)),
            ty: DataType::Bool,
        };
        assert_eq!(and.eval(&[]).unwrap(), Value::Null);
        assert!(!and.holds(&[]).unwrap());
        let not_in = Expr::InList {
            expr: lit(Value::Int(1)),
            list: vec![Expr::Literal(Value::Int(2)), Expr::Literal(Value::Null)],
            negated: true,
        };
        assert_eq!(not_in.eval(&[]).unwrap(), Value::Null);
    }

    #[test]
    fn integer_arithmetic_checks_its_type_s_range() {
        let add = |a, b, ty| {
            Expr::Binary { op: BinaryOp::Add, left: lit(Value::Int(a)), right: lit(Value::Int(b)), ty }.eval(&[])
        };
        assert_eq!(add(2147483647, 1, DataType::Int4).unwrap_err().message, "integer out of range");
        assert_eq!(add(2147483647, 1, DataType::Int8).unwrap(), Value::Int(2147483648));
        let div = Expr::Binary {
            op: BinaryOp::Div,
            left: lit(Value::Int(7)),
            right: lit(Value::Int(-2)),
            ty: DataType::Int4,
        };
        assert_eq!(div.eval(&[]).unwrap(), Value::Int(-3));
        let zero =
            Expr::Binary { op: BinaryOp::Div, left: lit(Value::Int(7)), right: lit(Value::Int(0)), ty: DataType::Int4 };
        assert_eq!(zero.eval(&[]).unwrap_err().code, code::DIVISION_BY_ZERO);
    }

    #[test]
    fn constants_fold_and_columns_stay() {
        let add = |left: Expr, right: Expr| Expr::Binary {
            op: BinaryOp::Add,
            left: Box::new(left),
            right: Box::new(right),
            ty: DataType::Int4,
        };
        let folded = add(Expr::Column(0), add(*lit(Value::Int(1)), *lit(Value::Int(2)))).folded();
        let Expr::Binary { left, right, .. } = folded else { panic!("the column's sum stays") };
        assert!(matches!(*left, Expr::Column(0)));
        assert!(matches!(*right, Expr::Literal(Value::Int(3))));
        // A failing constant stays, to fail where a row needs it.
        let overflow = add(*lit(Value::Int(i32::MAX as i64)), *lit(Value::Int(1)));
        assert!(matches!(overflow.folded(), Expr::Binary { .. }));
    }

    #[test]
    fn like_patterns() {
        assert!(like("abc", "a%").unwrap());
        assert!(like("abc", "_b_").unwrap());
        assert!(!like("abc", "b%").unwrap());
        assert!(like("a%c", "a\\%c").unwrap());
        assert!(like("x", "x\\").is_err());
    }
}
