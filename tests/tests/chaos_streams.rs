//! A stream consumer group and a Lua-scripted counter under a randomized
//! fault schedule (kill and restart, pause, isolation, one-way drops, slow
//! and held links, resets), next to the recorded key-value workload the
//! fault matrix checks.
//!
//! Producers on every node add entries carrying a unique token; consumers
//! on every node read the group with `>` and acknowledge what they get.
//! Replies lost to a fault leave outcomes unknown, so the checks after
//! healing are the ones that hold whatever was lost:
//! - every acknowledged XADD's token is in the stream, and no token is in
//!   it twice (a retried proposal never adds an entry twice);
//! - no entry was handed to two consumers by `>` (a retried XREADGROUP
//!   never delivers again);
//! - every entry up to the group's last delivered ID is either pending or
//!   was acknowledged by some XACK the consumers sent, and no entry whose
//!   XACK answered 1 is still pending;
//! - every replica holds the same stream and group;
//! - the scripted counter (one EVAL increments it and appends the call's
//!   token to a list) is atomic and exactly-once: the list holds every
//!   token whose EVAL answered and none twice, the counter equals the
//!   list's length, and no two answers gave the same count.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use redis::aio::MultiplexedConnection;
use redis::Value;
use seshat_tests::chaos::ChaosCluster;
use seshat_tests::workload::connect;
use tokio_util::sync::CancellationToken;

const KEY: &str = "{chaos}jobs";
const COUNTER: &str = "{chaos}counter";
const TOKENS: &str = "{chaos}tokens";
const SCRIPTED_COUNTER: &str = "local n = redis.call('INCR', KEYS[1]) redis.call('RPUSH', KEYS[2], ARGV[1]) return n";

/// What the stream clients saw.
#[derive(Default)]
struct Seen {
    /// Tokens whose XADD answered an ID.
    added: BTreeSet<u64>,
    /// `(entry ID, consumer)` for every entry a `>` read handed out.
    delivered: Vec<(String, String)>,
    /// IDs some XACK was sent for, and those whose XACK answered 1.
    ack_sent: BTreeSet<String>,
    acked: BTreeSet<String>,
    /// The scripted counter: `(token, count)` of every EVAL that answered.
    counted: Vec<(u64, i64)>,
}

fn bulk(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    }
}

/// The `(id, fields)` entries of an XREADGROUP/XRANGE reply's entry list.
fn entry_list(value: &Value) -> Vec<(String, Vec<String>)> {
    let Value::Array(entries) = value else { return Vec::new() };
    entries
        .iter()
        .filter_map(|entry| match entry {
            Value::Array(pair) if pair.len() == 2 => {
                let fields = match &pair[1] {
                    Value::Array(fields) => fields.iter().filter_map(bulk).collect(),
                    _ => Vec::new(),
                };
                Some((bulk(&pair[0])?, fields))
            }
            _ => None,
        })
        .collect()
}

async fn produce(addr: SocketAddr, first: u64, step: u64, seen: Arc<Mutex<Seen>>, stop: CancellationToken) {
    let mut token = first;
    while !stop.is_cancelled() {
        let Some(mut c) = connect(addr).await else { continue };
        while !stop.is_cancelled() {
            let added: redis::RedisResult<String> =
                redis::cmd("XADD").arg(KEY).arg("*").arg("token").arg(token).query_async(&mut c).await;
            let ok = added.is_ok();
            if ok {
                seen.lock().unwrap().added.insert(token);
            }
            token += step;
            if !ok {
                break;
            }
        }
    }
}

async fn count(addr: SocketAddr, first: u64, step: u64, seen: Arc<Mutex<Seen>>, stop: CancellationToken) {
    let mut token = first;
    while !stop.is_cancelled() {
        let Some(mut c) = connect(addr).await else { continue };
        while !stop.is_cancelled() {
            let counted: redis::RedisResult<i64> = redis::cmd("EVAL")
                .arg(SCRIPTED_COUNTER)
                .arg(2)
                .arg(COUNTER)
                .arg(TOKENS)
                .arg(token)
                .query_async(&mut c)
                .await;
            let ok = counted.is_ok();
            if let Ok(n) = counted {
                seen.lock().unwrap().counted.push((token, n));
            }
            token += step;
            if !ok {
                break;
            }
        }
    }
}

async fn read_and_ack(c: &mut MultiplexedConnection, name: &str, seen: &Mutex<Seen>) -> redis::RedisResult<()> {
    let reply: Value = redis::cmd("XREADGROUP")
        .arg(&["GROUP", "g", name, "COUNT", "5", "BLOCK", "200", "STREAMS", KEY, ">"])
        .query_async(c)
        .await?;
    let Value::Array(streams) = reply else { return Ok(()) };
    let mut ids = Vec::new();
    for stream in &streams {
        if let Value::Array(pair) = stream {
            ids.extend(entry_list(&pair[1]).into_iter().map(|(id, _)| id));
        }
    }
    for id in ids {
        seen.lock().unwrap().delivered.push((id.clone(), name.to_string()));
        seen.lock().unwrap().ack_sent.insert(id.clone());
        let acked: i64 = redis::cmd("XACK").arg(KEY).arg("g").arg(&id).query_async(c).await?;
        if acked == 1 {
            seen.lock().unwrap().acked.insert(id);
        }
    }
    Ok(())
}

async fn consume(addr: SocketAddr, name: String, seen: Arc<Mutex<Seen>>, stop: CancellationToken) {
    while !stop.is_cancelled() {
        let Some(mut c) = connect(addr).await else { continue };
        while !stop.is_cancelled() {
            if read_and_ack(&mut c, &name, &seen).await.is_err() {
                break;
            }
        }
    }
}

/// A linearizable command through whichever node answers, retried.
async fn settled<T: redis::FromRedisValue>(cluster: &ChaosCluster, command: &redis::Cmd) -> Result<T> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        for addr in cluster.resp_addrs() {
            if let Some(mut c) = connect(addr).await {
                if let Ok(value) = command.query_async(&mut c).await {
                    return Ok(value);
                }
            }
        }
        ensure!(std::time::Instant::now() < deadline, "no node answered {command:?} after healing");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_group_under_faults_loses_and_doubles_nothing() -> Result<()> {
    let _exclusive = seshat_tests::one_cluster_at_a_time().await;
    let seed = std::env::var("SESHAT_CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut cluster = ChaosCluster::start("stream-group", 3, &[]).await?;
    cluster.leader(Duration::from_secs(10)).await.context("no leader at start")?;
    let create = redis::cmd("XGROUP").arg(&["CREATE", KEY, "g", "$", "MKSTREAM"]).clone();
    let _: String = settled(&cluster, &create).await?;
    cluster.start_workload(3, seed);

    let (seen, stop) = (Arc::new(Mutex::new(Seen::default())), CancellationToken::new());
    let addrs = cluster.resp_addrs();
    let mut clients = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        clients.push(tokio::spawn(produce(*addr, i as u64, 3, seen.clone(), stop.clone())));
        clients.push(tokio::spawn(consume(*addr, format!("c{i}"), seen.clone(), stop.clone())));
        clients.push(tokio::spawn(count(*addr, i as u64, 3, seen.clone(), stop.clone())));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let faults = seshat_tests::chaos::nemesis(&mut cluster, seed, Duration::from_secs(8)).await?;
    stop.cancel();
    for client in clients {
        client.await?;
    }
    let checked = cluster.heal_and_check().await?;

    let range: Value = settled(&cluster, redis::cmd("XRANGE").arg(KEY).arg("-").arg("+")).await?;
    let stream = entry_list(&range);
    let mut tokens = BTreeMap::new();
    for (id, fields) in &stream {
        let token: u64 = fields.get(1).context("a token field")?.parse()?;
        ensure!(tokens.insert(token, id.clone()).is_none(), "token {token} added twice");
    }
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let lost: Vec<_> = seen.added.iter().filter(|t| !tokens.contains_key(t)).collect();
    ensure!(lost.is_empty(), "acknowledged XADDs lost: {lost:?}");

    let mut handed = BTreeMap::new();
    for (id, consumer) in &seen.delivered {
        if let Some(first) = handed.insert(id.clone(), consumer.clone()) {
            anyhow::bail!("entry {id} delivered by `>` twice: to {first} and {consumer}");
        }
    }
    let pending: Vec<Value> = settled(&cluster, redis::cmd("XPENDING").arg(&[KEY, "g", "-", "+", "1000000"])).await?;
    let pending: BTreeSet<String> = pending
        .iter()
        .filter_map(|p| match p {
            Value::Array(fields) => fields.first().and_then(bulk),
            _ => None,
        })
        .collect();
    let info: Vec<Value> = settled(&cluster, redis::cmd("XINFO").arg(&["GROUPS", KEY])).await?;
    let Some(Value::Array(group)) = info.first() else { anyhow::bail!("XINFO GROUPS answered {info:?}") };
    let fields: Vec<String> = group.iter().map(|v| bulk(v).unwrap_or_else(|| format!("{v:?}"))).collect();
    let last_delivered = fields.iter().position(|f| f == "last-delivered-id").map(|i| fields[i + 1].clone());
    let last_delivered = last_delivered.context("last-delivered-id")?;
    let order = |id: &str| -> (u64, u64) {
        let (ms, seq) = id.split_once('-').expect("an ID");
        (ms.parse().expect("ms"), seq.parse().expect("seq"))
    };
    for (id, _) in stream.iter().filter(|(id, _)| order(id) <= order(&last_delivered)) {
        ensure!(
            pending.contains(id) || seen.ack_sent.contains(id),
            "entry {id} was delivered to the group but is neither pending nor acknowledged"
        );
    }
    let still: Vec<_> = seen.acked.intersection(&pending).collect();
    ensure!(still.is_empty(), "entries acknowledged (XACK answered 1) but still pending: {still:?}");

    // The scripted counter: atomic, and every answered call counted once.
    let listed: Vec<u64> = settled(&cluster, redis::cmd("LRANGE").arg(TOKENS).arg(0).arg(-1)).await?;
    let counter: Option<i64> = settled(&cluster, redis::cmd("GET").arg(COUNTER)).await?;
    ensure!(counter.unwrap_or(0) == listed.len() as i64, "counter {counter:?} but {} tokens listed", listed.len());
    let listed_set: BTreeSet<u64> = listed.iter().copied().collect();
    ensure!(listed_set.len() == listed.len(), "a scripted call ran twice");
    let missing: Vec<_> = seen.counted.iter().filter(|(token, _)| !listed_set.contains(token)).collect();
    ensure!(missing.is_empty(), "answered scripted calls lost: {missing:?}");
    let counts: BTreeSet<i64> = seen.counted.iter().map(|(_, n)| *n).collect();
    ensure!(counts.len() == seen.counted.len(), "two scripted calls answered the same count");

    // A proposal a client gave up on may still land late: the replicas
    // must agree once nothing more arrives.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut views = BTreeSet::new();
        for node in &cluster.nodes {
            let mut c = node.client().await?;
            let () = redis::cmd("READONLY").query_async(&mut c).await?;
            let range: Value = redis::cmd("XRANGE").arg(KEY).arg("-").arg("+").query_async(&mut c).await?;
            let pending: Value = redis::cmd("XPENDING").arg(&[KEY, "g"]).query_async(&mut c).await?;
            let tokens: Value = redis::cmd("LRANGE").arg(TOKENS).arg(0).arg(-1).query_async(&mut c).await?;
            views.insert(format!("{range:?} {pending:?} {tokens:?}"));
        }
        if views.len() == 1 {
            break;
        }
        ensure!(std::time::Instant::now() < deadline, "replicas hold different streams or groups");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "stream group: {faults} faults, {} entries ({} acknowledged adds), {} deliveries, {} acknowledged, {} pending; \
         scripted counter: {} calls ran, {} answered; {checked} key-value operations linearizable",
        stream.len(),
        seen.added.len(),
        seen.delivered.len(),
        seen.acked.len(),
        pending.len(),
        listed.len(),
        seen.counted.len()
    );
    ensure!(!seen.added.is_empty() && !seen.acked.is_empty(), "the stream clients made no progress");
    ensure!(!seen.counted.is_empty(), "the scripted counter made no progress");
    Ok(())
}
