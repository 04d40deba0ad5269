//! Decoded table descriptors of stored catalogs, so that a statement finds
//! a table with one read (the catalog version) instead of four reads and a
//! decode.
//!
//! Invariant: the entry for table `name` of store `S` at version `V` is the
//! table as `S`'s stored catalog has it at `V`. It holds because the
//! catalog changes only by applied entries, each of which sets the version
//! to its own log index (`keys::CATALOG_VERSION`), and an applied entry is
//! never undone: one version names one catalog, on every replica and after
//! a snapshot install. Callers keep out what would break it: a reader with
//! catalog writes of its own (a DDL statement's overlay, a transaction
//! that changed the schema) and a catalog with no version (a data dir last
//! changed by a build that did not write one) are never cached.
//!
//! Only the newest version seen per store is kept; a reader at an older
//! one (a snapshot taken before a DDL applied) is answered uncached.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use crate::catalog::Table;
use crate::error::Result;

/// Tables per store kept at once; past it the store's entries start over
/// (names that are not tables are not cached, so only a schema of more
/// tables than this reaches it).
const MAX_TABLES: usize = 4096;

struct Cached {
    version: u64,
    tables: HashMap<String, Arc<Table>>,
}

static CACHE: LazyLock<Mutex<HashMap<u64, Cached>>> = LazyLock::new(Mutex::default);

/// Table `name` of store `store` at catalog `version`: the cached one, or
/// the one `load` decodes, then cached.
pub fn table(
    store: u64,
    version: u64,
    name: &str,
    load: impl FnOnce() -> Result<Option<Table>>,
) -> Result<Option<Arc<Table>>> {
    let cached = CACHE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&store)
        .and_then(|cached| (cached.version == version).then(|| cached.tables.get(name).cloned()).flatten());
    if cached.is_some() {
        return Ok(cached);
    }
    let loaded = load()?.map(Arc::new);
    if let Some(table) = &loaded {
        let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
        let cached = cache.entry(store).or_insert_with(|| Cached { version, tables: HashMap::new() });
        if cached.version < version {
            *cached = Cached { version, tables: HashMap::new() };
        }
        if cached.version == version {
            if cached.tables.len() >= MAX_TABLES {
                cached.tables.clear();
            }
            cached.tables.insert(name.to_owned(), Arc::clone(table));
        }
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::table;
    use crate::catalog::Table;

    fn named(name: &str, id: u32) -> Table {
        Table {
            id,
            name: name.to_owned(),
            columns: Vec::new(),
            primary_key: Vec::new(),
            checks: Vec::new(),
            indexes: Vec::new(),
        }
    }

    /// Looks `t` up in `store` at `version`, loading table id `id`;
    /// answers the id found and whether it was loaded.
    fn lookup(store: u64, version: u64, id: u32) -> (u32, bool) {
        let loaded = Cell::new(false);
        let found = table(store, version, "t", || {
            loaded.set(true);
            Ok(Some(named("t", id)))
        })
        .unwrap()
        .unwrap();
        (found.id, loaded.get())
    }

    #[test]
    fn a_version_is_decoded_once_and_a_newer_one_replaces_it() {
        let store = u64::MAX - 1;
        assert_eq!(lookup(store, 5, 1), (1, true));
        assert_eq!(lookup(store, 5, 99), (1, false), "same version: cached");
        assert_eq!(lookup(store, 7, 2), (2, true), "newer version: loaded");
        assert_eq!(lookup(store, 5, 1), (1, true), "older version: loaded, not cached");
        assert_eq!(lookup(store, 7, 99), (2, false), "the newer version stays cached");
        assert_eq!(lookup(u64::MAX - 2, 7, 3), (3, true), "another store: its own entries");
    }

    #[test]
    fn a_name_that_is_no_table_is_not_cached() {
        let store = u64::MAX - 3;
        assert!(table(store, 1, "t", || Ok(None)).unwrap().is_none());
        assert_eq!(lookup(store, 1, 4), (4, true));
    }
}
