//! Scalar functions: which exist for which argument types (binding), and
//! what they compute (evaluation), as PostgreSQL defines them for the
//! types Seshat has.
//!
//! Arguments are coerced to the parameter types a function declares: an
//! untyped literal or parameter takes that type, an integer becomes
//! `double precision` where the function takes one (`sqrt(4)`), and
//! anything else is 42883 (`function f(types) does not exist`). Every
//! function is strict (NULL in, NULL out) except `concat`, `greatest`
//! and `least`, which skip NULLs.

use crate::bind::Typed;
use crate::datetime;
use crate::error::{code, SqlError};
use crate::expr::{BinaryOp, Expr};
use crate::numeric;
use crate::types::DataType;
use crate::value::{check_int, out_of_range, Value};

/// Scalar functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Lower,
    Upper,
    Length,
    Reverse,
    /// Characters removed from the start, the end, or both (second
    /// argument: which characters; spaces without one).
    Trim {
        leading: bool,
        trailing: bool,
    },
    Replace,
    Strpos,
    Substr,
    Left,
    Right,
    Repeat,
    Concat,
    /// A value's text as PostgreSQL's output function for its type
    /// writes it (`real` with 6 digits, `timestamptz` with its offset):
    /// what a cast to text and `||` use.
    Text(DataType),
    Abs,
    Floor,
    Ceil,
    Round,
    Sqrt,
    Sign,
    Power,
    Mod,
    Greatest,
    Least,
    /// `date_part(field, timestamp)`: a field as a number.
    DatePart,
    /// `date_trunc(field, timestamp)`: the start of the field's unit.
    DateTrunc,
    /// `format_type(type oid, typmod)`: the type's SQL name (not strict:
    /// without a modifier, the bare name; an unknown type, NULL).
    FormatType,
    /// A catalog function whose answer is its first argument:
    /// `pg_get_expr(expression, relation)` (expressions are stored as
    /// their SQL text).
    FirstArgument,
    /// `text ~ pattern` and its kin: POSIX regular expression matching
    /// (the `regex` crate's syntax, which covers what psql sends).
    RegexMatch {
        case_insensitive: bool,
        negated: bool,
    },
    /// `array_to_string(array, separator)`, of an array in PostgreSQL's
    /// text form.
    ArrayToString,
}

const TEXT: DataType = DataType::Text;
const INT: DataType = DataType::Int4;
const FLOAT: DataType = DataType::Float8;
const NUMERIC: DataType = DataType::Numeric(None);

/// `name(args)`, bound; 42883 when no such function takes these types.
pub fn bind(name: &str, args: Vec<Typed>) -> Result<Typed, SqlError> {
    let undefined = |args: &[Typed]| {
        let types: Vec<String> = args.iter().map(|t| if t.untyped { "unknown".into() } else { t.ty.name() }).collect();
        SqlError::new(code::UNDEFINED_FUNCTION, format!("function {name}({}) does not exist", types.join(", ")))
    };
    let call = |function, params: &[DataType], result: DataType, args: Vec<Typed>| {
        if args.len() != params.len() {
            return Err(undefined(&args));
        }
        let mut exprs = Vec::with_capacity(args.len());
        for (arg, &param) in args.iter().zip(params) {
            exprs.push(coerce(arg.clone(), param).ok_or_else(|| undefined(&args))??);
        }
        Ok(Typed::known(Expr::Call { function, args: exprs, ty: result }, result))
    };
    let trim = |leading, trailing| Function::Trim { leading, trailing };
    match (name, args.len()) {
        ("lower", _) => call(Function::Lower, &[TEXT], TEXT, args),
        ("upper", _) => call(Function::Upper, &[TEXT], TEXT, args),
        ("length" | "char_length" | "character_length", _) => call(Function::Length, &[TEXT], INT, args),
        ("reverse", _) => call(Function::Reverse, &[TEXT], TEXT, args),
        ("btrim", 1) => call(trim(true, true), &[TEXT], TEXT, args),
        ("btrim", _) => call(trim(true, true), &[TEXT, TEXT], TEXT, args),
        ("ltrim", 1) => call(trim(true, false), &[TEXT], TEXT, args),
        ("ltrim", _) => call(trim(true, false), &[TEXT, TEXT], TEXT, args),
        ("rtrim", 1) => call(trim(false, true), &[TEXT], TEXT, args),
        ("rtrim", _) => call(trim(false, true), &[TEXT, TEXT], TEXT, args),
        ("replace", _) => call(Function::Replace, &[TEXT, TEXT, TEXT], TEXT, args),
        ("strpos", _) => call(Function::Strpos, &[TEXT, TEXT], INT, args),
        ("substr" | "substring", 2) => call(Function::Substr, &[TEXT, INT], TEXT, args),
        ("substr" | "substring", _) => call(Function::Substr, &[TEXT, INT, INT], TEXT, args),
        ("left", _) => call(Function::Left, &[TEXT, INT], TEXT, args),
        ("right", _) => call(Function::Right, &[TEXT, INT], TEXT, args),
        ("repeat", _) => call(Function::Repeat, &[TEXT, INT], TEXT, args),
        ("concat", _) => {
            // Each argument as its output text (booleans as t and f).
            let args = args
                .into_iter()
                .map(|a| match (a.untyped, a.ty) {
                    (true, _) => a.coerce(TEXT).map(|a| a.expr),
                    (false, DataType::Bool) => Ok(a.expr),
                    (false, ty) => Ok(Expr::Call { function: Function::Text(ty), args: vec![a.expr], ty: TEXT }),
                })
                .collect::<Result<_, _>>()?;
            Ok(Typed::known(Expr::Call { function: Function::Concat, args, ty: TEXT }, TEXT))
        }
        ("abs", 1) if !args[0].untyped && args[0].ty.is_numeric() => {
            let ty = args[0].ty;
            call(Function::Abs, &[ty], ty, args)
        }
        // numeric in, numeric out (integers are numeric here, as in
        // PostgreSQL); floats stay floats.
        ("floor" | "ceil" | "ceiling" | "round" | "sign", 1) if takes_numeric(&args) => {
            let function = match name {
                "floor" => Function::Floor,
                "round" => Function::Round,
                "sign" => Function::Sign,
                _ => Function::Ceil,
            };
            call(function, &[NUMERIC], NUMERIC, args)
        }
        ("round", 2) => call(Function::Round, &[NUMERIC, INT], NUMERIC, args),
        ("floor", _) => call(Function::Floor, &[FLOAT], FLOAT, args),
        ("ceil" | "ceiling", _) => call(Function::Ceil, &[FLOAT], FLOAT, args),
        ("round", 1) => call(Function::Round, &[FLOAT], FLOAT, args),
        ("sqrt", _) => call(Function::Sqrt, &[FLOAT], FLOAT, args),
        ("sign", _) => call(Function::Sign, &[FLOAT], FLOAT, args),
        ("date_part", 2) => {
            let source = datetime_source(&args[1]);
            call(Function::DatePart, &[TEXT, source], FLOAT, args)
        }
        ("date_trunc", 2) => {
            // A date truncates as timestamptz, as in PostgreSQL.
            let typed_timestamp = !args[1].untyped && args[1].ty == DataType::Timestamp;
            let result = if typed_timestamp { DataType::Timestamp } else { DataType::Timestamptz };
            call(Function::DateTrunc, &[TEXT, result], result, args)
        }
        ("power" | "pow", _) => call(Function::Power, &[FLOAT, FLOAT], FLOAT, args),
        ("mod", 2) if args.iter().all(|a| a.untyped || a.ty.is_integer()) => {
            let ty = args.iter().filter(|a| !a.untyped).map(|a| a.ty).reduce(DataType::wider).unwrap_or(INT);
            call(Function::Mod, &[ty, ty], ty, args)
        }
        ("coalesce" | "greatest" | "least" | "nullif", n) if n > 0 => {
            let ty = common_type(&args).ok_or_else(|| undefined(&args))?;
            let mut exprs = Vec::with_capacity(n);
            for arg in args {
                exprs.push(arg.unify(ty)?);
            }
            let expr = match name {
                "coalesce" => Expr::Coalesce(exprs),
                "greatest" => Expr::Call { function: Function::Greatest, args: exprs, ty },
                "least" => Expr::Call { function: Function::Least, args: exprs, ty },
                _ => nullif(exprs)
                    .ok_or_else(|| SqlError::new(code::UNDEFINED_FUNCTION, "nullif takes two arguments"))?,
            };
            Ok(Typed::known(expr, ty))
        }
        // What drivers parse PostgreSQL's version from.
        ("version", 0) => {
            let version = concat!("PostgreSQL 15.0 (Seshat ", env!("CARGO_PKG_VERSION"), ")");
            Ok(Typed::known(Expr::Literal(Value::Text(version.into())), TEXT))
        }
        ("generate_series", _) => Err(SqlError::unsupported("generate_series in a select list (it runs in FROM)")),
        // The system catalogs' functions (`crate::system`).
        ("format_type", 2) => call(Function::FormatType, &[DataType::Int8, INT], TEXT, args),
        ("pg_get_expr", 2) => call(Function::FirstArgument, &[TEXT, DataType::Int8], TEXT, args),
        ("pg_get_expr", 3) => call(Function::FirstArgument, &[TEXT, DataType::Int8, DataType::Bool], TEXT, args),
        // One schema on the search path, and a superuser: every relation
        // is visible and every privilege held.
        ("pg_table_is_visible" | "pg_type_is_visible" | "pg_function_is_visible", 1)
        | (
            "has_table_privilege"
            | "has_schema_privilege"
            | "has_database_privilege"
            | "has_column_privilege"
            | "has_any_column_privilege"
            | "has_function_privilege"
            | "has_sequence_privilege",
            2..=4,
        ) => Ok(Typed::known(Expr::Literal(Value::Bool(true)), DataType::Bool)),
        ("pg_relation_is_publishable", 1) => Ok(Typed::known(Expr::Literal(Value::Bool(false)), DataType::Bool)),
        ("pg_encoding_to_char", 1) => Ok(Typed::known(Expr::Literal(Value::Text("UTF8".into())), TEXT)),
        ("current_schemas", 1) => Ok(Typed::known(Expr::Literal(Value::Text("{pg_catalog,public}".into())), TEXT)),
        // Seshat keeps no comments, statistics objects, partition keys or
        // tablespace locations.
        (
            "obj_description"
            | "col_description"
            | "shobj_description"
            | "pg_get_statisticsobjdef_columns"
            | "pg_get_partkeydef"
            | "pg_tablespace_location",
            _,
        ) => Ok(Typed::known(Expr::Literal(Value::Null), TEXT)),
        // Arrays are text in PostgreSQL's form here (`{a,b}`).
        ("array_to_string", 2) => call(Function::ArrayToString, &[TEXT, TEXT], TEXT, args),
        ("~" | "~*" | "!~" | "!~*", 2) => {
            let function =
                Function::RegexMatch { case_insensitive: name.ends_with('*'), negated: name.starts_with('!') };
            call(function, &[TEXT, TEXT], DataType::Bool, args)
        }
        _ => Err(undefined(&args)),
    }
}

/// Whether the one argument is numeric or an integer (not a float, not
/// untyped: those take the double precision form).
fn takes_numeric(args: &[Typed]) -> bool {
    args.len() == 1 && !args[0].untyped && (args[0].ty.is_decimal() || args[0].ty.is_integer())
}

/// The type a date/time function reads its argument as: a timestamp
/// as it is, anything else (a date, an untyped literal) as `timestamptz`
/// (a date as `timestamp`, PostgreSQL's implicit cast).
fn datetime_source(arg: &Typed) -> DataType {
    match (arg.untyped, arg.ty) {
        (false, DataType::Timestamp | DataType::Date) => DataType::Timestamp,
        _ => DataType::Timestamptz,
    }
}

/// `arg` as a parameter of type `param`, `None` if it cannot be one.
fn coerce(arg: Typed, param: DataType) -> Option<Result<Expr, SqlError>> {
    if arg.untyped {
        return Some(arg.coerce(param).map(|a| a.expr));
    }
    if arg.ty.is_datetime() && param.is_datetime() {
        let same = arg.ty == param || (arg.ty != DataType::Date && param != DataType::Date);
        return Some(Ok(if same { arg.expr } else { Expr::Cast { expr: Box::new(arg.expr), to: param } }));
    }
    if matches!(arg.ty, DataType::Char(_)) && param.is_text() {
        return Some(arg.coerce(param).map(|a| a.expr));
    }
    if arg.ty.same_kind(param) && (arg.ty == param || !param.is_integer() || arg.ty.is_integer()) {
        let widen = (param.is_float() && !arg.ty.is_float()) || (param.is_decimal() && !arg.ty.is_decimal());
        return Some(Ok(if widen { Expr::Cast { expr: Box::new(arg.expr), to: param } } else { arg.expr }));
    }
    None
}

/// The type a list of arguments shares (COALESCE, GREATEST…): the first
/// typed argument's kind, widened over numbers; text when all are
/// untyped.
fn common_type(args: &[Typed]) -> Option<DataType> {
    let mut typed = args.iter().filter(|a| !a.untyped).map(|a| a.ty);
    let Some(first) = typed.next() else { return Some(TEXT) };
    typed.try_fold(first, DataType::common)
}

/// NULLIF(a, b): NULL when a = b, else a.
fn nullif(mut args: Vec<Expr>) -> Option<Expr> {
    if args.len() != 2 {
        return None;
    }
    let b = args.pop()?;
    let a = args.pop()?;
    let equal = Expr::Binary { op: BinaryOp::Eq, left: Box::new(a.clone()), right: Box::new(b), ty: DataType::Bool };
    Some(Expr::Case {
        operand: None,
        branches: vec![(equal, Expr::Literal(Value::Null))],
        otherwise: Some(Box::new(a)),
    })
}

fn text(value: &Value) -> &str {
    match value {
        Value::Text(s) => s,
        _ => "",
    }
}

fn int(value: &Value) -> i64 {
    match value {
        Value::Int(n) => *n,
        _ => 0,
    }
}

fn float(value: &Value) -> f64 {
    match value {
        Value::Float(x) => *x,
        Value::Int(n) => *n as f64,
        _ => 0.0,
    }
}

/// The characters of `s` from 1-based position `start`, `count` of them
/// (to the end when `None`), clipped to the string as PostgreSQL does.
fn substr(s: &str, start: i64, count: Option<i64>) -> Result<String, SqlError> {
    let end = match count {
        Some(n) if n < 0 => {
            return Err(SqlError::new(code::SUBSTRING_ERROR, "negative substring length not allowed"));
        }
        Some(n) => start.saturating_add(n),
        None => i64::MAX,
    };
    let from = start.max(1);
    if end <= from {
        return Ok(String::new());
    }
    let count = usize::try_from(end - from).unwrap_or(usize::MAX);
    Ok(s.chars().skip((from - 1) as usize).take(count).collect())
}

/// Case mapping character by character, as PostgreSQL's: a character
/// whose mapping is several characters (`ß`) stays as it is.
fn change_case<I: ExactSizeIterator<Item = char>>(s: &str, map: impl Fn(char) -> I) -> String {
    s.chars()
        .map(|c| {
            let mut mapped = map(c);
            if mapped.len() == 1 {
                mapped.next().unwrap_or(c)
            } else {
                c
            }
        })
        .collect()
}

/// Whether `text` matches `pattern` anywhere. The last pattern compiled on
/// this thread is kept: a filter tests one pattern against many rows.
fn regex_matches(text: &str, pattern: &str, case_insensitive: bool) -> Result<bool, SqlError> {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(String, bool, regex::Regex)>> = const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        let cached = last.as_ref().filter(|(p, ci, _)| p == pattern && *ci == case_insensitive);
        if cached.is_none() {
            let compiled =
                regex::RegexBuilder::new(pattern).case_insensitive(case_insensitive).build().map_err(|e| {
                    SqlError::new(code::INVALID_REGULAR_EXPRESSION, format!("invalid regular expression: {e}"))
                })?;
            *last = Some((pattern.to_string(), case_insensitive, compiled));
        }
        Ok(last.as_ref().expect("compiled above").2.is_match(text))
    })
}

fn not_numeric() -> SqlError {
    SqlError::new(code::INTERNAL_ERROR, "a numeric function got another type")
}

fn not_datetime() -> SqlError {
    SqlError::new(code::INTERNAL_ERROR, "a date/time function got another type")
}

fn unknown_unit(field: &str, ty: DataType) -> SqlError {
    let ty = if ty == DataType::Float8 { DataType::Timestamp } else { ty };
    SqlError::new(code::INVALID_PARAMETER_VALUE, format!("unit \"{field}\" not recognized for type {}", ty.name()))
}

fn domain_error(message: &str) -> SqlError {
    SqlError::new(code::INVALID_ARGUMENT_FOR_POWER_FUNCTION, message)
}

/// Evaluates `function` over `args` (already of its parameter types).
pub fn call(function: Function, args: Vec<Value>, ty: DataType) -> Result<Value, SqlError> {
    match function {
        Function::Text(from) => {
            return Ok(args[0].to_text(from).map_or(Value::Null, Value::Text));
        }
        Function::Concat => {
            let parts = args.iter().map(|v| match v {
                Value::Bool(b) => {
                    if *b {
                        "t"
                    } else {
                        "f"
                    }
                }
                other => text(other),
            });
            return Ok(Value::Text(parts.collect()));
        }
        Function::Greatest | Function::Least => {
            let best = args.into_iter().filter(|v| !v.is_null()).reduce(|best, v| {
                let better = match v.compare(&best) {
                    Some(std::cmp::Ordering::Greater) => function == Function::Greatest,
                    Some(std::cmp::Ordering::Less) => function == Function::Least,
                    _ => false,
                };
                if better {
                    v
                } else {
                    best
                }
            });
            return Ok(best.unwrap_or(Value::Null));
        }
        Function::FormatType => {
            let typmod = match &args[1] {
                Value::Int(m) => Some(*m),
                _ => None,
            };
            return Ok(match &args[0] {
                Value::Int(oid) => crate::system::format_type(*oid, typmod).map_or(Value::Null, Value::Text),
                _ => Value::Null,
            });
        }
        _ if args.iter().any(Value::is_null) => return Ok(Value::Null),
        _ => {}
    }
    let arg = |i: usize| &args[i];
    Ok(match function {
        Function::Lower => Value::Text(change_case(text(arg(0)), char::to_lowercase)),
        Function::Upper => Value::Text(change_case(text(arg(0)), char::to_uppercase)),
        Function::Length => Value::Int(text(arg(0)).chars().count() as i64),
        Function::Reverse => Value::Text(text(arg(0)).chars().rev().collect()),
        Function::Trim { leading, trailing } => {
            let set: Vec<char> = args.get(1).map_or(vec![' '], |chars| text(chars).chars().collect());
            let mut s = text(arg(0));
            if leading {
                s = s.trim_start_matches(|c| set.contains(&c));
            }
            if trailing {
                s = s.trim_end_matches(|c| set.contains(&c));
            }
            Value::Text(s.to_string())
        }
        Function::Replace => {
            let (s, from, to) = (text(arg(0)), text(arg(1)), text(arg(2)));
            Value::Text(if from.is_empty() { s.to_string() } else { s.replace(from, to) })
        }
        Function::Strpos => {
            let (s, sub) = (text(arg(0)), text(arg(1)));
            Value::Int(s.find(sub).map_or(0, |byte| s[..byte].chars().count() as i64 + 1))
        }
        Function::Substr => Value::Text(substr(text(arg(0)), int(arg(1)), args.get(2).map(int))?),
        Function::Left | Function::Right => {
            let chars: Vec<char> = text(arg(0)).chars().collect();
            let n = int(arg(1));
            let len = chars.len() as i64;
            let keep = if n >= 0 { n.min(len) } else { (len + n).max(0) } as usize;
            let kept = if function == Function::Left { &chars[..keep] } else { &chars[chars.len() - keep..] };
            Value::Text(kept.iter().collect())
        }
        Function::Repeat => Value::Text(text(arg(0)).repeat(int(arg(1)).max(0) as usize)),
        Function::Abs => match arg(0) {
            Value::Int(n) => check_int(n.checked_abs().ok_or_else(|| out_of_range(ty))?, ty)?,
            Value::Numeric(d) => Value::Numeric(d.abs()),
            other => Value::Float(float(other).abs()),
        },
        Function::Floor | Function::Ceil | Function::Round | Function::Sign if ty.is_decimal() => {
            let Value::Numeric(d) = arg(0) else { return Err(not_numeric()) };
            Value::Numeric(match function {
                Function::Floor => d.floor(),
                Function::Ceil => d.ceil(),
                Function::Sign => numeric::from_int(if d.is_zero() {
                    0
                } else if d.is_sign_negative() {
                    -1
                } else {
                    1
                }),
                _ => {
                    let places = args.get(1).map_or(0, int);
                    if places < 0 {
                        let factor = numeric::from_int(10i64.pow(places.unsigned_abs().min(18) as u32));
                        numeric::round(d / factor, 0) * factor
                    } else {
                        numeric::round(*d, places.min(28) as u32)
                    }
                }
            })
        }
        Function::Floor => Value::Float(float(arg(0)).floor()),
        Function::Ceil => Value::Float(float(arg(0)).ceil()),
        Function::Round => Value::Float(float(arg(0)).round_ties_even()),
        Function::DatePart => {
            let Value::Timestamp(micros) = arg(1) else { return Err(not_datetime()) };
            let field = text(arg(0)).to_lowercase();
            Value::Float(datetime::part(&field, *micros).ok_or_else(|| unknown_unit(&field, ty))?)
        }
        Function::DateTrunc => {
            let Value::Timestamp(micros) = arg(1) else { return Err(not_datetime()) };
            let field = text(arg(0)).to_lowercase();
            Value::Timestamp(datetime::truncate(&field, *micros).ok_or_else(|| unknown_unit(&field, ty))?)
        }
        Function::Sqrt => {
            let x = float(arg(0));
            if x < 0.0 {
                return Err(domain_error("cannot take square root of a negative number"));
            }
            Value::Float(x.sqrt())
        }
        Function::Sign => Value::Float(match float(arg(0)) {
            x if x > 0.0 => 1.0,
            x if x < 0.0 => -1.0,
            _ => 0.0,
        }),
        Function::Power => {
            let (x, y) = (float(arg(0)), float(arg(1)));
            if x == 0.0 && y < 0.0 {
                return Err(domain_error("zero raised to a negative power is undefined"));
            }
            if x < 0.0 && y.fract() != 0.0 {
                return Err(domain_error("a negative number raised to a non-integer power yields a complex result"));
            }
            let result = x.powf(y);
            if result.is_infinite() && x.is_finite() && y.is_finite() {
                return Err(SqlError::new(code::NUMERIC_VALUE_OUT_OF_RANGE, "value out of range: overflow"));
            }
            Value::Float(result)
        }
        Function::Mod => {
            let (a, b) = (int(arg(0)), int(arg(1)));
            if b == 0 {
                return Err(SqlError::new(code::DIVISION_BY_ZERO, "division by zero"));
            }
            Value::Int(a.wrapping_rem(b))
        }
        Function::FirstArgument => arg(0).clone(),
        Function::ArrayToString => {
            let array = text(arg(0));
            let inner = array.strip_prefix('{').and_then(|a| a.strip_suffix('}')).unwrap_or(array);
            let elements: Vec<&str> = inner.split(',').filter(|e| !e.is_empty()).collect();
            Value::Text(elements.join(text(arg(1))))
        }
        Function::RegexMatch { case_insensitive, negated } => {
            Value::Bool(regex_matches(text(arg(0)), text(arg(1)), case_insensitive)? != negated)
        }
        Function::Concat | Function::Greatest | Function::Least | Function::Text(_) | Function::FormatType => {
            unreachable!("handled above")
        }
    })
}
