//! Binding: names resolved against the catalog, types checked and
//! inferred, sqlparser's AST turned into the expressions and plans the
//! executor runs. Errors are PostgreSQL's (42703 unknown column, 42883
//! operator does not exist, 42803 grouping, …).
//!
//! Literals: an integer literal is `integer` when it fits, else `bigint`;
//! one with a fraction or exponent is `double precision` (PostgreSQL makes
//! it `numeric`, which Seshat does not have yet); a quoted string or NULL
//! has no type until the context gives it one, as in PostgreSQL (`'5' +
//! 1` is 6, `'x' + 1` is 22P02).
//!
//! Parameters (`$n`) are untyped like quoted literals: the context that
//! coerces one records its type in [`Expr::Param`], which is how a
//! prepared statement's parameter types are inferred (`crate::prepare`).

use sqlparser::ast;

use crate::correlated;
use crate::error::{code, Error, SqlError};
use crate::expr::{BinaryOp, Expr};
use crate::from::From;
use crate::functions;
use crate::plan::{AggFunc, Aggregate, Aggregation, JoinKind, OutputColumn, QueryPlan, SelectPlan, SortKey};
use crate::scope::{Relation, Scope};
use crate::subquery::{self, Bound, Planner};
use crate::types::DataType;
use crate::value::Value;

/// A name as PostgreSQL reads it: unquoted names fold to lower case.
pub fn ident(ident: &ast::Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

/// The last part of a possibly qualified name (`public.t` is `t`).
pub fn object_name(name: &ast::ObjectName) -> Result<String, SqlError> {
    match name.0.as_slice() {
        [.., ast::ObjectNamePart::Identifier(last)] if name.0.len() <= 2 => Ok(ident(last)),
        _ => Err(SqlError::unsupported(format!("the name {name}"))),
    }
}

/// A bound expression with its type. `untyped` marks a quoted literal,
/// NULL or a parameter `$n` whose type the context decides.
#[derive(Debug, Clone)]
pub struct Typed {
    pub expr: Expr,
    pub ty: DataType,
    pub untyped: bool,
}

impl Typed {
    pub fn known(expr: Expr, ty: DataType) -> Typed {
        Typed { expr, ty, untyped: false }
    }

    /// An untyped literal as text; anything else as it is.
    pub fn coerce_text(self) -> Result<Typed, SqlError> {
        if self.untyped {
            return self.coerce(DataType::Text);
        }
        Ok(self)
    }

    /// A value of another type where text is wanted: its type's output
    /// text (a `char(n)` loses its padding).
    fn output_text(self) -> Typed {
        if self.untyped || matches!(self.ty, DataType::Text | DataType::Varchar(_)) {
            return self;
        }
        if matches!(self.ty, DataType::Char(_)) {
            return self.char_as_text(DataType::Text);
        }
        // A boolean's cast to text is `true`/`false`, not its output `t`/`f`.
        if self.ty == DataType::Bool {
            return Typed::known(Expr::Cast { expr: Box::new(self.expr), to: DataType::Text }, DataType::Text);
        }
        let expr =
            Expr::Call { function: functions::Function::Text(self.ty), args: vec![self.expr], ty: DataType::Text };
        Typed::known(expr, DataType::Text)
    }

    /// A `char(n)` value where text is wanted loses its padding, as
    /// PostgreSQL's cast from `bpchar` drops trailing blanks.
    fn char_as_text(self, to: DataType) -> Typed {
        if !matches!(self.ty, DataType::Char(_)) || matches!(to, DataType::Char(_)) || !to.is_text() {
            return self;
        }
        let trimmed = Expr::Call {
            function: functions::Function::Trim { leading: false, trailing: true },
            args: vec![self.expr],
            ty: DataType::Text,
        };
        Typed::known(trimmed, to)
    }

    /// This expression as type `to`, for a context that wants it: an
    /// untyped literal is converted now (22P02 if it does not parse), a
    /// typed one must already be of a compatible kind.
    pub fn coerce(self, to: DataType) -> Result<Typed, SqlError> {
        if self.untyped {
            return Ok(match self.expr {
                Expr::Param { index, .. } => Typed::known(Expr::Param { index, ty: Some(to) }, to),
                Expr::Literal(value) => Typed::known(Expr::Literal(value.assign(to)?), to),
                _ => unreachable!("only literals and parameters are untyped"),
            });
        }
        if !self.ty.same_kind(to) {
            return Err(SqlError::new(
                code::DATATYPE_MISMATCH,
                format!("expression is of type {} but {} is expected", self.ty.name(), to.name()),
            ));
        }
        Ok(self.char_as_text(to))
    }

    /// This expression as a value of `to`, the common type of a column
    /// it shares with others ([`DataType::common`]): converted, so that
    /// every value of the column is of that type.
    pub fn unify(self, to: DataType) -> Result<Expr, SqlError> {
        if self.untyped || self.ty == to {
            return Ok(self.coerce(to)?.expr);
        }
        if self.ty.common(to) != Some(to) {
            return Err(SqlError::new(
                code::DATATYPE_MISMATCH,
                format!("expression is of type {} but {} is expected", self.ty.name(), to.name()),
            ));
        }
        Ok(Expr::Cast { expr: Box::new(self.char_as_text(to).expr), to })
    }

    /// This expression as the boolean argument of `what` (NOT, AND,
    /// WHERE, …): an untyped literal is read as a boolean, anything else
    /// must be one.
    pub fn boolean(self, what: &str) -> Result<Typed, SqlError> {
        let operand = if self.untyped { self.coerce(DataType::Bool)? } else { self };
        if operand.ty != DataType::Bool {
            return Err(SqlError::new(
                code::DATATYPE_MISMATCH,
                format!("argument of {what} must be type boolean, not type {}", operand.ty.name()),
            ));
        }
        Ok(operand)
    }
}

/// Where aggregate calls go while binding the output of a grouped query.
struct Grouping<'a> {
    keys: &'a [ast::Expr],
    key_types: &'a [DataType],
    aggregates: Vec<Aggregate>,
}

/// Binds expressions over one scope.
pub struct Binder<'a> {
    scope: &'a Scope,
    /// Set while binding what a grouped query outputs: columns must be
    /// grouping keys, aggregates become references to their results.
    grouping: Option<Grouping<'a>>,
    /// Binds subqueries; without it (DEFAULT, LIMIT), they are refused.
    subqueries: Option<Planner<'a>>,
}

impl<'a> Binder<'a> {
    pub fn new(scope: &'a Scope) -> Self {
        Binder { scope, grouping: None, subqueries: None }
    }

    /// This binder, binding subqueries with `planner`.
    pub fn with_subqueries(mut self, planner: Planner<'a>) -> Self {
        self.subqueries = Some(planner);
        self
    }

    /// Binds a subquery, decorrelating one that reads the outer row
    /// ([`crate::correlated`]).
    fn any_subquery(&mut self, query: &ast::Query) -> Result<Subquery, SqlError> {
        let planner = self.subqueries.ok_or_else(|| SqlError::unsupported("a subquery here"))?;
        let error = match planner(query) {
            Ok(bound) => return Ok(Subquery::Plain(bound)),
            Err(Error::Sql(e)) if e.code == code::UNDEFINED_COLUMN || e.code == code::UNDEFINED_TABLE => e,
            Err(other) => return Err(subquery::error(other)),
        };
        let Some(rewrite) = correlated::rewrite(query, self.scope)? else {
            return Err(subquery::error(Error::Sql(error)));
        };
        let keys = rewrite.outer_sides.iter().map(|e| self.bind(e).map(|t| t.expr)).collect::<Result<Vec<_>, _>>()?;
        let mut residuals = Vec::with_capacity(rewrite.residuals.len());
        for (op, outer_side, inner_on_left) in &rewrite.residuals {
            let op = comparison(op).ok_or_else(|| SqlError::unsupported(format!("the operator {op}")))?;
            residuals.push((op, self.bind(outer_side)?.expr, *inner_on_left));
        }
        let guard = rewrite.guard.as_ref().map(|g| self.condition(g, "WHERE")).transpose()?;
        let keyed = planner(&rewrite.keyed).map_err(subquery::error)?;
        let width = keyed.plan.columns().len() - keys.len() - residuals.len();
        let outer_keys = correlated::Outer { keys, residuals, guard };
        let correlated = match keyed.rows {
            None => None,
            Some(rows) => {
                let unmatched = match &rewrite.unmatched {
                    Some(query) => planner(query).map_err(subquery::error)?.rows.unwrap_or_default(),
                    None => Vec::new(),
                };
                Some(correlated::correlated(outer_keys, rows, width, unmatched)?)
            }
        };
        Ok(Subquery::Correlated { plan: keyed.plan, width, correlated })
    }

    fn scalar_subquery(&mut self, query: &ast::Query) -> Result<Typed, SqlError> {
        let (plan, rows) = match self.any_subquery(query)? {
            Subquery::Plain(bound) => (bound.plan, bound.rows),
            Subquery::Correlated { plan, width, correlated } => {
                one_column(width)?;
                let ty = plan.columns()[0].data_type;
                let expr = match correlated {
                    Some(c) => Expr::Correlated { subquery: Box::new(c), test: correlated::Test::Scalar },
                    None => Expr::Subquery(Box::new(plan)),
                };
                return Ok(Typed::known(expr, ty));
            }
        };
        one_column(plan.columns().len())?;
        let ty = plan.columns()[0].data_type;
        let Some(rows) = rows else { return Ok(Typed::known(Expr::Subquery(Box::new(plan)), ty)) };
        if rows.len() > 1 {
            return Err(SqlError::new(
                code::CARDINALITY_VIOLATION,
                "more than one row returned by a subquery used as an expression",
            ));
        }
        let value = rows.into_iter().next().and_then(|row| row.into_iter().next()).unwrap_or(Value::Null);
        Ok(Typed::known(Expr::Literal(value), ty))
    }

    /// `x [NOT] IN (SELECT …)`: an IN list of its rows' values.
    fn in_subquery(&mut self, expr: &ast::Expr, query: &ast::Query, negated: bool) -> Result<Typed, SqlError> {
        let operand = self.bind(expr)?;
        let subquery = self.any_subquery(query)?;
        let (plan, width) = match &subquery {
            Subquery::Plain(bound) => (&bound.plan, bound.plan.columns().len()),
            Subquery::Correlated { plan, width, .. } => (plan, *width),
        };
        one_column(width)?;
        let ty = plan.columns()[0].data_type;
        let operand = if operand.untyped { operand.coerce(ty)? } else { operand };
        if !operand.ty.same_kind(ty) {
            return Err(no_operator(&format!("{} = {}", operand.ty.name(), ty.name())));
        }
        let Bound { plan, rows } = match subquery {
            Subquery::Plain(bound) => bound,
            Subquery::Correlated { correlated: Some(c), .. } => {
                let test = correlated::Test::In { operand: Box::new(operand.expr), negated };
                return Ok(Typed::known(Expr::Correlated { subquery: Box::new(c), test }, DataType::Bool));
            }
            Subquery::Correlated { plan, correlated: None, .. } => Bound { plan, rows: None },
        };
        let list = match rows {
            Some(rows) => rows.into_iter().filter_map(|row| row.into_iter().next()).map(Expr::Literal).collect(),
            None => vec![Expr::Subquery(Box::new(plan))],
        };
        Ok(Typed::known(Expr::InList { expr: Box::new(operand.expr), list, negated }, DataType::Bool))
    }

    /// `[NOT] EXISTS (SELECT …)`: whether it has rows.
    fn exists(&mut self, query: &ast::Query, negated: bool) -> Result<Typed, SqlError> {
        let expr = match self.any_subquery(query)? {
            Subquery::Plain(Bound { rows: Some(rows), .. }) => Expr::Literal(Value::Bool(rows.is_empty() == negated)),
            Subquery::Plain(Bound { plan, rows: None }) | Subquery::Correlated { plan, correlated: None, .. } => {
                Expr::Subquery(Box::new(plan))
            }
            Subquery::Correlated { correlated: Some(c), .. } => {
                Expr::Correlated { subquery: Box::new(c), test: correlated::Test::Exists { negated } }
            }
        };
        Ok(Typed::known(expr, DataType::Bool))
    }

    /// A condition (WHERE, HAVING): a boolean expression, of which a row
    /// passes only when it is true.
    pub fn condition(&mut self, expr: &ast::Expr, clause: &str) -> Result<Expr, SqlError> {
        Ok(self.bind(expr)?.boolean(clause)?.expr.folded())
    }

    pub fn bind(&mut self, expr: &ast::Expr) -> Result<Typed, SqlError> {
        if let Some(grouping) = &self.grouping {
            if let Some(i) = grouping.keys.iter().position(|key| key == expr) {
                return Ok(Typed::known(Expr::Column(i), grouping.key_types[i]));
            }
        }
        use ast::Expr as E;
        match expr {
            E::Identifier(name) => self.column(None, &ident(name)),
            E::CompoundIdentifier(parts) => match parts.as_slice() {
                [table, column] => self.column(Some(ident(table)), &ident(column)),
                _ => Err(SqlError::unsupported(format!("the name {expr}"))),
            },
            E::Value(value) => literal(&value.value),
            // `DATE '2024-01-02'`: the literal read as that type.
            E::TypedString(typed) => {
                let to = DataType::from_ast(&typed.data_type)?;
                let text = match &typed.value.value {
                    ast::Value::SingleQuotedString(s) | ast::Value::EscapedStringLiteral(s) => s,
                    other => return Err(SqlError::unsupported(format!("the literal {other}"))),
                };
                Ok(Typed::known(Expr::Literal(crate::value::parse_text(text, to)?), to))
            }
            E::Extract { field, expr, .. } => {
                let field = field.to_string().to_lowercase();
                let field = Typed::known(Expr::Literal(Value::Text(field)), DataType::Text);
                let part = functions::bind("date_part", vec![field, self.bind(expr)?])?;
                // PostgreSQL's extract answers numeric where date_part
                // answers double precision.
                let to = DataType::Numeric(None);
                Ok(Typed::known(Expr::Cast { expr: Box::new(part.expr), to }, to))
            }
            E::Nested(inner) => self.bind(inner),
            // Text compares byte by byte here (the C collation) whatever
            // the collation named.
            E::Collate { expr, .. } => self.bind(expr),
            E::UnaryOp { op: ast::UnaryOperator::Not, expr } => {
                let operand = self.bind(expr)?.boolean("NOT")?;
                Ok(Typed::known(Expr::Not(Box::new(operand.expr)), DataType::Bool))
            }
            E::UnaryOp { op: ast::UnaryOperator::Minus, expr } => {
                if let E::Value(ast::ValueWithSpan { value: ast::Value::Number(n, _), .. }) = expr.as_ref() {
                    return literal(&ast::Value::Number(format!("-{n}"), false));
                }
                let operand = self.bind(expr)?;
                let operand = if operand.untyped { operand.coerce(DataType::Float8)? } else { operand };
                if !operand.ty.is_numeric() {
                    return Err(no_operator(&format!("- {}", operand.ty.name())));
                }
                Ok(Typed::known(Expr::Negate(Box::new(operand.expr), operand.ty), operand.ty))
            }
            E::UnaryOp { op: ast::UnaryOperator::Plus, expr } => self.bind(expr),
            E::BinaryOp { left, op, right } => self.binary(left, op, right),
            E::IsNull(inner) | E::IsNotNull(inner) => {
                let negated = matches!(expr, E::IsNotNull(_));
                let operand = self.bind(inner)?;
                Ok(Typed::known(Expr::IsNull { expr: Box::new(operand.expr), negated }, DataType::Bool))
            }
            E::Cast { kind: ast::CastKind::Cast | ast::CastKind::DoubleColon, expr, data_type, format: None } => {
                if let Some(lookup) = object_identifier_cast(expr, data_type)? {
                    return self.bind(&lookup);
                }
                let to = DataType::from_ast(data_type)?;
                let operand = self.bind(expr)?;
                match (operand.untyped, &operand.expr) {
                    (true, Expr::Literal(value)) => {
                        return Ok(Typed::known(Expr::Literal(value.clone().cast(to)?), to));
                    }
                    // `$1::int` declares the parameter's type.
                    (true, Expr::Param { .. }) => return operand.coerce(to),
                    _ => {}
                }
                // To text: the source type's output text, then the
                // target's length.
                let operand = if to.is_text() && !matches!(to, DataType::Char(_)) {
                    operand.output_text()
                } else {
                    operand.char_as_text(to)
                };
                Ok(Typed::known(Expr::Cast { expr: Box::new(operand.expr), to }, to))
            }
            E::Between { expr, negated, low, high } => {
                let lower = self.binary(expr, &ast::BinaryOperator::GtEq, low)?.expr;
                let upper = self.binary(expr, &ast::BinaryOperator::LtEq, high)?.expr;
                let both = Expr::Binary {
                    op: BinaryOp::And,
                    left: Box::new(lower),
                    right: Box::new(upper),
                    ty: DataType::Bool,
                };
                let expr = if *negated { Expr::Not(Box::new(both)) } else { both };
                Ok(Typed::known(expr, DataType::Bool))
            }
            E::In { expr, target: ast::InTarget::List(list), negated, .. } => {
                let operand = self.bind(expr)?;
                let mut items = Vec::with_capacity(list.len());
                let mut ty = operand.ty;
                let typed_operand = if operand.untyped {
                    let first = list.first().map(|e| self.bind(e)).transpose()?;
                    ty = first.filter(|f| !f.untyped).map_or(DataType::Text, |f| f.ty);
                    operand.coerce(ty)?
                } else {
                    operand
                };
                for item in list {
                    let item = self.bind(item)?.coerce(ty).map_err(|_| no_operator(&format!("{} = …", ty.name())))?;
                    items.push(item.expr);
                }
                let expr = Expr::InList { expr: Box::new(typed_operand.expr), list: items, negated: *negated };
                Ok(Typed::known(expr, DataType::Bool))
            }
            E::Like { negated, any: false, expr, pattern, escape_char: None } => {
                self.like(expr, pattern, *negated, false)
            }
            E::ILike { negated, any: false, expr, pattern, escape_char: None } => {
                self.like(expr, pattern, *negated, true)
            }
            E::Case { operand, conditions, else_result, .. } => {
                self.case(operand.as_deref(), conditions, else_result.as_deref())
            }
            E::Function(function) => self.function(function),
            E::Substring { expr, substring_from, substring_for, .. } => {
                let mut args = vec![self.bind(expr)?];
                args.push(match substring_from {
                    Some(from) => self.bind(from)?,
                    None => Typed::known(Expr::Literal(Value::Int(1)), DataType::Int4),
                });
                if let Some(count) = substring_for {
                    args.push(self.bind(count)?);
                }
                functions::bind("substr", args)
            }
            E::Trim { expr, trim_where, trim_what, trim_characters: None } => {
                let name = match trim_where {
                    None | Some(ast::TrimWhereField::Both) => "btrim",
                    Some(ast::TrimWhereField::Leading) => "ltrim",
                    Some(ast::TrimWhereField::Trailing) => "rtrim",
                };
                let mut args = vec![self.bind(expr)?];
                if let Some(what) = trim_what {
                    args.push(self.bind(what)?);
                }
                functions::bind(name, args)
            }
            E::Ceil { expr, field: ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime) } => {
                functions::bind("ceil", vec![self.bind(expr)?])
            }
            E::Floor { expr, field: ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime) } => {
                functions::bind("floor", vec![self.bind(expr)?])
            }
            E::Position { expr, r#in } => {
                let args = vec![self.bind(r#in)?, self.bind(expr)?];
                functions::bind("strpos", args)
            }
            E::Subquery(query) => self.scalar_subquery(query),
            E::In { expr, target: ast::InTarget::Subquery(subquery), negated, global: false } => {
                self.in_subquery(expr, subquery, *negated)
            }
            E::Exists { subquery, negated } => self.exists(subquery, *negated),
            other => Err(SqlError::unsupported(format!("the expression {other}"))),
        }
    }

    fn like(
        &mut self,
        expr: &ast::Expr,
        pattern: &ast::Expr,
        negated: bool,
        case_insensitive: bool,
    ) -> Result<Typed, SqlError> {
        let text = self.bind(expr)?.coerce(DataType::Text)?;
        let pattern = self.bind(pattern)?.coerce(DataType::Text)?;
        if !text.ty.is_text() || !pattern.ty.is_text() {
            return Err(no_operator(&format!("{} ~~ {}", text.ty.name(), pattern.ty.name())));
        }
        let like = Expr::Like { expr: Box::new(text.expr), pattern: Box::new(pattern.expr), negated, case_insensitive };
        Ok(Typed::known(like, DataType::Bool))
    }

    fn column(&self, qualifier: Option<String>, name: &str) -> Result<Typed, SqlError> {
        if let (None, Some(merged)) = (&qualifier, self.scope.merged_column(name)) {
            if self.grouping.is_some() {
                return Err(SqlError::new(
                    code::GROUPING_ERROR,
                    format!("column \"{name}\" must appear in the GROUP BY clause or be used in an aggregate function"),
                ));
            }
            // The side whose rows are all kept; both for a FULL join.
            let expr = match merged.kind {
                JoinKind::Inner | JoinKind::Left => Expr::Column(merged.left),
                JoinKind::Right => Expr::Column(merged.right),
                JoinKind::Full => Expr::Coalesce(vec![Expr::Column(merged.left), Expr::Column(merged.right)]),
            };
            return Ok(Typed::known(expr, merged.data_type));
        }
        let column = self.scope.resolve(qualifier.as_deref(), name)?;
        if self.grouping.is_some() {
            return Err(SqlError::new(
                code::GROUPING_ERROR,
                format!(
                    "column \"{}.{name}\" must appear in the GROUP BY clause or be used in an aggregate function",
                    column.qualifier
                ),
            ));
        }
        Ok(Typed::known(Expr::Column(column.position), column.data_type))
    }

    fn binary(&mut self, left: &ast::Expr, op: &ast::BinaryOperator, right: &ast::Expr) -> Result<Typed, SqlError> {
        use ast::BinaryOperator as B;
        if let B::PGCustomBinaryOperator(parts) = op {
            return match operator_named(parts) {
                Some(op) => self.binary(left, &op, right),
                None => Err(SqlError::unsupported(format!("the operator {op}"))),
            };
        }
        let (left, right) = (self.bind(left)?, self.bind(right)?);
        let op = match comparison(op) {
            Some(comparison) => comparison,
            None => match op {
                B::Plus => BinaryOp::Add,
                B::Minus => BinaryOp::Sub,
                B::Multiply => BinaryOp::Mul,
                B::Divide => BinaryOp::Div,
                B::Modulo => BinaryOp::Mod,
                B::And => BinaryOp::And,
                B::Or => BinaryOp::Or,
                B::StringConcat => BinaryOp::Concat,
                // `^` is PostgreSQL's exponentiation: power(a, b).
                B::PGExp => return functions::bind("power", vec![left, right]),
                B::PGRegexMatch => return functions::bind("~", vec![left, right]),
                B::PGRegexIMatch => return functions::bind("~*", vec![left, right]),
                B::PGRegexNotMatch => return functions::bind("!~", vec![left, right]),
                B::PGRegexNotIMatch => return functions::bind("!~*", vec![left, right]),
                other => return Err(SqlError::unsupported(format!("the operator {other}"))),
            },
        };
        let symbol = |op: BinaryOp| match op {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Eq => "=",
            BinaryOp::NotEq => "<>",
            BinaryOp::Lt => "<",
            BinaryOp::LtEq => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::GtEq => ">=",
            BinaryOp::And => "AND",
            BinaryOp::Or => "OR",
            BinaryOp::Concat => "||",
        };
        // An untyped side takes the other side's type (text for ||).
        let (left, right) = if op == BinaryOp::Concat {
            (left.coerce_text()?.output_text(), right.coerce_text()?.output_text())
        } else {
            (left, right)
        };
        let (left, right) = match (left.untyped, right.untyped) {
            (true, false) => (left.coerce(right.ty)?, right),
            (false, true) => {
                let ty = left.ty;
                (left, right.coerce(ty)?)
            }
            _ => (left, right),
        };
        let mismatch = || no_operator(&format!("{} {} {}", left.ty.name(), symbol(op), right.ty.name()));
        let ty = match op {
            BinaryOp::And | BinaryOp::Or => {
                let (left, right) = (left.boolean(symbol(op))?, right.boolean(symbol(op))?);
                let expr =
                    Expr::Binary { op, left: Box::new(left.expr), right: Box::new(right.expr), ty: DataType::Bool };
                return Ok(Typed::known(expr, DataType::Bool));
            }
            BinaryOp::Concat => DataType::Text,
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => {
                match (left.ty, op, right.ty) {
                    (l, _, r) if l.is_numeric() && r.is_numeric() => l.wider(r),
                    (DataType::Date, BinaryOp::Add | BinaryOp::Sub, r) if r.is_integer() => DataType::Date,
                    (l, BinaryOp::Add, DataType::Date) if l.is_integer() => DataType::Date,
                    (DataType::Date, BinaryOp::Sub, DataType::Date) => DataType::Int4,
                    (l, BinaryOp::Add | BinaryOp::Sub, r) if l.is_datetime() || r.is_datetime() => {
                        return Err(SqlError::unsupported("interval arithmetic (the type interval)"))
                    }
                    _ => return Err(mismatch()),
                }
            }
            _ => {
                if !left.ty.same_kind(right.ty) {
                    return Err(mismatch());
                }
                DataType::Bool
            }
        };
        let expr = Expr::Binary { op, left: Box::new(left.expr), right: Box::new(right.expr), ty };
        Ok(Typed::known(expr, ty))
    }

    fn case(
        &mut self,
        operand: Option<&ast::Expr>,
        conditions: &[ast::CaseWhen],
        otherwise: Option<&ast::Expr>,
    ) -> Result<Typed, SqlError> {
        let operand = operand.map(|o| self.bind(o)).transpose()?;
        let mut results = Vec::new();
        let mut branches = Vec::new();
        for when in conditions {
            let condition = self.bind(&when.condition)?;
            let condition = match &operand {
                Some(operand) if condition.untyped => condition.coerce(operand.ty)?,
                None => condition.boolean("CASE/WHEN")?,
                Some(_) => condition,
            };
            branches.push(condition.expr);
            results.push(self.bind(&when.result)?);
        }
        let otherwise = otherwise.map(|o| self.bind(o)).transpose()?;
        let mut typed = results.iter().chain(otherwise.iter()).filter(|r| !r.untyped).map(|r| r.ty);
        let ty = match typed.next() {
            None => DataType::Text,
            Some(first) => typed.try_fold(first, |ty, next| {
                ty.common(next).ok_or_else(|| {
                    SqlError::new(
                        code::DATATYPE_MISMATCH,
                        // PostgreSQL names the later branch's type first.
                        format!("CASE types {} and {} cannot be matched", next.name(), ty.name()),
                    )
                })
            })?,
        };
        let mut coerced = Vec::with_capacity(results.len());
        for result in results {
            coerced.push(result.unify(ty)?);
        }
        let otherwise = otherwise.map(|o| o.unify(ty)).transpose()?;
        let expr = Expr::Case {
            operand: operand.map(|o| Box::new(o.expr)),
            branches: branches.into_iter().zip(coerced).collect(),
            otherwise: otherwise.map(Box::new),
        };
        Ok(Typed::known(expr, ty))
    }

    fn function(&mut self, function: &ast::Function) -> Result<Typed, SqlError> {
        let name = object_name(&function.name)?;
        if let Some(lookup) = definition_lookup(&name, function)? {
            return self.bind(&lookup);
        }
        if let ast::FunctionArguments::Subquery(query) = &function.args {
            if name == "array" {
                return self.scalar_subquery(&array_as_text(query)?);
            }
        }
        if let Some(now) = statement_time(&name, &function.args) {
            return Ok(now);
        }
        let ast::FunctionArguments::List(list) = &function.args else {
            return Err(SqlError::unsupported(format!("the function call {function}")));
        };
        let distinct = matches!(list.duplicate_treatment, Some(ast::DuplicateTreatment::Distinct));
        let mut star = false;
        let mut args = Vec::new();
        for arg in &list.args {
            match arg {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => args.push(e),
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard) => star = true,
                other => return Err(SqlError::unsupported(format!("the argument {other}"))),
            }
        }
        if let Some(func) = AggFunc::named(&name) {
            return self.aggregate(func, &args, star, distinct, &name);
        }
        let bound: Vec<Typed> = args.iter().map(|a| self.bind(a)).collect::<Result<_, _>>()?;
        functions::bind(&name, bound)
    }

    fn aggregate(
        &mut self,
        func: AggFunc,
        args: &[&ast::Expr],
        star: bool,
        distinct: bool,
        name: &str,
    ) -> Result<Typed, SqlError> {
        let Some(grouping) = self.grouping.as_ref() else {
            return Err(SqlError::new(
                code::GROUPING_ERROR,
                format!("aggregate functions are not allowed here ({name})"),
            ));
        };
        let offset = grouping.keys.len();
        // The argument is over the input rows, not the groups.
        let mut input = Binder { scope: self.scope, grouping: None, subqueries: self.subqueries };
        let mut separator = None;
        let arg = match (star, args) {
            (true, []) if func == AggFunc::Count => None,
            (false, [arg]) if func != AggFunc::StringAgg => Some(input.bind(arg)?),
            // string_agg(value, delimiter): the delimiter is a constant.
            (false, [arg, delimiter]) if func == AggFunc::StringAgg => {
                let delimiter = constant(delimiter)?.coerce(DataType::Text)?.expr.eval(&[])?;
                separator = Some(match delimiter {
                    Value::Text(s) => s,
                    _ => String::new(),
                });
                Some(input.bind(arg)?.coerce_text()?)
            }
            _ => {
                return Err(SqlError::new(code::UNDEFINED_FUNCTION, format!("function {name} has the wrong arguments")))
            }
        };
        let ty =
            func.result_type(arg.as_ref().map(|a| if a.untyped { DataType::Text } else { a.ty })).ok_or_else(|| {
                SqlError::new(
                    code::UNDEFINED_FUNCTION,
                    format!("function {name}({}) does not exist", arg.as_ref().map_or("*".into(), |a| a.ty.name())),
                )
            })?;
        let grouping = self.grouping.as_mut().expect("checked above");
        grouping.aggregates.push(Aggregate { func, arg: arg.map(|a| a.expr), distinct, separator, ty });
        Ok(Typed::known(Expr::Column(offset + grouping.aggregates.len() - 1), ty))
    }
}

/// Whether a call passes no arguments (`f()` or `current_user`).
pub(crate) fn no_arguments(args: &ast::FunctionArguments) -> bool {
    match args {
        ast::FunctionArguments::None => true,
        ast::FunctionArguments::List(list) => list.args.is_empty(),
        ast::FunctionArguments::Subquery(_) => false,
    }
}

/// `now()`, `current_timestamp`, `current_date`, `localtimestamp` and
/// their kin: the statement's time ([`crate::datetime`]), as a constant.
fn statement_time(name: &str, args: &ast::FunctionArguments) -> Option<Typed> {
    let no_args = no_arguments(args);
    let with_parens = matches!(args, ast::FunctionArguments::List(_));
    let ty = match name {
        "now" | "transaction_timestamp" | "statement_timestamp" | "clock_timestamp" if with_parens => {
            DataType::Timestamptz
        }
        "current_timestamp" if !with_parens => DataType::Timestamptz,
        "localtimestamp" if !with_parens => DataType::Timestamp,
        "current_date" if !with_parens => DataType::Date,
        _ => return None,
    };
    if !no_args {
        return None;
    }
    // Read only for these names: reading marks the statement as
    // depending on its time.
    let now = crate::datetime::statement_micros();
    let value = match ty {
        DataType::Date => Value::Date(crate::datetime::timestamp_to_date(now).ok()?),
        _ => Value::Timestamp(now),
    };
    Some(Typed::known(Expr::Literal(value), ty))
}

/// A subquery as bound: run on its own, or decorrelated.
enum Subquery {
    Plain(Bound),
    /// `plan`'s first `width` columns are the subquery's; the rows are
    /// there when the statement runs.
    Correlated {
        plan: QueryPlan,
        width: usize,
        correlated: Option<correlated::Correlated>,
    },
}

/// `OPERATOR(pg_catalog.~)`: the operator named, if Seshat has it.
fn operator_named(parts: &[String]) -> Option<ast::BinaryOperator> {
    use ast::BinaryOperator as B;
    let symbol = match parts {
        [schema, symbol] if schema.eq_ignore_ascii_case("pg_catalog") => symbol,
        [symbol] => symbol,
        _ => return None,
    };
    Some(match symbol.as_str() {
        "=" => B::Eq,
        "<>" | "!=" => B::NotEq,
        "<" => B::Lt,
        "<=" => B::LtEq,
        ">" => B::Gt,
        ">=" => B::GtEq,
        "+" => B::Plus,
        "-" => B::Minus,
        "*" => B::Multiply,
        "/" => B::Divide,
        "%" => B::Modulo,
        "||" => B::StringConcat,
        "~" => B::PGRegexMatch,
        "~*" => B::PGRegexIMatch,
        "!~" => B::PGRegexNotMatch,
        "!~*" => B::PGRegexNotIMatch,
        _ => return None,
    })
}

/// `ARRAY(SELECT x …)` as the scalar subquery that writes its values as
/// PostgreSQL's text form of an array (`{a,b}`): Seshat has no array
/// type, and catalog queries only print such arrays.
fn array_as_text(query: &ast::Query) -> Result<ast::Query, SqlError> {
    let ast::SetExpr::Select(select) = query.body.as_ref() else {
        return Err(SqlError::unsupported("ARRAY over a set operation"));
    };
    let [ast::SelectItem::UnnamedExpr(item) | ast::SelectItem::ExprWithAlias { expr: item, .. }] =
        select.projection.as_slice()
    else {
        return Err(SqlError::new(code::SYNTAX_ERROR, "subquery must return only one column"));
    };
    if query.limit_clause.is_some() {
        return Err(SqlError::unsupported("ARRAY over a subquery with LIMIT"));
    }
    let elements =
        crate::parse::expression(&format!("coalesce('{{' || string_agg(CAST({item} AS text), ',') || '}}', '{{}}')"))?;
    let mut select = select.as_ref().clone();
    select.projection = vec![ast::SelectItem::UnnamedExpr(elements)];
    Ok(ast::Query { body: Box::new(ast::SetExpr::Select(Box::new(select))), order_by: None, ..query.clone() })
}

/// The catalog functions that look something up, as the scalar subquery
/// over the system catalog ([`crate::system`]) that does:
/// `pg_get_indexdef(oid, …)`, `pg_get_constraintdef(oid, …)` and
/// `pg_get_viewdef(oid, …)` a definition; `to_regclass(name)`,
/// `to_regtype(name)`, `to_regnamespace(name)` an OID (NULL if none).
fn definition_lookup(name: &str, function: &ast::Function) -> Result<Option<ast::Expr>, SqlError> {
    let ast::FunctionArguments::List(list) = &function.args else { return Ok(None) };
    let Some(ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(arg))) = list.args.first() else {
        return Ok(None);
    };
    let lookup = match name {
        "pg_get_indexdef" | "pg_get_constraintdef" | "pg_get_viewdef" => {
            format!("(SELECT definition FROM pg_catalog.seshat_definitions WHERE oid = {arg})")
        }
        "to_regclass" => format!("(SELECT oid FROM pg_catalog.pg_class WHERE relname = {arg})"),
        "to_regtype" => {
            format!("(SELECT oid FROM pg_catalog.pg_type WHERE typname = {arg} OR format_type(oid, NULL) = {arg})")
        }
        "to_regnamespace" => format!("(SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = {arg})"),
        _ => return Ok(None),
    };
    Ok(Some(crate::parse::expression(&lookup)?))
}

/// A cast to `regclass`, `regtype` or `regnamespace` as the lookup it
/// is: from an OID, the name (the type's SQL name for regtype); from a
/// name (a quoted literal), the OID.
fn object_identifier_cast(expr: &ast::Expr, data_type: &ast::DataType) -> Result<Option<ast::Expr>, SqlError> {
    let kind = match data_type {
        ast::DataType::Regclass => "regclass".to_string(),
        ast::DataType::Custom(name, modifiers) if modifiers.is_empty() => {
            name.0.last().and_then(|p| p.as_ident()).map(ident).unwrap_or_default()
        }
        _ => return Ok(None),
    };
    if !matches!(kind.as_str(), "regclass" | "regtype" | "regnamespace") {
        return Ok(None);
    }
    let literal = match expr {
        ast::Expr::Value(ast::ValueWithSpan { value: ast::Value::SingleQuotedString(s), .. }) => Some(s),
        _ => None,
    };
    let quoted = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let lookup = match (kind.as_str(), literal) {
        ("regclass", Some(name)) => {
            let name = name.strip_prefix("public.").unwrap_or(name).trim_matches('"');
            format!("(SELECT oid FROM pg_catalog.pg_class WHERE relname = {})", quoted(name))
        }
        ("regtype", Some(name)) => {
            format!(
                "(SELECT oid FROM pg_catalog.pg_type WHERE typname = {0} OR format_type(oid, NULL) = {0})",
                quoted(name)
            )
        }
        ("regnamespace", Some(name)) => {
            format!("(SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = {})", quoted(name))
        }
        ("regclass", None) => format!("(SELECT relname FROM pg_catalog.pg_class WHERE oid = {expr})"),
        ("regtype", None) => format!("pg_catalog.format_type({expr}, NULL)"),
        _ => format!("(SELECT nspname FROM pg_catalog.pg_namespace WHERE oid = {expr})"),
    };
    Ok(Some(crate::parse::expression(&lookup)?))
}

/// The comparison `op` is, if it is one.
fn comparison(op: &ast::BinaryOperator) -> Option<BinaryOp> {
    use ast::BinaryOperator as B;
    Some(match op {
        B::Eq => BinaryOp::Eq,
        B::NotEq => BinaryOp::NotEq,
        B::Lt => BinaryOp::Lt,
        B::LtEq => BinaryOp::LtEq,
        B::Gt => BinaryOp::Gt,
        B::GtEq => BinaryOp::GtEq,
        _ => return None,
    })
}

/// 42601 unless a subquery used as an expression has one column.
fn one_column(width: usize) -> Result<(), SqlError> {
    if width != 1 {
        return Err(SqlError::new(code::SYNTAX_ERROR, "subquery must return only one column"));
    }
    Ok(())
}

fn no_operator(signature: &str) -> SqlError {
    SqlError::new(code::UNDEFINED_FUNCTION, format!("operator does not exist: {signature}"))
}

fn literal(value: &ast::Value) -> Result<Typed, SqlError> {
    Ok(match value {
        ast::Value::Number(text, _) => {
            // As in PostgreSQL: an integer that fits is integer or
            // bigint, any other number numeric.
            if let Ok(n) = text.parse::<i64>() {
                let ty = if i32::try_from(n).is_ok() { DataType::Int4 } else { DataType::Int8 };
                Typed::known(Expr::Literal(Value::Int(n)), ty)
            } else {
                let value = crate::numeric::parse(text)?.ok_or_else(|| {
                    SqlError::new(code::INVALID_TEXT_REPRESENTATION, format!("invalid number \"{text}\""))
                })?;
                Typed::known(Expr::Literal(Value::Numeric(value)), DataType::Numeric(None))
            }
        }
        ast::Value::SingleQuotedString(s) | ast::Value::EscapedStringLiteral(s) => {
            Typed { expr: Expr::Literal(Value::Text(s.clone())), ty: DataType::Text, untyped: true }
        }
        ast::Value::DollarQuotedString(s) => {
            Typed { expr: Expr::Literal(Value::Text(s.value.clone())), ty: DataType::Text, untyped: true }
        }
        ast::Value::Boolean(b) => Typed::known(Expr::Literal(Value::Bool(*b)), DataType::Bool),
        ast::Value::Null => Typed { expr: Expr::Literal(Value::Null), ty: DataType::Text, untyped: true },
        ast::Value::Placeholder(p) => {
            let index = parameter_index(p)?;
            Typed { expr: Expr::Param { index, ty: None }, ty: DataType::Text, untyped: true }
        }
        other => return Err(SqlError::unsupported(format!("the literal {other}"))),
    })
}

/// The zero-based position of parameter `$n`.
pub fn parameter_index(placeholder: &str) -> Result<usize, SqlError> {
    placeholder
        .strip_prefix('$')
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&n| (1..=u16::MAX as usize).contains(&n))
        .map(|n| n - 1)
        .ok_or_else(|| SqlError::new(code::SYNTAX_ERROR, format!("syntax error at or near \"{placeholder}\"")))
}

/// A constant expression (LIMIT, OFFSET, DEFAULT).
pub fn constant(expr: &ast::Expr) -> Result<Typed, SqlError> {
    Binder::new(&Scope::default()).bind(expr)
}

/// The name PostgreSQL gives an output column without an alias.
pub fn output_name(expr: &ast::Expr) -> String {
    match expr {
        ast::Expr::Identifier(name) => ident(name),
        ast::Expr::CompoundIdentifier(parts) => parts.last().map(ident).unwrap_or_default(),
        ast::Expr::Function(f) => object_name(&f.name).unwrap_or_else(|_| "?column?".into()),
        ast::Expr::Cast { expr, .. } | ast::Expr::Nested(expr) => match output_name(expr).as_str() {
            "?column?" => "?column?".into(),
            name => name.to_string(),
        },
        ast::Expr::Case { .. } => "case".into(),
        _ => "?column?".into(),
    }
}

/// Binds a SELECT over the bound FROM clause `from`, its subqueries with
/// `subqueries`.
pub fn select(
    from: From,
    select: &ast::Select,
    order_by: Option<&ast::OrderBy>,
    limit: Option<&ast::LimitClause>,
    subqueries: Planner<'_>,
) -> Result<SelectPlan, SqlError> {
    let scope = from.scope.clone();
    let mut binder = Binder::new(&scope).with_subqueries(subqueries);
    let filter = select.selection.as_ref().map(|w| binder.condition(w, "WHERE")).transpose()?;
    let group_keys: Vec<ast::Expr> = match &select.group_by {
        ast::GroupByExpr::Expressions(exprs, modifiers) if modifiers.is_empty() => exprs.clone(),
        other => return Err(SqlError::unsupported(format!("{other}"))),
    };
    // Output items: (name, AST) with `*` expanded.
    let mut items: Vec<(String, ast::Expr)> = Vec::new();
    for item in &select.projection {
        match item {
            ast::SelectItem::UnnamedExpr(expr) => items.push((output_name(expr), expr.clone())),
            ast::SelectItem::ExprWithAlias { expr, alias } => items.push((ident(alias), expr.clone())),
            ast::SelectItem::Wildcard(_) if !scope.relations().is_empty() => {
                // USING columns once, first; then every other column.
                let mut hidden = std::collections::HashSet::new();
                for merged in scope.merged() {
                    if hidden.insert(merged.left) {
                        items.push((
                            merged.name.clone(),
                            ast::Expr::Identifier(ast::Ident::with_quote('"', merged.name.clone())),
                        ));
                    }
                    hidden.insert(merged.right);
                }
                for (relation, range) in scope.relations().iter().zip(scope.ranges()) {
                    let columns = columns_of(relation).into_iter().zip(range);
                    items.extend(columns.filter(|(_, position)| !hidden.contains(position)).map(|(item, _)| item));
                }
            }
            ast::SelectItem::QualifiedWildcard(ast::SelectItemQualifiedWildcardKind::ObjectName(name), _) => {
                let qualifier = object_name(name)?;
                let relation = scope.relations().iter().find(|r| r.qualifier == qualifier).ok_or_else(|| {
                    SqlError::new(code::UNDEFINED_TABLE, format!("missing FROM-clause entry for table \"{qualifier}\""))
                })?;
                items.extend(columns_of(relation));
            }
            ast::SelectItem::Wildcard(_) => {
                return Err(SqlError::new(code::SYNTAX_ERROR, "SELECT * with no tables specified is not valid"))
            }
            other => return Err(SqlError::unsupported(format!("the select item {other}"))),
        }
    }
    let grouped = !group_keys.is_empty() || items.iter().any(|(_, e)| has_aggregate(e)) || select.having.is_some();
    let mut key_types = Vec::new();
    let mut keys = Vec::new();
    for key in &group_keys {
        let key = resolve_ordinal_or_alias(key, &items)?;
        let bound = binder.bind(&key)?;
        key_types.push(bound.ty);
        keys.push(bound.expr);
    }
    let group_keys_resolved: Vec<ast::Expr> =
        group_keys.iter().map(|k| resolve_ordinal_or_alias(k, &items)).collect::<Result<_, _>>()?;
    let mut output = Binder { scope: &scope, grouping: None, subqueries: binder.subqueries };
    if grouped {
        output.grouping = Some(Grouping { keys: &group_keys_resolved, key_types: &key_types, aggregates: Vec::new() });
    }
    let mut projection = Vec::new();
    let mut columns = Vec::new();
    for (name, expr) in &items {
        let bound = output.bind(expr)?;
        let bound = bound.coerce_text()?;
        columns.push(OutputColumn { name: name.clone(), data_type: bound.ty });
        projection.push(bound.expr);
    }
    let having = select.having.as_ref().map(|h| output.condition(h, "HAVING")).transpose()?;
    let mut sort = Vec::new();
    if let Some(order_by) = order_by {
        let ast::OrderByKind::Expressions(exprs) = &order_by.kind else {
            return Err(SqlError::unsupported("ORDER BY ALL"));
        };
        for key in exprs {
            let descending = match key.options.sort {
                None | Some(ast::OrderBySort::Asc) => false,
                Some(ast::OrderBySort::Desc) => true,
                Some(ast::OrderBySort::Using(_)) => return Err(SqlError::unsupported("ORDER BY … USING")),
            };
            let expr = match output_position(&key.expr, &items)? {
                Some(i) => projection[i].clone(),
                None => output.bind(&key.expr)?.expr,
            };
            sort.push(SortKey { expr, descending, nulls_first: key.options.nulls_first.unwrap_or(descending) });
        }
    }
    let (limit, offset) = limit_offset(limit)?;
    let aggregation = output.grouping.take().map(|g| Aggregation { keys, aggregates: g.aggregates, having });
    let distinct = match &select.distinct {
        None | Some(ast::Distinct::All) => false,
        Some(ast::Distinct::Distinct) => true,
        Some(other) => return Err(SqlError::unsupported(format!("{other}"))),
    };
    let (source, filter) = from.plan(filter);
    Ok(SelectPlan { source, filter, aggregation, projection, columns, distinct, sort, limit, offset })
}

/// The output items `*` stands for in `relation`: each column, qualified.
fn columns_of(relation: &Relation) -> Vec<(String, ast::Expr)> {
    relation
        .columns
        .iter()
        .map(|(name, _)| {
            let qualified = ast::Expr::CompoundIdentifier(vec![
                ast::Ident::with_quote('"', relation.qualifier.clone()),
                ast::Ident::with_quote('"', name.clone()),
            ]);
            (name.clone(), qualified)
        })
        .collect()
}

/// `GROUP BY 1` and `GROUP BY alias` name output columns.
fn resolve_ordinal_or_alias(key: &ast::Expr, items: &[(String, ast::Expr)]) -> Result<ast::Expr, SqlError> {
    Ok(match output_position(key, items)? {
        Some(i) => items[i].1.clone(),
        None => key.clone(),
    })
}

/// The output column an ORDER BY or GROUP BY key names by ordinal or by
/// an alias that is not also an input column... (PostgreSQL prefers the
/// output name in ORDER BY).
fn output_position(key: &ast::Expr, items: &[(String, ast::Expr)]) -> Result<Option<usize>, SqlError> {
    match key {
        ast::Expr::Value(ast::ValueWithSpan { value: ast::Value::Number(n, _), .. }) => {
            let position: usize = n.parse().unwrap_or(0);
            if position == 0 || position > items.len() {
                return Err(SqlError::new(
                    code::INVALID_COLUMN_REFERENCE,
                    format!("ORDER BY position {n} is not in select list"),
                ));
            }
            Ok(Some(position - 1))
        }
        ast::Expr::Identifier(name) => {
            let name = ident(name);
            Ok(items
                .iter()
                .position(|(output, expr)| *output == name && !matches!(expr, ast::Expr::Identifier(_)))
                .or_else(|| items.iter().position(|(output, _)| *output == name)))
        }
        _ => Ok(None),
    }
}

/// Whether `expr` calls an aggregate function (outside subqueries).
pub(crate) fn has_aggregate(expr: &ast::Expr) -> bool {
    use ast::Expr as E;
    match expr {
        E::Function(function) => {
            let aggregate = object_name(&function.name).ok().and_then(|name| AggFunc::named(&name)).is_some();
            aggregate
                || match &function.args {
                    ast::FunctionArguments::List(list) => list.args.iter().any(|arg| match arg {
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => has_aggregate(e),
                        _ => false,
                    }),
                    _ => false,
                }
        }
        E::BinaryOp { left, right, .. } => has_aggregate(left) || has_aggregate(right),
        E::UnaryOp { expr, .. } | E::Nested(expr) | E::Cast { expr, .. } | E::IsNull(expr) | E::IsNotNull(expr) => {
            has_aggregate(expr)
        }
        E::Between { expr, low, high, .. } => has_aggregate(expr) || has_aggregate(low) || has_aggregate(high),
        E::In { expr, target: ast::InTarget::List(list), .. } => has_aggregate(expr) || list.iter().any(has_aggregate),
        E::Like { expr, pattern, .. } | E::ILike { expr, pattern, .. } => has_aggregate(expr) || has_aggregate(pattern),
        E::Case { operand, conditions, else_result, .. } => {
            operand.as_deref().is_some_and(has_aggregate)
                || conditions.iter().any(|c| has_aggregate(&c.condition) || has_aggregate(&c.result))
                || else_result.as_deref().is_some_and(has_aggregate)
        }
        _ => false,
    }
}

pub fn limit_offset(limit: Option<&ast::LimitClause>) -> Result<(Option<Expr>, Option<Expr>), SqlError> {
    let count = |expr: &ast::Expr| -> Result<Expr, SqlError> { Ok(constant(expr)?.coerce(DataType::Int8)?.expr) };
    match limit {
        None => Ok((None, None)),
        Some(ast::LimitClause::LimitOffset { limit, offset, limit_by }) if limit_by.is_empty() => {
            let limit = limit.as_ref().map(count).transpose()?;
            let offset = offset.as_ref().map(|o| count(&o.value)).transpose()?;
            Ok((limit, offset))
        }
        Some(other) => Err(SqlError::unsupported(format!("{other}"))),
    }
}
