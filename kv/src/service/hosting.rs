//! Which shards' groups this node runs: every shard at boot, then, as the
//! metadata group's placement moves replicas, a group started for a shard
//! this node is to join ([`Kv::host`]: it waits for the shard's leader to
//! add it and send a snapshot) or stopped and erased for one it left
//! ([`Kv::unhost`]).
//!
//! Erasing removes everything of the group's on this node: its state
//! spans (data, expiry index, elements, scores, `kv_meta` entries), its
//! log and Raft metadata, and its snapshots. Another node's copy is the
//! shard's; if this node joins again it starts from a snapshot.

use std::path::PathBuf;
use std::sync::Arc;

use raft::{Bootstrap, Clock, Group, GroupId, GroupSettings, RaftNode};
use storage::keyspace::{group_prefix, kv_group, shard_slots, Shard, Span};
use storage::{Batch, Durability, Reader, Store};

use super::Kv;
use crate::apply::{KvStateMachine, NodeShared};
use crate::blocking::Blocked;
use crate::cursors::CursorTable;
use crate::dbmap::DbMapState;
use crate::error::Result;
use crate::notify::KeyEvents;
use crate::script::everywhere::StoredEverywhere;
use crate::script::ScriptCommandsSlot;
use crate::stats::Stats;
use crate::DATABASES;

/// What starting one of the service's groups on this node takes.
pub(super) struct Hosting {
    pub(super) node: RaftNode,
    pub(super) store: Store,
    /// Each group keeps its snapshots in `kv-<shard>` under it.
    pub(super) snapshots_dir: PathBuf,
    pub(super) settings: GroupSettings,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) stats: Arc<Stats>,
    pub(super) cursors: Arc<CursorTable>,
    pub(super) blocked: Arc<Blocked>,
    pub(super) key_events: Arc<KeyEvents>,
    pub(super) script_commands: Arc<ScriptCommandsSlot>,
    /// The scripts found in every shard this node holds.
    pub(super) scripts_everywhere: Arc<StoredEverywhere>,
    /// Whether SWAPDB ever ran.
    pub(super) dbs: Arc<DbMapState>,
}

impl Hosting {
    /// Starts the group of `shard` of `shards`.
    pub(super) async fn start(&self, shard: Shard, shards: Shard, bootstrap: Bootstrap) -> Result<Group> {
        let slots = vec![shard_slots(shard, shards)];
        let state_machine = KvStateMachine::open(
            self.store.clone(),
            shard,
            slots,
            NodeShared {
                stats: self.stats.clone(),
                cursors: self.cursors.clone(),
                blocked: self.blocked.clone(),
                key_events: self.key_events.clone(),
                script_commands: self.script_commands.clone(),
                scripts_everywhere: self.scripts_everywhere.clone(),
                db_state: self.dbs.clone(),
            },
        )?;
        let group = Group::start(
            &self.node,
            GroupId { service: "kv", shard },
            self.store.clone(),
            state_machine,
            self.snapshot_dir(shard),
            GroupSettings { placed: true, ..self.settings.clone() },
            self.clock.clone(),
            bootstrap,
        )
        .await?;
        Ok(group)
    }

    /// Whether this data dir holds Raft state of the group of `shard`
    /// (a vote, a membership, log entries): it ran a replica of it.
    pub(super) fn has_state(&self, shard: Shard) -> Result<bool> {
        let family = self.store.service().raft_meta_family();
        let (start, end) = (group_prefix(shard), group_prefix(shard + 1));
        Ok(self.store.scan(family, &start, Some(&end)).next().transpose()?.is_some())
    }

    fn snapshot_dir(&self, shard: Shard) -> PathBuf {
        self.snapshots_dir.join(format!("kv-{shard}"))
    }

    /// Removes every trace of the group of `shard` of `shards` from this
    /// node: synced, then its snapshots. The group must be stopped.
    pub(super) fn erase(&self, shard: Shard, shards: Shard) -> Result<()> {
        let service = self.store.service();
        let mut spans = kv_group::spans(shard, &[shard_slots(shard, shards)], DATABASES as u8);
        for family in [service.raft_log_family(), service.raft_meta_family()] {
            spans.push(Span::prefix(family, &group_prefix(shard)));
        }
        let mut batch = Batch::new();
        for Span { family, start, end } in spans {
            batch.delete_range(family, start, end);
        }
        self.store.write(batch, Durability::Sync)?;
        let dir = self.snapshot_dir(shard);
        match std::fs::remove_dir_all(&dir) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(storage::Error::Io { path: dir, source: error }.into())
            }
            _ => Ok(()),
        }
    }
}

impl Kv {
    /// Starts this node's replica of `shard`'s group, unless it runs one:
    /// empty, it waits for the group's leader to add it.
    pub async fn host(&self, shard: Shard) -> Result<()> {
        if self.group_of(shard).is_some() {
            return Ok(());
        }
        let group = self.inner.hosting.start(shard, self.shards(), Bootstrap::Join).await?;
        tracing::info!(shard, "hosting a replica of the shard");
        self.inner.groups.write().expect("groups lock").insert(shard, group);
        // After the insert: a lookup that missed the new shard is not
        // recorded (see `crate::script::everywhere`).
        self.inner.hosting.scripts_everywhere.clear();
        self.inner.hosting_changed.notify_waiters();
        Ok(())
    }

    /// Stops this node's replica of `shard`'s group and erases it (see the
    /// module docs); nothing if it runs none.
    pub async fn unhost(&self, shard: Shard) -> Result<()> {
        let Some(group) = self.inner.groups.write().expect("groups lock").remove(&shard) else { return Ok(()) };
        self.inner.hosting_changed.notify_waiters();
        group.shutdown().await;
        self.inner.hosting.erase(shard, self.shards())?;
        tracing::info!(shard, "erased this node's replica of the shard");
        Ok(())
    }
}
