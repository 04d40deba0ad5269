//! What tests of shard placement (`--replicas`) ask of a cluster: each
//! shard's members and target as SESHAT SHARDS lists them, whether they
//! settled, and keys of a shard a node holds no replica of.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::{Cluster, Node};

/// Each shard's `(members, target)` as `node`'s SESHAT SHARDS lists them.
pub async fn shards(node: &Node) -> anyhow::Result<Vec<(BTreeSet<u64>, BTreeSet<u64>)>> {
    let mut c = node.patient_client(Duration::from_secs(10)).await?;
    let lines: Vec<String> = redis::cmd("SESHAT").arg("SHARDS").query_async(&mut c).await?;
    let ids = |line: &str, field: &str| -> BTreeSet<u64> {
        let value = line.split(' ').find_map(|f| f.strip_prefix(field)).unwrap_or_default();
        value.split(',').filter_map(|id| id.parse().ok()).collect()
    };
    Ok(lines.iter().map(|line| (ids(line, "members="), ids(line, "target="))).collect())
}

/// Whether every running node sees each of the `count` shards' members
/// equal to its target, all voting, and the target has `replicas` members.
pub async fn placed(cluster: &Cluster, count: u32, replicas: usize) -> bool {
    for node in cluster.nodes.iter().filter(|node| node.is_running()) {
        let Ok(shards) = shards(node).await else { return false };
        let settled = shards.len() == count as usize
            && shards.iter().all(|(members, target)| members == target && target.len() == replicas);
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
/// `id`) holds no replica of.
pub async fn key_elsewhere(node: &Node, id: u64, count: u32, prefix: &str) -> anyhow::Result<String> {
    let shards = shards(node).await?;
    for i in 0.. {
        let key = format!("{prefix}{i}");
        let (members, _) = &shards[shard_of(&key, count) as usize];
        if !members.contains(&id) {
            return Ok(key);
        }
    }
    unreachable!()
}
