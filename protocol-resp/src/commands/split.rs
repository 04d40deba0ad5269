//! The multi-key commands that several shards serve in parts: MGET,
//! EXISTS, TOUCH, DEL and UNLINK with keys in several shards (outside
//! MULTI, without the Redis Cluster protocol, which answers CROSSSLOT as
//! Redis Cluster does). Each shard's part runs as that command would on
//! its keys, linearizable on its own; the whole is not one snapshot or one
//! atomic step: a write between the parts may be seen by one part and not
//! by another. Replies are merged in the keys' order (MGET) or added up.

use std::collections::BTreeMap;

use bytes::Bytes;
use kv::{ReadOp, Reply, Shard, WriteOp};

use super::{service_error, Outcome};
use crate::session::Session;

/// Whether `name` may be split among shards.
pub(super) fn splittable(name: &str) -> bool {
    matches!(name, "mget" | "exists" | "touch" | "del" | "unlink")
}

/// Runs command `name` (one of [`splittable`]) on `keys`, one part per
/// shard.
pub(super) fn run(session: &Session, name: &str, keys: Vec<Bytes>) -> Outcome {
    let kv = session.server.kv.clone();
    let (db, stale) = (session.db, session.stale_reads);
    let mut parts: BTreeMap<Shard, Vec<(usize, Bytes)>> = BTreeMap::new();
    for (position, key) in keys.into_iter().enumerate() {
        let shard = kv.slot_shard(storage::keyspace::hash_slot(&key));
        parts.entry(shard).or_default().push((position, key));
    }
    let keys_of = |part: &[(usize, Bytes)]| part.iter().map(|(_, key)| key.clone()).collect::<Vec<_>>();
    if matches!(name, "del" | "unlink") {
        let ops = parts.iter().map(|(shard, part)| (*shard, WriteOp::Del { keys: keys_of(part) })).collect();
        return Outcome::Write(kv.write_parts(db, ops));
    }
    let mget = name == "mget";
    Outcome::Read(Box::pin(async move {
        // The parts wait for their groups' read barriers together.
        let reads = parts.iter().map(|(shard, part)| {
            let op = if mget { ReadOp::MGet { keys: keys_of(part) } } else { ReadOp::Exists { keys: keys_of(part) } };
            let kv = &kv;
            kv.read_op(Some(*shard), db, op, stale)
        });
        let replies = futures_util::future::join_all(reads).await;
        let mut values = vec![Reply::Nil; if mget { parts.values().map(Vec::len).sum() } else { 0 }];
        let mut count = 0;
        for (part, reply) in parts.values().zip(replies) {
            match reply {
                Ok(Reply::Array(part_values)) if mget => {
                    for ((position, _), value) in part.iter().zip(part_values) {
                        values[*position] = value;
                    }
                }
                Ok(Reply::Int(n)) if !mget => count += n,
                Ok(other) => return other,
                Err(error) => return service_error(error),
            }
        }
        if mget {
            Reply::Array(values)
        } else {
            Reply::Int(count)
        }
    }))
}
