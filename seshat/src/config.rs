//! Configuration: defaults, then the TOML file given by `--config`, then
//! flags. Flags win.
//!
//! The TOML file uses the flags' names as keys (`data-dir`, `resp-addr`,
//! `node-id`, `raft-addr`, `initial-members`, …); unknown keys are an error,
//! so a typo never passes silently.
//!
//! Cluster formation: a node with `--initial-members` bootstraps that
//! cluster the first time it starts (every initial member gets the same
//! list; restarting never re-initialises existing data); a node with
//! `--join` asks a member to add it; a node with neither is a cluster of one
//! (itself), which is the default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use serde::Deserialize;
use storage::Layout;

/// Seshat: a strongly consistent database that speaks Redis, on RocksDB.
///
/// The same settings come from the command line and from the TOML file, so
/// one struct reads both: clap parses the flags, serde the file.
#[derive(Debug, Default, Parser, Deserialize)]
#[command(version, about, long_about = None)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Flags {
    /// Operator commands; without one, `seshat` runs a node.
    #[command(subcommand)]
    #[serde(skip)]
    pub command: Option<crate::admin::AdminCommand>,

    /// TOML file with any of the settings below (keys as the flag names).
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Where data lives. [default: ./seshat-data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Address of the Redis (RESP) listener; port 0 picks a free port.
    /// [default: 127.0.0.1:6379]
    #[arg(long, value_name = "HOST:PORT")]
    pub resp_addr: Option<SocketAddr>,

    /// Address of the PostgreSQL listener, or `off` to serve no
    /// PostgreSQL clients; port 0 picks a free port. [default:
    /// 127.0.0.1:5432]
    #[arg(long, value_name = "HOST:PORT|off")]
    pub pg_addr: Option<String>,

    /// RocksDB layout: one shared instance, or one instance per service.
    /// Fixed when the data dir is created. [default: shared]
    #[arg(long, value_name = "shared|isolated")]
    pub storage_layout: Option<Layout>,

    /// RocksDB block cache in MiB, shared by every column family of both
    /// services: how much of the data past the memtables reads keep in
    /// memory. [default: a sixteenth of the machine's memory, at least 64]
    #[arg(long, value_name = "MB")]
    pub block_cache_mb: Option<usize>,

    /// Require clients to AUTH with this password.
    #[arg(long, value_name = "PASSWORD")]
    pub requirepass: Option<String>,

    /// Log filter: error, warn, info, debug, trace, or a tracing directive.
    /// [default: info]
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// Maximum number of connected Redis clients. [default: 10000]
    #[arg(long, value_name = "N")]
    pub maxclients: Option<usize>,

    /// Threads running client connections, statements and reads; the
    /// commit pipeline, the log syncers and RocksDB's background jobs
    /// have threads of their own. [default: one per available core]
    #[arg(long, value_name = "N")]
    pub worker_threads: Option<usize>,

    /// Longest argument a Redis client may send, in bytes. [default: 536870912]
    #[arg(long, value_name = "BYTES")]
    pub proto_max_bulk_len: Option<usize>,

    /// This node's id in the cluster (a positive integer). [default: 1]
    #[arg(long, value_name = "N")]
    pub node_id: Option<u64>,

    /// Address of the Raft transport listener; peers reach this node here.
    /// [default: 127.0.0.1:7379]
    #[arg(long, value_name = "HOST:PORT")]
    pub raft_addr: Option<SocketAddr>,

    /// The Raft address peers reach this node at, when it is not the
    /// listener's (NAT, a proxy); recorded when the node joins.
    /// [default: --raft-addr]
    #[arg(long, value_name = "HOST:PORT")]
    pub raft_advertise_addr: Option<String>,

    /// Bootstrap a new cluster of these voters (`1=HOST:PORT,2=HOST:PORT,…`,
    /// Raft addresses) on first start; ignored once the node has data.
    #[arg(long, value_name = "ID=HOST:PORT,...")]
    pub initial_members: Option<String>,

    /// Join the cluster of the member whose Raft transport is at HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub join: Option<String>,

    /// Divide the Redis keyspace's 16384 hash slots among N shards, each
    /// its own Raft group (`kv/0` … `kv/N-1`), on the first start; a data
    /// dir keeps its number. Every initial member must be given the same
    /// N; a joining node takes the cluster's. [default: one shard per
    /// initial member, 1 on a single node]
    #[arg(long, value_name = "N")]
    pub shards: Option<u32>,

    /// Keep N replicas of each shard, on N of the nodes (every node when
    /// there are fewer): the cluster's setting, changed by the last node
    /// started with it. [default: the cluster's; 3 in a new cluster]
    #[arg(long, value_name = "N")]
    pub replicas: Option<u32>,

    /// `yes`: speak the Redis Cluster protocol (CLUSTER SLOTS and kin,
    /// CROSSSLOT per hash slot, MOVED to the slot's shard leader) for
    /// `redis-cli -c` and cluster clients. [default: no]
    #[arg(long, value_name = "yes|no")]
    pub cluster_enabled: Option<String>,

    /// The failure zone this node runs in (a rack, a room, a cloud
    /// availability zone), recorded in the metadata group, which spreads
    /// its five voters over as many zones as the nodes name. Letters,
    /// digits, '-', '_' and '.', at most 64. [default: none]
    #[arg(long, value_name = "NAME")]
    pub zone: Option<String>,

    /// Leader heartbeat interval in ms. It is also how long one
    /// AppendEntries may take (openraft's rule), so it must exceed the
    /// round trip between nodes, or replication stalls. [default: 100]
    #[arg(long, value_name = "MS")]
    pub heartbeat_ms: Option<u64>,

    /// Election timeout T in ms: a follower that stops hearing from the
    /// leader starts an election after 2T plus a per-node random time in
    /// [T, 2T). [default: 300]
    #[arg(long, value_name = "MS")]
    pub election_timeout_ms: Option<u64>,

    /// A write or linearizable read without a quorum fails with CLUSTERDOWN
    /// after this many ms. [default: 5000]
    #[arg(long, value_name = "MS")]
    pub request_timeout_ms: Option<u64>,

    /// Snapshot and compact the log every N entries, once the log since
    /// the last snapshot is at least half that snapshot's size.
    /// [default: 100000]
    #[arg(long, value_name = "N")]
    pub snapshot_entries: Option<u64>,

    /// ... or once this many bytes of log were appended since the last
    /// snapshot (and at least half its size). [default: 67108864]
    #[arg(long, value_name = "BYTES")]
    pub snapshot_bytes: Option<u64>,

    /// Entries kept in the log behind a snapshot. [default: 1000]
    #[arg(long, value_name = "N")]
    pub log_keep_entries: Option<u64>,

    /// Group commit delay: the longest a batch of writes waits for more
    /// writes to join it, and only while the previous batch was larger; it
    /// never waits longer than the previous batch took to commit. 0 turns
    /// it off. [default: 2000]
    #[arg(long, value_name = "US")]
    pub commit_linger_us: Option<u64>,

    /// Redis CONFIG parameters (file only, the `[redis]` table): applied at
    /// start as CONFIG SET would, and written back by CONFIG REWRITE.
    #[arg(skip)]
    pub redis: Option<BTreeMap<String, toml::Value>>,
}

/// How this node's group starts the first time.
#[derive(Debug, Clone, PartialEq)]
pub enum Formation {
    /// Bootstrap with these voters (id → Raft address).
    Initial(BTreeMap<u64, String>),
    /// Ask the member at this Raft address to add this node.
    Join(String),
    /// A cluster of one: this node.
    Single,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub config_file: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub resp_addr: SocketAddr,
    /// `None` when the PostgreSQL frontend is off.
    pub pg_addr: Option<SocketAddr>,
    pub storage_layout: Layout,
    pub block_cache_mb: usize,
    pub requirepass: Option<String>,
    pub log_level: String,
    pub maxclients: usize,
    pub worker_threads: usize,
    pub proto_max_bulk_len: usize,
    pub node_id: u64,
    pub raft_addr: SocketAddr,
    pub raft_advertise_addr: Option<String>,
    pub formation: Formation,
    /// How many shards (Raft groups) the Redis service has, if given
    /// (else what the data dir recorded, or for a new one: one per
    /// initial member, the joined cluster's, or 1 on a single node).
    pub shards: Option<u32>,
    /// The replicas per shard this node asks the cluster to keep, if given.
    pub replicas: Option<u32>,
    /// Whether the Redis Cluster protocol is spoken.
    pub cluster_enabled: bool,
    /// The failure zone the node runs in, if named.
    pub zone: Option<String>,
    pub group: raft::GroupSettings,
    /// The config file's `[redis]` parameters, as text.
    pub redis: Vec<(String, String)>,
}

impl Config {
    /// Merges defaults, the file named by `--config` and the flags.
    pub fn load(flags: Flags) -> anyhow::Result<Config> {
        let file = match &flags.config {
            Some(path) => read_file(path)?,
            None => Flags::default(),
        };
        let defaults = protocol_resp::RespConfig::default();
        let node_id = flags.node_id.or(file.node_id).unwrap_or(1);
        anyhow::ensure!(node_id > 0, "--node-id must be a positive integer");
        let formation = match (flags.initial_members.or(file.initial_members), flags.join.or(file.join)) {
            (Some(_), Some(_)) => anyhow::bail!("--initial-members and --join exclude each other"),
            (Some(list), None) => {
                let members = parse_members(&list)?;
                anyhow::ensure!(
                    members.contains_key(&node_id),
                    "--initial-members does not list this node (--node-id {node_id})"
                );
                Formation::Initial(members)
            }
            (None, Some(addr)) => Formation::Join(addr),
            (None, None) => Formation::Single,
        };
        let shards = flags.shards.or(file.shards);
        anyhow::ensure!(shards.is_none_or(|n| (1..=1024).contains(&n)), "--shards must be between 1 and 1024");
        let replicas = flags.replicas.or(file.replicas);
        anyhow::ensure!(replicas.is_none_or(|n| (1..=64).contains(&n)), "--replicas must be between 1 and 64");
        let cluster_enabled = match flags.cluster_enabled.or(file.cluster_enabled).as_deref() {
            None | Some("no") => false,
            Some("yes") => true,
            Some(other) => anyhow::bail!("--cluster-enabled '{other}' is not yes or no"),
        };
        let zone = flags.zone.or(file.zone);
        if let Some(zone) = &zone {
            let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
            anyhow::ensure!(
                !zone.is_empty() && zone.len() <= 64 && zone.chars().all(allowed),
                "--zone '{zone}': letters, digits, '-', '_' and '.', 1 to 64 of them"
            );
        }
        let settings = raft::GroupSettings::default();
        let ms = |flag: Option<u64>, file: Option<u64>, default: Duration| {
            flag.or(file).map(Duration::from_millis).unwrap_or(default)
        };
        let group = raft::GroupSettings {
            heartbeat: ms(flags.heartbeat_ms, file.heartbeat_ms, settings.heartbeat),
            election_timeout: ms(flags.election_timeout_ms, file.election_timeout_ms, settings.election_timeout),
            request_timeout: ms(flags.request_timeout_ms, file.request_timeout_ms, settings.request_timeout),
            snapshot_entries: flags.snapshot_entries.or(file.snapshot_entries).unwrap_or(settings.snapshot_entries),
            snapshot_bytes: flags.snapshot_bytes.or(file.snapshot_bytes).unwrap_or(settings.snapshot_bytes),
            log_keep_entries: flags.log_keep_entries.or(file.log_keep_entries).unwrap_or(settings.log_keep_entries),
            commit_linger: flags
                .commit_linger_us
                .or(file.commit_linger_us)
                .map(Duration::from_micros)
                .unwrap_or(settings.commit_linger),
            ..settings
        };
        anyhow::ensure!(
            group.election_timeout > group.heartbeat,
            "--election-timeout-ms must be larger than --heartbeat-ms"
        );
        let raft_advertise_addr = flags.raft_advertise_addr.or(file.raft_advertise_addr);
        if let Some(addr) = &raft_advertise_addr {
            let port = addr.rsplit_once(':').and_then(|(host, port)| (!host.is_empty()).then_some(port));
            anyhow::ensure!(
                port.is_some_and(|port| port.parse::<u16>().is_ok_and(|port| port > 0)),
                "--raft-advertise-addr '{addr}' is not HOST:PORT"
            );
        }
        let redis = file
            .redis
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| Ok((name.clone(), redis_value(&name, value)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let worker_threads = flags.worker_threads.or(file.worker_threads).unwrap_or_else(default_worker_threads);
        anyhow::ensure!(worker_threads > 0, "--worker-threads must be at least 1");
        let block_cache_mb =
            flags.block_cache_mb.or(file.block_cache_mb).unwrap_or_else(storage::default_block_cache_mb);
        anyhow::ensure!(block_cache_mb > 0, "--block-cache-mb must be at least 1");
        let pg_addr = match flags.pg_addr.or(file.pg_addr).as_deref() {
            Some("off") => None,
            Some(addr) => Some(addr.parse().with_context(|| format!("--pg-addr '{addr}' is not HOST:PORT or off"))?),
            None => Some("127.0.0.1:5432".parse().expect("valid")),
        };
        Ok(Config {
            config_file: flags.config,
            pg_addr,
            data_dir: flags.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("seshat-data")),
            resp_addr: flags.resp_addr.or(file.resp_addr).unwrap_or_else(|| "127.0.0.1:6379".parse().expect("valid")),
            storage_layout: flags.storage_layout.or(file.storage_layout).unwrap_or_default(),
            block_cache_mb,
            requirepass: flags.requirepass.or(file.requirepass).filter(|p| !p.is_empty()),
            log_level: flags.log_level.or(file.log_level).unwrap_or_else(|| "info".into()),
            maxclients: flags.maxclients.or(file.maxclients).unwrap_or(defaults.maxclients),
            worker_threads,
            proto_max_bulk_len: flags
                .proto_max_bulk_len
                .or(file.proto_max_bulk_len)
                .unwrap_or(defaults.proto_max_bulk_len),
            node_id,
            raft_addr: flags.raft_addr.or(file.raft_addr).unwrap_or_else(|| "127.0.0.1:7379".parse().expect("valid")),
            raft_advertise_addr,
            formation,
            shards,
            replicas,
            cluster_enabled,
            zone,
            group,
            redis,
        })
    }
}

/// A `[redis]` value as CONFIG SET text: strings as they are, numbers in
/// decimal, booleans as `yes`/`no`.
fn redis_value(name: &str, value: toml::Value) -> anyhow::Result<String> {
    Ok(match value {
        toml::Value::String(text) => text,
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(x) => x.to_string(),
        toml::Value::Boolean(yes) => if yes { "yes" } else { "no" }.to_string(),
        other => anyhow::bail!("[redis] {name} must be a string, number or boolean, not {}", other.type_str()),
    })
}

/// One per available core: the commit pipeline waits on its own thread
/// (see `raft::pipeline`), so on the 2-core reference machine a single
/// node served TPC-B-like pgbench, `pgbench -S`, SET and pipelined GET
/// faster with two workers than one; nodes sharing a machine's cores
/// should set fewer (figures in docs/design.md).
fn default_worker_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| cores.get())
}

/// Parses `1=HOST:PORT,2=HOST:PORT`.
pub fn parse_members(list: &str) -> anyhow::Result<BTreeMap<u64, String>> {
    let mut members = BTreeMap::new();
    for item in list.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        let (id, addr) = item.split_once('=').with_context(|| format!("member '{item}' is not ID=HOST:PORT"))?;
        let id: u64 =
            id.trim().parse().ok().filter(|id| *id > 0).with_context(|| format!("bad node id in '{item}'"))?;
        let addr = addr.trim();
        addr.parse::<SocketAddr>().with_context(|| format!("bad address in '{item}'"))?;
        anyhow::ensure!(members.insert(id, addr.to_string()).is_none(), "node {id} is listed twice");
    }
    anyhow::ensure!(!members.is_empty(), "--initial-members is empty");
    Ok(members)
}

fn read_file(path: &Path) -> anyhow::Result<Flags> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(args: &[&str], file: Option<&str>) -> anyhow::Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let mut argv = vec!["seshat".to_string()];
        if let Some(text) = file {
            let path = dir.path().join("seshat.toml");
            std::fs::write(&path, text).unwrap();
            argv.push("--config".into());
            argv.push(path.display().to_string());
        }
        argv.extend(args.iter().map(|s| s.to_string()));
        Config::load(Flags::try_parse_from(argv)?)
    }

    #[test]
    fn defaults_are_the_single_node_setup() {
        let config = load(&[], None).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("seshat-data"));
        assert_eq!(config.resp_addr.to_string(), "127.0.0.1:6379");
        assert_eq!(config.pg_addr.map(|a| a.to_string()).as_deref(), Some("127.0.0.1:5432"));
        assert_eq!(config.storage_layout, Layout::Shared);
        assert_eq!(config.block_cache_mb, storage::default_block_cache_mb());
        assert!(config.block_cache_mb >= 64);
        assert_eq!(config.requirepass, None);
    }

    #[test]
    fn the_block_cache_size_comes_from_the_flag_or_the_file() {
        assert_eq!(load(&[], Some("block-cache-mb = 256\n")).unwrap().block_cache_mb, 256);
        assert_eq!(load(&["--block-cache-mb", "32"], Some("block-cache-mb = 256\n")).unwrap().block_cache_mb, 32);
        assert!(load(&["--block-cache-mb", "0"], None).is_err());
    }

    #[test]
    fn flags_win_over_the_file() {
        let file = "data-dir = \"/from/file\"\nresp-addr = \"127.0.0.1:7000\"\nstorage-layout = \"isolated\"\n";
        let config = load(&["--resp-addr", "127.0.0.1:7001"], Some(file)).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/from/file"));
        assert_eq!(config.resp_addr.to_string(), "127.0.0.1:7001");
        assert_eq!(config.storage_layout, Layout::Isolated);
    }

    #[test]
    fn the_postgresql_listener_is_an_address_or_off() {
        let config = load(&[], Some("pg-addr = \"127.0.0.1:6543\"\n")).unwrap();
        assert_eq!(config.pg_addr.map(|a| a.to_string()).as_deref(), Some("127.0.0.1:6543"));
        assert_eq!(load(&["--pg-addr", "off"], None).unwrap().pg_addr, None);
        assert!(load(&["--pg-addr", "nowhere"], None).is_err());
    }

    #[test]
    fn cluster_formation_comes_from_initial_members_or_join() {
        let config =
            load(&["--node-id", "2", "--initial-members", "1=127.0.0.1:7001, 2=127.0.0.1:7002"], None).unwrap();
        let expected = BTreeMap::from([(1, "127.0.0.1:7001".to_string()), (2, "127.0.0.1:7002".to_string())]);
        assert_eq!(config.formation, Formation::Initial(expected));
        assert_eq!(load(&[], None).unwrap().formation, Formation::Single);
        let joined = load(&["--join", "127.0.0.1:7001"], Some("node-id = 4\n")).unwrap();
        assert_eq!((joined.node_id, joined.formation), (4, Formation::Join("127.0.0.1:7001".into())));
        assert!(load(&["--node-id", "3", "--initial-members", "1=127.0.0.1:7001"], None).is_err(), "self missing");
        assert!(load(&["--initial-members", "1=nowhere"], None).is_err());
        assert!(load(&["--initial-members", "1=127.0.0.1:1", "--join", "127.0.0.1:1"], None).is_err());
        assert!(load(&["--heartbeat-ms", "500", "--election-timeout-ms", "400"], None).is_err());
    }

    #[test]
    fn the_commit_linger_comes_from_the_flag_or_the_file() {
        assert_eq!(load(&[], None).unwrap().group.commit_linger, Duration::from_millis(2));
        assert_eq!(load(&["--commit-linger-us", "0"], None).unwrap().group.commit_linger, Duration::ZERO);
        assert_eq!(
            load(&[], Some("commit-linger-us = 900\n")).unwrap().group.commit_linger,
            Duration::from_micros(900)
        );
    }

    #[test]
    fn worker_threads_come_from_the_flag_or_the_file_and_are_at_least_one() {
        assert!(load(&[], None).unwrap().worker_threads >= 1);
        assert_eq!(load(&["--worker-threads", "3"], Some("worker-threads = 2\n")).unwrap().worker_threads, 3);
        assert_eq!(load(&[], Some("worker-threads = 2\n")).unwrap().worker_threads, 2);
        assert!(load(&["--worker-threads", "0"], None).is_err());
    }

    #[test]
    fn the_advertised_raft_address_must_be_host_and_port() {
        let config = load(&["--raft-advertise-addr", "raft.example:7379"], None).unwrap();
        assert_eq!(config.raft_advertise_addr.as_deref(), Some("raft.example:7379"));
        assert_eq!(load(&[], None).unwrap().raft_advertise_addr, None);
        assert!(load(&["--raft-advertise-addr", "nohost"], None).is_err());
        assert!(load(&["--raft-advertise-addr", ":7379"], None).is_err());
        assert!(load(&["--raft-advertise-addr", "h:0"], None).is_err());
    }

    #[test]
    fn the_zone_is_a_short_plain_name() {
        assert_eq!(load(&[], None).unwrap().zone, None);
        assert_eq!(load(&["--zone", "eu-west-1a"], None).unwrap().zone.as_deref(), Some("eu-west-1a"));
        assert_eq!(load(&[], Some("zone = \"rack.7\"\n")).unwrap().zone.as_deref(), Some("rack.7"));
        for bad in ["", "two words", "a,b", &"z".repeat(65)] {
            assert!(load(&["--zone", bad], None).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unknown_file_keys_and_bad_values_are_errors() {
        assert!(load(&[], Some("data-dri = \"x\"\n")).is_err());
        assert!(load(&["--storage-layout", "sideways"], None).is_err());
    }
}
