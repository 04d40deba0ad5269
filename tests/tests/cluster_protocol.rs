//! The Redis Cluster protocol on a single node (`--cluster-enabled yes`,
//! three shards): CLUSTER's subcommands, CROSSSLOT per hash slot, and the
//! clients that speak the protocol: `redis-cli -c`, `redis-cli --cluster`
//! and redis-py's cluster client (`tests/cluster/check.py`).

use std::process::Command;

use redis::AsyncCommands;
use seshat_tests::bounded::{output_within, CLIENT_LIMIT};
use seshat_tests::Node;

fn redis_cli(node: &Node, args: &[&str]) -> String {
    seshat_tests::redis_cli(node.port(), args)
}

#[tokio::test]
async fn cluster_commands_describe_one_node_serving_every_slot() -> anyhow::Result<()> {
    let mut node = Node::start(&["--shards", "3", "--cluster-enabled", "yes"])?;
    let mut c = node.client().await?;
    let info: String = redis::cmd("CLUSTER").arg("INFO").query_async(&mut c).await?;
    for line in ["cluster_state:ok", "cluster_slots_assigned:16384", "cluster_slots_ok:16384", "cluster_known_nodes:1"]
    {
        assert!(info.lines().any(|l| l == line), "{line} in {info}");
    }
    let id: String = redis::cmd("CLUSTER").arg("MYID").query_async(&mut c).await?;
    assert!(id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    let nodes: String = redis::cmd("CLUSTER").arg("NODES").query_async(&mut c).await?;
    let bus_port = node.raft_addr().rsplit_once(':').map(|(_, port)| port.to_string()).unwrap_or_default();
    // The configuration epoch (field 7) is the metadata group's.
    let mut fields: Vec<&str> = nodes.trim_end().split(' ').collect();
    assert!(fields.len() == 9 && fields[6].parse::<u64>().is_ok_and(|epoch| epoch >= 1), "{nodes}");
    fields[6] = "E";
    let line = format!("{id} 127.0.0.1:{}@{bus_port} myself,master - 0 0 E connected 0-16383", node.port());
    assert_eq!(fields.join(" "), line);
    assert!(nodes.ends_with('\n') && nodes.lines().count() == 1, "{nodes}");
    let slots: Vec<(u16, u16, (String, u16, String))> = {
        let raw: Vec<redis::Value> = redis::cmd("CLUSTER").arg("SLOTS").query_async(&mut c).await?;
        raw.into_iter()
            .map(|range| {
                let (first, last, master): (u16, u16, Vec<redis::Value>) = redis::from_redis_value(range).unwrap();
                let field = |i: usize| master[i].clone();
                let ip: String = redis::from_redis_value(field(0)).unwrap();
                let port: u16 = redis::from_redis_value(field(1)).unwrap();
                let id: String = redis::from_redis_value(field(2)).unwrap();
                (first, last, (ip, port, id))
            })
            .collect()
    };
    assert_eq!(slots, [(0, 16383, ("127.0.0.1".to_string(), node.port(), id.clone()))]);
    let slot: i64 = redis::cmd("CLUSTER").arg("KEYSLOT").arg("123456789").query_async(&mut c).await?;
    assert_eq!(slot, 12739);
    let slot: i64 = redis::cmd("CLUSTER").arg("KEYSLOT").arg("user:{42}:x").query_async(&mut c).await?;
    assert_eq!(slot, 8000);

    // "foo" is in slot 12182.
    let _: () = c.set("foo", 1).await?;
    let _: () = c.set("{foo}bar", 2).await?;
    let count: i64 = redis::cmd("CLUSTER").arg("COUNTKEYSINSLOT").arg(12182).query_async(&mut c).await?;
    assert_eq!(count, 2);
    let keys: Vec<String> = redis::cmd("CLUSTER").arg("GETKEYSINSLOT").arg(12182).arg(1).query_async(&mut c).await?;
    assert_eq!(keys.len(), 1);
    assert_eq!(
        seshat_tests::error_text(
            redis::cmd("CLUSTER").arg("COUNTKEYSINSLOT").arg(16384).query_async::<i64>(&mut c).await
        ),
        "ERR Invalid slot"
    );

    // "b" (slot 3300) and "f" (slot 3168) share a shard, not a slot: Redis
    // Cluster's rule is per slot.
    let crossslot = "CROSSSLOT Keys in request don't hash to the same slot";
    assert_eq!(seshat_tests::error_text(c.mset::<_, _, ()>(&[("b", 1), ("f", 2)]).await), crossslot);
    assert_eq!(
        seshat_tests::error_text(c.mget::<_, Vec<Option<i64>>>(&["b", "d"]).await),
        crossslot,
        "no splitting here"
    );
    let mut raw = node.raw().await?;
    for (command, expected) in [
        (&["MULTI"][..], "OK"),
        (&["SET", "b", "1"], "QUEUED"),
        (&["SET", "f", "2"], crossslot),
        (&["EXEC"], "EXECABORT Transaction discarded because of previous errors."),
        (&["WATCH", "b"], "OK"),
        (&["WATCH", "f"], crossslot),
        (&["MULTI"], "OK"),
        (&["SET", "{b}x", "1"], "QUEUED"),
        (&["EXEC"], "OK"),
    ] {
        assert_eq!(seshat_tests::text(&raw.call(command).await?), expected, "{command:?}");
    }
    assert_eq!(
        seshat_tests::error_text(redis::cmd("SELECT").arg(1).query_async::<()>(&mut c).await),
        "ERR SELECT is not allowed in cluster mode"
    );
    let _: () = redis::cmd("ASKING").query_async(&mut c).await?;
    assert_eq!(
        seshat_tests::error_text(
            redis::cmd("SORT").arg("foo").arg("GET").arg("w_*").query_async::<Vec<String>>(&mut c).await
        ),
        "ERR GET option of SORT denied in Cluster mode when keys formed by the pattern may be in different slots."
    );
    let info: String = redis::cmd("INFO").arg("cluster").query_async(&mut c).await?;
    assert!(info.contains("cluster_enabled:1"), "{info}");
    let config: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("cluster-enabled").query_async(&mut c).await?;
    assert_eq!(config, ["cluster-enabled", "yes"]);

    drop(c);
    node.restart()?;
    let mut c = node.client().await?;
    let again: String = redis::cmd("CLUSTER").arg("MYID").query_async(&mut c).await?;
    assert_eq!(again, id, "the node's id survives a restart");
    Ok(())
}

#[tokio::test]
async fn redis_cli_and_redis_py_work_as_cluster_clients() -> anyhow::Result<()> {
    let node = Node::start(&["--shards", "3", "--cluster-enabled", "yes"])?;
    assert_eq!(redis_cli(&node, &["-c", "SET", "user:1", "ada"]).trim(), "OK");
    assert_eq!(redis_cli(&node, &["-c", "GET", "user:1"]).trim(), "ada");
    let check = redis_cli(&node, &["--cluster", "check", &format!("127.0.0.1:{}", node.port())]);
    assert!(check.contains("[OK] All nodes agree about slots configuration."), "{check}");
    assert!(check.contains("[OK] All 16384 slots covered."), "{check}");
    let info = redis_cli(&node, &["--cluster", "info", &format!("127.0.0.1:{}", node.port())]);
    assert!(info.contains("1 keys | 16384 slots | 0 slaves."), "{info}");

    let script = seshat_tests::package_dir().join("cluster").join("check.py");
    let mut command = Command::new(seshat_tests::python());
    command.arg(script).arg(node.port().to_string());
    let output = output_within(&mut command, CLIENT_LIMIT)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "redis-py failed:\n{stdout}\n{stderr}\nnode log:\n{}", node.log());
    assert!(stdout.contains("passed"), "{stdout}");
    Ok(())
}

#[tokio::test]
async fn without_the_flag_cluster_answers_as_redis_without_cluster_support() -> anyhow::Result<()> {
    let node = Node::start(&[])?;
    let mut c = node.client().await?;
    let disabled = "ERR This instance has cluster support disabled";
    assert_eq!(
        seshat_tests::error_text(redis::cmd("CLUSTER").arg("INFO").query_async::<String>(&mut c).await),
        disabled
    );
    assert_eq!(seshat_tests::error_text(redis::cmd("ASKING").query_async::<()>(&mut c).await), disabled);
    let info: String = redis::cmd("INFO").arg("cluster").query_async(&mut c).await?;
    assert!(info.contains("cluster_enabled:0"), "{info}");
    // Keys of different slots in one shard are fine without the protocol.
    let _: () = c.mset(&[("b", 1), ("f", 2)]).await?;
    let (status, stderr) = node.run_to_exit(&["--cluster-enabled", "maybe"])?;
    assert!(!status.success());
    assert!(stderr.contains("--cluster-enabled 'maybe' is not yes or no"), "{stderr}");
    Ok(())
}
