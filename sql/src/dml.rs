//! INSERT, UPDATE and DELETE in two steps: [`DmlPlan::bind`] resolves
//! names and types against a view of the catalog (what a prepared
//! statement's Describe needs), [`DmlPlan::apply`] runs the plan against
//! the apply overlay. Every row written goes through
//! a [`RowWriter`], which enforces the
//! table's types and constraints.

use std::collections::HashSet;
use std::sync::Arc;

use sqlparser::ast;
use storage::{Overlay, Reader};

use crate::bind::{self, ident, object_name, Binder};
use crate::catalog::Table;
use crate::command::{Outcome, Rows};
use crate::error::{code, Result, SqlError};
use crate::exec;
use crate::explain::Lines;
use crate::expr::Expr;
use crate::from::{self, From};
use crate::joined::{Joined, Match};
use crate::plan::{OutputColumn, QueryPlan, Source};
use crate::query::{self, Ctes};
use crate::scope::Scope;
use crate::subquery::{Mode, Planner};
use crate::upsert::{Action, OnConflict};
use crate::value::Value;
use crate::write::{self, assignable, default_value, RowWriter};

/// A bound INSERT, UPDATE or DELETE.
pub enum DmlPlan {
    Insert(InsertPlan),
    Update(UpdatePlan),
    Delete(DeletePlan),
}

pub struct InsertPlan {
    table: Arc<Table>,
    /// The columns the source's values fill, in order.
    targets: Vec<usize>,
    source: InsertSource,
    on_conflict: Option<OnConflict>,
    returning: Option<Returning>,
}

enum InsertSource {
    /// Each row's values for the targets, `None` for DEFAULT.
    Values(Vec<Vec<Option<Expr>>>),
    Query(Box<QueryPlan>),
    DefaultValues,
}

pub struct UpdatePlan {
    table: Arc<Table>,
    /// Column positions and their new values, over the old row (followed
    /// by the joined row with FROM).
    assignments: Vec<(usize, Expr)>,
    targets: Targets,
    returning: Option<Returning>,
}

pub struct DeletePlan {
    table: Arc<Table>,
    targets: Targets,
    returning: Option<Returning>,
}

/// The rows an UPDATE or DELETE changes.
enum Targets {
    /// The target's rows that pass a filter.
    Filtered(Option<Expr>),
    /// The target's rows joined with other relations (`UPDATE … FROM`,
    /// `DELETE … USING`).
    Joined(Box<Joined>),
}

impl Targets {
    /// The filter (over the target row, then the other relations'), and
    /// the other relations when there are.
    fn new(from: Option<From>, target_width: usize, filter: Option<Expr>) -> Targets {
        match from {
            None => Targets::Filtered(filter),
            Some(from) => Targets::Joined(Box::new(Joined::new(from, target_width, filter))),
        }
    }

    /// The rows to change, collected before anything is written.
    fn rows(&self, view: &impl Reader, table: &Table) -> Result<Vec<Match>> {
        match self {
            Targets::Filtered(filter) => Ok(exec::matching_rows(view, table, filter.as_ref())?
                .into_iter()
                .map(|(key, row)| Match { key, row, other: Vec::new() })
                .collect()),
            Targets::Joined(joined) => joined.matches(view, table),
        }
    }

    fn exprs(&self) -> Vec<&Expr> {
        match self {
            Targets::Filtered(filter) => filter.iter().collect(),
            Targets::Joined(joined) => joined.exprs(),
        }
    }

    fn explain(&self, lines: &mut Lines, table: &Arc<Table>) {
        let scan = |filter: Option<&Expr>| Source::Table { table: Arc::clone(table), filter: filter.cloned() };
        match self {
            Targets::Filtered(filter) => lines.source(1, &scan(filter.as_ref())),
            Targets::Joined(joined) => {
                let join = match joined.key_count() {
                    0 => "Nested Loop".to_string(),
                    1 => "Hash Join (1 key)".to_string(),
                    n => format!("Hash Join ({n} keys)"),
                };
                lines.node(1, join);
                lines.source(2, &scan(joined.target_filter()));
                lines.source(2, joined.source());
            }
        }
    }
}

/// A match's row followed by the row it joined (if any): what SET and
/// RETURNING expressions read.
fn with_other<'r>(row: &'r [Value], other: &[Value]) -> std::borrow::Cow<'r, [Value]> {
    if other.is_empty() {
        return std::borrow::Cow::Borrowed(row);
    }
    std::borrow::Cow::Owned(row.iter().chain(other).cloned().collect())
}

/// What binding a statement needs: the view it runs on, whether it runs,
/// and how its subqueries are bound.
struct Context<'a, R: Reader> {
    view: &'a R,
    mode: Mode,
    subqueries: Planner<'a>,
}

/// RETURNING: output expressions over the rows written.
struct Returning {
    columns: Vec<OutputColumn>,
    exprs: Vec<Expr>,
}

impl DmlPlan {
    /// Binds `statement` if it is an INSERT, UPDATE or DELETE; its
    /// subqueries run now in `view` unless `mode` only describes it.
    pub fn bind(view: &impl Reader, statement: &ast::Statement, mode: Mode) -> Result<Option<DmlPlan>> {
        let subqueries = |query: &ast::Query| query::subquery(view, query, &Ctes::default(), mode);
        let context = Context { view, mode, subqueries: &subqueries };
        Ok(Some(match statement {
            ast::Statement::Insert(insert) => DmlPlan::Insert(bind_insert(&context, insert)?),
            ast::Statement::Update(update) => DmlPlan::Update(bind_update(&context, update)?),
            ast::Statement::Delete(delete) => DmlPlan::Delete(bind_delete(&context, delete)?),
            _ => return Ok(None),
        }))
    }

    /// The rows' columns with RETURNING, else none.
    pub fn columns(&self) -> Vec<OutputColumn> {
        self.returning().map(|r| r.columns.clone()).unwrap_or_default()
    }

    fn returning(&self) -> Option<&Returning> {
        match self {
            DmlPlan::Insert(plan) => plan.returning.as_ref(),
            DmlPlan::Update(plan) => plan.returning.as_ref(),
            DmlPlan::Delete(plan) => plan.returning.as_ref(),
        }
    }

    /// Every expression of the plan.
    pub fn exprs(&self) -> Vec<&Expr> {
        let mut exprs: Vec<&Expr> = Vec::new();
        match self {
            DmlPlan::Insert(plan) => {
                match &plan.source {
                    InsertSource::Values(rows) => exprs.extend(rows.iter().flatten().flatten()),
                    InsertSource::Query(query) => exprs.extend(query.exprs()),
                    InsertSource::DefaultValues => {}
                }
                exprs.extend(plan.on_conflict.iter().flat_map(OnConflict::exprs));
            }
            DmlPlan::Update(plan) => {
                exprs.extend(plan.assignments.iter().map(|(_, e)| e));
                exprs.extend(plan.targets.exprs());
            }
            DmlPlan::Delete(plan) => exprs.extend(plan.targets.exprs()),
        }
        exprs.extend(self.returning().into_iter().flat_map(|r| &r.exprs));
        exprs
    }

    /// The plan as EXPLAIN prints it.
    pub fn explain(&self, lines: &mut Lines) {
        match self {
            DmlPlan::Insert(plan) => {
                lines.node(0, format!("Insert on {}", plan.table.name));
                match plan.on_conflict.as_ref().map(|c| &c.action) {
                    None => {}
                    Some(Action::Nothing) => lines.node(1, "Conflict Resolution: NOTHING".into()),
                    Some(Action::Update { .. }) => lines.node(1, "Conflict Resolution: UPDATE".into()),
                }
                match &plan.source {
                    InsertSource::Values(rows) => lines.node(1, format!("Values ({} rows)", rows.len())),
                    InsertSource::Query(query) => lines.query(1, query),
                    InsertSource::DefaultValues => lines.node(1, "Default Values".into()),
                }
            }
            DmlPlan::Update(plan) => {
                lines.node(0, format!("Update on {}", plan.table.name));
                plan.targets.explain(lines, &plan.table);
            }
            DmlPlan::Delete(plan) => {
                lines.node(0, format!("Delete on {}", plan.table.name));
                plan.targets.explain(lines, &plan.table);
            }
        }
    }

    /// Writes the plan's rows to `view`.
    pub fn apply<R: Reader>(self, view: &mut Overlay<'_, R>) -> Result<Outcome> {
        match self {
            DmlPlan::Insert(plan) => apply_insert(view, plan),
            DmlPlan::Update(plan) => apply_update(view, plan),
            DmlPlan::Delete(plan) => apply_delete(view, plan),
        }
    }
}

impl Returning {
    /// Binds RETURNING over `scope`: the written table's row, then the
    /// joined relations' with FROM or USING.
    fn bind(
        context: &Context<'_, impl Reader>,
        scope: &Scope,
        items: Option<&Vec<ast::SelectItem>>,
    ) -> Result<Option<Returning>> {
        let Some(items) = items else { return Ok(None) };
        let mut binder = Binder::new(scope).with_subqueries(context.subqueries);
        let (mut columns, mut exprs) = (Vec::new(), Vec::new());
        for item in items {
            match item {
                ast::SelectItem::Wildcard(_) => {
                    let all = scope.relations().iter().flat_map(|r| &r.columns);
                    for (i, (name, data_type)) in all.enumerate() {
                        columns.push(OutputColumn { name: name.clone(), data_type: *data_type });
                        exprs.push(Expr::Column(i));
                    }
                }
                ast::SelectItem::UnnamedExpr(expr) | ast::SelectItem::ExprWithAlias { expr, .. } => {
                    let name = match item {
                        ast::SelectItem::ExprWithAlias { alias, .. } => ident(alias),
                        _ => bind::output_name(expr),
                    };
                    let bound = binder.bind(expr)?.coerce_text()?;
                    columns.push(OutputColumn { name, data_type: bound.ty });
                    exprs.push(bound.expr);
                }
                other => return Err(SqlError::unsupported(format!("RETURNING {other}")).into()),
            }
        }
        Ok(Some(Returning { columns, exprs }))
    }

    fn row(&self, row: &[Value]) -> Result<Vec<Value>> {
        Ok(self.exprs.iter().map(|e| e.eval(row)).collect::<std::result::Result<_, _>>()?)
    }
}

/// The outcome of a statement that wrote `count` rows, or returned
/// `returned` with RETURNING.
fn finish(command: &str, count: u64, returning: Option<Returning>, returned: Vec<Vec<Value>>) -> Outcome {
    match returning {
        Some(returning) => Outcome::Rows(Rows { columns: returning.columns, rows: returned, command: command.into() }),
        None => Outcome::Command { command: command.to_string(), rows: Some(count) },
    }
}

pub(crate) fn is_default(expr: &ast::Expr) -> bool {
    matches!(expr, ast::Expr::Identifier(id) if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default"))
}

fn bind_insert(context: &Context<'_, impl Reader>, insert: &ast::Insert) -> Result<InsertPlan> {
    let view = context.view;
    let ast::TableObject::TableName(name) = &insert.table else {
        return Err(SqlError::unsupported("INSERT into a table function").into());
    };
    let table = query::table(view, name)?;
    let alias = insert.table_alias.as_ref().map(|a| ident(&a.alias));
    let too_many = || SqlError::new(code::SYNTAX_ERROR, "INSERT has more expressions than target columns");
    let targets: Vec<usize> = if insert.columns.is_empty() {
        // Without a column list, the values fill the first columns.
        match source_width(insert.source.as_deref()) {
            Some(width) if width > table.columns.len() => return Err(too_many().into()),
            Some(width) => (0..width).collect(),
            None => (0..table.columns.len()).collect(),
        }
    } else {
        let mut targets = Vec::new();
        for column in &insert.columns {
            let column = object_name(column)?;
            let position = table.existing_column(&column)?;
            if targets.contains(&position) {
                return Err(SqlError::new(
                    code::DUPLICATE_COLUMN,
                    format!("column \"{column}\" specified more than once"),
                )
                .into());
            }
            targets.push(position);
        }
        targets
    };
    let source = match &insert.source {
        None => InsertSource::DefaultValues,
        Some(source) => match source.body.as_ref() {
            ast::SetExpr::Values(values) if source.order_by.is_none() && source.limit_clause.is_none() => {
                let mut rows = Vec::with_capacity(values.rows.len());
                for row in &values.rows {
                    if row.len() > targets.len() {
                        return Err(too_many().into());
                    }
                    if row.len() < targets.len() {
                        return Err(SqlError::new(
                            code::SYNTAX_ERROR,
                            "INSERT has more target columns than expressions",
                        )
                        .into());
                    }
                    let mut values = Vec::with_capacity(row.len());
                    for (expr, &target) in row.iter().zip(&targets) {
                        let column = &table.columns[target];
                        values.push(match is_default(expr) {
                            true => None,
                            false => {
                                let scope = Scope::default();
                                let bound = Binder::new(&scope).with_subqueries(context.subqueries).bind(expr)?;
                                Some(assignable(bound, column.data_type, &column.name)?)
                            }
                        });
                    }
                    rows.push(values);
                }
                InsertSource::Values(rows)
            }
            _ => {
                let plan = query::plan_with(view, source, &Ctes::default(), context.mode)?;
                if plan.columns().len() > targets.len() {
                    return Err(too_many().into());
                }
                for (output, &target) in plan.columns().iter().zip(&targets) {
                    let column = &table.columns[target];
                    if !output.data_type.same_kind(column.data_type) {
                        return Err(SqlError::new(
                            code::DATATYPE_MISMATCH,
                            format!(
                                "column \"{}\" is of type {} but expression is of type {}",
                                column.name,
                                column.data_type.name(),
                                output.data_type.name()
                            ),
                        )
                        .into());
                    }
                }
                InsertSource::Query(Box::new(plan))
            }
        },
    };
    let on_conflict = match &insert.on {
        None => None,
        Some(ast::OnInsert::OnConflict(clause)) => {
            Some(OnConflict::bind(&table, alias.clone(), clause, context.subqueries)?)
        }
        Some(other) => return Err(SqlError::unsupported(format!("INSERT …{other}")).into()),
    };
    let returning = Returning::bind(context, &Scope::of(&table, alias), insert.returning.as_ref())?;
    Ok(InsertPlan { table, targets, source, on_conflict, returning })
}

/// How many values each row of a VALUES source has (its longest row).
fn source_width(source: Option<&ast::Query>) -> Option<usize> {
    match source?.body.as_ref() {
        ast::SetExpr::Values(values) => values.rows.iter().map(|row| row.len()).max(),
        _ => None,
    }
}

fn apply_insert<R: Reader>(view: &mut Overlay<'_, R>, plan: InsertPlan) -> Result<Outcome> {
    let InsertPlan { table, targets, source, on_conflict, returning } = plan;
    // Each source row's values for the targets, `None` for DEFAULT.
    let source_rows: Vec<Vec<Option<Value>>> = match source {
        InsertSource::Values(rows) => rows
            .iter()
            .map(|row| row.iter().map(|e| e.as_ref().map(|e| e.eval(&[])).transpose()).collect())
            .collect::<std::result::Result<_, _>>()?,
        InsertSource::Query(query) => {
            exec::query(view, &query)?.into_iter().map(|row| row.into_iter().map(Some).collect()).collect()
        }
        InsertSource::DefaultValues => vec![Vec::new()],
    };
    let writer = RowWriter::new(&table)?;
    let mut returned = Vec::new();
    let mut count = 0;
    // The keys of the rows this statement inserted or updated.
    let mut affected = HashSet::new();
    for values in source_rows {
        let mut row = writer.defaults()?;
        for (value, &target) in values.into_iter().zip(&targets) {
            if let Some(value) = value {
                row[target] = value;
            }
        }
        let stored = match &on_conflict {
            None => writer.insert(view, row)?,
            Some(clause) => match upsert(view, &table, &writer, clause, row, &mut affected)? {
                Some(stored) => stored,
                None => continue,
            },
        };
        if let Some(returning) = &returning {
            returned.push(returning.row(&stored)?);
        }
        count += 1;
    }
    // PostgreSQL's INSERT tag carries the inserted row's OID, always 0.
    Ok(finish("INSERT 0", count, returning, returned))
}

/// Inserts `row`, or does what `clause` says when it collides with a
/// stored row on an arbiter: the stored values, or `None` when nothing
/// was written.
fn upsert<R: Reader>(
    view: &mut Overlay<'_, R>,
    table: &Table,
    writer: &RowWriter<'_>,
    clause: &OnConflict,
    row: Vec<Value>,
    affected: &mut HashSet<Vec<u8>>,
) -> Result<Option<Vec<Value>>> {
    let row = writer.check(row)?;
    let Some((key, existing)) = clause.conflict(view, table, &row)? else {
        let (key, stored) = writer.store(view, row)?;
        affected.insert(key);
        return Ok(Some(stored));
    };
    let Action::Update { assignments, filter } = &clause.action else { return Ok(None) };
    if affected.contains(&key) {
        return Err(SqlError::new(
            code::CARDINALITY_VIOLATION,
            "ON CONFLICT DO UPDATE command cannot affect row a second time",
        )
        .into());
    }
    let both: Vec<Value> = existing.iter().cloned().chain(row).collect();
    if let Some(filter) = filter {
        if !filter.holds(&both)? {
            return Ok(None);
        }
    }
    let mut updated = existing.clone();
    for (position, expr) in assignments {
        updated[*position] = expr.eval(&both)?;
    }
    let (key, stored) = writer.replace(view, key, &existing, updated)?;
    affected.insert(key);
    Ok(Some(stored))
}

/// The one table an UPDATE or DELETE names, as its scope.
fn target(view: &impl Reader, from: &ast::TableWithJoins) -> Result<(Arc<Table>, Scope)> {
    let (table, alias) = query::from_table(view, std::slice::from_ref(from))?
        .ok_or_else(|| SqlError::new(code::SYNTAX_ERROR, "no table named"))?;
    let scope = Scope::of(&table, alias);
    Ok((table, scope))
}

fn filter(context: &Context<'_, impl Reader>, scope: &Scope, selection: Option<&ast::Expr>) -> Result<Option<Expr>> {
    let mut binder = Binder::new(scope).with_subqueries(context.subqueries);
    Ok(selection.map(|selection| binder.condition(selection, "WHERE")).transpose()?)
}

/// The scope an UPDATE's or DELETE's expressions see: the target, then
/// the relations of its FROM (or USING) list, bound.
fn with_others(
    context: &Context<'_, impl Reader>,
    target: Scope,
    others: Option<&[ast::TableWithJoins]>,
) -> Result<(Scope, Option<From>)> {
    let Some(others) = others else { return Ok((target, None)) };
    let from = from::bind(context.view, others, &Ctes::default(), context.mode)?;
    Ok((target.join(from.scope.clone())?, Some(from)))
}

fn bind_update(context: &Context<'_, impl Reader>, update: &ast::Update) -> Result<UpdatePlan> {
    let view = context.view;
    if !update.order_by.is_empty() || update.limit.is_some() {
        return Err(SqlError::unsupported("UPDATE … ORDER BY or LIMIT").into());
    }
    let others = match &update.from {
        None => None,
        Some(ast::UpdateTableFromKind::BeforeSet(list) | ast::UpdateTableFromKind::AfterSet(list)) => {
            Some(list.as_slice())
        }
    };
    let (table, target) = target(view, &update.table)?;
    let (scope, from) = with_others(context, target, others)?;
    let mut assignments = Vec::new();
    for assignment in &update.assignments {
        let ast::AssignmentTarget::ColumnName(name) = &assignment.target else {
            return Err(SqlError::unsupported("assigning a tuple of columns").into());
        };
        let name = object_name(name)?;
        let position = table.existing_column(&name)?;
        let column = &table.columns[position];
        let expr = match is_default(&assignment.value) {
            true => Expr::Literal(default_value(column)?),
            false => {
                let bound = Binder::new(&scope).with_subqueries(context.subqueries).bind(&assignment.value)?;
                assignable(bound, column.data_type, &column.name)?
            }
        };
        assignments.push((position, expr));
    }
    let filter = filter(context, &scope, update.selection.as_ref())?;
    let targets = Targets::new(from, table.columns.len(), filter);
    let returning = Returning::bind(context, &scope, update.returning.as_ref())?;
    Ok(UpdatePlan { table, assignments, targets, returning })
}

fn apply_update<R: Reader>(view: &mut Overlay<'_, R>, plan: UpdatePlan) -> Result<Outcome> {
    let UpdatePlan { table, assignments, targets, returning } = plan;
    let writer = RowWriter::new(&table)?;
    let mut returned = Vec::new();
    let mut count = 0;
    for Match { key, row, other } in targets.rows(view, &table)? {
        let input = with_other(&row, &other);
        let mut updated = row.clone();
        for (position, expr) in &assignments {
            updated[*position] = expr.eval(&input)?;
        }
        let (_, stored) = writer.replace(view, key, &row, updated)?;
        if let Some(returning) = &returning {
            returned.push(returning.row(&with_other(&stored, &other))?);
        }
        count += 1;
    }
    Ok(finish("UPDATE", count, returning, returned))
}

fn bind_delete(context: &Context<'_, impl Reader>, delete: &ast::Delete) -> Result<DeletePlan> {
    let view = context.view;
    if !delete.order_by.is_empty() || delete.limit.is_some() || !delete.tables.is_empty() {
        return Err(SqlError::unsupported("DELETE … ORDER BY or LIMIT").into());
    }
    let from = match &delete.from {
        ast::FromTable::WithFromKeyword(from) | ast::FromTable::WithoutKeyword(from) => from,
    };
    let [from] = from.as_slice() else {
        return Err(SqlError::unsupported("DELETE from several tables").into());
    };
    let (table, target) = target(view, from)?;
    let (scope, others) = with_others(context, target, delete.using.as_deref())?;
    let filter = filter(context, &scope, delete.selection.as_ref())?;
    let targets = Targets::new(others, table.columns.len(), filter);
    let returning = Returning::bind(context, &scope, delete.returning.as_ref())?;
    Ok(DeletePlan { table, targets, returning })
}

fn apply_delete<R: Reader>(view: &mut Overlay<'_, R>, plan: DeletePlan) -> Result<Outcome> {
    let DeletePlan { table, targets, returning } = plan;
    let mut returned = Vec::new();
    let mut count = 0;
    for Match { key, row, other } in targets.rows(view, &table)? {
        write::delete(view, &table, key, &row);
        if let Some(returning) = &returning {
            returned.push(returning.row(&with_other(&row, &other))?);
        }
        count += 1;
    }
    Ok(finish("DELETE", count, returning, returned))
}
