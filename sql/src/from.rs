//! FROM: tables and joins bound into a scope, and the planner's rules for
//! them, applied in this order:
//!
//! 1. **Predicate pushdown.** When every join is inner (including CROSS
//!    and comma joins), WHERE and the ON conditions are one set of
//!    conjuncts. A conjunct over one table filters that table's scan
//!    (where [`crate::access`] turns key comparisons into point reads and
//!    range scans); one over no table stays a filter over the result.
//! 2. **Join ordering.** Still for inner joins only: start from the first
//!    table with a pushed filter (else the first table), then repeatedly
//!    join the first table (in FROM order) that an equality connects to
//!    those joined so far, else one any conjunct connects, else the next
//!    one (a cross product only when nothing connects them). A chain of
//!    dozens of tables joined by equalities never multiplies tables out.
//! 3. **Hash joins.** Each join uses its conjuncts of the form `left
//!    expression = right expression` as hash keys (numbers hashed as
//!    doubles, so `int = bigint` and `int = real` pair up); every
//!    conjunct, keys included, is still checked on each pair.
//! 4. The joined rows are put back in FROM order, so that names bound
//!    against the scope keep their positions.
//!
//! A FROM item is a table, a subquery (`(SELECT …) AS alias`), or a WITH
//! query by name; the last two are computed whole, then filtered.
//!
//! Outer joins run as written, left-deep in FROM order, each with its own
//! ON condition; WHERE then filters their result.

use sqlparser::ast;
use storage::Reader;

use crate::bind::{ident, object_name, Binder};
use crate::catalog;
use crate::error::{code, Result, SqlError};
use crate::expr::{BinaryOp, Expr};
use crate::plan::{JoinKind, Source};
use crate::query::{self, Ctes};
use crate::rows;
use crate::scope::{Merged, Scope};
use crate::subquery::Mode;
use crate::system;
use crate::types::DataType;
use crate::view;

/// A bound FROM clause: its scope and its joins in FROM order.
pub struct From {
    pub scope: Scope,
    tree: Tree,
}

enum Tree {
    Nothing,
    /// The scope's next relation (left-deep, so in FROM order): a table
    /// or a subquery, not yet filtered.
    Scan(Source),
    /// `on` is over the scope's first columns (the joined relations').
    Join {
        kind: JoinKind,
        left: Box<Tree>,
        right: Box<Tree>,
        on: Option<Expr>,
    },
}

impl Tree {
    fn all_inner(&self) -> bool {
        match self {
            Tree::Nothing | Tree::Scan(_) => true,
            Tree::Join { kind, left, right, .. } => *kind == JoinKind::Inner && left.all_inner() && right.all_inner(),
        }
    }

    /// Its scans, and the ON conditions of its joins.
    fn flatten(self, scans: &mut Vec<Source>, conditions: &mut Vec<Expr>) {
        match self {
            Tree::Nothing => {}
            Tree::Scan(scan) => scans.push(scan),
            Tree::Join { left, right, on, .. } => {
                left.flatten(scans, conditions);
                right.flatten(scans, conditions);
                conditions.extend(on);
            }
        }
    }
}

/// Binds the FROM list `from` against `reader`'s catalog and the WITH
/// queries `ctes` in scope.
pub fn bind(reader: &impl Reader, from: &[ast::TableWithJoins], ctes: &Ctes, mode: Mode) -> Result<From> {
    let mut bound = From { scope: Scope::default(), tree: Tree::Nothing };
    for item in from {
        bound = bound.join(reader, ctes, mode, JoinKind::Inner, &item.relation, Condition::None)?;
        for join in &item.joins {
            use ast::JoinOperator as J;
            let (kind, constraint) = match &join.join_operator {
                J::Join(c) | J::Inner(c) => (JoinKind::Inner, Some(c)),
                J::Left(c) | J::LeftOuter(c) => (JoinKind::Left, Some(c)),
                J::Right(c) | J::RightOuter(c) => (JoinKind::Right, Some(c)),
                J::FullOuter(c) => (JoinKind::Full, Some(c)),
                J::CrossJoin(ast::JoinConstraint::None) => (JoinKind::Inner, None),
                other => return Err(SqlError::unsupported(format!("the join {other:?}")).into()),
            };
            let on = match constraint {
                None | Some(ast::JoinConstraint::None) => Condition::None,
                Some(ast::JoinConstraint::On(on)) => Condition::On(on),
                Some(ast::JoinConstraint::Using(names)) => {
                    Condition::Using(names.iter().map(object_name).collect::<std::result::Result<_, _>>()?)
                }
                Some(ast::JoinConstraint::Natural) => Condition::Natural,
                Some(other) => return Err(SqlError::unsupported(format!("JOIN … {other:?}")).into()),
            };
            bound = bound.join(reader, ctes, mode, kind, &join.relation, on)?;
        }
    }
    Ok(bound)
}

/// The names a NATURAL join shares: the right relation's columns that
/// the left side has, in the left side's order.
fn common_names(left: &Scope, right: &Scope) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let right_names: Vec<&String> = right.relations().iter().flat_map(|r| r.columns.iter().map(|(n, _)| n)).collect();
    let left_names = left
        .merged()
        .iter()
        .map(|m| &m.name)
        .chain(left.relations().iter().flat_map(|r| r.columns.iter().map(|(n, _)| n)));
    for name in left_names {
        if right_names.contains(&name) && !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// The columns `USING (names)` merges: each name's column on the left
/// (positions over the left scope) and on the right (over the joined
/// scope), with PostgreSQL's errors for a name missing or repeated on a
/// side and for types that cannot be compared.
fn using(left: &Scope, right: &Scope, names: &[String], kind: JoinKind) -> Result<Vec<Merged>> {
    let shift = left.width();
    let mut merged = Vec::with_capacity(names.len());
    for name in names {
        let (left_position, left_type) = match left.merged_column(name) {
            Some(m) if m.kind == JoinKind::Full => {
                return Err(SqlError::unsupported(format!("USING ({name}) over a FULL JOIN's merged column")).into())
            }
            Some(m) => (if m.kind == JoinKind::Right { m.right } else { m.left }, m.data_type),
            None => side_column(left, name, "left")?,
        };
        let (right_position, right_type) = side_column(right, name, "right")?;
        if !left_type.same_kind(right_type) {
            return Err(SqlError::new(
                code::DATATYPE_MISMATCH,
                format!("JOIN/USING types {} and {} cannot be matched", left_type.name(), right_type.name()),
            )
            .into());
        }
        let data_type =
            if left_type.is_numeric() && right_type.is_numeric() { left_type.wider(right_type) } else { left_type };
        merged.push(Merged { name: name.clone(), left: left_position, right: right_position + shift, kind, data_type });
    }
    Ok(merged)
}

/// Column `name` of one side of a join, as USING finds it.
fn side_column(scope: &Scope, name: &str, side: &str) -> Result<(usize, DataType)> {
    match scope.resolve(None, name) {
        Ok(resolved) => Ok((resolved.position, resolved.data_type)),
        Err(error) if error.code == code::AMBIGUOUS_COLUMN => Err(SqlError::new(
            code::AMBIGUOUS_COLUMN,
            format!("common column name \"{name}\" appears more than once in {side} table"),
        )
        .into()),
        Err(_) => Err(SqlError::new(
            code::UNDEFINED_COLUMN,
            format!("column \"{name}\" specified in USING clause does not exist in {side} table"),
        )
        .into()),
    }
}

/// The scan of one FROM item and its scope: a WITH query, a table, or a
/// subquery.
fn relation(reader: &impl Reader, ctes: &Ctes, mode: Mode, relation: &ast::TableFactor) -> Result<(Source, Scope)> {
    match relation {
        ast::TableFactor::Table { name, alias, args, with_hints, .. }
            if with_hints.is_empty() && ctes.find(name).is_none() && system::names(name).is_some() =>
        {
            let (schema, table) = system::names(name).expect("checked by the guard");
            let relation = system::relation(reader, schema, &table, &system_who(args.as_ref())?)?;
            if alias.as_ref().is_some_and(|a| !a.columns.is_empty()) {
                return Err(SqlError::unsupported(format!(
                    "column aliases on a system relation ({relation_name})",
                    relation_name = relation.name
                ))
                .into());
            }
            let qualifier = alias.as_ref().map_or(relation.name.clone(), |a| ident(&a.name));
            let scope = Scope::relation(qualifier, relation.columns.iter().map(|c| (c.name.clone(), c.data_type)));
            let width = relation.columns.len();
            let rows = relation.rows.into_iter().map(|row| row.into_iter().map(Expr::Literal).collect()).collect();
            Ok((Source::Values { rows, width, filter: None }, scope))
        }
        ast::TableFactor::Table { name, alias, args: None, with_hints, .. } if with_hints.is_empty() => {
            let qualifier = alias.as_ref().map(|a| ident(&a.name));
            if let Some(query) = ctes.find(name) {
                let names = query::aliased_columns(query, alias)?;
                let qualifier = qualifier.unwrap_or_else(|| object_name(name).unwrap_or_default());
                let scope =
                    Scope::relation(qualifier, names.into_iter().zip(query.columns().iter().map(|c| c.data_type)));
                return Ok((Source::Derived { query: Box::new(query.clone()), filter: None }, scope));
            }
            let relation_name = object_name(name)?;
            if let Some(table) = catalog::table(reader, &relation_name)? {
                if alias.as_ref().is_some_and(|a| !a.columns.is_empty()) {
                    return Err(SqlError::unsupported(format!("column aliases on a table in FROM ({relation})")).into());
                }
                let scope = Scope::of(&table, qualifier);
                return Ok((Source::Table { table, filter: None }, scope));
            }
            let Some(view) = view::find(reader, &relation_name)? else {
                return Err(SqlError::new(
                    code::UNDEFINED_TABLE,
                    format!("relation \"{relation_name}\" does not exist"),
                )
                .into());
            };
            // A view sees no WITH query of the statement naming it.
            let mut query = query::plan_with(reader, &view.parsed()?, &Ctes::default(), mode)?;
            query::rename_output(&mut query, &view.columns)?;
            let names = query::aliased_columns(&query, alias)?;
            let types = query.columns().iter().map(|c| c.data_type);
            let scope = Scope::relation(qualifier.unwrap_or(view.name), names.into_iter().zip(types));
            Ok((Source::Derived { query: Box::new(query), filter: None }, scope))
        }
        ast::TableFactor::Table { name, alias, args: Some(args), with_hints, .. }
            if with_hints.is_empty() && object_name(name).is_ok_and(|n| n == "generate_series") =>
        {
            let mut exprs = Vec::with_capacity(args.args.len());
            for arg in &args.args {
                match arg {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => exprs.push(e.clone()),
                    other => return Err(SqlError::unsupported(format!("the argument {other}")).into()),
                }
            }
            let (bounds, ty) = rows::series(&exprs)?;
            // `AS g(n)` names the column n; `AS g` names it g, as PostgreSQL.
            let qualifier = alias.as_ref().map_or("generate_series".to_string(), |a| ident(&a.name));
            let column = match alias.as_ref().and_then(|a| a.columns.first()) {
                Some(column) => ident(&column.name),
                None => qualifier.clone(),
            };
            if alias.as_ref().is_some_and(|a| a.columns.len() > 1) {
                return Err(SqlError::new(
                    code::SYNTAX_ERROR,
                    "too many column aliases specified for function generate_series",
                )
                .into());
            }
            let scope = Scope::relation(qualifier, [(column, ty)]);
            Ok((Source::Series { bounds, ty, filter: None }, scope))
        }
        ast::TableFactor::Derived { lateral: false, subquery, alias, sample: None } => {
            let Some(named) = alias else {
                return Err(SqlError::new(code::SYNTAX_ERROR, "subquery in FROM must have an alias").into());
            };
            let query = query::plan_with(reader, subquery, ctes, mode)?;
            let names = query::aliased_columns(&query, alias)?;
            let types = query.columns().iter().map(|c| c.data_type);
            let scope = Scope::relation(ident(&named.name), names.into_iter().zip(types));
            Ok((Source::Derived { query: Box::new(query), filter: None }, scope))
        }
        other => Err(SqlError::unsupported(format!("FROM {other}")).into()),
    }
}

/// The user and database the session wrote as a system relation's
/// arguments ([`crate::identity`]); Seshat's defaults without them (a
/// statement run again at apply has them from its text).
fn system_who(args: Option<&ast::TableFunctionArgs>) -> Result<system::Who> {
    let strings: Vec<String> = args
        .map(|a| a.args.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|arg| match arg {
            ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(ast::Expr::Value(ast::ValueWithSpan {
                value: ast::Value::SingleQuotedString(s),
                ..
            }))) => Ok(s.clone()),
            other => Err(SqlError::unsupported(format!("the argument {other} of a system relation"))),
        })
        .collect::<std::result::Result<_, _>>()?;
    let default = crate::identity::Identity::default();
    let mut strings = strings.into_iter();
    Ok(system::Who {
        user: strings.next().unwrap_or(default.user),
        database: strings.next().unwrap_or(default.database),
    })
}

/// How a join pairs rows.
enum Condition<'a> {
    None,
    On(&'a ast::Expr),
    /// `USING (names)`: equal columns of those names, seen once.
    Using(Vec<String>),
    /// `NATURAL`: USING every name both sides have.
    Natural,
}

impl From {
    /// This FROM joined with `relation` by `kind` on `condition`.
    fn join(
        self,
        reader: &impl Reader,
        ctes: &Ctes,
        mode: Mode,
        kind: JoinKind,
        relation: &ast::TableFactor,
        condition: Condition<'_>,
    ) -> Result<From> {
        let (scan, right) = self::relation(reader, ctes, mode, relation)?;
        let on_expr = match &condition {
            Condition::On(on) => Some(*on),
            _ => None,
        };
        let names = match condition {
            Condition::Using(names) => Some(names),
            Condition::Natural => Some(common_names(&self.scope, &right)),
            _ => None,
        };
        let using = names.map(|names| using(&self.scope, &right, &names, kind)).transpose()?;
        let mut scope = self.scope.join(right)?;
        let tree = match self.tree {
            Tree::Nothing => Tree::Scan(scan),
            left => {
                let on = match (on_expr, using) {
                    (Some(on), _) => {
                        let subqueries = |query: &ast::Query| query::subquery(reader, query, ctes, mode);
                        let mut binder = Binder::new(&scope).with_subqueries(&subqueries);
                        Some(binder.condition(on, "JOIN/ON")?)
                    }
                    (None, Some(using)) => {
                        let equalities = using.iter().map(|m| Expr::Binary {
                            op: BinaryOp::Eq,
                            left: Box::new(Expr::Column(m.left)),
                            right: Box::new(Expr::Column(m.right)),
                            ty: DataType::Bool,
                        });
                        let on = Expr::all(equalities.collect());
                        using.into_iter().for_each(|m| scope.merge(m));
                        on
                    }
                    (None, None) => None,
                };
                Tree::Join { kind, left: Box::new(left), right: Box::new(Tree::Scan(scan)), on }
            }
        };
        Ok(From { scope, tree })
    }

    /// The source of the query's rows and what is left of `filter` (over
    /// the scope's row) to apply to them.
    pub fn plan(self, filter: Option<Expr>) -> (Source, Option<Expr>) {
        match self.tree {
            Tree::Nothing => (Source::Nothing, filter),
            Tree::Scan(scan) => (scan.filtered(filter), None),
            tree if tree.all_inner() => {
                let mut scans = Vec::new();
                let mut conditions = filter.into_iter().collect::<Vec<_>>();
                tree.flatten(&mut scans, &mut conditions);
                let conjuncts = conditions.into_iter().flat_map(Expr::conjuncts).collect();
                inner_joins(&self.scope, scans, conjuncts)
            }
            tree => (outer_joins(tree).0, filter),
        }
    }
}

/// Outer joins as written; returns the source and its width.
fn outer_joins(tree: Tree) -> (Source, usize) {
    match tree {
        Tree::Nothing => (Source::Nothing, 0),
        Tree::Scan(scan) => {
            let width = scan.width();
            (scan, width)
        }
        Tree::Join { kind, left, right, on } => {
            let (left, left_width) = outer_joins(*left);
            let (right, right_width) = outer_joins(*right);
            let conjuncts = on.map(Expr::conjuncts).unwrap_or_default();
            let keys = hash_keys(&conjuncts, 0..left_width, left_width..left_width + right_width);
            let source = Source::Join {
                kind,
                left: Box::new(left),
                right: Box::new(right),
                keys,
                condition: Expr::all(conjuncts),
            };
            (source, left_width + right_width)
        }
    }
}

/// The `left = right` conjuncts whose sides read only the left and only
/// the right columns, as (over a left row, over a right row) key pairs.
pub(crate) fn hash_keys(
    conjuncts: &[Expr],
    left: std::ops::Range<usize>,
    right: std::ops::Range<usize>,
) -> Vec<(Expr, Expr)> {
    let within = |e: &Expr, range: &std::ops::Range<usize>| {
        let columns = e.columns();
        !columns.is_empty() && columns.iter().all(|c| range.contains(c))
    };
    let shift = right.start;
    conjuncts
        .iter()
        .filter_map(|conjunct| match conjunct {
            Expr::Binary { op: BinaryOp::Eq, left: a, right: b, .. } => {
                if within(a, &left) && within(b, &right) {
                    Some((a.as_ref().clone(), b.remap(&|c| c - shift)))
                } else if within(b, &left) && within(a, &right) {
                    Some((b.as_ref().clone(), a.remap(&|c| c - shift)))
                } else {
                    None
                }
            }
            _ => None,
        })
        .collect()
}

/// Rules 1–4 for a FROM of inner joins only.
fn inner_joins(scope: &Scope, scans: Vec<Source>, conjuncts: Vec<Expr>) -> (Source, Option<Expr>) {
    let ranges = scope.ranges();
    let relations_of = |e: &Expr| -> Vec<usize> {
        let columns = e.columns();
        (0..ranges.len()).filter(|&r| columns.iter().any(|c| ranges[r].contains(c))).collect()
    };
    // 1. Pushdown.
    let mut pushed: Vec<Vec<Expr>> = vec![Vec::new(); scans.len()];
    let mut constant = Vec::new();
    let mut joining: Vec<(Vec<usize>, Expr)> = Vec::new();
    for conjunct in conjuncts {
        match relations_of(&conjunct).as_slice() {
            [] => constant.push(conjunct),
            [only] => {
                let start = ranges[*only].start;
                pushed[*only].push(conjunct.remap(&|c| c - start));
            }
            relations => joining.push((relations.to_vec(), conjunct)),
        }
    }
    // 2. Order.
    let first = (0..scans.len()).find(|&r| !pushed[r].is_empty()).unwrap_or(0);
    let mut order = vec![first];
    while order.len() < scans.len() {
        let unjoined = || (0..scans.len()).filter(|r| !order.contains(r));
        let connects = |r: usize, equality: bool| {
            joining.iter().any(|(relations, conjunct)| {
                relations.contains(&r)
                    && relations.iter().all(|x| *x == r || order.contains(x))
                    && (!equality || matches!(conjunct, Expr::Binary { op: BinaryOp::Eq, .. }))
            })
        };
        let next = unjoined()
            .find(|&r| connects(r, true))
            .or_else(|| unjoined().find(|&r| connects(r, false)))
            .or_else(|| unjoined().next())
            .expect("a table is left");
        order.push(next);
    }
    // 3. Hash joins, left-deep in that order. `position[c]` is where
    // scope column c is in the rows built so far.
    let mut scans: Vec<Option<Source>> = scans.into_iter().map(Some).collect();
    let mut position = vec![usize::MAX; scope.width()];
    let mut width = 0;
    let mut source = None;
    let mut joined: Vec<usize> = Vec::new();
    for &relation in &order {
        let filter = Expr::all(std::mem::take(&mut pushed[relation]));
        let scan = scans[relation].take().expect("each relation once").filtered(filter);
        for (i, c) in ranges[relation].clone().enumerate() {
            position[c] = width + i;
        }
        let right_width = ranges[relation].len();
        joined.push(relation);
        source = Some(match source {
            None => scan,
            Some(left) => {
                let mut ready = Vec::new();
                let mut waiting = Vec::new();
                for (relations, conjunct) in joining {
                    if relations.iter().all(|r| joined.contains(r)) {
                        ready.push(conjunct.remap(&|c| position[c]));
                    } else {
                        waiting.push((relations, conjunct));
                    }
                }
                joining = waiting;
                let keys = hash_keys(&ready, 0..width, width..width + right_width);
                Source::Join {
                    kind: JoinKind::Inner,
                    left: Box::new(left),
                    right: Box::new(scan),
                    keys,
                    condition: Expr::all(ready),
                }
            }
        });
        width += right_width;
    }
    // 4. Back to FROM order.
    let source = source.expect("at least one table");
    let identity = position.iter().enumerate().all(|(c, p)| c == *p);
    let source = if identity { source } else { Source::Permute { input: Box::new(source), order: position } };
    (source, Expr::all(constant))
}
