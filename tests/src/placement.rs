//! What tests of shards and their placement (`--replicas`) ask of a
//! cluster: each shard as SESHAT SHARDS lists it, whether the shards
//! settled on their targets, and keys of a shard a node holds no replica
//! of.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::{Cluster, Node};

/// One shard as a node's SESHAT SHARDS lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardLine {
    /// `None`: no leader known (`leader=none`).
    pub leader: Option<u64>,
    /// The voters (learners left out).
    pub members: BTreeSet<u64>,
    /// The members the placement wants.
    pub target: BTreeSet<u64>,
    /// Its keys in every database, as the node's view has them.
    pub keys: u64,
}

/// Every shard as `node`'s SESHAT SHARDS lists it.
pub async fn shards(node: &Node) -> anyhow::Result<Vec<ShardLine>> {
    let mut c = node.patient_client(Duration::from_secs(10)).await?;
    let lines: Vec<String> = redis::cmd("SESHAT").arg("SHARDS").query_async(&mut c).await?;
    Ok(lines.iter().map(|line| parse(line)).collect())
}

fn parse(line: &str) -> ShardLine {
    let field = |name: &str| line.split(' ').find_map(|f| f.strip_prefix(name)).unwrap_or_default();
    let ids = |name: &str| field(name).split(',').filter_map(|id| id.parse().ok()).collect();
    ShardLine {
        leader: field("leader=").parse().ok(),
        members: ids("members="),
        target: ids("target="),
        keys: field("keys=").parse().unwrap_or(0),
    }
}

/// Whether every running node sees each of the `count` shards' members
/// equal to its target, all voting, and the target has `replicas` members.
pub async fn placed(cluster: &Cluster, count: u32, replicas: usize) -> bool {
    for node in cluster.nodes.iter().filter(|node| node.is_running()) {
        let Ok(shards) = shards(node).await else { return false };
        let settled = shards.len() == count as usize
            && shards.iter().all(|shard| shard.members == shard.target && shard.target.len() == replicas);
        if !settled {
            return false;
        }
    }
    true
}

/// The shard of `key`, which has no hash tag, of `count` shards: its hash
/// slot's (CRC16 XMODEM modulo 16384, as Redis Cluster), slots divided
/// evenly.
pub fn shard_of(key: &str, count: u32) -> u32 {
    let mut crc: u16 = 0;
    for byte in key.bytes() {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    u32::from(crc % 16384) * count / 16384
}

/// A key starting with `prefix`, of one of the `count` shards `node` (id
/// `id`) holds no replica of; an error if it holds them all.
pub async fn key_elsewhere(node: &Node, id: u64, count: u32, prefix: &str) -> anyhow::Result<String> {
    let shards = shards(node).await?;
    anyhow::ensure!(shards.len() == count as usize, "{count} shards expected: {shards:?}");
    anyhow::ensure!(shards.iter().any(|shard| !shard.members.contains(&id)), "node {id} is in every shard: {shards:?}");
    let mut keys = (0..).map(|i| format!("{prefix}{i}"));
    Ok(keys.find(|key| !shards[shard_of(key, count) as usize].members.contains(&id)).expect("some key"))
}
