//! The shards this node holds no replica of, reached through a node that
//! does: the node service `kv` runs a write, a read, a WATCH, a blocking
//! pop or a poll of a change feed (`follow`) on its replica of the
//! shard's group, for a peer, exactly as for a client of its own (a
//! follower forwards the write to the shard's leader; a read waits for
//! the group's read barrier, so it is linearizable).
//!
//! Which node: the shard's leader as last heard (every answer names the
//! leader the answering replica knows), then the shard's target members in
//! the metadata group's placement, then every other node. A node that does
//! not host the shard (the placement moved it) answers so and the next one
//! is tried; so is one that cannot be reached. A request that was sent but
//! got no answer is not sent again: it may have applied, and the caller
//! gets the same "may or may not have applied" failure as from its own
//! group.
//!
//! Requests are queued on the peers' connections by one task, in the order
//! they were made, and the remote node takes them in that order (see
//! [`raft::NodeService`]): a pipeline's writes to a remote shard apply in
//! the order the client sent them.
//!
//! A remote blocking pop waits on the hosting node as one of its own
//! clients. It ends there when the caller cancels it (its client left),
//! when the caller's node is suspected down by the failure detector, or
//! when a later process of the caller's node sends a blocking pop. An
//! element served to a caller that crashed before it was suspected is
//! lost, as a reply written to a Redis client that crashes is.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use raft::{answer_now, GroupError, NodeId, NodeService, ServiceAnswer};
use serde::{Deserialize, Serialize};
use storage::keyspace::Shard;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::everywhere::ScanStep;
use super::{Inner, Kv};
use crate::change_feed::Polled;
use crate::command::{BlockingPop, WatchedKey, WriteOp};
use crate::error::{Error, Result};
use crate::meta_group::PING_INTERVAL;
use crate::notify::NotifyFlags;
use crate::read::{ReadOp, ScanArgs};
use crate::reply::Reply;

/// The node service name.
pub(super) const SERVICE: &str = "kv";

/// How long a poll of a change feed waits for a change.
const FEED_WAIT: Duration = Duration::from_secs(1);

/// How long past a remote blocking pop's own timeout the caller waits for
/// its answer; a pop without a timeout waits this long in all.
const FOREVER: Duration = Duration::from_secs(30 * 24 * 3600);

/// What a peer asks of this node's replica of a shard.
#[derive(Debug, Serialize, Deserialize)]
enum Request {
    Write {
        shard: Shard,
        db: u8,
        op: WriteOp,
    },
    Read {
        shard: Shard,
        db: u8,
        op: ReadOp,
        stale: bool,
        /// The asking node's `notify-keyspace-events` (its `keymiss`).
        notify: NotifyFlags,
    },
    Watch {
        shard: Shard,
        db: u8,
        keys: Vec<Bytes>,
        stale: bool,
    },
    /// One step of a SCAN over every shard (`everywhere`).
    Scan {
        shard: Shard,
        db: u8,
        after: Option<Vec<u8>>,
        count: usize,
        args: ScanArgs,
        stale: bool,
    },
    Block {
        call: Call,
        shard: Shard,
        db: u8,
        keys: Vec<Bytes>,
        pop: BlockingPop,
        timeout_ms: Option<u64>,
    },
    /// The client of a remote blocking pop left.
    Cancel {
        call: Call,
    },
    /// The shard's committed members, and its target in the answering
    /// node's map (`placing`).
    Members {
        shard: Shard,
    },
    /// Poll `next` of the change feed `feed` of the shard, or (`None`)
    /// open it (`crate::change_feed`, `follow`).
    Follow {
        shard: Shard,
        feed: u64,
        next: Option<u64>,
    },
}

/// A remote blocking pop, named by its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct Call {
    node: NodeId,
    /// The caller's process (`Blocked::boot`).
    boot: u64,
    sequence: u64,
}

/// The answer to a [`Request`].
#[derive(Debug, Serialize, Deserialize)]
struct Answer {
    /// The shard's leader as the answering replica knows it.
    leader: Option<NodeId>,
    outcome: Outcome,
}

#[derive(Debug, Serialize, Deserialize)]
enum Outcome {
    Reply(Reply),
    Watched(Vec<WatchedKey>),
    Scanned(ScanStep),
    Members(Membership),
    Changes(Polled),
    /// The change feed polled is not (or no longer) here.
    Lost,
    /// This node holds no replica of the shard: ask another; the request
    /// had no effect.
    NotHosted,
    /// The shard's group could not complete the request (it may or may not
    /// have applied): [`GroupError::Unavailable`]'s reason.
    Unavailable(String),
    /// Any other failure, as text.
    Failed(String),
}

/// A shard's state as a replica that applied its configuration knows it,
/// and its target in that node's map, of epoch `epoch`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Membership {
    pub(super) view: ShardView,
    pub(super) epoch: u64,
    pub(super) target: Vec<NodeId>,
}

/// A shard as one of its replicas sees it (SESHAT SHARDS, CLUSTER SLOTS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardView {
    pub shard: Shard,
    pub leader: Option<NodeId>,
    /// Members by id, voters and learners.
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    /// The group's applied index on that replica.
    pub applied: u64,
    /// Its keys in every database, as that replica has them.
    pub keys: u64,
}

impl ShardView {
    /// `group` of `shard` with `members`, as this node's replica has it.
    fn of(kv: &Kv, shard: Shard, group: &raft::Group, members: &[raft::Member]) -> ShardView {
        let ids = |voter: bool| members.iter().filter(|m| m.voter == voter).map(|m| m.id).collect();
        ShardView {
            shard,
            leader: group.leader_id(),
            voters: ids(true),
            learners: ids(false),
            applied: group.applied_index(),
            keys: kv.shard_keys(shard).unwrap_or(0),
        }
    }
}

/// The caller's side: the queue of requests for other nodes and what it
/// learned of the shards' leaders.
pub(super) struct Remote {
    queue: mpsc::UnboundedSender<Outgoing>,
    leaders: Mutex<HashMap<Shard, NodeId>>,
    /// The shards this node holds no replica of, as a host last described
    /// them (refreshed by `placing`).
    views: Mutex<HashMap<Shard, ShardView>>,
    next_call: AtomicU64,
}

/// A request on its way, with where its answer goes.
pub(super) struct Outgoing {
    shard: Shard,
    request: Bytes,
    deadline: Instant,
    answer: oneshot::Sender<Result<Outcome>>,
    /// The Raft address of the node that took it, once one has.
    taken_by: Option<watch::Sender<Option<String>>>,
}

type PendingAnswer = Pin<Box<dyn Future<Output = std::result::Result<Bytes, String>> + Send>>;

impl Remote {
    /// The caller's side, whose queue [`send_in_order`] (spawned by
    /// [`start`]) serves.
    pub(super) fn new() -> (Remote, mpsc::UnboundedReceiver<Outgoing>) {
        let (queue, outgoing) = mpsc::unbounded_channel();
        let remote = Remote { queue, leaders: Mutex::default(), views: Mutex::default(), next_call: AtomicU64::new(0) };
        (remote, outgoing)
    }
}

/// Serves `kv` to peers and starts sending this node's requests to them.
pub(super) fn start(inner: &Arc<Inner>, outgoing: mpsc::UnboundedReceiver<Outgoing>) {
    let service = Arc::new(RemoteService { kv: Arc::downgrade(inner), blocks: Arc::default() });
    inner.hosting.node.register_service(SERVICE, service);
    tokio::spawn(send_in_order(Arc::downgrade(inner), outgoing));
}

impl Kv {
    /// Proposes `op` to the group of `shard` through a node that hosts it;
    /// the request is queued before this returns.
    pub(super) fn write_remote(&self, shard: Shard, db: u8, op: WriteOp) -> impl Future<Output = Result<Reply>> {
        let answer = self.send(shard, Request::Write { shard, db, op }, self.request_deadline(), None);
        async move { reply(answer.await?) }
    }

    /// Runs `op` on the group of `shard` through a node that hosts it,
    /// after that group's read barrier (or as that replica has it, with
    /// `stale`).
    pub(super) async fn read_remote(
        &self,
        shard: Shard,
        db: u8,
        op: ReadOp,
        stale: bool,
        notify: NotifyFlags,
    ) -> Result<Reply> {
        let request = Request::Read { shard, db, op, stale, notify };
        reply(self.send(shard, request, self.request_deadline(), None).await?)
    }

    /// [`Kv::watch`] through a node that hosts `shard`.
    pub(super) async fn watch_remote(
        &self,
        shard: Shard,
        db: u8,
        keys: Vec<Bytes>,
        stale: bool,
    ) -> Result<Vec<WatchedKey>> {
        match self.send(shard, Request::Watch { shard, db, keys, stale }, self.request_deadline(), None).await? {
            Outcome::Watched(watched) => Ok(watched),
            other => Err(unexpected(other)),
        }
    }

    /// One step of SCAN over `shard` through a node that hosts it.
    pub(super) async fn scan_remote(
        &self,
        shard: Shard,
        db: u8,
        after: Option<Vec<u8>>,
        count: usize,
        args: ScanArgs,
        stale: bool,
    ) -> Result<ScanStep> {
        let request = Request::Scan { shard, db, after, count, args, stale };
        match self.send(shard, request, self.request_deadline(), None).await? {
            Outcome::Scanned(step) => Ok(step),
            other => Err(unexpected(other)),
        }
    }

    /// The committed members of `shard`, from another node that hosts it;
    /// kept as the shard's view while this node hosts none.
    pub(super) async fn members_elsewhere(&self, shard: Shard) -> Result<Membership> {
        match self.send(shard, Request::Members { shard }, self.request_deadline(), None).await? {
            Outcome::Members(membership) => {
                let mut views = self.inner.remote.views.lock().expect("views lock");
                match self.group_of(shard) {
                    Some(_) => views.remove(&shard),
                    None => views.insert(shard, membership.view.clone()),
                };
                Ok(membership)
            }
            other => Err(unexpected(other)),
        }
    }

    /// Opens (`next` = `None`) or polls the change feed `feed` of `shard` on
    /// a node that hosts it: `None` if that node does not have the feed.
    pub(super) async fn poll_changes(&self, shard: Shard, feed: u64, next: Option<u64>) -> Result<Option<Polled>> {
        let deadline = self.request_deadline() + FEED_WAIT;
        match self.send(shard, Request::Follow { shard, feed, next }, deadline, None).await? {
            Outcome::Changes(polled) => Ok(Some(polled)),
            Outcome::Lost => Ok(None),
            other => Err(unexpected(other)),
        }
    }

    /// `shard` as this node's replica sees it, or, for a shard it holds no
    /// replica of, as a host described it last (`None`: not heard yet).
    pub fn shard_view(&self, shard: Shard) -> Option<ShardView> {
        match self.group_of(shard) {
            Some(group) => Some(ShardView::of(self, shard, &group, &group.members())),
            None => self.inner.remote.views.lock().expect("views lock").get(&shard).cloned(),
        }
    }

    /// [`Kv::block`] through a node that hosts `shard`: the pop waits
    /// there; if `gone` resolves first, it is cancelled there.
    pub(super) async fn block_remote(
        &self,
        shard: Shard,
        db: u8,
        keys: Vec<Bytes>,
        pop: BlockingPop,
        timeout: Option<Duration>,
        gone: impl Future<Output = ()>,
    ) -> Result<Reply> {
        let blocked = self.blocked();
        let sequence = self.inner.remote.next_call.fetch_add(1, Ordering::Relaxed);
        let call = Call { node: blocked.node(), boot: blocked.boot(), sequence };
        let timeout_ms = timeout.map(|timeout| timeout.as_millis() as u64);
        let request = Request::Block { call, shard, db, keys, pop, timeout_ms };
        let deadline =
            self.request_deadline() + self.inner.hosting.settings.request_timeout + timeout.unwrap_or(FOREVER);
        let (taken_by, taker) = watch::channel(None);
        let answer = self.send(shard, request, deadline, Some(taken_by));
        tokio::select! {
            outcome = answer => reply(outcome?),
            _ = gone => {
                if let Some(addr) = taker.borrow().clone() {
                    let cancel = encode(&Request::Cancel { call });
                    let node = self.inner.hosting.node.clone();
                    let deadline = self.request_deadline();
                    tokio::spawn(async move {
                        if let Ok(answer) = node.send_service(&addr, SERVICE, cancel, deadline).await {
                            let _ = answer.await;
                        }
                    });
                }
                Ok(Reply::NilArray)
            }
        }
    }

    /// Queues `request` for a node hosting `shard`; resolves with its
    /// outcome, a failure already turned into an error (see [`finish`]).
    fn send(
        &self,
        shard: Shard,
        request: Request,
        deadline: Instant,
        taken_by: Option<watch::Sender<Option<String>>>,
    ) -> impl Future<Output = Result<Outcome>> {
        let (answer, outcome) = oneshot::channel();
        let outgoing = Outgoing { shard, request: encode(&request), deadline, answer, taken_by };
        let queued = self.inner.remote.queue.send(outgoing).is_ok();
        async move {
            if !queued {
                return Err(GroupError::ShuttingDown(format!("kv/{shard}")).into());
            }
            match outcome.await {
                Ok(outcome) => outcome,
                Err(_) => Err(GroupError::ShuttingDown(format!("kv/{shard}")).into()),
            }
        }
    }

    fn request_deadline(&self) -> Instant {
        Instant::now() + self.inner.hosting.settings.request_timeout + Duration::from_secs(1)
    }

    /// The nodes to ask for `shard`, best first (see the module docs), as
    /// `(id, Raft address)`; never this node.
    fn candidates(&self, shard: Shard) -> Vec<(NodeId, String)> {
        let map = self.meta().map();
        let me = self.inner.hosting.node.id();
        let leader = self.inner.remote.leaders.lock().expect("leaders lock").get(&shard).copied();
        let target = map.placement.get(&shard).cloned().unwrap_or_default();
        let mut ids: Vec<NodeId> = leader.into_iter().chain(target).chain(map.nodes.keys().copied()).collect();
        let mut seen = std::collections::HashSet::new();
        ids.retain(|id| *id != me && seen.insert(*id));
        ids.into_iter().filter_map(|id| map.node(id).map(|node| (id, node.raft_addr.clone()))).collect()
    }

    /// Records the leader of `shard` a peer named.
    fn heard_leader(&self, shard: Shard, leader: Option<NodeId>) {
        let mut leaders = self.inner.remote.leaders.lock().expect("leaders lock");
        match leader {
            Some(leader) => leaders.insert(shard, leader),
            None => leaders.remove(&shard),
        };
    }

    /// The shard's leader as this node last heard it from a peer, for a
    /// shard it holds no replica of.
    pub fn remote_leader(&self, shard: Shard) -> Option<NodeId> {
        self.inner.remote.leaders.lock().expect("leaders lock").get(&shard).copied()
    }
}

/// Sends the queued requests, each to the first candidate that takes it,
/// one after another (so that they reach each node in order); their
/// answers are awaited apart.
async fn send_in_order(inner: Weak<Inner>, mut outgoing: mpsc::UnboundedReceiver<Outgoing>) {
    while let Some(request) = outgoing.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        let kv = Kv { inner };
        let candidates = kv.candidates(request.shard);
        let (tried, pending) = send_from(&kv, &candidates, 0, &request).await;
        tokio::spawn(finish(kv, candidates, tried, pending, request));
    }
}

/// Queues `request` on the first of `candidates` from `first` on that
/// takes it: its index and the future of its answer (`None`: none did).
async fn send_from(
    kv: &Kv,
    candidates: &[(NodeId, String)],
    first: usize,
    request: &Outgoing,
) -> (usize, Option<PendingAnswer>) {
    let node = &kv.inner.hosting.node;
    for (index, (_, addr)) in candidates.iter().enumerate().skip(first) {
        if let Ok(answer) = node.send_service(addr, SERVICE, request.request.clone(), request.deadline).await {
            if let Some(taken_by) = &request.taken_by {
                taken_by.send_replace(Some(addr.clone()));
            }
            return (index, Some(Box::pin(answer)));
        }
    }
    (candidates.len(), None)
}

/// Awaits the answer to `request` from `candidates[tried]`, moving on to
/// the next candidate while the answer is "not hosted here".
async fn finish(
    kv: Kv,
    candidates: Vec<(NodeId, String)>,
    mut tried: usize,
    mut pending: Option<PendingAnswer>,
    request: Outgoing,
) {
    let shard = request.shard;
    let outcome = loop {
        let Some(answer) = pending.take() else {
            let reason = format!("no node hosting shard {shard} could be reached");
            break Err(GroupError::Unavailable { group: format!("kv/{shard}"), reason }.into());
        };
        let answer = match answer.await {
            Ok(bytes) => postcard::from_bytes::<Answer>(&bytes).map_err(|error| Error::Reply(error.to_string())),
            Err(reason) => Err(GroupError::Unavailable { group: format!("kv/{shard}"), reason }.into()),
        };
        match answer {
            Ok(Answer { outcome: Outcome::NotHosted, .. }) => {
                (tried, pending) = send_from(&kv, &candidates, tried + 1, &request).await;
            }
            Ok(Answer { leader, outcome }) => {
                kv.heard_leader(shard, leader);
                break match outcome {
                    Outcome::Unavailable(reason) => {
                        Err(GroupError::Unavailable { group: format!("kv/{shard}"), reason }.into())
                    }
                    Outcome::Failed(reason) => Err(Error::Remote(reason)),
                    outcome => Ok(outcome),
                };
            }
            Err(error) => break Err(error),
        }
    };
    let _ = request.answer.send(outcome);
}

/// The reply of a remote write or read.
fn reply(outcome: Outcome) -> Result<Reply> {
    match outcome {
        Outcome::Reply(reply) => Ok(reply),
        other => Err(unexpected(other)),
    }
}

/// An answer of another kind than the request's (failures are errors
/// already, see [`finish`]): a peer's bug, reported as such.
fn unexpected(outcome: Outcome) -> Error {
    Error::Reply(format!("a peer answered {outcome:?}"))
}

fn encode<T: Serialize>(message: &T) -> Bytes {
    Bytes::from(postcard::to_stdvec(message).expect("remote messages serialize"))
}

/// The service peers call: runs their requests on this node's replicas.
struct RemoteService {
    kv: Weak<Inner>,
    /// The remote blocking pops waiting here, to cancel.
    blocks: Arc<Mutex<HashMap<Call, CancellationToken>>>,
}

impl NodeService for RemoteService {
    fn handle(&self, message: Bytes) -> ServiceAnswer {
        let Some(inner) = self.kv.upgrade() else {
            return answer_now(encode(&Answer { leader: None, outcome: Outcome::NotHosted }));
        };
        let kv = Kv { inner };
        let request = match postcard::from_bytes::<Request>(&message) {
            Ok(request) => request,
            Err(error) => {
                let outcome = Outcome::Failed(format!("undecodable request from a peer: {error}"));
                return answer_now(encode(&Answer { leader: None, outcome }));
            }
        };
        if let Request::Cancel { call } = request {
            if let Some(token) = self.blocks.lock().expect("blocks lock").get(&call) {
                token.cancel();
            }
            return answer_now(encode(&Answer { leader: None, outcome: Outcome::Reply(Reply::Nil) }));
        }
        let shard = match &request {
            Request::Write { shard, .. }
            | Request::Read { shard, .. }
            | Request::Watch { shard, .. }
            | Request::Scan { shard, .. }
            | Request::Members { shard }
            | Request::Follow { shard, .. }
            | Request::Block { shard, .. } => *shard,
            Request::Cancel { .. } => unreachable!("answered above"),
        };
        let Some(group) = kv.group_of(shard) else {
            return answer_now(encode(&Answer { leader: None, outcome: Outcome::NotHosted }));
        };
        // Runs now, so requests start in arrival order.
        let outcome: Pin<Box<dyn Future<Output = Result<Outcome>> + Send>> = match request {
            Request::Write { shard, db, op } => {
                let reply = kv.write(Some(shard), db, op);
                Box::pin(async move { Ok(Outcome::Reply(reply.await?)) })
            }
            Request::Read { shard, db, op, stale, notify } => {
                let kv = kv.clone();
                Box::pin(async move { Ok(Outcome::Reply(kv.read_op_as(Some(shard), db, op, stale, notify).await?)) })
            }
            Request::Watch { shard, db, keys, stale } => {
                let kv = kv.clone();
                Box::pin(async move { Ok(Outcome::Watched(kv.watch(shard, db, keys, stale).await?)) })
            }
            Request::Members { shard } => {
                let Some(members) = group.applied_members() else {
                    return answer_now(encode(&Answer { leader: None, outcome: Outcome::NotHosted }));
                };
                let map = kv.meta().map();
                let target = map.placement.get(&shard).cloned().unwrap_or_default();
                let view = ShardView::of(&kv, shard, &group, &members);
                Box::pin(std::future::ready(Ok(Outcome::Members(Membership { view, epoch: map.epoch, target }))))
            }
            Request::Scan { shard, db, after, count, args, stale } => {
                let kv = kv.clone();
                Box::pin(
                    async move { Ok(Outcome::Scanned(kv.scan_shard(shard, db, after, count, &args, stale).await?)) },
                )
            }
            Request::Follow { shard, feed, next } => {
                let feeds = &kv.inner.key_events.feeds;
                let Some(next) = next else {
                    return answer_now(encode(&Answer {
                        leader: group.leader_id(),
                        outcome: Outcome::Changes(feeds.open(feed, shard)),
                    }));
                };
                let key_events = kv.inner.key_events.clone();
                Box::pin(async move {
                    Ok(match key_events.feeds.poll(feed, next, FEED_WAIT).await {
                        Some(polled) => Outcome::Changes(polled),
                        None => Outcome::Lost,
                    })
                })
            }
            Request::Block { call, shard, db, keys, pop, timeout_ms } => {
                let cancelled = self.block_started(call);
                let kv = kv.clone();
                let blocks = self.blocks.clone();
                let timeout = timeout_ms.map(Duration::from_millis);
                Box::pin(async move {
                    let gone = caller_gone(&kv, call.node, cancelled);
                    let reply = kv.block(shard, db, keys, pop, timeout, gone).await;
                    blocks.lock().expect("blocks lock").remove(&call);
                    Ok(Outcome::Reply(reply?))
                })
            }
            Request::Cancel { .. } => unreachable!("answered above"),
        };
        Box::pin(async move {
            let outcome = outcome.await.unwrap_or_else(failure);
            encode(&Answer { leader: group.leader_id(), outcome })
        })
    }
}

impl RemoteService {
    /// Records a remote blocking pop starting, and cancels the pops of the
    /// caller's earlier processes; returns the pop's cancellation.
    fn block_started(&self, call: Call) -> CancellationToken {
        let mut blocks = self.blocks.lock().expect("blocks lock");
        for (earlier, token) in blocks.iter() {
            if earlier.node == call.node && earlier.boot != call.boot {
                token.cancel();
            }
        }
        blocks.entry(call).or_default().clone()
    }
}

/// Resolves when the remote blocking pop is cancelled or its caller's node
/// is suspected down.
async fn caller_gone(kv: &Kv, caller: NodeId, cancelled: CancellationToken) {
    let suspected = async {
        loop {
            tokio::time::sleep(PING_INTERVAL).await;
            if kv.meta().suspects().contains(caller) {
                return;
            }
        }
    };
    tokio::select! {
        _ = cancelled.cancelled() => {}
        _ = suspected => {}
    }
}

/// A failure to run a peer's request, as it travels back.
fn failure(error: Error) -> Outcome {
    match error {
        Error::NotHosted(_) => Outcome::NotHosted,
        Error::Group(GroupError::ShuttingDown(_)) => {
            Outcome::Unavailable("the node hosting it is shutting down".into())
        }
        Error::Group(GroupError::Unavailable { reason, .. }) => Outcome::Unavailable(reason),
        Error::Group(GroupError::NotLeader { .. }) => Outcome::Unavailable("leadership changed".into()),
        other => Outcome::Failed(other.to_string()),
    }
}
