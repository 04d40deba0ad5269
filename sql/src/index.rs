//! Secondary indexes kept in step with their table's rows.
//!
//! Every change of a stored row goes through [`add`] and [`remove`]
//! (rows are written by [`crate::write::RowWriter`], deleted by DELETE,
//! rewritten by ALTER TABLE), so an index has exactly one entry per row
//! of its table, in the same overlay as the row: a statement or a
//! transaction that fails leaves neither.
//!
//! A unique index refuses an entry whose values, none of them NULL, equal
//! another row's (23505). The check reads the index as the statement
//! sees it, so inside a transaction it sees the transaction's own
//! writes, and at commit the statements run again against the log's
//! order: two transactions that insert the same value cannot both commit.

use storage::{Family, Overlay, Reader};

use crate::catalog::{Index, Table};
use crate::error::{code, Error, Result, SqlError};
use crate::exec;
use crate::keys;
use crate::value::Value;

/// The values of `row` that `index` holds.
fn indexed(index: &Index, row: &[Value]) -> Vec<Value> {
    index.columns.iter().map(|&i| row[i].clone()).collect()
}

/// Adds the entries of the row stored under `row_key` to every index of
/// `table`, refusing a duplicate in a unique one.
pub fn add<R: Reader>(view: &mut Overlay<'_, R>, table: &Table, row_key: &[u8], row: &[Value]) -> Result<()> {
    for index in &table.indexes {
        add_entry(view, index, row_key, row)?;
    }
    Ok(())
}

fn add_entry<R: Reader>(view: &mut Overlay<'_, R>, index: &Index, row_key: &[u8], row: &[Value]) -> Result<()> {
    let values = indexed(index, row);
    if index.unique && !values.iter().any(Value::is_null) {
        let prefix = keys::index_prefix(index.id, &values);
        if let Some(entry) = view.scan(Family::SqlIndex, &prefix, Some(&keys::prefix_end(&prefix))).next() {
            let (_, primary_key) = entry?;
            if *primary_key != *keys::primary_key_of(row_key) {
                return Err(SqlError::new(
                    code::UNIQUE_VIOLATION,
                    format!("duplicate key value violates unique constraint \"{}\"", index.name),
                )
                .into());
            }
        }
    }
    view.put(Family::SqlIndex, keys::index_entry(index.id, &values, row_key), keys::primary_key_of(row_key).to_vec());
    Ok(())
}

/// Removes the entries of the row stored under `row_key` from every index
/// of `table`.
pub fn remove<R: Reader>(view: &mut Overlay<'_, R>, table: &Table, row_key: &[u8], row: &[Value]) {
    for index in &table.indexes {
        view.delete(Family::SqlIndex, keys::index_entry(index.id, &indexed(index, row), row_key));
    }
}

/// Replaces the entries of a row whose key stays `row_key` and whose
/// values change from `old` to `new`: only the indexes whose values
/// change are touched.
pub fn update<R: Reader>(
    view: &mut Overlay<'_, R>,
    table: &Table,
    row_key: &[u8],
    old: &[Value],
    new: &[Value],
) -> Result<()> {
    let changed = |index: &&Index| index.columns.iter().any(|&i| old[i] != new[i]);
    let changed: Vec<&Index> = table.indexes.iter().filter(changed).collect();
    for index in &changed {
        view.delete(Family::SqlIndex, keys::index_entry(index.id, &indexed(index, old), row_key));
    }
    for index in changed {
        add_entry(view, index, row_key, new)?;
    }
    Ok(())
}

/// Fills `index`, new on `table`, with an entry per row; a unique index
/// over duplicate values is refused as PostgreSQL refuses it.
pub fn backfill<R: Reader>(view: &mut Overlay<'_, R>, table: &Table, index: &Index) -> Result<()> {
    for (row_key, row) in exec::matching_rows(view, table, None)? {
        add_entry(view, index, &row_key, &row).map_err(|error| match error {
            Error::Sql(error) if error.code == code::UNIQUE_VIOLATION => {
                SqlError::new(code::UNIQUE_VIOLATION, format!("could not create unique index \"{}\"", index.name))
                    .into()
            }
            other => other,
        })?;
    }
    Ok(())
}

/// PostgreSQL's name for a new index of `table` over `columns`: the
/// table, the columns, and `suffix` (`idx`, or `key` for a UNIQUE
/// constraint), numbered if the name is taken.
pub fn default_name(view: &impl Reader, table: &Table, columns: &[usize], suffix: &str) -> Result<String> {
    let mut base = table.name.clone();
    for &column in columns {
        base.push('_');
        base.push_str(&table.columns[column].name);
    }
    for n in 0.. {
        let name = match n {
            0 => format!("{base}_{suffix}"),
            n => format!("{base}_{suffix}{n}"),
        };
        let taken = table.indexes.iter().any(|i| i.name == name) || crate::catalog::refuse_taken(view, &name).is_err();
        if !taken {
            return Ok(name);
        }
    }
    unreachable!("some numbered name is free")
}
