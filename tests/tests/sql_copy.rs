//! COPY and the tools built on it, against the built binary: tokio-postgres'
//! copy_in/copy_out, psql's \copy, and stock pgbench (-i, then runs in
//! every query mode) with its balances checked afterwards.

use std::process::Command;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use seshat_tests::bounded::{output_within, CLIENT_LIMIT};
use seshat_tests::{failing, psql, simple_rows, sqlstate, Node};

/// Streams `data` into `sql` (a COPY FROM STDIN) in pieces of `piece`
/// bytes: the row count, or the error.
async fn copy_in(
    client: &tokio_postgres::Client,
    sql: &str,
    data: &[u8],
    piece: usize,
) -> Result<u64, tokio_postgres::Error> {
    let sink = client.copy_in::<_, Bytes>(sql).await?;
    futures_util::pin_mut!(sink);
    for chunk in data.chunks(piece) {
        sink.send(Bytes::copy_from_slice(chunk)).await?;
    }
    sink.finish().await
}

async fn copy_out(client: &tokio_postgres::Client, sql: &str) -> String {
    let stream = client.copy_out(sql).await.unwrap();
    futures_util::pin_mut!(stream);
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_reads_and_writes_text_and_csv() {
    let node = Node::start(&[]).unwrap();
    let client = node.pg().await.unwrap();
    client
        .simple_query("CREATE TABLE t (id INT PRIMARY KEY, name TEXT, score NUMERIC(5,1) DEFAULT 1.5, note VARCHAR(4))")
        .await
        .unwrap();
    // Text: tabs, \N, escapes, a last line without its newline, cut in
    // pieces that split lines and escapes.
    let text = b"1\tann\t2.5\t\\N\n2\ttab\\there\t\\N\tx\\\\y\n3\tlast\t7\tend";
    assert_eq!(copy_in(&client, "COPY t FROM STDIN", text, 3).await.unwrap(), 3);
    // CSV with a header, a column list (score takes its default), quotes
    // and an empty quoted string (not NULL).
    let csv = b"id,note,name\n4,\"a,b\",\"say \"\"hi\"\"\"\n5,,\"\"\n";
    assert_eq!(
        copy_in(&client, "COPY t (id, note, name) FROM STDIN WITH (FORMAT csv, HEADER)", csv, 7).await.unwrap(),
        2
    );
    assert_eq!(
        simple_rows(&client, "SELECT id, name, score, note FROM t ORDER BY id").await,
        [
            ["1", "ann", "2.5", "NULL"],
            ["2", "tab\there", "NULL", "x\\y"],
            ["3", "last", "7.0", "end"],
            ["4", "say \"hi\"", "1.5", "a,b"],
            ["5", "", "1.5", "NULL"],
        ]
    );
    assert_eq!(
        copy_out(&client, "COPY t (id, name, note) TO STDOUT").await,
        "1\tann\t\\N\n2\ttab\\there\tx\\\\y\n3\tlast\tend\n4\tsay \"hi\"\ta,b\n5\t\t\\N\n"
    );
    assert_eq!(
        copy_out(&client, "COPY (SELECT id, name FROM t WHERE id > 3 ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)")
            .await,
        "id,name\n4,\"say \"\"hi\"\"\"\n5,\"\"\n"
    );
    assert_eq!(
        copy_out(
            &client,
            "COPY (SELECT id, note FROM t WHERE id < 3 ORDER BY id) TO STDOUT WITH (DELIMITER '|', NULL 'nil')"
        )
        .await,
        "1|nil\n2|x\\\\y\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_line_names_its_line_and_inserts_nothing() {
    let node = Node::start(&[]).unwrap();
    let client = node.pg().await.unwrap();
    client.simple_query("CREATE TABLE t (id INT PRIMARY KEY, name TEXT NOT NULL)").await.unwrap();
    let cases: [(&[u8], &str, &str); 5] = [
        (b"1\ta\n2\n", "22P04", "missing data for column \"name\""),
        (b"1\ta\n2\tb\tc\n", "22P04", "extra data after last expected column"),
        (b"1\ta\nx\tb\n", "22P02", "invalid input syntax for type integer"),
        (b"1\ta\n2\t\\N\n", "23502", "violates not-null constraint"),
        (b"1\ta\n1\tb\n", "23505", "duplicate key value"),
    ];
    for (data, code, message) in cases {
        let error = copy_in(&client, "COPY t FROM STDIN", data, 4).await.unwrap_err();
        let db = error.as_db_error().unwrap_or_else(|| panic!("{error:?}"));
        assert_eq!((db.code().code(), db.message().contains(message)), (code, true), "{db:?}");
        assert!(db.where_().is_some_and(|w| w.starts_with("COPY t, line 2")), "{db:?}");
        assert_eq!(simple_rows(&client, "SELECT count(*) FROM t").await, [["0"]]);
    }
    // The session goes on; a COPY of a file on the server is refused.
    assert_eq!(failing(&client, "COPY t FROM '/etc/passwd'").await, "0A000");
    assert_eq!(failing(&client, "COPY nope FROM STDIN").await, "42P01");
    assert_eq!(failing(&client, "COPY t FROM STDIN; SELECT 1").await, "0A000");
    assert_eq!(copy_in(&client, "COPY t FROM STDIN", b"7\tok\n", 100).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_in_a_transaction_block_commits_or_rolls_back_with_it() {
    let node = Node::start(&[]).unwrap();
    let client = node.pg().await.unwrap();
    client.simple_query("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)").await.unwrap();
    let rows: String = (1..=30_000).map(|i| format!("{i}\tvalue number {i}\n")).collect();
    client.simple_query("BEGIN; TRUNCATE t").await.unwrap();
    let copied = copy_in(&client, "COPY t FROM STDIN WITH (FREEZE ON)", rows.as_bytes(), 65536).await.unwrap();
    assert_eq!(copied, 30_000);
    assert_eq!(simple_rows(&client, "SELECT count(*), max(id) FROM t").await, [["30000", "30000"]]);
    client.simple_query("ROLLBACK").await.unwrap();
    assert_eq!(simple_rows(&client, "SELECT count(*) FROM t").await, [["0"]]);
    client.simple_query("BEGIN").await.unwrap();
    assert_eq!(copy_in(&client, "COPY t FROM STDIN", rows.as_bytes(), 65536).await.unwrap(), 30_000);
    client.simple_query("UPDATE t SET v = 'changed' WHERE id = 1; COMMIT").await.unwrap();
    assert_eq!(simple_rows(&client, "SELECT count(*), min(v) FROM t").await, [["30000", "changed"]]);
    // A failed COPY fails the block.
    client.simple_query("BEGIN").await.unwrap();
    let error = copy_in(&client, "COPY t FROM STDIN", b"1\tduplicate\n", 100).await.unwrap_err();
    assert_eq!(sqlstate(&error), "23505");
    assert_eq!(failing(&client, "SELECT 1").await, "25P02");
    client.simple_query("ROLLBACK").await.unwrap();
    assert_eq!(simple_rows(&client, "SELECT count(*) FROM t").await, [["30000"]]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_copy_streams_through_staged_chunks() {
    let node = Node::start(&[]).unwrap();
    let client = node.pg().await.unwrap();
    client.simple_query("CREATE TABLE big (id BIGINT PRIMARY KEY, pad TEXT)").await.unwrap();
    // ~12 MiB: many log entries' worth, sent in 64 KiB messages.
    let pad = "p".repeat(100);
    let rows: String = (1..=110_000).map(|i| format!("{i},{pad}\n")).collect();
    let copied = copy_in(&client, "COPY big FROM STDIN (FORMAT csv)", rows.as_bytes(), 65536).await.unwrap();
    assert_eq!(copied, 110_000);
    assert_eq!(
        simple_rows(&client, "SELECT count(*), sum(id), min(length(pad)) FROM big").await,
        [["110000", "6050055000", "100"]]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn psql_copies_a_file_in_and_out() {
    let node = Node::start(&[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.csv");
    std::fs::write(&file, "id,name\n1,ann\n2,\"b, c\"\n").unwrap();
    let copy_in = format!("\\copy t from '{}' with (format csv, header)", file.display());
    psql(&node, &["-c", "CREATE TABLE t (id INT, name TEXT)", "-c", &copy_in]);
    let out = psql(&node, &["-A", "-t", "-c", "\\copy (select * from t order by id) to stdout with csv"]);
    assert_eq!(out, "1,ann\n2,\"b, c\"\n");
}

fn pgbench(node: &Node, args: &[&str]) -> String {
    let mut command = Command::new("pgbench");
    command.args(["-h", "127.0.0.1", "-p", &node.pg_port().to_string(), "-U", "postgres"]).args(args).arg("postgres");
    let output = output_within(&mut command, CLIENT_LIMIT).unwrap();
    let all = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "pgbench {args:?}: {all}");
    all
}

/// A number pgbench prints after `label`.
fn figure(output: &str, label: &str) -> f64 {
    let line = output.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("no {label:?} in {output}"));
    line[label.len()..].split_whitespace().next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn stock_pgbench_initializes_and_runs_in_every_mode_keeping_balances() {
    let node = Node::start(&[]).unwrap();
    pgbench(&node, &["-i", "-s", "1", "-q"]);
    // The server-side generation steps as well: drop, tables, generate
    // with generate_series, vacuum, primary keys.
    pgbench(&node, &["-i", "-s", "1", "-I", "dtGvp"]);
    let client = node.pg().await.unwrap();
    assert_eq!(
        simple_rows(&client, "SELECT (SELECT count(*) FROM pgbench_accounts), (SELECT count(*) FROM pgbench_tellers)")
            .await,
        [["100000", "10"]]
    );
    // The first run vacuums and truncates the history; the others (-n)
    // keep it, so that it logs every run's transfers.
    let mut transactions = 0.0;
    for (mode, keep) in [("simple", "-r"), ("extended", "-n"), ("prepared", "-n")] {
        let out = pgbench(&node, &["-c", "4", "-j", "2", "-T", "3", "-M", mode, keep]);
        let processed = figure(&out, "number of transactions actually processed:");
        let failed = figure(&out, "number of failed transactions:");
        assert!(processed > 0.0, "{out}");
        // Only two transfers that pick the same account (1 in 100,000)
        // conflict: serializable, where PostgreSQL's READ COMMITTED lets
        // the second read the first's balance.
        assert!(failed <= processed / 1000.0, "{out}");
        transactions += processed;
    }
    let out = pgbench(&node, &["-c", "4", "-j", "2", "-T", "2", "-S", "-n"]);
    assert_eq!(figure(&out, "number of failed transactions:"), 0.0, "{out}");
    // Every committed transfer moved the same delta in all three tables
    // and logged it once.
    let sums = simple_rows(
        &client,
        "SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(bbalance) FROM pgbench_branches),
                (SELECT sum(tbalance) FROM pgbench_tellers), (SELECT sum(delta) FROM pgbench_history),
                (SELECT count(*) FROM pgbench_history)",
    )
    .await;
    let [a, b, t, h, count] = <[String; 5]>::try_from(sums[0].clone()).unwrap();
    assert_eq!((&a, &b, &t), (&h, &h, &h));
    assert!(count.parse::<f64>().unwrap() >= transactions, "{count} history rows for {transactions} transactions");
}
