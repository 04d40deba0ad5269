//! Streams on a 3-node cluster: producers add entries with server-chosen
//! IDs through every node while consumers of one group, blocked in
//! XREADGROUP on other nodes, take and acknowledge them, and an XREAD
//! reader follows along. Every entry is delivered to exactly one consumer,
//! nothing stays pending, the reader saw every entry in order, and every
//! replica holds the same stream and group. A restarted node keeps them.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use redis_protocol::resp2::types::OwnedFrame as Frame2;
use seshat_tests::{text, Cluster, Raw, FAST};

const ENTRIES: usize = 300;

/// The `(id, value of field n)` pairs of an XREAD/XREADGROUP reply (nil:
/// none).
fn entries(reply: &Frame2) -> Result<Vec<(String, String)>> {
    let Frame2::Array(streams) = reply else { return Ok(Vec::new()) };
    let mut found = Vec::new();
    for stream in streams {
        let Frame2::Array(pair) = stream else { bail!("a stream's reply is {stream:?}") };
        let Some(Frame2::Array(items)) = pair.get(1) else { bail!("a stream's entries are {pair:?}") };
        for item in items {
            let Frame2::Array(entry) = item else { bail!("an entry is {item:?}") };
            let Some(Frame2::Array(fields)) = entry.get(1) else { bail!("an entry's fields are {entry:?}") };
            found.push((text(&entry[0]), text(&fields[1])));
        }
    }
    Ok(found)
}

/// A consumer of group `g`: blocks for new entries, acknowledges each,
/// until `taken` holds every entry or the deadline passes.
async fn consume(mut raw: Raw, name: String, taken: Arc<Mutex<Vec<(String, String)>>>) -> Result<usize> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut mine = 0;
    while taken.lock().unwrap().len() < ENTRIES && Instant::now() < deadline {
        let reply = raw
            .call(&["XREADGROUP", "GROUP", "g", &name, "COUNT", "7", "BLOCK", "1000", "STREAMS", "{s}jobs", ">"])
            .await?;
        for (id, value) in entries(&reply)? {
            let acked = raw.call(&["XACK", "{s}jobs", "g", &id]).await?;
            if acked != Frame2::Integer(1) {
                bail!("XACK of {id} answered {acked:?}");
            }
            taken.lock().unwrap().push((id, value));
            mine += 1;
        }
    }
    Ok(mine)
}

/// An XREAD follower: reads everything above the last ID it saw.
async fn follow(mut raw: Raw) -> Result<Vec<(String, String)>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut seen, mut last) = (Vec::new(), "0-0".to_string());
    while seen.len() < ENTRIES && Instant::now() < deadline {
        let reply = raw.call(&["XREAD", "COUNT", "50", "BLOCK", "1000", "STREAMS", "{s}jobs", &last]).await?;
        for entry in entries(&reply)? {
            last = entry.0.clone();
            seen.push(entry);
        }
    }
    Ok(seen)
}

/// `ms-seq` as a pair, for ordering.
fn id_order(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').expect("an ID");
    (ms.parse().expect("ms"), seq.parse().expect("seq"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_on_a_cluster_delivers_every_entry_once_and_replicas_agree() -> Result<()> {
    let _exclusive = seshat_tests::one_cluster_at_a_time().await;
    let mut cluster = Cluster::start(3, FAST)?;
    let mut control = Vec::new();
    for node in &cluster.nodes {
        node.patient_client(Duration::from_secs(10)).await?;
        control.push(node.raw().await?);
    }
    assert_eq!(text(&control[0].call(&["XGROUP", "CREATE", "{s}jobs", "g", "$", "MKSTREAM"]).await?), "OK");

    let taken = Arc::new(Mutex::new(Vec::new()));
    let mut consumers = Vec::new();
    for (i, node) in [1, 2, 2].into_iter().enumerate() {
        let raw = cluster.nodes[node].raw().await?;
        consumers.push(tokio::spawn(consume(raw, format!("worker{i}"), taken.clone())));
    }
    let follower = tokio::spawn(follow(cluster.nodes[0].raw().await?));

    // Producers on every node, each with its own numbers.
    let mut producers = Vec::new();
    for (n, node) in cluster.nodes.iter().enumerate() {
        let mut raw = node.raw().await?;
        producers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in (n..ENTRIES).step_by(3) {
                let value = i.to_string();
                ids.push(text(&raw.call(&["XADD", "{s}jobs", "*", "n", &value]).await?));
            }
            anyhow::Ok(ids)
        }));
    }
    let mut added = Vec::new();
    for producer in producers {
        added.extend(producer.await??);
    }
    let mut per_consumer = Vec::new();
    for consumer in consumers {
        per_consumer.push(consumer.await??);
    }
    let followed = follower.await??;

    let taken = taken.lock().unwrap().clone();
    assert_eq!(taken.len(), ENTRIES, "each entry delivered once: {per_consumer:?}");
    let taken_ids: BTreeSet<&str> = taken.iter().map(|(id, _)| id.as_str()).collect();
    let added_ids: BTreeSet<&str> = added.iter().map(String::as_str).collect();
    assert_eq!(taken_ids, added_ids, "the group got exactly the entries added");
    let values: BTreeSet<usize> = taken.iter().map(|(_, v)| v.parse().unwrap()).collect();
    assert_eq!(values, (0..ENTRIES).collect());
    assert!(per_consumer.iter().filter(|n| **n > 0).count() >= 2, "work spread over consumers: {per_consumer:?}");
    assert_eq!(followed.len(), ENTRIES, "the XREAD follower saw every entry");
    assert!(followed.windows(2).all(|w| id_order(&w[0].0) < id_order(&w[1].0)), "in ID order");

    // Every replica holds the same stream and group state.
    let mut views = Vec::new();
    for raw in &mut control {
        let range = text(&raw.call(&["XRANGE", "{s}jobs", "-", "+"]).await?);
        let groups = text(&raw.call(&["XINFO", "GROUPS", "{s}jobs"]).await?);
        views.push((range, groups));
    }
    assert!(views.iter().all(|view| *view == views[0]), "replicas disagree");
    let summary = text(&control[2].call(&["XPENDING", "{s}jobs", "g"]).await?);
    assert_eq!(summary, "0 (nil) (nil) (nil)");
    assert!(views[0].1.contains(&format!("entries-read {ENTRIES} lag 0")), "{}", views[0].1);

    // A restarted node still has the stream and its group.
    cluster.nodes[2].kill9();
    cluster.nodes[2].restart()?;
    cluster.nodes[2].patient_client(Duration::from_secs(20)).await?;
    let mut raw = cluster.nodes[2].raw().await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let groups = text(&raw.call(&["XINFO", "GROUPS", "{s}jobs"]).await?);
        if groups == views[0].1 {
            break;
        }
        if Instant::now() > deadline {
            bail!("after a restart: {groups}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(text(&raw.call(&["XLEN", "{s}jobs"]).await?), ENTRIES.to_string());
    Ok(())
}
