//! Shards spread over a cluster of three nodes (the default: one shard
//! per initial member): leaders balanced over the nodes, any node serving
//! every key, the Redis Cluster protocol's redirects and views with real
//! cluster clients, a killed node's shards failing over, a whole-cluster
//! restart keeping the slot map, and a joining node taking the cluster's
//! shard count.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use seshat_tests::bounded::{output_within, wait_within, CLIENT_LIMIT};
use seshat_tests::placement::shards;
use seshat_tests::{eventually, one_cluster_at_a_time, redis_cli, Cluster, Node, FAST};

/// Waits until the three shards have three different leaders, as every
/// running node sees them.
async fn leaders_spread(cluster: &Cluster, timeout: Duration) -> bool {
    eventually(timeout, || async {
        let mut views = BTreeSet::new();
        for node in cluster.nodes.iter().filter(|node| node.is_running()) {
            let Ok(shards) = shards(node).await else { return false };
            let leaders: Vec<Option<u64>> = shards.iter().map(|shard| shard.leader).collect();
            let distinct: BTreeSet<u64> = leaders.iter().flatten().copied().collect();
            if distinct.len() != leaders.len() {
                return false;
            }
            views.insert(leaders);
        }
        views.len() == 1
    })
    .await
}

#[tokio::test]
async fn leaders_spread_over_the_nodes_and_any_node_serves_every_shard() -> anyhow::Result<()> {
    let _exclusive = one_cluster_at_a_time().await;
    let cluster = Cluster::start(3, FAST)?;
    assert!(leaders_spread(&cluster, Duration::from_secs(30)).await, "the three shards' leaders did not spread");
    let mut clients = Vec::new();
    for node in &cluster.nodes {
        clients.push(node.client().await?);
    }
    for i in 0..300 {
        let _: () = clients[i % 3].set(format!("key:{i}"), i).await?;
    }
    for i in 0..300 {
        let value: i64 = clients[(i + 1) % 3].get(format!("key:{i}")).await?;
        assert_eq!(value, i as i64);
    }
    let keys: Vec<u64> = shards(&cluster.nodes[0]).await?.iter().map(|shard| shard.keys).collect();
    assert_eq!(keys.iter().sum::<u64>(), 300, "{keys:?}");
    assert!(keys.iter().all(|keys| *keys > 50), "keys did not spread over the shards: {keys:?}");
    let dbsize: u64 = redis::cmd("DBSIZE").query_async(&mut clients[2]).await?;
    assert_eq!(dbsize, 300);
    // Keys of two shards: split per shard for MGET, CROSSSLOT for MSET.
    let values: Vec<i64> = clients[1].mget(&["key:1", "key:2", "key:3"]).await?;
    assert_eq!(values, [1, 2, 3]);
    let crossing = clients[1].mset::<_, _, ()>(&[("key:1", 1), ("key:2", 2), ("key:3", 3)]).await;
    assert_eq!(seshat_tests::error_text(crossing), "CROSSSLOT Keys in request don't hash to the same slot");
    Ok(())
}

#[tokio::test]
async fn cluster_clients_follow_moved_to_the_shard_leaders() -> anyhow::Result<()> {
    let _exclusive = one_cluster_at_a_time().await;
    let cluster = Cluster::start(3, &[FAST, &["--cluster-enabled", "yes"]].concat())?;
    assert!(leaders_spread(&cluster, Duration::from_secs(30)).await, "the three shards' leaders did not spread");
    let ports: Vec<u16> = cluster.nodes.iter().map(Node::port).collect();

    // "foo" is in slot 12182, the third shard's: exactly one node serves
    // it, the others redirect there.
    let leader_port = ports[shards(&cluster.nodes[0]).await?[2].leader.expect("a leader") as usize - 1];
    for port in &ports {
        let answer = redis_cli(*port, &["SET", "foo", "bar"]);
        if *port == leader_port {
            assert_eq!(answer.trim(), "OK");
        } else {
            assert_eq!(answer.trim(), format!("MOVED 12182 127.0.0.1:{leader_port}"));
        }
    }
    // After READONLY a follower serves reads of the shard from its replica.
    let follower = ports.iter().copied().find(|port| *port != leader_port).expect("a follower");
    let mut raw = seshat_tests::Raw::connect(format!("127.0.0.1:{follower}").parse()?).await?;
    assert_eq!(seshat_tests::text(&raw.call(&["READONLY"]).await?), "OK");
    // The follower's replica has the value once it applied the write.
    let deadline = Instant::now() + Duration::from_secs(5);
    while seshat_tests::text(&raw.call(&["GET", "foo"]).await?) != "bar" {
        assert!(Instant::now() < deadline, "the follower never served foo after READONLY");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seshat_tests::text(&raw.call(&["SET", "foo", "baz"]).await?).starts_with("MOVED 12182"));

    // redis-cli -c follows the redirects from every node.
    for (i, port) in ports.iter().enumerate() {
        for key in 0..20 {
            let key = format!("cli:{i}:{key}");
            assert_eq!(redis_cli(*port, &["-c", "SET", &key, "v"]).trim(), "OK");
            assert_eq!(redis_cli(ports[(i + 1) % 3], &["-c", "GET", &key]).trim(), "v");
        }
    }
    let check = redis_cli(ports[1], &["--cluster", "check", &format!("127.0.0.1:{}", ports[1])]);
    for line in ["[OK] All nodes agree about slots configuration.", "[OK] All 16384 slots covered."] {
        assert!(check.contains(line), "{check}");
    }
    let info = redis_cli(ports[0], &["CLUSTER", "INFO"]);
    for line in ["cluster_state:ok", "cluster_known_nodes:3", "cluster_size:3", "cluster_slots_ok:16384"] {
        assert!(info.lines().any(|l| l.trim() == line), "{line} in {info}");
    }
    let nodes = redis_cli(ports[2], &["CLUSTER", "NODES"]);
    assert_eq!(nodes.lines().count(), 3, "{nodes}");
    assert_eq!(nodes.lines().filter(|line| line.contains("myself,master")).count(), 1, "{nodes}");

    let script = seshat_tests::package_dir().join("cluster").join("check.py");
    let mut command = Command::new(seshat_tests::python());
    command.arg(script).arg(ports[0].to_string()).arg("3");
    let output = output_within(&mut command, CLIENT_LIMIT)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "redis-py failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("passed"), "{stdout}");

    // redis-rs's async cluster client: discovery, routing, MGET split by
    // slot, a pipeline within one slot, CROSSSLOT for a command it does not
    // split.
    let mut rc = seshat_tests::cluster_client(&ports[2..3], Duration::from_secs(10)).await?;
    for i in 0..60 {
        let () = rc.set(format!("rs:{i}"), i).await?;
    }
    let keys: Vec<String> = (0..60).map(|i| format!("rs:{i}")).collect();
    let values: Vec<i64> = rc.mget(&keys).await?;
    assert_eq!(values, (0..60).collect::<Vec<i64>>());
    let (a, b): (i64, i64) = redis::pipe().incr("{p}a", 1).incr("{p}b", 2).query_async(&mut rc).await?;
    assert_eq!((a, b), (1, 2));
    let crossing = redis::cmd("RENAME").arg("rs:1").arg("rs:2").query_async::<()>(&mut rc).await;
    assert_eq!(seshat_tests::error_text(crossing), "CROSSSLOT Keys in request don't hash to the same slot");
    Ok(())
}

/// A redirect storm: a cluster client keeps writing and reading while
/// shards change leaders (FAILOVER moves `kv/0`'s, then the balancer
/// moves another to even the counts again).
#[tokio::test]
async fn cluster_clients_ride_out_leader_changes() -> anyhow::Result<()> {
    let _exclusive = one_cluster_at_a_time().await;
    let cluster = Cluster::start(3, &[FAST, &["--cluster-enabled", "yes"]].concat())?;
    assert!(leaders_spread(&cluster, Duration::from_secs(30)).await, "the three shards' leaders did not spread");
    let before: Vec<Option<u64>> = shards(&cluster.nodes[0]).await?.iter().map(|shard| shard.leader).collect();
    let script = seshat_tests::package_dir().join("cluster").join("storm.py");
    let client = Command::new(seshat_tests::python())
        .arg(script)
        .arg(cluster.nodes[0].port().to_string())
        .arg("8")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let ports = cluster.nodes.iter().map(Node::port).collect();
    let rust_client = tokio::spawn(rust_cluster_storm(ports, Duration::from_secs(8)));
    // FAILOVER answers OK once leadership moved (or says that the
    // balancer's handover of the same shard runs: then again).
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let answer = redis_cli(cluster.nodes[1].port(), &["FAILOVER"]);
            if answer.trim() == "OK" {
                break;
            }
            assert!(answer.contains("already in progress") && Instant::now() < deadline, "{answer}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let output = wait_within(client, "storm.py", CLIENT_LIMIT)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && stdout.contains("passed"), "redis-py failed:\n{stdout}\n{stderr}");
    let rust_writes = rust_client.await??;
    let after: Vec<Option<u64>> = shards(&cluster.nodes[0]).await?.iter().map(|shard| shard.leader).collect();
    println!("{}, redis-rs {rust_writes} writes, while leaders went from {before:?} to {after:?}", stdout.trim());
    Ok(())
}

/// redis-rs's async cluster client writing and reading for `duration`
/// through the cluster seen from `ports`: every command must succeed,
/// following MOVED to the new leaders, and every read must see the write
/// before it. Returns the number of writes.
async fn rust_cluster_storm(ports: Vec<u16>, duration: Duration) -> anyhow::Result<u64> {
    let mut c = seshat_tests::cluster_client(&ports, Duration::from_secs(10)).await?;
    let deadline = Instant::now() + duration;
    let mut done = 0u64;
    while Instant::now() < deadline {
        let key = format!("rs-storm:{}", done % 500);
        let () = c.set(&key, done).await?;
        let value: u64 = c.get(&key).await?;
        anyhow::ensure!(value == done, "{key} read {value} after writing {done}");
        done += 1;
    }
    Ok(done)
}

#[tokio::test]
async fn a_killed_nodes_shards_fail_over_and_every_key_stays_reachable() -> anyhow::Result<()> {
    let _exclusive = one_cluster_at_a_time().await;
    let mut cluster = Cluster::start(3, &[FAST, &["--cluster-enabled", "yes"]].concat())?;
    assert!(leaders_spread(&cluster, Duration::from_secs(30)).await, "the three shards' leaders did not spread");
    let ports: Vec<u16> = cluster.nodes.iter().map(Node::port).collect();
    for key in 0..60 {
        assert_eq!(redis_cli(ports[0], &["-c", "SET", &format!("k{key}"), "before"]).trim(), "OK");
    }
    // Node 1 leads one shard (the leaders spread): kill it.
    let before = shards(&cluster.nodes[1]).await?;
    let orphaned = before.iter().position(|shard| shard.leader == Some(1)).expect("node 1 leads a shard");
    cluster.nodes[0].kill9();
    let killed = Instant::now();
    let survivor = &cluster.nodes[1];
    assert!(
        eventually(Duration::from_secs(10), || async {
            shards(survivor).await.is_ok_and(|now| now[orphaned].leader.is_some_and(|leader| leader != 1))
        })
        .await,
        "the killed node's shard elected no new leader"
    );
    let failover = killed.elapsed();
    assert!(
        eventually(Duration::from_secs(5), || async {
            redis_cli(ports[1], &["CLUSTER", "INFO"]).lines().any(|l| l.trim() == "cluster_state:ok")
        })
        .await
    );
    // Both survivors report the killed node to the metadata group, which
    // marks it failed for every node; redis-cli's check skips it as it
    // skips a failed Redis node. The bound: 2 s of silence (the failure
    // timeout) and a 1 s ping from the kill, then the metadata group
    // electing a leader if the killed node led it (an election timeout or
    // two) before the reports commit: about 4 s from the kill, doubled
    // (this wait starts later, after the failover).
    let failed_line =
        |port: u16| redis_cli(port, &["CLUSTER", "NODES"]).lines().find(|l| l.contains(",fail ")).map(str::to_string);
    assert!(
        eventually(Duration::from_secs(8), || async {
            [ports[1], ports[2]].iter().all(|port| failed_line(*port).is_some_and(|l| l.contains(" disconnected")))
        })
        .await,
        "the survivors did not agree that the killed node failed:\n{}",
        redis_cli(ports[1], &["CLUSTER", "NODES"])
    );
    let killed_name = failed_line(ports[1]).expect("a failed node").split(' ').next().unwrap().to_string();
    for port in [ports[1], ports[2]] {
        assert_eq!(redis_cli(port, &["CLUSTER", "COUNT-FAILURE-REPORTS", &killed_name]).trim(), "2");
    }
    let check = redis_cli(ports[2], &["--cluster", "check", &format!("127.0.0.1:{}", ports[2])]);
    assert!(check.contains("[OK] All 16384 slots covered."), "{check}");
    for key in 0..60 {
        let key = format!("k{key}");
        assert_eq!(redis_cli(ports[1 + key.len() % 2], &["-c", "GET", &key]).trim(), "before");
        assert_eq!(redis_cli(ports[2], &["-c", "SET", &key, "after"]).trim(), "OK");
    }
    println!("failover of the killed node's shard: {failover:?}");
    // Back, it answers pings again: the reports are withdrawn and no node
    // shows a failure any more.
    cluster.nodes[0].restart()?;
    assert!(
        eventually(Duration::from_secs(10), || async {
            ports.iter().all(|port| {
                redis_cli(*port, &["CLUSTER", "COUNT-FAILURE-REPORTS", &killed_name]).trim() == "0"
                    && !redis_cli(*port, &["CLUSTER", "NODES"]).contains(",fail")
            })
        })
        .await,
        "the restarted node still shows as failed:\n{}",
        redis_cli(ports[1], &["CLUSTER", "NODES"])
    );
    Ok(())
}

#[tokio::test]
async fn a_restarted_cluster_keeps_its_slot_map_and_a_joining_node_takes_its_shard_count() -> anyhow::Result<()> {
    let _exclusive = one_cluster_at_a_time().await;
    let mut cluster = Cluster::start(3, &[FAST, &["--cluster-enabled", "yes"]].concat())?;
    assert!(leaders_spread(&cluster, Duration::from_secs(30)).await, "the three shards' leaders did not spread");
    let map_of = |port: u16| {
        let nodes = redis_cli(port, &["CLUSTER", "NODES"]);
        // Name, address and slots of each node, whoever leads.
        let names: BTreeMap<String, String> = nodes
            .lines()
            .map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                (fields[0].to_string(), fields[1].to_string())
            })
            .collect();
        names
    };
    let port = cluster.nodes[0].port();
    for key in 0..30 {
        assert_eq!(redis_cli(port, &["-c", "SET", &format!("r{key}"), "kept"]).trim(), "OK");
    }
    let before = map_of(port);
    for node in &mut cluster.nodes {
        node.terminate()?;
    }
    for node in &mut cluster.nodes {
        node.restart()?;
    }
    assert!(leaders_spread(&cluster, Duration::from_secs(30)).await, "the leaders did not spread after the restart");
    assert_eq!(map_of(port), before);
    let slots = redis_cli(port, &["CLUSTER", "SHARDS"]);
    assert!(slots.contains("5462") && slots.contains("10923"), "{slots}");
    for key in 0..30 {
        assert_eq!(redis_cli(cluster.nodes[2].port(), &["-c", "GET", &format!("r{key}")]).trim(), "kept");
    }

    // A node joining without --shards takes the cluster's three; one
    // asking for another count is refused before it starts anything.
    let joined = cluster.join(4, 1, &[FAST, &["--cluster-enabled", "yes"]].concat())?;
    assert!(
        eventually(Duration::from_secs(30), || async {
            shards(&cluster.nodes[joined]).await.is_ok_and(|shards| shards.len() == 3)
        })
        .await
    );
    assert!(
        eventually(Duration::from_secs(30), || async {
            redis_cli(port, &["CLUSTER", "INFO"]).lines().any(|l| l.trim() == "cluster_known_nodes:4")
        })
        .await,
        "the joined node did not register"
    );
    let target = cluster.nodes[0].raft_addr();
    let dir = tempfile::tempdir()?;
    let mut joining = Command::new(seshat_tests::seshat_bin());
    joining
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--resp-addr", "127.0.0.1:0", "--pg-addr", "off", "--raft-addr", "127.0.0.1:0"])
        .args(["--node-id", "5", "--join", &target, "--shards", "2"]);
    let refused = output_within(&mut joining, seshat_tests::START_TIMEOUT)?;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("--shards 2: the cluster this node joins at") && stderr.contains("has 3 shard(s)"),
        "{stderr}"
    );
    Ok(())
}
