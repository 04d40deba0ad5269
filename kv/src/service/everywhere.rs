//! The keyless reads (KEYS, SCAN, DBSIZE, RANDOMKEY) on a node that holds
//! replicas of only some shards: each shard is read where it is (here, or
//! through a node that hosts it, see `remote`) and the parts are merged.
//! Each part is linearizable (or, with `stale`, as its replica has it);
//! the whole is not one snapshot, as with FLUSHALL over several groups.
//!
//! SCAN visits the shards in order, resuming inside the shard of the last
//! record it examined: its cursor names that record in this node's cursor
//! table (as a single node's SCAN does), so every key present for the whole
//! iteration is returned at least once.

use bytes::Bytes;
use rand::seq::SliceRandom;
use storage::keyspace::{kv_data, Shard};

use super::Kv;
use crate::error::{Error, Result};
use crate::read::{ReadOp, ScanArgs};
use crate::reply::Reply;

/// What one step of SCAN over one shard found: the matching keys, the last
/// record key examined, and how many records were examined.
pub(super) type ScanStep = (Vec<Bytes>, Option<Vec<u8>>, usize);

impl Kv {
    /// Runs the keyless read `op` over every shard (see the module docs).
    pub(super) async fn read_everywhere(&self, db: u8, op: ReadOp, stale: bool) -> Result<Reply> {
        match op {
            ReadOp::Scan { cursor, args } => self.scan_everywhere(db, cursor, &args, stale).await,
            ReadOp::Keys { .. } => {
                let mut keys = Vec::new();
                for reply in self.each_shard(db, &op, stale).await? {
                    match reply {
                        Reply::Array(part) => keys.extend(part),
                        other => return Ok(other),
                    }
                }
                Ok(Reply::Array(keys))
            }
            ReadOp::DbSize => {
                let mut total = 0;
                for reply in self.each_shard(db, &op, stale).await? {
                    match reply {
                        Reply::Int(part) => total += part,
                        other => return Ok(other),
                    }
                }
                Ok(Reply::Int(total))
            }
            ReadOp::RandomKey => {
                let mut keys: Vec<Reply> =
                    self.each_shard(db, &op, stale).await?.into_iter().filter(|reply| *reply != Reply::Nil).collect();
                keys.shuffle(&mut rand::rng());
                Ok(keys.pop().unwrap_or(Reply::Nil))
            }
            other => Err(Error::Remote(format!("{other:?} names no key and is not split over shards"))),
        }
    }

    /// `op` run on each shard, in shard order.
    async fn each_shard(&self, db: u8, op: &ReadOp, stale: bool) -> Result<Vec<Reply>> {
        let reads = (0..self.shards()).map(|shard| self.read_op(Some(shard), db, op.clone(), stale));
        futures_util::future::try_join_all(reads).await
    }

    /// SCAN over every shard (see the module docs).
    async fn scan_everywhere(&self, db: u8, cursor: u64, args: &ScanArgs, stale: bool) -> Result<Reply> {
        let count = args.count.unwrap_or(10).max(1);
        let mut after = self.inner.cursors.resume(cursor, db);
        let mut shard: Shard =
            after.as_deref().and_then(kv_data::decode).map_or(0, |(_, slot, _)| self.slot_shard(slot));
        let mut found = Vec::new();
        let mut examined = 0;
        let mut next = 0;
        while shard < self.shards() {
            let (keys, last, seen) = self.scan_shard(shard, db, after.take(), count - examined, args, stale).await?;
            found.extend(keys.into_iter().map(Reply::Bulk));
            examined += seen;
            if examined >= count {
                if let Some(last) = last {
                    next = self.inner.cursors.register(db, last);
                    break;
                }
            }
            shard += 1;
        }
        Ok(Reply::Array(vec![Reply::bulk(next.to_string()), Reply::Array(found)]))
    }

    /// One step of SCAN over `shard` (see `ReadCtx::scan_after`), here or
    /// through a node that hosts it.
    pub(super) async fn scan_shard(
        &self,
        shard: Shard,
        db: u8,
        after: Option<Vec<u8>>,
        count: usize,
        args: &ScanArgs,
        stale: bool,
    ) -> Result<ScanStep> {
        if self.group_of(shard).is_none() {
            return self.scan_remote(shard, db, after, count, args.clone(), stale).await;
        }
        let scan = |ctx: &crate::read::ReadCtx<'_>| ctx.scan_after(after.as_deref(), count, args);
        match stale {
            true => self.read_stale(Some(shard), db, scan),
            false => self.read(Some(shard), db, scan).await,
        }
    }
}
