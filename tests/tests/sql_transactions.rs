//! Transactions over the PostgreSQL frontend, with concurrent sessions
//! (tokio-postgres) against the built binary.

use seshat_tests::{failing, first_column, Node};

#[tokio::test(flavor = "multi_thread")]
async fn a_transaction_sees_its_own_writes_and_others_see_them_at_commit() {
    let node = Node::start(&[]).unwrap();
    let (a, b) = (node.pg().await.unwrap(), node.pg().await.unwrap());
    a.batch_execute("CREATE TABLE t (id INT PRIMARY KEY, n INT)").await.unwrap();
    a.batch_execute("BEGIN; INSERT INTO t VALUES (1, 10)").await.unwrap();
    assert_eq!(first_column(&a, "SELECT n FROM t").await, ["10"]);
    assert!(first_column(&b, "SELECT n FROM t").await.is_empty(), "uncommitted writes are invisible");
    a.batch_execute("UPDATE t SET n = n + 1; COMMIT").await.unwrap();
    assert_eq!(first_column(&b, "SELECT n FROM t").await, ["11"]);

    a.batch_execute("BEGIN; DELETE FROM t; ROLLBACK").await.unwrap();
    assert_eq!(first_column(&b, "SELECT n FROM t").await, ["11"], "a rollback writes nothing");
    assert_eq!(first_column(&a, "SHOW transaction_isolation").await, ["serializable"]);

    // A failed statement fails the block until it ends; COMMIT rolls back.
    a.batch_execute("BEGIN; INSERT INTO t VALUES (2, 20)").await.unwrap();
    assert_eq!(failing(&a, "INSERT INTO t VALUES (1, 0)").await, "23505");
    assert_eq!(failing(&a, "SELECT 1").await, "25P02");
    a.batch_execute("COMMIT").await.unwrap();
    assert_eq!(first_column(&a, "SELECT count(*) FROM t").await, ["1"]);

    // A string of statements is one implicit transaction.
    assert_eq!(failing(&a, "INSERT INTO t VALUES (3, 30); INSERT INTO t VALUES (1, 0)").await, "23505");
    assert_eq!(first_column(&a, "SELECT count(*) FROM t").await, ["1"]);

    assert_eq!(failing(&a, "BEGIN READ ONLY; INSERT INTO t VALUES (4, 40)").await, "25006");
    a.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(failing(&a, "SAVEPOINT s").await, "25P01");
}

#[tokio::test(flavor = "multi_thread")]
async fn savepoints_undo_part_of_a_transaction() {
    let node = Node::start(&[]).unwrap();
    let client = node.pg().await.unwrap();
    client.batch_execute("CREATE TABLE t (id INT PRIMARY KEY)").await.unwrap();
    client
        .batch_execute(
            "BEGIN; INSERT INTO t VALUES (1); SAVEPOINT a; INSERT INTO t VALUES (2); ROLLBACK TO SAVEPOINT a;
             INSERT INTO t VALUES (3); SAVEPOINT b",
        )
        .await
        .unwrap();
    assert_eq!(failing(&client, "INSERT INTO t VALUES (1)").await, "23505");
    assert_eq!(failing(&client, "SELECT 1").await, "25P02");
    client.batch_execute("ROLLBACK TO b; INSERT INTO t VALUES (4); RELEASE a").await.unwrap();
    assert_eq!(failing(&client, "ROLLBACK TO b").await, "3B001", "RELEASE a released b too");
    client.batch_execute("ROLLBACK TO SAVEPOINT a").await.unwrap_err();
    client.batch_execute("ROLLBACK").await.unwrap();

    client
        .batch_execute(
            "BEGIN; INSERT INTO t VALUES (1); SAVEPOINT a; INSERT INTO t VALUES (2); ROLLBACK TO a;
             INSERT INTO t VALUES (3); RELEASE SAVEPOINT a; COMMIT",
        )
        .await
        .unwrap();
    assert_eq!(first_column(&client, "SELECT id FROM t ORDER BY id").await, ["1", "3"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn of_two_conflicting_transactions_exactly_one_commits() {
    let node = Node::start(&[]).unwrap();
    let (a, b) = (node.pg().await.unwrap(), node.pg().await.unwrap());
    a.batch_execute("CREATE TABLE t (id INT PRIMARY KEY, n INT); INSERT INTO t VALUES (1, 100)").await.unwrap();
    // Both read the balance, both write what they computed from it.
    a.batch_execute("BEGIN").await.unwrap();
    b.batch_execute("BEGIN").await.unwrap();
    assert_eq!(first_column(&a, "SELECT n FROM t WHERE id = 1").await, ["100"]);
    assert_eq!(first_column(&b, "SELECT n FROM t WHERE id = 1").await, ["100"]);
    a.batch_execute("UPDATE t SET n = 90 WHERE id = 1").await.unwrap();
    b.batch_execute("UPDATE t SET n = 80 WHERE id = 1").await.unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    assert_eq!(failing(&b, "COMMIT").await, "40001");
    assert_eq!(first_column(&b, "SELECT n FROM t").await, ["90"], "the session is usable and idle after 40001");
}

#[tokio::test(flavor = "multi_thread")]
async fn write_skew_is_prevented() {
    let node = Node::start(&[]).unwrap();
    let (a, b) = (node.pg().await.unwrap(), node.pg().await.unwrap());
    a.batch_execute("CREATE TABLE doctors (name TEXT PRIMARY KEY, on_call BOOLEAN)").await.unwrap();
    a.batch_execute("INSERT INTO doctors VALUES ('alice', true), ('bob', true)").await.unwrap();
    // Each checks that someone else is on call, then leaves.
    for (client, name) in [(&a, "alice"), (&b, "bob")] {
        client.batch_execute("BEGIN").await.unwrap();
        assert_eq!(first_column(client, "SELECT count(*) FROM doctors WHERE on_call").await, ["2"]);
        client.batch_execute(&format!("UPDATE doctors SET on_call = false WHERE name = '{name}'")).await.unwrap();
    }
    a.batch_execute("COMMIT").await.unwrap();
    assert_eq!(failing(&b, "COMMIT").await, "40001");
    assert_eq!(first_column(&a, "SELECT count(*) FROM doctors WHERE on_call").await, ["1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn blind_increments_of_one_row_do_not_conflict() {
    let node = Node::start(&[]).unwrap();
    let (a, b) = (node.pg().await.unwrap(), node.pg().await.unwrap());
    a.batch_execute("CREATE TABLE counters (id INT PRIMARY KEY, n INT); INSERT INTO counters VALUES (1, 0)")
        .await
        .unwrap();
    let mut a = a;
    let mut b = b;
    let ta = a.transaction().await.unwrap();
    let tb = b.transaction().await.unwrap();
    let increment = "UPDATE counters SET n = n + $1 WHERE id = 1";
    assert_eq!(ta.execute(increment, &[&1i32]).await.unwrap(), 1);
    assert_eq!(tb.execute(increment, &[&10i32]).await.unwrap(), 1);
    ta.commit().await.unwrap();
    tb.commit().await.unwrap();
    let n: i32 = a.query_one("SELECT n FROM counters WHERE id = 1", &[]).await.unwrap().get(0);
    assert_eq!(n, 11);
}

/// At commit each statement keeps what it wrote in the session if what it
/// read is unchanged, else runs again: a blind increment still commits,
/// but a statement that then read the incremented value saw a value that
/// the concurrent commit made stale, so the transaction fails.
#[tokio::test(flavor = "multi_thread")]
async fn a_read_of_a_row_a_concurrent_commit_changed_fails_the_transaction_even_after_its_own_write() {
    let node = Node::start(&[]).unwrap();
    let (a, b) = (node.pg().await.unwrap(), node.pg().await.unwrap());
    a.batch_execute("CREATE TABLE c (id INT PRIMARY KEY, n INT); INSERT INTO c VALUES (1, 0), (2, 0)").await.unwrap();

    a.batch_execute("BEGIN; UPDATE c SET n = n + 1 WHERE id = 1").await.unwrap();
    assert_eq!(first_column(&a, "SELECT n FROM c WHERE id = 1").await, ["1"]);
    b.batch_execute("UPDATE c SET n = n + 10 WHERE id = 1").await.unwrap();
    assert_eq!(failing(&a, "COMMIT").await, "40001");
    assert_eq!(first_column(&a, "SELECT n FROM c WHERE id = 1").await, ["10"]);

    a.batch_execute("BEGIN; UPDATE c SET n = n + 1 WHERE id = 1").await.unwrap();
    assert_eq!(first_column(&a, "SELECT n FROM c WHERE id = 2").await, ["0"]);
    a.batch_execute("UPDATE c SET n = n + 1 WHERE id = 2").await.unwrap();
    b.batch_execute("UPDATE c SET n = n + 10 WHERE id = 1").await.unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    assert_eq!(first_column(&a, "SELECT n FROM c ORDER BY id").await, ["21", "1"]);
}

/// Rows a transaction inserts into a table without a primary key get
/// their hidden ids at commit, so concurrent inserting transactions do
/// not conflict; the transaction's own later statements see its rows
/// before that, and a statement that read them runs again at commit over
/// the rows as stored.
#[tokio::test(flavor = "multi_thread")]
async fn transactions_inserting_into_a_table_without_a_primary_key_commit_concurrently() {
    let node = Node::start(&[]).unwrap();
    let (a, b) = (node.pg().await.unwrap(), node.pg().await.unwrap());
    a.batch_execute("CREATE TABLE history (who TEXT, n INT UNIQUE); INSERT INTO history VALUES ('setup', 0)")
        .await
        .unwrap();
    for (client, who, n) in [(&a, "a", 1), (&b, "b", 2)] {
        client.batch_execute("BEGIN").await.unwrap();
        client.batch_execute(&format!("INSERT INTO history VALUES ('{who}', {n})")).await.unwrap();
        client.batch_execute(&format!("INSERT INTO history VALUES ('{who}', {})", n + 10)).await.unwrap();
    }
    assert_eq!(first_column(&a, "SELECT n FROM history").await, ["0", "1", "11"], "in insertion order");
    a.batch_execute("UPDATE history SET who = 'A' WHERE n = 11").await.unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    b.batch_execute("COMMIT").await.unwrap();
    assert_eq!(first_column(&a, "SELECT n FROM history").await, ["0", "1", "11", "2", "12"]);
    assert_eq!(first_column(&a, "SELECT who FROM history WHERE who <> 'setup'").await, ["a", "A", "b", "b"]);

    // A unique value inserted by a concurrent commit: the deferred row is
    // refused at commit.
    a.batch_execute("BEGIN; INSERT INTO history VALUES ('a', 3)").await.unwrap();
    b.batch_execute("INSERT INTO history VALUES ('b', 3)").await.unwrap();
    assert_eq!(failing(&a, "COMMIT").await, "40001");
    assert_eq!(first_column(&a, "SELECT count(*) FROM history WHERE n = 3").await, ["1"]);
    assert_eq!(failing(&a, "BEGIN; INSERT INTO history VALUES ('a', 3)").await, "23505");
    a.batch_execute("ROLLBACK").await.unwrap();
}

/// An autocommit write runs ahead in its session on what the node has
/// applied, and runs again at apply if what it read changed meanwhile.
/// So concurrent increments of one row all count, and of concurrent
/// inserts of one UNIQUE value exactly one succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_autocommit_writes_of_one_row_each_take_effect_once() {
    const SESSIONS: i32 = 4;
    const ROUNDS: i32 = 25;
    let node = Node::start(&[]).unwrap();
    let setup = node.pg().await.unwrap();
    setup
        .batch_execute(
            "CREATE TABLE counters (id INT PRIMARY KEY, n INT); INSERT INTO counters VALUES (1, 0);
             CREATE TABLE claims (id INT PRIMARY KEY, code TEXT UNIQUE);
             CREATE TABLE events (session INT, round INT); CREATE TABLE codes (code TEXT UNIQUE)",
        )
        .await
        .unwrap();
    let mut sessions = Vec::new();
    for session in 0..SESSIONS {
        let client = node.pg().await.unwrap();
        sessions.push(tokio::spawn(async move {
            let mut claimed = 0;
            for round in 0..ROUNDS {
                client.execute("UPDATE counters SET n = n + 1 WHERE id = 1", &[]).await.unwrap();
                let claim = client
                    .execute(
                        "INSERT INTO claims VALUES ($1, $2)",
                        &[&(round * SESSIONS + session), &format!("c{round}")],
                    )
                    .await;
                match claim {
                    Ok(rows) => claimed += rows,
                    Err(error) => assert_eq!(error.code().map(|c| c.code()), Some("23505"), "{error}"),
                }
                // Tables without a primary key: hidden row ids drawn at apply.
                client.execute("INSERT INTO events VALUES ($1, $2)", &[&session, &round]).await.unwrap();
                match client.execute("INSERT INTO codes VALUES ($1)", &[&format!("c{round}")]).await {
                    Ok(rows) => claimed += rows,
                    Err(error) => assert_eq!(error.code().map(|c| c.code()), Some("23505"), "{error}"),
                }
            }
            claimed
        }));
    }
    let mut claimed = 0;
    for session in sessions {
        claimed += session.await.unwrap();
    }
    assert_eq!(first_column(&setup, "SELECT n FROM counters").await, [(SESSIONS * ROUNDS).to_string()]);
    assert_eq!(claimed, 2 * ROUNDS as u64, "one claim of each code succeeded, in each table");
    assert_eq!(first_column(&setup, "SELECT count(DISTINCT code) FROM claims").await, [ROUNDS.to_string()]);
    assert_eq!(first_column(&setup, "SELECT count(*) FROM codes").await, [ROUNDS.to_string()]);
    assert_eq!(first_column(&setup, "SELECT count(*) FROM events").await, [(SESSIONS * ROUNDS).to_string()]);
    let rounds: Vec<String> = (0..ROUNDS).map(|round| round.to_string()).collect();
    assert_eq!(
        first_column(&setup, "SELECT round FROM events WHERE session = 1").await,
        rounds,
        "a table without a primary key keeps each session's rows in the order they were inserted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn portals_hand_rows_out_in_batches_inside_a_transaction() {
    let node = Node::start(&[]).unwrap();
    let mut client = node.pg().await.unwrap();
    client.batch_execute("CREATE TABLE t (id INT PRIMARY KEY)").await.unwrap();
    let insert = client.prepare("INSERT INTO t VALUES ($1)").await.unwrap();
    for id in 0..7i32 {
        client.execute(&insert, &[&id]).await.unwrap();
    }
    let transaction = client.transaction().await.unwrap();
    let select = transaction.prepare("SELECT id FROM t WHERE id >= $1 ORDER BY id").await.unwrap();
    let portal = transaction.bind(&select, &[&1i32]).await.unwrap();
    let mut batches = Vec::new();
    loop {
        let rows = transaction.query_portal(&portal, 4).await.unwrap();
        if rows.is_empty() {
            break;
        }
        batches.push(rows.iter().map(|r| r.get::<_, i32>(0)).collect::<Vec<_>>());
    }
    assert_eq!(batches, [vec![1, 2, 3, 4], vec![5, 6]]);
    transaction.commit().await.unwrap();
}

/// Two transactions that insert the same value of a UNIQUE column each
/// see only their own insert; the one that commits second is refused.
#[tokio::test(flavor = "multi_thread")]
async fn of_two_transactions_inserting_one_unique_value_only_the_first_commits() {
    let node = Node::start(&[]).unwrap();
    let (a, b) = (node.pg().await.unwrap(), node.pg().await.unwrap());
    a.batch_execute("CREATE TABLE users (id INT PRIMARY KEY, email TEXT UNIQUE)").await.unwrap();
    a.batch_execute("BEGIN; INSERT INTO users VALUES (1, 'x@y')").await.unwrap();
    b.batch_execute("BEGIN; INSERT INTO users VALUES (2, 'x@y')").await.unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    assert_eq!(failing(&b, "COMMIT").await, "40001");
    assert_eq!(first_column(&a, "SELECT id FROM users WHERE email = 'x@y'").await, ["1"]);
    assert_eq!(failing(&b, "INSERT INTO users VALUES (2, 'x@y')").await, "23505");
}

/// `now()` is the transaction's time: the same for each of its
/// statements, and the value its writes store once committed (apply runs
/// them at the time the session fixed).
#[tokio::test(flavor = "multi_thread")]
async fn now_is_the_transaction_s_time_in_the_session_and_at_commit() {
    let node = Node::start(&[]).unwrap();
    let client = node.pg().await.unwrap();
    client.batch_execute("CREATE TABLE events (id INT PRIMARY KEY, at TIMESTAMPTZ DEFAULT now())").await.unwrap();
    client.batch_execute("BEGIN").await.unwrap();
    let began = first_column(&client, "SELECT now()").await;
    client.batch_execute("INSERT INTO events (id) VALUES (1)").await.unwrap();
    assert_eq!(first_column(&client, "SELECT at FROM events").await, began, "the transaction sees its own row");
    assert_eq!(first_column(&client, "SELECT current_timestamp").await, began);
    client.batch_execute("COMMIT").await.unwrap();
    assert_eq!(first_column(&client, "SELECT at FROM events WHERE id = 1").await, began, "apply used the same time");
    // On its own, a write is stamped with its log entry's time: between
    // the moments before and after it.
    let before = first_column(&client, "SELECT now()").await;
    client.batch_execute("INSERT INTO events (id) VALUES (2)").await.unwrap();
    let after = first_column(&client, "SELECT now()").await;
    let stamped = first_column(&client, "SELECT at FROM events WHERE id = 2").await;
    let within = format!(
        "SELECT '{}'::timestamptz BETWEEN date_trunc('milliseconds', '{}'::timestamptz) AND '{}'",
        stamped[0], before[0], after[0]
    );
    assert_eq!(first_column(&client, &within).await, ["t"], "{before:?} <= {stamped:?} <= {after:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transaction_keeps_the_schema_of_its_snapshot_while_another_session_alters_it() {
    let node = Node::start(&[]).unwrap();
    let (a, b) = (node.pg().await.unwrap(), node.pg().await.unwrap());
    a.batch_execute("CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1)").await.unwrap();
    a.batch_execute("BEGIN").await.unwrap();
    assert_eq!(a.query("SELECT * FROM t", &[]).await.unwrap()[0].len(), 1);

    b.batch_execute("ALTER TABLE t ADD COLUMN n INT DEFAULT 7").await.unwrap();
    // b's read decodes (and caches) the new schema before a reads again.
    assert_eq!(first_column(&b, "SELECT n FROM t").await, ["7"]);
    assert_eq!(a.query("SELECT * FROM t", &[]).await.unwrap()[0].len(), 1, "a reads its snapshot's schema");
    assert_eq!(failing(&a, "SELECT n FROM t").await, "42703");
    a.batch_execute("ROLLBACK").await.unwrap();

    assert_eq!(first_column(&a, "SELECT n FROM t").await, ["7"]);
    b.batch_execute("ALTER TABLE t RENAME COLUMN n TO m").await.unwrap();
    assert_eq!(failing(&a, "SELECT n FROM t").await, "42703", "the old schema is not served after a change");
    assert_eq!(first_column(&a, "SELECT m FROM t").await, ["7"]);
}
