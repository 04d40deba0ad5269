//! Three-node clusters of real processes: replication, failover, catch-up,
//! restarts, membership changes, loss of quorum. Clusters have the default
//! three shards, except for tests of one group's mechanics (snapshots,
//! FAILOVER, SWAPDB, blocking pops on keys of several shards), which run
//! one shard (`ONE_SHARD`) so that every write goes through the group
//! they watch; `shards_cluster.rs` tests the shards themselves.

use std::time::Duration;

use redis::AsyncCommands;
use seshat_tests::bounded::output_within;
use seshat_tests::{eventually, info_field, info_fields, one_cluster_at_a_time, Cluster, FAST, START_TIMEOUT};

/// [`FAST`] with a single shard.
fn one_shard() -> Vec<&'static str> {
    [FAST, &["--shards", "1"]].concat()
}

const LEADER_TIMEOUT: Duration = Duration::from_secs(15);

/// Longer than `--request-timeout-ms` above: the server answers first.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

async fn get(cluster: &Cluster, node: usize, key: &str) -> Option<String> {
    let mut client = cluster.nodes[node].patient_client(REPLY_TIMEOUT).await.ok()?;
    client.get(key).await.ok().flatten()
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_through_any_node_are_read_from_every_node() {
    let _exclusive = one_cluster_at_a_time().await;
    let cluster = Cluster::start(3, FAST).unwrap();
    cluster.leader(LEADER_TIMEOUT).await.expect("a leader is elected");
    for (i, node) in cluster.nodes.iter().enumerate() {
        let mut client = node.patient_client(REPLY_TIMEOUT).await.unwrap();
        let _: () = client.set(format!("k{i}"), format!("v{i}")).await.unwrap();
        let n: i64 = client.incr("counter", 1).await.unwrap();
        assert_eq!(n, i as i64 + 1, "INCR through node {i} applies once");
    }
    // Linearizable reads: every node sees every acknowledged write at once.
    for node in 0..3 {
        for i in 0..3 {
            assert_eq!(get(&cluster, node, &format!("k{i}")).await, Some(format!("v{i}")), "node {node} k{i}");
        }
        assert_eq!(get(&cluster, node, "counter").await.as_deref(), Some("3"));
    }
    // The role and the replicas from one INFO reply: leader balancing may
    // hand kv/0 to another node between two.
    let leader_replicas = eventually(LEADER_TIMEOUT, || async {
        for node in &cluster.nodes {
            let fields = info_fields(node, &["seshat_raft_role", "connected_slaves"]).await;
            if let Some([Some(role), Some(replicas)]) = fields.as_deref() {
                if role == "leader" {
                    assert_eq!(replicas, "2", "kv/0's leader replicates to both other initial members");
                    return true;
                }
            }
        }
        false
    })
    .await;
    assert!(leader_replicas, "kv/0 has a leader");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_leader_takes_over_and_the_killed_node_catches_up_by_snapshot() {
    let _exclusive = one_cluster_at_a_time().await;
    let mut cluster = Cluster::start(3, &one_shard()).unwrap();
    let leader = cluster.leader(LEADER_TIMEOUT).await.expect("a leader");
    let survivor = (leader + 1) % 3;
    let mut client = cluster.nodes[survivor].patient_client(REPLY_TIMEOUT).await.unwrap();
    let _: () = client.set("before", "1").await.unwrap();

    cluster.nodes[leader].kill9();
    // Writes resume through a surviving node once a new leader is elected.
    let resumed = eventually(LEADER_TIMEOUT, || {
        let mut client = client.clone();
        async move { client.set::<_, _, ()>("after", "2").await.is_ok() }
    })
    .await;
    assert!(resumed, "writes resume after the leader is killed");
    let new_leader = cluster.leader(LEADER_TIMEOUT).await.expect("a new leader");
    assert_ne!(new_leader, leader);

    // Enough writes that the log is purged behind a snapshot.
    for i in 0..600 {
        let _: () = client.set(format!("bulk{i}"), i).await.unwrap();
    }
    cluster.nodes[leader].restart().unwrap();
    let caught_up = eventually(Duration::from_secs(20), || {
        let node = &cluster.nodes[leader];
        async move {
            let installed = info_field(node, "seshat_snapshots_installed").await;
            installed.is_some_and(|n| n != "0")
        }
    })
    .await;
    assert!(caught_up, "the restarted node installs a snapshot; log:\n{}", cluster.nodes[leader].log());
    assert_eq!(get(&cluster, leader, "before").await.as_deref(), Some("1"));
    assert_eq!(get(&cluster, leader, "after").await.as_deref(), Some("2"));
    assert_eq!(get(&cluster, leader, "bulk599").await.as_deref(), Some("599"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_cluster_restart_keeps_every_acknowledged_write() {
    let _exclusive = one_cluster_at_a_time().await;
    let mut cluster = Cluster::start(3, FAST).unwrap();
    cluster.leader(LEADER_TIMEOUT).await.expect("a leader");
    let mut client = cluster.nodes[0].patient_client(REPLY_TIMEOUT).await.unwrap();
    for i in 0..300 {
        let _: () = client.set(format!("key{i}"), i).await.unwrap();
    }
    for node in &mut cluster.nodes {
        node.kill9();
    }
    for node in &mut cluster.nodes {
        node.restart().unwrap();
    }
    cluster.leader(LEADER_TIMEOUT).await.expect("a leader after the restart");
    for node in 0..3 {
        let mut client = cluster.nodes[node].patient_client(REPLY_TIMEOUT).await.unwrap();
        let size: i64 = redis::cmd("DBSIZE").query_async(&mut client).await.unwrap();
        assert_eq!(size, 300, "node {node}");
        assert_eq!(get(&cluster, node, "key299").await.as_deref(), Some("299"));
    }
}

/// Kills two of three nodes, leaving the leader or a follower alone, which
/// then answers CLUSTERDOWN within the request timeout. (A leader that lost
/// its quorum still leads: its append must not wait forever.) The leader
/// is `kv/0`'s; the key's shard may be another, whose majority can
/// acknowledge a write before the survivor's replica has it, so the test
/// waits for the survivor to have it before the kills.
async fn minority_answers_clusterdown(survivor_leads: bool) {
    let _exclusive = one_cluster_at_a_time().await;
    let mut cluster = Cluster::start(3, FAST).unwrap();
    let leader = cluster.leader(LEADER_TIMEOUT).await.expect("a leader");
    let survivor = if survivor_leads { leader } else { (leader + 1) % 3 };
    let mut client = cluster.nodes[survivor].patient_client(REPLY_TIMEOUT).await.unwrap();
    let _: () = client.set("k", "v").await.unwrap();
    let mut local = cluster.nodes[survivor].patient_client(REPLY_TIMEOUT).await.unwrap();
    let _: () = redis::cmd("READONLY").query_async(&mut local).await.unwrap();
    let replicated = eventually(REPLY_TIMEOUT, || {
        let mut local = local.clone();
        async move { local.get::<_, Option<String>>("k").await.ok().flatten().as_deref() == Some("v") }
    });
    assert!(replicated.await, "the survivor's replica has the acknowledged write");
    for node in (0..3).filter(|node| *node != survivor) {
        cluster.nodes[node].kill9();
    }
    let started = std::time::Instant::now();
    let error = client.set::<_, _, ()>("k", "w").await.unwrap_err();
    assert!(error.to_string().to_lowercase().contains("clusterdown"), "{error}");
    let read_error = client.get::<_, String>("k").await.unwrap_err();
    assert!(read_error.to_string().to_lowercase().contains("clusterdown"), "{read_error}");
    assert!(started.elapsed() < Duration::from_secs(8), "answered within the timeouts: {:?}", started.elapsed());
    // READONLY reads the local replica without a quorum.
    let _: () = redis::cmd("READONLY").query_async(&mut client).await.unwrap();
    assert_eq!(client.get::<_, String>("k").await.unwrap(), "v", "the failed write never committed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follower_left_alone_answers_clusterdown_within_the_request_timeout() {
    minority_answers_clusterdown(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_left_alone_answers_clusterdown_within_the_request_timeout() {
    minority_answers_clusterdown(true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nodes_join_and_leave_the_leader_included() {
    let _exclusive = one_cluster_at_a_time().await;
    let mut cluster = Cluster::start(3, FAST).unwrap();
    cluster.leader(LEADER_TIMEOUT).await.expect("a leader");
    let mut client = cluster.nodes[0].patient_client(REPLY_TIMEOUT).await.unwrap();
    let _: () = client.set("k", "v").await.unwrap();

    let fourth = cluster.join(4, 1, FAST).unwrap();
    // A learner first, then a voter once it caught up.
    let joined = eventually(Duration::from_secs(20), || {
        let mut client = client.clone();
        async move {
            let members: Vec<String> =
                redis::cmd("SESHAT").arg("MEMBERS").query_async(&mut client).await.unwrap_or_default();
            members.iter().any(|m| m.starts_with("4 ") && m.contains(" voter"))
        }
    })
    .await;
    assert!(joined, "node 4 joins as a voter; log:\n{}", cluster.nodes[fourth].log());
    // The placement gives it its share of the shards' replicas (three
    // shards, three replicas each, over four nodes).
    let placed = eventually(Duration::from_secs(30), || async {
        let Ok(mut c) = cluster.nodes[0].patient_client(REPLY_TIMEOUT).await else { return false };
        let shards: Vec<String> = redis::cmd("SESHAT").arg("SHARDS").query_async(&mut c).await.unwrap_or_default();
        let members = |line: &String| {
            let field = line.split(' ').find_map(|f| f.strip_prefix("members=")).unwrap_or_default().to_string();
            field.split(',').map(str::to_string).collect::<Vec<_>>()
        };
        shards.len() == 3
            && shards.iter().all(|line| members(line).len() == 3 && !line.contains("learner"))
            && shards.iter().any(|line| members(line).contains(&"4".to_string()))
    })
    .await;
    assert!(placed, "node 4 did not take its share of the replicas; log:\n{}", cluster.nodes[fourth].log());
    assert!(
        eventually(Duration::from_secs(10), || async { get(&cluster, fourth, "k").await.as_deref() == Some("v") })
            .await
    );

    // Remove the leader itself; the rest elect a new one and go on.
    let leader = cluster.leader(LEADER_TIMEOUT).await.unwrap();
    let other = (0..4).find(|i| *i != leader).unwrap();
    let mut admin = cluster.nodes[other].patient_client(REPLY_TIMEOUT).await.unwrap();
    let leader_id = (leader + 1).to_string();
    let after: Vec<String> =
        redis::cmd("SESHAT").arg("REMOVE-NODE").arg(&leader_id).query_async(&mut admin).await.unwrap();
    assert_eq!(after.len(), 3, "{after:?}");
    assert!(!after.iter().any(|m| m.starts_with(&format!("{leader_id} "))));
    let writes_go_on = eventually(LEADER_TIMEOUT, || {
        let mut admin = admin.clone();
        async move { admin.set::<_, _, ()>("after-removal", "1").await.is_ok() }
    })
    .await;
    assert!(writes_go_on);
    // The removal moves the leaving node's shard replicas (and may hand
    // leaderships over), so a read may fail for a while; none that
    // answers may miss the acknowledged write.
    let deadline = tokio::time::Instant::now() + LEADER_TIMEOUT;
    let answered = loop {
        if let Ok(mut client) = cluster.nodes[fourth].patient_client(REPLY_TIMEOUT).await {
            if let Ok(value) = client.get::<_, Option<String>>("after-removal").await {
                break value;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "node 4 answered no read of the write after the removal");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(answered.as_deref(), Some("1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forwarded_write_retried_after_a_lost_reply_applies_once() {
    let _exclusive = one_cluster_at_a_time().await;
    // The leader drops the reply to the first forwarded write it applies,
    // so the follower retries the same request after its attempt timeout.
    let cluster =
        Cluster::start_with_env(3, &one_shard(), &[("SESHAT_FAILPOINTS", "drop-forward-reply@kv/0=1")]).unwrap();
    let leader = cluster.leader(LEADER_TIMEOUT).await.expect("a leader");
    let follower = (leader + 1) % 3;
    let mut client = cluster.nodes[follower].patient_client(REPLY_TIMEOUT).await.unwrap();
    let n: i64 = match client.incr("counter", 1).await {
        Ok(n) => n,
        Err(e) => {
            for node in &cluster.nodes {
                eprintln!("=== node log\n{}", node.log());
            }
            panic!("{e}");
        }
    };
    assert_eq!(n, 1, "the retried INCR returns the first application's result");
    let again: i64 = client.incr("counter", 1).await.unwrap();
    assert_eq!(again, 2, "and applied exactly once");
    let log = cluster.nodes[leader].log();
    assert!(log.contains("failpoint drop-forward-reply fired"), "the failpoint fired; log:\n{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_subcommands_talk_to_any_node() {
    let _exclusive = one_cluster_at_a_time().await;
    let cluster = Cluster::start(3, FAST).unwrap();
    let leader = cluster.leader(LEADER_TIMEOUT).await.expect("a leader");
    let follower_node = &cluster.nodes[(leader + 1) % 3];
    let knows_leader = eventually(LEADER_TIMEOUT, || async {
        info_field(follower_node, "seshat_leader_id").await.is_some_and(|id| id == (leader + 1).to_string())
    })
    .await;
    assert!(knows_leader, "the follower learns the leader");
    let follower = follower_node.addr().to_string();
    let run = |args: &[&str]| {
        let mut command = std::process::Command::new(seshat_tests::seshat_bin());
        command.args(args);
        let output = output_within(&mut command, START_TIMEOUT).unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, members, _) = run(&["members", "--node", &follower]);
    assert_eq!(code, Some(0));
    assert_eq!(members.lines().count(), 3, "{members}");
    assert_eq!(members.lines().filter(|l| l.ends_with(" voter leader")).count(), 1, "{members}");
    let (code, leader_line, _) = run(&["leader", "--node", &follower]);
    assert_eq!(code, Some(0));
    assert!(leader_line.starts_with(&format!("{} 127.0.0.1:", leader + 1)), "{leader_line}");
    let (code, _, error) = run(&["remove-node", "9", "--node", &follower]);
    assert_eq!(code, Some(1));
    assert!(error.contains("node 9 is not a member"), "{error}");
}

/// Runs `MULTI; SET key value; EXEC` on `client`: `Some(())` if it
/// committed, `None` if WATCH aborted it.
async fn set_in_transaction(
    client: &mut redis::aio::MultiplexedConnection,
    key: &str,
    value: &str,
) -> redis::RedisResult<Option<()>> {
    let committed: Option<((),)> = redis::pipe().atomic().set(key, value).query_async(client).await?;
    Ok(committed.map(|_| ()))
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_on_one_node_sees_writes_through_another_and_survives_a_leader_change() {
    let _exclusive = one_cluster_at_a_time().await;
    let mut cluster = Cluster::start(3, FAST).unwrap();
    let leader = cluster.leader(LEADER_TIMEOUT).await.expect("a leader is elected");
    let (watcher, other) = ((leader + 1) % 3, (leader + 2) % 3);
    let mut watching = cluster.nodes[watcher].patient_client(REPLY_TIMEOUT).await.unwrap();
    let mut writing = cluster.nodes[other].patient_client(REPLY_TIMEOUT).await.unwrap();

    // Unchanged since WATCH: commits.
    let _: () = writing.set("balance", "10").await.unwrap();
    let _: () = redis::cmd("WATCH").arg("balance").query_async(&mut watching).await.unwrap();
    assert_eq!(set_in_transaction(&mut watching, "balance", "11").await.unwrap(), Some(()));
    // Changed through another node after WATCH: aborts, nothing written.
    let _: () = redis::cmd("WATCH").arg("balance").query_async(&mut watching).await.unwrap();
    let _: () = writing.set("balance", "20").await.unwrap();
    assert_eq!(set_in_transaction(&mut watching, "balance", "12").await.unwrap(), None);
    assert_eq!(get(&cluster, leader, "balance").await.as_deref(), Some("20"));
    // A watched key that did not exist and was created and deleted again.
    let _: () = redis::cmd("WATCH").arg("fresh").query_async(&mut watching).await.unwrap();
    let _: () = writing.set("fresh", "x").await.unwrap();
    let _: i64 = writing.del("fresh").await.unwrap();
    assert_eq!(set_in_transaction(&mut watching, "fresh", "y").await.unwrap(), None);

    // WATCH, then the leader dies: the verdict comes from the log, so the
    // new leader decides the same way.
    let _: () = redis::cmd("WATCH").arg("balance").query_async(&mut watching).await.unwrap();
    cluster.nodes[leader].kill9();
    assert!(cluster.leader(LEADER_TIMEOUT).await.is_some(), "a new leader is elected");
    let mut committed = None;
    for _ in 0..50 {
        match set_in_transaction(&mut watching, "balance", "21").await {
            Ok(outcome) => {
                committed = Some(outcome);
                break;
            }
            // The first attempts may meet the election; a failed EXEC
            // ends the transaction, so watch again (nothing changed).
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let _: () = redis::cmd("WATCH").arg("balance").query_async(&mut watching).await.unwrap();
            }
        }
    }
    assert_eq!(committed, Some(Some(())), "the unchanged key's transaction commits under the new leader");
    let _: () = redis::cmd("WATCH").arg("balance").query_async(&mut watching).await.unwrap();
    let _: () = writing.set("balance", "30").await.unwrap();
    assert_eq!(set_in_transaction(&mut watching, "balance", "22").await.unwrap(), None);
    assert_eq!(get(&cluster, other, "balance").await.as_deref(), Some("30"));
}

#[tokio::test(flavor = "multi_thread")]
async fn blocked_pops_are_woken_by_pushes_through_another_node_in_arrival_order() {
    let _exclusive = one_cluster_at_a_time().await;
    let cluster = Cluster::start(3, &one_shard()).unwrap();
    let leader = cluster.leader(LEADER_TIMEOUT).await.expect("a leader is elected");
    let follower = (leader + 1) % 3;
    let pusher_node = (leader + 2) % 3;

    // Two clients block on the same list through one follower, the first
    // a moment before the second; a third blocks with a timeout.
    let mut blocked = Vec::new();
    for name in ["first", "second"] {
        let mut client = cluster.nodes[follower].patient_client(REPLY_TIMEOUT).await.unwrap();
        blocked.push(tokio::spawn(async move {
            let popped: Option<(String, String)> =
                redis::cmd("BLPOP").arg("jobs").arg(0).query_async(&mut client).await.unwrap();
            (name, popped)
        }));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut timing_out = cluster.nodes[leader].patient_client(REPLY_TIMEOUT).await.unwrap();
    let started = std::time::Instant::now();
    let nothing: Option<(String, String)> =
        redis::cmd("BLPOP").arg("other").arg(0.3).query_async(&mut timing_out).await.unwrap();
    assert_eq!(nothing, None);
    assert!(started.elapsed() >= Duration::from_millis(300), "BLPOP returned before its timeout");

    // Pushes through another node wake them, first come first served.
    let mut pusher = cluster.nodes[pusher_node].patient_client(REPLY_TIMEOUT).await.unwrap();
    let _: i64 = pusher.rpush("jobs", &["job-1", "job-2"]).await.unwrap();
    let mut results = Vec::new();
    for task in blocked {
        results.push(tokio::time::timeout(REPLY_TIMEOUT, task).await.expect("woken").unwrap());
    }
    assert_eq!(
        results,
        [
            ("first", Some(("jobs".to_string(), "job-1".to_string()))),
            ("second", Some(("jobs".to_string(), "job-2".to_string())))
        ]
    );
    let remaining: i64 = pusher.llen("jobs").await.unwrap();
    assert_eq!(remaining, 0);

    // BLMOVE through the leader, woken by a push through a follower.
    let mut mover = cluster.nodes[leader].patient_client(REPLY_TIMEOUT).await.unwrap();
    let moving = tokio::spawn(async move {
        let moved: Option<String> = redis::cmd("BLMOVE")
            .arg("inbox")
            .arg("done")
            .arg("LEFT")
            .arg("RIGHT")
            .arg(0)
            .query_async(&mut mover)
            .await
            .unwrap();
        moved
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _: i64 = pusher.lpush("inbox", "mail").await.unwrap();
    let moved = tokio::time::timeout(REPLY_TIMEOUT, moving).await.expect("woken").unwrap();
    assert_eq!(moved.as_deref(), Some("mail"));
    let done: Vec<String> = pusher.lrange("done", 0, -1).await.unwrap();
    assert_eq!(done, ["mail"]);
}

/// A follower killed while one of its clients is blocked leaves a waiter in
/// the replicated queue; once it restarts it removes the waiters of its
/// earlier process, so a later push stays in the list instead of being
/// served to a client that is gone.
#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_node_purges_the_blocked_clients_of_its_earlier_process() {
    let _exclusive = one_cluster_at_a_time().await;
    let mut cluster = Cluster::start(3, FAST).unwrap();
    let leader = cluster.leader(LEADER_TIMEOUT).await.expect("a leader is elected");
    let follower = (leader + 1) % 3;
    let mut blocked = seshat_tests::Raw::connect(cluster.nodes[follower].addr()).await.unwrap();
    blocked.send_command(&[b"BLPOP", b"jobs", b"0"]).await.unwrap();
    let queued = eventually(Duration::from_secs(10), || async {
        info_field(&cluster.nodes[leader], "blocked_clients_in_cluster").await.as_deref() == Some("1")
    })
    .await;
    assert!(queued, "the client is queued cluster-wide");
    cluster.nodes[follower].kill9();
    cluster.nodes[follower].restart().unwrap();
    let purged = eventually(Duration::from_secs(20), || async {
        info_field(&cluster.nodes[leader], "blocked_clients_in_cluster").await.as_deref() == Some("0")
    })
    .await;
    assert!(purged, "the restarted node removed its earlier process's waiter");
    let mut client = cluster.nodes[leader].patient_client(REPLY_TIMEOUT).await.unwrap();
    let _: i64 = client.rpush("jobs", "job").await.unwrap();
    let left: Vec<String> = client.lrange("jobs", 0, -1).await.unwrap();
    assert_eq!(left, ["job"], "the push was not served to the dead client");
}

/// SWAPDB through one follower is seen by reads on every node at once: each
/// read translates databases through the map in its own snapshot.
#[tokio::test(flavor = "multi_thread")]
async fn swapdb_through_a_follower_is_read_the_same_on_every_node() {
    let _exclusive = one_cluster_at_a_time().await;
    let cluster = Cluster::start(3, &one_shard()).unwrap();
    let leader = cluster.leader(LEADER_TIMEOUT).await.expect("a leader is elected");
    let (follower, other) = ((leader + 1) % 3, (leader + 2) % 3);
    let mut writer = seshat_tests::Raw::connect(cluster.nodes[leader].addr()).await.unwrap();
    writer.call(&["SET", "k", "in-db0"]).await.unwrap();
    let mut swapper = seshat_tests::Raw::connect(cluster.nodes[follower].addr()).await.unwrap();
    assert_eq!(seshat_tests::text(&swapper.call(&["SWAPDB", "0", "1"]).await.unwrap()), "OK");
    for node in [leader, follower, other] {
        let mut reader = seshat_tests::Raw::connect(cluster.nodes[node].addr()).await.unwrap();
        assert_eq!(seshat_tests::text(&reader.call(&["GET", "k"]).await.unwrap()), "(nil)", "node {node}, db 0");
        reader.call(&["SELECT", "1"]).await.unwrap();
        assert_eq!(seshat_tests::text(&reader.call(&["GET", "k"]).await.unwrap()), "in-db0", "node {node}, db 1");
    }
    // Writes after the swap land where SELECT says, on every node.
    writer.call(&["SELECT", "1"]).await.unwrap();
    writer.call(&["SET", "k2", "also-db1"]).await.unwrap();
    let mut reader = seshat_tests::Raw::connect(cluster.nodes[other].addr()).await.unwrap();
    reader.call(&["SELECT", "1"]).await.unwrap();
    assert_eq!(seshat_tests::text(&reader.call(&["MGET", "k", "k2"]).await.unwrap()), "in-db0 also-db1");
}

/// FAILOVER, sent to a follower, hands leadership to the replica it names
/// while a client keeps writing through the old leader: the writes wait
/// out the handover and none fails or is lost. Without TO it picks a
/// replica itself.
#[tokio::test(flavor = "multi_thread")]
async fn failover_hands_leadership_over_while_writes_wait_for_it() {
    let _exclusive = one_cluster_at_a_time().await;
    let cluster = Cluster::start(3, &one_shard()).unwrap();
    let leader = cluster.leader(LEADER_TIMEOUT).await.expect("a leader is elected");
    let (target, via) = ((leader + 1) % 3, (leader + 2) % 3);
    let mut writer = cluster.nodes[leader].patient_client(REPLY_TIMEOUT).await.unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writes = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut acknowledged = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && acknowledged < 1_000_000 {
                acknowledged = writer.incr("counter", 1).await.expect("a write during a handover waits, never fails");
            }
            acknowledged
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The node taking FAILOVER names replicas by its view of the group:
    // let it learn who leads after the first elections.
    let via_node = &cluster.nodes[via];
    let knows_leader = eventually(LEADER_TIMEOUT, || async {
        info_field(via_node, "seshat_leader_id").await.is_some_and(|id| id == (leader + 1).to_string())
    })
    .await;
    assert!(knows_leader, "node {} learns the leader", via + 1);
    let mut admin = seshat_tests::Raw::connect(cluster.nodes[via].addr()).await.unwrap();
    let raft_addr = cluster.nodes[target].raft_addr();
    let (host, port) = raft_addr.rsplit_once(':').unwrap();
    let started = std::time::Instant::now();
    let answer = seshat_tests::text(&admin.call(&["FAILOVER", "TO", host, port, "TIMEOUT", "10000"]).await.unwrap());
    assert_eq!(answer, "OK");
    eprintln!("FAILOVER TO node {} took {:?}", target + 1, started.elapsed());
    assert_eq!(info_field(&cluster.nodes[target], "seshat_raft_role").await.as_deref(), Some("leader"));
    assert_ne!(info_field(&cluster.nodes[leader], "seshat_raft_role").await.as_deref(), Some("leader"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acknowledged: i64 = writes.await.unwrap();
    assert!(acknowledged > 0);
    for node in 0..3 {
        assert_eq!(get(&cluster, node, "counter").await, Some(acknowledged.to_string()), "node {node}");
    }

    // The new leader's own address is not a replica's; nothing is running.
    let own = format!("FAILOVER TO {host} {port}");
    let own: Vec<&str> = own.split(' ').collect();
    assert_eq!(
        seshat_tests::text(&admin.call(&own).await.unwrap()),
        "ERR FAILOVER target HOST and PORT is not a replica."
    );
    assert_eq!(seshat_tests::text(&admin.call(&["FAILOVER", "ABORT"]).await.unwrap()), "ERR No failover in progress.");

    // Without TO: the leader picks the replica with the most of the log.
    let mut on_leader = seshat_tests::Raw::connect(cluster.nodes[target].addr()).await.unwrap();
    assert_eq!(seshat_tests::text(&on_leader.call(&["FAILOVER"]).await.unwrap()), "OK");
    let next = cluster.leader(LEADER_TIMEOUT).await.expect("a leader after the second handover");
    assert_ne!(next, target, "leadership left node {}", target + 1);
    let mut client = cluster.nodes[target].patient_client(REPLY_TIMEOUT).await.unwrap();
    assert_eq!(client.incr::<_, _, i64>("counter", 1).await.unwrap(), acknowledged + 1);
}

/// The voters of `group` as `SESHAT GROUPS` on `node` reports them.
async fn voters(cluster: &Cluster, node: usize, group: &str) -> Option<String> {
    let mut raw = seshat_tests::Raw::connect(cluster.nodes[node].addr()).await.ok()?;
    let lines = seshat_tests::text(&raw.call(&["SESHAT", "GROUPS"]).await.ok()?);
    let start = lines.find(&format!("{group} "))?;
    let line = &lines[start..];
    let voters = line.split_whitespace().find_map(|field| field.strip_prefix("voters="))?;
    Some(voters.to_string())
}

/// Membership is the node's: a joining node becomes a member of sql/0 and
/// (with as many replicas as nodes, placed there) of kv/0, REMOVE-NODE
/// takes it out of both, and both groups keep serving through the kill of
/// their leaders.
#[tokio::test(flavor = "multi_thread")]
async fn membership_changes_apply_to_every_group_and_both_survive_a_leader_kill() {
    let _exclusive = one_cluster_at_a_time().await;
    let args = [FAST, &["--replicas", "4"]].concat();
    let mut cluster = Cluster::start(3, &args).unwrap();
    cluster.leader(LEADER_TIMEOUT).await.expect("a leader");
    let fourth = cluster.join(4, 0, FAST).unwrap();
    for group in ["kv/0", "sql/0"] {
        let joined = eventually(Duration::from_secs(20), || async {
            voters(&cluster, 0, group).await.as_deref() == Some("1,2,3,4")
        })
        .await;
        assert!(joined, "node 4 votes in {group}; log:\n{}", cluster.nodes[fourth].log());
    }
    let sql = cluster.nodes[fourth].pg().await.unwrap();
    sql.simple_query("CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1)").await.unwrap();

    let mut admin = cluster.nodes[1].patient_client(REPLY_TIMEOUT).await.unwrap();
    let after: Vec<String> = redis::cmd("SESHAT").arg("REMOVE-NODE").arg("4").query_async(&mut admin).await.unwrap();
    assert_eq!(after.len(), 3, "{after:?}");
    assert_eq!(voters(&cluster, 1, "sql/0").await.as_deref(), Some("1,2,3"), "sql/0 after REMOVE-NODE");
    // The placement moves kv/0's replica off the removed node.
    let left =
        eventually(Duration::from_secs(20), || async { voters(&cluster, 1, "kv/0").await.as_deref() == Some("1,2,3") })
            .await;
    assert!(left, "kv/0 after REMOVE-NODE: {:?}", voters(&cluster, 1, "kv/0").await);
    cluster.nodes[fourth].kill9();

    // Kill the node that leads kv/0; sql/0 may have led there too.
    let leader = cluster.leader(LEADER_TIMEOUT).await.unwrap();
    cluster.nodes[leader].kill9();
    let survivor = (0..3).find(|i| *i != leader).unwrap();
    let writes_go_on = eventually(LEADER_TIMEOUT, || async {
        let Ok(mut client) = cluster.nodes[survivor].patient_client(REPLY_TIMEOUT).await else { return false };
        client.set::<_, _, ()>("after-kill", "1").await.is_ok()
    })
    .await;
    assert!(writes_go_on, "kv/0 elects a new leader");
    let sql = cluster.nodes[survivor].pg().await.unwrap();
    // A retry after an attempt that applied but timed out finds the row.
    let inserted = eventually(LEADER_TIMEOUT, || async {
        match sql.simple_query("INSERT INTO t VALUES (2)").await {
            Ok(_) => true,
            Err(error) => error.code().is_some_and(|c| c.code() == "23505"),
        }
    })
    .await;
    assert!(inserted, "sql/0 keeps taking writes");
    let rows = sql.simple_query("SELECT count(*) FROM t").await.unwrap();
    let count = rows.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
        _ => None,
    });
    assert_eq!(count.as_deref(), Some("2"), "the row written before the kill is there");

    // Both survivors report the killed node, which makes a majority: the
    // metadata group marks it failed, and MEMBERS says so on every node.
    let killed = format!("{} ", leader + 1);
    let marked_failed = eventually(Duration::from_secs(10), || async {
        let Ok(mut client) = cluster.nodes[survivor].client().await else { return false };
        let members: Vec<String> =
            redis::cmd("SESHAT").arg("MEMBERS").query_async(&mut client).await.unwrap_or_default();
        members.iter().any(|line| line.starts_with(&killed) && line.ends_with(" fail"))
    })
    .await;
    assert!(marked_failed, "MEMBERS does not show node {killed}as failed");
}

/// A value of `len` bytes that differs per key and does not compress.
fn noise(key: u64, len: usize) -> Vec<u8> {
    let mut state = key.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Writes keys `big{from}..big{to}` of `noise` values through `client`,
/// sixteen to a pipeline.
async fn write_big_values(client: &mut redis::aio::MultiplexedConnection, from: u64, to: u64, len: usize) {
    for chunk in (from..to).collect::<Vec<_>>().chunks(16) {
        let mut pipe = redis::pipe();
        for &i in chunk {
            pipe.set(format!("big{i}"), noise(i, len)).ignore();
        }
        let _: () = pipe.query_async(client).await.unwrap();
    }
}

/// Asserts that `node` holds `count` keys and a sample of the big values,
/// once it has applied what the leader committed (a read waits for that
/// only one request timeout; catching up on big entries takes longer).
async fn assert_holds_big_values(cluster: &Cluster, node: usize, count: u64, len: usize) {
    let leader = cluster.leader(LEADER_TIMEOUT).await.expect("a leader");
    let committed = index_field(cluster, leader, "seshat_commit_index").await;
    let caught_up = eventually(Duration::from_secs(60), || async {
        index_field(cluster, node, "seshat_applied_index").await >= committed
    })
    .await;
    assert!(caught_up, "node {node} applies the leader's log up to {committed}");
    let mut client = cluster.nodes[node].patient_client(REPLY_TIMEOUT).await.unwrap();
    let size: u64 = redis::cmd("DBSIZE").query_async(&mut client).await.unwrap();
    assert_eq!(size, count, "node {node} holds every key");
    for i in (0..count).step_by(count as usize / 16) {
        let value: Vec<u8> = client.get(format!("big{i}")).await.unwrap();
        assert!(value == noise(i, len), "node {node} big{i}");
    }
}

/// A Raft index `node` reports in INFO (0 if it does not answer).
async fn index_field(cluster: &Cluster, node: usize, field: &str) -> u64 {
    info_field(&cluster.nodes[node], field).await.and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// Kills `follower`, writes keys `big{from}..big{to}` through `leader`
/// and waits until the leader purged the log the follower lacks.
async fn leave_behind(cluster: &mut Cluster, leader: usize, follower: usize, from: u64, to: u64, len: usize) {
    let mut client = cluster.nodes[leader].patient_client(REPLY_TIMEOUT).await.unwrap();
    let applied = index_field(cluster, follower, "seshat_applied_index").await;
    cluster.nodes[follower].kill9();
    write_big_values(&mut client, from, to, len).await;
    let purged = eventually(Duration::from_secs(60), || async {
        index_field(cluster, leader, "seshat_purged_index").await > applied
    })
    .await;
    assert!(purged, "the leader purges the log the follower lacks");
}

/// A follower catching up by snapshot on a dataset larger than the memory
/// it may use streams the snapshot into SST files instead of holding it,
/// and the transfer, longer than an election timeout, is not restarted
/// over and over.
#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_larger_than_memory_installs_in_bounded_memory() {
    const VALUE_LEN: usize = 64 * 1024;
    const KEYS: u64 = 6 * 1024; // 384 MiB
    const PEAK_BOUND_KIB: u64 = 128 * 1024;
    let _exclusive = one_cluster_at_a_time().await;
    let args = [FAST, &["--block-cache-mb", "16", "--shards", "1"]].concat();
    let mut cluster = Cluster::start(3, &args).unwrap();
    let leader = cluster.leader(LEADER_TIMEOUT).await.expect("a leader");
    let follower = (leader + 1) % 3;

    leave_behind(&mut cluster, leader, follower, 0, KEYS, VALUE_LEN).await;
    cluster.nodes[follower].restart().unwrap();
    let installed = eventually(Duration::from_secs(60), || {
        let node = &cluster.nodes[follower];
        async move { info_field(node, "seshat_snapshots_installed").await.is_some_and(|n| n != "0") }
    })
    .await;
    let node = &cluster.nodes[follower];
    assert!(installed, "the follower installs a snapshot; log:\n{}", node.log());
    // The node logs its peak RSS as the install ends, before it catches up
    // on the log behind the snapshot (whose memtables the bound is not
    // about).
    let log = node.log();
    let peak_mib: u64 = log
        .lines()
        .find(|line| line.contains("installed a snapshot from the leader"))
        .and_then(|line| line.split_whitespace().find_map(|field| field.strip_prefix("peak_rss_mib=")))
        .and_then(|mib| mib.parse().ok())
        .expect("the install's log line names the peak RSS");
    let peak_kib = peak_mib << 10;
    let snapshot = node.data_dir().join("snapshots/kv-0/current.snap");
    let snapshot_kib = std::fs::metadata(snapshot).unwrap().len() >> 10;
    println!("follower peak RSS installing a {} MiB snapshot: {} MiB", snapshot_kib >> 10, peak_kib >> 10);
    assert!(snapshot_kib > PEAK_BOUND_KIB, "the snapshot ({snapshot_kib} KiB) is larger than the bound");
    assert!(peak_kib < PEAK_BOUND_KIB, "the follower peaked at {peak_kib} KiB");
    // The transfer took longer than an election timeout; the follower
    // counted it as word from the leader rather than campaign and depose
    // it, which restarted the transfer from its first chunk, again and
    // again (20 times a minute). A restarted node may still campaign once
    // before the leader reaches it, which restarts the transfer once.
    let transfers = log.matches("Raft::begin_receiving_snapshot()").count();
    assert!((1..=2).contains(&transfers), "the snapshot transfer started {transfers} times");
    assert_holds_big_values(&cluster, follower, KEYS, VALUE_LEN).await;
}

/// A crash in the middle of installing a snapshot (after the first state
/// family is swapped in) is finished at restart: the node ends with the
/// snapshot's whole state, never a mix.
#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_install_interrupted_by_a_crash_is_finished_at_restart() {
    const VALUE_LEN: usize = 1024;
    const KEYS: u64 = 8000; // 500 entries of 16 writes: snapshots at 200
    let _exclusive = one_cluster_at_a_time().await;
    let mut cluster = Cluster::start(3, &one_shard()).unwrap();
    let leader = cluster.leader(LEADER_TIMEOUT).await.expect("a leader");
    let follower = (leader + 1) % 3;

    leave_behind(&mut cluster, leader, follower, 0, KEYS, VALUE_LEN).await;
    let abort = [("SESHAT_FAILPOINTS", "abort-mid-snapshot-install=1")];
    cluster.nodes[follower].restart_with_env(&abort).unwrap();
    let status = cluster.nodes[follower].wait_exit(Duration::from_secs(30)).unwrap();
    assert!(!status.success(), "the failpoint aborts the install");
    cluster.nodes[follower].restart_with_env(&[]).unwrap();
    let log = cluster.nodes[follower].log();
    assert!(log.contains("finished installing a snapshot that a crash had interrupted"), "log:\n{log}");
    assert_holds_big_values(&cluster, follower, KEYS, VALUE_LEN).await;
}
