//! openraft's state-machine side: applies committed entries through the
//! service's [`StateMachine`], keeps client sessions, builds and installs
//! snapshots.
//!
//! Invariants:
//! - Each call to `apply` writes ONE batch holding the service's changes,
//!   the last applied log id, the membership (when it changed) and the
//!   changed client sessions. The batch is buffered, not synced: the log is
//!   durable before an entry commits, and a crash that loses the batch
//!   recovers the previous applied id with the previous data, after which
//!   the entries are applied again from the log. So no entry is ever skipped
//!   or applied twice to the same state.
//! - The applied index published to readers ([`Applied`]) only moves after
//!   the batch is written, so a read waiting for index `i` sees entry `i`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine, Snapshot};
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftLogId};
use storage::keyspace::{Shard, Span};
use storage::{Batch, Durability, Store};
use tokio::sync::watch;

use crate::sessions::{Sessions, Verdict};
use crate::snapshot::SnapshotDir;
use crate::state_machine::{Command, StateMachine};
use crate::stored::{self, StateKeys};
use crate::types::{storage_error, Entry, LogId, Requests, SnapshotMeta, StorageError, StoredMembership, TypeConfig};

/// Progress that the rest of the group observes.
#[derive(Clone)]
pub(crate) struct Applied {
    /// The last applied log index.
    pub(crate) index: watch::Receiver<u64>,
    /// The largest leader stamp applied.
    pub(crate) stamp_ms: Arc<AtomicU64>,
    /// How many snapshots this node has installed from a leader.
    pub(crate) snapshots_installed: Arc<AtomicU64>,
    /// Whether the service is applying a batch now, or writing what it
    /// applied: a write waiting for its response past its deadline waits
    /// on while this holds (the machine is working through committed
    /// entries, maybe its own).
    pub(crate) applying: Arc<AtomicBool>,
}

/// Sets the `applying` flag while alive, on every way out.
struct Applying<'a>(&'a AtomicBool);

impl<'a> Applying<'a> {
    fn start(flag: &'a AtomicBool) -> Applying<'a> {
        flag.store(true, Ordering::Release);
        Applying(flag)
    }
}

impl Drop for Applying<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The state-machine store of one group.
pub struct StateMachineStore<SM: StateMachine> {
    store: Store,
    /// Where the group's applied state and sessions are kept.
    keys: StateKeys,
    service: SM,
    applied: Option<LogId>,
    membership: StoredMembership,
    sessions: Sessions,
    snapshots: SnapshotDir,
    applied_index: watch::Sender<u64>,
    observed: Applied,
}

impl<SM: StateMachine> StateMachineStore<SM> {
    /// Opens the state machine of group `shard` of `store`'s service.
    pub(crate) fn open(
        store: Store,
        shard: Shard,
        mut service: SM,
        snapshots: SnapshotDir,
    ) -> Result<Self, StorageError> {
        let subject = ErrorSubject::Snapshot(None);
        if snapshots
            .finish_interrupted_install(&store)
            .map_err(|e| storage_error(subject.clone(), ErrorVerb::Write, e))?
        {
            service.reload().map_err(|e| storage_error(subject, ErrorVerb::Read, e))?;
            tracing::warn!("finished installing a snapshot that a crash had interrupted");
        }
        let keys = StateKeys { family: store.service().state_meta_family(), shard };
        let (applied_index, index) = watch::channel(0);
        let observed = Applied {
            index,
            stamp_ms: Arc::new(AtomicU64::new(service.last_stamp_ms())),
            snapshots_installed: Arc::new(AtomicU64::new(0)),
            applying: Arc::new(AtomicBool::new(false)),
        };
        let mut sm = StateMachineStore {
            store,
            keys,
            service,
            applied: None,
            membership: StoredMembership::default(),
            sessions: Sessions::default(),
            snapshots,
            applied_index,
            observed,
        };
        sm.load()?;
        Ok(sm)
    }

    pub(crate) fn applied(&self) -> Applied {
        self.observed.clone()
    }

    /// Reads the applied id, membership and sessions from storage.
    fn load(&mut self) -> Result<(), StorageError> {
        let read_error =
            |e: String| storage_error(ErrorSubject::StateMachine, ErrorVerb::Read, std::io::Error::other(e));
        (self.applied, self.membership) = stored::applied_state(&self.store, self.keys)
            .map_err(|e| storage_error(ErrorSubject::StateMachine, ErrorVerb::Read, e))?;
        self.sessions = Sessions::load(&self.store, self.keys).map_err(read_error)?;
        self.applied_index.send_replace(self.applied.map_or(0, |id| id.index));
        self.observed.stamp_ms.fetch_max(self.service.last_stamp_ms(), Ordering::AcqRel);
        Ok(())
    }
}

/// Operations past which writing a batch leaves the runtime's worker.
const LARGE_BATCH_OPS: usize = 10_000;

fn batch_is_large(batch: &Batch) -> bool {
    batch.len() > LARGE_BATCH_OPS
}

/// Where a request's response comes from once the batch is applied.
enum Outcome {
    Executed { position: usize, client: u64, serial: u64 },
    Duplicate { client: u64, serial: u64 },
}

impl<SM: StateMachine> RaftStateMachine<TypeConfig> for StateMachineStore<SM> {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<Bytes>>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // Per entry, the outcome of each of its requests (none for blank and
        // membership entries).
        let mut outcomes: Vec<Vec<Outcome>> = Vec::new();
        let mut commands = Vec::new();
        let mut membership_changed = false;
        let mut max_stamp = 0;
        for entry in entries {
            let log_id = *entry.get_log_id();
            let mut entry_outcomes = Vec::new();
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembership::new(Some(log_id), membership);
                    membership_changed = true;
                }
                EntryPayload::Normal(Requests(requests)) => {
                    for request in requests {
                        max_stamp = max_stamp.max(request.stamp_ms);
                        let (client, serial) = (request.client, request.serial);
                        match self.sessions.check(&request, log_id.index) {
                            Verdict::Execute => {
                                entry_outcomes.push(Outcome::Executed { position: commands.len(), client, serial });
                                commands.push(Command {
                                    index: log_id.index,
                                    stamp_ms: request.stamp_ms,
                                    payload: request.payload,
                                });
                            }
                            Verdict::Duplicate => entry_outcomes.push(Outcome::Duplicate { client, serial }),
                        }
                    }
                }
            }
            outcomes.push(entry_outcomes);
            self.applied = Some(log_id);
        }
        let Some(applied) = self.applied else { return Ok(Vec::new()) };
        let mut batch = Batch::new();
        // Until the batch is written: writing a large one takes a while too.
        let _applying = Applying::start(&self.observed.applying);
        let responses = self.service.apply(&mut batch, commands);
        let responses = responses.map_err(|e| storage_error(ErrorSubject::Apply(applied), ErrorVerb::Write, e))?;
        for outcome in outcomes.iter().flatten() {
            if let Outcome::Executed { position, client, serial } = outcome {
                self.sessions.record(*client, *serial, responses[*position].clone());
            }
        }
        let replies = outcomes
            .into_iter()
            .map(|entry| {
                entry
                    .into_iter()
                    .map(|outcome| match outcome {
                        Outcome::Executed { position, .. } => responses[position].clone(),
                        Outcome::Duplicate { client, serial } => self.sessions.response(client, serial),
                    })
                    .collect()
            })
            .collect();
        self.sessions.flush(&mut batch, self.keys);
        let membership = membership_changed.then_some(&self.membership);
        stored::put_applied_state(&mut batch, self.keys, &applied, membership);
        // A large batch (a bulk COPY's rows) takes a while to write: off
        // the runtime's worker, so heartbeats and other groups go on.
        let (store, large) = (&self.store, batch_is_large(&batch));
        let write = || store.write(batch, Durability::Buffered);
        let written = match large {
            true => crate::run_blocking(write),
            false => write(),
        };
        written.map_err(|e| storage_error(ErrorSubject::Apply(applied), ErrorVerb::Write, e))?;
        self.service.written();
        self.observed.stamp_ms.fetch_max(max_stamp, Ordering::AcqRel);
        self.applied_index.send_replace(applied.index);
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            store: self.store.clone(),
            keys: self.keys,
            spans: self.service.state_spans(),
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        // Read as well as write: `install_snapshot` reads the chunks back.
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.snapshots.receiving())
            .await
            .map_err(|e| storage_error(ErrorSubject::Snapshot(None), ErrorVerb::Write, e))?;
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        let subject = ErrorSubject::Snapshot(Some(meta.signature()));
        let mut file = snapshot;
        tokio::io::AsyncWriteExt::flush(&mut file)
            .await
            .map_err(|e| storage_error(subject.clone(), ErrorVerb::Write, e))?;
        let file = file.into_std().await;
        let store = self.store.clone();
        let snapshots = self.snapshots.clone();
        let started = std::time::Instant::now();
        tokio::task::spawn_blocking(move || snapshots.install(&store, file))
            .await
            .map_err(|e| storage_error(subject.clone(), ErrorVerb::Write, std::io::Error::other(e)))?
            .map_err(|e| storage_error(subject.clone(), ErrorVerb::Write, e))?;
        self.load()?;
        self.service.reload().map_err(|e| storage_error(subject, ErrorVerb::Read, e))?;
        self.observed.snapshots_installed.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            snapshot = %meta.snapshot_id,
            last = ?meta.last_log_id,
            bytes = self.snapshots.current_size(),
            ms = started.elapsed().as_millis() as u64,
            peak_rss_mib = storage::peak_resident_bytes() >> 20,
            "installed a snapshot from the leader"
        );
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let subject = ErrorSubject::Snapshot(None);
        let Some(meta) =
            self.snapshots.current_meta().map_err(|e| storage_error(subject.clone(), ErrorVerb::Read, e))?
        else {
            return Ok(None);
        };
        let file = tokio::fs::File::open(self.snapshots.current())
            .await
            .map_err(|e| storage_error(subject, ErrorVerb::Read, e))?;
        Ok(Some(Snapshot { meta, snapshot: Box::new(file) }))
    }
}

/// Builds a snapshot of the group's spans from a consistent view of the
/// store.
pub struct SnapshotBuilder {
    store: Store,
    keys: StateKeys,
    spans: Vec<Span>,
    snapshots: SnapshotDir,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let store = self.store.clone();
        let (keys, spans) = (self.keys, self.spans.clone());
        let snapshots = self.snapshots.clone();
        let subject = ErrorSubject::Snapshot(None);
        let meta = tokio::task::spawn_blocking(move || {
            let unix_ms =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
            snapshots.build(&store, keys, &spans, format!("{unix_ms}"))
        })
        .await
        .map_err(|e| storage_error(subject.clone(), ErrorVerb::Write, std::io::Error::other(e)))?
        .map_err(|e| storage_error(subject.clone(), ErrorVerb::Write, e))?;
        let file = tokio::fs::File::open(self.snapshots.current())
            .await
            .map_err(|e| storage_error(subject, ErrorVerb::Read, e))?;
        tracing::info!(snapshot = %meta.snapshot_id, last = ?meta.last_log_id, "built a snapshot");
        Ok(Snapshot { meta, snapshot: Box::new(file) })
    }
}
