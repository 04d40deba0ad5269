//! The system catalogs against the built binary: every query psql 15
//! sends for its describe commands and tab completion (captured from a
//! real PostgreSQL 15 in `tests/psql/describe-queries.sql`) succeeds, psql
//! itself prints what PostgreSQL prints, and OIDs survive a restart.

use seshat_tests::{first_column, simple_rows, Node};

const SCHEMA: &str = "CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(10) NOT NULL DEFAULT 'x',
                          score NUMERIC(5,2) CHECK (score > 0), UNIQUE (name));
                      CREATE INDEX t_score ON t (score);
                      CREATE VIEW v AS SELECT id FROM t;";

/// psql's `-c` for each of `commands`, against `node`.
fn psql(node: &Node, commands: &[&str]) -> String {
    let args: Vec<&str> = commands.iter().flat_map(|command| ["-c", command]).collect();
    seshat_tests::psql(node, &args)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_query_psql_sends_to_describe_succeeds() {
    let node = Node::start(&[]).unwrap();
    let client = node.pg().await.unwrap();
    client.simple_query(SCHEMA).await.unwrap();
    let oid = |name: &str| format!("SELECT oid FROM pg_catalog.pg_class WHERE relname = '{name}'");
    let (t, v) = (first_column(&client, &oid("t")).await, first_column(&client, &oid("v")).await);
    let captured = include_str!("../psql/describe-queries.sql");
    let body: String = captured.lines().filter(|l| !l.starts_with("--")).map(|l| format!("{l}\n")).collect();
    let queries: Vec<&str> = body.split("\n;\n").map(str::trim).filter(|q| !q.is_empty()).collect();
    assert!(queries.len() > 20, "{} captured queries", queries.len());
    for query in queries {
        let query = query.replace("{t}", &t[0]).replace("{v}", &v[0]);
        if let Err(error) = client.simple_query(&query).await {
            panic!("{query}\nfailed: {:?}", error.as_db_error().map(|e| e.message().to_string()));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn psql_describes_tables_views_indexes_schemas_roles_and_databases() {
    let node = Node::start(&[]).unwrap();
    let client = node.pg().await.unwrap();
    client.simple_query(SCHEMA).await.unwrap();
    let dt = psql(&node, &["\\dt"]);
    assert!(dt.contains(" public | t    | table | postgres"), "{dt}");
    let d = psql(&node, &["\\d"]);
    assert!(d.contains(" public | v    | view  | postgres") && d.contains("(2 rows)"), "{d}");
    let table = psql(&node, &["\\d t"]);
    for line in [
        "Table \"public.t\"",
        " id     | integer               |           | not null | ",
        " name   | character varying(10) |           | not null | 'x'",
        " score  | numeric(5,2)          |           |          | ",
        "\"t_pkey\" PRIMARY KEY, btree (id)",
        "\"t_name_key\" UNIQUE CONSTRAINT, btree (name)",
        "\"t_score\" btree (score)",
        "\"t_score_check\" CHECK (score > 0)",
    ] {
        assert!(table.contains(line), "{line:?} not in\n{table}");
    }
    let view = psql(&node, &["\\d v"]);
    assert!(view.contains("View \"public.v\"") && view.contains(" id     | integer |"), "{view}");
    let indexes = psql(&node, &["\\di"]);
    assert!(
        indexes.contains(" public | t_pkey     | index | postgres | t") && indexes.contains("(3 rows)"),
        "{indexes}"
    );
    assert!(psql(&node, &["\\dv"]).contains(" public | v    | view | postgres"));
    assert!(psql(&node, &["\\dn"]).contains(" public | postgres"));
    assert!(psql(&node, &["\\du"]).contains(" postgres  | Superuser, Create role, Create DB | {}"));
    assert!(psql(&node, &["\\l"]).contains(" postgres | postgres | UTF8     | C       | C "));
    assert!(psql(&node, &["\\conninfo"]).contains("You are connected to database \"postgres\" as user \"postgres\""));
    assert!(psql(&node, &["\\x", "SELECT 1 AS one"]).contains("one | 1"));
    assert!(psql(&node, &["\\timing on", "SELECT 1"]).contains("Time: "));
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_views_casts_and_functions_answer_as_postgresql_does() {
    let mut node = Node::start(&[]).unwrap();
    let client = node.pg().await.unwrap();
    client.simple_query(SCHEMA).await.unwrap();
    assert_eq!(
        simple_rows(
            &client,
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
        )
        .await,
        [["t", "BASE TABLE"], ["v", "VIEW"]]
    );
    assert_eq!(
        simple_rows(
            &client,
            "SELECT column_name, data_type, is_nullable, character_maximum_length FROM information_schema.columns
             WHERE table_name = 't' ORDER BY ordinal_position"
        )
        .await,
        [
            ["id", "integer", "NO", "NULL"],
            ["name", "character varying", "NO", "10"],
            ["score", "numeric", "YES", "NULL"]
        ]
    );
    assert_eq!(
        simple_rows(
            &client,
            "SELECT k.column_name, c.constraint_type FROM information_schema.key_column_usage k
             JOIN information_schema.table_constraints c ON c.constraint_name = k.constraint_name ORDER BY 1"
        )
        .await,
        [["id", "PRIMARY KEY"], ["name", "UNIQUE"]]
    );
    assert_eq!(
        simple_rows(
            &client,
            "SELECT 't'::regclass::oid = (SELECT oid FROM pg_class WHERE relname = 't'),
                    (SELECT oid FROM pg_class WHERE relname = 't')::regclass,
                    23::regtype, format_type(1043, 14), 'abc' ~ '^a', 'ABC' ~* 'b', 'abc' !~ 'z',
                    'abc' OPERATOR(pg_catalog.~) '^(abc)$' COLLATE pg_catalog.default"
        )
        .await,
        [["t", "t", "integer", "character varying(10)", "t", "t", "t", "t"]]
    );
    assert_eq!(
        simple_rows(&client, "SELECT typname FROM pg_type WHERE oid IN (16, 23, 25, 1700) ORDER BY oid").await,
        [["bool"], ["int4"], ["text"], ["numeric"]]
    );
    // Every constraint and default has an OID of its own, however many a
    // table has (psql looks each constraint's definition up by OID).
    let columns: Vec<String> = (0..40).map(|i| format!("c{i} INT DEFAULT {i} CHECK (c{i} >= 0) UNIQUE")).collect();
    client.simple_query(&format!("CREATE TABLE wide ({})", columns.join(", "))).await.unwrap();
    assert_eq!(
        simple_rows(
            &client,
            "SELECT (SELECT count(*) = count(DISTINCT oid) FROM pg_constraint),
                    (SELECT count(*) = count(DISTINCT oid) FROM pg_attrdef),
                    (SELECT count(*) FROM pg_constraint WHERE conrelid = 'wide'::regclass)"
        )
        .await,
        [["t", "t", "80"]]
    );
    assert!(psql(&node, &["\\d wide"]).contains("\"wide_c39_check\" CHECK (c39 >= 0)"));
    // The lookup tokio-postgres makes for a type OID it does not know.
    assert_eq!(
        simple_rows(
            &client,
            "SELECT t.typname, t.typtype, t.typelem, r.rngsubtype, t.typbasetype, n.nspname, t.typrelid
             FROM pg_catalog.pg_type t
             LEFT OUTER JOIN pg_catalog.pg_range r ON r.rngtypid = t.oid
             INNER JOIN pg_catalog.pg_namespace n ON t.typnamespace = n.oid
             WHERE t.oid = 2950"
        )
        .await,
        [["uuid", "b", "0", "NULL", "0", "pg_catalog", "0"]]
    );
    // OIDs come from replicated state: the same after a restart.
    let oids = "SELECT relname, oid FROM pg_class ORDER BY relname";
    let before = simple_rows(&client, oids).await;
    drop(client);
    node.restart().unwrap();
    let client = node.pg().await.unwrap();
    assert_eq!(simple_rows(&client, oids).await, before);
}
