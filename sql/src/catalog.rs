//! The catalog: table descriptors, replicated state of the `sql` group,
//! read from whatever view a statement runs on (a snapshot for reads, the
//! apply overlay for writes), so a statement always sees the schema of
//! the data it reads. Tables of a stored catalog are decoded once per
//! catalog version ([`crate::table_cache`]).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use storage::{Family, Overlay, Reader};

use crate::error::{code, Error, Result, SqlError};
use crate::keys;
use crate::table_cache;
use crate::types::DataType;

/// A column of a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub data_type: DataType,
    pub nullable: bool,
    /// The DEFAULT expression as SQL text, evaluated at each insert.
    pub default: Option<String>,
}

/// A CHECK constraint: a boolean expression over a row of its table, as
/// SQL text; a row passes unless it is false.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub expr: String,
}

/// A secondary index of a table: its entries, in `sql_index` under the
/// index's own id, map the indexed columns' values to row keys
/// ([`crate::index`] keeps them in step with the rows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Index {
    /// Drawn from the same counter as table ids: an id names one
    /// relation's key range, in `sql_rows` or `sql_index`.
    pub id: u32,
    pub name: String,
    /// Positions of the indexed columns, in index order.
    pub columns: Vec<usize>,
    /// No two rows may have equal values in every indexed column (NULLs
    /// are never equal).
    pub unique: bool,
    /// The index of a UNIQUE constraint: it goes with the constraint
    /// (ALTER TABLE … DROP CONSTRAINT), not with DROP INDEX.
    pub constraint: bool,
}

/// A table: its columns, primary key, CHECK constraints and indexes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub id: u32,
    pub name: String,
    pub columns: Vec<Column>,
    /// Positions of the primary-key columns; empty when the table has
    /// none, and rows are keyed by a hidden row id.
    pub primary_key: Vec<usize>,
    /// Kept under their own key (`keys::checks`), not in the descriptor,
    /// whose encoding predates them.
    #[serde(skip)]
    pub checks: Vec<Check>,
    /// Kept under their own key (`keys::indexes`), like the checks.
    #[serde(skip)]
    pub indexes: Vec<Index>,
}

impl Table {
    /// The position of column `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The position of column `name`, or PostgreSQL's 42703 naming this
    /// table.
    pub fn existing_column(&self, name: &str) -> std::result::Result<usize, SqlError> {
        self.column(name).ok_or_else(|| {
            SqlError::new(
                code::UNDEFINED_COLUMN,
                format!("column \"{name}\" of relation \"{}\" does not exist", self.name),
            )
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("tables serialize")
    }
}

/// The table named `name`, as `reader` has the catalog.
pub fn table(reader: &impl Reader, name: &str) -> Result<Option<Arc<Table>>> {
    if reader.has_pending(Family::SqlCatalog) {
        return Ok(decode_table(reader, name)?.map(Arc::new));
    }
    match reader.get(Family::SqlMeta, keys::CATALOG_VERSION)? {
        Some(version) => {
            let version: [u8; 8] =
                version.as_slice().try_into().map_err(|_| Error::Corrupt("catalog version".into()))?;
            table_cache::table(reader.store_id(), u64::from_be_bytes(version), name, || decode_table(reader, name))
        }
        None => Ok(decode_table(reader, name)?.map(Arc::new)),
    }
}

/// Every table, in name order.
pub fn tables(reader: &impl Reader) -> Result<Vec<Arc<Table>>> {
    let (start, end) = keys::table_names();
    let mut names = Vec::new();
    for entry in reader.scan(Family::SqlCatalog, &start, Some(&end)) {
        let (key, _) = entry?;
        let name = std::str::from_utf8(&key[start.len()..]).map_err(|_| Error::Corrupt("a table name".into()))?;
        names.push(name.to_string());
    }
    let mut tables = Vec::with_capacity(names.len());
    for name in names {
        tables.push(table(reader, &name)?.ok_or_else(|| Error::Corrupt(format!("table '{name}' vanished")))?);
    }
    Ok(tables)
}

/// The table named `name`, read and decoded from `reader`'s catalog.
fn decode_table(reader: &impl Reader, name: &str) -> Result<Option<Table>> {
    let Some(id) = reader.get(Family::SqlCatalog, &keys::table_name(name))? else { return Ok(None) };
    let id: [u8; 4] = id.as_slice().try_into().map_err(|_| Error::Corrupt(format!("table id of '{name}'")))?;
    let Some(bytes) = reader.get(Family::SqlCatalog, &keys::table(u32::from_be_bytes(id)))? else {
        return Err(Error::Corrupt(format!("table '{name}' has a name but no descriptor")));
    };
    let mut table: Table =
        postcard::from_bytes(&bytes).map_err(|e| Error::Corrupt(format!("descriptor of '{name}': {e}")))?;
    if let Some(bytes) = reader.get(Family::SqlCatalog, &keys::checks(table.id))? {
        table.checks = postcard::from_bytes(&bytes).map_err(|e| Error::Corrupt(format!("checks of '{name}': {e}")))?;
    }
    if let Some(bytes) = reader.get(Family::SqlCatalog, &keys::indexes(table.id))? {
        table.indexes =
            postcard::from_bytes(&bytes).map_err(|e| Error::Corrupt(format!("indexes of '{name}': {e}")))?;
    }
    Ok(Some(table))
}

/// The table that has the index named `name`, as `reader` has the
/// catalog.
pub fn table_of_index(reader: &impl Reader, name: &str) -> Result<Option<Arc<Table>>> {
    let Some(table_name) = reader.get(Family::SqlCatalog, &keys::index_name(name))? else { return Ok(None) };
    let table_name =
        String::from_utf8(table_name).map_err(|_| Error::Corrupt(format!("table name of index '{name}'")))?;
    let table = table(reader, &table_name)?;
    if !table.as_ref().is_some_and(|t| t.indexes.iter().any(|i| i.name == name)) {
        return Err(Error::Corrupt(format!("index '{name}' names table '{table_name}', which lacks it")));
    }
    Ok(table)
}

/// 42P07 if a table, an index or a view is named `name` (they share
/// PostgreSQL's namespace of relations).
pub fn refuse_taken(reader: &impl Reader, name: &str) -> Result<()> {
    if reader.get(Family::SqlCatalog, &keys::table_name(name))?.is_some()
        || reader.get(Family::SqlCatalog, &keys::index_name(name))?.is_some()
        || reader.get(Family::SqlCatalog, &keys::view(name))?.is_some()
    {
        return Err(SqlError::new(code::DUPLICATE_TABLE, format!("relation \"{name}\" already exists")).into());
    }
    Ok(())
}

/// Writes `table`'s descriptor, constraints and indexes with their names'
/// keys (not the table's name key).
pub fn store<R: Reader>(view: &mut Overlay<'_, R>, table: &Table) {
    view.put(Family::SqlCatalog, keys::table(table.id), table.encode());
    store_list(view, keys::indexes(table.id), &table.indexes);
    for index in &table.indexes {
        view.put(Family::SqlCatalog, keys::index_name(&index.name), table.name.as_bytes().to_vec());
    }
    store_list(view, keys::checks(table.id), &table.checks);
}

/// Writes `list` under `key`, or deletes the key for an empty list.
fn store_list<R: Reader, T: Serialize>(view: &mut Overlay<'_, R>, key: Vec<u8>, list: &[T]) {
    if list.is_empty() {
        view.delete(Family::SqlCatalog, key);
    } else {
        view.put(Family::SqlCatalog, key, postcard::to_stdvec(list).expect("catalog lists serialize"));
    }
}

/// Deletes `table`'s descriptor, constraints, indexes and their names'
/// keys (not the table's name key).
pub fn remove<R: Reader>(view: &mut Overlay<'_, R>, table: &Table) {
    view.delete(Family::SqlCatalog, keys::table(table.id));
    view.delete(Family::SqlCatalog, keys::checks(table.id));
    view.delete(Family::SqlCatalog, keys::indexes(table.id));
    for index in &table.indexes {
        view.delete(Family::SqlCatalog, keys::index_name(&index.name));
    }
}
