//! The Redis service handle: routing commands to the group of their keys'
//! shard, proposing writes, running reads, sweeping expired keys.
//!
//! The service runs one group per shard (`kv/0` … `kv/<n-1>`), over the
//! families they share (see `storage::keyspace`); shard `s` of `n` owns
//! the hash slots `storage::keyspace::shard_slots(s, n)`. A command whose
//! keys are all in one shard goes to that shard's group (the caller names
//! it: [`Kv::slot_shard`] of its keys' hash slot); one without keys
//! (`None`) reads every group after all their read barriers, and FLUSHDB, FLUSHALL and the purge
//! of earlier processes' blocked clients are proposed to every group, each
//! part linearizable, the whole not one atomic step. Other keyless writes
//! go to `kv/0`.
//!
//! The handle also runs the metadata group (`crate::meta_group`), the
//! shard count of a new or joining node (`shard_count`) and the balancing
//! of the shards' leaders over the nodes (`balance`).

mod balance;
mod block;
mod everywhere;
mod follow;
mod hosting;
mod placing;
mod remote;
mod script;
mod shard_count;

pub use remote::ShardView;
pub use shard_count::{cluster_shards, recorded_shards};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use raft::{Bootstrap, Clock, Group, GroupSettings, GroupStatus, Proposal, RaftNode};
use storage::keyspace::{kv_expiry, raft_meta, shard_slots, slot_shard, Shard};
use storage::{Family, Reader, Store};

use crate::blocking::Blocked;
use crate::command::{DueKey, LogCommand, WatchedKey, WriteOp};
use crate::cursors::CursorTable;
use crate::dbmap::{DbMap, DbMapState};
use crate::error::{Error, Result};
use crate::meta_group::{MetaGroup, MetaStart};
use crate::notify::{class, Applied, KeyEvent, KeyEvents, Misses, NotifyFlags, Writer};
use crate::read::{ReadCtx, ReadOp};
use crate::reply::Reply;
use crate::script::engine::Engine;
use crate::script::ScriptCommandsSlot;
use crate::stats::Stats;
use crate::DATABASES;
use hosting::Hosting;

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

/// How the service's groups run on this node.
pub struct KvStart<'a> {
    pub node: &'a RaftNode,
    pub store: Store,
    /// Each group keeps its snapshots in `kv-<shard>` under it.
    pub snapshots_dir: PathBuf,
    /// How many shards (groups) the service has: `None` takes what the
    /// data dir recorded; a number must match it.
    pub shards: Option<Shard>,
    /// The shard count of a new data dir when `shards` is `None`.
    pub default_shards: Shard,
    /// The `meta` service's store, for the metadata group.
    pub meta_store: Store,
    pub settings: GroupSettings,
    pub bootstrap: Bootstrap,
    pub clock: Arc<dyn Clock>,
    pub config: KvConfig,
    /// Where the RESP frontend installs the parser of scripts' commands.
    pub script_commands: Arc<ScriptCommandsSlot>,
}

/// The handle on the Redis service of this node. Cheap to clone.
#[derive(Clone)]
pub struct Kv {
    inner: Arc<Inner>,
}

struct Inner {
    /// How many shards divide the keyspace.
    shards: Shard,
    /// The groups of the shards this node holds a replica of, by shard.
    groups: RwLock<BTreeMap<Shard, Group>>,
    /// Starts and erases them.
    hosting: Hosting,
    /// Reaches the shards this node holds no replica of.
    remote: remote::Remote,
    /// Follows their changes for this node's tracking clients.
    following: follow::Following,
    /// Notified when a group is hosted or unhosted.
    hosting_changed: tokio::sync::Notify,
    meta: MetaGroup,
    store: Store,
    clock: Arc<dyn Clock>,
    stats: Arc<Stats>,
    cursors: Arc<CursorTable>,
    blocked: Arc<Blocked>,
    /// Where applied batches hand their keyspace events.
    key_events: Arc<KeyEvents>,
    /// This node's `notify-keyspace-events`, carried in the entries it
    /// proposes (`crate::notify`).
    notify: AtomicU16,
    /// This node's name in the Redis Cluster protocol.
    cluster_name: String,
    /// Whether SWAPDB ever ran (then reads translate databases).
    dbs: Arc<DbMapState>,
    config: KvConfig,
    /// What parses the commands of scripts.
    script_commands: Arc<ScriptCommandsSlot>,
    /// The Lua VM of the read-only scripts this node runs.
    script_reader: Mutex<Option<Engine>>,
}

/// The service as [`Kv::open`] leaves it: the metadata group runs, the
/// shards' groups do not yet ([`OpenedKv::start_groups`]). In between,
/// the RESP frontend is made on [`OpenedKv::kv`] and installs the parser
/// of scripts' commands: starting a group applies the committed entries
/// its state machine had not applied before the node stopped, scripts
/// among them, and a script's outcome must not depend on when it applies.
pub struct OpenedKv {
    kv: Kv,
    bootstrap: Bootstrap,
    outgoing: tokio::sync::mpsc::UnboundedReceiver<remote::Outgoing>,
}

impl OpenedKv {
    /// The handle, for what is made before the groups start.
    pub fn kv(&self) -> &Kv {
        &self.kv
    }

    /// Starts the groups of the shards this node holds (`kv/0` …
    /// `kv/<shards - 1>` on a new cluster's initial members), then serves
    /// its peers' requests for them. The parser of scripts' commands must
    /// be installed first.
    pub async fn start_groups(self) -> Result<Kv> {
        let OpenedKv { kv, bootstrap, outgoing } = self;
        let inner = &kv.inner;
        let (hosting, shards, me) = (&inner.hosting, inner.shards, inner.hosting.node.id());
        // On a new data dir the initial members form every shard's group
        // (the placement then trims them); a joining node starts none (the
        // placement hosts its share). On a restart a node starts the
        // shards it holds Raft state of, and joins those the placement
        // gives it: a group is never initialised again where its state
        // was erased (`hosting`).
        let has_state = (0..shards).map(|shard| hosting.has_state(shard)).collect::<Result<Vec<bool>>>()?;
        let fresh = !has_state.contains(&true);
        let map = inner.meta.map();
        let placed_here = |shard: Shard| map.placement.get(&shard).is_some_and(|target| target.contains(&me));
        // openraft drives a group's heartbeats and election timers from a
        // tick of 1.5 heartbeats that starts with the group. Starting the
        // groups spread over one tick spreads their ticks, so the groups'
        // heartbeats do not all fire at once.
        let tick = hosting.settings.heartbeat * 3 / 2;
        let started = tokio::time::Instant::now();
        for shard in 0..shards {
            let bootstrap = match (&bootstrap, has_state[shard as usize]) {
                (_, true) => bootstrap.clone(),
                (Bootstrap::Initialize(_), false) if fresh => bootstrap.clone(),
                (_, false) if placed_here(shard) => Bootstrap::Join,
                (_, false) => continue,
            };
            tokio::time::sleep_until(started + tick * shard / shards).await;
            let group = hosting.start(shard, shards, bootstrap).await?;
            inner.groups.write().expect("groups lock").insert(shard, group);
        }
        remote::start(inner, outgoing);
        follow::start(inner);
        Ok(kv)
    }
}

impl Kv {
    /// Opens the service on `start.store` and starts the metadata group;
    /// the service's groups start with [`OpenedKv::start_groups`].
    pub async fn open(start: KvStart<'_>) -> Result<OpenedKv> {
        let shards = shard_count::recorded(&start.store, start.shards, start.default_shards)?;
        let meta = MetaGroup::start(MetaStart {
            node: start.node,
            store: start.meta_store,
            snapshot_dir: start.snapshots_dir.join("meta-0"),
            settings: start.settings.clone(),
            clock: start.clock.clone(),
            bootstrap: start.bootstrap.clone(),
        })
        .await?;
        shard_count::serve(start.node, shards);
        let cluster_name = recorded_cluster_name(&start.store)?;
        let stats = Arc::new(Stats::default());
        let cursors = Arc::new(CursorTable::default());
        let blocked = Arc::new(Blocked::new(start.node.id()));
        let key_events = Arc::new(KeyEvents::default());
        let dbs = Arc::new(DbMapState::default());
        let hosting = Hosting {
            node: start.node.clone(),
            store: start.store.clone(),
            snapshots_dir: start.snapshots_dir.clone(),
            settings: start.settings.clone(),
            clock: start.clock.clone(),
            stats: stats.clone(),
            cursors: cursors.clone(),
            blocked: blocked.clone(),
            key_events: key_events.clone(),
            script_commands: start.script_commands.clone(),
            scripts_everywhere: Arc::default(),
            dbs: dbs.clone(),
        };
        let (remote, outgoing) = remote::Remote::new();
        let inner = Arc::new(Inner {
            shards,
            groups: RwLock::default(),
            hosting,
            remote,
            following: follow::Following::default(),
            hosting_changed: tokio::sync::Notify::new(),
            meta,
            cluster_name,
            store: start.store,
            clock: start.clock,
            stats,
            cursors,
            blocked,
            key_events,
            notify: AtomicU16::new(0),
            dbs,
            config: start.config,
            script_commands: start.script_commands,
            script_reader: Mutex::default(),
        });
        Ok(OpenedKv { kv: Kv { inner }, bootstrap: start.bootstrap, outgoing })
    }

    /// This node's name in the Redis Cluster protocol (CLUSTER MYID): 40
    /// hex digits, the same across restarts.
    pub fn cluster_name(&self) -> &str {
        &self.inner.cluster_name
    }

    /// How many shards the service has.
    pub fn shards(&self) -> Shard {
        self.inner.shards
    }

    /// The shard that owns hash slot `slot`.
    pub fn slot_shard(&self, slot: u16) -> Shard {
        slot_shard(slot, self.shards())
    }

    /// How many keys (in every database) the group of `shard` holds on
    /// this replica.
    pub fn shard_keys(&self, shard: Shard) -> Result<u64> {
        let databases = self.read_stale(Some(shard), 0, |ctx| ctx.keyspace())?;
        Ok(databases.iter().map(|(_, keys, _)| keys).sum())
    }

    /// Proposes `op` on database `db` to the group of `shard` (`None`: the
    /// op has no keys, see the module docs); the proposal is queued before
    /// this returns. The reply may be a user error; `Err` means a group
    /// could not complete it (it may or may not have applied).
    pub fn write(&self, shard: Option<Shard>, db: u8, op: WriteOp) -> WriteReply {
        self.write_from(shard, db, op, None)
    }

    /// [`Kv::write`] by `writer`, a client that tracks keys with NOLOOP:
    /// the entry names it, so it is not told of its own changes.
    pub fn write_from(&self, shard: Option<Shard>, db: u8, op: WriteOp, writer: Option<Writer>) -> WriteReply {
        // Decided on the op itself: each part is observed on its own.
        let every_group = shard.is_none()
            && self.shards() > 1
            && matches!(op, WriteOp::FlushDb | WriteOp::FlushAll | WriteOp::PurgeWaiters { .. });
        if every_group {
            return self.write_parts(db, (0..self.shards()).map(|shard| (shard, op.clone())).collect());
        }
        let op = self.observed(op, writer);
        let shard = shard.unwrap_or(0);
        match self.group_of(shard) {
            Some(group) => {
                let payload = Bytes::from(LogCommand { db, op }.encode());
                WriteReply { pending: Pending::One(group.propose(payload)) }
            }
            None => WriteReply { pending: Pending::Boxed(Box::pin(self.write_remote(shard, db, op))) },
        }
    }

    /// Proposes each `(shard, op)` of `parts` on database `db` to its
    /// shard's group (all queued before this returns); the reply merges
    /// theirs (see [`every_group_reply`]). Each part is linearizable, the
    /// whole is not one atomic step.
    pub fn write_parts(&self, db: u8, parts: Vec<(Shard, WriteOp)>) -> WriteReply {
        let replies = parts.into_iter().map(|(shard, op)| self.write(Some(shard), db, op)).collect();
        WriteReply { pending: Pending::Boxed(Box::pin(every_group_reply(replies))) }
    }

    /// The group of `shard` (`kv/0` for `None`), if this node holds a
    /// replica of it.
    fn group_for(&self, shard: Option<Shard>) -> Result<Group> {
        let shard = shard.unwrap_or(0);
        self.group_of(shard).ok_or(Error::NotHosted(shard))
    }

    /// The group of `shard`, if this node holds a replica of it.
    pub fn group_of(&self, shard: Shard) -> Option<Group> {
        self.inner.groups.read().expect("groups lock").get(&shard).cloned()
    }

    /// Every shard's group, when this node holds a replica of each.
    fn every_group(&self) -> Result<Vec<Group>> {
        (0..self.shards()).map(|shard| self.group_for(Some(shard))).collect()
    }

    /// Runs `read` on database `db` after the read barrier of the group of
    /// `shard` (of every group for `None`): it sees every write
    /// acknowledged before the call, on any node.
    pub async fn read<T>(
        &self,
        shard: Option<Shard>,
        db: u8,
        read: impl FnOnce(&ReadCtx<'_>) -> Result<T>,
    ) -> Result<T> {
        match shard {
            Some(_) => self.group_for(shard)?.read_barrier().await?,
            None => {
                let groups = self.every_group()?;
                futures_util::future::try_join_all(groups.iter().map(Group::read_barrier)).await?;
            }
        }
        self.read_stale(shard, db, read)
    }

    /// Runs read command `op` on database `db` of `shard` (of every shard
    /// for `None`), as [`Kv::read`] does, or with `stale` as
    /// [`Kv::read_stale`] does; a shard this node holds no replica of is
    /// read through a node that does (`remote`, `everywhere`).
    pub async fn read_op(&self, shard: Option<Shard>, db: u8, op: ReadOp, stale: bool) -> Result<Reply> {
        self.read_op_as(shard, db, op, stale, self.notify_flags()).await
    }

    /// [`Kv::read_op`] whose `keymiss` events follow `notify` (the flags
    /// of the node a client asked: a read it forwards here follows its
    /// setting, not this node's).
    async fn read_op_as(
        &self,
        shard: Option<Shard>,
        db: u8,
        op: ReadOp,
        stale: bool,
        notify: NotifyFlags,
    ) -> Result<Reply> {
        let Some(shard) = shard else {
            return match (self.hosts_every_shard(), stale) {
                (false, _) => self.read_everywhere(db, op, stale).await,
                (true, true) => self.read_stale(None, db, |ctx| ctx.run(&op)),
                (true, false) => self.read(None, db, |ctx| ctx.run(&op)).await,
            };
        };
        // One lookup of the group per read.
        let Some(group) = self.group_of(shard) else {
            return self.read_remote(shard, db, op, stale, notify).await;
        };
        if !stale {
            group.read_barrier().await?;
        }
        self.read_stale_as(Some(shard), db, notify, |ctx| ctx.run(&op))
    }

    /// Whether this node holds a replica of every shard.
    pub fn hosts_every_shard(&self) -> bool {
        self.inner.groups.read().expect("groups lock").len() == self.shards() as usize
    }

    /// WATCH: observes `keys` of `db`, all of `shard`, after the group's
    /// read barrier (or, with `stale`, as this replica has them).
    pub async fn watch(&self, shard: Shard, db: u8, keys: Vec<Bytes>, stale: bool) -> Result<Vec<WatchedKey>> {
        let Some(group) = self.group_of(shard) else { return self.watch_remote(shard, db, keys, stale).await };
        if !stale {
            group.read_barrier().await?;
        }
        // The index first: every write up to it is visible to the lookups
        // below, and a later one can only make EXEC abort, never pass.
        let observed_index = group.applied_index();
        self.read_stale(Some(shard), db, |ctx| {
            let mut watched = Vec::with_capacity(keys.len());
            for key in keys {
                let existed = ctx.peek(ctx.db, &key)?.is_some();
                watched.push(WatchedKey { db, key, observed_index, existed });
            }
            Ok(watched)
        })
    }

    /// Runs `read` on this node's replica of the group of `shard` (of
    /// every group for `None`) as it is: possibly behind the leader (the
    /// `READONLY` opt-in).
    pub fn read_stale<T>(
        &self,
        shard: Option<Shard>,
        db: u8,
        read: impl FnOnce(&ReadCtx<'_>) -> Result<T>,
    ) -> Result<T> {
        self.read_stale_as(shard, db, self.notify_flags(), read)
    }

    /// [`Kv::read_stale`] whose `keymiss` events follow `notify`.
    fn read_stale_as<T>(
        &self,
        shard: Option<Shard>,
        db: u8,
        notify: NotifyFlags,
        read: impl FnOnce(&ReadCtx<'_>) -> Result<T>,
    ) -> Result<T> {
        let (shards, slots) = match shard {
            Some(shard) => ((shard, shard + 1), shard_slots(shard, self.shards()).into_inner()),
            None => ((0, self.shards()), (0, storage::keyspace::SLOTS - 1)),
        };
        let misses = notify.wants(class::KEY_MISS).then(Misses::default);
        let ctx = ReadCtx {
            reader: &self.inner.store,
            live: Some(&self.inner.store),
            shards,
            slots,
            db,
            now_ms: self.now_ms(),
            stats: Some(&self.inner.stats),
            cursors: &self.inner.cursors,
            seed: None,
            misses: misses.as_ref(),
        };
        if !self.inner.dbs.ever_swapped() {
            let result = read(&ctx);
            self.publish_misses(shard, misses, notify, |db| db);
            return result;
        }
        // After a SWAPDB, the map and the data come from one snapshot. (Only
        // a single-shard service swaps: SWAPDB is refused with several.)
        let snapshot = self.inner.store.snapshot();
        let map = DbMap::load(&snapshot, 0)?;
        let result = read(&ReadCtx { reader: &snapshot, live: None, db: map.physical(db), ..ctx });
        self.publish_misses(shard, misses, notify, |db| map.logical(db));
        result
    }

    /// Hands the keys a read missed (`misses`, by physical database, which
    /// `logical` maps back) on as `keymiss` events this node publishes.
    fn publish_misses(
        &self,
        shard: Option<Shard>,
        misses: Option<Misses>,
        notify: NotifyFlags,
        logical: impl Fn(u8) -> u8,
    ) {
        let Some(misses) = misses else { return };
        let events: Vec<KeyEvent> = misses
            .take()
            .into_iter()
            .map(|(db, key)| KeyEvent { db: logical(db), event: "keymiss", key, flags: notify })
            .collect();
        if !events.is_empty() {
            let applied = Applied { shard: shard.unwrap_or(0), served: true, events, ..Applied::default() };
            self.inner.key_events.emit(applied);
        }
    }

    /// The logical database (what SELECT names) stored as physical
    /// database `db`, as this replica has the map now (INFO keyspace).
    pub fn logical_db(&self, db: u8) -> Result<u8> {
        if !self.inner.dbs.ever_swapped() {
            return Ok(db);
        }
        Ok(DbMap::load(&self.inner.store, 0)?.logical(db))
    }

    /// The time reads use: the wall clock, but never before the last
    /// applied stamp.
    pub fn now_ms(&self) -> u64 {
        let groups = self.inner.groups.read().expect("groups lock");
        let applied = groups.values().map(Group::applied_stamp_ms).max().unwrap_or(0);
        self.inner.clock.now_ms().max(applied)
    }

    /// The group of the lowest shard this node holds a replica of, for
    /// status and membership commands (ROLE, INFO replication, FAILOVER);
    /// on a node that holds none (the placement put every shard elsewhere),
    /// the metadata group.
    pub fn group(&self) -> Group {
        let lowest = self.inner.groups.read().expect("groups lock").values().next().cloned();
        lowest.unwrap_or_else(|| self.inner.meta.group().clone())
    }

    /// The groups of the shards this node holds, by shard.
    pub fn groups(&self) -> Vec<Group> {
        self.inner.groups.read().expect("groups lock").values().cloned().collect()
    }

    /// The metadata group: the cluster's nodes and their addresses.
    pub fn meta(&self) -> &MetaGroup {
        &self.inner.meta
    }

    /// Sets this node's `notify-keyspace-events`: the writes it proposes
    /// from now on notify those classes.
    pub fn set_notify_flags(&self, flags: NotifyFlags) {
        self.inner.notify.store(flags.0, Ordering::Relaxed);
    }

    /// This node's `notify-keyspace-events`.
    fn notify_flags(&self) -> NotifyFlags {
        NotifyFlags(self.inner.notify.load(Ordering::Relaxed))
    }

    /// `op` as this node proposes it: wrapped with the node's
    /// notification flags when any are set, and with its writer when one
    /// is named (and not already wrapped, as a write forwarded from
    /// another node is).
    fn observed(&self, op: WriteOp, writer: Option<Writer>) -> WriteOp {
        let notify = self.notify_flags();
        match op {
            WriteOp::Observed { .. } => op,
            op if (notify.is_empty() && writer.is_none()) || op.is_internal() => op,
            op => WriteOp::Observed { notify, writer, op: Box::new(op) },
        }
    }

    /// What every batch this node applies reports from now on (keyspace
    /// events, changed keys).
    pub fn applied_changes(&self) -> tokio::sync::mpsc::UnboundedReceiver<Applied> {
        self.inner.key_events.subscribe()
    }

    /// Whether every batch reports the keys it changes (client tracking),
    /// and this node follows the changes of the shards it holds no
    /// replica of (`follow`; [`Kv::changes_followed`] waits for that).
    pub fn track_changes(&self, on: bool) {
        self.inner.key_events.track_changes(on);
        self.follow_missing();
    }

    /// Whether this node leads the group of `shard` now.
    pub fn leads(&self, shard: Shard) -> bool {
        self.group_of(shard).is_some_and(|group| group.is_leader())
    }

    /// The clients blocked on keys of this node.
    pub fn blocked(&self) -> &Arc<Blocked> {
        &self.inner.blocked
    }

    /// The counters for INFO.
    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// The progress of `kv/0`.
    pub fn status(&self) -> GroupStatus {
        self.group().status()
    }

    /// Resolves with the reason if a group stops on a fatal error (one
    /// this node hosts then or later).
    pub async fn fatal(&self) -> String {
        loop {
            let changed = self.inner.hosting_changed.notified();
            let mut groups = self.groups();
            groups.push(self.inner.meta.group().clone());
            let fatal = futures_util::future::select_all(groups.iter().map(|group| Box::pin(group.fatal())));
            tokio::select! {
                (reason, _, _) = fatal => return reason,
                _ = changed => {}
            }
        }
    }

    /// An estimate of the stored data size in bytes.
    pub fn estimated_size(&self) -> u64 {
        self.inner.store.estimated_size()
    }

    /// Stops the groups; writes still queued fail.
    pub async fn shutdown(&self) {
        for group in self.groups() {
            group.shutdown().await;
        }
        self.inner.meta.shutdown().await;
    }

    /// Removes expired keys through the log until `shutdown` resolves. Runs
    /// on each group's leader; every replica applies the same removals.
    pub async fn run_expiry_sweeper(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut interval = tokio::time::interval(self.inner.config.expiry_sweep_interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = interval.tick() => {}
            }
            for group in self.groups() {
                if !group.is_leader() {
                    continue;
                }
                let shard = group.id().shard;
                if let Err(error) = self.sweep_shard(shard).await {
                    tracing::warn!(%error, shard, "expiry sweep failed");
                }
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
            match self.write(None, 0, op.clone()).await {
                Ok(reply) => tracing::info!(?reply, "removed blocked clients of this node's earlier processes"),
                Err(error) => tracing::debug!(%error, "removing earlier processes' blocked clients; will retry"),
            }
        }
    }

    /// Proposes the removal of every key whose expiry is due, in every
    /// group, one batch per log entry; returns how many keys were removed.
    pub async fn sweep_expired(&self) -> Result<u64> {
        let mut removed = 0;
        for shard in 0..self.shards() {
            removed += self.sweep_shard(shard).await?;
        }
        Ok(removed)
    }

    /// [`Kv::sweep_expired`] for the group of `shard`.
    async fn sweep_shard(&self, shard: Shard) -> Result<u64> {
        let mut removed = 0;
        loop {
            let due = self.due_keys(shard)?;
            if due.is_empty() {
                return Ok(removed);
            }
            let full = due.len() >= self.inner.config.expiry_sweep_batch;
            if let Reply::Int(n) = self.write(Some(shard), 0, WriteOp::ExpireDue { keys: due }).await? {
                removed += n as u64;
            }
            if !full {
                return Ok(removed);
            }
        }
    }

    /// Up to one batch of the keys of `shard` whose expiry is due, from
    /// every database.
    fn due_keys(&self, shard: Shard) -> Result<Vec<DueKey>> {
        let now = self.now_ms();
        let snapshot = self.inner.store.snapshot();
        let limit = self.inner.config.expiry_sweep_batch;
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

/// The value of `key`, a fact of this data dir in `kv_raft_meta` (see
/// [`raft_meta::SHARDS`]): the recorded one, or `new()`, recorded (synced)
/// before it is returned.
fn recorded(store: &Store, key: &[u8], new: impl FnOnce() -> Vec<u8>) -> Result<Vec<u8>> {
    if let Some(value) = store.get(Family::KvRaftMeta, key)? {
        return Ok(value);
    }
    let value = new();
    let mut batch = storage::Batch::new();
    batch.put(Family::KvRaftMeta, key, value.clone());
    store.write(batch, storage::Durability::Sync)?;
    Ok(value)
}

fn corrupt_fact(what: &str) -> Error {
    Error::Corrupt { family: Family::KvRaftMeta.name(), reason: what.to_string() }
}

/// This node's name in the Redis Cluster protocol: the recorded one, or
/// (in a new data dir) a random one.
fn recorded_cluster_name(store: &Store) -> Result<String> {
    let new = || (0..20).map(|_| format!("{:02x}", rand::random::<u8>())).collect::<String>().into_bytes();
    String::from_utf8(recorded(store, raft_meta::CLUSTER_NAME, new)?)
        .map_err(|_| corrupt_fact("the cluster name is not text"))
}

/// The pending reply of [`Kv::write`]: the leader's response, decoded.
pub struct WriteReply {
    pending: Pending,
}

enum Pending {
    /// One group's proposal on this node.
    One(Proposal),
    /// A write through another node, or writes to several groups merged
    /// by [`every_group_reply`].
    Boxed(Pin<Box<dyn Future<Output = Result<Reply>> + Send>>),
}

impl Future for WriteReply {
    type Output = Result<Reply>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.pending {
            Pending::One(proposal) => Pin::new(proposal).poll(cx).map(decode_response),
            Pending::Boxed(reply) => reply.as_mut().poll(cx),
        }
    }
}

fn decode_response(response: std::result::Result<Bytes, raft::GroupError>) -> Result<Reply> {
    let bytes = response?;
    Reply::decode(&bytes).map_err(|e| Error::Reply(e.to_string()))
}

/// The reply of a write proposed to several groups: the first failure or
/// error reply, else the sum of integer replies, else the first reply.
async fn every_group_reply(pending: Vec<WriteReply>) -> Result<Reply> {
    let mut replies = Vec::with_capacity(pending.len());
    for reply in pending {
        replies.push(reply.await?);
    }
    if let Some(error) = replies.iter().find(|reply| matches!(reply, Reply::Error(_))) {
        return Ok(error.clone());
    }
    if replies.iter().all(|reply| matches!(reply, Reply::Int(_))) {
        return Ok(Reply::Int(replies.iter().map(|reply| if let Reply::Int(n) = reply { *n } else { 0 }).sum()));
    }
    Ok(replies.swap_remove(0))
}
