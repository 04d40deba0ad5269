//! Every command family through the `redis` crate against the real binary.

use redis::AsyncCommands;
use seshat_tests::Node;

#[tokio::test]
async fn string_commands_through_a_client_library() -> anyhow::Result<()> {
    let node = Node::start(&[])?;
    let mut c = node.client().await?;

    let _: () = c.set("k", "v").await?;
    assert_eq!(c.get::<_, Option<String>>("k").await?, Some("v".into()));
    assert_eq!(c.get::<_, Option<String>>("missing").await?, None);
    let _: () = c.mset(&[("a", "1"), ("b", "2")]).await?;
    assert_eq!(
        c.mget::<_, Vec<Option<String>>>(&["a", "b", "c"]).await?,
        vec![Some("1".into()), Some("2".into()), None]
    );
    assert_eq!(c.incr::<_, _, i64>("a", 41).await?, 42);
    assert_eq!(c.decr::<_, _, i64>("a", 2).await?, 40);
    assert_eq!(redis::cmd("INCRBYFLOAT").arg("a").arg("0.5").query_async::<String>(&mut c).await?, "40.5");
    assert_eq!(c.append::<_, _, i64>("k", "alue").await?, 5);
    assert_eq!(c.strlen::<_, i64>("k").await?, 5);
    assert_eq!(c.getrange::<_, String>("k", 1, 3).await?, "alu");
    assert_eq!(c.setrange::<_, _, i64>("k", 0, "V").await?, 5);
    assert_eq!(c.getset::<_, _, String>("k", "new").await?, "Value");
    assert_eq!(c.get_del::<_, String>("k").await?, "new");
    assert!(c.set_nx::<_, _, bool>("nx", "1").await?);
    assert!(!c.set_nx::<_, _, bool>("nx", "2").await?);
    assert!(c.mset_nx::<_, _, bool>(&[("m1", "1"), ("m2", "2")]).await?);
    let _: () = c.set_ex("ex", "v", 100).await?;
    assert_eq!(c.ttl::<_, i64>("ex").await?, 100);
    let _: () = c.pset_ex("pex", "v", 100_000).await?;
    assert!(c.pttl::<_, i64>("pex").await? > 99_000);
    assert_eq!(redis::cmd("GETEX").arg("pex").arg("PERSIST").query_async::<String>(&mut c).await?, "v");
    assert_eq!(c.ttl::<_, i64>("pex").await?, -1);

    let error = c.incr::<_, _, i64>("ex", 1).await.map(|_| ()).unwrap_err();
    assert!(error.to_string().contains("not an integer"), "{error}");
    Ok(())
}

#[tokio::test]
async fn key_commands_through_a_client_library() -> anyhow::Result<()> {
    let node = Node::start(&[])?;
    let mut c = node.client().await?;
    for i in 0..25 {
        let _: () = c.set(format!("key:{i}"), i).await?;
    }
    assert_eq!(c.exists::<_, i64>(&["key:1", "key:2", "nope"]).await?, 2);
    assert_eq!(redis::cmd("TYPE").arg("key:1").query_async::<String>(&mut c).await?, "string");
    assert_eq!(redis::cmd("DBSIZE").query_async::<i64>(&mut c).await?, 25);
    let mut keys: Vec<String> = c.keys("key:1*").await?;
    keys.sort();
    assert_eq!(
        keys,
        ["key:1", "key:10", "key:11", "key:12", "key:13", "key:14", "key:15", "key:16", "key:17", "key:18", "key:19"]
    );

    // SCAN visits every key exactly once when nothing changes meanwhile.
    let mut seen: Vec<String> = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) =
            redis::cmd("SCAN").arg(cursor).arg("COUNT").arg(7).query_async(&mut c).await?;
        seen.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    seen.sort();
    let mut expected: Vec<String> = (0..25).map(|i| format!("key:{i}")).collect();
    expected.sort();
    assert_eq!(seen, expected);

    let _: () = c.rename("key:0", "renamed").await?;
    assert!(!c.rename_nx::<_, _, bool>("key:1", "renamed").await?);
    assert_eq!(redis::cmd("COPY").arg("renamed").arg("copied").query_async::<i64>(&mut c).await?, 1);
    assert!(c.expire::<_, bool>("copied", 100).await?);
    assert!(c.persist::<_, bool>("copied").await?);
    assert_eq!(c.del::<_, i64>(&["renamed", "copied", "nope"]).await?, 2);
    assert!(redis::cmd("RANDOMKEY").query_async::<Option<String>>(&mut c).await?.is_some());

    // Databases are separate keyspaces.
    let mut other =
        redis::Client::open(format!("redis://{}/3", node.addr()))?.get_multiplexed_async_connection().await?;
    assert_eq!(redis::cmd("DBSIZE").query_async::<i64>(&mut other).await?, 0);
    let _: () = other.set("key:1", "in db 3").await?;
    assert_eq!(c.get::<_, String>("key:1").await?, "1");
    let _: () = redis::cmd("FLUSHDB").query_async(&mut c).await?;
    assert_eq!(redis::cmd("DBSIZE").query_async::<i64>(&mut c).await?, 0);
    assert_eq!(other.get::<_, String>("key:1").await?, "in db 3");
    let _: () = redis::cmd("FLUSHALL").query_async(&mut c).await?;
    assert_eq!(redis::cmd("DBSIZE").query_async::<i64>(&mut other).await?, 0);
    Ok(())
}

#[tokio::test]
async fn a_client_library_pipeline_keeps_order() -> anyhow::Result<()> {
    let node = Node::start(&[])?;
    let mut c = node.client().await?;
    let mut pipe = redis::pipe();
    for i in 0..200 {
        pipe.cmd("SET").arg("p").arg(i).ignore();
        pipe.cmd("INCR").arg("counter");
        pipe.cmd("GET").arg("p");
    }
    let results: Vec<redis::Value> = pipe.query_async(&mut c).await?;
    assert_eq!(results.len(), 400);
    for (i, pair) in results.chunks(2).enumerate() {
        assert_eq!(pair[0], redis::Value::Int(i as i64 + 1), "INCR #{i}");
        assert_eq!(pair[1], redis::Value::BulkString(i.to_string().into_bytes()), "GET after SET #{i}");
    }
    Ok(())
}

#[tokio::test]
async fn keys_expire_through_the_background_sweeper() -> anyhow::Result<()> {
    let node = Node::start(&[])?;
    let mut c = node.client().await?;
    let _: () = redis::cmd("SET").arg("short").arg("v").arg("PX").arg(150).query_async(&mut c).await?;
    let _: () = c.set("long", "v").await?;
    assert_eq!(c.get::<_, Option<String>>("short").await?, Some("v".into()));
    // Invisible to reads as soon as it expires…
    assert!(
        seshat_tests::eventually(std::time::Duration::from_secs(5), || {
            let mut c = c.clone();
            async move { c.get::<_, Option<String>>("short").await.unwrap().is_none() }
        })
        .await
    );
    // …and removed (DBSIZE counts it until then) by the leader's sweeper.
    assert!(
        seshat_tests::eventually(std::time::Duration::from_secs(5), || {
            let mut c = c.clone();
            async move { redis::cmd("DBSIZE").query_async::<i64>(&mut c).await.unwrap() == 1 }
        })
        .await
    );
    let info: String = redis::cmd("INFO").arg("stats").query_async(&mut c).await?;
    assert!(info.contains("expired_keys:1"), "{info}");
    Ok(())
}
