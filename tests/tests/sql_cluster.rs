//! SQL on a three-node cluster of real processes: transactions from
//! sessions on every node while the `sql/0` leader is killed.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use seshat_tests::{eventually, first_column, one_cluster_at_a_time, sqlstate, Cluster, Raw, FAST};
use tokio_postgres::Client;

const ACCOUNTS: i64 = 10;
const OPENING_BALANCE: i64 = 100;

/// The node id leading `group`, as node `node` reports it.
async fn group_leader(cluster: &Cluster, node: usize, group: &str) -> Option<usize> {
    let mut raw = Raw::connect(cluster.nodes[node].addr()).await.ok()?;
    let lines = seshat_tests::text(&raw.call(&["SESHAT", "GROUPS"]).await.ok()?);
    let line = &lines[lines.find(&format!("{group} "))?..];
    let leader = line.split_whitespace().find_map(|field| field.strip_prefix("leader="))?;
    leader.parse().ok().filter(|id| *id > 0)
}

/// How one transfer ended, as its client knows it.
enum Ended {
    Committed,
    /// 40001 or an error before COMMIT: nothing was written.
    RolledBack,
    /// COMMIT failed without saying whether it applied (the node or the
    /// quorum went away), or the connection is gone.
    Unknown,
}

/// Moves 10 from one account to another and records the transfer, made
/// through node `node`.
async fn transfer(client: &Client, node: usize, name: &str, from: i64, to: i64) -> Ended {
    let body = [
        "BEGIN".to_string(),
        format!("SELECT balance FROM accounts WHERE id = {from}"),
        format!("UPDATE accounts SET balance = balance - 10 WHERE id = {from}"),
        format!("UPDATE accounts SET balance = balance + 10 WHERE id = {to}"),
        format!("INSERT INTO transfers (name, node) VALUES ('{name}', {node})"),
    ];
    for statement in &body {
        if client.simple_query(statement).await.is_err() {
            let _ = client.simple_query("ROLLBACK").await;
            return if client.is_closed() { Ended::Unknown } else { Ended::RolledBack };
        }
    }
    match client.simple_query("COMMIT").await {
        Ok(_) => Ended::Committed,
        Err(error) if error.code().is_some_and(|c| c.code() == "40001") => Ended::RolledBack,
        Err(_) => Ended::Unknown,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn committed_transactions_survive_the_kill_of_the_sql_leader() {
    let _exclusive = one_cluster_at_a_time().await;
    let mut cluster = Cluster::start(3, FAST).unwrap();
    cluster.leader(Duration::from_secs(15)).await.expect("a leader");
    let setup = cluster.nodes[0].pg().await.unwrap();
    setup.batch_execute("CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)").await.unwrap();
    setup
        .batch_execute(
            "CREATE TABLE transfers (name TEXT PRIMARY KEY, node INT, at TIMESTAMPTZ DEFAULT now());
             CREATE INDEX transfers_node ON transfers (node)",
        )
        .await
        .unwrap();
    let values: Vec<String> = (0..ACCOUNTS).map(|id| format!("({id}, {OPENING_BALANCE})")).collect();
    setup.batch_execute(&format!("INSERT INTO accounts VALUES {}", values.join(", "))).await.unwrap();

    let elected = Instant::now() + Duration::from_secs(15);
    let leader = loop {
        if let Some(id) = group_leader(&cluster, 0, "sql/0").await {
            break id - 1;
        }
        assert!(Instant::now() < elected, "sql/0 elects a leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // One client per node, transferring until the deadline.
    let committed = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(12);
    let mut workers = Vec::new();
    for node in 0..3 {
        let client = cluster.nodes[node].pg().await.unwrap();
        let committed = committed.clone();
        workers.push(tokio::spawn(async move {
            let (mut acked, mut unknown) = (BTreeSet::new(), 0);
            for n in 0u64.. {
                if Instant::now() >= deadline || client.is_closed() {
                    break;
                }
                let name = format!("n{node}-{n}");
                let from = (n as i64 * 3 + node as i64) % ACCOUNTS;
                match transfer(&client, node, &name, from, (from + 1) % ACCOUNTS).await {
                    Ended::Committed => {
                        acked.insert(name);
                        committed.fetch_add(1, Ordering::Relaxed);
                    }
                    Ended::RolledBack => {}
                    Ended::Unknown => unknown += 1,
                }
            }
            (acked, unknown)
        }));
    }
    let started = eventually(Duration::from_secs(10), || async { committed.load(Ordering::Relaxed) >= 10 }).await;
    assert!(started, "transfers commit before the kill");
    cluster.nodes[leader].kill9();
    let before_kill = committed.load(Ordering::Relaxed);

    let mut acked = BTreeSet::new();
    for worker in workers {
        let (names, _unknown) = worker.await.unwrap();
        acked.extend(names);
    }
    assert!(
        committed.load(Ordering::Relaxed) > before_kill + 5,
        "transfers go on after the kill: {before_kill} before, {} in all",
        committed.load(Ordering::Relaxed)
    );

    // On every survivor: no money made or lost, every acknowledged
    // transfer there, the index in step with the rows, the same rows
    // (and the same commit times) everywhere.
    let mut views = Vec::new();
    for node in (0..3).filter(|n| *n != leader) {
        let client = cluster.nodes[node].pg().await.unwrap();
        let total = first_column(&client, "SELECT sum(balance) FROM accounts").await;
        assert_eq!(total, [(ACCOUNTS * OPENING_BALANCE).to_string()], "node {node}: transactions are atomic");
        let names: BTreeSet<String> = first_column(&client, "SELECT name FROM transfers").await.into_iter().collect();
        let missing: Vec<&String> = acked.difference(&names).collect();
        assert!(missing.is_empty(), "node {node} lost committed transfers: {missing:?}");
        for through in 0..3 {
            let indexed =
                first_column(&client, &format!("SELECT count(*) FROM transfers WHERE node = {through}")).await;
            let scanned =
                first_column(&client, &format!("SELECT count(*) FROM transfers WHERE node + 0 = {through}")).await;
            assert_eq!(indexed, scanned, "node {node}: the index on transfers.node matches the rows");
        }
        let balances = first_column(&client, "SELECT balance FROM accounts ORDER BY id").await;
        let times = first_column(&client, "SELECT name || ' ' || at FROM transfers ORDER BY name").await;
        views.push((names, balances, times));
    }
    assert_eq!(views[0], views[1], "both survivors read the same rows");
}

/// Kills two of three nodes, leaving the `sql/0` leader or a follower
/// alone; its statements fail with 08006 within the request timeout.
async fn without_a_quorum_statements_fail_with_08006(survivor_leads: bool) {
    let _exclusive = one_cluster_at_a_time().await;
    let mut cluster = Cluster::start(3, FAST).unwrap();
    cluster.leader(Duration::from_secs(15)).await.expect("a leader");
    let deadline = Instant::now() + Duration::from_secs(15);
    let leader = loop {
        if let Some(leader) = group_leader(&cluster, 0, "sql/0").await {
            break leader;
        }
        assert!(Instant::now() < deadline, "no sql/0 leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let survivor = if survivor_leads { leader - 1 } else { leader % 3 };
    let client = cluster.nodes[survivor].pg().await.unwrap();
    client.batch_execute("CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1)").await.unwrap();
    client.batch_execute("BEGIN; INSERT INTO t VALUES (2)").await.unwrap();
    for node in (0..3).filter(|node| *node != survivor) {
        cluster.nodes[node].kill9();
    }
    let started = Instant::now();
    assert_eq!(sqlstate(&client.batch_execute("COMMIT").await.unwrap_err()), "08006", "a commit needs a quorum");
    assert_eq!(sqlstate(&client.batch_execute("INSERT INTO t VALUES (3)").await.unwrap_err()), "08006");
    assert_eq!(sqlstate(&client.batch_execute("SELECT * FROM t").await.unwrap_err()), "08006", "reads too");
    assert!(started.elapsed() < Duration::from_secs(8), "answered within the timeouts: {:?}", started.elapsed());
    assert_eq!(first_column(&client, "SHOW transaction_isolation").await, ["serializable"], "the session stays usable");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_quorum_a_follower_fails_statements_with_08006_within_the_request_timeout() {
    without_a_quorum_statements_fail_with_08006(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_quorum_the_leader_fails_statements_with_08006_within_the_request_timeout() {
    without_a_quorum_statements_fail_with_08006(true).await;
}
