//! Lua scripts on a 3-node cluster: a script loaded through one node runs
//! through every node; a scripted counter driven from every node loses no
//! increment; a script's random draws and TIME are the same on every
//! replica (replicas agree on what it wrote); a script past its budget is
//! aborted alike everywhere, its earlier writes kept; a read-only script
//! on a follower sees every acknowledged write; a restarted node still
//! has the loaded scripts. A function library loaded through one node is
//! called through every node, survives a restart (the new VM loads it
//! from the store), and moves to and from redis-server with FUNCTION
//! DUMP and RESTORE. With several shards, EVALSHA finds a script EVAL ran
//! in any shard.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use redis_protocol::resp2::types::OwnedFrame as Frame2;
use seshat_tests::{text, Cluster, Raw, RedisServer, FAST};

const COUNTER: &str = "return redis.call('INCRBY', KEYS[1], ARGV[1])";
const INCREMENTS_PER_NODE: usize = 60;
const LIBRARY: &str = "#!lua name=counters
redis.register_function('bump', function(keys, args) return redis.call('INCRBY', keys[1], args[1]) end)
redis.register_function{function_name='peek', callback=function(keys) return redis.call('GET', keys[1]) end,
  flags={'no-writes'}}";

/// Draws from every random source a script has and stores the results.
const RANDOM: &str = "
local member = redis.call('SPOP', KEYS[1])
redis.call('SADD', KEYS[2], member)
local some = redis.call('SRANDMEMBER', KEYS[2])
local now = redis.call('TIME')
redis.call('RPUSH', KEYS[3], member, some, math.random(1000000), now[1] .. '.' .. now[2])
return member";

/// Each node's own view (READONLY: its replica as it is) of `keys`, once
/// the views agree, or the last views after 20 s.
async fn replica_views(raws: &mut [Raw], reads: &[&[&str]]) -> Result<Vec<String>> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut views = Vec::new();
        for raw in raws.iter_mut() {
            let mut view = String::new();
            for read in reads {
                view.push_str(&text(&raw.call(read).await?));
                view.push('|');
            }
            views.push(view);
        }
        if views.iter().all(|view| *view == views[0]) || Instant::now() > deadline {
            return Ok(views);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_run_alike_on_every_replica() -> Result<()> {
    let _exclusive = seshat_tests::one_cluster_at_a_time().await;
    let mut cluster = Cluster::start(3, FAST)?;
    let mut raws = Vec::new();
    for node in &cluster.nodes {
        node.patient_client(Duration::from_secs(10)).await?;
        raws.push(node.raw().await?);
    }

    // Loaded through node 0, known through every node.
    let sha = text(&raws[0].call(&["SCRIPT", "LOAD", COUNTER]).await?);
    assert_eq!(sha.len(), 40, "{sha}");
    for raw in &mut raws {
        assert_eq!(text(&raw.call(&["SCRIPT", "EXISTS", &sha]).await?), "1");
    }

    // A scripted counter from every node at once.
    let mut writers = Vec::new();
    for node in &cluster.nodes {
        let mut raw = node.raw().await?;
        let sha = sha.clone();
        writers.push(tokio::spawn(async move {
            for _ in 0..INCREMENTS_PER_NODE {
                let reply = raw.call(&["EVALSHA", &sha, "1", "counter", "2"]).await?;
                if text(&reply).parse::<i64>().is_err() {
                    bail!("EVALSHA answered {reply:?}");
                }
            }
            anyhow::Ok(())
        }));
    }
    for writer in writers {
        writer.await??;
    }
    let total = (2 * INCREMENTS_PER_NODE * cluster.nodes.len()).to_string();
    assert_eq!(text(&raws[1].call(&["GET", "counter"]).await?), total);

    // Random draws and TIME, fixed by the entry: every replica stores the same.
    let members: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    let mut sadd = vec!["SADD", "{r}pool"];
    sadd.extend(members.iter().map(String::as_str));
    raws[0].call(&sadd).await?;
    for round in 0..20 {
        let raw = &mut raws[round % 3];
        let reply = raw.call(&["EVAL", RANDOM, "3", "{r}pool", "{r}drawn", "{r}log"]).await?;
        assert!(text(&reply).starts_with('m'), "{reply:?}");
    }

    // Past its budget: aborted on every replica alike, its first write kept.
    let endless = "redis.call('SET', KEYS[1], 'before') while true do end";
    let reply = text(&raws[2].call(&["EVAL", endless, "1", "{r}endless"]).await?);
    assert!(reply.starts_with("ERR Script killed: it ran past its budget"), "{reply}");

    for raw in &mut raws {
        raw.call(&["READONLY"]).await?;
    }
    let reads: &[&[&str]] = &[
        &["SMEMBERS", "{r}pool"],
        &["SMEMBERS", "{r}drawn"],
        &["LRANGE", "{r}log", "0", "-1"],
        &["GET", "{r}endless"],
        &["GET", "counter"],
    ];
    let views = replica_views(&mut raws, reads).await?;
    assert!(views.iter().all(|view| *view == views[0]), "replicas disagree:\n{}", views.join("\n"));
    assert!(views[0].contains("|before|"), "{}", views[0]);
    for raw in &mut raws {
        raw.call(&["READWRITE"]).await?;
    }

    // A read-only script on any node sees every acknowledged write.
    for i in 0..20 {
        let value = format!("v{i}");
        raws[i % 3].call(&["SET", "fresh", &value]).await?;
        let seen = raws[(i + 1) % 3].call(&["EVAL_RO", "return redis.call('GET', KEYS[1])", "1", "fresh"]).await?;
        assert_eq!(text(&seen), value);
    }

    // A library loaded through node 0, called through every node.
    assert_eq!(text(&raws[0].call(&["FUNCTION", "LOAD", LIBRARY]).await?), "counters");
    for (i, raw) in raws.iter_mut().enumerate() {
        assert_eq!(text(&raw.call(&["FCALL", "bump", "1", "fcounter", "10"]).await?), ((i + 1) * 10).to_string());
        assert_eq!(text(&raw.call(&["FCALL_RO", "peek", "1", "fcounter"]).await?), ((i + 1) * 10).to_string());
    }
    let dump = raws[1].call(&["FUNCTION", "DUMP"]).await?;

    // A restarted node, with a new Lua VM, still runs the loaded script
    // and the library's functions.
    cluster.nodes[2].kill9();
    cluster.nodes[2].restart()?;
    cluster.nodes[2].patient_client(Duration::from_secs(20)).await?;
    let mut raw = cluster.nodes[2].raw().await?;
    let after = text(&raw.call(&["EVALSHA", &sha, "1", "counter", "1"]).await?);
    assert_eq!(after, (2 * INCREMENTS_PER_NODE * 3 + 1).to_string());
    assert_eq!(text(&raw.call(&["FCALL", "bump", "1", "fcounter", "1"]).await?), "31");

    // FUNCTION DUMP and RESTORE move libraries to and from redis-server.
    let Frame2::BulkString(payload) = dump else { bail!("FUNCTION DUMP answered {dump:?}") };
    let reference = RedisServer::start().await?;
    let mut redis = Raw::connect(reference.addr).await?;
    assert_eq!(text(&redis.call_bytes(&[b"FUNCTION", b"RESTORE", &payload, b"REPLACE"]).await?), "OK");
    assert_eq!(text(&redis.call(&["FCALL", "bump", "1", "k", "2"]).await?), "2");
    // Redis compresses the code of its payload (LZF); Seshat reads it.
    let by_hundreds = LIBRARY.replace("keys[1], args[1]", "keys[1], 100");
    assert_eq!(text(&redis.call(&["FUNCTION", "LOAD", "REPLACE", &by_hundreds]).await?), "counters");
    let Frame2::BulkString(from_redis) = redis.call(&["FUNCTION", "DUMP"]).await? else {
        bail!("redis's FUNCTION DUMP")
    };
    assert_eq!(text(&raws[0].call_bytes(&[b"FUNCTION", b"RESTORE", &from_redis, b"REPLACE"]).await?), "OK");
    for (i, raw) in raws.iter_mut().take(2).enumerate() {
        let bumped = text(&raw.call(&["FCALL", "bump", "1", "hundreds", "1"]).await?);
        assert_eq!(bumped, ((i + 1) * 100).to_string(), "the restored library adds 100");
    }
    Ok(())
}

/// With several shards, a script EVAL ran in one shard (alone or inside
/// EXEC) is found by EVALSHA in any other, inside MULTI too, as in Redis's
/// one script cache (keys tagged `{a}` are in the third shard of three; a
/// script without keys runs in the first).
#[tokio::test]
async fn a_script_eval_ran_in_one_shard_is_found_by_evalsha_in_every_shard() -> Result<()> {
    let node = seshat_tests::Node::start(&["--shards", "3"])?;
    let mut c = node.client().await?;
    let one: i64 = redis::cmd("EVAL").arg("return 1").arg(0).query_async(&mut c).await?;
    assert_eq!(one, 1);
    let sha = "e0e1f9fabfc9d4800c877a703b823ac0578ff8db";
    let found: i64 = redis::cmd("EVALSHA").arg(sha).arg(1).arg("{a}k").query_async(&mut c).await?;
    assert_eq!(found, 1, "EVALSHA in the third shard");
    let (set, found): (String, i64) =
        redis::pipe().atomic().cmd("SET").arg("{a}x").arg(1).cmd("EVALSHA").arg(sha).arg(0).query_async(&mut c).await?;
    assert_eq!((set.as_str(), found), ("OK", 1), "EVALSHA inside a transaction of the third shard");
    // And the other way: EVAL with a key of the third shard, EVALSHA
    // without keys (the first shard).
    let two: i64 = redis::cmd("EVAL").arg("return 2").arg(1).arg("{a}k").query_async(&mut c).await?;
    assert_eq!(two, 2);
    let sha = "7f923f79fe76194c868d7e1d0820de36700eb649";
    let found: i64 = redis::cmd("EVALSHA").arg(sha).arg(0).query_async(&mut c).await?;
    assert_eq!(found, 2, "EVALSHA in the first shard");
    let exists: Vec<i64> = redis::cmd("SCRIPT").arg("EXISTS").arg(sha).query_async(&mut c).await?;
    assert_eq!(exists, [1]);
    // EVAL inside a transaction of the third shard, EVALSHA in the first.
    let (three,): (i64,) =
        redis::pipe().atomic().cmd("EVAL").arg("return 3").arg(1).arg("{a}k").query_async(&mut c).await?;
    assert_eq!(three, 3);
    let sha = "09d3822de862f46d784e6a36848b4f0736dda47a";
    let found: i64 = redis::cmd("EVALSHA").arg(sha).arg(0).query_async(&mut c).await?;
    assert_eq!(found, 3, "EVALSHA in the first shard of a script EXEC ran");
    Ok(())
}

#[tokio::test]
async fn a_script_eval_ran_again_after_script_flush_is_stored_in_every_shard_again() -> Result<()> {
    let node = seshat_tests::Node::start(&["--shards", "3"])?;
    let mut c = node.client().await?;
    let sha = "e0e1f9fabfc9d4800c877a703b823ac0578ff8db";
    // Twice: the second finds it in every shard, and the node remembers.
    for _ in 0..2 {
        let one: i64 = redis::cmd("EVAL").arg("return 1").arg(0).query_async(&mut c).await?;
        assert_eq!(one, 1);
    }
    let flushed: String = redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut c).await?;
    assert_eq!(flushed, "OK");
    let missing = redis::cmd("EVALSHA").arg(sha).arg(1).arg("{a}k").query_async::<i64>(&mut c).await;
    assert!(seshat_tests::error_text(missing).starts_with("NOSCRIPT"), "SCRIPT FLUSH emptied the third shard");
    let one: i64 = redis::cmd("EVAL").arg("return 1").arg(0).query_async(&mut c).await?;
    assert_eq!(one, 1);
    let found: i64 = redis::cmd("EVALSHA").arg(sha).arg(1).arg("{a}k").query_async(&mut c).await?;
    assert_eq!(found, 1, "the EVAL after the flush stored the script in the third shard again");
    Ok(())
}

/// A node killed after a script's entry committed and before its apply
/// finished applies it when it starts again: the start applies what was
/// committed, and the script's commands parse with the RESP frontend's
/// table, which is ready by then (before, the start waited for a
/// frontend that only came after it, and the node never came up).
#[tokio::test]
async fn a_node_killed_while_applying_a_script_applies_it_at_restart() -> Result<()> {
    // Half a second of Lua (a fixed count of instructions, within the
    // budget) before the write.
    const SLOW_INCR: &str = "local i = 0 while i < 40000000 do i = i + 1 end return redis.call('INCR', KEYS[1])";
    let mut node = seshat_tests::Node::start(&[])?;
    let mut c = node.patient_client(Duration::from_secs(10)).await?;
    let () = redis::cmd("SET").arg("before").arg(1).query_async(&mut c).await?;
    let mut raw = node.raw().await?;
    raw.send_command(&[b"EVAL", SLOW_INCR.as_bytes(), b"1", b"slow"]).await?;
    // (commit index, applied index) of the node's group.
    let indexes = || async {
        let fields = seshat_tests::info_fields(&node, &["seshat_commit_index", "seshat_applied_index"]).await?;
        let index = |at: usize| fields.get(at)?.as_deref()?.parse::<u64>().ok();
        Some((index(0)?, index(1)?))
    };
    // Committed and not applied, twice 0.1 s apart at the same index: the
    // script runs (other entries apply in a moment).
    let applying = seshat_tests::eventually(Duration::from_secs(10), || async {
        let Some((committed, applied)) = indexes().await else { return false };
        tokio::time::sleep(Duration::from_millis(100)).await;
        committed > applied && indexes().await.is_some_and(|(committed, again)| committed > again && again == applied)
    })
    .await;
    assert!(applying, "the script's entry committed and is being applied");
    node.kill9();
    node.restart()?;
    let mut c = node.patient_client(Duration::from_secs(10)).await?;
    let value: Option<i64> = redis::cmd("GET").arg("slow").query_async(&mut c).await?;
    assert_eq!(value, Some(1), "the script applied once");
    Ok(())
}
