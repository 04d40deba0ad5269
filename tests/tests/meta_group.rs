//! The metadata group votes on at most five nodes, whatever the cluster's
//! size; the other nodes follow its log as learners and so read the same
//! cluster map. Removing a voter gives its seat to a learner; a node that
//! joins a full group takes a learner's seat, unless it brings a zone the
//! voters lack.

use std::time::{Duration, Instant};

use seshat_tests::{eventually, one_cluster_at_a_time, redis_cli, Cluster, Node, FAST};

/// `(voters, learners)` of `meta/0`, as `node` sees them.
async fn meta_members(node: &Node) -> anyhow::Result<(Vec<u64>, Vec<u64>)> {
    let mut c = node.client().await?;
    let lines: Vec<String> = redis::cmd("SESHAT").arg("MEMBERS").arg("meta/0").query_async(&mut c).await?;
    let (mut voters, mut learners) = (Vec::new(), Vec::new());
    for line in lines {
        let fields: Vec<&str> = line.split(' ').collect();
        let id: u64 = fields[0].parse()?;
        if fields[2] == "voter" {
            voters.push(id);
        } else {
            learners.push(id);
        }
    }
    Ok((voters, learners))
}

/// Waits until every running node of `cluster` sees `voters` voters and
/// `learners` learners in `meta/0`; returns whether it did and the last
/// views.
async fn meta_settles(cluster: &Cluster, voters: usize, learners: usize) -> (bool, Vec<(Vec<u64>, Vec<u64>)>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let views = cluster.nodes.iter().filter(|node| node.is_running()).map(meta_members);
        let views: Vec<_> = futures_util::future::join_all(views).await.into_iter().filter_map(Result::ok).collect();
        let settled = views.len() == cluster.nodes.iter().filter(|node| node.is_running()).count()
            && views.iter().all(|(v, l)| v.len() == voters && l.len() == learners);
        if settled || Instant::now() > deadline {
            return (settled, views);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The nodes `CLUSTER NODES` on `node` lists: its map of the cluster.
fn mapped_nodes(node: &Node) -> usize {
    redis_cli(node.port(), &["CLUSTER", "NODES"]).lines().count()
}

#[tokio::test]
async fn the_metadata_group_votes_on_five_nodes_and_the_others_follow_it() -> anyhow::Result<()> {
    let _exclusive = one_cluster_at_a_time().await;
    let args = [FAST, &["--shards", "1", "--cluster-enabled", "yes"]].concat();
    let mut cluster = Cluster::start(6, &args)?;

    // Six initial members: the leader makes one of them a learner.
    let (settled, views) = meta_settles(&cluster, 5, 1).await;
    assert!(settled, "meta/0 did not settle on 5 voters and a learner: {views:?}");
    let learner = views[0].1[0];
    let learner_node = &cluster.nodes[learner as usize - 1];
    assert!(eventually(Duration::from_secs(10), || async { mapped_nodes(learner_node) == 6 }).await);
    // Only meta/0 caps its voters: the learner votes in the shard's group.
    let mut c = learner_node.client().await?;
    let kv: Vec<String> = redis::cmd("SESHAT").arg("MEMBERS").arg("kv/0").query_async(&mut c).await?;
    assert!(kv.iter().all(|line| line.contains(" voter ")), "{kv:?}");
    let nodes: Vec<String> = redis::cmd("SESHAT").arg("MEMBERS").query_async(&mut c).await?;
    assert!(nodes.iter().all(|line| line.contains(" voter ")), "a meta learner is still a voting node: {nodes:?}");

    // Removing a voter gives its seat to the learner.
    let voter = views[0].0.iter().copied().find(|id| *id != 1).expect("a voter other than node 1");
    let removed = redis_cli(cluster.nodes[0].port(), &["SESHAT", "REMOVE-NODE", &voter.to_string()]);
    assert!(!removed.contains("ERR"), "{removed}");
    cluster.nodes[voter as usize - 1].kill9();
    let (settled, views) = meta_settles(&cluster, 5, 0).await;
    assert!(settled, "the learner did not take the removed voter's seat: {views:?}");
    assert!(views[0].0.contains(&learner), "{views:?}");

    // A node joining the full group follows it as a learner, map included.
    let joined = cluster.join(7, 0, &args)?;
    let (settled, views) = meta_settles(&cluster, 5, 1).await;
    assert!(settled, "node 7 did not join meta/0 as a learner: {views:?}");
    assert_eq!(views[0].1, [7]);
    println!("meta/0 voters {:?}, learners {:?}", views[0].0, views[0].1);
    let joined = &cluster.nodes[joined];
    assert!(eventually(Duration::from_secs(10), || async { mapped_nodes(joined) == 6 }).await);
    Ok(())
}

/// Five nodes in zone a fill meta/0's seats; a sixth in zone b joins and
/// takes a seat from zone a, so that losing zone a's nodes no longer takes
/// every voter.
#[tokio::test]
async fn the_metadata_group_spreads_its_voters_over_zones() -> anyhow::Result<()> {
    let _exclusive = one_cluster_at_a_time().await;
    let args = [FAST, &["--shards", "1", "--zone", "a"]].concat();
    let mut cluster = Cluster::start(5, &args)?;
    let (settled, views) = meta_settles(&cluster, 5, 0).await;
    assert!(settled, "{views:?}");
    let joined = cluster.join(6, 0, &[FAST, &["--shards", "1", "--zone", "b"]].concat())?;
    let spread = eventually(Duration::from_secs(30), || async {
        let view = meta_members(&cluster.nodes[0]).await;
        view.is_ok_and(|(voters, learners)| voters.len() == 5 && learners.len() == 1 && voters.contains(&6))
    })
    .await;
    assert!(spread, "node 6 (zone b) did not take a voter's seat: {:?}", meta_members(&cluster.nodes[0]).await?);
    let mut c = cluster.nodes[joined].client().await?;
    let lines: Vec<String> = redis::cmd("SESHAT").arg("MEMBERS").arg("meta/0").query_async(&mut c).await?;
    let six = lines.iter().find(|line| line.starts_with("6 ")).expect("node 6 is a member");
    assert!(six.contains(" voter ") && six.ends_with(" zone=b"), "{six}");
    assert_eq!(lines.iter().filter(|line| line.ends_with(" zone=a")).count(), 5, "{lines:?}");
    Ok(())
}

/// Each shard's target members as `node`'s SESHAT SHARDS lists them.
async fn targets(node: &Node) -> anyhow::Result<Vec<Vec<u64>>> {
    let mut c = node.client().await?;
    let lines: Vec<String> = redis::cmd("SESHAT").arg("SHARDS").query_async(&mut c).await?;
    lines
        .iter()
        .map(|line| {
            let target = line.split(' ').find_map(|field| field.strip_prefix("target=")).unwrap_or_default();
            target.split(',').filter(|id| !id.is_empty()).map(|id| Ok(id.parse()?)).collect()
        })
        .collect()
}

#[tokio::test]
async fn the_metadata_group_places_replicas_per_shard_and_replans_when_a_node_leaves() -> anyhow::Result<()> {
    let _exclusive = one_cluster_at_a_time().await;
    let args = [FAST, &["--shards", "4", "--replicas", "2"]].concat();
    let cluster = Cluster::start(4, &args)?;
    let spread = |targets: &[Vec<u64>]| {
        let mut counts = [0usize; 5];
        for id in targets.iter().flatten() {
            counts[*id as usize] += 1;
        }
        targets.len() == 4 && targets.iter().all(|members| members.len() == 2) && counts[1..].iter().all(|c| *c == 2)
    };
    assert!(
        eventually(Duration::from_secs(20), || async { targets(&cluster.nodes[0]).await.is_ok_and(|t| spread(&t)) })
            .await,
        "the placement is not two replicas per shard, two per node: {:?}",
        targets(&cluster.nodes[0]).await
    );
    // REMOVE-NODE answers once the node's replicas moved (or after the
    // membership timeout).
    let mut admin = cluster.nodes[0].patient_client(Duration::from_secs(40)).await?;
    let _: Vec<String> = redis::cmd("SESHAT").arg("REMOVE-NODE").arg("4").query_async(&mut admin).await?;
    let without_four = |targets: &[Vec<u64>]| targets.iter().all(|members| members.len() == 2 && !members.contains(&4));
    assert!(
        eventually(Duration::from_secs(20), || async {
            targets(&cluster.nodes[1]).await.is_ok_and(|t| without_four(&t))
        })
        .await,
        "node 4 is still placed: {:?}",
        targets(&cluster.nodes[1]).await
    );
    Ok(())
}
