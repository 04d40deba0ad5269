//! The RESP frontend: accepting connections under the client cap.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use kv::notify::Applied;
use kv::Kv;
use raft::{Frontend, RaftNode, Shutdown};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::config::ConfigError;
use crate::connection;
use crate::server::{NodeFacts, RespConfig, Server, Settings};

/// How long shutdown waits for connections to finish their in-flight commands.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The Redis-protocol frontend.
pub struct RespFrontend {
    server: Arc<Server>,
    /// What the node's batches report from the frontend's making on, until
    /// [`RespFrontend::serve`] hands it on (`crate::applied`): a batch
    /// applied before that (a client's first write, a peer's forwarded
    /// one) still notifies and invalidates.
    applied: std::sync::Mutex<Option<UnboundedReceiver<Applied>>>,
}

impl RespFrontend {
    /// The frontend of `kv` with `config`; an invalid Redis parameter in
    /// `config.redis` is the error.
    pub fn new(kv: Kv, node: RaftNode, config: RespConfig, facts: NodeFacts) -> Result<Self, ConfigError> {
        let settings = Settings::new(config, &facts)?;
        let applied = std::sync::Mutex::new(Some(kv.applied_changes()));
        Ok(RespFrontend { server: Arc::new(Server::new(kv, node, settings, facts)), applied })
    }

    /// What parses the commands of scripts with this frontend's command
    /// table; the service needs it installed before it applies a script.
    pub fn script_commands(&self) -> Arc<dyn kv::script::ScriptCommands> {
        Arc::new(crate::script_commands::ScriptParser::new(self.server.clone()))
    }
}

#[async_trait::async_trait]
impl Frontend for RespFrontend {
    fn name(&self) -> &'static str {
        "resp"
    }

    async fn serve(&self, listener: TcpListener, shutdown: Shutdown) -> io::Result<()> {
        let local_addr = listener.local_addr()?;
        let _ = self.server.local_addr.set(local_addr);
        tracing::info!(addr = %local_addr, "RESP frontend listening");
        let applied = self.applied.lock().expect("applied lock").take();
        let applied = applied.unwrap_or_else(|| self.server.kv.applied_changes());
        let notifications = tokio::spawn(crate::applied::hand_on(self.server.clone(), applied, shutdown.clone()));
        let mut connections = JoinSet::new();
        loop {
            let (mut stream, addr) = tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
                accepted = raft::accept(&listener) => accepted,
            };
            let server = &self.server;
            server.stats.total_connections_received.fetch_add(1, Ordering::Relaxed);
            let maxclients = server.maxclients();
            let Some(client) = server.clients.register(addr, local_addr, maxclients) else {
                server.stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
                let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
                continue;
            };
            let server = server.clone();
            let shutdown = shutdown.clone();
            let span = tracing::debug_span!("connection", client = client.id, addr = %client.addr);
            connections.spawn(
                async move {
                    let id = client.id;
                    tracing::debug!("connected");
                    connection::serve(server.clone(), client, stream, shutdown).await;
                    server.clients.unregister(id);
                    server.tracking.disable(id);
                    tracing::debug!("disconnected");
                }
                .instrument(span),
            );
        }
        drop(listener);
        notifications.abort();
        tracing::info!(connections = connections.len(), "RESP frontend draining connections");
        if tokio::time::timeout(DRAIN_TIMEOUT, async { while connections.join_next().await.is_some() {} })
            .await
            .is_err()
        {
            tracing::warn!("connections still busy after {DRAIN_TIMEOUT:?}; closing them");
            connections.shutdown().await;
        }
        Ok(())
    }
}
