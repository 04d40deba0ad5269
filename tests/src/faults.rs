//! Network faults between nodes: a TCP proxy in front of every node's Raft
//! listener, with a fault per link and per direction.
//!
//! Node `n` listens for peers on its own IP, `127.0.1.n`, and also connects
//! to its peers from that IP, so a proxy knows which node is at each end of
//! every connection it relays. The cluster's membership names the proxies,
//! so every Raft message (AppendEntries, votes, forwarded writes, read
//! index) between two nodes crosses one.
//!
//! A fault applies to the bytes flowing from one node to another, whichever
//! of them opened the connection:
//! - [`Fault::Drop`]: the bytes are discarded (a partition when set both
//!   ways, an asymmetric one when set one way);
//! - [`Fault::Hold`]: the bytes wait in the proxy until the fault is lifted;
//! - [`Fault::Delay`]: each chunk is delivered that much later, in order.
//!
//! Changing a link's drop fault resets the connections on that link, so a
//! connection either forwards a direction from its start or never does,
//! and a frame is never cut in half. [`Faults::reset`] resets them at will.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A node id, as in `--node-id`.
pub type NodeId = u64;

/// The IP node `id` uses for Raft: `127.0.1.id`.
pub fn node_ip(id: NodeId) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 1, u8::try_from(id).expect("node ids in tests are small")))
}

fn node_of(ip: IpAddr) -> Option<NodeId> {
    match ip {
        IpAddr::V4(v4) if v4.octets()[..3] == [127, 0, 1] => Some(u64::from(v4.octets()[3])),
        _ => None,
    }
}

/// What happens to the bytes one node sends another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Drop,
    Hold,
    Delay(Duration),
}

/// The faults of every link of a cluster, shared by its proxies.
#[derive(Clone, Default)]
pub struct Faults {
    inner: Arc<FaultsInner>,
}

#[derive(Default)]
struct FaultsInner {
    /// (from, to) → fault; absent: healthy. Watched by every relay.
    links: Mutex<HashMap<(NodeId, NodeId), Fault>>,
    changed: watch::Sender<u64>,
    /// Open connections by the unordered pair of nodes they join.
    connections: Mutex<Vec<((NodeId, NodeId), CancellationToken)>>,
}

impl Faults {
    /// Sets the fault of the bytes `from` sends `to` (`None`: healthy).
    pub fn set(&self, from: NodeId, to: NodeId, fault: Option<Fault>) {
        let before = {
            let mut links = self.inner.links.lock().expect("links lock");
            match fault {
                Some(fault) => links.insert((from, to), fault),
                None => links.remove(&(from, to)),
            }
        };
        if (before == Some(Fault::Drop)) != (fault == Some(Fault::Drop)) {
            self.reset(from, to);
        }
        self.inner.changed.send_modify(|generation| *generation += 1);
    }

    /// Cuts `a` from `b` both ways (`None`: heals both ways).
    pub fn set_both(&self, a: NodeId, b: NodeId, fault: Option<Fault>) {
        self.set(a, b, fault);
        self.set(b, a, fault);
    }

    /// Isolates `node` from every node in `others`, both ways.
    pub fn isolate(&self, node: NodeId, others: &[NodeId]) {
        for &other in others.iter().filter(|&&other| other != node) {
            self.set_both(node, other, Some(Fault::Drop));
        }
    }

    /// Heals every link.
    pub fn heal_all(&self) {
        let links: Vec<_> = self.inner.links.lock().expect("links lock").keys().copied().collect();
        for (from, to) in links {
            self.set(from, to, None);
        }
    }

    /// Closes every open connection between `a` and `b`.
    pub fn reset(&self, a: NodeId, b: NodeId) {
        let pair = (a.min(b), a.max(b));
        let mut connections = self.inner.connections.lock().expect("connections lock");
        connections.retain(|(joined, closed)| {
            if *joined == pair {
                closed.cancel();
            }
            *joined != pair && !closed.is_cancelled()
        });
    }

    fn fault(&self, from: NodeId, to: NodeId) -> Option<Fault> {
        self.inner.links.lock().expect("links lock").get(&(from, to)).copied()
    }

    fn register(&self, a: NodeId, b: NodeId) -> CancellationToken {
        let closed = CancellationToken::new();
        let mut connections = self.inner.connections.lock().expect("connections lock");
        connections.retain(|(_, closed)| !closed.is_cancelled());
        connections.push(((a.min(b), a.max(b)), closed.clone()));
        closed
    }
}

/// A proxy in front of node `to`'s Raft listener; stops when dropped.
pub struct NodeProxy {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl NodeProxy {
    /// Listens on a free port of `to`'s IP and relays to `target`.
    pub async fn start(to: NodeId, target: SocketAddr, faults: Faults) -> Result<NodeProxy> {
        let listener = TcpListener::bind(SocketAddr::new(node_ip(to), 0)).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((inbound, peer)) = listener.accept().await {
                let Some(from) = node_of(peer.ip()) else { continue };
                tokio::spawn(relay(inbound, from, to, target, faults.clone()));
            }
        });
        Ok(NodeProxy { addr, task })
    }

    /// Where peers reach node `to` through this proxy.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for NodeProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Relays one connection opened by `from` to node `to` until either side
/// closes it or the link is reset.
async fn relay(inbound: TcpStream, from: NodeId, to: NodeId, target: SocketAddr, faults: Faults) {
    let closed = faults.register(from, to);
    // Marks the connection closed however the relay ends, so the registry
    // forgets it.
    let _forget = closed.clone().drop_guard();
    let Ok(outbound) = TcpStream::connect(target).await else { return };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    tokio::select! {
        _ = pump(in_read, out_write, from, to, faults.clone()) => {}
        _ = pump(out_read, in_write, to, from, faults.clone()) => {}
        _ = closed.cancelled() => {}
    }
}

/// Copies the bytes `from` sends `to`, applying the link's fault.
async fn pump(
    mut source: tokio::net::tcp::OwnedReadHalf,
    sink: tokio::net::tcp::OwnedWriteHalf,
    from: NodeId,
    to: NodeId,
    faults: Faults,
) {
    // Delivery runs apart from reading so that delays keep chunks in order
    // without holding up the reads.
    let (chunks, mut delivery) = mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let deliver = async move {
        let mut sink = sink;
        while let Some((due, chunk)) = delivery.recv().await {
            tokio::time::sleep_until(due).await;
            if sink.write_all(&chunk).await.is_err() {
                return;
            }
        }
    };
    let read = async move {
        let mut changes = faults.inner.changed.subscribe();
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            // Held bytes stay in the kernel's buffers until the hold ends.
            while faults.fault(from, to) == Some(Fault::Hold) {
                if changes.changed().await.is_err() {
                    return;
                }
            }
            let n = match source.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let due = match faults.fault(from, to) {
                Some(Fault::Drop) => continue,
                Some(Fault::Delay(delay)) => tokio::time::Instant::now() + delay,
                _ => tokio::time::Instant::now(),
            };
            if chunks.send((due, buffer[..n].to_vec())).is_err() {
                return;
            }
        }
    };
    tokio::join!(read, deliver);
}
