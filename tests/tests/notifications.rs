//! Keyspace notifications against a real redis-server: the differential
//! generator's seeded command sequences (every data type, transactions)
//! run on both with `notify-keyspace-events` set, and a subscriber to
//! `__key*__:*` on each must receive the same events in the same order.
//! A 3-node cluster delivers each event once to a subscriber on any node,
//! whichever node the write came through, and reports expiries.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use redis_protocol::resp2::types::OwnedFrame as Frame2;
use seshat_tests::differential::{Generator, Step};
use seshat_tests::placement;
use seshat_tests::{env_u64, Cluster, Node, Raw, RedisServer, FAST};

async fn call(raw: &mut Raw, args: &[String]) -> Result<Frame2> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    raw.send_command(&args).await?;
    raw.read2().await
}

fn words(line: &str) -> Vec<String> {
    line.split(' ').map(str::to_string).collect()
}

fn text(frame: &Frame2) -> String {
    match frame {
        Frame2::BulkString(bytes) | Frame2::SimpleString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        other => format!("{other:?}"),
    }
}

/// A connection subscribed to every keyspace and keyevent channel.
async fn subscriber(mut raw: Raw) -> Result<Raw> {
    call(&mut raw, &words("PSUBSCRIBE __key*__:*")).await?;
    Ok(raw)
}

/// The `(channel, message)` pairs `raw` receives up to and including the
/// keyevent of `SET <marker>` (sent last, so every earlier event is in).
async fn events_until(raw: &mut Raw, marker: &str) -> Result<Vec<(String, String)>> {
    let mut events = Vec::new();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), raw.read2())
            .await
            .context("no marker event within 20 s")??;
        let Frame2::Array(items) = frame else { bail!("not a message: {frame:?}") };
        let (channel, message) = (text(&items[2]), text(&items[3]));
        let done = channel.starts_with("__keyevent@") && channel.ends_with(":set") && message == marker;
        events.push((channel, message));
        if done {
            return Ok(events);
        }
    }
}

async fn run(raw: &mut Raw, step: &Step) -> Result<()> {
    match step {
        Step::Single(command) => {
            call(raw, &command.args).await?;
        }
        Step::Transaction { commands, discard } => {
            call(raw, &words("MULTI")).await?;
            for command in commands {
                call(raw, &command.args).await?;
            }
            call(raw, &words(if *discard { "DISCARD" } else { "EXEC" })).await?;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_command_sequences_notify_like_redis() -> Result<()> {
    let (seeds, first, steps) =
        (env_u64("SESHAT_DIFF_SEEDS", 4), env_u64("SESHAT_DIFF_SEED", 1), env_u64("SESHAT_DIFF_COMMANDS", 1500));
    let reference = RedisServer::start().await?;
    let node = Node::start(&[])?;
    let mut total = 0;
    for seed in first..first + seeds {
        // `n` (new keys) and `m` (key misses) on some seeds: Redis's `A`
        // leaves them out.
        let classes = match seed % 3 {
            0 => "KEA",
            1 => "KEAn",
            _ => "KEAnm",
        };
        let mut redis = Raw::connect(reference.addr).await?;
        let mut seshat = node.raw().await?;
        for raw in [&mut redis, &mut seshat] {
            call(raw, &words("FLUSHALL")).await?;
            call(raw, &words(&format!("CONFIG SET notify-keyspace-events {classes}"))).await?;
        }
        let mut redis_events = subscriber(Raw::connect(reference.addr).await?).await?;
        let mut seshat_events = subscriber(node.raw().await?).await?;
        let mut generator = Generator::new(seed);
        for index in 0..steps {
            let step = generator.step();
            run(&mut redis, &step).await.with_context(|| format!("redis, seed {seed} step {index}"))?;
            run(&mut seshat, &step).await.with_context(|| format!("seshat, seed {seed} step {index}"))?;
        }
        let marker = format!("marker-{seed}");
        for raw in [&mut redis, &mut seshat] {
            call(raw, &words(&format!("SET {marker} done"))).await?;
        }
        let want = events_until(&mut redis_events, &marker).await?;
        let have = events_until(&mut seshat_events, &marker).await?;
        if let Some(at) = want.iter().zip(&have).position(|(w, h)| w != h).or((want.len() != have.len()).then_some(0)) {
            let around =
                |events: &[(String, String)]| events[at.saturating_sub(3)..(at + 4).min(events.len())].to_vec();
            bail!(
                "seed {seed} ({classes}): event {at} differs ({} vs {} events)\n  redis:  {:?}\n  seshat: {:?}",
                want.len(),
                have.len(),
                around(&want),
                around(&have)
            );
        }
        total += want.len();
    }
    println!("notifications: {seeds} seeds x {steps} steps, {total} events compared, 0 differences");
    // The sequences produced events of every kind, so the comparison is
    // not of two empty lists.
    assert!(total as u64 > seeds * steps / 2, "only {total} events");
    Ok(())
}

/// Commands the generator does not send (or not in these forms): keys
/// moved between databases, restored, renamed onto others, expiries in
/// the past, the STORE forms, and a blocked client served by a push.
/// (`SET … PXAT <past>` is left out: Redis reports `expired` when it next
/// finds the key, Seshat at once.)
const SCRIPT: &[&str] = &[
    "SET k v",
    "SETRANGE k 5 x",
    "SETRANGE k 0 ",
    "SET k2 v",
    "RENAME k k2",
    "RENAME k2 fresh",
    "COPY fresh copied",
    "SET copied other",
    "COPY fresh copied REPLACE",
    "COPY fresh elsewhere DB 2",
    "MOVE copied 3",
    "DUMP fresh",
    "GETEX fresh EX 100",
    "GETEX fresh PERSIST",
    "GETEX fresh PERSIST",
    "GETEX fresh PXAT 1",
    "SET ttl v EX 100",
    "EXPIRE ttl 0",
    "SETEX timed 100 v",
    "PERSIST timed",
    "GETDEL timed",
    "SETBIT bits 7 1",
    "SETBIT bits 7 1",
    "SETBIT bits 100 0",
    "BITFIELD bits SET u8 0 255 GET u8 0",
    "BITFIELD bits SET u8 0 255",
    "BITOP NOT inverted bits",
    "BITOP AND inverted missing1 missing2",
    "RPUSH list a b c",
    "LMOVE list moved LEFT RIGHT",
    "LMOVE moved moved RIGHT LEFT",
    "RPOPLPUSH moved list",
    "LINSERT list BEFORE b x",
    "LSET list 0 y",
    "LREM list 0 zzz",
    "LREM list 1 y",
    "LTRIM list 0 -1",
    "LTRIM list 5 10",
    "RPUSH nums 3 1 2",
    "SORT nums STORE sorted",
    "SORT missing STORE sorted",
    "SADD s1 a b c",
    "SADD s2 c d",
    "SINTERSTORE inter s1 s2",
    "SDIFFSTORE inter s2 s2",
    "SUNIONSTORE union s1 s2",
    "SMOVE s1 s2 a",
    "SMOVE s1 s3 b",
    "SPOP s1",
    "ZADD z 1 a 2 b 3 c",
    "ZINCRBY z 0 a",
    "ZINCRBY z 1 a",
    "ZADD z XX CH 5 b",
    "ZRANGESTORE zr z 0 0",
    "ZRANGESTORE zr missing 0 -1",
    "ZUNIONSTORE zu 2 z z",
    "ZREMRANGEBYSCORE z 100 200",
    "ZREMRANGEBYRANK z 0 0",
    "ZPOPMAX z 5",
    "GEOADD g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania",
    "GEOSEARCHSTORE gs g FROMLONLAT 15 37 BYRADIUS 200 km",
    "GEORADIUS g 15 37 200 km STORE gr",
    "GEORADIUS g 15 37 1 m STORE gr",
    "HSET h f v",
    "HSETNX h f v",
    "HINCRBY h n 1",
    "HINCRBYFLOAT h x 1.5",
    "HDEL h f n x",
    "PFADD hll a b",
    "PFADD hll a",
    "PFMERGE hll2 hll",
    "INCR counter",
    "INCRBYFLOAT counter 1.5",
    "APPEND counter x",
    "MSET m1 1 m2 2",
    "MSETNX m1 1 m3 3",
    "DEL m1 m2 m3 nothing",
    "UNLINK fresh",
    // Reads of missing keys, and writes that read one (`m`).
    "GET nokey",
    "MGET nokey counter nokey2",
    "EXISTS nokey counter",
    "TYPE nokey",
    "TTL nokey",
    "OBJECT ENCODING nokey",
    "MEMORY USAGE nokey",
    "TOUCH nokey",
    "DUMP nokey",
    "STRLEN nokey",
    "LCS nokey nokey2",
    "HGET nohash f",
    "ZSCORE nozset a",
    "SMEMBERS noset",
    "SINTER noset s2",
    "LRANGE nolist 0 -1",
    "XREAD STREAMS nostream 0",
    "XINFO STREAM nostream",
    "XACK nostream g 0-1",
    "XAUTOCLAIM nostream g c 0 0",
    "XREADGROUP GROUP g c STREAMS nostream >",
    "SET counter 1 GET",
    "SET fresh2 v GET",
    "GETSET fresh3 v",
    "GETDEL nokey",
    "GETEX nokey",
    "COPY nokey copied",
    "PFCOUNT nohll",
    "PFMERGE nohll2 nohll3",
    "SORT nums BY nosuch_* GET nosuch_*",
    "MULTI",
    "GET nokey",
    "INCR counter",
    "EXEC",
    "FLUSHDB",
];

#[tokio::test]
async fn a_script_of_every_kind_of_event_notifies_like_redis() -> Result<()> {
    let reference = RedisServer::start().await?;
    let node = Node::start(&[])?;
    let mut redis = Raw::connect(reference.addr).await?;
    let mut seshat = node.raw().await?;
    for raw in [&mut redis, &mut seshat] {
        call(raw, &words("CONFIG SET notify-keyspace-events KEAnm")).await?;
    }
    let mut redis_events = subscriber(Raw::connect(reference.addr).await?).await?;
    let mut seshat_events = subscriber(node.raw().await?).await?;
    // A DUMP to restore, from each server's own encoding.
    for raw in [&mut redis, &mut seshat] {
        call(raw, &words("RPUSH source a b")).await?;
        let Frame2::BulkString(payload) = call(raw, &words("DUMP source")).await? else { bail!("DUMP") };
        for replace in [false, true] {
            let mut args: Vec<&[u8]> = vec![b"RESTORE", b"restored", b"0", &payload];
            if replace {
                args.push(b"REPLACE");
            }
            raw.send_command(&args).await?;
            raw.read2().await?;
        }
        for line in SCRIPT {
            call(raw, &words(line)).await?;
        }
    }
    // A blocked client served by a push through another connection.
    for addr in [reference.addr, node.addr()] {
        let mut blocked = Raw::connect(addr).await?;
        blocked.send_command(&[b"BLPOP", b"queue", b"10"]).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut pusher = Raw::connect(addr).await?;
        call(&mut pusher, &words("LPUSH queue job")).await?;
        blocked.read2().await?;
        call(&mut pusher, &words("SET marker done")).await?;
    }
    let want = events_until(&mut redis_events, "marker").await?;
    let have = events_until(&mut seshat_events, "marker").await?;
    assert_eq!(have, want);
    Ok(())
}

#[tokio::test]
async fn a_cluster_publishes_each_event_once_to_subscribers_on_every_node() -> Result<()> {
    let _exclusive = seshat_tests::one_cluster_at_a_time().await;
    let cluster = Cluster::start(3, FAST)?;
    let mut writers = Vec::new();
    for node in &cluster.nodes {
        let mut c = node.patient_client(Duration::from_secs(10)).await?;
        let _: () = redis::cmd("CONFIG").arg(&["SET", "notify-keyspace-events", "KEA"]).query_async(&mut c).await?;
        writers.push(c);
    }
    let mut subscribers = Vec::new();
    for node in &cluster.nodes {
        subscribers.push(subscriber(node.raw().await?).await?);
    }
    // Writes through each node; an expiry the leader's sweeper carries out.
    let _: () = redis::cmd("SET").arg(&["{n}a", "1"]).query_async(&mut writers[0]).await?;
    let _: i64 = redis::cmd("LPUSH").arg(&["{n}list", "x", "y"]).query_async(&mut writers[1]).await?;
    let _: i64 = redis::cmd("DEL").arg(&["{n}a"]).query_async(&mut writers[2]).await?;
    let _: () = redis::cmd("SET").arg(&["{n}short", "1", "PX", "50"]).query_async(&mut writers[2]).await?;
    let expected: Vec<(String, String)> = [
        ("__keyspace@0__:{n}a", "set"),
        ("__keyevent@0__:set", "{n}a"),
        ("__keyspace@0__:{n}list", "lpush"),
        ("__keyevent@0__:lpush", "{n}list"),
        ("__keyspace@0__:{n}a", "del"),
        ("__keyevent@0__:del", "{n}a"),
        ("__keyspace@0__:{n}short", "set"),
        ("__keyevent@0__:set", "{n}short"),
        ("__keyspace@0__:{n}short", "expire"),
        ("__keyevent@0__:expire", "{n}short"),
        ("__keyspace@0__:{n}short", "expired"),
        ("__keyevent@0__:expired", "{n}short"),
    ]
    .iter()
    .map(|(c, m)| (c.to_string(), m.to_string()))
    .collect();
    let _: () = redis::cmd("SET").arg(&["{n}marker", "done"]).query_async(&mut writers[0]).await?;
    for (i, subscriber) in subscribers.iter_mut().enumerate() {
        let mut events = events_until(subscriber, "{n}marker").await?;
        // The marker's own pair closes the list.
        events.truncate(events.len() - 2);
        // The expiry comes when the sweeper gets to it: before or after the
        // marker; wait for it if it is not in yet.
        while events.len() < expected.len() {
            let frame = tokio::time::timeout(Duration::from_secs(10), subscriber.read2()).await??;
            let Frame2::Array(items) = frame else { bail!("not a message") };
            events.push((text(&items[2]), text(&items[3])));
        }
        assert_eq!(events, expected, "subscriber on node {}", i + 1);
        // Nothing twice: no further event arrives.
        let more = tokio::time::timeout(Duration::from_millis(500), subscriber.read2()).await;
        assert!(more.is_err(), "node {}: an extra event {more:?}", i + 1);
    }
    Ok(())
}

/// With notifications on, writes are wrapped with the node's flags; a
/// keyless write that goes to every shard (FLUSHALL, FLUSHDB) must still
/// reach every shard, and every shard's events come through.
#[tokio::test]
async fn with_notifications_on_every_shard_notifies_and_a_flush_empties_every_shard() -> Result<()> {
    let node = Node::start(&["--shards", "3"])?;
    let mut writer = node.raw().await?;
    call(&mut writer, &words("CONFIG SET notify-keyspace-events E$g")).await?;
    let mut events = subscriber(node.raw().await?).await?;
    let keys: Vec<String> = (0..30).map(|i| format!("key:{i}")).collect();
    for key in &keys {
        call(&mut writer, &[String::from("SET"), key.clone(), "v".into()]).await?;
    }
    call(&mut writer, &words("FLUSHALL")).await?;
    assert_eq!(call(&mut writer, &words("DBSIZE")).await?, Frame2::Integer(0), "FLUSHALL emptied every shard");
    call(&mut writer, &words("SET marker done")).await?;
    let received = events_until(&mut events, "marker").await?;
    let set: Vec<String> =
        received.iter().filter(|(channel, _)| channel == "__keyevent@0__:set").map(|(_, key)| key.clone()).collect();
    assert_eq!(set.len(), keys.len() + 1, "a set event per key, from every shard: {received:?}");
    Ok(())
}

/// A read a node forwards to a replica of a shard it does not hold
/// notifies its `keymiss` under the asking node's setting: only node 1
/// turns `m` on, and the replicas that serve its reads do not.
#[tokio::test]
async fn a_forwarded_read_misses_under_the_asking_node_s_setting() -> Result<()> {
    const SHARDS: u32 = 4;
    let _exclusive = seshat_tests::one_cluster_at_a_time().await;
    let args = [FAST, &["--shards", "4", "--replicas", "3"]].concat();
    let cluster = Cluster::start(4, &args)?;
    let placed = seshat_tests::eventually(Duration::from_secs(60), || placement::placed(&cluster, SHARDS, 3)).await;
    assert!(placed, "never placed");
    let node = &cluster.nodes[0];
    let missing = placement::key_elsewhere(node, 1, SHARDS, "missing:").await?;
    let mut c = node.patient_client(Duration::from_secs(10)).await?;
    let _: () = redis::cmd("CONFIG").arg(&["SET", "notify-keyspace-events", "Em"]).query_async(&mut c).await?;
    let mut events = subscriber(node.raw().await?).await?;
    let got: Option<String> = redis::cmd("GET").arg(&missing).query_async(&mut c).await?;
    assert_eq!(got, None);
    // The replica that served the read publishes the event, so it may come
    // after later events of other nodes.
    let frame = tokio::time::timeout(Duration::from_secs(10), events.read2()).await.context("no keymiss event")??;
    let Frame2::Array(items) = frame else { bail!("not a message: {frame:?}") };
    assert_eq!((text(&items[2]), text(&items[3])), ("__keyevent@0__:keymiss".to_string(), missing));
    Ok(())
}
