//! The calling side of the transport.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use super::wire::{self, Message, Reply, Rpc};

/// The longest wait before retrying a peer that could not be reached. Short:
/// callers (openraft's replication, forwarding) pace their own retries; this
/// only stops a burst of calls from each paying a failed connect.
const MAX_BACKOFF: Duration = Duration::from_millis(100);
/// The first wait before retrying a peer that could not be reached.
const MIN_BACKOFF: Duration = Duration::from_millis(20);

/// Why an RPC got no reply.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum TransportError {
    #[error("cannot connect to {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
    #[error("the connection to {0} was lost before the reply")]
    Lost(String),
    #[error("no reply from {addr} within {ms} ms")]
    Timeout { addr: String, ms: u128 },
}

/// Connections to peers, by address. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Peers {
    peers: Arc<Mutex<HashMap<String, Arc<Peer>>>>,
    /// The local IP outgoing connections leave from (the node's Raft
    /// listener's, unless that is a wildcard), so that every peer sees one
    /// address per node (and so can a firewall, or a fault-injecting proxy).
    source: Option<IpAddr>,
}

struct Peer {
    addr: String,
    source: Option<IpAddr>,
    state: tokio::sync::Mutex<PeerState>,
}

#[derive(Default)]
struct PeerState {
    connection: Option<Arc<Connection>>,
    failures: u32,
    retry_at: Option<Instant>,
}

struct Connection {
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
    outbox: mpsc::UnboundedSender<Bytes>,
    closed: CancellationToken,
}

impl Peers {
    /// Connections that leave from `source` (any local IP if `None`).
    pub(crate) fn new(source: Option<IpAddr>) -> Peers {
        Peers { peers: Arc::default(), source }
    }

    /// Sends `rpc` to `group` on the node at `addr` and waits for the reply.
    pub(crate) async fn call(
        &self,
        addr: &str,
        group: &str,
        rpc: Rpc,
        timeout: Duration,
    ) -> Result<Reply, TransportError> {
        let deadline = Instant::now() + timeout;
        self.send(addr, group, rpc, deadline).await?.await
    }

    /// Queues `rpc` on the connection to `addr` before returning (so calls
    /// made one after another are sent in that order) and returns the
    /// future of its reply, which fails at `deadline`.
    pub(crate) async fn send(
        &self,
        addr: &str,
        group: &str,
        rpc: Rpc,
        deadline: Instant,
    ) -> Result<impl Future<Output = Result<Reply, TransportError>>, TransportError> {
        let peer = self.peer(addr);
        let connection = peer.connection(deadline).await?;
        let id = connection.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply, receiver) = oneshot::channel();
        connection.pending.lock().expect("pending lock").insert(id, reply);
        let frame = Message::Request { id, group: group.to_string(), rpc }.encode();
        if connection.outbox.send(frame).is_err() {
            connection.pending.lock().expect("pending lock").remove(&id);
            return Err(TransportError::Lost(addr.to_string()));
        }
        let addr = addr.to_string();
        let waited_ms = deadline.saturating_duration_since(Instant::now()).as_millis();
        Ok(async move {
            match tokio::time::timeout_at(deadline, receiver).await {
                Ok(Ok(reply)) => Ok(reply),
                Ok(Err(_)) => Err(TransportError::Lost(addr)),
                Err(_) => {
                    connection.pending.lock().expect("pending lock").remove(&id);
                    Err(TransportError::Timeout { addr, ms: waited_ms })
                }
            }
        })
    }

    /// Whether the link to `addr` is down: no live connection, and the
    /// last attempt to connect failed. A peer this node never called, or
    /// one it is connecting to right now, is not known to be down.
    pub(crate) fn link_down(&self, addr: &str) -> bool {
        let Some(peer) = self.peers.lock().expect("peers lock").get(addr).cloned() else { return false };
        let Ok(state) = peer.state.try_lock() else { return false };
        let connected = state.connection.as_ref().is_some_and(|connection| !connection.closed.is_cancelled());
        !connected && state.failures > 0
    }

    fn peer(&self, addr: &str) -> Arc<Peer> {
        let mut peers = self.peers.lock().expect("peers lock");
        if let Some(peer) = peers.get(addr) {
            return peer.clone();
        }
        peers
            .entry(addr.to_string())
            .or_insert_with(|| {
                Arc::new(Peer { addr: addr.to_string(), source: self.source, state: Default::default() })
            })
            .clone()
    }
}

impl Peer {
    /// The live connection, connecting first if needed. Fails at once while
    /// a reconnect backoff is in effect.
    async fn connection(&self, deadline: Instant) -> Result<Arc<Connection>, TransportError> {
        let mut state = self.state.lock().await;
        if let Some(connection) = &state.connection {
            if !connection.closed.is_cancelled() {
                return Ok(connection.clone());
            }
            state.connection = None;
        }
        if let Some(retry_at) = state.retry_at {
            if Instant::now() < retry_at {
                return Err(TransportError::Unreachable {
                    addr: self.addr.clone(),
                    reason: "backing off after a failed connect".into(),
                });
            }
        }
        match tokio::time::timeout_at(deadline, connect(self.source, &self.addr)).await {
            Ok(Ok(stream)) => {
                state.failures = 0;
                state.retry_at = None;
                let connection = Connection::start(stream);
                state.connection = Some(connection.clone());
                Ok(connection)
            }
            outcome => {
                let reason = match outcome {
                    Ok(Err(error)) => error.to_string(),
                    _ => "connect timed out".to_string(),
                };
                let backoff = MIN_BACKOFF.saturating_mul(1 << state.failures.min(10)).min(MAX_BACKOFF);
                state.failures += 1;
                state.retry_at = Some(Instant::now() + backoff);
                Err(TransportError::Unreachable { addr: self.addr.clone(), reason })
            }
        }
    }
}

/// Connects to `addr` from `source` (any local IP if `None`).
async fn connect(source: Option<IpAddr>, addr: &str) -> std::io::Result<TcpStream> {
    let Some(source) = source else { return TcpStream::connect(addr).await };
    let target = tokio::net::lookup_host(addr).await?.find(|target| target.is_ipv4() == source.is_ipv4());
    let target = target.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            format!("{addr} has no address reachable from {source}"),
        )
    })?;
    let socket = if source.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(target).await
}

impl Connection {
    fn start(stream: TcpStream) -> Arc<Connection> {
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let (outbox, frames) = mpsc::unbounded_channel();
        let connection = Arc::new(Connection {
            next_id: AtomicU64::new(0),
            pending: Mutex::new(HashMap::new()),
            outbox,
            closed: CancellationToken::new(),
        });
        let writer = connection.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = wire::write_frames(write, frames) => {}
                _ = writer.closed.cancelled() => {}
            }
            writer.close();
        });
        let reader = connection.clone();
        tokio::spawn(async move {
            let mut frames = FramedRead::new(read, wire::codec());
            loop {
                let frame = tokio::select! {
                    frame = frames.next() => frame,
                    _ = reader.closed.cancelled() => break,
                };
                let Some(Ok(frame)) = frame else { break };
                match Message::decode(&frame) {
                    Ok(Message::Response { id, reply }) => {
                        if let Some(waiter) = reader.pending.lock().expect("pending lock").remove(&id) {
                            let _ = waiter.send(reply);
                        }
                    }
                    Ok(Message::Request { .. }) | Err(_) => {
                        tracing::warn!("peer sent a frame that is not a response; closing the connection");
                        break;
                    }
                }
            }
            reader.close();
        });
        connection
    }

    /// Marks the connection dead and fails every pending call.
    fn close(&self) {
        self.closed.cancel();
        self.pending.lock().expect("pending lock").clear();
    }
}
