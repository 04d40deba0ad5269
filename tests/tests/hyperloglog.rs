//! HyperLogLog against a real redis-server: the same commands leave the
//! same bytes (sparse, dense after promotion, the cached cardinality a
//! PFCOUNT writes) and answer the same numbers and errors; a sketch moves
//! between them as a string; a 3-node cluster replicates it through the
//! log.

use std::time::Duration;

use anyhow::Result;
use redis_protocol::resp2::types::OwnedFrame as Frame2;
use seshat_tests::{Cluster, Node, Raw, RedisServer, FAST};

async fn call(raw: &mut Raw, args: &[&[u8]]) -> Result<Frame2> {
    raw.send_command(args).await?;
    raw.read2().await
}

/// Runs `script` on both servers and compares every reply.
async fn same_replies(redis: &mut Raw, seshat: &mut Raw, script: &[Vec<Vec<u8>>]) -> Result<()> {
    for command in script {
        let args: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
        let (want, have) = (call(redis, &args).await?, call(seshat, &args).await?);
        let text: Vec<String> = command.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        assert_eq!(have, want, "{}", text.join(" "));
    }
    Ok(())
}

fn command(words: &[&str]) -> Vec<Vec<u8>> {
    words.iter().map(|w| w.as_bytes().to_vec()).collect()
}

fn pfadd(key: &str, elements: std::ops::Range<u32>) -> Vec<Vec<u8>> {
    let mut args = command(&["PFADD", key]);
    args.extend(elements.map(|i| format!("user:{i}").into_bytes()));
    args
}

#[tokio::test]
async fn sketches_answer_and_store_what_redis_does() -> Result<()> {
    let reference = RedisServer::start().await?;
    let node = Node::start(&[])?;
    let mut redis = Raw::connect(reference.addr).await?;
    let mut seshat = node.raw().await?;
    let script = vec![
        command(&["PFADD", "visits"]),
        command(&["GET", "visits"]),
        command(&["OBJECT", "ENCODING", "visits"]),
        pfadd("visits", 0..100),
        command(&["GET", "visits"]),
        command(&["PFCOUNT", "visits"]),
        command(&["GET", "visits"]),
        pfadd("visits", 50..100),
        command(&["PFDEBUG", "ENCODING", "visits"]),
        command(&["PFDEBUG", "DECODE", "visits"]),
        // Past hll-sparse-max-bytes (3000): dense.
        pfadd("big", 0..4000),
        command(&["PFDEBUG", "ENCODING", "big"]),
        command(&["PFCOUNT", "big"]),
        command(&["GET", "big"]),
        pfadd("other", 3000..3500),
        command(&["PFCOUNT", "visits", "other", "missing"]),
        command(&["PFMERGE", "union", "visits", "other"]),
        command(&["GET", "union"]),
        command(&["PFMERGE", "union", "big"]),
        command(&["GET", "union"]),
        command(&["PFCOUNT", "union"]),
        command(&["PFDEBUG", "TODENSE", "other"]),
        command(&["PFDEBUG", "TODENSE", "other"]),
        command(&["GET", "other"]),
        command(&["PFCOUNT", "missing"]),
        // Errors: a plain string, another type, a corrupt sketch.
        command(&["SET", "plain", "hello"]),
        command(&["PFADD", "plain", "x"]),
        command(&["PFCOUNT", "plain", "visits"]),
        command(&["LPUSH", "list", "x"]),
        command(&["PFADD", "list", "x"]),
        command(&["PFMERGE", "union", "list"]),
        command(&["PFDEBUG", "ENCODING", "missing"]),
        command(&["PFDEBUG", "NOPE", "visits"]),
        command(&["PFDEBUG", "DECODE", "big"]),
    ];
    same_replies(&mut redis, &mut seshat, &script).await?;

    // A sparse sketch whose runs cover too few registers.
    let mut corrupt = b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80".to_vec();
    corrupt.push(0x00);
    let set: Vec<Vec<u8>> = vec![b"SET".to_vec(), b"corrupt".to_vec(), corrupt];
    same_replies(
        &mut redis,
        &mut seshat,
        &[set, command(&["PFCOUNT", "corrupt"]), command(&["PFADD", "corrupt", "a"])],
    )
    .await?;

    // A sketch moves between the servers as a string.
    let Frame2::BulkString(bytes) = call(&mut redis, &[b"GET", b"big"]).await? else { panic!("GET big") };
    call(&mut seshat, &[b"SET", b"moved", &bytes]).await?;
    let counted = call(&mut seshat, &[b"PFCOUNT", b"moved"]).await?;
    assert_eq!(counted, call(&mut redis, &[b"PFCOUNT", b"big"]).await?);

    // DUMP from Redis (an LZF-compressed string) restores into Seshat.
    let Frame2::BulkString(payload) = call(&mut redis, &[b"DUMP", b"visits"]).await? else { panic!("DUMP") };
    call(&mut seshat, &[b"RESTORE", b"restored", b"0", &payload]).await?;
    let restored = call(&mut seshat, &[b"GET", b"restored"]).await?;
    assert_eq!(restored, call(&mut redis, &[b"GET", b"visits"]).await?);

    // The promotion threshold is CONFIG's, as in Redis.
    same_replies(
        &mut redis,
        &mut seshat,
        &[
            command(&["CONFIG", "SET", "hll-sparse-max-bytes", "100"]),
            pfadd("small", 0..40),
            command(&["PFDEBUG", "ENCODING", "small"]),
            command(&["GET", "small"]),
            command(&["PFSELFTEST"]),
        ],
    )
    .await
}

#[tokio::test]
async fn a_cluster_replicates_sketches_and_counts_them_on_any_node() -> Result<()> {
    let _exclusive = seshat_tests::one_cluster_at_a_time().await;
    let cluster = Cluster::start(3, FAST)?;
    let mut first = cluster.nodes[0].patient_client(Duration::from_secs(10)).await?;
    let elements: Vec<String> = (0..1000).map(|i| format!("device:{i}")).collect();
    let added: i64 = redis::cmd("PFADD").arg("devices").arg(&elements).query_async(&mut first).await?;
    assert_eq!(added, 1);
    let mut counts = Vec::new();
    for node in &cluster.nodes {
        let mut c = node.patient_client(Duration::from_secs(10)).await?;
        let count: i64 = redis::cmd("PFCOUNT").arg("devices").query_async(&mut c).await?;
        let bytes: Vec<u8> = redis::cmd("GET").arg("devices").query_async(&mut c).await?;
        counts.push((count, bytes));
    }
    assert!((950..1050).contains(&counts[0].0), "estimate {}", counts[0].0);
    assert!(counts.iter().all(|entry| *entry == counts[0]), "nodes disagree");
    Ok(())
}
