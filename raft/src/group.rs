//! A consensus group and its applier.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot, watch};

use crate::state_machine::{Entry, StateMachine};

/// The largest number of proposals applied in one batch.
pub const MAX_BATCH: usize = 1024;

/// Identifies a group: a service and a shard of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupId {
    pub service: &'static str,
    pub shard: u32,
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.service, self.shard)
    }
}

/// Why a proposal or read did not complete.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum GroupError {
    /// The group is shutting down and takes no new work.
    #[error("group {0} is shutting down")]
    ShuttingDown(String),
    /// The state machine failed; the node must stop.
    #[error("group {group} stopped after a fatal error: {reason}")]
    Fatal { group: String, reason: String },
}

/// This node's role in the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
}

/// A snapshot of the group's progress, for INFO and operators.
#[derive(Debug, Clone)]
pub struct GroupStatus {
    pub id: GroupId,
    pub role: Role,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
}

type Reply<R> = oneshot::Sender<Result<R, GroupError>>;

struct Pending<SM: StateMachine> {
    command: SM::Command,
    reply: Reply<SM::Response>,
}

enum Message<SM: StateMachine> {
    Propose(Pending<SM>),
    /// Apply everything queued before this message, then exit.
    Stop,
}

/// A handle on a running group. Cheap to clone.
pub struct Group<SM: StateMachine> {
    inner: Arc<Inner<SM>>,
}

impl<SM: StateMachine> Clone for Group<SM> {
    fn clone(&self) -> Self {
        Group { inner: self.inner.clone() }
    }
}

struct Inner<SM: StateMachine> {
    id: GroupId,
    queue: mpsc::UnboundedSender<Message<SM>>,
    applied: Arc<AtomicU64>,
    fatal: watch::Receiver<Option<String>>,
    applier: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl<SM: StateMachine> Group<SM> {
    /// Starts a single-node group over `state_machine`, which has already
    /// recovered its applied index from storage.
    pub fn start_single(id: GroupId, state_machine: SM) -> Self {
        let (queue, receiver) = mpsc::unbounded_channel();
        let applied = Arc::new(AtomicU64::new(state_machine.applied_index()));
        let (fatal_tx, fatal) = watch::channel(None);
        let applier = Applier { id: id.clone(), state_machine, receiver, applied: applied.clone(), fatal: fatal_tx };
        let handle = std::thread::Builder::new()
            .name(format!("apply-{id}"))
            .spawn(move || applier.run())
            .expect("spawn applier thread");
        tracing::info!(group = %id, applied = applied.load(Ordering::Acquire), "group started (single node)");
        Group { inner: Arc::new(Inner { id, queue, applied, fatal, applier: std::sync::Mutex::new(Some(handle)) }) }
    }

    /// The group's id.
    pub fn id(&self) -> &GroupId {
        &self.inner.id
    }

    /// Queues `command` and returns a future of its response. The command is
    /// queued before this returns, so proposals made one after another from
    /// one task apply in that order.
    pub fn propose(&self, command: SM::Command) -> Proposal<SM::Response> {
        let (reply, receiver) = oneshot::channel();
        if let Err(mpsc::error::SendError(Message::Propose(pending))) =
            self.inner.queue.send(Message::Propose(Pending { command, reply }))
        {
            let _ = pending.reply.send(Err(self.closed_error()));
        }
        Proposal { receiver, group: self.inner.id.to_string() }
    }

    /// Waits until a read of the local state machine is linearizable: every
    /// write acknowledged before this call is applied locally.
    ///
    /// On a single node every acknowledged write is already applied (a reply
    /// is only sent after apply) and no other node can lead, so the check
    /// only confirms the group is still running.
    pub async fn read_barrier(&self) -> Result<(), GroupError> {
        if self.inner.queue.is_closed() {
            return Err(self.closed_error());
        }
        Ok(())
    }

    /// The group's progress.
    pub fn status(&self) -> GroupStatus {
        let applied = self.inner.applied.load(Ordering::Acquire);
        GroupStatus {
            id: self.inner.id.clone(),
            role: Role::Leader,
            term: 1,
            commit_index: applied,
            applied_index: applied,
        }
    }

    /// Resolves with the reason once the group has stopped on a fatal error.
    pub async fn fatal(&self) -> String {
        let mut fatal = self.inner.fatal.clone();
        loop {
            if let Some(reason) = fatal.borrow_and_update().clone() {
                return reason;
            }
            if fatal.changed().await.is_err() {
                // The applier exited without a fatal error: wait forever.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Stops the group: every proposal queued so far is applied and answered,
    /// then the applier exits. Later proposals fail with `ShuttingDown`.
    pub fn shutdown(&self) {
        let handle = self.inner.applier.lock().expect("applier lock").take();
        if let Some(handle) = handle {
            self.inner.queue.send(Message::Stop).ok();
            if handle.join().is_err() {
                tracing::error!(group = %self.inner.id, "applier thread panicked");
            }
            tracing::info!(group = %self.inner.id, "group stopped");
        }
    }

    fn closed_error(&self) -> GroupError {
        match self.inner.fatal.borrow().clone() {
            Some(reason) => GroupError::Fatal { group: self.inner.id.to_string(), reason },
            None => GroupError::ShuttingDown(self.inner.id.to_string()),
        }
    }
}

/// A proposal's pending response.
pub struct Proposal<R> {
    receiver: oneshot::Receiver<Result<R, GroupError>>,
    group: String,
}

impl<R> Future for Proposal<R> {
    type Output = Result<R, GroupError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.receiver).poll(cx).map(|result| match result {
            Ok(response) => response,
            // The applier dropped the reply without answering: it exited.
            Err(_) => Err(GroupError::ShuttingDown(self.group.clone())),
        })
    }
}

/// The thread that applies batches of proposals to the state machine.
struct Applier<SM: StateMachine> {
    id: GroupId,
    state_machine: SM,
    receiver: mpsc::UnboundedReceiver<Message<SM>>,
    applied: Arc<AtomicU64>,
    fatal: watch::Sender<Option<String>>,
}

impl<SM: StateMachine> Applier<SM> {
    fn run(mut self) {
        let span = tracing::info_span!("group", group = %self.id);
        let _entered = span.enter();
        let mut stopping = false;
        while let Some(first) = self.receiver.blocking_recv() {
            let mut batch = Vec::new();
            let mut next = Some(first);
            while let Some(message) = next.take() {
                match message {
                    Message::Propose(pending) => batch.push(pending),
                    Message::Stop => {
                        // Refuse new work; what is already queued still applies.
                        stopping = true;
                        self.receiver.close();
                    }
                }
                if batch.len() < MAX_BATCH {
                    next = self.receiver.try_recv().ok();
                }
            }
            if !batch.is_empty() && !self.apply(batch) {
                return;
            }
            if stopping && self.receiver.is_empty() {
                return;
            }
        }
    }

    /// Applies one batch and answers its proposers. Returns false after a
    /// fatal error, having failed every queued proposal.
    fn apply(&mut self, batch: Vec<Pending<SM>>) -> bool {
        let first_index = self.state_machine.applied_index() + 1;
        let mut commands = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        for (offset, pending) in batch.into_iter().enumerate() {
            commands.push(Entry { index: first_index + offset as u64, command: pending.command });
            replies.push(pending.reply);
        }
        match self.state_machine.apply(commands) {
            Ok(responses) => {
                assert_eq!(responses.len(), replies.len(), "one response per entry");
                self.applied.store(self.state_machine.applied_index(), Ordering::Release);
                for (reply, response) in replies.into_iter().zip(responses) {
                    let _ = reply.send(Ok(response));
                }
                true
            }
            Err(error) => {
                let reason = error.to_string();
                tracing::error!(group = %self.id, %reason, "state machine failed; stopping the group");
                self.receiver.close();
                let failure = GroupError::Fatal { group: self.id.to_string(), reason: reason.clone() };
                for reply in replies {
                    let _ = reply.send(Err(failure.clone()));
                }
                while let Ok(message) = self.receiver.try_recv() {
                    if let Message::Propose(pending) = message {
                        let _ = pending.reply.send(Err(failure.clone()));
                    }
                }
                self.fatal.send_replace(Some(reason));
                false
            }
        }
    }
}
