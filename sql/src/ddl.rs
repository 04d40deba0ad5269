//! CREATE TABLE and DROP TABLE: the catalog's changes, executed at
//! apply like every write.

use sqlparser::ast;
use storage::{Family, Overlay, Reader};

use crate::bind::Binder;
use crate::bind::{self, ident, object_name};
use crate::catalog::{self, Check, Column, Table};
use crate::command::Outcome;
use crate::error::{code, Error, Result, SqlError};
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
    if catalog::table(view, &name)?.is_some() {
        if create.if_not_exists {
            return Ok(Outcome::command("CREATE TABLE"));
        }
        return Err(SqlError::new(code::DUPLICATE_TABLE, format!("relation \"{name}\" already exists")).into());
    }
    let mut columns: Vec<Column> = Vec::new();
    let mut primary_key: Option<Vec<usize>> = None;
    let mut checks: Vec<CheckDefinition<'_>> = Vec::new();
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
            ast::TableConstraint::Check(check) => {
                checks.push(CheckDefinition { name: check.name.as_ref().map(ident), expr: &check.expr })
            }
            other => return Err(SqlError::unsupported(format!("the table constraint {other}")).into()),
        }
    }
    let id = u32::try_from(draw(view, keys::NEXT_TABLE_ID)?).map_err(|_| Error::Corrupt("table ids ran out".into()))?;
    let mut table =
        Table { id, name: name.clone(), columns, primary_key: primary_key.unwrap_or_default(), checks: Vec::new() };
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
    catalog::store(view, &table);
    view.put(Family::SqlCatalog, keys::table_name(&name), id.to_be_bytes().to_vec());
    Ok(Outcome::command("CREATE TABLE"))
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
        catalog::remove(view, &table);
        view.delete(Family::SqlCatalog, keys::table_name(&name));
        view.delete(Family::SqlMeta, keys::next_rowid(table.id));
        dropped.push(table.id);
    }
    Ok(Effects { outcome: Outcome::command("DROP TABLE"), dropped })
}
