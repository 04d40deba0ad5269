//! Geo against a real redis-server: thousands of points over the whole
//! map (so sorted sets past Redis's listpack size, cells at the poles and
//! the antimeridian, radii so large that neighbouring cells coincide), and
//! every search form answers with the same members, order, distances,
//! hashes and coordinates; a 3-node cluster computes a stored search at
//! apply on every replica.

use std::time::Duration;

use anyhow::Result;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis_protocol::resp2::types::OwnedFrame as Frame2;
use seshat_tests::{Cluster, Node, Raw, RedisServer, FAST};

async fn call(raw: &mut Raw, args: &[String]) -> Result<Frame2> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    raw.send_command(&args).await?;
    raw.read2().await
}

fn words(line: &str) -> Vec<String> {
    line.split(' ').map(str::to_string).collect()
}

/// A GEOADD of `count` random points: most anywhere, some packed around
/// a city, some at the storable edges.
fn points(rng: &mut StdRng, key: &str, count: usize) -> Vec<String> {
    let mut args = vec!["GEOADD".to_string(), key.to_string()];
    for i in 0..count {
        let (longitude, latitude) = match i % 4 {
            0 | 1 => (rng.random_range(-180.0..=180.0), rng.random_range(-85.05..=85.05)),
            2 => (2.35 + rng.random_range(-0.5..0.5), 48.85 + rng.random_range(-0.3..0.3)),
            _ => (rng.random_range(170.0..=180.0) * if rng.random_bool(0.5) { 1.0 } else { -1.0 }, {
                rng.random_range(60.0..85.05) * if rng.random_bool(0.5) { 1.0 } else { -1.0 }
            }),
        };
        args.extend([format!("{longitude:.6}"), format!("{latitude:.6}"), format!("p{i}")]);
    }
    args
}

#[tokio::test]
async fn searches_over_thousands_of_points_answer_what_redis_does() -> Result<()> {
    let reference = RedisServer::start().await?;
    let node = Node::start(&[])?;
    let mut redis = Raw::connect(reference.addr).await?;
    let mut seshat = node.raw().await?;
    let mut rng = StdRng::seed_from_u64(17);
    let add = points(&mut rng, "world", 3000);
    assert_eq!(call(&mut seshat, &add).await?, call(&mut redis, &add).await?);

    let mut script: Vec<Vec<String>> = vec![
        words("GEOSEARCH world FROMLONLAT 2.35 48.85 BYRADIUS 20 km"),
        words("GEOSEARCH world FROMLONLAT 2.35 48.85 BYRADIUS 20 km WITHDIST WITHHASH WITHCOORD ASC"),
        words("GEOSEARCH world FROMLONLAT 2.35 48.85 BYBOX 30 10 km DESC COUNT 7"),
        words("GEOSEARCH world FROMLONLAT 2.35 48.85 BYBOX 30 10 km COUNT 7 ANY"),
        words("GEOSEARCH world FROMLONLAT 179.9 84 BYRADIUS 300 km WITHDIST"),
        words("GEOSEARCH world FROMLONLAT -179.9 -84 BYBOX 900 300 km WITHDIST"),
        words("GEOSEARCH world FROMLONLAT 0 0 BYRADIUS 7000 km"),
        words("GEOSEARCH world FROMLONLAT 100 45 BYRADIUS 12000 km COUNT 25 DESC WITHDIST"),
        words("GEORADIUS world 2.35 48.85 10 mi WITHDIST"),
        words("GEORADIUS_RO world -150 30 2000 km ASC WITHCOORD"),
        words("GEORADIUSBYMEMBER world p2 15000 ft WITHDIST ASC"),
        words("GEORADIUSBYMEMBER_RO world p7 1000 km COUNT 3 ANY"),
        words("GEOSEARCHSTORE stored world FROMMEMBER p10 BYRADIUS 5000 km STOREDIST"),
        words("ZRANGE stored 0 -1 WITHSCORES"),
        words("GEORADIUS world 2.35 48.85 25 km STORE stored"),
        words("ZRANGE stored 0 -1 WITHSCORES"),
    ];
    for _ in 0..60 {
        let (longitude, latitude) = (rng.random_range(-180.0..=180.0), rng.random_range(-85.0..=85.0));
        let radius = [1.0, 50.0, 400.0, 2500.0, 9000.0][rng.random_range(0..5)];
        script.push(words(&format!(
            "GEOSEARCH world FROMLONLAT {longitude:.4} {latitude:.4} BYRADIUS {radius} km WITHDIST"
        )));
        script.push(words(&format!(
            "GEOSEARCH world FROMMEMBER p{} BYBOX {} {} km WITHHASH",
            rng.random_range(0..3000),
            radius * 2.0,
            radius
        )));
    }
    script.push(words("GEOPOS world p0 p1 p2 p3 nowhere"));
    script.push(words("GEOHASH world p0 p1 p2 p3 nowhere"));
    script.push(words("GEODIST world p0 p1 km"));
    let mut matched = 0;
    for command in &script {
        let (want, have) = (call(&mut redis, command).await?, call(&mut seshat, command).await?);
        assert_eq!(have, want, "{}", command.join(" "));
        if let Frame2::Array(items) = want {
            matched += items.len();
        }
    }
    // The searches found plenty, so the comparison covered real answers.
    assert!(matched > 3000, "only {matched} members matched");
    Ok(())
}

#[tokio::test]
async fn a_cluster_computes_stored_searches_on_every_replica() -> Result<()> {
    let _exclusive = seshat_tests::one_cluster_at_a_time().await;
    let cluster = Cluster::start(3, FAST)?;
    let mut clients = Vec::new();
    for node in &cluster.nodes {
        clients.push(node.patient_client(Duration::from_secs(10)).await?);
    }
    let added: i64 = redis::cmd("GEOADD")
        .arg(&["{geo}Sicily", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"])
        .arg(&["13.583333", "37.316667", "Agrigento"])
        .query_async(&mut clients[0])
        .await?;
    assert_eq!(added, 3);
    // Through another node: a write computed at apply from the replicated
    // set (both keys in one slot, as a cluster requires).
    let stored: i64 = redis::cmd("GEOSEARCHSTORE")
        .arg(&["{geo}near", "{geo}Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC", "STOREDIST"])
        .query_async(&mut clients[1])
        .await?;
    assert_eq!(stored, 3);
    let mut ranges = Vec::new();
    for client in &mut clients {
        let range: Vec<(String, String)> =
            redis::cmd("ZRANGE").arg(&["{geo}near", "0", "-1", "WITHSCORES"]).query_async(client).await?;
        ranges.push(range);
    }
    let members: Vec<&str> = ranges[0].iter().map(|(member, _)| member.as_str()).collect();
    assert_eq!(members, ["Catania", "Agrigento", "Palermo"]);
    assert_eq!(ranges[0][0].1, "56.441257870158204");
    assert!(ranges.iter().all(|range| *range == ranges[0]), "replicas disagree: {ranges:?}");
    let nearest: Vec<(String, String)> = redis::cmd("GEORADIUS")
        .arg(&["{geo}Sicily", "15", "37", "100", "km", "WITHDIST"])
        .query_async(&mut clients[2])
        .await?;
    assert_eq!(nearest, [("Catania".to_string(), "56.4413".to_string())]);
    Ok(())
}
