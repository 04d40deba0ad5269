//! Client-side caching (CLIENT TRACKING) against a real redis-server: the
//! same sessions (default mode, NOLOOP, OPTIN, OPTOUT, BCAST with
//! prefixes, REDIRECT to a RESP2 subscriber, a flush) give the tracking
//! connections the same invalidation messages, and the CLIENT
//! subcommands the same replies and errors; on a 3-node cluster, a client
//! tracking through one node is told of writes through the others; with
//! replicas on some nodes only, a node follows the changes of the shards
//! it does not hold, also across the failure of their leader.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use redis_protocol::resp3::types::OwnedFrame as Frame3;
use seshat_tests::differential::Tree;
use seshat_tests::placement::{key_elsewhere, placed, shard_of, shards};
use seshat_tests::{eventually, one_cluster_at_a_time, Cluster, Node, Raw, RedisServer, FAST};

/// A connection that keeps the pushes it receives apart from replies.
struct Conn {
    raw: Raw,
    resp3: bool,
    pushes: Vec<Tree>,
}

impl Conn {
    async fn open(addr: SocketAddr, resp3: bool) -> Result<Conn> {
        let mut conn = Conn { raw: Raw::connect(addr).await?, resp3: false, pushes: Vec::new() };
        if resp3 {
            conn.resp3 = true;
            conn.call("HELLO 3").await?;
        }
        Ok(conn)
    }

    async fn call_args(&mut self, args: &[Vec<u8>]) -> Result<Tree> {
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        self.raw.send_command(&args).await?;
        if !self.resp3 {
            return Ok(Tree::from(self.raw.read2().await?));
        }
        loop {
            match self.raw.read3().await? {
                push @ Frame3::Push { .. } => self.pushes.push(Tree::from(push)),
                reply => return Ok(Tree::from(reply)),
            }
        }
    }

    async fn call(&mut self, line: &str) -> Result<Tree> {
        let args: Vec<Vec<u8>> = line.split(' ').map(|w| w.as_bytes().to_vec()).collect();
        self.call_args(&args).await.with_context(|| line.to_string())
    }

    /// Reads pushes until one carries `marker`; returns them all.
    async fn pushes_until(&mut self, marker: &str) -> Result<Vec<Tree>> {
        let has_marker = |push: &Tree| format!("{push:?}").contains(&format!("{:?}", marker.as_bytes()));
        while !self.pushes.iter().any(has_marker) {
            let frame = tokio::time::timeout(Duration::from_secs(10), self.raw.read3())
                .await
                .with_context(|| format!("no push with {marker} within 10 s; got {:?}", self.pushes))??;
            match frame {
                push @ Frame3::Push { .. } => self.pushes.push(Tree::from(push)),
                other => bail!("a reply where a push was expected: {other:?}"),
            }
        }
        Ok(std::mem::take(&mut self.pushes))
    }
}

/// One server's run of the scenario: every reply and every push, by
/// connection.
async fn scenario(addr: SocketAddr) -> Result<Vec<(String, Tree)>> {
    let mut log = Vec::new();
    let mut writer = Conn::open(addr, false).await?;
    let mut plain = Conn::open(addr, true).await?;
    let mut noloop = Conn::open(addr, true).await?;
    let mut optin = Conn::open(addr, true).await?;
    let mut optout = Conn::open(addr, true).await?;
    let mut bcast = Conn::open(addr, true).await?;
    let mut listener = Conn::open(addr, false).await?;
    let mut redirected = Conn::open(addr, false).await?;
    let Tree::Int(listener_id) = listener.call("CLIENT ID").await? else { bail!("CLIENT ID") };
    listener.call("SUBSCRIBE __redis__:invalidate").await?;
    let setup = [
        (&mut plain, "CLIENT TRACKING ON".to_string()),
        (&mut noloop, "CLIENT TRACKING ON NOLOOP".into()),
        (&mut optin, "CLIENT TRACKING ON OPTIN".into()),
        (&mut optout, "CLIENT TRACKING ON OPTOUT".into()),
        (&mut bcast, "CLIENT TRACKING ON BCAST PREFIX user: PREFIX item:".into()),
        (&mut redirected, format!("CLIENT TRACKING ON REDIRECT {listener_id}")),
    ];
    for (conn, line) in setup {
        let reply = conn.call(&line).await?;
        log.push((line.replace(&listener_id.to_string(), "<listener>"), reply));
    }
    // Errors and introspection.
    for line in [
        "CLIENT TRACKING ON BCAST",
        "CLIENT TRACKING ON OPTIN OPTOUT",
        "CLIENT TRACKING ON PREFIX a",
        "CLIENT TRACKING ON REDIRECT 999999",
        "CLIENT TRACKING MAYBE",
        "CLIENT CACHING YES",
        "CLIENT TRACKINGINFO",
        "CLIENT GETREDIR",
    ] {
        log.push((format!("plain {line}"), plain.call(line).await?));
    }
    for line in
        ["CLIENT TRACKING ON BCAST PREFIX us", "CLIENT TRACKING ON BCAST PREFIX it PREFIX itx", "CLIENT TRACKINGINFO"]
    {
        log.push((format!("bcast {line}"), bcast.call(line).await?));
    }
    log.push(("optout CACHING YES".into(), optout.call("CLIENT CACHING YES").await?));
    log.push((
        "redirected GETREDIR".into(),
        redirected
            .call("CLIENT GETREDIR")
            .await
            .map(|t| matches!(t, Tree::Int(id) if id == listener_id))
            .map(Tree::Bool)?,
    ));
    // Reads that are (or are not) cached.
    plain.call("GET k1").await?;
    plain.call("MGET k2 k3").await?;
    plain.call("HGET h f").await?;
    noloop.call("GET x").await?;
    optin.call("GET y").await?;
    optin.call("CLIENT CACHING YES").await?;
    optin.call("GET z").await?;
    optin.call("GET y2").await?;
    optout.call("CLIENT CACHING NO").await?;
    optout.call("GET y").await?;
    optout.call("GET w").await?;
    redirected.call("GET q").await?;
    // What INFO and CLIENT INFO say of it.
    let Tree::Bulk(info) = writer.call("INFO").await? else { bail!("INFO") };
    let info = String::from_utf8_lossy(&info).into_owned();
    for line in info.lines().filter(|line| line.starts_with("tracking_")) {
        log.push(("INFO".into(), Tree::Status(line.to_string())));
    }
    for (name, conn) in [("bcast", &mut bcast), ("plain", &mut plain), ("writer", &mut writer)] {
        let Tree::Bulk(client) = conn.call("CLIENT INFO").await? else { bail!("CLIENT INFO") };
        let client = String::from_utf8_lossy(&client).into_owned();
        let fields: Vec<&str> =
            client.split(' ').filter(|field| field.starts_with("flags=") || field.starts_with("redir=")).collect();
        log.push((format!("{name} CLIENT INFO"), Tree::Status(fields.join(" "))));
    }
    // Writes.
    for line in [
        "SET k1 v",
        "SET k1 again",
        "DEL k2",
        "HSET h f v",
        "SET y 1",
        "SET z 1",
        "SET y2 1",
        "SET w 1",
        "SET q 1",
        "SET user:1 a",
        "SET other a",
        "MSET user:3 b user:2 c item:9 d",
    ] {
        writer.call(line).await?;
    }
    noloop.call("SET x mine").await?;
    writer.call("SET x theirs").await?;
    noloop.call("GET x").await?;
    writer.call("SET x again").await?;
    // A flush invalidates everything, then a marker closes each stream.
    writer.call("FLUSHALL").await?;
    for conn in [&mut plain, &mut noloop, &mut optin, &mut optout, &mut redirected] {
        conn.call("GET marker").await?;
    }
    optin.call("CLIENT CACHING YES").await?;
    optin.call("GET marker").await?;
    writer.call("SET marker 1").await?;
    writer.call("SET user:marker 1").await?;
    for (name, conn) in [("plain", &mut plain), ("noloop", &mut noloop), ("optin", &mut optin), ("optout", &mut optout)]
    {
        for push in conn.pushes_until("marker").await? {
            log.push((format!("{name} push"), push));
        }
    }
    for push in bcast.pushes_until("user:marker").await? {
        log.push(("bcast push".into(), push));
    }
    // The RESP2 listener gets the redirected ones as messages.
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), listener.raw.read2()).await??;
        let tree = Tree::from(frame);
        let done = format!("{tree:?}").contains(&format!("{:?}", b"marker"));
        log.push(("listener message".into(), tree));
        if done {
            break;
        }
    }
    Ok(log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_sessions_get_the_invalidations_redis_sends() -> Result<()> {
    let reference = RedisServer::start().await?;
    let node = Node::start(&[])?;
    let want = scenario(reference.addr).await.context("redis")?;
    let have = scenario(node.addr()).await.context("seshat")?;
    for (i, (w, h)) in want.iter().zip(&have).enumerate() {
        assert_eq!(h, w, "entry {i}");
    }
    assert_eq!(have.len(), want.len(), "seshat: {have:?}");
    // Invalidations of every kind came, so the comparison is not of
    // empty streams.
    let pushes = |name: &str| want.iter().filter(|(what, _)| what == name).count();
    println!(
        "tracking: {} entries compared; pushes: plain {}, noloop {}, optin {}, optout {}, bcast {}, listener {}",
        want.len(),
        pushes("plain push"),
        pushes("noloop push"),
        pushes("optin push"),
        pushes("optout push"),
        pushes("bcast push"),
        pushes("listener message")
    );
    assert!(["plain push", "noloop push", "optin push", "optout push", "bcast push"].iter().all(|n| pushes(n) >= 2));
    Ok(())
}

#[tokio::test]
async fn a_client_tracking_through_one_node_is_told_of_writes_through_the_others() -> Result<()> {
    let _exclusive = one_cluster_at_a_time().await;
    let cluster = Cluster::start(3, FAST)?;
    for node in &cluster.nodes {
        node.patient_client(Duration::from_secs(10)).await?;
    }
    let mut setup = Conn::open(cluster.nodes[0].addr(), false).await?;
    setup.call("SET {t}b 1").await?;
    let mut tracker = Conn::open(cluster.nodes[2].addr(), true).await?;
    tracker.call("CLIENT TRACKING ON").await?;
    tracker.call("GET {t}missing").await?;
    tracker.call("GET {t}a").await?;
    tracker.call("GET {t}b").await?;
    let mut first = Conn::open(cluster.nodes[0].addr(), false).await?;
    let mut second = Conn::open(cluster.nodes[1].addr(), false).await?;
    first.call("SET {t}a 1").await?;
    second.call("DEL {t}b").await?;
    second.call("DEL {t}missing").await?;
    second.call("SET {t}a 2").await?;
    tracker.call("GET {t}marker").await?;
    first.call("SET {t}marker 1").await?;
    let pushes = tracker.pushes_until("{t}marker").await?;
    assert_eq!(pushes, vec![invalidate("{t}a"), invalidate("{t}b"), invalidate("{t}marker")]);
    // Off (the last tracking client: changes stop being collected), then
    // on again: collected again.
    tracker.call("CLIENT TRACKING OFF").await?;
    second.call("SET {t}unwatched 1").await?;
    tracker.call("CLIENT TRACKING ON").await?;
    tracker.call("GET {t}again").await?;
    first.call("SET {t}again 1").await?;
    assert_eq!(tracker.pushes_until("{t}again").await?, vec![invalidate("{t}again")]);
    Ok(())
}

/// `[invalidate, [key]]`.
fn invalidate(key: &str) -> Tree {
    Tree::Array(vec![Tree::Bulk(b"invalidate".to_vec()), Tree::Array(vec![Tree::Bulk(key.as_bytes().to_vec())])])
}

/// `pushes` without the flushes (`[invalidate, null]`): a feed that opens
/// flushes every tracking client's cache.
fn without_flushes(pushes: Vec<Tree>) -> Vec<Tree> {
    let flush = Tree::Array(vec![Tree::Bulk(b"invalidate".to_vec()), Tree::Null]);
    pushes.into_iter().filter(|push| *push != flush).collect()
}

#[tokio::test]
async fn a_node_follows_the_changes_of_the_shards_it_does_not_hold_for_its_tracking_clients() -> Result<()> {
    const SHARDS: u32 = 4;
    let _exclusive = one_cluster_at_a_time().await;
    // Three replicas of each of four shards on four nodes: node 1 holds
    // three shards and reaches the fourth through the others.
    let args = [FAST, &["--shards", "4", "--replicas", "3"]].concat();
    let mut cluster = Cluster::start(4, &args)?;
    assert!(eventually(Duration::from_secs(60), || placed(&cluster, SHARDS, 3)).await, "never placed");
    let node = &cluster.nodes[0];
    let remote = key_elsewhere(node, 1, SHARDS, "remote:").await?;
    let marker = key_elsewhere(node, 1, SHARDS, "marker:").await?;
    // Node 1 left the shard's membership; wait until it also stopped its
    // replica (which applies whatever reaches it until then).
    let group = format!("kv/{} ", shard_of(&remote, SHARDS));
    let stopped = eventually(Duration::from_secs(30), || async {
        let Ok(mut c) = node.patient_client(Duration::from_secs(10)).await else { return false };
        let groups: redis::RedisResult<Vec<String>> = redis::cmd("SESHAT").arg("GROUPS").query_async(&mut c).await;
        groups.is_ok_and(|groups| !groups.iter().any(|line| line.starts_with(&group)))
    })
    .await;
    assert!(stopped, "node 1 still runs a replica of {group}");
    let mut tracker = Conn::open(node.addr(), true).await?;
    assert_eq!(tracker.call("CLIENT TRACKING ON").await?, Tree::Status("OK".into()));
    let mut bcast = Conn::open(node.addr(), true).await?;
    assert_eq!(bcast.call("CLIENT TRACKING ON BCAST PREFIX remote:").await?, Tree::Status("OK".into()));
    tracker.call(&format!("GET {remote}")).await?;
    tracker.call(&format!("GET {marker}")).await?;
    let mut writer = Conn::open(cluster.nodes[2].addr(), false).await?;
    writer.call(&format!("SET {remote} 1")).await?;
    writer.call(&format!("SET {marker} 1")).await?;
    let pushes = without_flushes(tracker.pushes_until(&marker).await?);
    assert_eq!(pushes, vec![invalidate(&remote), invalidate(&marker)]);
    assert_eq!(without_flushes(bcast.pushes_until(&remote).await?), vec![invalidate(&remote)]);

    // The shard's leader dies: its feed (there or on another replica) may
    // break, which flushes; invalidations come again once a new leader
    // took over.
    let shard = &shards(node).await?[shard_of(&remote, SHARDS) as usize];
    let leader = shard.leader.context("the shard has no leader")?;
    assert_ne!(leader, 1, "node 1 leads a shard it holds no replica of");
    cluster.nodes[leader as usize - 1].kill9();
    let survivor = (2..=4).find(|id| *id != leader).expect("a surviving node");
    let mut writer = Conn::open(cluster.nodes[survivor as usize - 1].addr(), false).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let (mut resumed, mut flushes) = (false, 0);
    while !resumed && tokio::time::Instant::now() < deadline {
        tracker.call(&format!("GET {remote}")).await?;
        if let Tree::Status(_) = writer.call(&format!("SET {remote} x")).await? {
            let Ok(pushes) = tracker.pushes_until(&remote).await else { continue };
            flushes += pushes.len() - without_flushes(pushes.clone()).len();
            resumed = without_flushes(pushes) == vec![invalidate(&remote)];
        }
    }
    assert!(resumed, "no invalidation of {remote} after its shard's leader (node {leader}) died");
    println!("tracking across the death of node {leader}: {flushes} flushes");
    Ok(())
}
