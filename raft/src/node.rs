//! A node's Raft endpoint: its id, its transport listener and the groups it
//! runs, which peers address by name (`kv/0`, `sql/0`).
//!
//! Membership belongs to the node, not to a service: joining a cluster,
//! adding and removing a node and listing the members are node operations
//! that cover every group the node runs. Each group changes its own
//! membership through its own log (one group's change is atomic, the set
//! of groups is not): an operation that stopped half-way is finished by
//! running it again, as adding a present member or removing an absent one
//! changes nothing.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::group::{Group, GroupError, Member};
use crate::transport::wire::{AdminOp, Reply, Rpc};
use crate::transport::{self, Dispatch, Peers, PendingReply};
use crate::types::NodeId;

/// This node's Raft endpoint. Cheap to clone.
#[derive(Clone)]
pub struct RaftNode {
    inner: Arc<NodeInner>,
}

/// A node-level service peers reach over the transport, outside any Raft
/// group and its log (pub/sub fan-out, the kv service's remote commands).
pub trait NodeService: Send + Sync + 'static {
    /// Answers a peer's message. Called in arrival order for each peer
    /// connection, and must not block: what it does before returning
    /// happens before the next message from that peer is handled, which
    /// keeps one peer's messages in order. The answer it returns may take
    /// its time (a remote blocking pop); the peer's other messages do not
    /// wait for it.
    fn handle(&self, message: Bytes) -> ServiceAnswer;
}

/// The answer of a [`NodeService`] to one message.
pub type ServiceAnswer = std::pin::Pin<Box<dyn std::future::Future<Output = Bytes> + Send>>;

/// An answer known at once.
pub fn answer_now(answer: Bytes) -> ServiceAnswer {
    Box::pin(std::future::ready(answer))
}

struct NodeInner {
    id: NodeId,
    addr: SocketAddr,
    /// Where peers reach this node (what `join` asks the cluster to record).
    advertised: String,
    peers: Peers,
    /// By name, so listing them is in name order.
    groups: RwLock<BTreeMap<String, Group>>,
    services: RwLock<HashMap<String, Arc<dyn NodeService>>>,
    shutdown: CancellationToken,
}

struct Router(Arc<NodeInner>);

impl Dispatch for Router {
    fn dispatch(&self, group: &str, rpc: Rpc) -> PendingReply {
        if let Rpc::Service(message) = rpc {
            let service = self.0.services.read().expect("services lock").get(group).cloned();
            return match service {
                Some(service) => {
                    let answer = service.handle(message);
                    Box::pin(async { Reply::Service(answer.await) })
                }
                None => Box::pin(async { Reply::UnknownGroup }),
            };
        }
        let group = self.0.groups.read().expect("groups lock").get(group).cloned();
        match group {
            Some(group) => group.dispatch(rpc),
            None => Box::pin(async { Reply::UnknownGroup }),
        }
    }
}

impl RaftNode {
    /// Starts serving peers on `listener` as node `id`, which peers reach
    /// at `advertised` (default: the listener's address).
    pub fn start(id: NodeId, listener: TcpListener, advertised: Option<String>) -> std::io::Result<RaftNode> {
        let addr = listener.local_addr()?;
        let advertised = advertised.unwrap_or_else(|| addr.to_string());
        let inner = Arc::new(NodeInner {
            id,
            addr,
            advertised,
            peers: Peers::new(Some(addr.ip()).filter(|ip| !ip.is_unspecified())),
            groups: RwLock::default(),
            services: RwLock::default(),
            shutdown: CancellationToken::new(),
        });
        let router: Arc<dyn Dispatch> = Arc::new(Router(inner.clone()));
        tokio::spawn(transport::serve(listener, router, inner.shutdown.clone()));
        Ok(RaftNode { inner })
    }

    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// The address the transport listens on.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The address peers reach this node at.
    pub fn advertised(&self) -> &str {
        &self.inner.advertised
    }

    pub(crate) fn peers(&self) -> Peers {
        self.inner.peers.clone()
    }

    pub(crate) fn register(&self, name: String, group: Group) {
        self.inner.groups.write().expect("groups lock").insert(name, group);
    }

    pub(crate) fn unregister(&self, name: &str) {
        self.inner.groups.write().expect("groups lock").remove(name);
    }

    /// Serves `service` to peers under `name`.
    pub fn register_service(&self, name: &str, service: Arc<dyn NodeService>) {
        self.inner.services.write().expect("services lock").insert(name.to_string(), service);
    }

    /// Sends `message` to the service `name` of the node at `addr` and
    /// returns its answer, or why there is none within `timeout`.
    pub async fn call_service(
        &self,
        addr: &str,
        name: &str,
        message: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, String> {
        match self.inner.peers.call(addr, name, Rpc::Service(message), timeout).await {
            Ok(Reply::Service(answer)) => Ok(answer),
            Ok(_) => Err(format!("{addr} does not serve {name}")),
            Err(error) => Err(error.to_string()),
        }
    }

    /// Queues `message` for the service `name` of the node at `addr` and
    /// returns, once it is queued, the future of the answer, which fails at
    /// `deadline`. Messages queued one after another to one node arrive in
    /// that order (the remote service sees them so).
    pub async fn send_service(
        &self,
        addr: &str,
        name: &str,
        message: Bytes,
        deadline: tokio::time::Instant,
    ) -> Result<impl std::future::Future<Output = Result<Bytes, String>>, String> {
        let answer = self.inner.peers.send(addr, name, Rpc::Service(message), deadline).await;
        let answer = answer.map_err(|error| error.to_string())?;
        let addr = addr.to_string();
        let name = name.to_string();
        Ok(async move {
            match answer.await {
                Ok(Reply::Service(answer)) => Ok(answer),
                Ok(_) => Err(format!("{addr} does not serve {name}")),
                Err(error) => Err(error.to_string()),
            }
        })
    }

    /// Whether this node's link to the peer at Raft address `addr` is down
    /// (its last connection closed and reconnecting failed). Every group's
    /// leader keeps its links to the members up, so a member this node
    /// leads a group with is known to be down soon after it stops; of a
    /// member it never called, nothing is known (`false`).
    pub fn link_down(&self, addr: &str) -> bool {
        self.inner.peers.link_down(addr)
    }

    /// The groups this node runs, by name.
    pub fn groups(&self) -> Vec<Group> {
        self.inner.groups.read().expect("groups lock").values().cloned().collect()
    }

    /// The groups whose membership the node-level operations change.
    fn unplaced_groups(&self) -> Vec<Group> {
        self.groups().into_iter().filter(|group| !group.settings().placed).collect()
    }

    /// The group named `name` (`kv/0`), if this node runs it.
    pub fn group(&self, name: &str) -> Option<Group> {
        self.inner.groups.read().expect("groups lock").get(name).cloned()
    }

    /// Every node that is a member of at least one of this node's groups,
    /// by id: a voter if it votes in every group it belongs to that lets
    /// every member vote (a learner of a group with a voter cap, such as
    /// the metadata group, is as much a member as its voters).
    pub fn members(&self) -> Vec<Member> {
        let mut members: BTreeMap<NodeId, Member> = BTreeMap::new();
        for group in self.groups() {
            let capped = group.settings().max_voters.is_some();
            for mut member in group.members() {
                member.voter |= capped;
                members.entry(member.id).and_modify(|known| known.voter &= member.voter).or_insert(member);
            }
        }
        members.into_values().collect()
    }

    /// Adds node `id` (Raft address `addr`) to every group of this node
    /// but the placed ones (see [`crate::GroupSettings::placed`]): a
    /// learner first, then a voter once it has caught up (see
    /// [`Group::add_node`]). Returns the first group's failure, if any.
    pub async fn add_node(&self, id: NodeId, addr: String) -> Result<(), GroupError> {
        for group in self.unplaced_groups() {
            group.add_node(id, addr.clone()).await.map_err(|error| in_group(&group, error))?;
        }
        Ok(())
    }

    /// Removes node `id` from every group but the placed ones that it is a
    /// member of (the leader included). Refused if it is a member of none.
    pub async fn remove_node(&self, id: NodeId) -> Result<(), GroupError> {
        let groups: Vec<Group> =
            self.unplaced_groups().into_iter().filter(|group| group.members().iter().any(|m| m.id == id)).collect();
        if groups.is_empty() {
            return Err(GroupError::Membership(format!("node {id} is not a member")));
        }
        for group in groups {
            group.remove_node(id).await.map_err(|error| in_group(&group, error))?;
        }
        Ok(())
    }

    /// Asks the member at `member_addr` to add this node to every group
    /// this node runs but the placed ones (it forwards to each group's
    /// leader), retrying until it succeeds or `shutdown`.
    pub async fn join(&self, member_addr: &str, shutdown: CancellationToken) -> Result<(), GroupError> {
        for group in self.unplaced_groups() {
            let name = group.id().to_string();
            let members = self.join_group(member_addr, &name, shutdown.clone()).await?;
            tracing::info!(group = %name, members = members.len(), "joined the group");
        }
        Ok(())
    }

    /// Asks the member at `member_addr` to add this node to `group`,
    /// retrying until it succeeds or `shutdown`.
    async fn join_group(
        &self,
        member_addr: &str,
        group: &str,
        shutdown: CancellationToken,
    ) -> Result<Vec<Member>, GroupError> {
        let op = AdminOp::AddNode { id: self.inner.id, addr: self.inner.advertised.clone() };
        let mut pause = Duration::from_millis(100);
        loop {
            let call = self.inner.peers.call(member_addr, group, Rpc::Join(op.clone()), Duration::from_secs(60));
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return Err(GroupError::ShuttingDown(group.to_string())),
                outcome = call => outcome,
            };
            match outcome {
                Ok(Reply::Admin(Ok(members))) => return Ok(members),
                Ok(Reply::Admin(Err(GroupError::Membership(reason)))) => return Err(GroupError::Membership(reason)),
                Ok(Reply::Admin(Err(error))) => {
                    tracing::info!(%error, member = member_addr, "join not done yet; retrying")
                }
                Ok(_) => tracing::info!(member = member_addr, "member does not run the group yet; retrying"),
                Err(error) => tracing::info!(%error, "cannot reach the member to join; retrying"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Err(GroupError::ShuttingDown(group.to_string())),
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    /// Stops accepting peer connections.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
    }
}

/// Names the group in a membership error, so an operator knows which
/// group to look at when one of several refused.
fn in_group(group: &Group, error: GroupError) -> GroupError {
    match error {
        GroupError::Membership(reason) => GroupError::Membership(format!("{}: {reason}", group.id())),
        other => other,
    }
}
