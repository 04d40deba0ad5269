//! The answering side of the transport.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use super::wire::{self, Message, Reply, Rpc};

/// A reply that is still being computed.
pub(crate) type PendingReply = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// Routes requests to the node's groups.
pub(crate) trait Dispatch: Send + Sync + 'static {
    /// Handles `rpc` for `group`. Called in arrival order on each connection;
    /// whatever must keep that order (queueing a forwarded write) happens
    /// before this returns, the rest in the returned future.
    fn dispatch(&self, group: &str, rpc: Rpc) -> PendingReply;
}

/// Accepts peer connections on `listener` until `shutdown`.
pub(crate) async fn serve(listener: TcpListener, dispatch: Arc<dyn Dispatch>, shutdown: CancellationToken) {
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "accepting a peer connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        tokio::spawn(serve_connection(stream, dispatch.clone(), shutdown.clone()));
    }
}

async fn serve_connection(stream: TcpStream, dispatch: Arc<dyn Dispatch>, shutdown: CancellationToken) {
    let _ = stream.set_nodelay(true);
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let (read, write) = stream.into_split();
    let (outbox, frames) = mpsc::unbounded_channel();
    let writer = tokio::spawn(wire::write_frames(write, frames));
    let mut requests = FramedRead::new(read, wire::codec());
    loop {
        let frame = tokio::select! {
            _ = shutdown.cancelled() => break,
            frame = requests.next() => frame,
        };
        let frame = match frame {
            Some(Ok(frame)) => frame,
            Some(Err(error)) => {
                tracing::warn!(%peer, %error, "bad frame from a peer; closing the connection");
                break;
            }
            None => break,
        };
        let (id, group, rpc) = match Message::decode(&frame) {
            Ok(Message::Request { id, group, rpc }) => (id, group, rpc),
            Ok(Message::Response { .. }) | Err(_) => {
                tracing::warn!(%peer, "peer sent a frame that is not a request; closing the connection");
                break;
            }
        };
        let pending = dispatch.dispatch(&group, rpc);
        let outbox = outbox.clone();
        tokio::spawn(async move {
            let reply = pending.await;
            let _ = outbox.send(Message::Response { id, reply }.encode());
        });
    }
    drop(outbox);
    writer.abort();
}
