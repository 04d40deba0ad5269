//! A consensus group on this node: the handle services use.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::{ChangeMembers, ServerState};
use serde::{Deserialize, Serialize};
use storage::Store;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::clock::Clock;
use crate::handover::{self, HandoverError, Handovers};
use crate::lease::Leases;
use crate::log_store::LogStore;
use crate::network::NetworkFactory;
use crate::node::RaftNode;
use crate::reads::ReadBatcher;
use crate::settings::GroupSettings;
use crate::sm_store::{Applied, StateMachineStore};
use crate::snapshot::SnapshotDir;
use crate::snapshot_receive;
use crate::state_machine::StateMachine;
use crate::submit::{self, Submission};
use crate::transport::wire::{AdminOp, Reply, Rpc};
use crate::types::{Node, NodeId, Raft, Request};

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

/// Why a proposal, read or membership change did not complete.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Serialize, Deserialize)]
pub enum GroupError {
    /// The group is shutting down and takes no new work.
    #[error("group {0} is shutting down")]
    ShuttingDown(String),
    /// The group stopped on a storage failure; the node must stop.
    #[error("group {group} stopped after a fatal error: {reason}")]
    Fatal { group: String, reason: String },
    /// No leader with a quorum answered within the request timeout. The
    /// request may or may not take effect later.
    #[error("group {group} is unavailable: {reason}")]
    Unavailable { group: String, reason: String },
    /// This node does not lead the group (between nodes only).
    #[error("node is not the leader of the group; leader: {leader:?}")]
    NotLeader { leader: Option<NodeId> },
    /// A membership change was refused.
    #[error("{0}")]
    Membership(String),
    /// A leadership handover was refused or did not complete.
    #[error("{0}")]
    Handover(#[from] HandoverError),
}

/// This node's role in the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Learner,
    Shutdown,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Learner => "learner",
            Role::Shutdown => "shutdown",
        }
    }
}

/// A node of the group's membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: NodeId,
    /// Its Raft transport address.
    pub addr: String,
    /// A voter, or a learner that only receives the log.
    pub voter: bool,
}

/// A snapshot of the group's progress, for INFO and operators.
#[derive(Debug, Clone)]
pub struct GroupStatus {
    pub id: GroupId,
    pub node_id: NodeId,
    pub role: Role,
    pub term: u64,
    pub leader: Option<Member>,
    /// On the leader: the highest index stored on a quorum. Elsewhere: the
    /// applied index (a lower bound of the commit index).
    pub commit_index: u64,
    pub applied_index: u64,
    pub last_log_index: u64,
    pub snapshot_index: u64,
    pub purged_index: u64,
    pub members: Vec<Member>,
    /// On the leader: each other member's matched log index.
    pub replication: Vec<(NodeId, u64)>,
    pub snapshots_installed: u64,
}

/// How a group starts on a node with no Raft state yet.
#[derive(Debug, Clone)]
pub enum Bootstrap {
    /// Form a new cluster of these voters (id → Raft address). Calling this
    /// on every initial member with the same list is safe; on a node that
    /// already has state it does nothing.
    Initialize(BTreeMap<NodeId, String>),
    /// Wait to be added by an existing member.
    Join,
}

/// A handle on a running group. Cheap to clone.
#[derive(Clone)]
pub struct Group {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) id: GroupId,
    /// `id` as text: how peers address the group.
    pub(crate) name: Arc<str>,
    pub(crate) node_id: NodeId,
    pub(crate) raft: Raft,
    pub(crate) node: RaftNode,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) applied: Applied,
    pub(crate) log: LogStore,
    pub(crate) settings: GroupSettings,
    pub(crate) session: ClientSession,
    pub(crate) submissions: mpsc::UnboundedSender<Submission>,
    /// Reads on this node (ask the leader when following).
    pub(crate) local_reads: Arc<ReadBatcher>,
    /// `ReadIndex` requests from followers (answered only when leading).
    pub(crate) remote_reads: Arc<ReadBatcher>,
    /// Whether this node leads under a lease (reads need no round then).
    pub(crate) leases: Arc<Leases>,
    /// Vote requests wait until one lease after this, when the group
    /// started (see [`crate::lease`]).
    pub(crate) started: Instant,
    /// The largest stamp this node handed out as leader.
    pub(crate) last_stamp_ms: AtomicU64,
    /// A leadership handover this node runs as leader, if any.
    pub(crate) handovers: Handovers,
    /// Cancelled by [`Group::shutdown`]: the group's background tasks end,
    /// which releases their references to the group.
    pub(crate) stopped: tokio_util::sync::CancellationToken,
}

/// This handle's client session (see [`crate::sessions`]): serials and the
/// set of serials still waiting for an answer.
pub(crate) struct ClientSession {
    pub(crate) client: u64,
    serials: Mutex<Serials>,
}

/// Drawn and registered under one lock: otherwise a serial drawn later could
/// register first and carry an `acked_below` above the earlier serial, which
/// the state machine would then skip as a stale duplicate.
#[derive(Default)]
struct Serials {
    next: u64,
    outstanding: BTreeSet<u64>,
}

impl ClientSession {
    fn new() -> Self {
        ClientSession { client: rand::random(), serials: Mutex::default() }
    }

    /// A new request carrying `payload`, registered as outstanding.
    fn request(&self, payload: Bytes) -> Request {
        let mut serials = self.serials.lock().expect("session lock");
        let serial = serials.next;
        serials.next += 1;
        serials.outstanding.insert(serial);
        let acked_below = *serials.outstanding.first().expect("just inserted");
        Request { client: self.client, serial, acked_below, stamp_ms: 0, payload }
    }

    /// Marks `serial` answered: it will never be retried.
    pub(crate) fn answered(&self, serial: u64) {
        self.serials.lock().expect("session lock").outstanding.remove(&serial);
    }
}

impl Group {
    /// Starts group `id` on `node` over the service's `store` and state
    /// machine, bootstrapping a fresh node as `bootstrap` says. (Services
    /// wrap this in a settings struct of their own, e.g. `kv::KvStart`.)
    #[allow(clippy::too_many_arguments)]
    pub async fn start<SM: StateMachine>(
        node: &RaftNode,
        id: GroupId,
        store: Store,
        service: SM,
        snapshot_dir: PathBuf,
        settings: GroupSettings,
        clock: Arc<dyn Clock>,
        bootstrap: Bootstrap,
    ) -> Result<Group, crate::StartError> {
        let name = id.to_string();
        let log = LogStore::open(store.clone(), node.id(), id.shard)?;
        let snapshots = SnapshotDir::open(snapshot_dir)?;
        let sm = StateMachineStore::open(store, id.shard, service, snapshots.clone())?;
        let applied = sm.applied();
        let config = Arc::new(settings.openraft_config()?);
        let leases = Arc::new(Leases::new(settings.leader_lease()));
        let network = NetworkFactory {
            peers: node.peers(),
            group: name.clone(),
            retry_pause: settings.heartbeat,
            leases: leases.clone(),
        };
        let raft = crate::pipeline::spawn(Raft::new(node.id(), config, network, log.clone(), sm))
            .await
            .map_err(|error| crate::StartError::Raft(error.to_string()))??;
        let (submissions, queue) = mpsc::unbounded_channel();
        let group = Group {
            inner: Arc::new(Inner {
                id,
                name: Arc::from(name.as_str()),
                node_id: node.id(),
                raft,
                node: node.clone(),
                clock,
                applied,
                log,
                settings,
                session: ClientSession::new(),
                submissions,
                local_reads: ReadBatcher::new(true),
                remote_reads: ReadBatcher::new(false),
                leases,
                started: Instant::now(),
                last_stamp_ms: AtomicU64::new(0),
                handovers: Handovers::new(),
                stopped: tokio_util::sync::CancellationToken::new(),
            }),
        };
        crate::pipeline::spawn(submit::run(group.inner.clone(), queue));
        crate::pipeline::spawn(crate::snapshot_trigger::run(group.inner.clone(), snapshots));
        if let Some(cap) = group.inner.settings.max_voters {
            crate::pipeline::spawn(crate::voter_cap::run(group.inner.clone(), cap));
        }
        node.register(name.clone(), group.clone());
        if let Bootstrap::Initialize(members) = bootstrap {
            if !group.inner.raft.is_initialized().await.map_err(|e| crate::StartError::Raft(e.to_string()))? {
                let nodes: BTreeMap<NodeId, Node> = members.into_iter().map(|(id, addr)| (id, Node { addr })).collect();
                tracing::info!(group = %name, members = ?nodes.keys().collect::<Vec<_>>(), "initializing a new cluster");
                if let Err(error) = group.inner.raft.initialize(nodes).await {
                    tracing::info!(group = %name, %error, "initialize skipped");
                }
            }
        }
        Ok(group)
    }

    /// How the group times itself and compacts its log.
    pub fn settings(&self) -> &GroupSettings {
        &self.inner.settings
    }

    /// The group's id.
    pub fn id(&self) -> &GroupId {
        &self.inner.id
    }

    /// Proposes `payload` and returns the future of the service's response.
    /// The proposal is queued before this returns, so proposals made one
    /// after another from one task are appended in that order while the
    /// leader is stable. It applies at most once, however often it is
    /// forwarded or retried; an error means it may or may not apply.
    pub fn propose(&self, payload: Bytes) -> Proposal {
        let request = self.inner.session.request(payload);
        let (reply, receiver) = oneshot::channel();
        let deadline = Instant::now() + self.inner.settings.request_timeout;
        let serial = request.serial;
        let submission = Submission { requests: vec![request], reply, deadline, forwarded: false };
        if let Err(mpsc::error::SendError(submission)) = self.inner.submissions.send(submission) {
            self.inner.session.answered(serial);
            let _ = submission.reply.send(Err(GroupError::ShuttingDown(self.inner.name.to_string())));
        }
        Proposal { receiver, group: self.inner.name.clone() }
    }

    /// Waits until a read of the local state machine is linearizable: every
    /// write acknowledged (by any node) before this call is applied here.
    /// One leadership confirmation serves every read waiting for one.
    pub async fn read_barrier(&self) -> Result<(), GroupError> {
        let deadline = Instant::now() + self.inner.settings.request_timeout;
        let index = self.inner.local_reads.read_index(&self.inner, deadline).await?;
        self.inner.wait_applied(index, deadline).await
    }

    /// The node this node believes leads the group, if any.
    pub fn leader_id(&self) -> Option<NodeId> {
        self.inner.leader_id()
    }

    /// Whether this node currently leads the group.
    pub fn is_leader(&self) -> bool {
        self.inner.leader_id() == Some(self.inner.node_id)
    }

    /// The index of the last entry applied on this node; every write up to
    /// it is visible in storage.
    pub fn applied_index(&self) -> u64 {
        *self.inner.applied.index.borrow()
    }

    /// The largest leader stamp applied on this node.
    pub fn applied_stamp_ms(&self) -> u64 {
        self.inner.applied.stamp_ms.load(Ordering::Acquire)
    }

    /// The group's progress.
    pub fn status(&self) -> GroupStatus {
        let metrics = self.inner.raft.metrics().borrow().clone();
        let role = match metrics.state {
            ServerState::Leader => Role::Leader,
            ServerState::Follower => Role::Follower,
            ServerState::Candidate => Role::Candidate,
            ServerState::Learner => Role::Learner,
            ServerState::Shutdown => Role::Shutdown,
        };
        let members = members_of(&metrics.membership_config);
        let leader = metrics.current_leader.and_then(|id| members.iter().find(|m| m.id == id).cloned());
        let applied_index = metrics.last_applied.map_or(0, |id| id.index);
        let last_log_index = metrics.last_log_index.unwrap_or(0);
        let replication: Vec<(NodeId, u64)> = metrics
            .replication
            .as_ref()
            .map(|r| r.iter().map(|(id, matched)| (*id, matched.map_or(0, |m| m.index))).collect())
            .unwrap_or_default();
        let commit_index = if role == Role::Leader {
            quorum_index(&members, &replication, self.inner.node_id, last_log_index).max(applied_index)
        } else {
            applied_index
        };
        GroupStatus {
            id: self.inner.id.clone(),
            node_id: self.inner.node_id,
            role,
            term: metrics.current_term,
            leader,
            commit_index,
            applied_index,
            last_log_index,
            snapshot_index: metrics.snapshot.map_or(0, |id| id.index),
            purged_index: metrics.purged.map_or(0, |id| id.index),
            members,
            replication: replication.into_iter().filter(|(id, _)| *id != self.inner.node_id).collect(),
            snapshots_installed: self.inner.applied.snapshots_installed.load(Ordering::Relaxed),
        }
    }

    /// The members of the group as this node knows them.
    pub fn members(&self) -> Vec<Member> {
        members_of(&self.inner.raft.metrics().borrow().membership_config)
    }

    /// The members of the group's configuration if this replica has
    /// applied it (then it is committed: no later leader has an older
    /// one); `None` while its latest configuration is not applied yet.
    pub fn applied_members(&self) -> Option<Vec<Member>> {
        let metrics = self.inner.raft.metrics().borrow().clone();
        let config_index = metrics.membership_config.log_id().map_or(0, |id| id.index);
        let applied_index = metrics.last_applied.map_or(0, |id| id.index);
        (config_index <= applied_index).then(|| members_of(&metrics.membership_config))
    }

    /// Adds node `id` listening at `addr`: first as a learner that receives
    /// the log, then (once it has caught up) as a voter. Runs on the leader;
    /// any node forwards it there. Adding a present voter changes nothing.
    pub async fn add_node(&self, id: NodeId, addr: String) -> Result<Vec<Member>, GroupError> {
        self.inner.admin(AdminOp::AddNode { id, addr }).await
    }

    /// Removes node `id` from the group (the leader included: it hands over
    /// leadership once the new configuration commits).
    pub async fn remove_node(&self, id: NodeId) -> Result<Vec<Member>, GroupError> {
        self.inner.admin(AdminOp::RemoveNode { id }).await
    }

    /// Hands leadership to voter `to` (or to the voter with the most of the
    /// log), within `timeout` (default: the membership timeout). Runs on
    /// the leader; any node forwards it there. See [`crate::handover`].
    pub async fn hand_over(&self, to: Option<NodeId>, timeout: Option<Duration>) -> Result<(), GroupError> {
        let timeout = timeout.unwrap_or(self.inner.settings.membership_timeout);
        let timeout_ms = timeout.as_millis().try_into().unwrap_or(u64::MAX);
        self.inner.admin(AdminOp::HandOver { to, timeout_ms }).await.map(|_| ())
    }

    /// Aborts the handover the leader is running.
    pub async fn abort_handover(&self) -> Result<(), GroupError> {
        self.inner.admin(AdminOp::AbortHandover).await.map(|_| ())
    }

    /// Resolves with the reason once the group has stopped on a fatal error.
    pub async fn fatal(&self) -> String {
        // The server metrics change only with the role, the leader or the
        // membership (the full metrics change with every commit, which
        // would wake this task thousands of times a second); their watch
        // closes when openraft's core ends, which is when to ask why.
        let mut server = self.inner.raft.server_metrics();
        while server.changed().await.is_ok() {}
        match &self.inner.raft.metrics().borrow().running_state {
            Err(openraft::error::Fatal::Stopped) => std::future::pending().await,
            Err(fatal) => fatal.to_string(),
            Ok(()) => "the Raft core ended".to_string(),
        }
    }

    /// Stops the group: Raft stops, queued proposals fail with
    /// `ShuttingDown`.
    pub async fn shutdown(&self) {
        self.inner.stopped.cancel();
        self.inner.node.unregister(&self.inner.name);
        if let Err(error) = self.inner.raft.shutdown().await {
            tracing::error!(group = %self.inner.name, %error, "raft task ended abnormally");
        }
        tracing::info!(group = %self.inner.name, "group stopped");
    }

    /// Handles a request from a peer.
    pub(crate) fn dispatch(&self, rpc: Rpc) -> crate::transport::PendingReply {
        let inner = self.inner.clone();
        match rpc {
            Rpc::AppendEntries(rpc) => {
                Box::pin(async move { Reply::AppendEntries(inner.raft.append_entries(rpc).await) })
            }
            Rpc::Vote(rpc) => Box::pin(async move {
                // A restarted node forgot whose append-entries it took
                // last; it keeps the refusal it may have promised.
                tokio::time::sleep_until(inner.started + inner.settings.leader_lease()).await;
                Reply::Vote(inner.raft.vote(rpc).await)
            }),
            Rpc::InstallSnapshot(rpc) => Box::pin(async move {
                let heartbeat = inner.settings.heartbeat;
                Reply::InstallSnapshot(snapshot_receive::chunk(&inner.raft, rpc, heartbeat).await)
            }),
            Rpc::Forward(requests) => {
                // Queued now, in arrival order.
                let (reply, receiver) = oneshot::channel();
                let deadline = Instant::now() + inner.settings.request_timeout;
                let submission = Submission { requests, reply, deadline, forwarded: true };
                let queued = inner.submissions.send(submission).is_ok();
                let name = inner.name.to_string();
                Box::pin(async move {
                    if !queued {
                        return Reply::Forward(Err(GroupError::ShuttingDown(name)));
                    }
                    let result = receiver.await.unwrap_or(Err(GroupError::ShuttingDown(name)));
                    if result.is_ok() && storage::failpoints::fire_in("drop-forward-reply", &inner.name) {
                        // Hold the reply past the follower's attempt timeout.
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    Reply::Forward(result)
                })
            }
            Rpc::ReadIndex => Box::pin(async move {
                let deadline = Instant::now() + inner.settings.request_timeout;
                Reply::ReadIndex(inner.remote_reads.read_index(&inner, deadline).await)
            }),
            Rpc::Admin(op) => Box::pin(async move { Reply::Admin(inner.admin_as_leader(op).await) }),
            Rpc::Join(op) => Box::pin(async move { Reply::Admin(inner.admin(op).await) }),
            Rpc::Campaign => Box::pin(async move { Reply::Campaign(handover::campaign(&inner).await) }),
            Rpc::Service(_) => Box::pin(async { Reply::UnknownGroup }),
        }
    }
}

impl Inner {
    pub(crate) fn leader_id(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// The current leader and its Raft address.
    pub(crate) fn leader(&self) -> Option<(NodeId, String)> {
        let leader = self.leader_id()?;
        Some((leader, self.member_addr(leader)?))
    }

    /// The Raft address of member `id`.
    pub(crate) fn member_addr(&self, id: NodeId) -> Option<String> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let addr = metrics.membership_config.nodes().find(|(member, _)| **member == id).map(|(_, n)| n.addr.clone());
        addr
    }

    /// Resolves once this node knows of a leader other than `leader`.
    async fn leader_changes_from(&self, leader: NodeId) {
        // The server metrics change with the role, leader or membership
        // only, not with every commit.
        let mut metrics = self.raft.server_metrics();
        loop {
            if metrics.borrow_and_update().current_leader.is_some_and(|now| now != leader) {
                return;
            }
            if metrics.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// Waits (until `deadline`) for a leader to be known.
    pub(crate) async fn wait_for_leader(&self, deadline: Instant) -> Option<(NodeId, String)> {
        let mut metrics = self.raft.metrics();
        loop {
            if let Some(leader) = self.leader() {
                return Some(leader);
            }
            match tokio::time::timeout_at(deadline, metrics.changed()).await {
                Ok(Ok(())) => {}
                _ => return None,
            }
        }
    }

    /// The stamp for an entry this node appends as leader: its clock, never
    /// below a stamp it handed out or applied.
    pub(crate) fn stamp(&self) -> u64 {
        let floor = self.applied.stamp_ms.load(Ordering::Acquire);
        let now = self.clock.now_ms().max(floor);
        let previous = self.last_stamp_ms.fetch_max(now, Ordering::AcqRel);
        now.max(previous)
    }

    pub(crate) fn unavailable(&self, reason: impl Into<String>) -> GroupError {
        GroupError::Unavailable { group: self.name.to_string(), reason: reason.into() }
    }

    pub(crate) async fn wait_applied(&self, index: u64, deadline: Instant) -> Result<(), GroupError> {
        let mut applied = self.applied.index.clone();
        let reached = tokio::time::timeout_at(deadline, async {
            applied.wait_for(|applied| *applied >= index).await.map(|_| ())
        })
        .await;
        match reached {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(GroupError::ShuttingDown(self.name.to_string())),
            Err(_) => Err(self.unavailable(format!("log index {index} was not applied in time"))),
        }
    }

    /// How long `op` may take on the leader.
    fn admin_timeout(&self, op: &AdminOp) -> Duration {
        match op {
            AdminOp::HandOver { timeout_ms, .. } => Duration::from_millis(*timeout_ms),
            _ => self.settings.membership_timeout,
        }
    }

    /// Runs a membership change on the leader, forwarding it if needed.
    async fn admin(self: &Arc<Self>, op: AdminOp) -> Result<Vec<Member>, GroupError> {
        // The leader's own limit runs out first, so its answer arrives.
        let deadline = Instant::now() + self.admin_timeout(&op) + Duration::from_secs(1);
        loop {
            let Some((leader, addr)) = self.wait_for_leader(deadline).await else {
                return Err(self.unavailable("no leader"));
            };
            if leader == self.node_id {
                return self.admin_as_leader(op).await;
            }
            let timeout = deadline.saturating_duration_since(Instant::now());
            let peers = self.node.peers();
            let call = peers.call(&addr, &self.name, Rpc::Admin(op.clone()), timeout);
            // A leader cut off from this node may be replaced meanwhile:
            // then ask the new one rather than wait out the call. The
            // operation itself can change the leader (a handover, the
            // leader's own removal), so the old leader gets one lease to
            // answer after the change.
            let replaced = async {
                self.leader_changes_from(leader).await;
                tokio::time::sleep(self.settings.leader_lease()).await;
            };
            let answer = tokio::select! {
                answer = call => answer,
                _ = replaced => continue,
            };
            match answer {
                Ok(Reply::Admin(Err(GroupError::NotLeader { .. }))) | Err(_) => {
                    if Instant::now() >= deadline {
                        return Err(self.unavailable("the leader did not answer"));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(Reply::Admin(result)) => return result,
                Ok(_) => return Err(self.unavailable("the leader answered with an unexpected reply")),
            }
        }
    }

    async fn admin_as_leader(self: &Arc<Self>, op: AdminOp) -> Result<Vec<Member>, GroupError> {
        let membership_error = |error: RaftError<NodeId, ClientWriteError<NodeId, Node>>| match error {
            RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => {
                GroupError::NotLeader { leader: forward.leader_id }
            }
            RaftError::APIError(ClientWriteError::ChangeMembershipError(error)) => {
                GroupError::Membership(error.to_string())
            }
            RaftError::Fatal(fatal) => GroupError::Fatal { group: self.name.to_string(), reason: fatal.to_string() },
        };
        let timeout = self.admin_timeout(&op);
        let work = async {
            match op {
                AdminOp::AddNode { id, addr } => {
                    let members = members_of(&self.raft.metrics().borrow().membership_config);
                    if let Some(member) = members.iter().find(|m| m.id == id) {
                        if member.addr != addr {
                            return Err(GroupError::Membership(format!(
                                "node {id} is already a member at {}",
                                member.addr
                            )));
                        }
                    }
                    let learner = Node { addr };
                    self.once_settled(|| self.raft.add_learner(id, learner.clone(), true))
                        .await
                        .map_err(membership_error)?;
                    let voters = members.iter().filter(|m| m.voter && m.id != id).count();
                    // A capped group keeps a newcomer as a learner once its
                    // seats are taken (see crate::voter_cap).
                    if self.settings.max_voters.is_none_or(|cap| voters < cap) {
                        let voters = BTreeSet::from([id]);
                        self.change_membership(ChangeMembers::AddVoterIds(voters)).await.map_err(membership_error)?;
                    }
                }
                AdminOp::RemoveNode { id } => {
                    let members = members_of(&self.raft.metrics().borrow().membership_config);
                    let Some(member) = members.iter().find(|m| m.id == id) else {
                        return Err(GroupError::Membership(format!("node {id} is not a member")));
                    };
                    let ids = BTreeSet::from([id]);
                    let change =
                        if member.voter { ChangeMembers::RemoveVoters(ids) } else { ChangeMembers::RemoveNodes(ids) };
                    self.change_membership(change).await.map_err(membership_error)?;
                }
                AdminOp::HandOver { to, .. } => {
                    handover::run(self, to, Instant::now() + timeout).await?;
                }
                AdminOp::AbortHandover => {
                    if self.leader_id() != Some(self.node_id) {
                        return Err(GroupError::NotLeader { leader: self.leader_id() });
                    }
                    self.handovers.abort()?;
                }
            }
            Ok(members_of(&self.raft.metrics().borrow().membership_config))
        };
        match tokio::time::timeout(timeout + Duration::from_millis(100), work).await {
            Ok(result) => result,
            Err(_) => Err(self.unavailable("the membership change did not complete in time")),
        }
    }

    /// Makes `change` once the membership change in progress, if any, has
    /// committed (see [`Inner::once_settled`]).
    async fn change_membership(
        &self,
        change: ChangeMembers<NodeId, Node>,
    ) -> Result<(), RaftError<NodeId, ClientWriteError<NodeId, Node>>> {
        self.once_settled(|| self.raft.change_membership(change.clone(), false)).await
    }

    /// Runs the membership change `change` makes, again while another is
    /// in progress: a new leader commits the last change its predecessor
    /// left in flight (a fresh cluster's leader, the initial membership),
    /// and an operator's change, or a node's join, must wait for it rather
    /// than fail. (The caller bounds the wait.)
    async fn once_settled<T, F, Fut>(&self, change: F) -> Result<(), RaftError<NodeId, ClientWriteError<NodeId, Node>>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, RaftError<NodeId, ClientWriteError<NodeId, Node>>>>,
    {
        loop {
            match change().await {
                Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
                    ChangeMembershipError::InProgress(_),
                ))) => tokio::time::sleep(Duration::from_millis(50)).await,
                result => return result.map(|_| ()),
            }
        }
    }
}

pub(crate) fn members_of(membership: &crate::types::StoredMembership) -> Vec<Member> {
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    membership
        .nodes()
        .map(|(id, node)| Member { id: *id, addr: node.addr.clone(), voter: voters.contains(id) })
        .collect()
}

/// The highest index stored on a majority of voters.
fn quorum_index(members: &[Member], replication: &[(NodeId, u64)], me: NodeId, my_last: u64) -> u64 {
    let mut matched: Vec<u64> = members
        .iter()
        .filter(|m| m.voter)
        .map(|m| {
            if m.id == me {
                my_last
            } else {
                replication.iter().find(|(id, _)| *id == m.id).map_or(0, |(_, index)| *index)
            }
        })
        .collect();
    if matched.is_empty() {
        return 0;
    }
    matched.sort_unstable_by(|a, b| b.cmp(a));
    matched[matched.len() / 2]
}

/// A proposal's pending response.
pub struct Proposal {
    receiver: oneshot::Receiver<Result<Vec<Bytes>, GroupError>>,
    group: Arc<str>,
}

impl Future for Proposal {
    type Output = Result<Bytes, GroupError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.receiver).poll(cx).map(|result| match result {
            Ok(Ok(mut responses)) if responses.len() == 1 => Ok(responses.pop().expect("one response")),
            Ok(Ok(responses)) => Err(GroupError::Fatal {
                group: self.group.to_string(),
                reason: format!("{} responses to one proposal", responses.len()),
            }),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(GroupError::ShuttingDown(self.group.to_string())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::{Sessions, Verdict};

    /// Requests drawn from many threads at once reach the log in whatever
    /// order their threads queue them, and each is answered once queued.
    /// However they interleave, the state machine must execute every one:
    /// none may carry an `acked_below` above a serial still outstanding.
    #[test]
    fn concurrently_drawn_requests_all_execute() {
        let session = Arc::new(ClientSession::new());
        let log = Arc::new(Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (session, log) = (session.clone(), log.clone());
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        let request = session.request(Bytes::new());
                        let serial = request.serial;
                        log.lock().expect("log lock").push(request);
                        session.answered(serial);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("drawing thread");
        }
        let mut sessions = Sessions::default();
        for (index, request) in log.lock().expect("log lock").iter().enumerate() {
            let verdict = sessions.check(request, index as u64 + 1);
            assert_eq!(verdict, Verdict::Execute, "serial {} skipped as stale", request.serial);
        }
    }
}
