//! The PostgreSQL frontend against the built binary: tokio-postgres and
//! psql, real processes.

use seshat_tests::bounded::{output_within, CLIENT_LIMIT};
use seshat_tests::{failing, first_column, simple_rows, Node};

#[tokio::test(flavor = "multi_thread")]
async fn tables_are_created_written_and_queried_with_postgresql_s_answers() {
    let node = Node::start(&[]).unwrap();
    let client = node.pg().await.unwrap();
    client
        .simple_query(
            "CREATE TABLE accounts (id INT PRIMARY KEY, owner VARCHAR(8) NOT NULL, balance BIGINT DEFAULT 100);
             INSERT INTO accounts VALUES (1, 'ann', 50), (2, 'bob', NULL);
             INSERT INTO accounts (id, owner) VALUES (3, 'cy');",
        )
        .await
        .unwrap();
    assert_eq!(
        simple_rows(&client, "SELECT id, owner, balance FROM accounts ORDER BY id DESC").await,
        [["3", "cy", "100"], ["2", "bob", "NULL"], ["1", "ann", "50"]]
    );
    assert_eq!(
        simple_rows(&client, "SELECT count(*), sum(balance), min(owner), count(balance) FROM accounts").await,
        [["3", "150", "ann", "2"]]
    );
    assert_eq!(
        simple_rows(
            &client,
            "SELECT owner, balance * 2 AS doubled FROM accounts WHERE balance > 60 OR owner LIKE 'a%' ORDER BY 2"
        )
        .await,
        [["ann", "100"], ["cy", "200"]]
    );
    assert_eq!(
        simple_rows(
            &client,
            "SELECT 7 / 2, 7.0 / 2, 'x' || 1, 1 + '2', NULL OR TRUE, (NULL AND TRUE) IS NULL, NULL AND TRUE IS NULL"
        )
        .await,
        [["3", "3.5000000000000000", "x1", "3", "t", "t", "f"]]
    );
    // Who the session is: the names the connection gave at startup, also
    // in a write (the log carries the values).
    assert_eq!(
        simple_rows(&client, "SELECT current_user, session_user, current_database(), current_schema()").await,
        [["seshat", "seshat", "seshat", "public"]]
    );
    client.simple_query("UPDATE accounts SET owner = current_user WHERE id = 3").await.unwrap();
    assert_eq!(first_column(&client, "SELECT owner FROM accounts WHERE id = 3").await, ["seshat"]);
    client.simple_query("UPDATE accounts SET owner = 'cy' WHERE id = 3").await.unwrap();
    let version = first_column(&client, "SELECT version()").await;
    assert!(version[0].starts_with("PostgreSQL 15.0 (Seshat "), "{version:?}");
    assert_eq!(
        simple_rows(&client, "UPDATE accounts SET balance = balance + 1 WHERE id = 1 RETURNING owner, balance").await,
        [["ann", "51"]]
    );
    assert_eq!(simple_rows(&client, "SELECT owner FROM accounts WHERE balance IS NULL").await, [["bob"]]);
    client.simple_query("DELETE FROM accounts WHERE balance IS NULL").await.unwrap();
    assert_eq!(simple_rows(&client, "SELECT count(*) FROM accounts").await, [["2"]]);

    // Each error has PostgreSQL's SQLSTATE and leaves the session usable.
    assert_eq!(failing(&client, "SELECT * FROM missing").await, "42P01");
    assert_eq!(failing(&client, "SELECT nope FROM accounts").await, "42703");
    assert_eq!(failing(&client, "CREATE TABLE accounts (id INT)").await, "42P07");
    assert_eq!(failing(&client, "SELEC 1").await, "42601");
    assert_eq!(failing(&client, "INSERT INTO accounts VALUES (1, 'dup')").await, "23505");
    assert_eq!(failing(&client, "INSERT INTO accounts (id) VALUES (9)").await, "23502");
    assert_eq!(failing(&client, "INSERT INTO accounts VALUES (9, 'much too long')").await, "22001");
    assert_eq!(failing(&client, "INSERT INTO accounts VALUES ('x', 'x')").await, "22P02");
    assert_eq!(failing(&client, "SELECT 1 / 0").await, "22012");
    assert_eq!(failing(&client, "SELECT 2147483647 + 1").await, "22003");
    assert_eq!(failing(&client, "SELECT owner + 1 FROM accounts").await, "42883");
    // A multi-statement string is one implicit transaction: a failed
    // statement stops it and nothing of it is written.
    assert!(client.simple_query("INSERT INTO accounts VALUES (5, 'e'); INSERT INTO accounts VALUES (1, 'x'); INSERT INTO accounts VALUES (6, 'f')").await.is_err());
    assert_eq!(simple_rows(&client, "SELECT id FROM accounts ORDER BY id").await, [["1"], ["3"]]);

    client.simple_query("DROP TABLE accounts").await.unwrap();
    assert_eq!(failing(&client, "SELECT * FROM accounts").await, "42P01");
    client.simple_query("DROP TABLE IF EXISTS accounts").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn tables_and_rows_survive_a_restart() {
    let mut node = Node::start(&[]).unwrap();
    let client = node.pg().await.unwrap();
    client
        .simple_query(
            "CREATE TABLE t (k TEXT PRIMARY KEY, v DOUBLE PRECISION UNIQUE); INSERT INTO t VALUES ('a', 1.25), ('b', 1e20)",
        )
        .await
        .unwrap();
    drop(client);
    node.terminate().unwrap();
    node.restart().unwrap();
    let client = node.pg().await.unwrap();
    assert_eq!(simple_rows(&client, "SELECT k, v FROM t ORDER BY k").await, [["a", "1.25"], ["b", "1e+20"]]);
    assert_eq!(first_column(&client, "SELECT k FROM t WHERE v = 1e20").await, ["b"], "the unique index survives");
    assert_eq!(failing(&client, "INSERT INTO t VALUES ('c', 1.25)").await, "23505");
}

#[tokio::test(flavor = "multi_thread")]
async fn requirepass_makes_postgresql_clients_use_scram() {
    let node = Node::start(&["--requirepass", "s3cret"]).unwrap();
    let base = format!("host=127.0.0.1 port={} user=anyone dbname=seshat", node.pg_port());
    let (client, connection) = tokio_postgres::connect(&format!("{base} password=s3cret"), tokio_postgres::NoTls)
        .await
        .expect("the right password");
    tokio::spawn(connection);
    assert_eq!(simple_rows(&client, "SELECT 1 AS one").await, [["1"]]);
    // Prepared (extended protocol) too.
    let row = client.query_one("SELECT current_user, current_database()", &[]).await.unwrap();
    assert_eq!((row.get::<_, &str>(0), row.get::<_, &str>(1)), ("anyone", "seshat"));
    let wrong = tokio_postgres::connect(&format!("{base} password=nope"), tokio_postgres::NoTls).await;
    let error = wrong.err().expect("a wrong password is refused");
    assert_eq!(error.code().map(|c| c.code()), Some("28P01"), "{error}");
}

/// EXPLAIN shows the planner's choices: access paths (primary key,
/// secondary indexes), pushed filters, join order from the filtered
/// table along equalities, hash joins.
#[tokio::test(flavor = "multi_thread")]
async fn explain_shows_access_paths_and_join_order() {
    let node = Node::start(&[]).unwrap();
    let client = node.pg().await.unwrap();
    client
        .simple_query(
            "CREATE TABLE a (id INT PRIMARY KEY, name TEXT);
             CREATE TABLE b (id INT PRIMARY KEY, a_id INT);
             CREATE TABLE c (b_id INT, n INT, PRIMARY KEY (b_id, n));
             CREATE INDEX a_name ON a (name);
             CREATE INDEX b_pair ON b (a_id, id)",
        )
        .await
        .unwrap();
    let plan = |sql: &str| {
        let client = &client;
        let sql = format!("EXPLAIN {sql}");
        async move { simple_rows(client, &sql).await.into_iter().map(|row| row[0].trim().to_string()).collect::<Vec<_>>() }
    };
    assert_eq!(plan("SELECT * FROM a WHERE id = 1").await, ["Point Read on a (filtered)"]);
    // Constants fold before access paths are chosen.
    assert_eq!(plan("SELECT * FROM a WHERE id = 1 + 1").await, ["Point Read on a (filtered)"]);
    assert_eq!(plan("SELECT * FROM a WHERE id = 2::bigint - 1").await, ["Point Read on a (filtered)"]);
    assert_eq!(plan("SELECT * FROM c WHERE b_id = 1 AND n > 2").await, ["Key Range Scan on c (filtered)"]);
    assert_eq!(plan("SELECT * FROM a WHERE name = 'x'").await, ["Index Scan using a_name on a (filtered)"]);
    assert_eq!(plan("SELECT * FROM a WHERE name LIKE 'x%'").await, ["Seq Scan on a (filtered)"]);
    assert_eq!(plan("SELECT * FROM a WHERE id = 1 AND name = 'x'").await, ["Point Read on a (filtered)"]);
    // The index fixes more leading columns than the key's range does.
    assert_eq!(plan("SELECT * FROM b WHERE a_id = 3 AND id > 5").await, ["Index Scan using b_pair on b (filtered)"]);
    assert_eq!(plan("SELECT * FROM b WHERE id > 5").await, ["Key Range Scan on b (filtered)"]);
    assert_eq!(
        plan("SELECT * FROM c, b, a WHERE c.b_id = b.id AND b.a_id = a.id AND a.id = 7").await,
        [
            "Hash Join (inner, 1 key)",
            "->  Hash Join (inner, 1 key)",
            "->  Point Read on a (filtered)",
            "->  Seq Scan on b",
            "->  Seq Scan on c",
        ]
    );
    assert_eq!(
        plan("UPDATE a SET name = 'y' WHERE name = 'x'").await,
        ["Update on a", "->  Index Scan using a_name on a (filtered)"]
    );
    assert_eq!(
        plan("UPDATE b SET a_id = a.id FROM a WHERE a.id = b.a_id AND a.name = 'x'").await,
        ["Update on b", "->  Hash Join (1 key)", "->  Seq Scan on b", "->  Index Scan using a_name on a (filtered)"]
    );
    client.simple_query("DROP INDEX a_name").await.unwrap();
    assert_eq!(plan("SELECT * FROM a WHERE name = 'x'").await, ["Seq Scan on a (filtered)"]);
    assert_eq!(plan("DELETE FROM b WHERE id < 10").await, ["Delete on b", "->  Key Range Scan on b (filtered)"]);
    // ANALYZE runs the query: each node with the rows it produced.
    client.simple_query("INSERT INTO b VALUES (1, 7), (2, 7), (3, 8); INSERT INTO a VALUES (7, 'x')").await.unwrap();
    let analyzed = plan("ANALYZE SELECT count(*) FROM b JOIN a ON a.id = b.a_id WHERE a.id = 7").await;
    let shapes: Vec<String> = analyzed
        .iter()
        .map(|line| match line.split_once(" time=") {
            Some((head, _)) => head.to_string(),
            None => line.split(':').next().unwrap_or_default().to_string(),
        })
        .collect();
    assert_eq!(
        shapes,
        [
            "Aggregate (0 group keys, 1 aggregates) (actual rows=1",
            "->  Hash Join (inner, 1 key) (actual rows=2",
            "->  Point Read on a (filtered) (actual rows=1",
            "->  Seq Scan on b (actual rows=3",
            "Execution Time",
        ],
        "{analyzed:?}"
    );
    // LIMIT pushdown: the scan stops once OFFSET + LIMIT rows are read.
    let limited = plan("ANALYZE SELECT * FROM b LIMIT 1 OFFSET 1").await;
    assert!(limited[0].starts_with("Limit (actual rows=1 "), "{limited:?}");
    assert!(limited[1].starts_with("->  Seq Scan on b (actual rows=2 "), "{limited:?}");
    assert_eq!(failing(&client, "EXPLAIN ANALYZE DELETE FROM b").await, "0A000");
}

#[test]
fn a_psql_script_runs_to_the_end() {
    let node = Node::start(&[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("notes.sql");
    std::fs::write(
        &script,
        "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT);\n\
         INSERT INTO notes VALUES (1, 'hello'), (2, 'world');\n\
         BEGIN;\n\
         UPDATE notes SET body = body || '!' WHERE id = 2;\n\
         SAVEPOINT before_delete;\n\
         DELETE FROM notes;\n\
         ROLLBACK TO SAVEPOINT before_delete;\n\
         COMMIT;\n\
         SELECT body FROM notes ORDER BY id;\n",
    )
    .unwrap();
    let psql = |args: &[&str]| {
        let mut command = std::process::Command::new("psql");
        command
            .args(["-h", "127.0.0.1", "-p", &node.pg_port().to_string(), "-U", "seshat", "-d", "seshat"])
            .args(["-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t"])
            .args(args);
        output_within(&mut command, CLIENT_LIMIT).expect("psql (installed by scripts/install-deps.sh) exits")
    };
    let output = psql(&["-f", script.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(stdout.lines().collect::<Vec<_>>(), ["hello", "world!"]);
    let failing = psql(&["-c", "SELECT * FROM nowhere"]);
    assert_eq!(failing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&failing.stderr).contains("relation \"nowhere\" does not exist"));
}

/// A cancel request (BackendKeyData's key, on a second connection) stops
/// the running query with 57014; the session then runs the next one.
#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_request_stops_a_long_query_and_the_session_goes_on() {
    let node = Node::start(&[]).unwrap();
    let client = node.pg().await.unwrap();
    let token = client.cancel_token();
    let cancel = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        token.cancel_query(tokio_postgres::NoTls).await
    });
    // 400 million pairs: minutes of work unless cancelled.
    let long = "SELECT count(*) FROM generate_series(1, 20000) a, generate_series(1, 20000) b WHERE a + b < 0";
    let cancelled = tokio::time::timeout(std::time::Duration::from_secs(60), failing(&client, long))
        .await
        .expect("the query was not cancelled");
    assert_eq!(cancelled, "57014");
    cancel.await.unwrap().unwrap();
    assert_eq!(first_column(&client, "SELECT 1").await, ["1"]);
}
