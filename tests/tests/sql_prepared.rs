//! Prepared statements over the extended query protocol, with
//! tokio-postgres (binary parameters and results) against the built
//! binary.

use seshat_tests::{sqlstate, Node};
use tokio_postgres::types::Type;

#[tokio::test(flavor = "multi_thread")]
async fn parameters_of_every_type_round_trip_in_binary() {
    let node = Node::start(&[]).unwrap();
    let client = node.pg().await.unwrap();
    client
        .batch_execute(
            "CREATE TABLE every (id INT PRIMARY KEY, b BOOLEAN, s SMALLINT, l BIGINT, r REAL, d DOUBLE PRECISION,
             t TEXT, v VARCHAR(5))",
        )
        .await
        .unwrap();
    let insert = client.prepare("INSERT INTO every VALUES ($1, $2, $3, $4, $5, $6, $7, $8)").await.unwrap();
    assert_eq!(
        insert.params(),
        [Type::INT4, Type::BOOL, Type::INT2, Type::INT8, Type::FLOAT4, Type::FLOAT8, Type::TEXT, Type::VARCHAR]
    );
    assert!(insert.columns().is_empty());
    let inserted = client
        .execute(&insert, &[&1i32, &true, &-7i16, &(i64::MAX), &1.5f32, &-2.25f64, &"it's \\ ü", &"short"])
        .await
        .unwrap();
    assert_eq!(inserted, 1);
    let nulls: [&(dyn tokio_postgres::types::ToSql + Sync); 8] =
        [&2i32, &None::<bool>, &None::<i16>, &None::<i64>, &None::<f32>, &None::<f64>, &None::<&str>, &None::<&str>];
    client.execute(&insert, &nulls).await.unwrap();

    let select = client.prepare("SELECT b, s, l, r, d, t, v, id + 1 AS next FROM every WHERE id = $1").await.unwrap();
    assert_eq!(select.params(), [Type::INT4]);
    let types: Vec<Type> = select.columns().iter().map(|c| c.type_().clone()).collect();
    assert_eq!(
        types,
        [Type::BOOL, Type::INT2, Type::INT8, Type::FLOAT4, Type::FLOAT8, Type::TEXT, Type::VARCHAR, Type::INT4]
    );
    let row = client.query_one(&select, &[&1i32]).await.unwrap();
    assert!(row.get::<_, bool>(0));
    assert_eq!(row.get::<_, i16>(1), -7);
    assert_eq!(row.get::<_, i64>(2), i64::MAX);
    assert_eq!(row.get::<_, f32>(3), 1.5);
    assert_eq!(row.get::<_, f64>(4), -2.25);
    assert_eq!(row.get::<_, &str>(5), "it's \\ ü");
    assert_eq!(row.get::<_, &str>(6), "short");
    assert_eq!(row.get::<_, i32>(7), 2);
    let row = client.query_one(&select, &[&2i32]).await.unwrap();
    assert_eq!(row.get::<_, Option<bool>>(0), None);
    assert_eq!(row.get::<_, Option<&str>>(5), None);
    assert!(client.query_opt(&select, &[&3i32]).await.unwrap().is_none());

    // The column checks the length of a parameter, not the parameter.
    let error =
        client.execute(&insert, &[&3i32, &true, &1i16, &1i64, &1f32, &1f64, &"t", &"too long"]).await.unwrap_err();
    assert_eq!(sqlstate(&error), "22001");
}

#[tokio::test(flavor = "multi_thread")]
async fn parameter_types_are_inferred_from_their_context() {
    let node = Node::start(&[]).unwrap();
    let client = node.pg().await.unwrap();
    client.batch_execute("CREATE TABLE t (id BIGINT PRIMARY KEY, name VARCHAR(10), score REAL)").await.unwrap();
    let cases: [(&str, &[Type]); 8] = [
        ("SELECT $1", &[Type::TEXT]),
        ("SELECT $1::bigint + 1", &[Type::INT8]),
        ("SELECT name FROM t WHERE id = $1 AND name = $2", &[Type::INT8, Type::VARCHAR]),
        ("SELECT id FROM t WHERE score > $1 ORDER BY id LIMIT $2 OFFSET $3", &[Type::FLOAT4, Type::INT8, Type::INT8]),
        (
            "UPDATE t SET score = score + $1 WHERE id IN ($2, $3) RETURNING name",
            &[Type::FLOAT4, Type::INT8, Type::INT8],
        ),
        ("DELETE FROM t WHERE name LIKE $1", &[Type::TEXT]),
        ("SELECT $2 = id FROM t WHERE $1", &[Type::BOOL, Type::INT8]),
        ("SELECT name FROM t WHERE id IN (SELECT id FROM t WHERE score > $1) LIMIT $2", &[Type::FLOAT4, Type::INT8]),
    ];
    for (sql, params) in cases {
        let statement = client.prepare(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(statement.params(), params, "{sql}");
    }
    let update = client.prepare("UPDATE t SET score = score + $1 WHERE id IN ($2, $3) RETURNING name").await.unwrap();
    assert_eq!(update.columns()[0].name(), "name");
    assert_eq!(update.columns()[0].type_(), &Type::VARCHAR);

    // A declared type wins over the inferred one.
    let declared = client.prepare_typed("SELECT $1 + 1", &[Type::INT2]).await.unwrap();
    assert_eq!(declared.params(), [Type::INT2]);
    assert_eq!(declared.columns()[0].type_(), &Type::INT4, "smallint + integer is integer");
    assert_eq!(client.query_one(&declared, &[&41i16]).await.unwrap().get::<_, i32>(0), 42);

    let failures = [
        ("SELECT $2", "42P18"),
        ("SELECT * FROM missing WHERE id = $1", "42P01"),
        ("SELECT 1; SELECT 2", "42601"),
        ("SELECT name FROM t WHERE id = $1 AND name = $1", "42P08"),
    ];
    for (sql, code) in failures {
        let error = client.prepare(sql).await.unwrap_err();
        assert_eq!(sqlstate(&error), code, "{sql}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn prepared_writes_replicate_and_errors_leave_the_session_usable() {
    let mut node = Node::start(&[]).unwrap();
    let client = node.pg().await.unwrap();
    client.batch_execute("CREATE TABLE kv (k TEXT PRIMARY KEY, n INT NOT NULL)").await.unwrap();
    let insert = client.prepare("INSERT INTO kv VALUES ($1, $2) RETURNING k, n * 10").await.unwrap();
    let row = client.query_one(&insert, &[&"a", &1i32]).await.unwrap();
    assert_eq!((row.get::<_, &str>(0), row.get::<_, i32>(1)), ("a", 10));
    let duplicate = client.query(&insert, &[&"a", &2i32]).await.unwrap_err();
    assert_eq!(sqlstate(&duplicate), "23505");
    let null = client.query(&insert, &[&"b", &None::<i32>]).await.unwrap_err();
    assert_eq!(sqlstate(&null), "23502");
    let increment = client.prepare("UPDATE kv SET n = n + $1 WHERE k = $2").await.unwrap();
    assert_eq!(client.execute(&increment, &[&5i32, &"a"]).await.unwrap(), 1);
    assert_eq!(client.execute(&increment, &[&5i32, &"zzz"]).await.unwrap(), 0);
    let overflow = client.execute(&increment, &[&i32::MAX, &"a"]).await.unwrap_err();
    assert_eq!(sqlstate(&overflow), "22003");
    // A quote in a parameter is data, never SQL.
    client.execute("INSERT INTO kv VALUES ($1, 0)", &[&"'); DROP TABLE kv; --"]).await.unwrap();
    let rows = client.query("SELECT k, n FROM kv ORDER BY k", &[]).await.unwrap();
    let rows: Vec<(String, i32)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(rows, [("'); DROP TABLE kv; --".to_string(), 0), ("a".to_string(), 6)]);
    // The same rows after a restart: the substituted statements were
    // logged and replay.
    drop(client);
    node.restart().unwrap();
    let client = node.pg().await.unwrap();
    let count: i64 = client.query_one("SELECT count(*) FROM kv", &[]).await.unwrap().get(0);
    assert_eq!(count, 2);
}
