//! The wire protocol with raw bytes: pipelining, inline commands, RESP3,
//! and every input limit (the error Redis gives, then the close).

use redis_protocol::resp2::types::OwnedFrame as F;
use redis_protocol::resp3::types::OwnedFrame as F3;
use seshat_tests::{encode_command, Node};

fn bulk(s: &str) -> F {
    F::BulkString(s.as_bytes().to_vec())
}

fn status(s: &str) -> F {
    F::SimpleString(s.as_bytes().to_vec())
}

fn error(s: &str) -> F {
    F::Error(s.into())
}

#[tokio::test]
async fn pipelined_requests_in_one_write_get_replies_in_order() -> anyhow::Result<()> {
    let node = Node::start(&[])?;
    let mut raw = node.raw().await?;
    let mut batch = Vec::new();
    for i in 0..100 {
        batch.extend(encode_command(&[b"SET", b"k", i.to_string().as_bytes()]));
        batch.extend(encode_command(&[b"GET", b"k"]));
        batch.extend(encode_command(&[b"INCR", b"k"]));
    }
    raw.send(&batch).await?;
    for i in 0..100 {
        assert_eq!(raw.read2().await?, status("OK"));
        assert_eq!(raw.read2().await?, bulk(&i.to_string()));
        assert_eq!(raw.read2().await?, F::Integer(i + 1));
    }
    Ok(())
}

/// Consecutive reads of a pipeline run together; each still sees exactly
/// the writes before it and none after it, and replies stay in order.
#[tokio::test]
async fn runs_of_pipelined_reads_see_the_writes_around_them() -> anyhow::Result<()> {
    let node = Node::start(&[])?;
    let mut raw = node.raw().await?;
    let commands: [&[&[u8]]; 10] = [
        &[b"SET", b"a", b"old"],
        &[b"GET", b"a"],
        &[b"PING"],
        &[b"EXISTS", b"a", b"b"],
        &[b"MGET", b"a", b"b"],
        &[b"SET", b"a", b"new"],
        &[b"SET", b"b", b"2"],
        &[b"GET", b"a"],
        &[b"STRLEN", b"b"],
        &[b"GET", b"b"],
    ];
    raw.send(&commands.iter().flat_map(|c| encode_command(c)).collect::<Vec<u8>>()).await?;
    let expected = [
        status("OK"),
        bulk("old"),
        status("PONG"),
        F::Integer(1),
        F::Array(vec![bulk("old"), F::Null]),
        status("OK"),
        status("OK"),
        bulk("new"),
        F::Integer(1),
        bulk("2"),
    ];
    for (i, want) in expected.into_iter().enumerate() {
        assert_eq!(raw.read2().await?, want, "reply {i}");
    }
    Ok(())
}

#[tokio::test]
async fn inline_commands_work_like_telnet() -> anyhow::Result<()> {
    let node = Node::start(&[])?;
    let mut raw = node.raw().await?;
    raw.send(b"SET greeting \"hello world\"\r\nGET greeting\nPING\r\n\r\nECHO 'it\\'s'\r\n").await?;
    assert_eq!(raw.read2().await?, status("OK"));
    assert_eq!(raw.read2().await?, bulk("hello world"));
    assert_eq!(raw.read2().await?, status("PONG"));
    assert_eq!(raw.read2().await?, bulk("it's"));
    raw.send(b"SET x \"unbalanced\r\n").await?;
    assert_eq!(raw.read2().await?, error("ERR Protocol error: unbalanced quotes in request"));
    assert!(raw.closed().await);
    Ok(())
}

#[tokio::test]
async fn user_errors_keep_the_connection_open() -> anyhow::Result<()> {
    let node = Node::start(&[])?;
    let mut raw = node.raw().await?;
    assert_eq!(
        raw.call(&["NOSUCH", "a"]).await?,
        error("ERR unknown command 'NOSUCH', with args beginning with: 'a' ")
    );
    assert_eq!(raw.call(&["GET"]).await?, error("ERR wrong number of arguments for 'get' command"));
    assert_eq!(raw.call(&["SET", "s", "x"]).await?, status("OK"));
    assert_eq!(raw.call(&["INCR", "s"]).await?, error("ERR value is not an integer or out of range"));
    assert_eq!(raw.call(&["SET", "s", "x", "EX", "0"]).await?, error("ERR invalid expire time in 'set' command"));
    assert_eq!(raw.call(&["SELECT", "99"]).await?, error("ERR DB index is out of range"));
    assert_eq!(raw.call(&["GET", "s"]).await?, bulk("x"));
    Ok(())
}

#[tokio::test]
async fn resp3_after_hello_3() -> anyhow::Result<()> {
    let node = Node::start(&[])?;
    let mut raw = node.raw().await?;
    raw.send_command(&[b"HELLO", b"3"]).await?;
    let F3::Map { data, .. } = raw.read3().await? else { panic!("HELLO 3 answers a map") };
    let proto =
        data.iter().find(|(k, _)| matches!(k, F3::BlobString { data, .. } if data == b"proto")).map(|(_, v)| v.clone());
    assert_eq!(proto, Some(F3::Number { data: 3, attributes: None }));
    raw.send_command(&[b"GET", b"missing"]).await?;
    assert_eq!(raw.read3().await?, F3::Null);
    raw.send_command(&[b"CONFIG", b"GET", b"maxclients"]).await?;
    assert!(matches!(raw.read3().await?, F3::Map { .. }));
    raw.send_command(&[b"HELLO", b"2"]).await?;
    assert!(matches!(raw.read2().await?, F::Array(_)));
    raw.send_command(&[b"GET", b"missing"]).await?;
    assert_eq!(raw.read2().await?, F::Null);
    Ok(())
}

#[tokio::test]
async fn oversized_bulk_is_refused_from_its_header() -> anyhow::Result<()> {
    let node = Node::start(&["--proto-max-bulk-len", "1048576"])?;
    let mut raw = node.raw().await?;
    // Exactly the limit is fine.
    let value = vec![b'x'; 1 << 20];
    raw.send_command(&[b"SET", b"big", &value]).await?;
    assert_eq!(raw.read2().await?, status("OK"));
    // One byte over is refused before any payload is sent.
    raw.send(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$1048577\r\n").await?;
    assert_eq!(raw.read2().await?, error("ERR Protocol error: invalid bulk length"));
    assert!(raw.closed().await);
    // The node keeps serving others, and the acknowledged value is intact.
    let mut other = node.raw().await?;
    assert_eq!(other.call(&["STRLEN", "big"]).await?, F::Integer(1 << 20));
    Ok(())
}

#[tokio::test]
async fn malformed_frames_get_redis_protocol_errors() -> anyhow::Result<()> {
    let node = Node::start(&[])?;
    let cases: &[(&[u8], &str)] = &[
        (b"*abc\r\n", "ERR Protocol error: invalid multibulk length"),
        (b"*1\r\n:12\r\n", "ERR Protocol error: expected '$', got ':'"),
        (b"*1\r\n$-3\r\n", "ERR Protocol error: invalid bulk length"),
        (b"*2000000\r\n", "ERR Protocol error: invalid multibulk length"),
    ];
    for (input, expected) in cases {
        let mut raw = node.raw().await?;
        raw.send(input).await?;
        match raw.read2().await? {
            F::Error(text) => assert!(text.starts_with(expected), "{:?}: {text}", String::from_utf8_lossy(input)),
            other => panic!("{:?}: expected an error, got {other:?}", String::from_utf8_lossy(input)),
        }
        assert!(raw.closed().await, "{:?} must close the connection", String::from_utf8_lossy(input));
    }
    // A request line longer than 64 KiB without a newline.
    let mut raw = node.raw().await?;
    raw.send(&vec![b'a'; 70 * 1024]).await?;
    assert_eq!(raw.read2().await?, error("ERR Protocol error: too big inline request"));
    assert!(raw.closed().await);
    Ok(())
}

#[tokio::test]
async fn unauthenticated_clients_get_stricter_limits() -> anyhow::Result<()> {
    let node = Node::start(&["--requirepass", "s3cret"])?;
    let mut raw = node.raw().await?;
    raw.send(b"*11\r\n").await?;
    assert_eq!(raw.read2().await?, error("ERR Protocol error: unauthenticated multibulk length"));
    assert!(raw.closed().await);
    let mut raw = node.raw().await?;
    raw.send(b"*2\r\n$4\r\nAUTH\r\n$20000\r\n").await?;
    assert_eq!(raw.read2().await?, error("ERR Protocol error: unauthenticated bulk length"));
    assert!(raw.closed().await);
    Ok(())
}

#[tokio::test]
async fn the_client_cap_refuses_extra_connections() -> anyhow::Result<()> {
    let node = Node::start(&["--maxclients", "2"])?;
    let mut first = node.raw().await?;
    let mut second = node.raw().await?;
    assert_eq!(first.call(&["PING"]).await?, status("PONG"));
    assert_eq!(second.call(&["PING"]).await?, status("PONG"));
    let mut third = node.raw().await?;
    assert_eq!(third.read2().await?, error("ERR max number of clients reached"));
    assert!(third.closed().await);
    drop(first);
    // The freed slot is reusable once the server has seen the close.
    let reconnected = seshat_tests::eventually(std::time::Duration::from_secs(5), || async {
        let Ok(mut raw) = node.raw().await else { return false };
        matches!(raw.call(&["PING"]).await, Ok(reply) if reply == status("PONG"))
    })
    .await;
    assert!(reconnected);
    Ok(())
}
