//! DUMP and RESTORE against a real redis-server: payloads Redis 7 writes
//! (integer, LZF and plain strings, listpacks, quicklists, intsets,
//! hashtables, skiplists) restore into Seshat, and Seshat's payloads
//! restore into Redis, with the same contents on both sides; the errors
//! match Redis's words.

use anyhow::{bail, Result};
use redis_protocol::resp2::types::OwnedFrame as Frame2;
use seshat_tests::{Node, Raw, RedisServer};

/// Sends a command whose arguments may be binary.
async fn call(raw: &mut Raw, args: &[&[u8]]) -> Result<Frame2> {
    raw.send_command(args).await?;
    raw.read2().await
}

/// The contents of `key` in a comparable form: sets and hashes sorted.
async fn contents(raw: &mut Raw, key: &str) -> Result<Frame2> {
    let Frame2::SimpleString(kind) = raw.call(&["TYPE", key]).await? else { bail!("TYPE of {key}") };
    let mut frame = match &kind[..] {
        b"string" => raw.call(&["GET", key]).await?,
        b"list" => raw.call(&["LRANGE", key, "0", "-1"]).await?,
        b"set" => raw.call(&["SMEMBERS", key]).await?,
        b"hash" => raw.call(&["HGETALL", key]).await?,
        b"zset" => raw.call(&["ZRANGE", key, "0", "-1", "WITHSCORES"]).await?,
        other => bail!("{key} has type {}", String::from_utf8_lossy(other)),
    };
    if let Frame2::Array(items) = &mut frame {
        match &kind[..] {
            b"set" => items.sort_by_key(|item| format!("{item:?}")),
            b"hash" => {
                let mut pairs: Vec<Vec<Frame2>> = items.chunks(2).map(|pair| pair.to_vec()).collect();
                pairs.sort_by_key(|pair| format!("{pair:?}"));
                *items = pairs.concat();
            }
            _ => {}
        }
    }
    Ok(Frame2::Array(vec![Frame2::SimpleString(kind), frame]))
}

/// Keys covering every encoding Redis 7.0 dumps for the five types.
async fn fill(redis: &mut Raw) -> Result<Vec<&'static str>> {
    let numbers: Vec<String> = (0..300).map(|i| (i * 7 - 500).to_string()).collect();
    let words: Vec<String> = (0..300).map(|i| format!("word-{i}-{}", "x".repeat(i % 40))).collect();
    let mut commands: Vec<Vec<String>> = vec![
        vec!["SET".into(), "string:int".into(), "12345".into()],
        vec!["SET".into(), "string:negative".into(), "-70000".into()],
        vec!["SET".into(), "string:short".into(), "hello".into()],
        vec!["SET".into(), "string:lzf".into(), "abc".repeat(400)],
        vec!["RPUSH".into(), "list:small".into(), "a".into(), "7".into(), "-3".into(), "".into()],
        vec!["SADD".into(), "set:intset".into(), "1".into(), "-2".into(), "40000".into(), "5000000000".into()],
        vec!["SADD".into(), "set:small".into(), "alpha".into(), "beta".into()],
        vec!["HSET".into(), "hash:small".into(), "f1".into(), "v1".into(), "n".into(), "42".into()],
        vec![
            "ZADD".into(),
            "zset:small".into(),
            "1.5".into(),
            "a".into(),
            "-2".into(),
            "b".into(),
            "inf".into(),
            "c".into(),
        ],
    ];
    let mut list = vec!["RPUSH".to_string(), "list:big".into()];
    list.extend(words.iter().cloned());
    list.extend(numbers.iter().cloned());
    let mut set = vec!["SADD".to_string(), "set:big".into()];
    set.extend(words.iter().cloned());
    let mut hash = vec!["HSET".to_string(), "hash:big".into()];
    let mut zset = vec!["ZADD".to_string(), "zset:big".into()];
    for (i, word) in words.iter().enumerate() {
        hash.extend([word.clone(), numbers[i].clone()]);
        zset.extend([format!("{}.25", numbers[i]), word.clone()]);
    }
    commands.extend([list, set, hash, zset]);
    for command in &commands {
        let args: Vec<&[u8]> = command.iter().map(|a| a.as_bytes()).collect();
        if let Frame2::Error(error) = call(redis, &args).await? {
            bail!("{command:?}: {error}");
        }
    }
    Ok(vec![
        "string:int",
        "string:negative",
        "string:short",
        "string:lzf",
        "list:small",
        "list:big",
        "set:intset",
        "set:small",
        "set:big",
        "hash:small",
        "hash:big",
        "zset:small",
        "zset:big",
    ])
}

/// A redis-server and a Seshat node, with a connection to each (the
/// servers live as long as the first two values).
async fn servers() -> Result<(RedisServer, Node, Raw, Raw)> {
    let reference = RedisServer::start().await?;
    let node = Node::start(&[])?;
    let redis = Raw::connect(reference.addr).await?;
    let seshat = node.raw().await?;
    Ok((reference, node, redis, seshat))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_move_between_redis_and_seshat_both_ways() -> Result<()> {
    let (_reference, _node, mut redis, mut seshat) = servers().await?;
    for key in fill(&mut redis).await? {
        let expected = contents(&mut redis, key).await?;
        let Frame2::BulkString(from_redis) = redis.call(&["DUMP", key]).await? else { bail!("DUMP {key}") };
        let restored = call(&mut seshat, &[b"RESTORE", key.as_bytes(), b"0", &from_redis]).await?;
        assert_eq!(restored, Frame2::SimpleString("OK".into()), "RESTORE of Redis's {key}");
        assert_eq!(contents(&mut seshat, key).await?, expected, "{key} restored from Redis");

        let Frame2::BulkString(from_seshat) = seshat.call(&["DUMP", key]).await? else { bail!("DUMP {key}") };
        let copy = format!("copy:{key}");
        let restored = call(&mut redis, &[b"RESTORE", copy.as_bytes(), b"0", &from_seshat]).await?;
        assert_eq!(restored, Frame2::SimpleString("OK".into()), "Redis's RESTORE of Seshat's {key}");
        assert_eq!(contents(&mut redis, &copy).await?, expected, "{key} restored from Seshat");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_options_and_errors_match_redis() -> Result<()> {
    let (_reference, _node, mut redis, mut seshat) = servers().await?;
    for raw in [&mut redis, &mut seshat] {
        raw.call(&["SET", "source", "value"]).await?;
    }
    let Frame2::BulkString(payload) = seshat.call(&["DUMP", "source"]).await? else { bail!("DUMP") };
    let mut damaged = payload.clone();
    *damaged.last_mut().expect("a payload") ^= 1;
    let far_future = b"4102444800000".to_vec(); // 2100-01-01, Unix ms
    let cases: Vec<Vec<&[u8]>> = vec![
        vec![b"DUMP", b"missing"],
        vec![b"RESTORE", b"source", b"0", &payload],
        vec![b"RESTORE", b"source", b"0", &payload, b"REPLACE"],
        vec![b"RESTORE", b"fresh", b"0", &damaged],
        vec![b"RESTORE", b"fresh", b"-1", &payload],
        vec![b"RESTORE", b"fresh", b"x", &payload],
        vec![b"RESTORE", b"fresh", b"0", &payload, b"IDLETIME", b"-1"],
        vec![b"RESTORE", b"fresh", b"0", &payload, b"FREQ", b"256"],
        vec![b"RESTORE", b"fresh", b"0", &payload, b"IDLETIME", b"5", b"FREQ", b"5"],
        vec![b"RESTORE", b"fresh", b"0", &payload, b"BOGUS"],
        vec![b"RESTORE", b"fresh", b"0", b"not a payload at all"],
        vec![b"RESTORE", b"expiring", b"100000", &payload, b"IDLETIME", b"10"],
        vec![b"PTTL", b"expiring"],
        vec![b"RESTORE", b"absolute", &far_future, &payload, b"ABSTTL", b"FREQ", b"3"],
        vec![b"EXPIRETIME", b"absolute"],
        vec![b"RESTORE", b"source", b"1", &payload, b"REPLACE", b"ABSTTL"],
        vec![b"EXISTS", b"source"],
    ];
    for case in cases {
        let theirs = call(&mut redis, &case).await?;
        let ours = call(&mut seshat, &case).await?;
        let shown: Vec<String> = case.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        match (&theirs, &ours) {
            // A remaining TTL: a few ms apart between the two servers.
            (Frame2::Integer(a), Frame2::Integer(b)) if case[0] == b"PTTL" => {
                assert!((a - b).abs() < 5_000 && *b > 90_000, "{shown:?}: redis {a}, seshat {b}")
            }
            _ => assert_eq!(ours, theirs, "{shown:?}"),
        }
    }
    Ok(())
}
