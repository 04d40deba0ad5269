//! State shared by every connection of the RESP frontend.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use kv::Kv;

use crate::clients::Clients;
use crate::pubsub::{self, PubSub};

/// Settings of the RESP frontend that CONFIG GET/SET reach.
#[derive(Debug, Clone)]
pub struct RespConfig {
    /// `requirepass`: clients must AUTH with it first.
    pub requirepass: Option<String>,
    /// `maxclients`: connections beyond it are refused.
    pub maxclients: usize,
    /// `proto-max-bulk-len`: the longest argument a client may send.
    pub proto_max_bulk_len: usize,
    /// The most arguments in one request.
    pub max_args: usize,
}

impl Default for RespConfig {
    fn default() -> Self {
        RespConfig {
            requirepass: None,
            maxclients: 10_000,
            proto_max_bulk_len: 512 * 1024 * 1024,
            max_args: 1024 * 1024,
        }
    }
}

/// Facts about the node that INFO reports.
#[derive(Debug, Clone, Default)]
pub struct NodeFacts {
    pub tcp_port: u16,
    pub config_file: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub storage_layout: String,
}

/// Counters for INFO stats, reset by CONFIG RESETSTAT.
#[derive(Debug, Default)]
pub(crate) struct ServerStats {
    pub total_connections_received: AtomicU64,
    pub total_commands_processed: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub total_net_input_bytes: AtomicU64,
    pub total_net_output_bytes: AtomicU64,
}

impl ServerStats {
    pub fn reset(&self) {
        for counter in [
            &self.total_connections_received,
            &self.total_commands_processed,
            &self.rejected_connections,
            &self.total_net_input_bytes,
            &self.total_net_output_bytes,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

pub(crate) struct Server {
    pub kv: Kv,
    /// This node's pub/sub subscriptions.
    pub pubsub: PubSub,
    pub config: RwLock<RespConfig>,
    pub facts: NodeFacts,
    pub stats: ServerStats,
    pub clients: Clients,
    pub started: Instant,
    pub run_id: String,
    /// Unix seconds of the last SAVE (or of startup).
    pub last_save: AtomicU64,
    pub local_addr: std::sync::OnceLock<SocketAddr>,
}

impl Server {
    pub fn new(kv: Kv, config: RespConfig, facts: NodeFacts) -> Self {
        let run_id: String = (0..40).map(|_| format!("{:x}", rand::random::<u8>() % 16)).collect();
        let pubsub = PubSub::default();
        kv.group().node().register_service(pubsub::SERVICE, std::sync::Arc::new(pubsub.clone()));
        Server {
            pubsub,
            kv,
            config: RwLock::new(config),
            facts,
            stats: ServerStats::default(),
            clients: Clients::default(),
            started: Instant::now(),
            run_id,
            last_save: AtomicU64::new(unix_seconds()),
            local_addr: std::sync::OnceLock::new(),
        }
    }

    pub fn config(&self) -> RespConfig {
        self.config.read().expect("config lock").clone()
    }

    /// `(proto-max-bulk-len, max args)`, read without cloning the config.
    pub fn limits(&self) -> (usize, usize) {
        let config = self.config.read().expect("config lock");
        (config.proto_max_bulk_len, config.max_args)
    }

    /// Whether clients must authenticate.
    pub fn requires_auth(&self) -> bool {
        self.config.read().expect("config lock").requirepass.is_some()
    }
}

pub(crate) fn unix_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
