//! The Redis service handle: stamping and proposing writes, running reads,
//! sweeping expired keys.

mod block;

use std::sync::Arc;
use std::time::Duration;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use raft::{Bootstrap, Clock, Group, GroupId, GroupSettings, GroupStatus, Proposal, RaftNode};
use storage::keyspace::{kv_expiry, SLOTS};
use storage::{Family, Reader, Store};

use crate::apply::KvStateMachine;
use crate::blocking::Blocked;
use crate::command::{DueKey, LogCommand, WatchedKey, WriteOp};
use crate::cursors::CursorTable;
use crate::dbmap::{DbMap, DbMapState};
use crate::error::{Error, Result};
use crate::read::ReadCtx;
use crate::reply::Reply;
use crate::stats::Stats;
use crate::DATABASES;

/// Settings of the Redis service.
#[derive(Debug, Clone)]
pub struct KvConfig {
    /// How often the expiry sweeper looks for due keys.
    pub expiry_sweep_interval: Duration,
    /// The most keys one sweep proposes for removal in one log entry.
    pub expiry_sweep_batch: usize,
}

impl Default for KvConfig {
    fn default() -> Self {
        KvConfig { expiry_sweep_interval: Duration::from_millis(100), expiry_sweep_batch: 512 }
    }
}

/// How the `kv/0` group runs on this node.
pub struct KvStart<'a> {
    pub node: &'a RaftNode,
    pub store: Store,
    pub snapshot_dir: PathBuf,
    pub settings: GroupSettings,
    pub bootstrap: Bootstrap,
    pub clock: Arc<dyn Clock>,
    pub config: KvConfig,
}

/// The handle on the Redis service of this node. Cheap to clone.
#[derive(Clone)]
pub struct Kv {
    inner: Arc<Inner>,
}

struct Inner {
    group: Group,
    store: Store,
    clock: Arc<dyn Clock>,
    stats: Arc<Stats>,
    cursors: Arc<CursorTable>,
    blocked: Arc<Blocked>,
    /// Whether SWAPDB ever ran (then reads translate databases).
    dbs: Arc<DbMapState>,
    config: KvConfig,
}

impl Kv {
    /// Opens the service on `start.store` and starts its group `kv/0`.
    pub async fn start(start: KvStart<'_>) -> Result<Kv> {
        let stats = Arc::new(Stats::default());
        let cursors = Arc::new(CursorTable::default());
        let blocked = Arc::new(Blocked::new(start.node.id()));
        let shard = 0;
        let slots = vec![0..=SLOTS - 1];
        let state_machine =
            KvStateMachine::open(start.store.clone(), shard, slots, stats.clone(), cursors.clone(), blocked.clone())?;
        let dbs = state_machine.db_state();
        let group = Group::start(
            start.node,
            GroupId { service: "kv", shard },
            start.store.clone(),
            state_machine,
            start.snapshot_dir,
            start.settings,
            start.clock.clone(),
            start.bootstrap,
        )
        .await?;
        Ok(Kv {
            inner: Arc::new(Inner {
                group,
                store: start.store,
                clock: start.clock,
                stats,
                cursors,
                blocked,
                dbs,
                config: start.config,
            }),
        })
    }

    /// Proposes `op` on database `db`; the proposal is queued before this
    /// returns. The reply may be a user error; `Err` means the group could not
    /// complete it (it may or may not have applied).
    pub fn write(&self, db: u8, op: WriteOp) -> WriteReply {
        WriteReply { proposal: self.inner.group.propose(Bytes::from(LogCommand { db, op }.encode())) }
    }

    /// Runs `read` on database `db` after the group's read barrier: it sees
    /// every write acknowledged before the call, on any node.
    pub async fn read<T>(&self, db: u8, read: impl FnOnce(&ReadCtx<'_>) -> Result<T>) -> Result<T> {
        self.inner.group.read_barrier().await?;
        self.read_stale(db, read)
    }

    /// WATCH: observes `keys` of `db` after the read barrier (or, with
    /// `stale`, as this replica has them).
    pub async fn watch(&self, db: u8, keys: Vec<Bytes>, stale: bool) -> Result<Vec<WatchedKey>> {
        if !stale {
            self.inner.group.read_barrier().await?;
        }
        // The index first: every write up to it is visible to the lookups
        // below, and a later one can only make EXEC abort, never pass.
        let observed_index = self.inner.group.applied_index();
        self.read_stale(db, |ctx| {
            let mut watched = Vec::with_capacity(keys.len());
            for key in keys {
                let existed = ctx.peek(ctx.db, &key)?.is_some();
                watched.push(WatchedKey { db, key, observed_index, existed });
            }
            Ok(watched)
        })
    }

    /// Runs `read` on this node's replica as it is: possibly behind the
    /// leader (the `READONLY` opt-in).
    pub fn read_stale<T>(&self, db: u8, read: impl FnOnce(&ReadCtx<'_>) -> Result<T>) -> Result<T> {
        let ctx = ReadCtx {
            reader: &self.inner.store,
            live: Some(&self.inner.store),
            shard: self.inner.group.id().shard,
            db,
            now_ms: self.now_ms(),
            stats: Some(&self.inner.stats),
            cursors: &self.inner.cursors,
        };
        if !self.inner.dbs.ever_swapped() {
            return read(&ctx);
        }
        // After a SWAPDB, the map and the data come from one snapshot.
        let snapshot = self.inner.store.snapshot();
        let db = DbMap::load(&snapshot, self.inner.group.id().shard)?.physical(db);
        read(&ReadCtx { reader: &snapshot, live: None, db, ..ctx })
    }

    /// The logical database (what SELECT names) stored as physical
    /// database `db`, as this replica has the map now (INFO keyspace).
    pub fn logical_db(&self, db: u8) -> Result<u8> {
        if !self.inner.dbs.ever_swapped() {
            return Ok(db);
        }
        Ok(DbMap::load(&self.inner.store, self.inner.group.id().shard)?.logical(db))
    }

    /// The time reads use: the wall clock, but never before the last
    /// applied stamp.
    pub fn now_ms(&self) -> u64 {
        self.inner.clock.now_ms().max(self.inner.group.applied_stamp_ms())
    }

    /// The `kv/0` group, for status and membership commands.
    pub fn group(&self) -> &Group {
        &self.inner.group
    }

    /// The clients blocked on keys of this node.
    pub fn blocked(&self) -> &Arc<Blocked> {
        &self.inner.blocked
    }

    /// The counters for INFO.
    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// The group's progress.
    pub fn status(&self) -> GroupStatus {
        self.inner.group.status()
    }

    /// Resolves with the reason if the service stops on a fatal error.
    pub async fn fatal(&self) -> String {
        self.inner.group.fatal().await
    }

    /// An estimate of the stored data size in bytes.
    pub fn estimated_size(&self) -> u64 {
        self.inner.store.estimated_size()
    }

    /// Stops the group; writes still queued fail.
    pub async fn shutdown(&self) {
        self.inner.group.shutdown().await;
    }

    /// Removes expired keys through the log until `shutdown` resolves. Runs
    /// on the leader; every replica applies the same removals.
    pub async fn run_expiry_sweeper(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut interval = tokio::time::interval(self.inner.config.expiry_sweep_interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = interval.tick() => {}
            }
            if !self.inner.group.is_leader() {
                continue;
            }
            if let Err(error) = self.sweep_expired().await {
                tracing::warn!(%error, "expiry sweep failed");
            }
        }
    }

    /// Removes from the queue of blocked clients those of this node's
    /// earlier processes (they died with it, and a write must not serve
    /// them), checking every second until `shutdown` resolves: a waiter of
    /// the previous process may still be applied after this one started.
    pub async fn purge_earlier_boots(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let blocked = &self.inner.blocked;
        let op = WriteOp::PurgeWaiters { node: blocked.node(), keep_boot: Some(blocked.boot()) };
        let mut interval = tokio::time::interval(Duration::from_secs(1));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = interval.tick() => {}
            }
            if blocked.earlier_boots() == 0 {
                continue;
            }
            match self.write(0, op.clone()).await {
                Ok(reply) => tracing::info!(?reply, "removed blocked clients of this node's earlier processes"),
                Err(error) => tracing::debug!(%error, "removing earlier processes' blocked clients; will retry"),
            }
        }
    }

    /// Proposes the removal of every key whose expiry is due, one batch per
    /// log entry; returns how many keys were removed.
    pub async fn sweep_expired(&self) -> Result<u64> {
        let mut removed = 0;
        loop {
            let due = self.due_keys()?;
            if due.is_empty() {
                return Ok(removed);
            }
            let full = due.len() >= self.inner.config.expiry_sweep_batch;
            if let Reply::Int(n) = self.write(0, WriteOp::ExpireDue { keys: due }).await? {
                removed += n as u64;
            }
            if !full {
                return Ok(removed);
            }
        }
    }

    /// Up to one batch of keys whose expiry is due, from every database.
    fn due_keys(&self) -> Result<Vec<DueKey>> {
        let now = self.now_ms();
        let snapshot = self.inner.store.snapshot();
        let limit = self.inner.config.expiry_sweep_batch;
        let shard = self.inner.group.id().shard;
        let mut due = Vec::new();
        for db in 0..DATABASES as u8 {
            let (start, end) = kv_expiry::due_range(shard, db, now);
            for entry in snapshot.scan(Family::KvExpiry, &start, Some(&end)) {
                if due.len() >= limit {
                    return Ok(due);
                }
                let (raw_key, _) = entry?;
                if let Some((db, expire_at_ms, key)) = kv_expiry::decode(&raw_key) {
                    due.push(DueKey { db, expire_at_ms, key: bytes::Bytes::copy_from_slice(key) });
                }
            }
        }
        Ok(due)
    }
}

/// The pending reply of [`Kv::write`]: the leader's response, decoded.
pub struct WriteReply {
    proposal: Proposal,
}

impl Future for WriteReply {
    type Output = Result<Reply>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.proposal).poll(cx).map(|response| {
            let bytes = response?;
            Reply::decode(&bytes).map_err(|e| Error::Reply(e.to_string()))
        })
    }
}
