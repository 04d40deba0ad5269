//! Prepared statements over the extended query protocol, with
//! tokio-postgres (binary parameters and results) against the built
//! binary.

use bytes::BytesMut;
use seshat_tests::{sqlstate, Node};
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};

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

/// A value as its raw binary form, of whatever type the server says:
/// what PostgreSQL's `*send`/`*recv` functions define, checked byte for
/// byte.
#[derive(Debug, PartialEq)]
struct Raw(Vec<u8>);

impl ToSql for Raw {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(&self.0);
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw.to_vec()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dates_timestamps_uuids_numerics_and_bytes_round_trip_in_binary() {
    let node = Node::start(&[]).unwrap();
    let client = node.pg().await.unwrap();
    client
        .batch_execute(
            "CREATE TABLE typed (id UUID PRIMARY KEY, d DATE, ts TIMESTAMP, tz TIMESTAMPTZ, n NUMERIC(10,4),
             c CHAR(4), b BYTEA)",
        )
        .await
        .unwrap();
    let insert = client.prepare("INSERT INTO typed VALUES ($1, $2, $3, $4, $5, $6, $7)").await.unwrap();
    assert_eq!(
        insert.params(),
        [Type::UUID, Type::DATE, Type::TIMESTAMP, Type::TIMESTAMPTZ, Type::NUMERIC, Type::BPCHAR, Type::BYTEA]
    );
    let uuid = Raw((0u8..16).collect());
    // 2000-01-02: one day after PostgreSQL's epoch.
    let date = Raw(1i32.to_be_bytes().to_vec());
    // 2000-01-01 00:00:01.5
    let timestamp = Raw(1_500_000i64.to_be_bytes().to_vec());
    // -12.3400: 2 base-10000 digits (12, 3400), weight 0, negative, scale 4.
    let numeric = Raw([2i16, 0, 0x4000, 4, 12, 3400].iter().flat_map(|n| n.to_be_bytes()).collect());
    let values: [&(dyn ToSql + Sync); 7] = [&uuid, &date, &timestamp, &timestamp, &numeric, &"ab", &Raw(vec![0, 255])];
    client.execute(&insert, &values).await.unwrap();
    let text = client
        .simple_query("SELECT id, d, ts, tz, n, c, b FROM typed")
        .await
        .unwrap()
        .into_iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => {
                Some((0..7).map(|i| row.get(i).unwrap().to_string()).collect::<Vec<_>>())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(
        text,
        [
            "00010203-0405-0607-0809-0a0b0c0d0e0f",
            "2000-01-02",
            "2000-01-01 00:00:01.5",
            "2000-01-01 00:00:01.5+00",
            "-12.3400",
            "ab  ",
            "\\x00ff"
        ]
    );
    let row = client.query_one("SELECT id, d, ts, tz, n, c, b FROM typed WHERE id = $1", &[&uuid]).await.unwrap();
    assert_eq!(row.get::<_, Raw>(0), uuid);
    assert_eq!(row.get::<_, Raw>(1), date);
    assert_eq!(row.get::<_, Raw>(2), timestamp);
    assert_eq!(row.get::<_, Raw>(3), timestamp);
    assert_eq!(row.get::<_, Raw>(4), numeric);
    assert_eq!(row.get::<_, &str>(5), "ab  ");
    assert_eq!(row.get::<_, Raw>(6), Raw(vec![0, 255]));
    // A numeric beyond the column's precision: 22003.
    let huge = Raw([1i16, 3, 0, 0, 1].iter().flat_map(|n| n.to_be_bytes()).collect());
    let error = client.execute("UPDATE typed SET n = $1", &[&huge]).await.unwrap_err();
    assert_eq!(sqlstate(&error), "22003");
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
