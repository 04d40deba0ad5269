//! PostgreSQL's system catalogs as read-only relations over Seshat's own
//! catalog: `pg_catalog.pg_class`, `pg_attribute`, … and the
//! `information_schema` views, so that psql's `\d`, drivers' type lookups
//! and tools' introspection queries run unchanged.
//!
//! Each relation is computed from the catalog the statement reads (the
//! same snapshot as its data) when the statement is bound, as a VALUES
//! list: it costs a pass over the catalog, which is small.
//!
//! # OIDs
//!
//! Stable across restarts and nodes, derived from replicated state:
//! a table or index is `16384 + id` (ids are drawn in log order and never
//! reused; TRUNCATE gives a table a new one); a view `1_000_000_000 +` a
//! hash of its name; a table's primary key (an index in PostgreSQL, the
//! row key here) `2_000_000_000 + id`; its constraints and column
//! defaults `2^32 + 2^20 × id + 2^16 × kind + n` (past PostgreSQL's u32
//! range: these columns are bigint here, and only Seshat's own lookups
//! read them). Types have PostgreSQL's OIDs, the schemas `pg_catalog`
//! 11 and `public` 2200, the one role 10, the one database 5.
//!
//! Seshat has one database and one schema, `public`; every relation is
//! owned by the connection's user, who is a superuser. The user and
//! database names come from the connection: the session writes them into
//! the statement as arguments of `pg_database`, `pg_roles`, … (as it
//! does for `current_user`), so a logged statement carries them.

use sqlparser::ast;
use storage::Reader;

use crate::catalog::{self, Table};
use crate::error::Result;
use crate::plan::OutputColumn;
use crate::types::DataType;
use crate::value::Value;
use crate::view::{self, View};

pub const PG_CATALOG: i64 = 11;
pub const PUBLIC: i64 = 2200;
pub const INFORMATION_SCHEMA: i64 = 13_000;
pub const OWNER: i64 = 10;
pub const DATABASE: i64 = 5;
/// The default collation's OID, of every text column.
const DEFAULT_COLLATION: i64 = 100;
const BTREE: i64 = 403;
const HEAP: i64 = 2;

/// The relations that take the connection's user and database as
/// arguments.
pub const IDENTIFIED: &[&str] = &["pg_database", "pg_roles", "pg_user", "pg_authid", "pg_shadow"];

/// A system relation's columns and rows.
pub struct SystemRelation {
    pub name: String,
    pub columns: Vec<OutputColumn>,
    pub rows: Vec<Vec<Value>>,
}

/// The system relation `name` names, if it names one: `pg_catalog.x` or
/// an unqualified `pg_x` (pg_catalog comes first on the search path), or
/// `information_schema.x`.
pub fn names(name: &ast::ObjectName) -> Option<(&'static str, String)> {
    let parts: Vec<String> = name.0.iter().map(|p| p.as_ident().map(crate::bind::ident)).collect::<Option<_>>()?;
    match parts.as_slice() {
        [schema, table] if schema == "pg_catalog" && PG_TABLES.contains(&table.as_str()) => {
            Some(("pg_catalog", table.clone()))
        }
        [schema, table] if schema == "information_schema" && INFORMATION_TABLES.contains(&table.as_str()) => {
            Some(("information_schema", table.clone()))
        }
        [table] if PG_TABLES.contains(&table.as_str()) => Some(("pg_catalog", table.clone())),
        _ => None,
    }
}

const PG_TABLES: &[&str] = &[
    "pg_namespace",
    "pg_class",
    "pg_attribute",
    "pg_type",
    "pg_index",
    "pg_constraint",
    "pg_attrdef",
    "pg_am",
    "pg_database",
    "pg_roles",
    "pg_user",
    "pg_authid",
    "pg_shadow",
    "pg_auth_members",
    "pg_settings",
    "pg_description",
    "pg_collation",
    "pg_inherits",
    "pg_policy",
    "pg_statistic_ext",
    "pg_publication",
    "pg_publication_rel",
    "pg_publication_namespace",
    "pg_tablespace",
    "pg_range",
    "pg_enum",
    "pg_proc",
    "pg_tables",
    "pg_views",
    "pg_indexes",
    "seshat_definitions",
];

const INFORMATION_TABLES: &[&str] = &["tables", "columns", "schemata", "table_constraints", "key_column_usage"];

/// Builds the rows of one relation, column by column.
struct Builder {
    name: String,
    columns: Vec<OutputColumn>,
    rows: Vec<Vec<Value>>,
}

impl Builder {
    fn new(name: &str, columns: &[(&str, DataType)]) -> Builder {
        let columns = columns.iter().map(|(n, t)| OutputColumn { name: n.to_string(), data_type: *t }).collect();
        Builder { name: name.to_string(), columns, rows: Vec::new() }
    }

    fn row(&mut self, row: Vec<Value>) {
        debug_assert_eq!(row.len(), self.columns.len(), "a row of {}", self.name);
        self.rows.push(row);
    }

    fn done(self) -> SystemRelation {
        SystemRelation { name: self.name, columns: self.columns, rows: self.rows }
    }
}

const OID: DataType = DataType::Int8;
const NAME: DataType = DataType::Text;
const TEXT: DataType = DataType::Text;
const BOOL: DataType = DataType::Bool;
const INT2: DataType = DataType::Int2;
const INT4: DataType = DataType::Int4;

fn int(n: i64) -> Value {
    Value::Int(n)
}

fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

fn boolean(b: bool) -> Value {
    Value::Bool(b)
}

/// OID of table or index `id`.
pub fn relation_oid(id: u32) -> i64 {
    16_384 + i64::from(id)
}

/// OID of view `name`: FNV-1a of the name, offset.
pub fn view_oid(name: &str) -> i64 {
    let hash = name.bytes().fold(0x811c9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x01000193));
    1_000_000_000 + i64::from(hash % 1_000_000_000)
}

fn primary_key_oid(table: &Table) -> i64 {
    2_000_000_000 + i64::from(table.id)
}

/// What an OID derived from a table's id names besides the table.
#[derive(Clone, Copy)]
enum Part {
    PrimaryKey,
    Check(usize),
    Unique(usize),
    Default(usize),
}

/// The OID of `part` of `table`: past every u32 OID (tables, indexes,
/// views), unique for up to 65,536 of each kind per table.
fn part_oid(table: &Table, part: Part) -> i64 {
    let (kind, n) = match part {
        Part::PrimaryKey => (0, 0),
        Part::Check(n) => (1, n),
        Part::Unique(n) => (2, n),
        Part::Default(n) => (3, n),
    };
    (1 << 32) + (i64::from(table.id) << 20) + (kind << 16) + n as i64
}

/// PostgreSQL's type modifier of `ty` (-1 for none).
pub fn typmod(ty: DataType) -> i64 {
    match ty {
        DataType::Varchar(Some(n)) | DataType::Char(Some(n)) => i64::from(n) + 4,
        DataType::Numeric(Some((p, s))) => ((i64::from(p) << 16) | i64::from(s)) + 4,
        _ => -1,
    }
}

/// `format_type(oid, typmod)`: the type's SQL name, with its modifier.
pub fn format_type(oid: i64, typmod: Option<i64>) -> Option<String> {
    let name = TYPES.iter().find(|t| t.oid == oid)?.sql;
    let modifier = typmod.filter(|&m| m >= 4).map(|m| m - 4);
    Some(match (oid, modifier) {
        (1043 | 1042, Some(n)) => format!("{name}({n})"),
        (1700, Some(m)) => format!("numeric({},{})", m >> 16, m & 0xffff),
        _ => name.to_string(),
    })
}

/// A type PostgreSQL's clients look up.
struct TypeInfo {
    oid: i64,
    name: &'static str,
    /// What format_type answers.
    sql: &'static str,
    len: i64,
    category: &'static str,
    collatable: bool,
}

const TYPES: &[TypeInfo] = &[
    TypeInfo { oid: 16, name: "bool", sql: "boolean", len: 1, category: "B", collatable: false },
    TypeInfo { oid: 17, name: "bytea", sql: "bytea", len: -1, category: "U", collatable: false },
    TypeInfo { oid: 18, name: "char", sql: "\"char\"", len: 1, category: "Z", collatable: false },
    TypeInfo { oid: 19, name: "name", sql: "name", len: 64, category: "S", collatable: true },
    TypeInfo { oid: 20, name: "int8", sql: "bigint", len: 8, category: "N", collatable: false },
    TypeInfo { oid: 21, name: "int2", sql: "smallint", len: 2, category: "N", collatable: false },
    TypeInfo { oid: 23, name: "int4", sql: "integer", len: 4, category: "N", collatable: false },
    TypeInfo { oid: 25, name: "text", sql: "text", len: -1, category: "S", collatable: true },
    TypeInfo { oid: 26, name: "oid", sql: "oid", len: 4, category: "N", collatable: false },
    TypeInfo { oid: 700, name: "float4", sql: "real", len: 4, category: "N", collatable: false },
    TypeInfo { oid: 701, name: "float8", sql: "double precision", len: 8, category: "N", collatable: false },
    TypeInfo { oid: 1042, name: "bpchar", sql: "character", len: -1, category: "S", collatable: true },
    TypeInfo { oid: 1043, name: "varchar", sql: "character varying", len: -1, category: "S", collatable: true },
    TypeInfo { oid: 1082, name: "date", sql: "date", len: 4, category: "D", collatable: false },
    TypeInfo {
        oid: 1114,
        name: "timestamp",
        sql: "timestamp without time zone",
        len: 8,
        category: "D",
        collatable: false,
    },
    TypeInfo {
        oid: 1184,
        name: "timestamptz",
        sql: "timestamp with time zone",
        len: 8,
        category: "D",
        collatable: false,
    },
    TypeInfo { oid: 1700, name: "numeric", sql: "numeric", len: -1, category: "N", collatable: false },
    TypeInfo { oid: 2950, name: "uuid", sql: "uuid", len: 16, category: "U", collatable: false },
];

/// The connection's user and database (the arguments the session wrote).
pub struct Who {
    pub user: String,
    pub database: String,
}

/// The rows of system relation `schema.table`.
pub fn relation(reader: &impl Reader, schema: &str, table: &str, who: &Who) -> Result<SystemRelation> {
    // Read only by the relations that list tables or views.
    let tables = || catalog::tables(reader);
    let views = || view::all(reader);
    Ok(match (schema, table) {
        ("information_schema", table) => information_schema(table, &tables()?, &views()?, reader, who),
        (_, "pg_namespace") => {
            let mut b =
                Builder::new("pg_namespace", &[("oid", OID), ("nspname", NAME), ("nspowner", OID), ("nspacl", TEXT)]);
            for (oid, name) in
                [(PG_CATALOG, "pg_catalog"), (PUBLIC, "public"), (INFORMATION_SCHEMA, "information_schema")]
            {
                b.row(vec![int(oid), text(name), int(OWNER), Value::Null]);
            }
            b.done()
        }
        (_, "pg_class") => pg_class(&tables()?, &views()?, reader),
        (_, "pg_attribute") => pg_attribute(&tables()?, &views()?, reader),
        (_, "pg_type") => pg_type(),
        (_, "pg_index") => pg_index(&tables()?),
        (_, "pg_constraint") => pg_constraint(&tables()?),
        (_, "pg_attrdef") => {
            let mut b = Builder::new("pg_attrdef", &[("oid", OID), ("adrelid", OID), ("adnum", INT2), ("adbin", TEXT)]);
            for table in &tables()? {
                for (i, column) in table.columns.iter().enumerate() {
                    if let Some(default) = &column.default {
                        let oid = part_oid(table, Part::Default(i));
                        b.row(vec![int(oid), int(relation_oid(table.id)), int(i as i64 + 1), text(default)]);
                    }
                }
            }
            b.done()
        }
        (_, "pg_am") => {
            let mut b = Builder::new("pg_am", &[("oid", OID), ("amname", NAME), ("amhandler", TEXT), ("amtype", TEXT)]);
            b.row(vec![int(HEAP), text("heap"), text("heap_tableam_handler"), text("t")]);
            b.row(vec![int(BTREE), text("btree"), text("bthandler"), text("i")]);
            b.row(vec![int(405), text("hash"), text("hashhandler"), text("i")]);
            b.done()
        }
        (_, "pg_database") => {
            let mut b = Builder::new(
                "pg_database",
                &[
                    ("oid", OID),
                    ("datname", NAME),
                    ("datdba", OID),
                    ("encoding", INT4),
                    ("datlocprovider", TEXT),
                    ("datistemplate", BOOL),
                    ("datallowconn", BOOL),
                    ("datconnlimit", INT4),
                    ("dattablespace", OID),
                    ("datcollate", TEXT),
                    ("datctype", TEXT),
                    ("daticulocale", TEXT),
                    ("datcollversion", TEXT),
                    ("datacl", TEXT),
                ],
            );
            b.row(vec![
                int(DATABASE),
                text(&who.database),
                int(OWNER),
                int(6),
                text("c"),
                boolean(false),
                boolean(true),
                int(-1),
                int(1663),
                text("C"),
                text("C"),
                Value::Null,
                Value::Null,
                Value::Null,
            ]);
            b.done()
        }
        (_, "pg_roles" | "pg_authid") => {
            let mut b = Builder::new(
                table,
                &[
                    ("oid", OID),
                    ("rolname", NAME),
                    ("rolsuper", BOOL),
                    ("rolinherit", BOOL),
                    ("rolcreaterole", BOOL),
                    ("rolcreatedb", BOOL),
                    ("rolcanlogin", BOOL),
                    ("rolreplication", BOOL),
                    ("rolbypassrls", BOOL),
                    ("rolconnlimit", INT4),
                    ("rolpassword", TEXT),
                    ("rolvaliduntil", DataType::Timestamptz),
                    ("rolconfig", TEXT),
                ],
            );
            let t = boolean(true);
            b.row(vec![
                int(OWNER),
                text(&who.user),
                t.clone(),
                t.clone(),
                t.clone(),
                t.clone(),
                t,
                boolean(false),
                boolean(false),
                int(-1),
                text("********"),
                Value::Null,
                Value::Null,
            ]);
            b.done()
        }
        (_, "pg_user" | "pg_shadow") => {
            let mut b = Builder::new(
                table,
                &[
                    ("usename", NAME),
                    ("usesysid", OID),
                    ("usecreatedb", BOOL),
                    ("usesuper", BOOL),
                    ("userepl", BOOL),
                    ("usebypassrls", BOOL),
                    ("passwd", TEXT),
                    ("valuntil", DataType::Timestamptz),
                    ("useconfig", TEXT),
                ],
            );
            b.row(vec![
                text(&who.user),
                int(OWNER),
                boolean(true),
                boolean(true),
                boolean(false),
                boolean(false),
                text("********"),
                Value::Null,
                Value::Null,
            ]);
            b.done()
        }
        (_, "pg_settings") => {
            let mut b = Builder::new(
                "pg_settings",
                &[
                    ("name", TEXT),
                    ("setting", TEXT),
                    ("unit", TEXT),
                    ("category", TEXT),
                    ("short_desc", TEXT),
                    ("context", TEXT),
                    ("vartype", TEXT),
                    ("source", TEXT),
                ],
            );
            for (name, setting) in crate::session::PARAMETERS {
                b.row(vec![
                    text(*name),
                    text(*setting),
                    Value::Null,
                    text("Seshat"),
                    text(""),
                    text("user"),
                    text("string"),
                    text("default"),
                ]);
            }
            b.done()
        }
        (_, "pg_collation") => {
            let mut b = Builder::new(
                "pg_collation",
                &[
                    ("oid", OID),
                    ("collname", NAME),
                    ("collnamespace", OID),
                    ("collowner", OID),
                    ("collprovider", TEXT),
                    ("collisdeterministic", BOOL),
                    ("collencoding", INT4),
                    ("collcollate", TEXT),
                    ("collctype", TEXT),
                ],
            );
            for (oid, name, provider) in [(DEFAULT_COLLATION, "default", "d"), (950, "C", "c"), (951, "POSIX", "c")] {
                let locale = if oid == DEFAULT_COLLATION { Value::Null } else { text(name) };
                b.row(vec![
                    int(oid),
                    text(name),
                    int(PG_CATALOG),
                    int(OWNER),
                    text(provider),
                    boolean(true),
                    int(-1),
                    locale.clone(),
                    locale,
                ]);
            }
            b.done()
        }
        (_, "pg_tablespace") => {
            let mut b = Builder::new("pg_tablespace", &[("oid", OID), ("spcname", NAME), ("spcowner", OID)]);
            b.row(vec![int(1663), text("pg_default"), int(OWNER)]);
            b.row(vec![int(1664), text("pg_global"), int(OWNER)]);
            b.done()
        }
        (_, "pg_tables") => {
            let mut b = Builder::new(
                "pg_tables",
                &[
                    ("schemaname", NAME),
                    ("tablename", NAME),
                    ("tableowner", NAME),
                    ("tablespace", NAME),
                    ("hasindexes", BOOL),
                    ("hasrules", BOOL),
                    ("hastriggers", BOOL),
                    ("rowsecurity", BOOL),
                ],
            );
            for table in &tables()? {
                let indexed = !table.primary_key.is_empty() || !table.indexes.is_empty();
                b.row(vec![
                    text("public"),
                    text(&table.name),
                    text(&who.user),
                    Value::Null,
                    boolean(indexed),
                    boolean(false),
                    boolean(false),
                    boolean(false),
                ]);
            }
            b.done()
        }
        (_, "pg_views") => {
            let columns = [("schemaname", NAME), ("viewname", NAME), ("viewowner", NAME), ("definition", TEXT)];
            let mut b = Builder::new("pg_views", &columns);
            for view in &views()? {
                b.row(vec![text("public"), text(&view.name), text(&who.user), text(&view.query)]);
            }
            b.done()
        }
        (_, "pg_indexes") => {
            let columns = [
                ("schemaname", NAME),
                ("tablename", NAME),
                ("indexname", NAME),
                ("tablespace", NAME),
                ("indexdef", TEXT),
            ];
            let mut b = Builder::new("pg_indexes", &columns);
            for table in &tables()? {
                for index in indexes(table) {
                    b.row(vec![
                        text("public"),
                        text(&table.name),
                        text(&index.name),
                        Value::Null,
                        text(index.definition),
                    ]);
                }
            }
            b.done()
        }
        (_, "seshat_definitions") => {
            let mut b = Builder::new("seshat_definitions", &[("oid", OID), ("definition", TEXT)]);
            for table in &tables()? {
                for index in indexes(table) {
                    b.row(vec![int(index.oid), text(index.definition)]);
                }
                for constraint in constraints(table) {
                    b.row(vec![int(constraint.oid), text(constraint.definition)]);
                }
            }
            for view in &views()? {
                b.row(vec![int(view_oid(&view.name)), text(format!(" {};", view.query))]);
            }
            b.done()
        }
        (_, other) => empty(other),
    })
}

/// The relations Seshat has nothing in (no inheritance, policies,
/// publications, extended statistics, comments, ranges, enums, role
/// memberships, functions).
const EMPTY: &[&str] = &[
    "pg_auth_members",
    "pg_description",
    "pg_inherits",
    "pg_policy",
    "pg_statistic_ext",
    "pg_publication",
    "pg_publication_rel",
    "pg_publication_namespace",
    "pg_range",
    "pg_enum",
    "pg_proc",
];

/// Whether `pg_catalog.name` never has rows here.
pub fn always_empty(name: &str) -> bool {
    EMPTY.contains(&name)
}

/// An [`EMPTY`] relation, with the columns clients read.
fn empty(name: &str) -> SystemRelation {
    let columns: &[(&str, DataType)] = match name {
        "pg_auth_members" => &[("roleid", OID), ("member", OID), ("grantor", OID), ("admin_option", BOOL)],
        "pg_description" => &[("objoid", OID), ("classoid", OID), ("objsubid", INT4), ("description", TEXT)],
        "pg_inherits" => &[("inhrelid", OID), ("inhparent", OID), ("inhseqno", INT4), ("inhdetachpending", BOOL)],
        "pg_policy" => &[
            ("oid", OID),
            ("polname", NAME),
            ("polrelid", OID),
            ("polcmd", TEXT),
            ("polpermissive", BOOL),
            ("polroles", TEXT),
            ("polqual", TEXT),
            ("polwithcheck", TEXT),
        ],
        "pg_statistic_ext" => &[
            ("oid", OID),
            ("stxrelid", OID),
            ("stxname", NAME),
            ("stxnamespace", OID),
            ("stxowner", OID),
            ("stxstattarget", INT4),
            ("stxkeys", TEXT),
            ("stxkind", TEXT),
            ("stxexprs", TEXT),
        ],
        "pg_publication" => &[
            ("oid", OID),
            ("pubname", NAME),
            ("pubowner", OID),
            ("puballtables", BOOL),
            ("pubinsert", BOOL),
            ("pubupdate", BOOL),
            ("pubdelete", BOOL),
            ("pubtruncate", BOOL),
            ("pubviaroot", BOOL),
        ],
        "pg_publication_rel" => {
            &[("oid", OID), ("prpubid", OID), ("prrelid", OID), ("prqual", TEXT), ("prattrs", TEXT)]
        }
        "pg_publication_namespace" => &[("oid", OID), ("pnpubid", OID), ("pnnspid", OID)],
        "pg_range" => &[("rngtypid", OID), ("rngsubtype", OID), ("rngmultitypid", OID), ("rngcollation", OID)],
        "pg_enum" => &[("oid", OID), ("enumtypid", OID), ("enumsortorder", DataType::Float4), ("enumlabel", NAME)],
        "pg_proc" => &[
            ("oid", OID),
            ("proname", NAME),
            ("pronamespace", OID),
            ("proowner", OID),
            ("prokind", TEXT),
            ("proretset", BOOL),
            ("prorettype", OID),
            ("proargtypes", TEXT),
            ("pronargs", INT2),
        ],
        _ => &[],
    };
    Builder::new(name, columns).done()
}

/// A relation's kind, as pg_class.relkind.
enum Kind {
    Table,
    Index,
    View,
}

fn pg_class(tables: &[std::sync::Arc<Table>], views: &[View], reader: &impl Reader) -> SystemRelation {
    let mut b = Builder::new(
        "pg_class",
        &[
            ("oid", OID),
            ("relname", NAME),
            ("relnamespace", OID),
            ("reltype", OID),
            ("reloftype", OID),
            ("relowner", OID),
            ("relam", OID),
            ("relfilenode", OID),
            ("reltablespace", OID),
            ("relpages", INT4),
            ("reltuples", DataType::Float4),
            ("relallvisible", INT4),
            ("reltoastrelid", OID),
            ("relhasindex", BOOL),
            ("relisshared", BOOL),
            ("relpersistence", TEXT),
            ("relkind", TEXT),
            ("relnatts", INT2),
            ("relchecks", INT2),
            ("relhasrules", BOOL),
            ("relhastriggers", BOOL),
            ("relhassubclass", BOOL),
            ("relrowsecurity", BOOL),
            ("relforcerowsecurity", BOOL),
            ("relispopulated", BOOL),
            ("relreplident", TEXT),
            ("relispartition", BOOL),
            ("relrewrite", OID),
            ("relacl", TEXT),
            ("reloptions", TEXT),
            ("relpartbound", TEXT),
        ],
    );
    let mut add = |oid: i64, name: &str, kind: Kind, natts: usize, checks: usize, has_index: bool| {
        let (relkind, am) = match kind {
            Kind::Table => ("r", HEAP),
            Kind::Index => ("i", BTREE),
            Kind::View => ("v", 0),
        };
        b.row(vec![
            int(oid),
            text(name),
            int(PUBLIC),
            int(0),
            int(0),
            int(OWNER),
            int(am),
            int(oid),
            int(0),
            int(0),
            Value::Float(-1.0),
            int(0),
            int(0),
            boolean(has_index),
            boolean(false),
            text("p"),
            text(relkind),
            int(natts as i64),
            int(checks as i64),
            boolean(false),
            boolean(false),
            boolean(false),
            boolean(false),
            boolean(false),
            boolean(true),
            text("d"),
            boolean(false),
            int(0),
            Value::Null,
            Value::Null,
            Value::Null,
        ]);
    };
    for table in tables {
        let has_index = !table.primary_key.is_empty() || !table.indexes.is_empty();
        add(relation_oid(table.id), &table.name, Kind::Table, table.columns.len(), table.checks.len(), has_index);
        for index in indexes(table) {
            add(index.oid, &index.name, Kind::Index, index.columns.len(), 0, false);
        }
    }
    for view in views {
        let columns = view_columns(view, reader).len();
        add(view_oid(&view.name), &view.name, Kind::View, columns, 0, false);
    }
    b.done()
}

/// A view's columns and their types (text where the view no longer plans).
fn view_columns(view: &View, reader: &impl Reader) -> Vec<OutputColumn> {
    let planned = view.parsed().and_then(|query| crate::query::plan(reader, &query));
    let mut columns = match planned {
        Ok(plan) => plan.columns().to_vec(),
        Err(_) => Vec::new(),
    };
    for (column, name) in columns.iter_mut().zip(&view.columns) {
        column.name = name.clone();
    }
    columns
}

fn type_info(ty: DataType) -> &'static TypeInfo {
    TYPES.iter().find(|t| t.oid == i64::from(ty.oid())).expect("every column type is listed")
}

fn pg_attribute(tables: &[std::sync::Arc<Table>], views: &[View], reader: &impl Reader) -> SystemRelation {
    let mut b = Builder::new(
        "pg_attribute",
        &[
            ("attrelid", OID),
            ("attname", NAME),
            ("atttypid", OID),
            ("attstattarget", INT4),
            ("attlen", INT2),
            ("attnum", INT2),
            ("attndims", INT4),
            ("atttypmod", INT4),
            ("attbyval", BOOL),
            ("attalign", TEXT),
            ("attstorage", TEXT),
            ("attcompression", TEXT),
            ("attnotnull", BOOL),
            ("atthasdef", BOOL),
            ("atthasmissing", BOOL),
            ("attidentity", TEXT),
            ("attgenerated", TEXT),
            ("attisdropped", BOOL),
            ("attislocal", BOOL),
            ("attinhcount", INT4),
            ("attcollation", OID),
            ("attacl", TEXT),
            ("attoptions", TEXT),
            ("attfdwoptions", TEXT),
        ],
    );
    let mut add = |relation: i64, position: usize, name: &str, ty: DataType, not_null: bool, has_default: bool| {
        let info = type_info(ty);
        b.row(vec![
            int(relation),
            text(name),
            int(info.oid),
            int(-1),
            int(info.len),
            int(position as i64 + 1),
            int(0),
            int(typmod(ty)),
            boolean(info.len > 0 && info.len <= 8),
            text(if info.len == 8 { "d" } else { "i" }),
            text(if info.len < 0 { "x" } else { "p" }),
            text(""),
            boolean(not_null),
            boolean(has_default),
            boolean(false),
            text(""),
            text(""),
            boolean(false),
            boolean(true),
            int(0),
            int(if info.collatable { DEFAULT_COLLATION } else { 0 }),
            Value::Null,
            Value::Null,
            Value::Null,
        ]);
    };
    for table in tables {
        for (i, column) in table.columns.iter().enumerate() {
            add(relation_oid(table.id), i, &column.name, column.data_type, !column.nullable, column.default.is_some());
        }
        for index in indexes(table) {
            for (i, &position) in index.columns.iter().enumerate() {
                let column = &table.columns[position];
                add(index.oid, i, &column.name, column.data_type, false, false);
            }
        }
    }
    for view in views {
        for (i, column) in view_columns(view, reader).iter().enumerate() {
            add(view_oid(&view.name), i, &column.name, column.data_type, false, false);
        }
    }
    b.done()
}

fn pg_type() -> SystemRelation {
    let mut b = Builder::new(
        "pg_type",
        &[
            ("oid", OID),
            ("typname", NAME),
            ("typnamespace", OID),
            ("typowner", OID),
            ("typlen", INT2),
            ("typbyval", BOOL),
            ("typtype", TEXT),
            ("typcategory", TEXT),
            ("typispreferred", BOOL),
            ("typisdefined", BOOL),
            ("typdelim", TEXT),
            ("typrelid", OID),
            ("typsubscript", OID),
            ("typelem", OID),
            ("typarray", OID),
            ("typinput", TEXT),
            ("typoutput", TEXT),
            ("typreceive", TEXT),
            ("typsend", TEXT),
            ("typbasetype", OID),
            ("typtypmod", INT4),
            ("typndims", INT4),
            ("typcollation", OID),
            ("typnotnull", BOOL),
            ("typdefault", TEXT),
            ("typalign", TEXT),
            ("typstorage", TEXT),
        ],
    );
    for info in TYPES {
        let function = |suffix: &str| text(format!("{}{suffix}", info.name));
        b.row(vec![
            int(info.oid),
            text(info.name),
            int(PG_CATALOG),
            int(OWNER),
            int(info.len),
            boolean(info.len > 0 && info.len <= 8),
            text("b"),
            text(info.category),
            boolean(matches!(info.name, "bool" | "text" | "float8" | "oid" | "timestamptz")),
            boolean(true),
            text(","),
            int(0),
            int(0),
            int(0),
            int(0),
            function("in"),
            function("out"),
            function("recv"),
            function("send"),
            int(0),
            int(-1),
            int(0),
            int(if info.collatable { DEFAULT_COLLATION } else { 0 }),
            boolean(false),
            Value::Null,
            text(if info.len == 8 { "d" } else { "i" }),
            text(if info.len < 0 { "x" } else { "p" }),
        ]);
    }
    b.done()
}

/// An index as PostgreSQL has it: a table's primary key is one too.
struct IndexInfo {
    oid: i64,
    name: String,
    columns: Vec<usize>,
    unique: bool,
    primary: bool,
    /// The constraint it backs (a primary key or UNIQUE constraint).
    constraint: Option<i64>,
    definition: String,
}

fn column_list(table: &Table, columns: &[usize]) -> String {
    columns.iter().map(|&i| table.columns[i].name.as_str()).collect::<Vec<_>>().join(", ")
}

fn indexes(table: &Table) -> Vec<IndexInfo> {
    let mut out = Vec::new();
    if !table.primary_key.is_empty() {
        let name = format!("{}_pkey", table.name);
        let columns = column_list(table, &table.primary_key);
        out.push(IndexInfo {
            oid: primary_key_oid(table),
            definition: format!("CREATE UNIQUE INDEX {name} ON public.{} USING btree ({columns})", table.name),
            name,
            columns: table.primary_key.clone(),
            unique: true,
            primary: true,
            constraint: Some(part_oid(table, Part::PrimaryKey)),
        });
    }
    for (n, index) in table.indexes.iter().enumerate() {
        let unique = if index.unique { "UNIQUE " } else { "" };
        out.push(IndexInfo {
            oid: relation_oid(index.id),
            definition: format!(
                "CREATE {unique}INDEX {} ON public.{} USING btree ({})",
                index.name,
                table.name,
                column_list(table, &index.columns)
            ),
            name: index.name.clone(),
            columns: index.columns.clone(),
            unique: index.unique,
            primary: false,
            constraint: index.constraint.then(|| part_oid(table, Part::Unique(n))),
        });
    }
    out
}

/// A constraint as pg_constraint has it.
struct ConstraintInfo {
    oid: i64,
    name: String,
    kind: &'static str,
    columns: Vec<usize>,
    index: i64,
    definition: String,
    expression: Option<String>,
}

fn constraints(table: &Table) -> Vec<ConstraintInfo> {
    let mut out = Vec::new();
    for index in indexes(table) {
        let Some(oid) = index.constraint else { continue };
        let kind = if index.primary { "p" } else { "u" };
        let words = if index.primary { "PRIMARY KEY" } else { "UNIQUE" };
        out.push(ConstraintInfo {
            oid,
            definition: format!("{words} ({})", column_list(table, &index.columns)),
            name: index.name,
            kind,
            columns: index.columns,
            index: index.oid,
            expression: None,
        });
    }
    for (n, check) in table.checks.iter().enumerate() {
        let columns = crate::write::check_columns(table, check).map(|c| c.into_iter().collect()).unwrap_or_default();
        out.push(ConstraintInfo {
            oid: part_oid(table, Part::Check(n)),
            name: check.name.clone(),
            kind: "c",
            columns,
            index: 0,
            definition: format!("CHECK ({})", check.expr),
            expression: Some(check.expr.clone()),
        });
    }
    out
}

/// PostgreSQL's text form of an int2 array (`{1,2}`), of 1-based
/// positions.
fn positions_array(columns: &[usize]) -> Value {
    text(format!("{{{}}}", columns.iter().map(|c| (c + 1).to_string()).collect::<Vec<_>>().join(",")))
}

fn pg_index(tables: &[std::sync::Arc<Table>]) -> SystemRelation {
    let mut b = Builder::new(
        "pg_index",
        &[
            ("indexrelid", OID),
            ("indrelid", OID),
            ("indnatts", INT2),
            ("indnkeyatts", INT2),
            ("indisunique", BOOL),
            ("indnullsnotdistinct", BOOL),
            ("indisprimary", BOOL),
            ("indisexclusion", BOOL),
            ("indimmediate", BOOL),
            ("indisclustered", BOOL),
            ("indisvalid", BOOL),
            ("indcheckxmin", BOOL),
            ("indisready", BOOL),
            ("indislive", BOOL),
            ("indisreplident", BOOL),
            ("indkey", TEXT),
            ("indcollation", TEXT),
            ("indclass", TEXT),
            ("indoption", TEXT),
            ("indexprs", TEXT),
            ("indpred", TEXT),
        ],
    );
    for table in tables {
        for index in indexes(table) {
            let n = index.columns.len() as i64;
            let key = index.columns.iter().map(|c| (c + 1).to_string()).collect::<Vec<_>>().join(" ");
            let zeros = vec!["0"; index.columns.len()].join(" ");
            b.row(vec![
                int(index.oid),
                int(relation_oid(table.id)),
                int(n),
                int(n),
                boolean(index.unique),
                boolean(false),
                boolean(index.primary),
                boolean(false),
                boolean(true),
                boolean(false),
                boolean(true),
                boolean(false),
                boolean(true),
                boolean(true),
                boolean(false),
                text(key),
                text(zeros.clone()),
                text(zeros.clone()),
                text(zeros),
                Value::Null,
                Value::Null,
            ]);
        }
    }
    b.done()
}

fn pg_constraint(tables: &[std::sync::Arc<Table>]) -> SystemRelation {
    let mut b = Builder::new(
        "pg_constraint",
        &[
            ("oid", OID),
            ("conname", NAME),
            ("connamespace", OID),
            ("contype", TEXT),
            ("condeferrable", BOOL),
            ("condeferred", BOOL),
            ("convalidated", BOOL),
            ("conrelid", OID),
            ("contypid", OID),
            ("conindid", OID),
            ("conparentid", OID),
            ("confrelid", OID),
            ("confupdtype", TEXT),
            ("confdeltype", TEXT),
            ("confmatchtype", TEXT),
            ("conislocal", BOOL),
            ("coninhcount", INT4),
            ("connoinherit", BOOL),
            ("conkey", TEXT),
            ("confkey", TEXT),
            ("conbin", TEXT),
        ],
    );
    for table in tables {
        for constraint in constraints(table) {
            b.row(vec![
                int(constraint.oid),
                text(constraint.name),
                int(PUBLIC),
                text(constraint.kind),
                boolean(false),
                boolean(false),
                boolean(true),
                int(relation_oid(table.id)),
                int(0),
                int(constraint.index),
                int(0),
                int(0),
                text(" "),
                text(" "),
                text(" "),
                boolean(true),
                int(0),
                boolean(false),
                positions_array(&constraint.columns),
                Value::Null,
                constraint.expression.map_or(Value::Null, text),
            ]);
        }
    }
    b.done()
}

fn information_schema(
    table: &str,
    tables: &[std::sync::Arc<Table>],
    views: &[View],
    reader: &impl Reader,
    who: &Who,
) -> SystemRelation {
    let database = text(&who.database);
    match table {
        "tables" => {
            let mut b = Builder::new(
                "tables",
                &[("table_catalog", TEXT), ("table_schema", TEXT), ("table_name", TEXT), ("table_type", TEXT)],
            );
            for t in tables {
                b.row(vec![database.clone(), text("public"), text(&t.name), text("BASE TABLE")]);
            }
            for v in views {
                b.row(vec![database.clone(), text("public"), text(&v.name), text("VIEW")]);
            }
            b.done()
        }
        "columns" => {
            let mut b = Builder::new(
                "columns",
                &[
                    ("table_catalog", TEXT),
                    ("table_schema", TEXT),
                    ("table_name", TEXT),
                    ("column_name", TEXT),
                    ("ordinal_position", INT4),
                    ("column_default", TEXT),
                    ("is_nullable", TEXT),
                    ("data_type", TEXT),
                    ("character_maximum_length", INT4),
                    ("numeric_precision", INT4),
                    ("numeric_scale", INT4),
                    ("udt_name", TEXT),
                ],
            );
            let mut add =
                |relation: &str, i: usize, column: &str, ty: DataType, nullable: bool, default: Option<&str>| {
                    let (length, precision, scale) = match ty {
                        DataType::Varchar(Some(n)) | DataType::Char(Some(n)) => {
                            (int(n.into()), Value::Null, Value::Null)
                        }
                        DataType::Numeric(Some((p, s))) => (Value::Null, int(p.into()), int(s.into())),
                        DataType::Int2 => (Value::Null, int(16), int(0)),
                        DataType::Int4 => (Value::Null, int(32), int(0)),
                        DataType::Int8 => (Value::Null, int(64), int(0)),
                        _ => (Value::Null, Value::Null, Value::Null),
                    };
                    let data_type = format_type(i64::from(ty.oid()), None).unwrap_or_default();
                    b.row(vec![
                        database.clone(),
                        text("public"),
                        text(relation),
                        text(column),
                        int(i as i64 + 1),
                        default.map_or(Value::Null, text),
                        text(if nullable { "YES" } else { "NO" }),
                        text(data_type),
                        length,
                        precision,
                        scale,
                        text(type_info(ty).name),
                    ]);
                };
            for t in tables {
                for (i, c) in t.columns.iter().enumerate() {
                    add(&t.name, i, &c.name, c.data_type, c.nullable, c.default.as_deref());
                }
            }
            for v in views {
                for (i, c) in view_columns(v, reader).iter().enumerate() {
                    add(&v.name, i, &c.name, c.data_type, true, None);
                }
            }
            b.done()
        }
        "schemata" => {
            let mut b =
                Builder::new("schemata", &[("catalog_name", TEXT), ("schema_name", TEXT), ("schema_owner", TEXT)]);
            for schema in ["pg_catalog", "public", "information_schema"] {
                b.row(vec![database.clone(), text(schema), text(&who.user)]);
            }
            b.done()
        }
        "table_constraints" => {
            let mut b = Builder::new(
                "table_constraints",
                &[
                    ("constraint_catalog", TEXT),
                    ("constraint_schema", TEXT),
                    ("constraint_name", TEXT),
                    ("table_catalog", TEXT),
                    ("table_schema", TEXT),
                    ("table_name", TEXT),
                    ("constraint_type", TEXT),
                    ("is_deferrable", TEXT),
                    ("initially_deferred", TEXT),
                ],
            );
            for t in tables {
                for c in constraints(t) {
                    let kind = match c.kind {
                        "p" => "PRIMARY KEY",
                        "u" => "UNIQUE",
                        _ => "CHECK",
                    };
                    b.row(vec![
                        database.clone(),
                        text("public"),
                        text(c.name),
                        database.clone(),
                        text("public"),
                        text(&t.name),
                        text(kind),
                        text("NO"),
                        text("NO"),
                    ]);
                }
            }
            b.done()
        }
        _ => {
            let mut b = Builder::new(
                "key_column_usage",
                &[
                    ("constraint_catalog", TEXT),
                    ("constraint_schema", TEXT),
                    ("constraint_name", TEXT),
                    ("table_catalog", TEXT),
                    ("table_schema", TEXT),
                    ("table_name", TEXT),
                    ("column_name", TEXT),
                    ("ordinal_position", INT4),
                ],
            );
            for t in tables {
                for c in constraints(t).into_iter().filter(|c| c.kind != "c") {
                    for (i, &column) in c.columns.iter().enumerate() {
                        b.row(vec![
                            database.clone(),
                            text("public"),
                            text(&c.name),
                            database.clone(),
                            text("public"),
                            text(&t.name),
                            text(&t.columns[column].name),
                            int(i as i64 + 1),
                        ]);
                    }
                }
            }
            b.done()
        }
    }
}
