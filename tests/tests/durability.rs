//! What survives: restarts, SIGTERM, kill -9; and what is refused at startup.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::AsyncCommands;
use seshat_tests::Node;

#[tokio::test]
async fn sigterm_exits_cleanly_and_data_survives_a_restart() -> anyhow::Result<()> {
    let mut node = Node::start(&[])?;
    {
        let mut c = node.client().await?;
        let _: () = c.set("k", "v").await?;
        let _: () = redis::cmd("SET").arg("ttl").arg("v").arg("EX").arg(1000).query_async(&mut c).await?;
        let _: () = redis::cmd("SELECT").arg(5).query_async(&mut c).await?;
    }
    let status = node.terminate()?;
    assert!(status.success(), "exit status {status:?}; log:\n{}", node.log());
    assert!(node.log().contains("shutdown complete"));
    node.restart()?;
    let mut c = node.client().await?;
    assert_eq!(c.get::<_, String>("k").await?, "v");
    let ttl: i64 = c.ttl("ttl").await?;
    assert!((990..=1000).contains(&ttl), "ttl {ttl}");
    Ok(())
}

/// Writers run flat out while the node is killed with SIGKILL; every write
/// that was acknowledged must be there after restart.
#[tokio::test]
async fn kill_9_loses_no_acknowledged_write() -> anyhow::Result<()> {
    kill_9_loses_nothing(&[], false).await
}

/// The same with three shards, each group snapshotting and purging its log
/// every few hundred entries while the writers run: every group recovers
/// its own log and state from the families they share.
#[tokio::test]
async fn kill_9_loses_no_acknowledged_write_of_any_shard() -> anyhow::Result<()> {
    let args = ["--shards", "3", "--snapshot-entries", "300", "--log-keep-entries", "20"];
    kill_9_loses_nothing(&args, true).await
}

async fn kill_9_loses_nothing(args: &[&str], snapshots: bool) -> anyhow::Result<()> {
    let mut node = Node::start(args)?;
    let acknowledged_sets = Arc::new(Mutex::new(Vec::new()));
    let acknowledged_incrs = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for writer in 0..8 {
        let mut c = node.client().await?;
        let (sets, incrs, stop) = (acknowledged_sets.clone(), acknowledged_incrs.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..100_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let key = format!("w{writer}:{i}");
                match c.set::<_, _, ()>(&key, i).await {
                    Ok(()) => sets.lock().unwrap().push(key),
                    Err(_) => break,
                }
                match c.incr::<_, _, i64>("counter", 1).await {
                    Ok(_) => {
                        incrs.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => break,
                }
            }
        }));
    }
    // Let a few hundred writes land, then pull the plug mid-stream.
    let enough = seshat_tests::eventually(std::time::Duration::from_secs(20), || {
        let sets = acknowledged_sets.clone();
        async move { sets.lock().unwrap().len() >= 400 }
    })
    .await;
    assert!(enough, "writers made no progress; log:\n{}", node.log());
    if snapshots {
        let built =
            seshat_tests::eventually(Duration::from_secs(20), || async { node.log().contains("built a snapshot") });
        assert!(built.await, "no group built a snapshot; log:\n{}", node.log());
    }
    node.kill9();
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await?;
    }
    let acknowledged_sets = acknowledged_sets.lock().unwrap().clone();
    let acknowledged_incrs = acknowledged_incrs.load(Ordering::SeqCst);

    node.restart()?;
    let mut c = node.client().await?;
    let mut missing = Vec::new();
    for chunk in acknowledged_sets.chunks(500) {
        let values: Vec<Option<String>> = c.mget(chunk).await?;
        missing.extend(chunk.iter().zip(values).filter(|(_, v)| v.is_none()).map(|(k, _)| k.clone()));
    }
    assert!(
        missing.is_empty(),
        "{} acknowledged SETs lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let counter: i64 = c.get("counter").await?;
    // Every acknowledged INCR applied; at most one unacknowledged one per writer too.
    assert!(
        counter >= acknowledged_incrs && counter <= acknowledged_incrs + 8,
        "counter {counter}, acknowledged {acknowledged_incrs}"
    );
    Ok(())
}

/// A failing log write stops the node with exit 1 and the reason, instead
/// of leaving it up without a working group; acknowledged data survives.
#[tokio::test]
async fn a_fatal_log_error_stops_the_node_and_loses_nothing() -> anyhow::Result<()> {
    let mut node = Node::start(&[])?;
    {
        let mut c = node.client().await?;
        let _: () = c.set("k", "v").await?;
    }
    node.restart_with_env(&[("SESHAT_FAILPOINTS", "log-append-error=1")])?;
    {
        let mut c = node.client().await?;
        let failed = c.set::<_, _, ()>("k2", "v2").await.expect_err("the write's log append fails");
        assert!(failed.to_string().contains("stopped after a fatal error"), "{failed}");
    }
    let status = node.wait_exit(Duration::from_secs(10))?;
    assert_eq!(status.code(), Some(1), "log:\n{}", node.log());
    assert!(node.log().contains("stopped after a fatal storage error"), "log:\n{}", node.log());
    node.restart_with_env(&[])?;
    let mut c = node.client().await?;
    assert_eq!(c.get::<_, String>("k").await?, "v");
    assert_eq!(c.get::<_, Option<String>>("k2").await?, None);
    Ok(())
}

#[tokio::test]
async fn a_second_process_on_the_same_data_dir_is_refused() -> anyhow::Result<()> {
    let node = Node::start(&[])?;
    let (status, stderr) = node.run_to_exit(&[])?;
    assert!(!status.success());
    assert!(stderr.contains("is in use by another process"), "{stderr}");
    Ok(())
}

/// Both services in either layout: kv and SQL data survive a restart, the
/// RocksDB instances are where the layout puts them, and a restart asking
/// for the other layout is refused without touching the data.
#[tokio::test]
async fn a_data_dir_keeps_its_storage_layout() -> anyhow::Result<()> {
    for (layout, other, instances) in [("isolated", "shared", &["kv", "sql"][..]), ("shared", "isolated", &["db"])] {
        let mut node = Node::start(&["--storage-layout", layout])?;
        {
            let mut c = node.client().await?;
            let _: () = c.set("k", "v").await?;
            let sql = node.pg().await?;
            sql.batch_execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'one')").await?;
        }
        for instance in instances {
            assert!(node.data_dir().join(instance).join("CURRENT").exists(), "{layout}: <data_dir>/{instance}");
        }
        for absent in ["db", "kv", "sql"].iter().filter(|d| !instances.contains(d)) {
            assert!(!node.data_dir().join(absent).exists(), "{layout}: no <data_dir>/{absent}");
        }
        node.terminate()?;
        let (status, stderr) = node.run_to_exit(&["--storage-layout", other])?;
        assert!(!status.success());
        let refusal = format!("was created with storage layout '{layout}', but '{other}' was requested");
        assert!(stderr.contains(&refusal), "{stderr}");
        node.restart()?;
        let mut c = node.client().await?;
        assert_eq!(c.get::<_, String>("k").await?, "v", "{layout}");
        let row = node.pg().await?.query_one("SELECT v FROM t WHERE id = 1", &[]).await?;
        assert_eq!(row.get::<_, &str>(0), "one", "{layout}");
    }
    Ok(())
}

#[tokio::test]
async fn a_foreign_directory_is_not_used_as_a_data_dir() -> anyhow::Result<()> {
    let mut node = Node::start(&[])?;
    node.terminate()?;
    let dir = node.data_dir();
    std::fs::remove_file(dir.join("SESHAT"))?;
    let (status, stderr) = node.run_to_exit(&[])?;
    assert!(!status.success());
    assert!(stderr.contains("is not a Seshat data dir"), "{stderr}");
    Ok(())
}

/// SIGTERM while a pipeline is in flight: commands already dispatched are
/// answered, the node exits 0, and every answered write is there afterwards.
#[tokio::test]
async fn sigterm_mid_pipeline_answers_in_flight_writes() -> anyhow::Result<()> {
    let mut node = Node::start(&[])?;
    let mut raw = node.raw().await?;
    let mut pipeline = Vec::new();
    for i in 0..20_000 {
        pipeline.extend(seshat_tests::encode_command(&[b"SET", format!("p:{i}").as_bytes(), b"v"]));
    }
    raw.send(&pipeline).await?;
    // Wait for the first reply so that the pipeline is being served.
    assert_eq!(raw.read2().await?, redis_protocol::resp2::types::OwnedFrame::SimpleString(b"OK".to_vec()));
    let status = node.terminate()?;
    assert!(status.success(), "exit status {status:?}; log:\n{}", node.log());
    let mut acknowledged = 1;
    while let Ok(reply) = raw.read2().await {
        assert_eq!(reply, redis_protocol::resp2::types::OwnedFrame::SimpleString(b"OK".to_vec()));
        acknowledged += 1;
    }
    node.restart()?;
    let mut c = node.client().await?;
    for i in 0..acknowledged {
        let value: Option<String> = c.get(format!("p:{i}")).await?;
        assert_eq!(value.as_deref(), Some("v"), "acknowledged write p:{i} of {acknowledged} lost");
    }
    Ok(())
}
