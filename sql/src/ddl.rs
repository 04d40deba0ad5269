//! CREATE/DROP TABLE, CREATE/DROP INDEX and UNIQUE constraints: the
//! catalog's changes, executed at apply like every write. A new index is
//! filled from the table's rows in the same statement.

use std::sync::Arc;

use sqlparser::ast;
use storage::{Family, Overlay, Reader};

use crate::bind::Binder;
use crate::bind::{self, ident, object_name};
use crate::catalog::{self, Check, Column, Index, Table};
use crate::command::Outcome;
use crate::error::{code, Error, Result, SqlError};
use crate::index;
use crate::keys;
use crate::scope::Scope;
use crate::types::DataType;
use crate::write::{assignable, draw, Effects};

pub fn create_table<R: Reader>(view: &mut Overlay<'_, R>, create: &ast::CreateTable) -> Result<Outcome> {
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
    if catalog::table(view, &name)?.is_some() && create.if_not_exists {
        return Ok(Outcome::command("CREATE TABLE"));
    }
    catalog::refuse_taken(view, &name)?;
    let mut columns: Vec<Column> = Vec::new();
    let mut primary_key: Option<Vec<usize>> = None;
    let mut checks: Vec<CheckDefinition<'_>> = Vec::new();
    // Each UNIQUE constraint, with its column when a column declares it.
    let mut uniques: Vec<(&ast::UniqueConstraint, Option<usize>)> = Vec::new();
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
        let (column, key, column_checks) = column_definition(def)?;
        checks.extend(column_checks);
        uniques.extend(column_uniques(def).map(|unique| (unique, Some(columns.len()))));
        if key {
            if primary_key.is_some() {
                return Err(multiple_keys().into());
            }
            primary_key = Some(vec![columns.len()]);
        }
        columns.push(column);
    }
    for constraint in &create.constraints {
        match constraint {
            ast::TableConstraint::PrimaryKey(key) => {
                if primary_key.is_some() {
                    return Err(multiple_keys().into());
                }
                let positions = index_columns(&columns, &key.columns, "named in key does not exist")?;
                for &position in &positions {
                    columns[position].nullable = false;
                }
                primary_key = Some(positions);
            }
            ast::TableConstraint::Check(check) => {
                checks.push(CheckDefinition { name: check.name.as_ref().map(ident), expr: &check.expr })
            }
            ast::TableConstraint::Unique(unique) => uniques.push((unique, None)),
            other => return Err(SqlError::unsupported(format!("the table constraint {other}")).into()),
        }
    }
    let id = new_relation_id(view)?;
    let mut table = Table {
        id,
        name: name.clone(),
        columns,
        primary_key: primary_key.unwrap_or_default(),
        checks: Vec::new(),
        indexes: Vec::new(),
    };
    for CheckDefinition { name: named, expr } in checks {
        let bound = Binder::new(&Scope::of(&table, None)).condition(expr, "CHECK")?;
        // PostgreSQL's name: table, the one column it reads if one, "check".
        let columns = bound.columns();
        let name = named.unwrap_or_else(|| match columns.iter().collect::<Vec<_>>().as_slice() {
            [only] => format!("{}_{}_check", table.name, table.columns[**only].name),
            _ => format!("{}_check", table.name),
        });
        table.checks.push(Check { name, expr: expr.to_string() });
    }
    view.put(Family::SqlCatalog, keys::table_name(&name), id.to_be_bytes().to_vec());
    for (unique, column) in uniques {
        add_unique(view, &mut table, unique, column)?;
    }
    catalog::store(view, &table);
    Ok(Outcome::command("CREATE TABLE"))
}

/// The UNIQUE constraints a column definition declares.
pub fn column_uniques(def: &ast::ColumnDef) -> impl Iterator<Item = &ast::UniqueConstraint> {
    def.options.iter().filter_map(|option| match &option.option {
        ast::ColumnOption::Unique(unique) => Some(unique),
        _ => None,
    })
}

/// Adds a UNIQUE constraint's index to `table` and fills it: over
/// `column` when a column declares it, else over the columns it names.
pub fn add_unique<R: Reader>(
    view: &mut Overlay<'_, R>,
    table: &mut Table,
    unique: &ast::UniqueConstraint,
    column: Option<usize>,
) -> Result<()> {
    if !unique.include.is_empty() || unique.nulls_distinct == ast::NullsDistinctOption::NotDistinct {
        return Err(SqlError::unsupported(format!("the constraint {unique}")).into());
    }
    let columns = match column {
        Some(column) => vec![column],
        None => index_columns(&table.columns, &unique.columns, "named in key does not exist")?,
    };
    let name = match &unique.name {
        Some(name) => ident(name),
        None => index::default_name(view, table, &columns, "key")?,
    };
    add_index(view, table, Index { id: 0, name, columns, unique: true, constraint: true })
}

/// The positions among `table_columns` of the columns a key or index
/// definition names; `missing` is how PostgreSQL words one that does not
/// exist.
fn index_columns(table_columns: &[Column], columns: &[ast::IndexColumn], missing: &str) -> Result<Vec<usize>> {
    let mut positions = Vec::with_capacity(columns.len());
    for column in columns {
        let ast::Expr::Identifier(name) = &column.column.expr else {
            return Err(SqlError::unsupported(format!("an index on the expression {}", column.column.expr)).into());
        };
        // DESC, NULLS FIRST and operator classes change how PostgreSQL
        // orders entries; Seshat's index serves lookups only, whatever
        // the order, so they change nothing here.
        let name = ident(name);
        let position = table_columns
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| SqlError::new(code::UNDEFINED_COLUMN, format!("column \"{name}\" {missing}")))?;
        positions.push(position);
    }
    Ok(positions)
}

/// Gives `index` an id, fills it from `table`'s rows and adds it to
/// `table` (the caller stores the table).
fn add_index<R: Reader>(view: &mut Overlay<'_, R>, table: &mut Table, mut index: Index) -> Result<()> {
    catalog::refuse_taken(view, &index.name)?;
    if table.indexes.iter().any(|i| i.name == index.name) {
        return Err(SqlError::new(code::DUPLICATE_TABLE, format!("relation \"{}\" already exists", index.name)).into());
    }
    index.id = new_relation_id(view)?;
    index::backfill(view, table, &index)?;
    table.indexes.push(index);
    Ok(())
}

/// A new id for a table or an index (never reused; never
/// [`keys::STAGE_RELATION`]).
pub fn new_relation_id<R: Reader>(view: &mut Overlay<'_, R>) -> Result<u32> {
    u32::try_from(draw(view, keys::NEXT_TABLE_ID)?)
        .ok()
        .filter(|&id| id != keys::STAGE_RELATION)
        .ok_or_else(|| Error::Corrupt("relation ids ran out".into()))
}

pub fn create_index<R: Reader>(view: &mut Overlay<'_, R>, create: &ast::CreateIndex) -> Result<Outcome> {
    let method_supported = match &create.using {
        None => true,
        Some(method) => matches!(method.to_string().to_lowercase().as_str(), "btree" | "hash"),
    };
    if !method_supported
        || create.predicate.is_some()
        || !create.include.is_empty()
        || create.nulls_distinct == Some(false)
        || !create.with.is_empty()
    {
        return Err(SqlError::unsupported(format!("this form of CREATE INDEX ({create})")).into());
    }
    let table_name = object_name(&create.table_name)?;
    let mut table = catalog::table(view, &table_name)?
        .map(Arc::unwrap_or_clone)
        .ok_or_else(|| SqlError::new(code::UNDEFINED_TABLE, format!("relation \"{table_name}\" does not exist")))?;
    let columns = index_columns(&table.columns, &create.columns, "does not exist")?;
    let name = match &create.name {
        Some(name) => object_name(name)?,
        None => index::default_name(view, &table, &columns, "idx")?,
    };
    if create.if_not_exists && catalog::refuse_taken(view, &name).is_err() {
        return Ok(Outcome::command("CREATE INDEX"));
    }
    add_index(view, &mut table, Index { id: 0, name, columns, unique: create.unique, constraint: false })?;
    catalog::store(view, &table);
    Ok(Outcome::command("CREATE INDEX"))
}

pub fn drop_indexes<R: Reader>(
    view: &mut Overlay<'_, R>,
    names: &[ast::ObjectName],
    if_exists: bool,
) -> Result<Effects> {
    let mut dropped = Vec::new();
    for name in names {
        let name = object_name(name)?;
        let Some(mut table) = catalog::table_of_index(view, &name)?.map(Arc::unwrap_or_clone) else {
            if if_exists {
                continue;
            }
            return Err(SqlError::new(code::UNDEFINED_OBJECT, format!("index \"{name}\" does not exist")).into());
        };
        let position = table.indexes.iter().position(|i| i.name == name).expect("table_of_index checked it");
        if table.indexes[position].constraint {
            return Err(SqlError::new(
                code::DEPENDENT_OBJECTS_STILL_EXIST,
                format!("cannot drop index {name} because constraint {name} on table {} requires it", table.name),
            )
            .into());
        }
        let index = table.indexes.remove(position);
        view.delete(Family::SqlCatalog, keys::index_name(&index.name));
        dropped.push(index.id);
        catalog::store(view, &table);
    }
    Ok(Effects { outcome: Outcome::command("DROP INDEX"), dropped })
}

/// A CHECK as written: its name if given, its expression.
pub struct CheckDefinition<'a> {
    pub name: Option<String>,
    pub expr: &'a ast::Expr,
}

/// A column as its definition gives it, whether it is declared PRIMARY
/// KEY (then NOT NULL), and its CHECK constraints (name if given,
/// expression).
pub fn column_definition(def: &ast::ColumnDef) -> Result<(Column, bool, Vec<CheckDefinition<'_>>)> {
    let name = ident(&def.name);
    let data_type = DataType::from_ast(&def.data_type)?;
    let mut column = Column { name: name.clone(), data_type, nullable: true, default: None };
    let mut key = false;
    let mut checks = Vec::new();
    for option in &def.options {
        match &option.option {
            ast::ColumnOption::Null => {}
            ast::ColumnOption::NotNull => column.nullable = false,
            ast::ColumnOption::Default(expr) => {
                let bound = bind::constant(expr).map_err(|error| match error.code.as_str() {
                    code::UNDEFINED_COLUMN => {
                        SqlError::new(code::FEATURE_NOT_SUPPORTED, "cannot use column reference in DEFAULT expression")
                    }
                    _ => error,
                })?;
                assignable(bound, data_type, &name)?;
                column.default = Some(expr.to_string());
            }
            ast::ColumnOption::PrimaryKey(_) => {
                key = true;
                column.nullable = false;
            }
            // The caller adds the constraint's index (`column_uniques`).
            ast::ColumnOption::Unique(_) => {}
            ast::ColumnOption::Check(check) => checks.push(CheckDefinition {
                name: option.name.as_ref().or(check.name.as_ref()).map(ident),
                expr: &check.expr,
            }),
            other => return Err(SqlError::unsupported(format!("the column constraint {other}")).into()),
        }
    }
    Ok((column, key, checks))
}

pub fn drop_tables<R: Reader>(
    view: &mut Overlay<'_, R>,
    names: &[ast::ObjectName],
    if_exists: bool,
) -> Result<Effects> {
    let mut dropped = Vec::new();
    for name in names {
        let name = object_name(name)?;
        let Some(table) = catalog::table(view, &name)? else {
            if if_exists {
                continue;
            }
            return Err(SqlError::new(code::UNDEFINED_TABLE, format!("table \"{name}\" does not exist")).into());
        };
        crate::view::refuse_if_depended_on(view, &name, &format!("drop table {name}"), &[])?;
        catalog::remove(view, &table);
        view.delete(Family::SqlCatalog, keys::table_name(&name));
        view.delete(Family::SqlMeta, keys::next_rowid(table.id));
        dropped.push(table.id);
        dropped.extend(table.indexes.iter().map(|i| i.id));
    }
    Ok(Effects { outcome: Outcome::command("DROP TABLE"), dropped })
}
