//! The replicated queue of blocked clients: part of the state machine.
//!
//! Each waiter is one `kv_meta` entry under its position `seq` (the order
//! clients blocked in, from a counter that never goes back), written in the
//! apply batch like any data. The state machine keeps a mirror in memory,
//! loaded at open and after a snapshot is installed, and changes both
//! together, so the mirror is always what the store holds once the batch is
//! written.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use storage::keyspace::{kv_meta, Shard};
use storage::{Family, Reader};

use super::Txn;
use crate::command::{BlockingPop, WaiterId};
use crate::error::{Error, Result};

/// A blocked client as the state machine keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Waiter {
    pub id: WaiterId,
    pub db: u8,
    pub keys: Vec<Bytes>,
    pub pop: BlockingPop,
}

/// The waiters, by position and by key. Databases here are logical (what
/// the client SELECTed): after a SWAPDB they wait on the new content.
#[derive(Debug, Default)]
pub(crate) struct WaitQueue {
    by_seq: BTreeMap<u64, Waiter>,
    by_key: HashMap<(u8, Bytes), BTreeSet<u64>>,
    by_id: HashMap<WaiterId, u64>,
    /// How many waiters each process (node, boot) has queued.
    by_process: HashMap<(u64, u64), usize>,
    next_seq: u64,
}

impl WaitQueue {
    /// The queue of group `shard` as `reader` holds it.
    pub(crate) fn load(reader: &(impl Reader + ?Sized), shard: Shard) -> Result<Self> {
        let next_seq = crate::meta::read_u64(reader, &kv_meta::next_waiter(shard))?;
        let mut queue = WaitQueue { next_seq, ..Default::default() };
        let (start, end) = kv_meta::waiters(shard);
        for entry in reader.scan(Family::KvMeta, &start, Some(&end)) {
            let (key, value) = entry?;
            let seq = key
                .strip_prefix(start.as_slice())
                .and_then(|seq| <[u8; 8]>::try_from(seq).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| corrupt(format!("waiter key {key:?}")))?;
            let waiter: Waiter = postcard::from_bytes(&value).map_err(|e| corrupt(format!("waiter {seq}: {e}")))?;
            queue.insert(seq, waiter);
        }
        Ok(queue)
    }

    /// How many clients are queued.
    pub(crate) fn len(&self) -> usize {
        self.by_seq.len()
    }

    /// Whether a client waits on `key` of `db`.
    pub(crate) fn has_waiters(&self, db: u8, key: &Bytes) -> bool {
        self.by_key.contains_key(&(db, key.clone()))
    }

    /// The positions of the clients waiting on `key` of `db`, first
    /// blocked first.
    pub(crate) fn waiting_on(&self, db: u8, key: &Bytes) -> Vec<u64> {
        self.by_key.get(&(db, key.clone())).map(|seqs| seqs.iter().copied().collect()).unwrap_or_default()
    }

    /// Every key clients of logical database `db` wait on.
    pub(crate) fn keys_of(&self, db: u8) -> Vec<Bytes> {
        self.by_key.keys().filter(|(key_db, _)| *key_db == db).map(|(_, key)| key.clone()).collect()
    }

    /// The waiter at `seq`, if still queued.
    pub(crate) fn get(&self, seq: u64) -> Option<&Waiter> {
        self.by_seq.get(&seq)
    }

    /// The position of the waiter `id`, if queued.
    pub(crate) fn position(&self, id: &WaiterId) -> Option<u64> {
        self.by_id.get(id).copied()
    }

    /// How many waiters `node`'s processes other than boot `boot` have
    /// queued (O(processes), not O(waiters)).
    pub(crate) fn of_other_boots(&self, node: u64, boot: u64) -> usize {
        self.by_process.iter().filter(|((n, b), _)| *n == node && *b != boot).map(|(_, count)| count).sum()
    }

    /// The positions of `node`'s waiters, except those of boot `keep_boot`.
    pub(crate) fn of_node(&self, node: u64, keep_boot: Option<u64>) -> Vec<u64> {
        let stale = |id: &&WaiterId| id.node == node && Some(id.boot) != keep_boot;
        let mut seqs: Vec<u64> = self.by_id.iter().filter(|(id, _)| stale(id)).map(|(_, seq)| *seq).collect();
        seqs.sort_unstable();
        seqs
    }

    /// Queues `waiter` last, in the batch and in the mirror.
    pub(crate) fn push(&mut self, txn: &mut Txn<'_>, waiter: Waiter) {
        let seq = self.next_seq;
        self.next_seq += 1;
        txn.put_meta(kv_meta::next_waiter(txn.shard), Some(self.next_seq.to_be_bytes().to_vec()));
        let encoded = postcard::to_stdvec(&waiter).expect("waiters always serialize");
        txn.put_meta(kv_meta::waiter(txn.shard, seq), Some(encoded));
        self.insert(seq, waiter);
    }

    /// Removes the waiter at `seq` from every key it waits on.
    pub(crate) fn remove(&mut self, txn: &mut Txn<'_>, seq: u64) -> Option<Waiter> {
        let waiter = self.by_seq.remove(&seq)?;
        txn.put_meta(kv_meta::waiter(txn.shard, seq), None);
        self.by_id.remove(&waiter.id);
        let process = (waiter.id.node, waiter.id.boot);
        if let Some(count) = self.by_process.get_mut(&process) {
            *count -= 1;
            if *count == 0 {
                self.by_process.remove(&process);
            }
        }
        for key in &waiter.keys {
            let slot = (waiter.db, key.clone());
            if let Some(seqs) = self.by_key.get_mut(&slot) {
                seqs.remove(&seq);
                if seqs.is_empty() {
                    self.by_key.remove(&slot);
                }
            }
        }
        Some(waiter)
    }

    fn insert(&mut self, seq: u64, waiter: Waiter) {
        for key in &waiter.keys {
            self.by_key.entry((waiter.db, key.clone())).or_default().insert(seq);
        }
        self.by_id.insert(waiter.id, seq);
        *self.by_process.entry((waiter.id.node, waiter.id.boot)).or_default() += 1;
        self.by_seq.insert(seq, waiter);
    }
}

fn corrupt(reason: String) -> Error {
    Error::Corrupt { family: "kv_meta", reason }
}
