//! TRUNCATE and ALTER TABLE, executed at apply like every write.
//!
//! TRUNCATE gives the table a new id: its rows become unreachable at once
//! (also inside a transaction's overlay) and the batch deletes the old id's
//! range. ALTER TABLE changes the descriptor; adding or dropping a column
//! or adding a primary key rewrites every row, in the statement's overlay,
//! so a failure (a NULL, a duplicate key) writes nothing.

use std::collections::HashSet;
use std::sync::Arc;

use sqlparser::ast;
use storage::{Family, Overlay, Reader};

use crate::bind::{ident, object_name};
use crate::catalog::{self, Table};
use crate::command::Outcome;
use crate::ddl::{self, column_definition};
use crate::error::{code, Error, Result, SqlError};
use crate::exec::{self, encode_row};
use crate::index;
use crate::keys;
use crate::value::Value;
use crate::write::{check_columns, default_value, Effects};

fn missing(name: &str) -> Error {
    SqlError::new(code::UNDEFINED_TABLE, format!("relation \"{name}\" does not exist")).into()
}

pub fn truncate<R: Reader>(view: &mut Overlay<'_, R>, truncate: &ast::Truncate) -> Result<Effects> {
    if truncate.partitions.is_some() {
        return Err(SqlError::unsupported("TRUNCATE … PARTITION").into());
    }
    let mut dropped = Vec::new();
    for target in &truncate.table_names {
        let name = object_name(&target.name)?;
        let Some(table) = catalog::table(view, &name)? else {
            if truncate.if_exists {
                continue;
            }
            return Err(missing(&name));
        };
        let id = ddl::new_relation_id(view)?;
        catalog::remove(view, &table);
        view.delete(Family::SqlMeta, keys::next_rowid(table.id));
        dropped.push(table.id);
        let mut emptied = Table { id, ..Arc::unwrap_or_clone(table) };
        for index in &mut emptied.indexes {
            dropped.push(index.id);
            index.id = ddl::new_relation_id(view)?;
        }
        catalog::store(view, &emptied);
        view.put(Family::SqlCatalog, keys::table_name(&name), id.to_be_bytes().to_vec());
    }
    Ok(Effects { outcome: Outcome::command("TRUNCATE TABLE"), dropped })
}

pub fn alter_table<R: Reader>(view: &mut Overlay<'_, R>, alter: &ast::AlterTable) -> Result<Effects> {
    if alter.table_type.is_some() || alter.location.is_some() || alter.on_cluster.is_some() {
        return Err(SqlError::unsupported(format!("{alter}")).into());
    }
    let name = object_name(&alter.name)?;
    let Some(mut table) = catalog::table(view, &name)?.map(Arc::unwrap_or_clone) else {
        if alter.if_exists {
            return Ok(Effects { outcome: Outcome::command("ALTER TABLE"), dropped: Vec::new() });
        }
        return Err(missing(&name));
    };
    let mut dropped = Vec::new();
    for operation in &alter.operations {
        apply(view, &mut table, operation, &mut dropped)?;
    }
    catalog::store(view, &table);
    Ok(Effects { outcome: Outcome::command("ALTER TABLE"), dropped })
}

/// Applies one operation to `table`, adding the ids of relations it
/// drops (indexes) to `dropped`.
fn apply<R: Reader>(
    view: &mut Overlay<'_, R>,
    table: &mut Table,
    operation: &ast::AlterTableOperation,
    dropped: &mut Vec<u32>,
) -> Result<()> {
    use ast::AlterTableOperation as A;
    match operation {
        A::RenameTable { table_name: ast::RenameTableNameKind::To(new) | ast::RenameTableNameKind::As(new) } => {
            let new = object_name(new)?;
            catalog::refuse_taken(view, &new)?;
            refuse_if_viewed(view, table, "renaming")?;
            view.delete(Family::SqlCatalog, keys::table_name(&table.name));
            view.put(Family::SqlCatalog, keys::table_name(&new), table.id.to_be_bytes().to_vec());
            table.name = new;
        }
        A::RenameColumn { old_column_name, new_column_name } => {
            let (old, new) = (ident(old_column_name), ident(new_column_name));
            let position = table.existing_column(&old)?;
            refuse_if_checked(table, position, "renaming")?;
            refuse_if_viewed(view, table, "renaming a column of")?;
            if table.column(&new).is_some() {
                return Err(duplicate_column(table, &new));
            }
            table.columns[position].name = new;
        }
        A::AddColumn { if_not_exists, column_def, column_position: None, .. } => {
            let (column, key, checks) = column_definition(column_def)?;
            if !checks.is_empty() {
                return Err(SqlError::unsupported("ADD COLUMN … CHECK").into());
            }
            if table.column(&column.name).is_some() {
                if *if_not_exists {
                    return Ok(());
                }
                return Err(duplicate_column(table, &column.name));
            }
            if key {
                return Err(SqlError::unsupported("ADD COLUMN … PRIMARY KEY").into());
            }
            // A DEFAULT is a constant: one value for every existing row.
            let value = default_value(&column)?.assign(column.data_type)?;
            for (key, mut row) in exec::matching_rows(view, table, None)? {
                if value.is_null() && !column.nullable {
                    return Err(contains_nulls(table, &column.name));
                }
                row.push(value.clone());
                view.put(Family::SqlRows, key, encode_row(&row));
            }
            table.columns.push(column);
            for unique in ddl::column_uniques(column_def) {
                ddl::add_unique(view, table, unique, Some(table.columns.len() - 1))?;
            }
        }
        A::DropColumn { column_names, if_exists, drop_behavior, .. } => {
            if matches!(drop_behavior, Some(ast::DropBehavior::Cascade)) {
                return Err(SqlError::unsupported("DROP COLUMN … CASCADE").into());
            }
            for column in column_names {
                let column = ident(column);
                let position = match table.existing_column(&column) {
                    Ok(position) => position,
                    Err(_) if *if_exists => continue,
                    Err(error) => return Err(error.into()),
                };
                refuse_if_checked(table, position, "dropping")?;
                crate::view::refuse_if_depended_on(
                    view,
                    &table.name,
                    &format!("drop column {column} of table {}", table.name),
                    &[],
                )?;
                if table.primary_key.contains(&position) {
                    return Err(SqlError::unsupported(format!(
                        "dropping \"{column}\", a column of the primary key of \"{}\"",
                        table.name
                    ))
                    .into());
                }
                for (key, mut row) in exec::matching_rows(view, table, None)? {
                    row.remove(position);
                    view.put(Family::SqlRows, key, encode_row(&row));
                }
                table.columns.remove(position);
                // As in PostgreSQL, the indexes over the column go with it.
                for index in table.indexes.extract_if(.., |i| i.columns.contains(&position)) {
                    view.delete(Family::SqlCatalog, keys::index_name(&index.name));
                    dropped.push(index.id);
                }
                let shift = |column: &mut usize| {
                    if *column > position {
                        *column -= 1;
                    }
                };
                table.primary_key.iter_mut().for_each(shift);
                table.indexes.iter_mut().flat_map(|i| &mut i.columns).for_each(shift);
            }
        }
        A::AddConstraint { constraint: ast::TableConstraint::PrimaryKey(key), not_valid: false } => {
            if !table.primary_key.is_empty() {
                return Err(SqlError::new(
                    code::INVALID_TABLE_DEFINITION,
                    format!("multiple primary keys for table \"{}\" are not allowed", table.name),
                )
                .into());
            }
            let mut positions = Vec::new();
            for part in &key.columns {
                let ast::Expr::Identifier(column) = &part.column.expr else {
                    return Err(SqlError::unsupported(format!("the key part {}", part.column.expr)).into());
                };
                let column = ident(column);
                positions.push(table.existing_column(&column)?);
            }
            // Rows move from their hidden row ids to their key. A key can
            // encode like another row's row id, so every old key goes
            // before any new one is written.
            let rows = exec::matching_rows(view, table, None)?;
            for (old_key, _) in &rows {
                view.delete(Family::SqlRows, old_key.clone());
            }
            let mut seen = HashSet::new();
            for (_, row) in rows {
                let key: Vec<Value> = positions.iter().map(|&i| row[i].clone()).collect();
                if let Some(&i) = positions.iter().find(|&&i| row[i].is_null()) {
                    return Err(contains_nulls(table, &table.columns[i].name));
                }
                let new_key = keys::row(table.id, &key);
                if !seen.insert(new_key.clone()) {
                    return Err(SqlError::new(
                        code::UNIQUE_VIOLATION,
                        format!("could not create unique index \"{}_pkey\"", table.name),
                    )
                    .into());
                }
                view.put(Family::SqlRows, new_key, encode_row(&row));
            }
            for &i in &positions {
                table.columns[i].nullable = false;
            }
            table.primary_key = positions;
            view.delete(Family::SqlMeta, keys::next_rowid(table.id));
            // Index entries name rows by key: every index is built anew.
            for i in 0..table.indexes.len() {
                dropped.push(table.indexes[i].id);
                table.indexes[i].id = ddl::new_relation_id(view)?;
                index::backfill(view, table, &table.indexes[i])?;
            }
        }
        A::AddConstraint { constraint: ast::TableConstraint::Unique(unique), not_valid: false } => {
            ddl::add_unique(view, table, unique, None)?;
        }
        A::DropConstraint { if_exists, name, drop_behavior } => {
            if matches!(drop_behavior, Some(ast::DropBehavior::Cascade)) {
                return Err(SqlError::unsupported("DROP CONSTRAINT … CASCADE").into());
            }
            let name = ident(name);
            if let Some(position) = table.checks.iter().position(|c| c.name == name) {
                table.checks.remove(position);
            } else if let Some(position) = table.indexes.iter().position(|i| i.constraint && i.name == name) {
                let index = table.indexes.remove(position);
                view.delete(Family::SqlCatalog, keys::index_name(&index.name));
                dropped.push(index.id);
            } else if !*if_exists {
                return Err(SqlError::new(
                    code::UNDEFINED_OBJECT,
                    format!("constraint \"{name}\" of relation \"{}\" does not exist", table.name),
                )
                .into());
            }
        }
        other => return Err(SqlError::unsupported(format!("ALTER TABLE … {other}")).into()),
    }
    Ok(())
}

/// 0A000 when a view reads `table`: views keep their query as SQL text,
/// which names the table and its columns.
fn refuse_if_viewed(view: &impl Reader, table: &Table, doing: &str) -> Result<()> {
    if crate::view::depended_on(view, &table.name, &[])? {
        return Err(SqlError::unsupported(format!("{doing} table \"{}\", which a view reads", table.name)).into());
    }
    Ok(())
}

/// 0A000 when a CHECK constraint reads column `position` (its SQL text
/// names the column).
fn refuse_if_checked(table: &Table, position: usize, doing: &str) -> Result<()> {
    for check in &table.checks {
        if check_columns(table, check)?.contains(&position) {
            return Err(SqlError::unsupported(format!(
                "{doing} column \"{}\", which check constraint \"{}\" reads",
                table.columns[position].name, check.name
            ))
            .into());
        }
    }
    Ok(())
}

fn duplicate_column(table: &Table, column: &str) -> Error {
    SqlError::new(code::DUPLICATE_COLUMN, format!("column \"{column}\" of relation \"{}\" already exists", table.name))
        .into()
}

fn contains_nulls(table: &Table, column: &str) -> Error {
    SqlError::new(
        code::NOT_NULL_VIOLATION,
        format!("column \"{column}\" of relation \"{}\" contains null values", table.name),
    )
    .into()
}
