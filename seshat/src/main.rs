//! The `seshat` binary: one node of a Seshat cluster.
//!
//! # Life of the process
//!
//! 1. Load the configuration (defaults < `--config` file < flags) and set up
//!    logging.
//! 2. Open the data dir: take its lock, check its layout, open RocksDB.
//! 3. Start the Raft endpoint (transport listener) and the groups (the
//!    metadata group `meta/0`, the Redis shards `kv/0` … and `sql/0`):
//!    bootstrap a fresh node per `--initial-members` (or as a cluster of
//!    one), or ask a member for its shard count and to add it (`--join`).
//! 4. Bind every frontend's listener (RESP, and PostgreSQL unless
//!    `--pg-addr off`), register the node's addresses with the metadata
//!    group (a refusal stops the node), print one `ready` line on stdout
//!    and serve; with several shards, balance their leaders.
//! 5. On SIGINT/SIGTERM: stop accepting, let every connection finish the
//!    commands it has in flight, stop Raft, make the WAL durable, exit 0.
//!    On a fatal storage error: stop and exit 1.
//!
//! With a subcommand (`seshat members`, `seshat dev-cluster`, …) it runs
//! that operator command instead ([`admin`]).

mod admin;
mod config;
mod dev_cluster;

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use kv::script::ScriptCommandsSlot;
use kv::{Kv, KvConfig, KvStart, SystemClock};
use protocol_resp::{NodeFacts, RespConfig, RespFrontend};
use protocol_sql::{PgConfig, PgFrontend};
use raft::{Bootstrap, Frontend, RaftNode, Shutdown};
use sql::{Sql, SqlStart};
use storage::{Service, Storage, Tuning};
use tokio::net::TcpListener;

use crate::config::{Config, Flags, Formation};

/// Rust's allocations go through mimalloc rather than glibc's malloc
/// (RocksDB's C++ keeps glibc's). See `docs/design.md` (Storage tuning)
/// for the figures.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut flags = Flags::parse();
    if let Some(command) = flags.command.take() {
        match admin::run(command) {
            Ok(code) => std::process::exit(code),
            Err(error) => {
                eprintln!("seshat: {error:#}");
                std::process::exit(1);
            }
        }
    }
    let config = match Config::load(flags) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("seshat: {error:#}");
            std::process::exit(2);
        }
    };
    init_logging(&config.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.worker_threads)
        .thread_name("seshat-worker")
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(config)) {
        Ok(()) => {}
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("seshat: {error:#}");
            std::process::exit(1);
        }
    }
}

fn init_logging(level: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(level).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(colour).with_writer(std::io::stderr).init();
}

async fn run(config: Config) -> anyhow::Result<()> {
    let tuning = Tuning { block_cache_mb: config.block_cache_mb };
    let storage = Storage::open_tuned(&config.data_dir, config.storage_layout, tuning)
        .with_context(|| format!("cannot open data dir {}", config.data_dir.display()))?;

    let raft_listener = TcpListener::bind(config.raft_addr)
        .await
        .with_context(|| format!("cannot listen for Raft peers on {}", config.raft_addr))?;
    let node = RaftNode::start(config.node_id, raft_listener, config.raft_advertise_addr.clone())?;
    let raft_addr = node.addr();
    let bootstrap = match &config.formation {
        Formation::Initial(members) => Bootstrap::Initialize(members.clone()),
        Formation::Single => Bootstrap::Initialize([(config.node_id, node.advertised().to_string())].into()),
        Formation::Join(_) => Bootstrap::Join,
    };
    // Registered with the metadata group, which places nothing until every
    // initial member has registered.
    let initial_members: Option<std::collections::BTreeSet<raft::NodeId>> = match &bootstrap {
        Bootstrap::Initialize(members) => Some(members.keys().copied().collect()),
        Bootstrap::Join => None,
    };
    let (shards, default_shards) = match &config.formation {
        Formation::Initial(members) => (config.shards, members.len() as u32),
        Formation::Single => (config.shards, 1),
        Formation::Join(member) => {
            let kv_store = storage.store(Service::Kv);
            (joining_shards(&node, &kv_store, member, config.shards).await?.or(config.shards), 1)
        }
    };
    // The RESP frontend's command table parses scripts' commands: it is
    // installed before the groups start, as starting one may apply
    // scripts (`kv::OpenedKv`).
    let script_commands = Arc::new(ScriptCommandsSlot::default());
    let opened = Kv::open(KvStart {
        node: &node,
        store: storage.store(Service::Kv),
        snapshots_dir: config.data_dir.join("snapshots"),
        shards,
        default_shards,
        meta_store: storage.store(Service::Meta),
        settings: config.group.clone(),
        bootstrap: bootstrap.clone(),
        clock: Arc::new(SystemClock),
        config: KvConfig::default(),
        script_commands: script_commands.clone(),
    })
    .await?;

    let listener = TcpListener::bind(config.resp_addr)
        .await
        .with_context(|| format!("cannot listen for RESP on {}", config.resp_addr))?;
    let resp_addr = listener.local_addr()?;
    let resp = RespFrontend::new(
        opened.kv().clone(),
        node.clone(),
        RespConfig {
            requirepass: config.requirepass.clone(),
            maxclients: config.maxclients,
            proto_max_bulk_len: config.proto_max_bulk_len,
            redis: config.redis.clone(),
            ..RespConfig::default()
        },
        NodeFacts {
            tcp_port: resp_addr.port(),
            bind: resp_addr.ip().to_string(),
            config_file: config.config_file.clone(),
            data_dir: config.data_dir.clone(),
            storage_layout: config.storage_layout.to_string(),
            cluster_enabled: config.cluster_enabled,
        },
    )
    .map_err(|error| anyhow::anyhow!("invalid [redis] parameter in the config file: {}", error.0))?;
    script_commands.install(resp.script_commands());
    let kv = opened.start_groups().await?;
    let sql = Sql::start(SqlStart {
        node: &node,
        store: storage.store(Service::Sql),
        snapshot_dir: config.data_dir.join("snapshots").join("sql-0"),
        settings: config.group.clone(),
        bootstrap,
        clock: Arc::new(SystemClock),
    })
    .await?;

    let mut frontends: Vec<(Box<dyn Frontend>, TcpListener)> = vec![(Box::new(resp), listener)];
    let mut pg_addr = None;
    if let Some(addr) = config.pg_addr {
        let listener =
            TcpListener::bind(addr).await.with_context(|| format!("cannot listen for PostgreSQL on {addr}"))?;
        pg_addr = Some(listener.local_addr()?);
        let pg = PgFrontend::new(sql.clone(), PgConfig { password: config.requirepass.clone() });
        frontends.push((Box::new(pg), listener));
    }
    let pg_text = pg_addr.map_or_else(|| "off".to_string(), |addr| addr.to_string());

    let shutdown = Shutdown::new();
    let mut serving = tokio::task::JoinSet::new();
    for (frontend, listener) in frontends {
        let shutdown = shutdown.clone();
        serving.spawn(async move {
            let name = frontend.name();
            if let Err(error) = frontend.serve(listener, shutdown).await {
                tracing::error!(frontend = name, %error, "frontend stopped");
            }
        });
    }
    let sweeper = {
        let kv = kv.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move { kv.run_expiry_sweeper(shutdown.cancelled_owned()).await })
    };
    {
        let kv = kv.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move { kv.purge_earlier_boots(shutdown.cancelled_owned()).await });
    }
    if kv.shards() > 1 {
        let kv = kv.clone();
        let shutdown = shutdown.clone();
        let node = node.clone();
        tokio::spawn(async move { kv.run_leader_balancer(node, shutdown.cancelled_owned()).await });
    }
    {
        let kv = kv.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move { kv.run_placement(shutdown.cancelled_owned()).await });
    }
    {
        let kv = kv.clone();
        let shutdown = shutdown.clone();
        let node = node.clone();
        tokio::spawn(async move { kv.meta().run_failure_detector(node, shutdown.cancelled_owned()).await });
    }
    if let Formation::Join(member) = &config.formation {
        let (node, member, shutdown) = (node.clone(), member.clone(), shutdown.clone());
        tokio::spawn(async move {
            match node.join(&member, shutdown).await {
                Ok(()) => tracing::info!("joined the cluster"),
                Err(error) => tracing::error!(%error, "joining the cluster failed"),
            }
        });
    }

    let registration = {
        let record = kv::meta_group::NodeRecord {
            id: config.node_id,
            name: kv.cluster_name().to_string(),
            raft_addr: node.advertised().to_string(),
            resp_addr: reachable(resp_addr, node.advertised()),
            pg_addr: pg_addr.map(|addr| reachable(addr, node.advertised())),
            zone: config.zone.clone(),
        };
        let (kv, shutdown) = (kv.clone(), shutdown.clone());
        let replicas = config.replicas;
        tokio::spawn(async move { kv.meta().register(record, kv.shards(), initial_members, replicas, shutdown).await })
    };
    let refused = async {
        match registration.await {
            Ok(Err(kv::Error::Config(reason))) => format!("as the metadata group refused this node: {reason}"),
            Ok(Ok(epoch)) => {
                tracing::info!(epoch, "registered with the metadata group");
                std::future::pending().await
            }
            Ok(Err(error)) => {
                tracing::info!(%error, "registration with the metadata group ended");
                std::future::pending().await
            }
            Err(error) => format!("as the registration task failed: {error}"),
        }
    };

    println!(
        "seshat ready: resp={resp_addr} pg={pg_text} raft={raft_addr} node-id={} data-dir={} storage-layout={}",
        config.node_id,
        config.data_dir.display(),
        config.storage_layout
    );
    tracing::info!(resp = %resp_addr, pg = %pg_text, raft = %raft_addr, node_id = config.node_id, "seshat ready");

    let fatal = tokio::select! {
        signal = shutdown_signal() => {
            tracing::info!(signal, "shutting down");
            None
        }
        reason = kv.fatal() => Some(format!("after a fatal storage error: {reason}")),
        reason = refused => Some(reason),
        reason = sql.fatal() => Some(format!("after a fatal storage error: {reason}")),
        _ = shutdown.cancelled() => {
            tracing::info!("shutting down (SHUTDOWN command)");
            None
        }
    };
    shutdown.cancel();
    while serving.join_next().await.is_some() {}
    let _ = sweeper.await;
    kv.shutdown().await;
    sql.shutdown().await;
    node.shutdown();
    if let Some(reason) = fatal {
        anyhow::bail!("stopped {reason}");
    }
    storage.sync_wal().context("final WAL sync")?;
    drop(kv);
    drop(sql);
    drop(storage);
    tracing::info!("shutdown complete");
    Ok(())
}

/// Where clients reach a frontend listening at `bound`: its own address,
/// or, when it listens on every interface, the host peers reach this
/// node's Raft transport at (`advertised`).
fn reachable(bound: std::net::SocketAddr, advertised: &str) -> String {
    if !bound.ip().is_unspecified() {
        return bound.to_string();
    }
    let host = advertised.rsplit_once(':').map_or(advertised, |(host, _)| host);
    format!("{host}:{}", bound.port())
}

/// The shard count a joining node must run: the cluster's, asked of the
/// member it joins through, when its data dir has none recorded yet
/// (`None` once it has: a restart does not need the member).
async fn joining_shards(
    node: &RaftNode,
    store: &storage::Store,
    member: &str,
    requested: Option<u32>,
) -> anyhow::Result<Option<u32>> {
    if kv::recorded_shards(store)?.is_some() {
        return Ok(None);
    }
    let cluster = kv::cluster_shards(node, member, std::time::Duration::from_secs(60)).await?;
    if let Some(requested) = requested.filter(|requested| *requested != cluster) {
        anyhow::bail!("--shards {requested}: the cluster this node joins at {member} has {cluster} shard(s)");
    }
    Ok(Some(cluster))
}

/// Resolves with the signal's name on SIGINT or SIGTERM.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
