//! A single node whose keyspace is divided among several shards
//! (`--shards`), each its own Raft group over the families they share:
//! routing by hash slot, CROSSSLOT, multi-key reads and deletes split among
//! shards, the commands that cover every shard,
//! blocking pops and expiry on every shard, and a restart.

use std::collections::BTreeSet;
use std::time::Duration;

use redis::AsyncCommands;
use seshat_tests::Node;

const SHARDS: usize = 3;

/// SESHAT SHARDS as `(group, keys)` pairs, checking each line's form.
async fn shard_keys(c: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<Vec<(String, u64)>> {
    let lines: Vec<String> = redis::cmd("SESHAT").arg("SHARDS").query_async(c).await?;
    let mut shards = Vec::new();
    for line in lines {
        let mut fields = line.split(' ');
        let group = fields.next().unwrap_or_default().to_string();
        let field = |name: &str| line.split(' ').find_map(|f| f.strip_prefix(name).map(str::to_string));
        assert!(field("slots=").is_some() && field("leader=") == Some("1".into()), "{line}");
        let keys = field("keys=").and_then(|keys| keys.parse().ok()).unwrap_or_else(|| panic!("{line}"));
        shards.push((group, keys));
    }
    Ok(shards)
}

#[tokio::test]
async fn keys_spread_over_the_shards_and_keyless_commands_cover_them_all() -> anyhow::Result<()> {
    let node = Node::start(&["--shards", "3"])?;
    let mut c = node.client().await?;
    for i in 0..300 {
        let _: () = c.set(format!("key:{i}"), i).await?;
    }
    let shards = shard_keys(&mut c).await?;
    let groups: Vec<&str> = shards.iter().map(|(group, _)| group.as_str()).collect();
    assert_eq!(groups, ["kv/0", "kv/1", "kv/2"]);
    for (group, keys) in &shards {
        assert!((50..150).contains(keys), "{group} holds {keys} of 300 keys: the slots divide evenly");
    }
    assert_eq!(shards.iter().map(|(_, keys)| keys).sum::<u64>(), 300);
    assert_eq!(c.get::<_, i64>("key:123").await?, 123);

    let dbsize: u64 = redis::cmd("DBSIZE").query_async(&mut c).await?;
    assert_eq!(dbsize, 300);
    let keys: Vec<String> = c.keys("key:*").await?;
    assert_eq!(keys.len(), 300);
    let mut scanned = BTreeSet::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) =
            redis::cmd("SCAN").arg(cursor).arg("COUNT").arg(17).query_async(&mut c).await?;
        scanned.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert_eq!(scanned.len(), 300, "SCAN visits every shard's keys");
    let random: String = redis::cmd("RANDOMKEY").query_async(&mut c).await?;
    assert!(random.starts_with("key:"));
    let info: String = redis::cmd("INFO").arg("keyspace").query_async(&mut c).await?;
    assert!(info.contains("db0:keys=300,"), "{info}");

    let _: () = redis::cmd("SELECT").arg(2).query_async(&mut c).await?;
    let _: () = c.set("in-db-2", 1).await?;
    let _: () = redis::cmd("FLUSHDB").query_async(&mut c).await?;
    let _: () = c.set("in-db-2", 1).await?;
    let _: () = redis::cmd("SELECT").arg(0).query_async(&mut c).await?;
    assert_eq!(redis::cmd("DBSIZE").query_async::<u64>(&mut c).await?, 300, "FLUSHDB of db 2 kept db 0");
    let _: () = redis::cmd("FLUSHALL").query_async(&mut c).await?;
    assert_eq!(redis::cmd("DBSIZE").query_async::<u64>(&mut c).await?, 0);
    assert!(shard_keys(&mut c).await?.iter().all(|(_, keys)| *keys == 0), "FLUSHALL empties every shard");
    Ok(())
}

#[tokio::test]
async fn commands_across_shards_are_split_or_answer_crossslot() -> anyhow::Result<()> {
    let node = Node::start(&["--shards", "3"])?;
    let mut c = node.client().await?;
    // "a" is in slot 15495 (shard 2), "b" in slot 3300 (shard 0).
    let crossslot = "CROSSSLOT Keys in request don't hash to the same slot";
    assert_eq!(seshat_tests::error_text(c.mset::<_, _, ()>(&[("a", 1), ("b", 2)]).await), crossslot);
    assert_eq!(seshat_tests::error_text(c.rename::<_, _, ()>("a", "b").await), crossslot);

    // MGET, EXISTS, TOUCH, DEL and UNLINK are served in parts, one per
    // shard, merged in the keys' order.
    let _: () = c.set("a", 1).await?;
    let _: () = c.set("d", 4).await?;
    let values: Vec<Option<i64>> = c.mget(&["b", "a", "c", "d", "a"]).await?;
    assert_eq!(values, [None, Some(1), None, Some(4), Some(1)]);
    let exists: i64 = redis::cmd("EXISTS").arg(&["a", "b", "d", "a"]).query_async(&mut c).await?;
    assert_eq!(exists, 3);
    let touched: i64 = redis::cmd("TOUCH").arg(&["a", "b", "d"]).query_async(&mut c).await?;
    assert_eq!(touched, 2);
    let deleted: i64 = redis::cmd("DEL").arg(&["a", "b", "c"]).query_async(&mut c).await?;
    assert_eq!(deleted, 1);
    let unlinked: i64 = redis::cmd("UNLINK").arg(&["a", "d"]).query_async(&mut c).await?;
    assert_eq!(unlinked, 1);

    // SORT reads the keys its patterns form in the sorted key's shard only.
    let _: () = c.rpush("{user}ids", &[2, 1]).await?;
    let _: () = c.mset(&[("{user}w_1", 20), ("{user}w_2", 10)]).await?;
    let sort = |by: &str| redis::cmd("SORT").arg("{user}ids").arg("BY").arg(by).arg("GET").arg("#").clone();
    assert_eq!(sort("{user}w_*").query_async::<Vec<i64>>(&mut c).await?, [2, 1]);
    assert_eq!(sort("nosort").query_async::<Vec<i64>>(&mut c).await?, [2, 1]);
    assert_eq!(
        seshat_tests::error_text(sort("w_*").query_async::<Vec<i64>>(&mut c).await),
        "ERR BY option of SORT denied in several shards when keys formed by the pattern may be in different shards."
    );
    let _: () = c.mset(&[("{user}a", 1), ("{user}b", 2)]).await?;
    let both: Vec<i64> = c.mget(&["{user}a", "{user}b"]).await?;
    assert_eq!(both, [1, 2], "keys with one hash tag share a shard");

    // A transaction runs in one shard: a command or a watched key of
    // another one makes it fail, as do keyless commands on the keyspace.
    let mut raw = node.raw().await?;
    for (command, expected) in [
        (&["MULTI"][..], "OK"),
        (&["SET", "a", "1"], "QUEUED"),
        (&["SET", "b", "2"], crossslot),
        (&["EXEC"], "EXECABORT Transaction discarded because of previous errors."),
        (&["WATCH", "a"], "OK"),
        (&["MULTI"], "OK"),
        (&["SET", "b", "2"], crossslot),
        (&["DISCARD"], "OK"),
        (&["WATCH", "a"], "OK"),
        (&["WATCH", "b"], crossslot),
        (&["UNWATCH"], "OK"),
        (&["MULTI"], "OK"),
        (&["DBSIZE"], "ERR DBSIZE inside MULTI is not supported with several shards"),
        (&["DISCARD"], "OK"),
        (&["SWAPDB", "0", "1"], "ERR SWAPDB is not supported with several shards"),
    ] {
        assert_eq!(seshat_tests::text(&raw.call(command).await?), expected, "{command:?}");
    }
    let _: () = redis::cmd("WATCH").arg("{user}a").query_async(&mut c).await?;
    let watched: Option<Vec<i64>> =
        redis::pipe().atomic().incr("{user}a", 10).incr("{user}b", 10).query_async(&mut c).await?;
    assert_eq!(watched, Some(vec![11, 12]), "a transaction within one shard runs");
    assert!(c.get::<_, Option<i64>>("a").await?.is_none(), "nothing of the refused ones ran");
    Ok(())
}

#[tokio::test]
async fn blocking_pops_and_expiry_work_on_every_shard() -> anyhow::Result<()> {
    let node = Node::start(&["--shards", "3"])?;
    let mut c = node.client().await?;
    // One key per shard: slots 3300 (kv/0), 7629 (kv/1), 15495 (kv/2).
    let keys = ["{b}list", "{k}list", "{a}list"];
    let mut waiters = Vec::new();
    for key in keys {
        let mut blocked = node.client().await?;
        waiters.push(tokio::spawn(async move { blocked.blpop::<_, Option<(String, String)>>(key, 10.0).await }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for key in keys {
        let _: () = c.rpush(key, format!("for {key}")).await?;
    }
    for (waiter, key) in waiters.into_iter().zip(keys) {
        let popped = tokio::time::timeout(Duration::from_secs(5), waiter).await???;
        assert_eq!(popped, Some((key.to_string(), format!("for {key}"))));
    }

    for key in keys {
        let _: () = redis::cmd("SET").arg(key).arg("v").arg("PX").arg(100).query_async(&mut c).await?;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while shard_keys(&mut c).await?.iter().any(|(_, keys)| *keys > 0) {
        assert!(tokio::time::Instant::now() < deadline, "every shard's sweeper removes its expired keys");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test]
async fn a_restart_keeps_the_shards_and_refuses_another_count() -> anyhow::Result<()> {
    let mut node = Node::start(&["--shards", "3"])?;
    {
        let mut c = node.client().await?;
        for i in 0..100 {
            let _: () = c.set(format!("key:{i}"), i).await?;
        }
    }
    node.terminate()?;
    let (status, stderr) = node.run_to_exit(&["--shards", "2"])?;
    assert!(!status.success());
    assert!(
        stderr.contains("the data dir holds 3 shard(s) of the Redis keyspace, not 2: start it with --shards 3"),
        "{stderr}"
    );
    node.restart()?;
    let mut c = node.client().await?;
    assert_eq!(shard_keys(&mut c).await?.len(), SHARDS);
    assert_eq!(redis::cmd("DBSIZE").query_async::<u64>(&mut c).await?, 100);
    for i in 0..100 {
        assert_eq!(c.get::<_, i64>(format!("key:{i}")).await?, i);
    }
    Ok(())
}
