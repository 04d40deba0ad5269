//! The catalog: table descriptors, replicated state of the `sql` group,
//! read from whatever view a statement runs on (a snapshot for reads, the
//! apply overlay for writes), so a statement always sees the schema of
//! the data it reads.

use serde::{Deserialize, Serialize};
use storage::{Family, Reader};

use crate::error::{Error, Result};
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

/// A table: its columns and primary key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub id: u32,
    pub name: String,
    pub columns: Vec<Column>,
    /// Positions of the primary-key columns; empty when the table has
    /// none, and rows are keyed by a hidden row id.
    pub primary_key: Vec<usize>,
}

impl Table {
    /// The position of column `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
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
    postcard::from_bytes(&bytes).map(Some).map_err(|e| Error::Corrupt(format!("descriptor of '{name}': {e}")))
}
