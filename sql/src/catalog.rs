//! The catalog: table descriptors, replicated state of the `sql` group,
//! read from whatever view a statement runs on (a snapshot for reads, the
//! apply overlay for writes), so a statement always sees the schema of
//! the data it reads.

use serde::{Deserialize, Serialize};
use storage::{Family, Overlay, Reader};

use crate::error::{code, Error, Result, SqlError};
use crate::keys;
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

/// A table: its columns, primary key and CHECK constraints.
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
pub fn table(reader: &impl Reader, name: &str) -> Result<Option<Table>> {
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
    Ok(Some(table))
}

/// Writes `table`'s descriptor and constraints (not its name's key).
pub fn store<R: Reader>(view: &mut Overlay<'_, R>, table: &Table) {
    view.put(Family::SqlCatalog, keys::table(table.id), table.encode());
    if table.checks.is_empty() {
        view.delete(Family::SqlCatalog, keys::checks(table.id));
    } else {
        view.put(
            Family::SqlCatalog,
            keys::checks(table.id),
            postcard::to_stdvec(&table.checks).expect("checks serialize"),
        );
    }
}

/// Deletes `table`'s descriptor and constraints (not its name's key).
pub fn remove<R: Reader>(view: &mut Overlay<'_, R>, table: &Table) {
    view.delete(Family::SqlCatalog, keys::table(table.id));
    view.delete(Family::SqlCatalog, keys::checks(table.id));
}
