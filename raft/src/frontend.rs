//! The `Frontend` trait: one wire protocol served on one listener.
//!
//! The binary builds its list of frontends from config, binds each one's
//! listener and runs `serve` until shutdown. Adding a protocol means adding a
//! crate that implements this trait, nothing else.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
pub use tokio_util::sync::CancellationToken as Shutdown;

/// A wire-protocol frontend.
#[async_trait::async_trait]
pub trait Frontend: Send + Sync {
    /// A short name for logs and errors, e.g. `resp`.
    fn name(&self) -> &'static str;

    /// Serves clients accepted on `listener` until `shutdown` is cancelled,
    /// then stops accepting, lets in-flight commands finish, closes its
    /// connections and returns.
    async fn serve(&self, listener: TcpListener, shutdown: Shutdown) -> io::Result<()>;
}

/// The next connection `listener` accepts. A failed accept (out of file
/// descriptors and the like) is logged and retried after a short pause, so
/// the frontend keeps serving. Cancel-safe: use it in `select!`.
pub async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
