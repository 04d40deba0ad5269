//! State shared by every connection of the RESP frontend.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use kv::Kv;
use raft::RaftNode;

use crate::clients::Clients;
use crate::config::{ConfigError, Params};
use crate::monitor::Monitors;
use crate::monitoring::{Monitoring, Thresholds};
use crate::pause::Pause;
use crate::pubsub::{self, PubSub};

/// The RESP frontend's settings as the node starts with them.
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
    /// Redis CONFIG parameters from the config file's `[redis]` table.
    pub redis: Vec<(String, String)>,
}

impl Default for RespConfig {
    fn default() -> Self {
        RespConfig {
            requirepass: None,
            maxclients: 10_000,
            proto_max_bulk_len: 512 * 1024 * 1024,
            max_args: 1024 * 1024,
            redis: Vec::new(),
        }
    }
}

/// What CONFIG reaches: every Redis parameter's value, and those Seshat
/// acts on as typed fields (kept equal by [`Params::apply`]).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub requirepass: Option<String>,
    pub maxclients: usize,
    pub proto_max_bulk_len: usize,
    pub max_args: usize,
    /// `timeout`: a client idle this many seconds is closed (0: never).
    pub timeout_secs: u64,
    /// `slowlog-log-slower-than` in microseconds (negative: off).
    pub slowlog_slower_than_us: i64,
    pub slowlog_max_len: usize,
    /// `latency-monitor-threshold` in milliseconds (0: off).
    pub latency_threshold_ms: u64,
    /// `latency-tracking`: LATENCY HISTOGRAM counts commands.
    pub latency_tracking: bool,
    /// The thresholds OBJECT ENCODING answers by.
    pub encodings: kv::EncodingLimits,
    /// `hll-sparse-max-bytes`: a sparse HyperLogLog that would grow past
    /// it turns dense (carried in the log entry, so replicas agree).
    pub hll_sparse_max_bytes: u64,
    /// `notify-keyspace-events`: carried in the entries this node proposes.
    pub notify_keyspace_events: kv::notify::NotifyFlags,
    /// `tracking-table-max-keys`: the keys CLIENT TRACKING remembers (0:
    /// no limit).
    pub tracking_table_max_keys: u64,
    pub params: Params,
}

impl Settings {
    /// The settings of a node started with `config`, whose facts (port,
    /// data dir) are `facts`; an invalid `[redis]` parameter is the error.
    pub(crate) fn new(config: RespConfig, facts: &NodeFacts) -> Result<Settings, ConfigError> {
        let mut params = Params::default();
        params.set_fact("port", facts.tcp_port.to_string());
        params.set_fact("bind", facts.bind.clone());
        params.set_fact("dir", facts.data_dir.display().to_string());
        params.set_fact("cluster-enabled", if facts.cluster_enabled { "yes" } else { "no" }.to_string());
        params.set_fact("databases", kv::DATABASES.to_string());
        params.load(&config.redis)?;
        let flags = [
            ("requirepass", config.requirepass.clone().unwrap_or_default()),
            ("maxclients", config.maxclients.to_string()),
            ("proto-max-bulk-len", config.proto_max_bulk_len.to_string()),
        ];
        params.load(&flags.map(|(name, value)| (name.to_string(), value)))?;
        let mut settings = Settings {
            requirepass: None,
            maxclients: 0,
            proto_max_bulk_len: 0,
            max_args: config.max_args,
            timeout_secs: 0,
            slowlog_slower_than_us: 0,
            slowlog_max_len: 0,
            latency_threshold_ms: 0,
            latency_tracking: true,
            encodings: kv::EncodingLimits::default(),
            hll_sparse_max_bytes: kv::hll::DEFAULT_SPARSE_MAX_BYTES,
            notify_keyspace_events: kv::notify::NotifyFlags::default(),
            tracking_table_max_keys: 1_000_000,
            params,
        };
        settings.params.clone().apply(&mut settings);
        Ok(settings)
    }
}

/// Facts about the node that INFO reports.
#[derive(Debug, Clone, Default)]
pub struct NodeFacts {
    pub tcp_port: u16,
    /// The RESP listener's IP address (CONFIG GET bind).
    pub bind: String,
    pub config_file: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub storage_layout: String,
    /// `--cluster-enabled`: the node speaks the Redis Cluster protocol.
    pub cluster_enabled: bool,
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
    /// This node: membership, peers (for pub/sub) and every group it runs.
    pub node: RaftNode,
    /// This node's pub/sub subscriptions.
    pub pubsub: PubSub,
    /// CLIENT TRACKING of this node's clients.
    pub tracking: crate::tracking::Tracking,
    pub config: RwLock<Settings>,
    pub facts: NodeFacts,
    pub stats: ServerStats,
    /// SLOWLOG and LATENCY.
    pub monitoring: Monitoring,
    /// CLIENT PAUSE.
    pub pause: Pause,
    /// MONITOR.
    pub monitors: Monitors,
    pub clients: Clients,
    pub started: Instant,
    pub run_id: String,
    /// Unix seconds of the last SAVE (or of startup).
    pub last_save: AtomicU64,
    pub local_addr: std::sync::OnceLock<SocketAddr>,
    /// Resident memory when the frontend started (MEMORY STATS).
    pub startup_resident: u64,
}

impl Server {
    pub fn new(kv: Kv, node: RaftNode, settings: Settings, facts: NodeFacts) -> Self {
        let run_id: String = (0..40).map(|_| format!("{:x}", rand::random::<u8>() % 16)).collect();
        let pubsub = PubSub::default();
        node.register_service(pubsub::SERVICE, std::sync::Arc::new(pubsub.clone()));
        node.register_service(pubsub::BATCH_SERVICE, std::sync::Arc::new(pubsub::Batches(pubsub.clone())));
        kv.set_notify_flags(settings.notify_keyspace_events);
        Server {
            pubsub,
            tracking: crate::tracking::Tracking::new(kv.clone()),
            kv,
            node,
            config: RwLock::new(settings),
            facts,
            stats: ServerStats::default(),
            monitoring: Monitoring::new(crate::commands::all().map(|spec| spec.name)),
            pause: Pause::default(),
            monitors: Monitors::default(),
            clients: Clients::default(),
            started: Instant::now(),
            run_id,
            last_save: AtomicU64::new(unix_seconds()),
            local_addr: std::sync::OnceLock::new(),
            startup_resident: storage::resident_bytes(),
        }
    }

    /// `maxclients`, read without copying the settings (every accept).
    pub fn maxclients(&self) -> usize {
        self.config.read().expect("config lock").maxclients
    }

    /// Every other node of the cluster, by Raft address: the metadata
    /// group's nodes and the members of this node's groups (a node the map
    /// does not list yet). Pub/sub fans out to them.
    pub fn peers(&self) -> Vec<String> {
        let mut members: std::collections::BTreeMap<u64, String> =
            self.node.members().into_iter().map(|member| (member.id, member.addr)).collect();
        for (id, record) in &self.kv.meta().map().nodes {
            members.insert(*id, record.raft_addr.clone());
        }
        members.remove(&self.node.id());
        members.into_values().collect()
    }

    /// `requirepass`, if set.
    pub fn requirepass(&self) -> Option<String> {
        self.config.read().expect("config lock").requirepass.clone()
    }

    /// The value of CONFIG parameter `name`.
    pub fn param(&self, name: &str) -> String {
        self.config.read().expect("config lock").params.value(name).to_string()
    }

    /// A copy of every setting (INFO, CONFIG REWRITE).
    pub fn config(&self) -> Settings {
        self.config.read().expect("config lock").clone()
    }

    /// `(proto-max-bulk-len, max args)`, read without cloning the config.
    pub fn limits(&self) -> (usize, usize) {
        let config = self.config.read().expect("config lock");
        (config.proto_max_bulk_len, config.max_args)
    }

    /// What SLOWLOG and LATENCY record now.
    pub(crate) fn thresholds(&self) -> Thresholds {
        let settings = self.config.read().expect("config lock");
        Thresholds {
            slowlog_slower_than_us: settings.slowlog_slower_than_us,
            slowlog_max_len: settings.slowlog_max_len,
            latency_ms: settings.latency_threshold_ms,
            tracking: settings.latency_tracking,
        }
    }

    /// CONFIG `timeout`: how long a client may stay idle (`None`: forever).
    pub fn idle_timeout(&self) -> Option<std::time::Duration> {
        let seconds = self.config.read().expect("config lock").timeout_secs;
        (seconds > 0).then(|| std::time::Duration::from_secs(seconds))
    }

    /// Whether clients must authenticate.
    pub fn requires_auth(&self) -> bool {
        self.config.read().expect("config lock").requirepass.is_some()
    }
}

pub(crate) fn unix_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
