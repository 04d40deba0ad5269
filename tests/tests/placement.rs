//! Shard replicas on a subset of the nodes (`--replicas`): every shard's
//! group moves to the members the metadata group's placement names, and
//! every node still serves every key, reaching the shards it holds no
//! replica of through a node that does (writes, reads, pipelines, WATCH,
//! blocking pops, and the keyless reads merged over the shards), also
//! after a restart. Removing a node moves its replicas to the others and
//! empties it. An initial member that starts late is awaited, never
//! placed out of the shards.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use seshat_tests::placement::{key_elsewhere, placed, shards};
use seshat_tests::{eventually, one_cluster_at_a_time, Cluster, Node, FAST};

const SHARDS: u32 = 4;

/// Whether every shard has a leader and no leader leads two shards more
/// than another member of a shard it leads (what the leader balancer
/// promises when a node hosts only some shards), as `node` sees them.
async fn leaders_balanced(node: &Node) -> bool {
    let Ok(shards) = shards(node).await else { return false };
    let Some(leaders) = shards.iter().map(|shard| shard.leader).collect::<Option<Vec<u64>>>() else { return false };
    let leads = |id: u64| leaders.iter().filter(|leader| **leader == id).count();
    shards.iter().zip(&leaders).all(|(shard, leader)| shard.members.iter().all(|m| leads(*leader) <= leads(*m) + 1))
}

#[tokio::test]
async fn replicas_move_to_the_placement_and_every_node_serves_every_key() -> anyhow::Result<()> {
    let _exclusive = one_cluster_at_a_time().await;
    let args = [FAST, &["--shards", "4", "--replicas", "2"]].concat();
    let mut cluster = Cluster::start(4, &args)?;
    assert!(
        eventually(Duration::from_secs(60), || placed(&cluster, SHARDS, 2)).await,
        "the shards' members did not reach the placement: {:?}",
        shards(&cluster.nodes[0]).await
    );
    // Each node hosts two shards: balancing counts the leaders of the
    // shards it does not host too.
    assert!(eventually(Duration::from_secs(30), || leaders_balanced(&cluster.nodes[0])).await, "leaders unbalanced");

    // Writes through every node, reads through every other one.
    let mut expected = BTreeMap::new();
    for i in 0..200 {
        let node = &cluster.nodes[i % 4];
        let mut c = node.patient_client(Duration::from_secs(10)).await?;
        let (key, value) = (format!("key:{i}"), format!("value:{i}"));
        let _: () = redis::cmd("SET").arg(&key).arg(&value).query_async(&mut c).await?;
        expected.insert(key, value);
    }
    for (n, node) in cluster.nodes.iter().enumerate() {
        let mut c = node.patient_client(Duration::from_secs(10)).await?;
        for (i, (key, value)) in expected.iter().enumerate().filter(|(i, _)| i % 4 != n) {
            let got: Option<String> = redis::cmd("GET").arg(key).query_async(&mut c).await?;
            assert_eq!(got.as_deref(), Some(value.as_str()), "key {i} through node {}", n + 1);
        }
        // The keyless reads cover every shard, hosted here or not.
        let size: u64 = redis::cmd("DBSIZE").query_async(&mut c).await?;
        assert_eq!(size, 200, "DBSIZE through node {}", n + 1);
        let keys: BTreeSet<String> = redis::cmd("KEYS").arg("key:*").query_async(&mut c).await?;
        assert_eq!(keys, expected.keys().cloned().collect(), "KEYS through node {}", n + 1);
        let mut scanned = BTreeSet::new();
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) =
                redis::cmd("SCAN").arg(cursor).arg("COUNT").arg(7).query_async(&mut c).await?;
            scanned.extend(keys);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(scanned, expected.keys().cloned().collect(), "SCAN through node {}", n + 1);
        let mget: Vec<Option<String>> =
            redis::cmd("MGET").arg("key:1").arg("key:2").arg("key:3").query_async(&mut c).await?;
        assert_eq!(mget, ["value:1", "value:2", "value:3"].map(|v| Some(v.to_string())));
    }

    // A pipeline to a shard node 1 holds no replica of applies in order.
    let node = &cluster.nodes[0];
    let counter = key_elsewhere(node, 1, SHARDS, "counter:").await?;
    let mut c = node.patient_client(Duration::from_secs(10)).await?;
    let mut pipe = redis::pipe();
    for _ in 0..50 {
        pipe.cmd("INCR").arg(&counter);
    }
    pipe.cmd("SET").arg(&counter).arg("last");
    let replies: Vec<redis::Value> = pipe.query_async(&mut c).await?;
    let counts: Vec<i64> = replies[..50].iter().map(|v| redis::from_redis_value(v.clone()).unwrap()).collect();
    assert_eq!(counts, (1..=50).collect::<Vec<i64>>());
    let last: String = redis::cmd("GET").arg(&counter).query_async(&mut c).await?;
    assert_eq!(last, "last");

    // WATCH of a remote shard's key: EXEC aborts after another client's write.
    let watched = key_elsewhere(node, 1, SHARDS, "watched:").await?;
    let _: () = redis::cmd("WATCH").arg(&watched).query_async(&mut c).await?;
    let mut other = cluster.nodes[2].patient_client(Duration::from_secs(10)).await?;
    let _: () = redis::cmd("SET").arg(&watched).arg("theirs").query_async(&mut other).await?;
    let exec: Option<Vec<String>> =
        redis::pipe().atomic().cmd("SET").arg(&watched).arg("mine").query_async(&mut c).await?;
    assert_eq!(exec, None, "EXEC ran although the watched key changed");

    // A blocking pop on a remote shard wakes up on a push through another node.
    let list = key_elsewhere(node, 1, SHARDS, "list:").await?;
    let mut blocked = node.patient_client(Duration::from_secs(20)).await?;
    let pop = tokio::spawn({
        let list = list.clone();
        async move {
            let popped: Option<(String, String)> =
                redis::cmd("BLPOP").arg(&list).arg(10).query_async(&mut blocked).await?;
            anyhow::Ok(popped)
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _: i64 = redis::cmd("RPUSH").arg(&list).arg("pushed").query_async(&mut other).await?;
    let popped = tokio::time::timeout(Duration::from_secs(10), pop).await???;
    assert_eq!(popped, Some((list.clone(), "pushed".to_string())));
    let left: i64 = redis::cmd("LLEN").arg(&list).query_async(&mut c).await?;
    assert_eq!(left, 0, "the element was popped twice or not at all");

    // Restarted, node 1 runs the replicas it held and reaches the others
    // again (the shards it erased are not formed anew).
    cluster.nodes[0].kill9();
    cluster.nodes[0].restart()?;
    assert!(
        eventually(Duration::from_secs(60), || placed(&cluster, SHARDS, 2)).await,
        "the placement did not hold over a restart: {:?}",
        shards(&cluster.nodes[0]).await
    );
    let mut c = cluster.nodes[0].patient_client(Duration::from_secs(10)).await?;
    for (key, value) in &expected {
        let got: Option<String> = redis::cmd("GET").arg(key).query_async(&mut c).await?;
        assert_eq!(got.as_deref(), Some(value.as_str()), "{key} through the restarted node");
    }
    Ok(())
}

#[tokio::test]
async fn a_removed_node_hands_its_replicas_to_the_others_and_ends_with_none() -> anyhow::Result<()> {
    let _exclusive = one_cluster_at_a_time().await;
    let args = [FAST, &["--shards", "4", "--replicas", "2"]].concat();
    let cluster = Cluster::start(4, &args)?;
    assert!(eventually(Duration::from_secs(60), || placed(&cluster, SHARDS, 2)).await, "never placed");
    let mut c = cluster.nodes[0].patient_client(Duration::from_secs(10)).await?;
    for i in 0..100 {
        let _: () = redis::cmd("SET").arg(format!("key:{i}")).arg(i).query_async(&mut c).await?;
    }
    let _: Vec<String> = redis::cmd("SESHAT").arg("REMOVE-NODE").arg("4").query_async(&mut c).await?;
    let without_four = || async {
        let Ok(shards) = shards(&cluster.nodes[0]).await else { return false };
        shards
            .iter()
            .all(|shard| shard.members == shard.target && shard.target.len() == 2 && !shard.members.contains(&4))
    };
    assert!(
        eventually(Duration::from_secs(60), without_four).await,
        "node 4 still holds replicas: {:?}",
        shards(&cluster.nodes[0]).await
    );
    // Node 4 erases what it held once the groups no longer count on it.
    let four = cluster.nodes[3].patient_client(Duration::from_secs(10)).await?;
    let emptied = eventually(Duration::from_secs(30), || async {
        let info: redis::RedisResult<String> = redis::cmd("INFO").arg("keyspace").query_async(&mut four.clone()).await;
        info.is_ok_and(|info| !info.contains("db0:"))
    })
    .await;
    assert!(emptied, "node 4 kept its replicas' keys");
    for n in 0..3 {
        let mut c = cluster.nodes[n].patient_client(Duration::from_secs(10)).await?;
        for i in 0..100 {
            let value: i64 = redis::cmd("GET").arg(format!("key:{i}")).query_async(&mut c).await?;
            assert_eq!(value, i, "key:{i} through node {}", n + 1);
        }
    }
    Ok(())
}

#[tokio::test]
async fn cluster_clients_reach_every_shard_when_replicas_are_on_some_nodes() -> anyhow::Result<()> {
    let _exclusive = one_cluster_at_a_time().await;
    let args = [FAST, &["--shards", "4", "--replicas", "2", "--cluster-enabled", "yes"]].concat();
    let cluster = Cluster::start(4, &args)?;
    assert!(eventually(Duration::from_secs(60), || placed(&cluster, SHARDS, 2)).await, "never placed");
    let ports: Vec<u16> = cluster.nodes.iter().map(Node::port).collect();
    // Every node lists every slot with its shard's leader (CLUSTER SLOTS
    // as redis-cli --cluster check reads it), hosted there or not.
    let check = |port: u16| seshat_tests::try_redis_cli(port, &["--cluster", "check", &format!("127.0.0.1:{port}")]);
    let all_slots = eventually(Duration::from_secs(20), || async {
        ports.iter().all(|port| check(*port).is_ok_and(|check| check.contains("[OK] All 16384 slots covered.")))
    })
    .await;
    assert!(
        all_slots,
        "a node does not show every slot: {:?}",
        ports.iter().map(|port| check(*port)).collect::<Vec<_>>()
    );
    let mut rc = seshat_tests::cluster_client(&ports[..1], Duration::from_secs(10)).await?;
    for i in 0..100 {
        let () = redis::cmd("SET").arg(format!("rs:{i}")).arg(i).query_async(&mut rc).await?;
    }
    let keys: Vec<String> = (0..100).map(|i| format!("rs:{i}")).collect();
    let values: Vec<i64> = redis::cmd("MGET").arg(&keys).query_async(&mut rc).await?;
    assert_eq!(values, (0..100).collect::<Vec<i64>>());
    // redis-cli -c follows MOVED from every node, a node without a replica
    // of the key's shard included.
    for (i, port) in ports.iter().enumerate() {
        for key in 0..10 {
            let key = format!("cli:{i}:{key}");
            assert_eq!(seshat_tests::redis_cli(*port, &["-c", "SET", &key, "v"]).trim(), "OK");
            assert_eq!(seshat_tests::redis_cli(ports[(i + 1) % 4], &["-c", "GET", &key]).trim(), "v");
        }
    }
    Ok(())
}

#[tokio::test]
async fn an_initial_member_that_starts_late_keeps_its_replicas() -> anyhow::Result<()> {
    let _exclusive = one_cluster_at_a_time().await;
    let mut cluster = Cluster::start_holding_back(3, FAST, 2)?;
    let leaders_elected =
        || async { shards(&cluster.nodes[0]).await.is_ok_and(|shards| shards.iter().all(|s| s.leader.is_some())) };
    assert!(eventually(Duration::from_secs(15), leaders_elected).await, "the two running nodes elect leaders");
    // Placement rounds run every 0.5 s: a placement over the two nodes
    // registered so far would take node 3 out of every shard in this time.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        for (index, shard) in shards(&cluster.nodes[0]).await?.iter().enumerate() {
            assert!(shard.members.contains(&3), "kv/{index} dropped node 3 before it started: {:?}", shard.members);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.nodes[2].restart()?;
    assert!(eventually(Duration::from_secs(15), || placed(&cluster, 3, 3)).await, "every shard on every node");
    let installed = seshat_tests::info_field(&cluster.nodes[2], "seshat_snapshots_installed").await;
    assert_eq!(installed.as_deref(), Some("0"), "node 3 kept its replicas rather than reloading them");
    Ok(())
}
