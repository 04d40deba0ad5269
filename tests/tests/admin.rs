//! Administration commands against the built binary with real clients:
//! CONFIG REWRITE and the `[redis]` table, CONFIG `timeout`, CLIENT REPLY,
//! CLIENT PAUSE, MONITOR, SLOWLOG, LATENCY, SHUTDOWN; and a client test
//! suite's use of blocking commands (many deferred clients woken by
//! transactions), under a time limit that fails instead of hanging.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use seshat_tests::{eventually, info_field, text as status, Node, Raw};

#[tokio::test]
async fn config_rewrite_writes_the_config_file_and_a_restart_applies_it() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("seshat.toml");
    std::fs::write(&path, "# operator's notes\nlog-level = \"warn\"\n")?;
    let mut node = Node::start(&["--config", path.to_str().context("utf-8 path")?])?;
    let mut c = node.client().await?;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("hash-max-ziplist-entries")
        .arg("7")
        .arg("maxclients")
        .arg("99")
        .query_async(&mut c)
        .await?;
    let _: () = redis::cmd("CONFIG").arg("REWRITE").query_async(&mut c).await?;
    let text = std::fs::read_to_string(&path)?;
    assert!(text.starts_with("# operator's notes\nlog-level = \"warn\"\n"), "{text}");
    assert!(text.contains("maxclients = 99"), "{text}");
    assert!(text.contains("[redis]\nhash-max-listpack-entries = \"7\""), "{text}");
    node.restart()?;
    let mut c = node.client().await?;
    let got: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("hash-max-ziplist-entries").query_async(&mut c).await?;
    assert_eq!(got, ["hash-max-ziplist-entries", "7"]);
    let got: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("maxclients").query_async(&mut c).await?;
    assert_eq!(got, ["maxclients", "99"]);

    // An invalid parameter in the file stops the node at start, clearly.
    std::fs::write(&path, "[redis]\ntimeout = \"-1\"\n")?;
    drop(c);
    node.kill9();
    let (exit, stderr) = node.run_to_exit(&["--config", path.to_str().context("utf-8 path")?])?;
    assert!(!exit.success());
    assert!(stderr.contains("invalid [redis] parameter") && stderr.contains("timeout"), "{stderr}");
    Ok(())
}

#[tokio::test]
async fn config_rewrite_without_a_config_file_is_refused() -> Result<()> {
    let node = Node::start(&[])?;
    let mut raw = node.raw().await?;
    assert!(status(&raw.call(&["CONFIG", "REWRITE"]).await?).contains("running without a config file"));
    Ok(())
}

#[tokio::test]
async fn config_timeout_closes_idle_clients_but_not_subscribers() -> Result<()> {
    let node = Node::start(&[])?;
    node.raw().await?.call(&["CONFIG", "SET", "timeout", "1"]).await?;
    let mut idle = node.raw().await?;
    idle.call(&["PING"]).await?;
    let mut subscriber = node.raw().await?;
    subscriber.call(&["SUBSCRIBE", "news"]).await?;
    let started = Instant::now();
    assert!(idle.closed().await, "an idle client is closed after `timeout` seconds");
    assert!(started.elapsed() >= Duration::from_millis(900));
    // The admin connection was idle as long: a new one publishes.
    let mut publisher = node.raw().await?;
    publisher.call(&["PUBLISH", "news", "still here"]).await?;
    let message = status(&subscriber.read2().await?);
    assert!(message.contains("still here"), "{message}");
    Ok(())
}

#[tokio::test]
async fn client_reply_off_and_skip_withhold_replies_and_messages() -> Result<()> {
    let node = Node::start(&[])?;
    let mut raw = node.raw().await?;
    raw.send_command(&[b"CLIENT", b"REPLY", b"OFF"]).await?;
    raw.send_command(&[b"SET", b"k", b"v"]).await?;
    raw.send_command(&[b"CLIENT", b"REPLY", b"SKIP"]).await?;
    raw.send_command(&[b"GET", b"k"]).await?;
    raw.send_command(&[b"CLIENT", b"REPLY", b"ON"]).await?;
    assert_eq!(status(&raw.read2().await?), "OK", "only CLIENT REPLY ON answered");
    raw.send_command(&[b"CLIENT", b"REPLY", b"SKIP"]).await?;
    raw.send_command(&[b"GET", b"k"]).await?;
    raw.send_command(&[b"ECHO", b"after"]).await?;
    assert_eq!(status(&raw.read2().await?), "after", "SKIP withheld only the next reply");
    Ok(())
}

#[tokio::test]
async fn client_pause_write_holds_writes_and_lets_reads_through() -> Result<()> {
    let node = Node::start(&[])?;
    let mut admin = node.raw().await?;
    admin.call(&["SET", "k", "before"]).await?;
    admin.call(&["CLIENT", "PAUSE", "10000", "WRITE"]).await?;
    let mut writer = node.raw().await?;
    writer.send_command(&[b"SET", b"k", b"during"]).await?;
    let mut reader = node.raw().await?;
    assert_eq!(status(&reader.call(&["GET", "k"]).await?), "before", "reads pass a WRITE pause");
    assert!(writer.try_read2(Duration::from_millis(300)).await?.is_none(), "the write is held");
    admin.call(&["CLIENT", "UNPAUSE"]).await?;
    assert_eq!(status(&writer.read2().await?), "OK");
    assert_eq!(status(&reader.call(&["GET", "k"]).await?), "during");
    Ok(())
}

#[tokio::test]
async fn monitor_streams_other_clients_commands() -> Result<()> {
    let node = Node::start(&[])?;
    let mut monitor = node.raw().await?;
    assert_eq!(status(&monitor.call(&["MONITOR"]).await?), "OK");
    let mut client = node.raw().await?;
    client.call(&["SET", "watched key", "v\n1"]).await?;
    client.call(&["AUTH", "secret"]).await?;
    let line = status(&monitor.read2().await?);
    assert!(line.contains(r#"[0 127.0.0.1:"#) && line.contains(r#""SET" "watched key" "v\n1""#), "{line}");
    let line = status(&monitor.read2().await?);
    assert!(line.contains(r#""AUTH" "(redacted)""#), "{line}");
    Ok(())
}

#[tokio::test]
async fn slowlog_and_latency_record_what_took_long() -> Result<()> {
    let node = Node::start(&[])?;
    let mut c = node.raw().await?;
    c.call(&["CONFIG", "SET", "slowlog-log-slower-than", "0", "latency-monitor-threshold", "1"]).await?;
    c.call(&["SLOWLOG", "RESET"]).await?;
    c.call(&["SET", "slow", "value"]).await?;
    let entries = status(&c.call(&["SLOWLOG", "GET", "10"]).await?);
    assert!(entries.contains("SET slow value"), "{entries}");
    let len = status(&c.call(&["SLOWLOG", "LEN"]).await?);
    assert_ne!(len, "0");
    let histogram = status(&c.call(&["LATENCY", "HISTOGRAM", "set"]).await?);
    assert!(histogram.contains("calls"), "{histogram}");
    c.call(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"]).await?;
    c.call(&["SLOWLOG", "RESET"]).await?;
    c.call(&["SET", "fast", "value"]).await?;
    assert_eq!(status(&c.call(&["SLOWLOG", "LEN"]).await?), "0", "a negative threshold turns it off");
    Ok(())
}

#[tokio::test]
async fn shutdown_stops_the_node_cleanly_and_keeps_the_data() -> Result<()> {
    let mut node = Node::start(&[])?;
    let mut c = node.raw().await?;
    c.call(&["SET", "k", "v"]).await?;
    c.send_command(&[b"SHUTDOWN"]).await?;
    let exit = node.wait_exit(Duration::from_secs(20))?;
    assert_eq!(exit.code(), Some(0), "log:\n{}", node.log());
    node.restart()?;
    let mut c = node.raw().await?;
    assert_eq!(status(&c.call(&["GET", "k"]).await?), "v");
    Ok(())
}

/// Many deferred clients blocked at once, woken by transactions, as Redis
/// client test suites drive them; a hang fails the test instead of CI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_blocked_clients_are_woken_by_transactions_in_block_order() -> Result<()> {
    let node = Node::start(&[])?;
    tokio::time::timeout(Duration::from_secs(60), async {
        let mut clients = Vec::new();
        for i in 0..40 {
            let mut raw = Raw::connect(node.addr()).await?;
            raw.send_command(&[b"BLPOP", b"jobs", b"other", b"0"]).await?;
            // Each is queued before the next blocks: the order is known.
            let queued = i + 1;
            assert!(
                eventually(Duration::from_secs(10), || async {
                    info_field(&node, "blocked_clients").await.as_deref() == Some(queued.to_string().as_str())
                })
                .await
            );
            clients.push(raw);
        }
        let mut control = node.raw().await?;
        control.send(b"MULTI\r\n").await?;
        control.read2().await?;
        for batch in 0..4 {
            let values: Vec<String> = (0..10).map(|j| format!("job{}", batch * 10 + j)).collect();
            let mut args: Vec<&[u8]> = vec![b"RPUSH", b"jobs"];
            args.extend(values.iter().map(|v| v.as_bytes()));
            control.send_command(&args).await?;
            control.read2().await?;
        }
        control.send(b"EXEC\r\n").await?;
        control.read2().await?;
        for (i, client) in clients.iter_mut().enumerate() {
            assert_eq!(status(&client.read2().await?), format!("jobs job{i}"), "client {i}");
        }
        assert_eq!(status(&control.call(&["LLEN", "jobs"]).await?), "0");
        assert_eq!(info_field(&node, "blocked_clients").await.as_deref(), Some("0"));
        Ok::<_, anyhow::Error>(())
    })
    .await
    .context("blocked clients were not all served within 60 s")?
}

/// A blocked client that hangs up leaves the replicated queue, so a later
/// push is not served to it and lost.
#[tokio::test]
async fn a_blocked_client_that_disconnects_does_not_take_a_later_push() -> Result<()> {
    let node = Node::start(&[])?;
    let mut gone = Raw::connect(node.addr()).await?;
    gone.send_command(&[b"BLPOP", b"q", b"0"]).await?;
    assert!(
        eventually(Duration::from_secs(10), || async {
            info_field(&node, "blocked_clients_in_cluster").await.as_deref() == Some("1")
        })
        .await
    );
    drop(gone);
    assert!(
        eventually(Duration::from_secs(10), || async {
            info_field(&node, "blocked_clients_in_cluster").await.as_deref() == Some("0")
        })
        .await,
        "the hung-up client left the queue"
    );
    let mut c = node.raw().await?;
    c.call(&["RPUSH", "q", "job"]).await?;
    assert_eq!(status(&c.call(&["LPOP", "q"]).await?), "job", "the push stayed in the list");
    Ok(())
}
