//! Prepared statements, for the extended query protocol.
//!
//! [`describe`] binds a statement whose parameters (`$1`, `$2`, …) have
//! no values yet, against the catalog of a snapshot: the result columns
//! and each parameter's type are known before it runs, as Describe
//! needs. A parameter's type is the one the client declared, else the
//! one its context gives it (`id = $1` over an integer column makes it
//! `integer`; `$1::bigint` declares it), else `text`.
//!
//! [`Prepared::with_values`] turns the statement and its parameter
//! values into an ordinary statement, each parameter replaced by a
//! literal of its type (`CAST('42' AS integer)`): it then runs, and is
//! logged when it writes, exactly like the same statement sent as text.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use sqlparser::ast::{self, VisitMut, VisitorMut};
use storage::Reader;

use crate::bind::parameter_index;
use crate::dml::DmlPlan;
use crate::error::{code, Result, SqlError};
use crate::expr::Expr;
use crate::identity::Identity;
use crate::parse;
use crate::plan::OutputColumn;
use crate::query::{self, Ctes};
use crate::subquery::Mode;
use crate::types::DataType;
use crate::value::Value;

/// A parsed statement with its parameters' types and its result columns.
#[derive(Debug, Clone)]
pub struct Prepared {
    statement: ast::Statement,
    params: Vec<DataType>,
    /// Each parameter's type as sqlparser spells it, for the casts that
    /// replace the parameters at each execution.
    param_casts: Vec<ast::DataType>,
    columns: Vec<OutputColumn>,
}

impl Prepared {
    /// The parameters' types, `$1` first.
    pub fn params(&self) -> &[DataType] {
        &self.params
    }

    /// The columns of the rows it returns (none for a command).
    pub fn columns(&self) -> &[OutputColumn] {
        &self.columns
    }

    /// The statement with `values` in place of its parameters.
    pub(crate) fn with_values(&self, values: Vec<Value>) -> Result<ast::Statement> {
        if values.len() != self.params.len() {
            return Err(SqlError::new(
                code::PROTOCOL_VIOLATION,
                format!(
                    "bind message supplies {} parameters, but prepared statement requires {}",
                    values.len(),
                    self.params.len()
                ),
            )
            .into());
        }
        let mut literals = Vec::with_capacity(values.len());
        for ((value, &ty), cast) in values.into_iter().zip(&self.params).zip(&self.param_casts) {
            let literal = match value.to_text(ty) {
                Some(text) => ast::Value::SingleQuotedString(text),
                None => ast::Value::Null,
            };
            literals.push(ast::Expr::Cast {
                kind: ast::CastKind::Cast,
                expr: Box::new(ast::Expr::Value(literal.into())),
                data_type: cast.clone(),
                format: None,
            });
        }
        let mut statement = self.statement.clone();
        replace_params(&mut statement, |index| literals.get(index).cloned())?;
        Ok(statement)
    }
}

/// Prepares the one statement of `sql` against `reader`'s catalog.
/// `declared` are the types the client gave (`None`: infer it).
/// The session's `identity` stands in for `current_user` and its kin.
pub fn describe(
    reader: &impl Reader,
    sql: &str,
    declared: &[Option<DataType>],
    identity: &Identity,
) -> Result<Prepared> {
    let mut statements = parse::statements(sql)?;
    if statements.len() > 1 {
        return Err(
            SqlError::new(code::SYNTAX_ERROR, "cannot insert multiple commands into a prepared statement").into()
        );
    }
    let Some(mut statement) = statements.pop() else {
        return Err(SqlError::new(code::SYNTAX_ERROR, "empty prepared statement").into());
    };
    identity.substitute(&mut statement);
    // A declared type is a cast of the parameter, as `$1::integer` is.
    let declarations: Vec<Option<ast::Expr>> = declared
        .iter()
        .enumerate()
        .map(|(i, ty)| ty.map(|ty| parse::expression(&format!("CAST(${} AS {})", i + 1, ty.name()))).transpose())
        .collect::<std::result::Result<_, _>>()?;
    replace_params(&mut statement, |index| declarations.get(index).cloned().flatten())?;

    let (columns, inferred) = match &statement {
        ast::Statement::Query(query) => {
            let plan = query::plan_with(reader, query, &Ctes::default(), Mode::Describe)?;
            let inferred = param_types(plan.exprs())?;
            (plan.columns().to_vec(), inferred)
        }
        other => match DmlPlan::bind(reader, other, Mode::Describe)? {
            Some(plan) => (plan.columns(), param_types(plan.exprs())?),
            None => {
                let mut found = None;
                replace_params(&mut statement.clone(), |index| {
                    found.get_or_insert(index);
                    None
                })?;
                if let Some(index) = found {
                    let message = format!("there is no parameter ${}", index + 1);
                    return Err(SqlError::new(code::UNDEFINED_PARAMETER, message).into());
                }
                (Vec::new(), BTreeMap::new())
            }
        },
    };
    let count = declared.len().max(inferred.keys().next_back().map_or(0, |last| last + 1));
    let mut params = Vec::with_capacity(count);
    for index in 0..count {
        let ty = match (declared.get(index).copied().flatten(), inferred.get(&index)) {
            (Some(ty), _) => ty,
            (None, Some(ty)) => ty.unwrap_or(DataType::Text),
            (None, None) => {
                let message = format!("could not determine data type of parameter ${}", index + 1);
                return Err(SqlError::new(code::INDETERMINATE_DATATYPE, message).into());
            }
        };
        // As in PostgreSQL, a parameter's type has no length limit: the
        // column it is stored in checks the length.
        params.push(match ty {
            DataType::Varchar(_) => DataType::Varchar(None),
            ty => ty,
        });
    }
    // Execution substitutes the original placeholders, not the casts.
    let statement = parse::statements(sql)?.pop().expect("parsed once already");
    let param_casts = params.iter().map(|ty| cast_type(*ty)).collect::<Result<_>>()?;
    Ok(Prepared { statement, params, param_casts, columns })
}

/// `ty` as sqlparser's type name (parsed once per prepared statement).
fn cast_type(ty: DataType) -> Result<ast::DataType> {
    match parse::expression(&format!("CAST(NULL AS {})", ty.name()))? {
        ast::Expr::Cast { data_type, .. } => Ok(data_type),
        other => Err(SqlError::new(code::INTERNAL_ERROR, format!("{} parsed as {other}", ty.name())).into()),
    }
}

/// The type each parameter's context gave it (`None`: used, but nothing
/// decided its type), or 42P08 if two contexts disagree.
fn param_types(exprs: Vec<&Expr>) -> Result<BTreeMap<usize, Option<DataType>>> {
    let mut types: BTreeMap<usize, Option<DataType>> = BTreeMap::new();
    let mut conflict = None;
    let mut pending = exprs;
    while let Some(expr) = pending.pop() {
        expr.walk(&mut |e| match e {
            Expr::Param { index, ty } => {
                let known = types.entry(*index).or_insert(*ty);
                match (*known, *ty) {
                    (None, Some(_)) => *known = *ty,
                    (Some(a), Some(b)) if !a.same_kind(b) => conflict = Some(*index),
                    _ => {}
                }
            }
            Expr::Subquery(query) => pending.extend(query.exprs()),
            _ => {}
        });
    }
    if let Some(index) = conflict {
        let message = format!("inconsistent types deduced for parameter ${}", index + 1);
        return Err(SqlError::new(code::AMBIGUOUS_PARAMETER, message).into());
    }
    Ok(types)
}

/// Replaces each `$n` of `statement` by `replacement(n - 1)` where it
/// gives one.
fn replace_params(
    statement: &mut ast::Statement,
    replacement: impl FnMut(usize) -> Option<ast::Expr>,
) -> std::result::Result<(), SqlError> {
    struct Replacer<F>(F);
    impl<F: FnMut(usize) -> Option<ast::Expr>> VisitorMut for Replacer<F> {
        type Break = SqlError;

        fn post_visit_expr(&mut self, expr: &mut ast::Expr) -> ControlFlow<SqlError> {
            if let ast::Expr::Value(ast::ValueWithSpan { value: ast::Value::Placeholder(p), .. }) = expr {
                match parameter_index(p) {
                    Ok(index) => {
                        if let Some(replacement) = (self.0)(index) {
                            *expr = replacement;
                        }
                    }
                    Err(error) => return ControlFlow::Break(error),
                }
            }
            ControlFlow::Continue(())
        }
    }
    match statement.visit(&mut Replacer(replacement)) {
        ControlFlow::Break(error) => Err(error),
        ControlFlow::Continue(()) => Ok(()),
    }
}
