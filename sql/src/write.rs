//! Statements that change data, executed at apply on every replica
//! against the apply overlay: the same log gives the same bytes
//! everywhere. A statement either completes or fails with nothing
//! written (its writes stay in its own overlay until it completes).
//!
//! Checked on every write: column types (assignment casts), lengths, NOT
//! NULL and primary-key uniqueness. A table without a primary key keys
//! its rows by a hidden row id from a per-table counter.

use sqlparser::ast;
use storage::{Family, Overlay, Reader};

use crate::bind::{self, ident, object_name, Binder, Scope};
use crate::catalog::{self, Column, Table};
use crate::command::{Outcome, Rows};
use crate::error::{code, Error, Result, SqlError};
use crate::exec::{self, encode_row};
use crate::expr::Expr;
use crate::keys;
use crate::parse;
use crate::plan::OutputColumn;
use crate::query;
use crate::types::DataType;
use crate::value::Value;

/// What a completed statement leaves besides its overlay writes.
pub struct Effects {
    pub outcome: Outcome,
    /// Tables whose rows the batch must delete (by range: they are no
    /// longer reachable from the catalog).
    pub dropped: Vec<u32>,
}

impl Effects {
    fn done(outcome: Outcome) -> Effects {
        Effects { outcome, dropped: Vec::new() }
    }
}

/// Executes the writing statement `sql` against `view`.
pub fn execute<R: Reader>(view: &mut Overlay<'_, R>, sql: &str) -> Result<Effects> {
    let mut statements = parse::statements(sql)?;
    if statements.len() != 1 {
        return Err(Error::Corrupt(format!("a logged statement is {} statements", statements.len())));
    }
    match statements.remove(0) {
        ast::Statement::CreateTable(create) => create_table(view, &create).map(Effects::done),
        ast::Statement::Drop { object_type: ast::ObjectType::Table, if_exists, names, cascade: false, .. } => {
            drop_tables(view, &names, if_exists)
        }
        ast::Statement::Insert(insert) => insert_rows(view, &insert).map(Effects::done),
        ast::Statement::Update(update) => update_rows(view, &update).map(Effects::done),
        ast::Statement::Delete(delete) => delete_rows(view, &delete).map(Effects::done),
        other => Err(SqlError::unsupported(format!("the statement {other}")).into()),
    }
}

fn read_counter(view: &impl Reader, key: &[u8]) -> Result<u64> {
    Ok(match view.get(Family::SqlMeta, key)? {
        Some(bytes) => u64::from_be_bytes(bytes.as_slice().try_into().map_err(|_| Error::Corrupt("counter".into()))?),
        None => 1,
    })
}

/// Draws the next value of counter `key` (starting at 1).
fn draw<R: Reader>(view: &mut Overlay<'_, R>, key: &[u8]) -> Result<u64> {
    let next = read_counter(view, key)?;
    view.put(Family::SqlMeta, key.to_vec(), (next + 1).to_be_bytes().to_vec());
    Ok(next)
}

fn create_table<R: Reader>(view: &mut Overlay<'_, R>, create: &ast::CreateTable) -> Result<Outcome> {
    let name = object_name(&create.name)?;
    if create.temporary || create.query.is_some() || create.like.is_some() || create.or_replace {
        return Err(SqlError::unsupported(format!("this form of CREATE TABLE ({name})")).into());
    }
    match &create.table_options {
        ast::CreateTableOptions::None => {}
        // pgbench's `WITH (fillfactor=100)`: a storage hint that has no
        // meaning for RocksDB.
        ast::CreateTableOptions::With(options)
            if options.iter().all(|o| o.to_string().to_lowercase().starts_with("fillfactor")) => {}
        other => return Err(SqlError::unsupported(format!("table options {other}")).into()),
    }
    if catalog::table(view, &name)?.is_some() {
        if create.if_not_exists {
            return Ok(Outcome::command("CREATE TABLE"));
        }
        return Err(SqlError::new(code::DUPLICATE_TABLE, format!("relation \"{name}\" already exists")).into());
    }
    let mut columns: Vec<Column> = Vec::new();
    let mut primary_key: Option<Vec<usize>> = None;
    let multiple_keys = || {
        SqlError::new(
            code::INVALID_TABLE_DEFINITION,
            format!("multiple primary keys for table \"{name}\" are not allowed"),
        )
    };
    for def in &create.columns {
        let column_name = ident(&def.name);
        if columns.iter().any(|c| c.name == column_name) {
            return Err(SqlError::new(
                code::DUPLICATE_COLUMN,
                format!("column \"{column_name}\" specified more than once"),
            )
            .into());
        }
        let data_type = DataType::from_ast(&def.data_type)?;
        let mut column = Column { name: column_name.clone(), data_type, nullable: true, default: None };
        for option in &def.options {
            match &option.option {
                ast::ColumnOption::Null => {}
                ast::ColumnOption::NotNull => column.nullable = false,
                ast::ColumnOption::Default(expr) => {
                    let bound = bind::constant(expr).map_err(|error| match error.code.as_str() {
                        code::UNDEFINED_COLUMN => SqlError::new(
                            code::FEATURE_NOT_SUPPORTED,
                            "cannot use column reference in DEFAULT expression",
                        ),
                        _ => error,
                    })?;
                    assignable(bound, data_type, &column_name)?;
                    column.default = Some(expr.to_string());
                }
                ast::ColumnOption::PrimaryKey(_) => {
                    if primary_key.is_some() {
                        return Err(multiple_keys().into());
                    }
                    primary_key = Some(vec![columns.len()]);
                    column.nullable = false;
                }
                other => return Err(SqlError::unsupported(format!("the column constraint {other}")).into()),
            }
        }
        columns.push(column);
    }
    for constraint in &create.constraints {
        match constraint {
            ast::TableConstraint::PrimaryKey(key) => {
                if primary_key.is_some() {
                    return Err(multiple_keys().into());
                }
                let mut positions = Vec::new();
                for part in &key.columns {
                    let ast::Expr::Identifier(column) = &part.column.expr else {
                        return Err(SqlError::unsupported(format!("the key part {}", part.column.expr)).into());
                    };
                    let column = ident(column);
                    let position = columns.iter().position(|c| c.name == column).ok_or_else(|| {
                        SqlError::new(
                            code::UNDEFINED_COLUMN,
                            format!("column \"{column}\" named in key does not exist"),
                        )
                    })?;
                    columns[position].nullable = false;
                    positions.push(position);
                }
                primary_key = Some(positions);
            }
            other => return Err(SqlError::unsupported(format!("the table constraint {other}")).into()),
        }
    }
    let id = u32::try_from(draw(view, keys::NEXT_TABLE_ID)?).map_err(|_| Error::Corrupt("table ids ran out".into()))?;
    let table = Table { id, name: name.clone(), columns, primary_key: primary_key.unwrap_or_default() };
    view.put(Family::SqlCatalog, keys::table(id), table.encode());
    view.put(Family::SqlCatalog, keys::table_name(&name), id.to_be_bytes().to_vec());
    Ok(Outcome::command("CREATE TABLE"))
}

fn drop_tables<R: Reader>(view: &mut Overlay<'_, R>, names: &[ast::ObjectName], if_exists: bool) -> Result<Effects> {
    let mut dropped = Vec::new();
    for name in names {
        let name = object_name(name)?;
        let Some(table) = catalog::table(view, &name)? else {
            if if_exists {
                continue;
            }
            return Err(SqlError::new(code::UNDEFINED_TABLE, format!("table \"{name}\" does not exist")).into());
        };
        view.delete(Family::SqlCatalog, keys::table(table.id));
        view.delete(Family::SqlCatalog, keys::table_name(&name));
        view.delete(Family::SqlMeta, keys::next_rowid(table.id));
        dropped.push(table.id);
    }
    Ok(Effects { outcome: Outcome::command("DROP TABLE"), dropped })
}

/// Checks that `bound` can be stored in a column of type `to`.
fn assignable(bound: bind::Typed, to: DataType, column: &str) -> Result<Expr> {
    let ty = bound.ty;
    bound.coerce(to).map(|b| b.expr).map_err(|error| match error.code.as_str() {
        code::DATATYPE_MISMATCH => SqlError::new(
            code::DATATYPE_MISMATCH,
            format!("column \"{column}\" is of type {} but expression is of type {}", to.name(), ty.name()),
        )
        .into(),
        _ => error.into(),
    })
}

/// The value a column gets when an insert does not give one.
fn default_value(column: &Column) -> Result<Value> {
    let Some(text) = &column.default else { return Ok(Value::Null) };
    let expr = parse::expression(text)?;
    let bound = assignable(bind::constant(&expr)?, column.data_type, &column.name)?;
    Ok(bound.eval(&[])?)
}

/// `row` converted to the columns' types, or why it cannot be stored
/// (a value that does not fit, a NULL in a NOT NULL column).
fn check_row(table: &Table, mut row: Vec<Value>) -> Result<Vec<Value>> {
    for (value, column) in row.iter_mut().zip(&table.columns) {
        *value = std::mem::replace(value, Value::Null).assign(column.data_type)?;
        if value.is_null() && !column.nullable {
            return Err(SqlError::new(
                code::NOT_NULL_VIOLATION,
                format!(
                    "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                    column.name, table.name
                ),
            )
            .into());
        }
    }
    Ok(row)
}

/// Checks a complete row and stores it under a new key; refuses a key
/// that exists.
fn store_row<R: Reader>(view: &mut Overlay<'_, R>, table: &Table, row: Vec<Value>) -> Result<Vec<Value>> {
    let row = check_row(table, row)?;
    let key = if table.primary_key.is_empty() {
        let rowid = draw(view, &keys::next_rowid(table.id))?;
        keys::row(table.id, &[Value::Int(rowid as i64)])
    } else {
        let key: Vec<Value> = table.primary_key.iter().map(|&i| row[i].clone()).collect();
        let key_bytes = keys::row(table.id, &key);
        if view.get(Family::SqlRows, &key_bytes)?.is_some() {
            return Err(duplicate_key(table, &key).into());
        }
        key_bytes
    };
    view.put(Family::SqlRows, key, encode_row(&row));
    Ok(row)
}

fn duplicate_key(table: &Table, _key: &[Value]) -> SqlError {
    SqlError::new(
        code::UNIQUE_VIOLATION,
        format!("duplicate key value violates unique constraint \"{}_pkey\"", table.name),
    )
}

/// RETURNING: the bound output over the table's rows.
struct Returning {
    columns: Vec<OutputColumn>,
    exprs: Vec<Expr>,
    rows: Vec<Vec<Value>>,
}

impl Returning {
    fn bind(table: &Table, items: Option<&Vec<ast::SelectItem>>) -> Result<Option<Returning>> {
        let Some(items) = items else { return Ok(None) };
        let scope = Scope::of(table, None);
        let mut binder = Binder::new(&scope);
        let (mut columns, mut exprs) = (Vec::new(), Vec::new());
        for item in items {
            match item {
                ast::SelectItem::Wildcard(_) => {
                    for (i, column) in table.columns.iter().enumerate() {
                        columns.push(OutputColumn { name: column.name.clone(), data_type: column.data_type });
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
        Ok(Some(Returning { columns, exprs, rows: Vec::new() }))
    }

    fn add(&mut self, row: &[Value]) -> Result<()> {
        let values = self.exprs.iter().map(|e| e.eval(row)).collect::<std::result::Result<_, _>>()?;
        self.rows.push(values);
        Ok(())
    }
}

fn finish(command: &str, count: u64, returning: Option<Returning>) -> Outcome {
    match returning {
        Some(returning) => {
            Outcome::Rows(Rows { columns: returning.columns, rows: returning.rows, command: command.to_string() })
        }
        None => Outcome::Command { command: command.to_string(), rows: Some(count) },
    }
}

fn insert_rows<R: Reader>(view: &mut Overlay<'_, R>, insert: &ast::Insert) -> Result<Outcome> {
    let ast::TableObject::TableName(name) = &insert.table else {
        return Err(SqlError::unsupported("INSERT into a table function").into());
    };
    if insert.on.is_some() {
        return Err(SqlError::unsupported("ON CONFLICT").into());
    }
    let table = query::table(view, name)?;
    let targets: Vec<usize> = if insert.columns.is_empty() {
        // Without a column list, the values fill the first columns.
        let width = match source_width(insert.source.as_deref()) {
            Some(width) if width > table.columns.len() => {
                return Err(SqlError::new(code::SYNTAX_ERROR, "INSERT has more expressions than target columns").into())
            }
            Some(width) => width,
            None => table.columns.len(),
        };
        (0..width).collect()
    } else {
        let mut targets = Vec::new();
        for column in &insert.columns {
            let column = object_name(column)?;
            let position = table.column(&column).ok_or_else(|| {
                SqlError::new(
                    code::UNDEFINED_COLUMN,
                    format!("column \"{column}\" of relation \"{}\" does not exist", table.name),
                )
            })?;
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
    let Some(source) = &insert.source else {
        return Err(SqlError::unsupported("INSERT … DEFAULT VALUES").into());
    };
    let mut returning = Returning::bind(&table, insert.returning.as_ref())?;
    // Each source row's values for `targets`, `None` for DEFAULT.
    let source_rows: Vec<Vec<Option<Value>>> = match source.body.as_ref() {
        ast::SetExpr::Values(values) if source.order_by.is_none() && source.limit_clause.is_none() => {
            let mut rows = Vec::with_capacity(values.rows.len());
            for row in &values.rows {
                if row.len() > targets.len() {
                    return Err(
                        SqlError::new(code::SYNTAX_ERROR, "INSERT has more expressions than target columns").into()
                    );
                }
                if row.len() < targets.len() {
                    return Err(
                        SqlError::new(code::SYNTAX_ERROR, "INSERT has more target columns than expressions").into()
                    );
                }
                let mut values = Vec::with_capacity(row.len());
                for (expr, &target) in row.iter().zip(&targets) {
                    let column = &table.columns[target];
                    if matches!(expr, ast::Expr::Identifier(id) if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default"))
                    {
                        values.push(None);
                        continue;
                    }
                    let bound = assignable(bind::constant(expr)?, column.data_type, &column.name)?;
                    values.push(Some(bound.eval(&[])?));
                }
                rows.push(values);
            }
            rows
        }
        _ => {
            let plan = query::plan(view, source)?;
            if plan.columns.len() > targets.len() {
                return Err(SqlError::new(code::SYNTAX_ERROR, "INSERT has more expressions than target columns").into());
            }
            for (output, &target) in plan.columns.iter().zip(&targets) {
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
            exec::select(view, &plan)?.into_iter().map(|row| row.into_iter().map(Some).collect()).collect()
        }
    };
    let mut count = 0;
    for values in source_rows {
        let mut row: Vec<Value> = table.columns.iter().map(default_value).collect::<Result<_>>()?;
        for (value, &target) in values.into_iter().zip(&targets) {
            if let Some(value) = value {
                row[target] = value;
            }
        }
        let stored = store_row(view, &table, row)?;
        if let Some(returning) = &mut returning {
            returning.add(&stored)?;
        }
        count += 1;
    }
    // PostgreSQL's INSERT tag carries the inserted row's OID, always 0.
    Ok(finish("INSERT 0", count, returning))
}

/// How many values each row of a VALUES source has (its longest row).
fn source_width(source: Option<&ast::Query>) -> Option<usize> {
    match source?.body.as_ref() {
        ast::SetExpr::Values(values) => values.rows.iter().map(|row| row.len()).max(),
        _ => None,
    }
}

/// The one table an UPDATE or DELETE names.
fn target_table(view: &impl Reader, from: &ast::TableWithJoins) -> Result<(Table, Option<String>)> {
    query::from_table(view, std::slice::from_ref(from))?
        .ok_or_else(|| SqlError::new(code::SYNTAX_ERROR, "no table named").into())
}

fn filter(scope: &Scope, selection: Option<&ast::Expr>) -> Result<Option<Expr>> {
    Ok(selection.map(|selection| Binder::new(scope).condition(selection, "WHERE")).transpose()?)
}

fn update_rows<R: Reader>(view: &mut Overlay<'_, R>, update: &ast::Update) -> Result<Outcome> {
    if update.from.is_some() || !update.order_by.is_empty() || update.limit.is_some() {
        return Err(SqlError::unsupported("UPDATE … FROM, ORDER BY or LIMIT").into());
    }
    let (table, alias) = target_table(view, &update.table)?;
    let scope = Scope::of(&table, alias);
    let mut assignments = Vec::new();
    for assignment in &update.assignments {
        let ast::AssignmentTarget::ColumnName(name) = &assignment.target else {
            return Err(SqlError::unsupported("assigning a tuple of columns").into());
        };
        let name = object_name(name)?;
        let position = table.column(&name).ok_or_else(|| {
            SqlError::new(
                code::UNDEFINED_COLUMN,
                format!("column \"{name}\" of relation \"{}\" does not exist", table.name),
            )
        })?;
        let column = &table.columns[position];
        let is_default = matches!(&assignment.value, ast::Expr::Identifier(id) if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default"));
        let expr = if is_default {
            Expr::Literal(default_value(column)?)
        } else {
            assignable(Binder::new(&scope).bind(&assignment.value)?, column.data_type, &column.name)?
        };
        assignments.push((position, expr));
    }
    let filter = filter(&scope, update.selection.as_ref())?;
    let mut returning = Returning::bind(&table, update.returning.as_ref())?;
    let mut count = 0;
    for (key, row) in exec::matching_rows(view, &table, filter.as_ref())? {
        let mut updated = row.clone();
        for (position, expr) in &assignments {
            updated[*position] = expr.eval(&row)?;
        }
        let key_changed =
            table.primary_key.iter().any(|&i| updated[i].compare(&row[i]) != Some(std::cmp::Ordering::Equal));
        let stored = if key_changed {
            view.delete(Family::SqlRows, key);
            store_row(view, &table, updated)?
        } else {
            let checked = check_row(&table, updated)?;
            view.put(Family::SqlRows, key, encode_row(&checked));
            checked
        };
        if let Some(returning) = &mut returning {
            returning.add(&stored)?;
        }
        count += 1;
    }
    Ok(finish("UPDATE", count, returning))
}

fn delete_rows<R: Reader>(view: &mut Overlay<'_, R>, delete: &ast::Delete) -> Result<Outcome> {
    if delete.using.is_some() || !delete.order_by.is_empty() || delete.limit.is_some() || !delete.tables.is_empty() {
        return Err(SqlError::unsupported("DELETE … USING, ORDER BY or LIMIT").into());
    }
    let from = match &delete.from {
        ast::FromTable::WithFromKeyword(from) | ast::FromTable::WithoutKeyword(from) => from,
    };
    let [from] = from.as_slice() else {
        return Err(SqlError::unsupported("DELETE from several tables").into());
    };
    let (table, alias) = target_table(view, from)?;
    let scope = Scope::of(&table, alias);
    let filter = filter(&scope, delete.selection.as_ref())?;
    let mut returning = Returning::bind(&table, delete.returning.as_ref())?;
    let mut count = 0;
    for (key, row) in exec::matching_rows(view, &table, filter.as_ref())? {
        view.delete(Family::SqlRows, key);
        if let Some(returning) = &mut returning {
            returning.add(&row)?;
        }
        count += 1;
    }
    Ok(finish("DELETE", count, returning))
}
