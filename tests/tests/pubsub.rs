//! Pub/sub end to end: subscribed mode, patterns and introspection checked
//! frame by frame against a real redis-server, then messages published on
//! one node of a cluster reaching subscribers on every node.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use redis_protocol::resp2::types::OwnedFrame as Frame2;
use redis_protocol::resp3::types::OwnedFrame as Frame3;
use seshat_tests::{Cluster, Node, Raw, RedisServer};

async fn send(raw: &mut Raw, args: &[&str]) -> Result<()> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    raw.send_command(&args).await
}

/// A subscriber and a publisher session on the server at `addr`; returns
/// every frame each received, in order.
async fn session(addr: SocketAddr) -> Result<Vec<String>> {
    let mut subscriber = Raw::connect(addr).await?;
    let mut publisher = Raw::connect(addr).await?;
    let mut seen = Vec::new();
    let mut expect = |frame: Frame2| seen.push(format!("{frame:?}"));
    send(&mut subscriber, &["SUBSCRIBE", "news", "sport"]).await?;
    expect(subscriber.read2().await?);
    expect(subscriber.read2().await?);
    expect(publisher.call(&["PUBLISH", "news", "hello"]).await?);
    expect(subscriber.read2().await?);
    send(&mut subscriber, &["PSUBSCRIBE", "n*"]).await?;
    expect(subscriber.read2().await?);
    expect(publisher.call(&["PUBLISH", "news", "twice"]).await?);
    expect(subscriber.read2().await?);
    expect(subscriber.read2().await?);
    expect(publisher.call(&["PUBLISH", "nobody", "x"]).await?);
    expect(subscriber.read2().await?);
    expect(publisher.call(&["PUBLISH", "empty", "x"]).await?);
    // Subscribed mode: only the pub/sub commands, PING, QUIT and RESET.
    expect(subscriber.call(&["GET", "k"]).await?);
    expect(subscriber.call(&["PING"]).await?);
    expect(subscriber.call(&["PING", "hi"]).await?);
    expect(publisher.call(&["PUBSUB", "NUMSUB", "news", "sport", "none"]).await?);
    expect(publisher.call(&["PUBSUB", "NUMPAT"]).await?);
    // The order of PUBSUB CHANNELS is unspecified: compare it sorted.
    let channels = match publisher.call(&["PUBSUB", "CHANNELS"]).await? {
        Frame2::Array(mut channels) => {
            channels.sort_by_key(|c| format!("{c:?}"));
            Frame2::Array(channels)
        }
        other => other,
    };
    expect(channels);
    expect(publisher.call(&["PUBSUB", "CHANNELS", "s*"]).await?);
    send(&mut subscriber, &["UNSUBSCRIBE", "news"]).await?;
    expect(subscriber.read2().await?);
    send(&mut subscriber, &["PUNSUBSCRIBE"]).await?;
    expect(subscriber.read2().await?);
    send(&mut subscriber, &["UNSUBSCRIBE"]).await?;
    expect(subscriber.read2().await?);
    send(&mut subscriber, &["UNSUBSCRIBE"]).await?;
    expect(subscriber.read2().await?);
    // Out of subscribed mode: everything runs again.
    expect(subscriber.call(&["PING"]).await?);
    expect(publisher.call(&["PUBLISH", "news", "gone"]).await?);
    expect(publisher.call(&["MULTI"]).await?);
    expect(publisher.call(&["PUBLISH", "news", "x"]).await?);
    expect(publisher.call(&["EXEC"]).await?);
    Ok(seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribed_mode_patterns_and_introspection_match_redis() -> Result<()> {
    let reference = RedisServer::start().await?;
    let node = Node::start(&[])?;
    let expected = session(reference.addr).await?;
    let got = session(node.addr()).await?;
    // Inside MULTI, Seshat refuses PUBLISH (compatibility.md); Redis
    // queues it. Everything before is the same frame for frame.
    let (same, differing) = got.split_at(got.len() - 2);
    assert_eq!(same, &expected[..expected.len() - 2]);
    assert_eq!(
        differing,
        [
            "Error(\"ERR Command not allowed inside a transaction\")",
            "Error(\"EXECABORT Transaction discarded because of previous errors.\")"
        ]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp3_connections_get_push_frames_and_may_run_any_command() -> Result<()> {
    let node = Node::start(&[])?;
    let mut subscriber = node.raw().await?;
    send(&mut subscriber, &["HELLO", "3"]).await?;
    subscriber.read3().await?;
    send(&mut subscriber, &["SUBSCRIBE", "news"]).await?;
    assert!(matches!(subscriber.read3().await?, Frame3::Push { .. }));
    send(&mut subscriber, &["SET", "k", "v"]).await?;
    assert!(matches!(subscriber.read3().await?, Frame3::SimpleString { .. }));
    let mut publisher = node.raw().await?;
    publisher.call(&["PUBLISH", "news", "hello"]).await?;
    match subscriber.read3().await? {
        Frame3::Push { data, .. } => assert_eq!(data.len(), 3, "{data:?}"),
        other => panic!("expected a push, got {other:?}"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_published_on_one_node_reaches_subscribers_on_every_node() -> Result<()> {
    let cluster = Cluster::start(3, &["--heartbeat-ms", "50", "--election-timeout-ms", "300"])?;
    cluster.leader(Duration::from_secs(15)).await.context("no leader")?;
    let mut subscribers = Vec::new();
    for node in &cluster.nodes {
        let mut subscriber = node.raw().await?;
        send(&mut subscriber, &["SUBSCRIBE", "events"]).await?;
        subscriber.read2().await?;
        subscribers.push(subscriber);
    }
    let mut pattern = cluster.nodes[2].raw().await?;
    send(&mut pattern, &["PSUBSCRIBE", "ev*"]).await?;
    pattern.read2().await?;
    let mut publisher = cluster.nodes[0].raw().await?;
    for i in 0..20 {
        let receivers = publisher.call(&["PUBLISH", "events", &format!("m{i}")]).await?;
        assert_eq!(receivers, Frame2::Integer(4), "every subscriber, on every node, counted");
    }
    // Each subscriber gets every message, in publication order.
    for subscriber in subscribers.iter_mut().chain([&mut pattern]) {
        for i in 0..20 {
            let frame = subscriber.read2().await?;
            let Frame2::Array(items) = frame else { bail!("expected a message, got {frame:?}") };
            assert_eq!(items.last(), Some(&Frame2::BulkString(format!("m{i}").into_bytes())));
        }
    }
    Ok(())
}
