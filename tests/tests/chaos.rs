//! The fault matrix: each test runs a recorded workload against a 3-node
//! cluster while one kind of fault strikes, heals, and then proves the
//! history linearizable, every acknowledged write present and the replicas
//! identical (see `seshat_tests::chaos`). Tests run one at a time: they
//! share the machine's two cores.

use std::sync::LazyLock;
use std::time::Duration;

use anyhow::{Context, Result};
use seshat_tests::bank::Bank;
use seshat_tests::chaos::ChaosCluster;
use seshat_tests::faults::Fault;
use seshat_tests::linearizability::{self, Op, Reply};
use tokio::sync::Mutex;
use tokio::time::sleep;

static ONE_AT_A_TIME: LazyLock<Mutex<()>> = LazyLock::new(|| Mutex::new(()));

const CLIENTS: usize = 6;
const LEADER_WAIT: Duration = Duration::from_secs(10);

async fn started(name: &str, seed: u64) -> Result<ChaosCluster> {
    started_with(ChaosCluster::start(name, 3, &[]).await?, seed).await
}

async fn started_with(mut cluster: ChaosCluster, seed: u64) -> Result<ChaosCluster> {
    cluster.leader(LEADER_WAIT).await.context("no leader at start")?;
    cluster.start_workload(CLIENTS, seed);
    sleep(Duration::from_millis(800)).await;
    Ok(cluster)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_a_new_leader_takes_writes() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = started("leader-killed", 1).await?;
    let leader = cluster.leader(LEADER_WAIT).await.context("no leader")?;
    cluster.note(&format!("kill -9 leader node {}", leader + 1));
    cluster.nodes[leader].kill9();
    let survivor = (leader + 1) % 3;
    let failover = cluster.time_to_write(survivor, Duration::from_secs(10)).await?;
    cluster.note(&format!("first write through node {} after {failover:?}", survivor + 1));
    println!("failover: {} ms", failover.as_millis());
    sleep(Duration::from_millis(800)).await;
    let checked = cluster.heal_and_check().await?;
    println!("{checked} operations linearizable");
    Ok(())
}

/// Four shards on three nodes: one node leads two of them once the
/// leaders are balanced. Killing it leaves two shards to elect leaders at
/// once while the workload runs on keys of every shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_leading_the_most_shards_killed_its_shards_fail_over() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = started_with(ChaosCluster::start("most-shards-killed", 3, &["--shards", "4"]).await?, 14).await?;
    let leaders = cluster.shard_leaders(LEADER_WAIT).await.context("shards without leaders")?;
    let busiest = (1..=3).max_by_key(|id| leaders.iter().filter(|leader| **leader == *id).count()).expect("3 nodes");
    let led = leaders.iter().filter(|leader| **leader == busiest).count();
    cluster.note(&format!("kill -9 node {busiest}, leading {led} of the shards {leaders:?}"));
    let killed = busiest as usize - 1;
    cluster.nodes[killed].kill9();
    let survivor = (killed + 1) % 3;
    let failover = cluster.time_to_write(survivor, Duration::from_secs(10)).await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let leaders = loop {
        let leaders = cluster.shard_leaders(Duration::from_secs(10)).await.context("shards without leaders")?;
        if !leaders.contains(&busiest) {
            break leaders;
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "the killed node still leads a shard: {leaders:?}");
        sleep(Duration::from_millis(50)).await;
    };
    cluster.note(&format!("every shard led by a survivor: {leaders:?}; first write after {failover:?}"));
    sleep(Duration::from_millis(800)).await;
    cluster.heal_and_check().await?;
    Ok(())
}

/// The link between two nodes cut both ways while both still reach the
/// third: each shard's majority is a different pair (the shards either
/// of the two leads keep their leader with the third node's vote; the
/// third's keep all of it), so every shard keeps a leader with a quorum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_between_two_nodes_splits_the_shards_majorities_differently() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = started("cut-between-two", 15).await?;
    let leaders = cluster.shard_leaders(LEADER_WAIT).await.context("shards without leaders")?;
    let (a, b) = (leaders[0], leaders.iter().copied().find(|l| *l != leaders[0]).unwrap_or(leaders[0] % 3 + 1));
    cluster.note(&format!("cut the link between nodes {a} and {b} (shard leaders {leaders:?})"));
    cluster.faults.set_both(a, b, Some(Fault::Drop));
    sleep(Duration::from_secs(3)).await;
    // The third node reaches every shard's leader. (Through the two cut
    // nodes, a shard the other one leads is out of reach: forwarding
    // takes one hop.)
    let third = (1..=3).find(|id| *id != a && *id != b).expect("a third node");
    cluster.time_to_write(third as usize - 1, Duration::from_secs(10)).await?;
    cluster.note(&format!("writes go through node {third} during the cut"));
    sleep(Duration::from_millis(800)).await;
    cluster.heal_and_check().await?;
    Ok(())
}

/// Leadership handovers under load stay linearizable: FAILOVER through
/// every node in turn (and the leader balancer handing shards back). With
/// three voters the target wins with the old leader's vote before the
/// followers' leases run out, so the old leader must read under no lease
/// while it hands over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_handovers_under_load_stay_linearizable() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = started("handovers", 15).await?;
    for round in 0..6 {
        let via = round % 3;
        cluster.note(&format!("FAILOVER through node {}", via + 1));
        let mut c = cluster.nodes[via].patient_client(Duration::from_secs(5)).await?;
        let started = std::time::Instant::now();
        match redis::cmd("FAILOVER").query_async::<()>(&mut c).await {
            Ok(()) => {
                println!("FAILOVER through node {}: {} ms", via + 1, started.elapsed().as_millis());
                cluster.note(&format!("handed over in {:?}", started.elapsed()));
            }
            // The balancer is handing the same shard over.
            Err(error) if error.to_string().contains("already in progress") => {}
            Err(error) => anyhow::bail!("FAILOVER through node {}: {error}", via + 1),
        }
        sleep(Duration::from_millis(400)).await;
    }
    cluster.heal_and_check().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_killed_two_of_three_carry_on() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = started("follower-killed", 2).await?;
    let leader = cluster.leader(LEADER_WAIT).await.context("no leader")?;
    let follower = (leader + 1) % 3;
    cluster.note(&format!("kill -9 follower node {}", follower + 1));
    cluster.nodes[follower].kill9();
    let writes = cluster.time_to_write(leader, Duration::from_secs(5)).await?;
    assert!(writes < Duration::from_secs(2), "writes stalled {writes:?} without a follower");
    sleep(Duration::from_millis(1000)).await;
    cluster.heal_and_check().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_minority_refuses_and_the_majority_carries_on() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = started("partition-2-1", 3).await?;
    let leader = cluster.leader(LEADER_WAIT).await.context("no leader")?;
    let minority = (leader + 1) % 3;
    cluster.note(&format!("partition node {} from the others", minority + 1));
    cluster.faults.isolate(minority as u64 + 1, &cluster.ids());
    // The minority answers errors, never a success it cannot back.
    let mut c = cluster.nodes[minority].patient_client(Duration::from_secs(5)).await?;
    let refused = redis::cmd("SET").arg("minority").arg("x").query_async::<()>(&mut c).await;
    let error = refused.expect_err("a minority node must not accept writes");
    assert!(error.to_string().contains("The cluster is down"), "{error}");
    cluster.time_to_write(leader, Duration::from_secs(5)).await?;
    sleep(Duration::from_millis(500)).await;
    cluster.heal_and_check().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_leader_is_replaced_and_serves_no_stale_success() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = started("leader-isolated", 4).await?;
    let leader = cluster.leader(LEADER_WAIT).await.context("no leader")?;
    cluster.note(&format!("isolate leader node {}", leader + 1));
    cluster.faults.isolate(leader as u64 + 1, &cluster.ids());
    let other = (leader + 1) % 3;
    let failover = cluster.time_to_write(other, Duration::from_secs(10)).await?;
    cluster.note(&format!("first write through node {} after {failover:?}", other + 1));
    sleep(Duration::from_millis(800)).await;
    cluster.heal_and_check().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asymmetric_partitions_cause_no_split_brain() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = started("asymmetric", 5).await?;
    let leader = cluster.leader(LEADER_WAIT).await.context("no leader")?;
    let id = leader as u64 + 1;
    // The leader can send but not receive.
    cluster.note(&format!("node {id} can send, not receive"));
    for other in cluster.ids().into_iter().filter(|&o| o != id) {
        cluster.faults.set(other, id, Some(Fault::Drop));
    }
    sleep(Duration::from_millis(1500)).await;
    cluster.faults.heal_all();
    cluster.note("healed");
    let leader = cluster.leader(LEADER_WAIT).await.context("no leader")?;
    let id = leader as u64 + 1;
    // The leader can receive but not send.
    cluster.note(&format!("node {id} can receive, not send"));
    for other in cluster.ids().into_iter().filter(|&o| o != id) {
        cluster.faults.set(id, other, Some(Fault::Drop));
    }
    let other = (leader + 1) % 3;
    cluster.time_to_write(other, Duration::from_secs(10)).await?;
    sleep(Duration::from_millis(800)).await;
    cluster.heal_and_check().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_two_of_three_refuses_cleanly_and_restart_recovers_everything() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = started("cascading", 6).await?;
    let leader = cluster.leader(LEADER_WAIT).await.context("no leader")?;
    let (first, second) = ((leader + 1) % 3, leader);
    cluster.note(&format!("kill -9 node {}", first + 1));
    cluster.nodes[first].kill9();
    sleep(Duration::from_millis(500)).await;
    cluster.note(&format!("kill -9 node {}", second + 1));
    cluster.nodes[second].kill9();
    let last = 3 - first - second;
    let mut c = cluster.nodes[last].patient_client(Duration::from_secs(5)).await?;
    let refused = redis::cmd("SET").arg("alone").arg("x").query_async::<()>(&mut c).await;
    let error = refused.expect_err("one node of three must not accept writes");
    assert!(error.to_string().contains("The cluster is down"), "{error}");
    // INFO still describes the node (its keyspace as its replicas hold it).
    let info: String = redis::cmd("INFO").arg("everything").query_async(&mut c).await.context("INFO")?;
    for field in ["seshat_raft_role:", "# Keyspace", "db0:keys="] {
        assert!(info.contains(field), "{field} in INFO:\n{info}");
    }
    cluster.heal_and_check().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_cluster_kill_keeps_every_acknowledged_write() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = started("full-restart", 7).await?;
    sleep(Duration::from_millis(500)).await;
    cluster.note("kill -9 every node");
    for node in &mut cluster.nodes {
        node.kill9();
    }
    cluster.heal_and_check().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_link_100ms_slower_stays_available() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    // openraft gives an AppendEntries one heartbeat interval to complete,
    // so the heartbeat must exceed the 200 ms round trip.
    let timing = ["--heartbeat-ms", "300", "--election-timeout-ms", "1000", "--request-timeout-ms", "5000"];
    let mut cluster = started_with(ChaosCluster::start_with_args("latency", 3, &timing).await?, 8).await?;
    cluster.note("100 ms on every link, both ways");
    for a in cluster.ids() {
        for b in cluster.ids().into_iter().filter(|&b| b != a) {
            cluster.faults.set(a, b, Some(Fault::Delay(Duration::from_millis(100))));
        }
    }
    let leader = cluster.leader(LEADER_WAIT).await.context("no leader")?;
    let write = cluster.time_to_write(leader, Duration::from_secs(5)).await?;
    cluster.note(&format!("a write took {write:?}"));
    sleep(Duration::from_millis(1500)).await;
    cluster.heal_and_check().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_steps_down_and_serves_no_stale_reads() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = started("paused-leader", 9).await?;
    let leader = cluster.leader(LEADER_WAIT).await.context("no leader")?;
    cluster.pause(leader, true)?;
    let other = (leader + 1) % 3;
    cluster.time_to_write(other, Duration::from_secs(10)).await?;
    sleep(Duration::from_millis(500)).await;
    cluster.pause(leader, false)?;
    sleep(Duration::from_millis(1000)).await;
    cluster.heal_and_check().await?;
    Ok(())
}

/// One randomized schedule on four nodes whose shards each have three
/// replicas (the placement puts every shard on three of the four): faults
/// hit nodes that hold some shards and reach the others through their
/// hosts, and the history stays linearizable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nemesis_schedule_over_replicas_on_some_nodes() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let args = ["--shards", "4", "--replicas", "3"];
    let cluster = ChaosCluster::start("partial-placement", 4, &args).await?;
    let placed = seshat_tests::eventually(Duration::from_secs(60), || async {
        let mut c = match cluster.nodes[0].client().await {
            Ok(c) => c,
            Err(_) => return false,
        };
        let lines: Vec<String> = redis::cmd("SESHAT").arg("SHARDS").query_async(&mut c).await.unwrap_or_default();
        let members = |line: &String| line.split(' ').find_map(|f| f.strip_prefix("members=")).map(str::to_string);
        let target = |line: &String| line.split(' ').find_map(|f| f.strip_prefix("target=")).map(str::to_string);
        lines.len() == 4 && lines.iter().all(|line| members(line).is_some() && members(line) == target(line))
    })
    .await;
    anyhow::ensure!(placed, "the shards never reached their placement");
    let mut cluster = started_with(cluster, 21).await?;
    let injected = seshat_tests::chaos::nemesis(&mut cluster, 21, Duration::from_secs(8)).await?;
    let checked = cluster.heal_and_check().await?;
    println!("partial placement: {injected} faults, {checked} operations linearizable, replicas converged");
    Ok(())
}

/// Randomized schedules mixing every fault, one seed per schedule, until a
/// time budget is spent: `SESHAT_CHAOS_SECONDS` (default 16: two short
/// schedules in `make test`; `make chaos` runs it for minutes), starting
/// at seed `SESHAT_CHAOS_SEED` (default 1). Each schedule prints a progress
/// line; a failing one names its seed, which replays it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn randomized_nemesis() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let budget = Duration::from_secs(env("SESHAT_CHAOS_SECONDS", 16));
    let first_seed = env("SESHAT_CHAOS_SEED", 1);
    let schedule = Duration::from_secs(6);
    let started = std::time::Instant::now();
    let (mut schedules, mut operations, mut faults, mut transactions) = (0, 0, 0, 0);
    let mut anomalies = Vec::new();
    let mut seed = first_seed;
    while started.elapsed() + schedule < budget || schedules == 0 {
        let mut cluster = started_with(ChaosCluster::start(&format!("nemesis-{seed}"), 3, &[]).await?, seed).await?;
        let injected = seshat_tests::chaos::nemesis(&mut cluster, seed, schedule)
            .await
            .with_context(|| format!("nemesis seed {seed}"))?;
        match cluster.heal_and_check().await {
            Ok(checked) => {
                let (committed, aborted) = cluster.transactions();
                println!(
                    "schedule seed={seed}: {injected} faults, {checked} operations linearizable \
                     ({committed} transactions committed, {aborted} aborted), replicas converged"
                );
                operations += checked;
                transactions += committed + aborted;
            }
            Err(anomaly) => {
                println!("schedule seed={seed}: {injected} faults, ANOMALY: {anomaly:#}");
                anomalies.push(format!("seed {seed}: {anomaly:#}"));
            }
        }
        schedules += 1;
        faults += injected;
        seed += 1;
    }
    println!(
        "nemesis summary: {schedules} schedules (seeds {first_seed}..{}), {faults} faults, {operations} operations \
         checked ({transactions} of them transactions), {} anomalies",
        seed - 1,
        anomalies.len()
    );
    assert!(anomalies.is_empty(), "anomalies:\n{}", anomalies.join("\n"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_node_catches_up_by_snapshot_under_load_with_bounded_memory() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    // One shard: its group takes every write, so its log compacts fast.
    let small = ["--snapshot-entries", "200", "--log-keep-entries", "20", "--shards", "1"];
    let mut cluster = started_with(ChaosCluster::start("snapshot-under-load", 3, &small).await?, 10).await?;
    let leader = cluster.leader(LEADER_WAIT).await.context("no leader")?;
    let lagging = (leader + 1) % 3;
    cluster.note(&format!("isolate node {} while the others compact their logs", lagging + 1));
    cluster.faults.isolate(lagging as u64 + 1, &cluster.ids());
    let leader_node = &cluster.nodes[leader];
    let compacted = seshat_tests::eventually(Duration::from_secs(20), || async {
        let purged = seshat_tests::info_field(leader_node, "seshat_purged_index").await;
        purged.and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) > 300
    })
    .await;
    assert!(compacted, "the leader purged its log behind a snapshot");
    cluster.faults.heal_all();
    cluster.note("healed: the lagging node needs a snapshot");
    let lagging_node = &cluster.nodes[lagging];
    let installed = seshat_tests::eventually(Duration::from_secs(20), || async {
        seshat_tests::info_field(lagging_node, "seshat_snapshots_installed").await.is_some_and(|n| n != "0")
    })
    .await;
    assert!(installed, "node {} caught up by installing a snapshot", lagging + 1);
    sleep(Duration::from_millis(500)).await;
    for (index, node) in cluster.nodes.iter().enumerate() {
        let peak_kib = node.peak_rss_kib()?;
        println!("node {} peak RSS {:.1} MiB", index + 1, peak_kib as f64 / 1024.0);
        assert!(peak_kib < 256 * 1024, "node {} peaked at {peak_kib} KiB", index + 1);
    }
    cluster.heal_and_check().await?;
    Ok(())
}

/// Multi-key writes are atomic: a reader must never see some keys of one
/// transaction (MULTI/SET/SET/SET/EXEC, alternating with MSET) and not the
/// others, reading with MGET or inside a MULTI, even when the leader dies
/// in the middle of a stream of them; no acknowledged one is lost. The keys
/// share a hash tag, so they are in one shard (a request across shards is
/// refused with CROSSSLOT).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_killed_mid_stream_leaves_no_partial_multi_key_write() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = started("leader-killed-mid-stream", 11).await?;
    let addrs = cluster.resp_addrs();
    let stop = tokio_util::sync::CancellationToken::new();
    let writer = {
        let (stop, addr) = (stop.clone(), addrs[0]);
        tokio::spawn(async move {
            let mut acknowledged = 0u64;
            let mut token = 0u64;
            while !stop.is_cancelled() {
                let Some(mut c) = seshat_tests::workload::connect(addr).await else { continue };
                while !stop.is_cancelled() {
                    token += 1;
                    let v = token.to_string();
                    let written = if token.is_multiple_of(2) {
                        let mut mset = redis::cmd("MSET");
                        mset.arg("{t}0").arg(&v).arg("{t}1").arg(&v).arg("{t}2").arg(&v);
                        mset.query_async::<()>(&mut c).await
                    } else {
                        let mut transaction = redis::pipe();
                        transaction.atomic().set("{t}0", &v).set("{t}1", &v).set("{t}2", &v).ignore();
                        transaction.query_async::<()>(&mut c).await
                    };
                    match written {
                        Ok(()) => acknowledged = token,
                        Err(_) => break,
                    }
                }
            }
            acknowledged
        })
    };
    let reader = {
        let (stop, addr) = (stop.clone(), addrs[1]);
        tokio::spawn(async move {
            let (mut torn, mut transactional_reads) = (Vec::new(), 0);
            while !stop.is_cancelled() {
                let Some(mut c) = seshat_tests::workload::connect(addr).await else { continue };
                let mut in_transaction = false;
                loop {
                    in_transaction = !in_transaction;
                    let read = if in_transaction {
                        let mut transaction = redis::pipe();
                        transaction.atomic().get("{t}0").get("{t}1").get("{t}2");
                        transaction.query_async::<Vec<Option<String>>>(&mut c).await
                    } else {
                        redis::cmd("MGET").arg("{t}0").arg("{t}1").arg("{t}2").query_async(&mut c).await
                    };
                    let Ok(values) = read else { break };
                    transactional_reads += usize::from(in_transaction);
                    if values.iter().any(|v| *v != values[0]) {
                        torn.push(values);
                    }
                    if stop.is_cancelled() {
                        break;
                    }
                }
            }
            (torn, transactional_reads)
        })
    };
    sleep(Duration::from_millis(800)).await;
    let leader = cluster.leader(LEADER_WAIT).await.context("no leader")?;
    cluster.note(&format!("kill -9 leader node {} mid-stream", leader + 1));
    cluster.nodes[leader].kill9();
    sleep(Duration::from_millis(2500)).await;
    cluster.nodes[leader].restart()?;
    sleep(Duration::from_millis(800)).await;
    stop.cancel();
    let acknowledged = writer.await?;
    let (torn, transactional_reads) = reader.await?;
    assert!(torn.is_empty(), "partial multi-key writes seen: {torn:?}");
    assert!(transactional_reads > 0, "no read inside MULTI/EXEC succeeded");
    cluster.heal_and_check().await?;
    let mut c = cluster.nodes[0].patient_client(Duration::from_secs(5)).await?;
    let values: Vec<Option<String>> =
        redis::cmd("MGET").arg("{t}0").arg("{t}1").arg("{t}2").query_async(&mut c).await?;
    let last: u64 = values[0].as_deref().context("t0 written")?.parse()?;
    assert!(values.iter().all(|v| *v == values[0]), "final state torn: {values:?}");
    assert!(last >= acknowledged, "acknowledged write {acknowledged} lost, found {last}");
    Ok(())
}

/// libfaketime, from Debian's `faketime` package (`make deps` installs it).
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// The environment that runs a node `offset` off the real wall clock; its
/// monotonic clock stays true (tokio's timers hang otherwise).
fn skewed(offset: &'static str) -> [(&'static str, &'static str); 3] {
    [("LD_PRELOAD", LIBFAKETIME), ("FAKETIME", offset), ("FAKETIME_DONT_FAKE_MONOTONIC", "1")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wall_clock_30s_off_on_any_node_breaks_no_promise() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    anyhow::ensure!(std::path::Path::new(LIBFAKETIME).exists(), "{LIBFAKETIME} is missing: run `make deps`");
    let mut cluster = started("clock-skew", 12).await?;
    let leader = cluster.leader(LEADER_WAIT).await.context("no leader")?;
    cluster.note(&format!("restart leader node {} 30 s ahead", leader + 1));
    cluster.nodes[leader].restart_with_env(&skewed("+30s"))?;
    sleep(Duration::from_millis(1500)).await;
    // Make sure the skewed node leads for a while.
    if let Some(current) = cluster.leader(LEADER_WAIT).await.filter(|&l| l != leader) {
        cluster.note(&format!("kill -9 node {} so that the skewed node may lead", current + 1));
        cluster.nodes[current].kill9();
        sleep(Duration::from_millis(1500)).await;
        cluster.nodes[current].restart()?;
    }
    let behind_node = (leader + 1) % 3;
    cluster.note(&format!("restart node {} 30 s behind", behind_node + 1));
    cluster.nodes[behind_node].restart_with_env(&skewed("-30s"))?;
    sleep(Duration::from_millis(1500)).await;
    cluster.heal_and_check().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_changes_under_load_and_faults_stay_linearizable() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = started("membership", 13).await?;
    let leader = cluster.leader(LEADER_WAIT).await.context("no leader")?;
    let follower = (leader + 1) % 3;
    cluster.note(&format!("isolate node {} while node 4 joins", follower + 1));
    cluster.faults.isolate(follower as u64 + 1, &cluster.ids());
    // Joining through a follower: it forwards the request to the leader.
    let added = cluster.add_node((leader + 2) % 3).await?;
    let new_node = &cluster.nodes[added];
    let voter = seshat_tests::eventually(Duration::from_secs(30), || async {
        seshat_tests::info_field(new_node, "seshat_raft_role").await.as_deref() == Some("follower")
    })
    .await;
    assert!(voter, "node {} became a voter; log:\n{}", added + 1, new_node.log());
    cluster.faults.heal_all();
    cluster.note("healed");
    let leader = cluster.leader(LEADER_WAIT).await.context("no leader")?;
    cluster.remove_node(leader).await?;
    let remaining = cluster.leader(LEADER_WAIT).await.context("no leader after removing the leader")?;
    cluster.time_to_write(remaining, Duration::from_secs(10)).await?;
    sleep(Duration::from_millis(800)).await;
    cluster.heal_and_check().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_lose_the_leader_and_another_to_a_partition_and_carry_on() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    // Every shard on all five nodes, so that it survives losing two.
    let mut cluster = started_with(ChaosCluster::start("five-nodes", 5, &["--replicas", "5"]).await?, 14).await?;
    let leader = cluster.leader(LEADER_WAIT).await.context("no leader")?;
    let other = (leader + 1) % 5;
    let minority = [leader as u64 + 1, other as u64 + 1];
    cluster.note(&format!("partition nodes {minority:?} from the other three"));
    for id in minority {
        for peer in cluster.ids().into_iter().filter(|peer| !minority.contains(peer)) {
            cluster.faults.set_both(id, peer, Some(Fault::Drop));
        }
    }
    let majority_node = (leader + 2) % 5;
    let failover = cluster.time_to_write(majority_node, Duration::from_secs(10)).await?;
    cluster.note(&format!("first write through node {} after {failover:?}", majority_node + 1));
    sleep(Duration::from_millis(800)).await;
    cluster.heal_and_check().await?;
    Ok(())
}

/// The checks can fail: reads that opt out of linearizability (`READONLY`)
/// on a partitioned node return stale values, the checker says so, and the
/// run leaves a report. One shard, so that the node cut off is sure not to
/// lead the key's shard (with several, the leader balancer may hand any
/// shard to any node).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_reads_from_a_partitioned_node_are_caught_and_reported() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = ChaosCluster::start("stale-reads", 3, &["--shards", "1"]).await?;
    let leader = cluster.leader(LEADER_WAIT).await.context("no leader")?;
    let cut_off = (leader + 1) % 3;
    let writer = seshat_tests::workload::connect(cluster.resp_addrs()[leader]).await.context("connect")?;
    let mut reader = seshat_tests::workload::connect(cluster.resp_addrs()[cut_off]).await.context("connect")?;
    let () = redis::cmd("READONLY").query_async(&mut reader).await?;
    cluster.recorder.run(0, "r0", Op::Set(b"before".to_vec()), &mut Some(writer.clone())).await;
    seshat_tests::eventually(Duration::from_secs(5), || {
        let mut reader = reader.clone();
        async move { redis::cmd("GET").arg("r0").query_async::<Option<String>>(&mut reader).await.ok().flatten().is_some() }
    })
    .await;
    cluster.faults.isolate(cut_off as u64 + 1, &cluster.ids());
    cluster.recorder.run(0, "r0", Op::Set(b"after".to_vec()), &mut Some(writer.clone())).await;
    cluster.recorder.run(1, "r0", Op::Get, &mut Some(reader.clone())).await;
    let history = cluster.recorder.history();
    assert_eq!(history[1].reply, Reply::Ok, "the majority took the write");
    assert_eq!(history[2].reply, Reply::Value(Some(b"before".to_vec())), "the cut-off node answered from its copy");
    let violation = linearizability::check(&history).expect_err("a stale read is not linearizable");
    assert!(violation.explanation.contains("GET -> \"before\""), "{violation}");
    let failed = cluster.heal_and_check().await.expect_err("the run's checks fail");
    let message = format!("{failed:#}");
    let report = message.lines().find_map(|line| line.strip_prefix("report: ")).context("a report path")?;
    let report = std::path::Path::new(report);
    for file in ["history.txt", "problem.txt", "schedule.txt", "node1.log", "node1-data"] {
        assert!(report.join(file).exists(), "{} has {file}", report.display());
    }
    std::fs::remove_dir_all(report)?;
    Ok(())
}

/// Starts a 3-node cluster with the bank's tables (created through the
/// leader) and its clients running: 6 transfer clients and 2 readers over
/// every node. Returns the cluster, the bank, its nodes' ports, and what
/// stops and awaits the clients.
async fn bank_started(name: &str, seed: u64) -> Result<(ChaosCluster, Bank, Vec<u16>, BankClients)> {
    let cluster = ChaosCluster::start(name, 3, &[]).await?;
    let leader = cluster.leader(LEADER_WAIT).await.context("no leader at start")?;
    let bank = Bank::create(&cluster.nodes[leader].pg().await?).await?;
    let ports: Vec<u16> = cluster.nodes.iter().map(|node| node.pg_port()).collect();
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(bank.clone().run(ports.clone(), 6, 2, seed, stop.clone()));
    cluster.note(&format!("bank workload: 6 transfer clients, 2 readers, seed {seed}"));
    sleep(Duration::from_millis(800)).await;
    Ok((cluster, bank, ports, BankClients { stop, running }))
}

struct BankClients {
    stop: tokio_util::sync::CancellationToken,
    running: tokio::task::JoinHandle<()>,
}

/// Stops the bank's clients, heals and restarts the cluster (running its
/// own checks), then the bank's: the number of committed transfers checked.
async fn bank_checked(cluster: &mut ChaosCluster, bank: &Bank, ports: &[u16], clients: BankClients) -> Result<usize> {
    clients.stop.cancel();
    let _ = clients.running.await;
    cluster.heal_and_check().await?;
    let (committed, failed, unknown, reads) = bank.counts();
    let checked = bank.check_through(ports).await?;
    println!(
        "bank: {committed} transfers acknowledged, {failed} failed, {unknown} unknown; {checked} committed \
         transfers serializable, {reads} full reads consistent"
    );
    anyhow::ensure!(committed > 0 && reads > 0, "the bank made no progress");
    Ok(checked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bank_keeps_every_promise_when_its_leader_is_killed() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let (mut cluster, bank, ports, clients) = bank_started("bank-leader-killed", 1).await?;
    let leader = cluster.leader(LEADER_WAIT).await.context("no leader")?;
    cluster.note(&format!("kill -9 leader node {}", leader + 1));
    cluster.nodes[leader].kill9();
    sleep(Duration::from_millis(2000)).await;
    cluster.note(&format!("restart node {}", leader + 1));
    cluster.nodes[leader].restart()?;
    sleep(Duration::from_millis(1500)).await;
    bank_checked(&mut cluster, &bank, &ports, clients).await?;
    Ok(())
}

/// The bank under randomized fault schedules, as `randomized_nemesis`:
/// `SESHAT_CHAOS_SECONDS` (default 8: one short schedule in `make test`;
/// `make chaos` runs both for minutes) from seed `SESHAT_CHAOS_SEED`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn randomized_nemesis_sql_bank() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let budget = Duration::from_secs(env("SESHAT_CHAOS_SECONDS", 8));
    let first_seed = env("SESHAT_CHAOS_SEED", 1);
    let schedule = Duration::from_secs(6);
    let started = std::time::Instant::now();
    let (mut schedules, mut transfers, mut anomalies) = (0, 0, Vec::new());
    let mut seed = first_seed;
    while started.elapsed() + schedule < budget || schedules == 0 {
        let (mut cluster, bank, ports, clients) = bank_started(&format!("bank-nemesis-{seed}"), seed).await?;
        let injected = seshat_tests::chaos::nemesis(&mut cluster, seed, schedule)
            .await
            .with_context(|| format!("nemesis seed {seed}"))?;
        match bank_checked(&mut cluster, &bank, &ports, clients).await {
            Ok(checked) => {
                println!("bank schedule seed={seed}: {injected} faults, {checked} transfers serializable");
                transfers += checked;
            }
            Err(anomaly) => {
                println!("bank schedule seed={seed}: {injected} faults, ANOMALY: {anomaly:#}");
                anomalies.push(format!("seed {seed}: {anomaly:#}"));
            }
        }
        schedules += 1;
        seed += 1;
    }
    println!(
        "bank nemesis summary: {schedules} schedules, {transfers} committed transfers checked, {} anomalies",
        anomalies.len()
    );
    assert!(anomalies.is_empty(), "anomalies:\n{}", anomalies.join("\n"));
    Ok(())
}
