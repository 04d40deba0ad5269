//! The SQL service (not built yet): nothing here runs, and no frontend
//! serves it.
//!
//! It will hold, as `../shared/DESIGN.md` lays out:
//!
//! - the **catalog** of tables, columns and indexes, itself stored in the
//!   `sql_catalog` column family;
//! - the **planner**: statements parsed by `sqlparser` are bound against the
//!   catalog into a logical plan that prints as an indented tree (what
//!   `EXPLAIN` shows);
//! - the **optimizer**: an ordered list of rewrite rules over that tree
//!   (constant folding, predicate and projection push-down, index
//!   selection, join ordering);
//! - the **executor**: iterators over plan nodes reading `sql_rows` and
//!   `sql_index` through `storage`;
//! - **transactions**: every committed transaction one entry in the
//!   `sql/0` Raft group, applied deterministically like `kv`'s commands;
//! - the **row and index encodings**, added to `storage`'s keyspace module.
//!
//! Until then the PostgreSQL port is not opened at all, rather than opened
//! and answering errors.
