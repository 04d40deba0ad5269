//! Server, connection and introspection commands against the real binary.

use redis_protocol::resp2::types::OwnedFrame as F;
use seshat_tests::Node;

fn text(frame: F) -> String {
    match frame {
        F::BulkString(b) | F::SimpleString(b) => String::from_utf8(b).unwrap(),
        F::Error(e) => e,
        other => panic!("not text: {other:?}"),
    }
}

#[tokio::test]
async fn requirepass_gates_every_command_until_auth() -> anyhow::Result<()> {
    let node = Node::start(&["--requirepass", "s3cret"])?;
    let mut raw = node.raw().await?;
    assert_eq!(text(raw.call(&["GET", "k"]).await?), "NOAUTH Authentication required.");
    assert_eq!(
        text(raw.call(&["AUTH", "wrong"]).await?),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    assert!(text(raw.call(&["HELLO", "3"]).await?)
        .starts_with("NOAUTH HELLO must be called with the client already authenticated"));
    assert_eq!(text(raw.call(&["AUTH", "s3cret"]).await?), "OK");
    assert_eq!(text(raw.call(&["SET", "k", "v"]).await?), "OK");
    // HELLO … AUTH authenticates too, and the redis crate uses the URL password.
    let mut hello = node.raw().await?;
    assert!(matches!(hello.call(&["HELLO", "2", "AUTH", "default", "s3cret"]).await?, F::Array(_)));
    let client = redis::Client::open(format!("redis://:s3cret@{}/", node.addr()))?;
    let mut c = client.get_multiplexed_async_connection().await?;
    assert_eq!(redis::cmd("GET").arg("k").query_async::<String>(&mut c).await?, "v");
    // RESET drops the authentication.
    assert_eq!(text(raw.call(&["RESET"]).await?), "RESET");
    assert_eq!(text(raw.call(&["GET", "k"]).await?), "NOAUTH Authentication required.");
    Ok(())
}

#[tokio::test]
async fn info_reports_redis_sections() -> anyhow::Result<()> {
    let node = Node::start(&[])?;
    let mut raw = node.raw().await?;
    raw.call(&["SET", "a", "1"]).await?;
    raw.call(&["SET", "b", "1", "EX", "100"]).await?;
    let info = text(raw.call(&["INFO"]).await?);
    for needle in [
        "# Server\r\nredis_version:7.2.0\r\n",
        &format!("tcp_port:{}\r\n", node.port()),
        "# Clients\r\nconnected_clients:1\r\n",
        "# Memory\r\nused_memory:",
        "# Persistence\r\nloading:0\r\n",
        "# Stats\r\ntotal_connections_received:1\r\n",
        "# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\n",
    ] {
        assert!(info.contains(needle), "INFO lacks {needle:?}:\n{info}");
    }
    let only = text(raw.call(&["INFO", "keyspace"]).await?);
    assert_eq!(only, "# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\n");
    Ok(())
}

#[tokio::test]
async fn clients_are_listed_named_and_killed() -> anyhow::Result<()> {
    let node = Node::start(&[])?;
    let mut admin = node.raw().await?;
    let mut victim = node.raw().await?;
    assert_eq!(text(victim.call(&["CLIENT", "SETNAME", "victim"]).await?), "OK");
    let F::Integer(victim_id) = victim.call(&["CLIENT", "ID"]).await? else { panic!("CLIENT ID is an integer") };
    let list = text(admin.call(&["CLIENT", "LIST"]).await?);
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(list.contains(&format!("id={victim_id} ")) && list.contains("name=victim"), "{list}");
    assert_eq!(admin.call(&["CLIENT", "KILL", "ID", &victim_id.to_string()]).await?, F::Integer(1));
    assert!(victim.closed().await);
    assert_eq!(admin.call(&["CLIENT", "KILL", "ID", &victim_id.to_string()]).await?, F::Integer(0));
    Ok(())
}

#[tokio::test]
async fn command_introspection_matches_the_table() -> anyhow::Result<()> {
    let node = Node::start(&[])?;
    let mut raw = node.raw().await?;
    let F::Integer(count) = raw.call(&["COMMAND", "COUNT"]).await? else { panic!("COUNT is an integer") };
    let F::Array(all) = raw.call(&["COMMAND"]).await? else { panic!("COMMAND is an array") };
    assert_eq!(all.len() as i64, count);
    let F::Array(info) = raw.call(&["COMMAND", "INFO", "set"]).await? else { panic!() };
    let F::Array(set) = &info[0] else { panic!() };
    assert_eq!(set[0], F::BulkString(b"set".to_vec()));
    assert_eq!(set[1], F::Integer(-3));
    let F::Array(docs) = raw.call(&["COMMAND", "DOCS", "get"]).await? else { panic!() };
    assert_eq!(docs[0], F::BulkString(b"get".to_vec()));
    Ok(())
}

#[tokio::test]
async fn config_set_changes_what_config_get_reports() -> anyhow::Result<()> {
    let node = Node::start(&[])?;
    let mut raw = node.raw().await?;
    assert_eq!(text(raw.call(&["CONFIG", "SET", "requirepass", "pw"]).await?), "OK");
    let mut fresh = node.raw().await?;
    assert_eq!(text(fresh.call(&["PING"]).await?), "NOAUTH Authentication required.");
    assert_eq!(text(raw.call(&["CONFIG", "SET", "requirepass", ""]).await?), "OK");
    let mut open = node.raw().await?;
    assert_eq!(text(open.call(&["PING"]).await?), "PONG");
    assert_eq!(
        raw.call(&["CONFIG", "GET", "proto-max-bulk-len"]).await?,
        F::Array(vec![F::BulkString(b"proto-max-bulk-len".to_vec()), F::BulkString(b"536870912".to_vec())])
    );
    Ok(())
}
