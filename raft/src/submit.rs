//! Getting proposals into the log: appended here when this node leads,
//! forwarded to the leader otherwise, retried until the request deadline.
//!
//! One task per group takes submissions in queue order. It merges every
//! submission queued meanwhile (up to [`MAX_BATCH`] requests or
//! [`MAX_BATCH_BYTES`]) into one batch and starts it — appends it as ONE log
//! entry, or sends it to the leader in one message — before taking the
//! next, so proposals queued in order reach the leader's log in order while
//! the leader is stable, and openraft's per-entry costs (append, replicate,
//! sync, apply) are paid once per batch rather than once per write.
//!
//! # Group commit delay
//!
//! Clients waiting for their replies come back together: the writers one
//! batch answered send their next writes at about the same time. Taken at
//! once, the queue holds only the writers that arrived while the previous
//! batch was in flight, so busy clients settle into two groups that take
//! turns, each waiting out the other's batch. So a batch smaller than its
//! predecessor first waits for as many requests as that predecessor had,
//! idle until a connection queues one (or yielding to the connections when
//! the wait is shorter than a timer tick), for at most as long as the
//! previous batch took to commit and never longer than the group's
//! `commit_linger`. Bounded by the commit time, the wait at most doubles a
//! write's latency, however slow or fast the disk and the network are; the
//! group that is coming back arrives within it whenever merging pays.
//! Measured on 2 cores, 50 clients: 25 → 50 requests per batch; single-node
//! writes ~59k → ~72k/s, 3-node ~33k → ~43k/s, both with lower latency. A
//! lone writer never waits, as its batches never shrink; when load drops,
//! one batch waits and sets the smaller size the next one waits for.
//! Waiting idle rather than yielding throughout left the CPU to the other
//! nodes of a cluster sharing the machine: `make bench-sql` 3-node UPDATE
//! ~2.4k → ~3.0k tps, single-node figures unchanged.
//!
//! # Retries
//!
//! On the leader, a batch merges its own proposals with those followers
//! forwarded, so clients on every node share one entry and one sync. Each
//! batch is then awaited on its own task; one that failed in a way that
//! may be retried (no leader yet, leader changed, connection lost, reply
//! lost) hands the forwarded proposals back to their follower, which
//! retries them itself, and sends its own again with the SAME serials,
//! which the state machine's client sessions turn into exactly-once
//! application. After a leader change, retried proposals of one pipeline
//! may be appended in a different order than they were queued.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use openraft::error::ClientWriteError;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::Instant;

use crate::group::{GroupError, Inner};
use crate::transport::wire::{Reply, Rpc};
use crate::transport::TransportError;
use crate::types::{Request, Requests, TypeConfig};

/// The longest one forwarding attempt waits before it is retried.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
/// The pause between attempts when no leader answers.
const RETRY_PAUSE: Duration = Duration::from_millis(20);
/// tokio's timers tick in milliseconds: a shorter linger spins (yielding)
/// rather than sleeps.
const TIMER_RESOLUTION: Duration = Duration::from_millis(1);
/// The most requests merged into one log entry.
pub(crate) const MAX_BATCH: usize = 1024;
/// Merging stops once a batch's payloads reach this many bytes.
pub(crate) const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// The most batches started and not yet durable in this node's log (or,
/// when sent to the leader, not yet answered). openraft takes every entry
/// at once (its queue is unbounded) but appends one only after the previous
/// append is synced, so without this bound each write would become an
/// entry and a sync of its own; with it, writes that arrive while the
/// window is full wait in the queue and leave as one entry, whose sync
/// overlaps the previous batch's commit and apply. Measured on 2 cores
/// against holding the window until the answer (and, on the leader, with
/// forwarded proposals merged into its own batches): `make bench-sql`
/// single-row UPDATE, 1 node ~3.6k → ~4.6k tps, 3 nodes ~1.9k → ~3.2k;
/// `redis-benchmark -c 17 -r 100000 -t set` on each node of 3 at once,
/// ~10.8k → ~15k/s in all. Windows of several batches held until their
/// answers measured worse (single-node UPDATE: 1 → 4.5k tps, 2 → 3.8k,
/// 4 → 2.4k): each batch is then an entry with a sync of its own.
const MAX_IN_FLIGHT: usize = 1;

/// Where a submission's responses go: one per request, in order.
pub(crate) type ReplyTo = oneshot::Sender<Result<Vec<Bytes>, GroupError>>;

/// Proposals waiting to be appended: one local proposal, or the batch a
/// follower forwarded.
pub(crate) struct Submission {
    pub(crate) requests: Vec<Request>,
    pub(crate) reply: ReplyTo,
    pub(crate) deadline: Instant,
    /// Forwarded by a follower: append here or refuse, never forward again.
    pub(crate) forwarded: bool,
}

/// Submissions merged into one log entry, local and forwarded alike.
struct Batch {
    requests: Vec<Request>,
    /// The submissions, in order; each owns the next `count` of `requests`.
    parts: Vec<Part>,
    /// The payload bytes of `requests`.
    bytes: usize,
    /// The earliest deadline of the merged submissions.
    deadline: Instant,
}

/// One submission's share of a batch.
struct Part {
    reply: ReplyTo,
    count: usize,
    forwarded: bool,
}

impl Batch {
    fn new(first: Submission) -> Batch {
        let mut batch = Batch { requests: Vec::new(), parts: Vec::new(), bytes: 0, deadline: first.deadline };
        batch.push(first);
        batch
    }

    fn push(&mut self, submission: Submission) {
        self.bytes += submission.requests.iter().map(|r| r.payload.len()).sum::<usize>();
        self.parts.push(Part {
            reply: submission.reply,
            count: submission.requests.len(),
            forwarded: submission.forwarded,
        });
        self.requests.extend(submission.requests);
        self.deadline = self.deadline.min(submission.deadline);
    }

    /// Adds `next` if it fits; gives it back if not.
    fn merge(&mut self, next: Submission) -> Option<Submission> {
        if self.requests.len() + next.requests.len() > MAX_BATCH || self.bytes >= MAX_BATCH_BYTES {
            return Some(next);
        }
        self.push(next);
        None
    }

    /// Splits off what followers forwarded, which is appended on the
    /// leader or handed back, never forwarded again; `None` if nothing was.
    fn take_forwarded(&mut self) -> Option<Batch> {
        if !self.parts.iter().any(|part| part.forwarded) {
            return None;
        }
        let deadline = self.deadline;
        let mut requests = std::mem::take(&mut self.requests).into_iter();
        let mut forwarded = Batch { requests: Vec::new(), parts: Vec::new(), bytes: 0, deadline };
        for part in std::mem::take(&mut self.parts) {
            let own = if part.forwarded { &mut forwarded } else { &mut *self };
            own.requests.extend(requests.by_ref().take(part.count));
            own.parts.push(part);
        }
        self.bytes = self.requests.iter().map(|r| r.payload.len()).sum();
        forwarded.bytes = forwarded.requests.iter().map(|r| r.payload.len()).sum();
        Some(forwarded)
    }

    /// The requests this node's session proposed.
    fn local_requests(&self) -> impl Iterator<Item = &Request> {
        let forwarded = self.parts.iter().flat_map(|part| std::iter::repeat_n(part.forwarded, part.count));
        self.requests.iter().zip(forwarded).filter(|(_, forwarded)| !forwarded).map(|(request, _)| request)
    }

    /// Hands each submission its share of `result`.
    fn answer(self, group: &str, result: Result<Vec<Bytes>, GroupError>) {
        match result {
            Ok(responses) if responses.len() == self.requests.len() => {
                let mut responses = responses.into_iter();
                for part in self.parts {
                    let _ = part.reply.send(Ok(responses.by_ref().take(part.count).collect()));
                }
            }
            Ok(responses) => {
                let reason = format!("{} responses for {} requests", responses.len(), self.requests.len());
                for part in self.parts {
                    let _ =
                        part.reply.send(Err(GroupError::Fatal { group: group.to_string(), reason: reason.clone() }));
                }
            }
            Err(error) => {
                for part in self.parts {
                    let _ = part.reply.send(Err(error.clone()));
                }
            }
        }
    }
}

type AppendReceiver = openraft::raft::responder::OneshotResponder<TypeConfig>;

/// The first attempt, started in queue order.
enum Attempt {
    Local(<AppendReceiver as openraft::raft::responder::Responder<TypeConfig>>::Receiver),
    Remote(std::pin::Pin<Box<dyn std::future::Future<Output = Result<Reply, TransportError>> + Send>>),
    Failed(GroupError),
}

pub(crate) async fn run(inner: Arc<Inner>, mut queue: mpsc::UnboundedReceiver<Submission>) {
    let window = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut carried: Option<Submission> = None;
    // The size of the last batch submitted: what the next one lingers for.
    let mut previous_size = 0;
    // How long the last batch took from start to answer, in µs.
    let last_commit_us = Arc::new(AtomicU64::new(0));
    loop {
        let permit = tokio::select! {
            _ = inner.stopped.cancelled() => return,
            permit = window.clone().acquire_owned() => permit.expect("the window is never closed"),
        };
        let first = match carried.take() {
            Some(submission) => submission,
            None => tokio::select! {
                _ = inner.stopped.cancelled() => return,
                submission = queue.recv() => match submission {
                    Some(submission) => submission,
                    None => return,
                },
            },
        };
        let mut batch = Batch::new(first);
        carried = take_queued(&mut batch, &mut queue);
        if carried.is_none() && batch.requests.len() < previous_size {
            let commit = Duration::from_micros(last_commit_us.load(Ordering::Relaxed));
            let linger = inner.settings.commit_linger.min(commit);
            let until = Instant::now() + linger;
            // A timer would overshoot a linger shorter than its tick.
            let spin = linger < TIMER_RESOLUTION;
            while carried.is_none() && batch.requests.len() < previous_size && Instant::now() < until {
                if spin {
                    // Lets the connections (and the I/O driver) run, then
                    // looks again.
                    tokio::task::yield_now().await;
                    carried = take_queued(&mut batch, &mut queue);
                } else {
                    // Idle until a connection queues a request: the wait
                    // is time other tasks and processes can use.
                    let Ok(Some(next)) = tokio::time::timeout_at(until, queue.recv()).await else { break };
                    carried = batch.merge(next).or_else(|| take_queued(&mut batch, &mut queue));
                }
            }
        }
        previous_size = batch.requests.len();
        tracing::trace!(requests = batch.requests.len(), "submitting a batch");
        let started = Instant::now();
        let own_appended = inner.log.own_appended();
        let attempt = start(&inner, &mut batch).await;
        let appended_here = matches!(attempt, Attempt::Local(_));
        let inner = inner.clone();
        let last_commit_us = last_commit_us.clone();
        tokio::spawn(async move {
            let mut permit = Some(permit);
            let mut answer = std::pin::pin!(finish(&inner, attempt, batch.deadline));
            let mut result = match appended_here {
                true => tokio::select! {
                    result = &mut answer => result,
                    () = inner.log.synced_beyond(own_appended) => {
                        permit.take();
                        answer.await
                    }
                },
                false => answer.await,
            };
            let mut applied_seen = *inner.applied.index.borrow();
            while let Err(error) = &result {
                if !retriable(error) {
                    break;
                }
                // A follower retries what it forwarded itself.
                if let Some(forwarded) = batch.take_forwarded() {
                    forwarded.answer(&inner.name, result.clone());
                }
                if batch.requests.is_empty() {
                    break;
                }
                // Past the deadline, a replica that keeps applying belongs
                // to a group that keeps committing: the leader may be busy
                // applying a large entry, maybe this one. Retrying is safe
                // (a retried serial applies once).
                if Instant::now() >= batch.deadline && progressing(&inner, &mut applied_seen) {
                    batch.deadline = Instant::now() + APPLYING_RECHECK;
                }
                if Instant::now() >= batch.deadline {
                    let last = match error {
                        GroupError::Unavailable { reason, .. } => reason.clone(),
                        other => other.to_string(),
                    };
                    let reason = format!("no leader accepted the write in time; last attempt: {last}");
                    result = Err(inner.unavailable(reason));
                    break;
                }
                tokio::time::sleep(RETRY_PAUSE).await;
                let attempt = start(&inner, &mut batch).await;
                result = finish(&inner, attempt, batch.deadline).await;
            }
            for request in batch.local_requests() {
                inner.session.answered(request.serial);
            }
            batch.answer(&inner.name, result);
            last_commit_us.store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            drop(permit);
        });
    }
}

/// Merges queued submissions into `batch`; returns the first that did not
/// fit.
fn take_queued(batch: &mut Batch, queue: &mut mpsc::UnboundedReceiver<Submission>) -> Option<Submission> {
    while let Ok(next) = queue.try_recv() {
        if let Some(refused) = batch.merge(next) {
            return Some(refused);
        }
    }
    None
}

/// Starts one attempt: appends locally when leading, else sends to the leader.
async fn start(inner: &Inner, batch: &mut Batch) -> Attempt {
    if inner.leader_id() == Some(inner.node_id) && inner.handovers.in_progress() {
        // Appending would renew the followers' leases: wait, then go to
        // whoever leads after the handover.
        inner.handovers.wait_idle(batch.deadline).await;
    }
    if inner.leader_id() == Some(inner.node_id) {
        let stamp_ms = inner.stamp();
        for request in &mut batch.requests {
            request.stamp_ms = stamp_ms;
        }
        return match inner.raft.client_write_ff(Requests(batch.requests.clone())).await {
            Ok(receiver) => Attempt::Local(receiver),
            Err(fatal) => {
                Attempt::Failed(GroupError::Fatal { group: inner.name.to_string(), reason: fatal.to_string() })
            }
        };
    }
    if let Some(forwarded) = batch.take_forwarded() {
        forwarded.answer(&inner.name, Err(GroupError::NotLeader { leader: inner.leader_id() }));
    }
    if batch.requests.is_empty() {
        return Attempt::Failed(GroupError::NotLeader { leader: inner.leader_id() });
    }
    let Some((leader, addr)) = inner.wait_for_leader(batch.deadline).await else {
        return Attempt::Failed(inner.unavailable("no leader is known"));
    };
    if leader == inner.node_id {
        // Became leader while waiting: append on the next attempt.
        return Attempt::Failed(GroupError::NotLeader { leader: Some(leader) });
    }
    let deadline = batch.deadline.min(Instant::now() + ATTEMPT_TIMEOUT);
    let peers = inner.node.peers();
    match peers.send(&addr, &inner.name, Rpc::Forward(batch.requests.clone()), deadline).await {
        Ok(reply) => Attempt::Remote(Box::pin(reply)),
        Err(error) => Attempt::Failed(inner.unavailable(error.to_string())),
    }
}

/// `future`'s output, or an error once `deadline` has passed and the
/// state machine has stopped making progress: it is not applying, and
/// applied nothing during the last [`APPLYING_RECHECK`].
async fn wait_while_applying<F: std::future::Future + Unpin>(
    inner: &Inner,
    future: &mut F,
    deadline: Instant,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    let mut deadline = deadline;
    let mut applied = *inner.applied.index.borrow();
    loop {
        match tokio::time::timeout_at(deadline, &mut *future).await {
            Err(elapsed) if !progressing(inner, &mut applied) => return Err(elapsed),
            Err(_) => deadline = Instant::now() + APPLYING_RECHECK,
            result => return result,
        }
    }
}

/// Whether this replica's state machine is applying, or has applied past
/// `seen` (which it then moves to the applied index).
fn progressing(inner: &Inner, seen: &mut u64) -> bool {
    let applied = *inner.applied.index.borrow();
    let progressed = inner.applied.applying.load(Ordering::Acquire) || applied != *seen;
    *seen = applied;
    progressed
}

/// How long a write past its deadline waits for the state machine to
/// show progress before it gives up.
const APPLYING_RECHECK: Duration = Duration::from_millis(500);

/// An append this node made waits at most until `deadline`: a leader
/// that lost its quorum keeps leading (openraft 0.9 has no check-quorum),
/// and its entry commits only if a quorum comes back. Past the deadline it
/// waits on while the state machine is applying: the response comes after
/// apply, and large committed entries (a bulk COPY's data, then its
/// statement) can take longer to apply than the deadline allows;
/// answering "not committed" then would be wrong. A machine that stopped
/// applying past the deadline means no quorum commits.
async fn finish(inner: &Inner, attempt: Attempt, deadline: Instant) -> Result<Vec<Bytes>, GroupError> {
    match attempt {
        Attempt::Failed(error) => Err(error),
        Attempt::Local(mut receiver) => match wait_while_applying(inner, &mut receiver, deadline).await {
            Err(_) => Err(inner.unavailable("no quorum committed the write in time")),
            Ok(Ok(Ok(response))) => Ok(response.data),
            Ok(Ok(Err(ClientWriteError::ForwardToLeader(forward)))) => {
                Err(GroupError::NotLeader { leader: forward.leader_id })
            }
            Ok(Ok(Err(ClientWriteError::ChangeMembershipError(error)))) => {
                Err(GroupError::Membership(error.to_string()))
            }
            // The responder was dropped: leadership was lost mid-append.
            Ok(Err(_)) => Err(GroupError::NotLeader { leader: None }),
        },
        Attempt::Remote(reply) => match reply.await {
            Ok(Reply::Forward(result)) => result,
            Ok(_) => Err(GroupError::NotLeader { leader: None }),
            Err(error) => Err(inner.unavailable(error.to_string())),
        },
    }
}

/// Whether an attempt may be repeated with the same serials.
fn retriable(error: &GroupError) -> bool {
    matches!(error, GroupError::NotLeader { .. } | GroupError::Unavailable { .. } | GroupError::ShuttingDown(_))
}
