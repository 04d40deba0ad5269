//! The end-to-end harness: real `seshat` processes driven by real clients.
//!
//! [`Node::start`] runs the binary that `cargo test` built (found next to
//! the test executable, or at `$SESHAT_BIN`) in a fresh temp data dir with
//! `--resp-addr 127.0.0.1:0`, and reads the address it bound from its
//! `seshat ready:` line. A node is killed (SIGKILL) when dropped, so a failing
//! test never leaves a process behind; its log stays in the data dir's
//! parent for inspection while the test runs.

pub mod bank;
pub mod bounded;
pub mod chaos;
pub mod differential;
pub mod faults;
pub mod linearizability;
pub mod placement;
pub mod postgres;
pub mod watchdog;
pub mod workload;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::BytesMut;
use redis_protocol::resp2::types::OwnedFrame as Frame2;
use redis_protocol::resp3::types::OwnedFrame as Frame3;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Cluster settings that keep tests quick: short timeouts, and snapshots
/// every 200 entries so that catch-up by snapshot happens with little data.
pub const FAST: &[&str] = &[
    "--heartbeat-ms",
    "50",
    "--election-timeout-ms",
    "300",
    "--request-timeout-ms",
    "2000",
    "--snapshot-entries",
    "200",
    "--log-keep-entries",
    "20",
];

/// One cluster at a time per test binary: three nodes per test already
/// load both cores; several clusters at once would turn every timeout
/// into a flake. Held too long, the test has hung ([`watchdog`]).
pub async fn one_cluster_at_a_time() -> ClusterTurn {
    static ONE_CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let exclusive = ONE_CLUSTER.lock().await;
    ClusterTurn { _watchdog: watchdog::arm(), _exclusive: exclusive }
}

/// A test's turn with the cluster; it ends when dropped.
pub struct ClusterTurn {
    _watchdog: Option<watchdog::Watchdog>,
    _exclusive: tokio::sync::MutexGuard<'static, ()>,
}

/// The rows of a simple query, each column as text (`NULL` for null).
pub async fn simple_rows(client: &tokio_postgres::Client, sql: &str) -> Vec<Vec<String>> {
    let messages = client.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    messages
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => {
                Some((0..row.len()).map(|i| row.get(i).unwrap_or("NULL").to_string()).collect())
            }
            _ => None,
        })
        .collect()
}

/// The SQLSTATE of a failed call (`no code: …` when it carries none).
pub fn sqlstate(error: &tokio_postgres::Error) -> String {
    error.code().map(|c| c.code().to_string()).unwrap_or_else(|| format!("no code: {error}"))
}

/// The SQLSTATE the statements of `sql` (a simple query) fail with;
/// panics if they succeed.
pub async fn failing(client: &tokio_postgres::Client, sql: &str) -> String {
    match client.simple_query(sql).await {
        Ok(_) => panic!("{sql} succeeded"),
        Err(error) => sqlstate(&error),
    }
}

/// The first column of each row of a simple query, as text.
pub async fn first_column(client: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    simple_rows(client, sql).await.into_iter().map(|mut row| row.swap_remove(0)).collect()
}

/// How long a node may take to start or stop.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// `psql ARGS postgres` against `node`'s PostgreSQL port, as user
/// `postgres`, stopping at the first error: its output. Panics if psql
/// fails or writes to stderr.
pub fn psql(node: &Node, args: &[&str]) -> String {
    let mut command = std::process::Command::new("psql");
    command
        .args(["-h", "127.0.0.1", "-p", &node.pg_port().to_string(), "-U", "postgres", "-X", "-v", "ON_ERROR_STOP=1"])
        .args(args)
        .arg("postgres");
    let output = bounded::output_within(&mut command, bounded::CLIENT_LIMIT)
        .unwrap_or_else(|e| panic!("psql {args:?} (installed by scripts/install-deps.sh): {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && stderr.is_empty(), "psql {args:?}: {stderr}");
    String::from_utf8(output.stdout).expect("psql writes UTF-8")
}

/// This package's directory (`tests/`), where the test data lives. Cargo
/// names it at run time as well as at build time; the run-time one wins,
/// so a test binary built in another checkout of the tree (a target dir
/// reused by a clone at another path, whose sources had not changed)
/// reads this checkout's files, not the other's.
pub fn package_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// The error a failed command answered, as a client sees it: its code
/// and its detail (`"CROSSSLOT Keys in request don't hash to the same
/// slot"`). Panics if the command succeeded.
pub fn error_text<T: std::fmt::Debug>(result: redis::RedisResult<T>) -> String {
    let error = result.expect_err("the command fails");
    format!("{} {}", error.code().unwrap_or_default(), error.detail().unwrap_or_default())
}

/// The client libraries the Python tests use, from PyPI (pinned).
const PYTHON_PACKAGES: &[&str] = &["psycopg[binary]==3.3.9", "asyncpg==0.32.0", "redis==8.1.0"];

/// A Python with [`PYTHON_PACKAGES`] installed: a virtualenv kept under
/// the target directory, created (or completed) on first use.
pub fn python() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| package_dir().join("..").join("target"));
    let venv = target.join("seshat-pyvenv");
    let python = venv.join("bin").join("python");
    let imports = "import psycopg, asyncpg, redis; assert redis.__version__ == '8.1.0'";
    let ready = Command::new(&python).args(["-c", imports]).output().is_ok_and(|o| o.status.success());
    if !ready {
        let created = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().expect("run python3");
        assert!(
            created.success(),
            "python3 -m venv {} failed (scripts/install-deps.sh installs python3-venv)",
            venv.display()
        );
        let installed =
            Command::new(&python).args(["-m", "pip", "install", "-q"]).args(PYTHON_PACKAGES).status().expect("run pip");
        assert!(installed.success(), "pip install {PYTHON_PACKAGES:?} failed");
    }
    python
}

/// The `seshat` binary under test.
pub fn seshat_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("SESHAT_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/seshat
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let bin = profile_dir.join("seshat");
    assert!(bin.exists(), "{} not found: build it first (`cargo build --workspace --all-targets`)", bin.display());
    bin
}

/// A running (or stopped) `seshat` process with its own data dir.
pub struct Node {
    dir: tempfile::TempDir,
    extra_args: Vec<String>,
    child: Option<Child>,
    addr: Option<SocketAddr>,
    port: u16,
    /// The PostgreSQL port (0 until first launched: any free port).
    pg_port: u16,
    raft_port: u16,
    /// The IP the Raft transport listens on (and peer connections leave from).
    raft_host: String,
    env: Vec<(String, String)>,
}

impl Node {
    /// Starts a single node (a cluster of one) with default settings plus
    /// `extra_args`.
    pub fn start(extra_args: &[&str]) -> Result<Node> {
        let mut node = Node::prepare(0, 0, extra_args)?;
        node.launch()?;
        Ok(node)
    }

    /// A node that will listen on these ports (0: any) once launched.
    fn prepare(port: u16, raft_port: u16, extra_args: &[&str]) -> Result<Node> {
        let dir = tempfile::Builder::new().prefix("seshat-e2e-").tempdir()?;
        Ok(Node {
            dir,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            child: None,
            addr: None,
            port,
            pg_port: 0,
            raft_port,
            raft_host: "127.0.0.1".to_string(),
            env: Vec::new(),
        })
    }

    /// The Raft transport address.
    pub fn raft_addr(&self) -> String {
        format!("{}:{}", self.raft_host, self.raft_port)
    }

    /// The node's data dir.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs the binary on this node's data dir with `args`, waiting for it to
    /// exit, and returns its status and stderr. For startup-error tests.
    pub fn run_to_exit(&self, args: &[&str]) -> Result<(ExitStatus, String)> {
        let mut command = Command::new(seshat_bin());
        command
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--resp-addr", "127.0.0.1:0", "--pg-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0"])
            .args(["--log-level", "warn"])
            .args(args);
        let output = bounded::output_within(&mut command, START_TIMEOUT)?;
        Ok((output.status, String::from_utf8_lossy(&output.stderr).into_owned()))
    }

    fn launch(&mut self) -> Result<()> {
        // Reuse the first ports on restart so that clients and peers reconnect.
        let listen = format!("127.0.0.1:{}", self.port);
        let pg_listen = format!("127.0.0.1:{}", self.pg_port);
        let raft_listen = format!("{}:{}", self.raft_host, self.raft_port);
        let log_path = self.dir.path().join("seshat.log");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path)?;
        let mut child = Command::new(seshat_bin())
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--resp-addr", &listen, "--pg-addr", &pg_listen, "--raft-addr", &raft_listen])
            .args(["--log-level", "info"])
            .args(&self.extra_args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("spawn seshat")?;
        let stdout = child.stdout.take().expect("piped stdout");
        watchdog::started(child.id(), log_path);
        self.child = Some(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                if let Some(rest) = line.strip_prefix("seshat ready: ") {
                    let _ = tx.send(rest.to_string());
                }
            }
        });
        let ready = match rx.recv_timeout(START_TIMEOUT) {
            Ok(ready) => ready,
            Err(_) => {
                // How it ended, if it did (a signal leaves no line in the log).
                let status = self.child.as_mut().and_then(|child| child.try_wait().ok().flatten());
                if status.is_some() {
                    self.child.take().inspect(|child| watchdog::stopping(child.id()));
                }
                bail!("seshat did not become ready (exit: {status:?}); log:\n{}", self.log())
            }
        };
        let field = |name: &str| -> Result<SocketAddr> {
            let prefix = format!("{name}=");
            let value = ready.split_whitespace().find_map(|f| f.strip_prefix(prefix.as_str()));
            Ok(value.with_context(|| format!("ready line names the {name} address"))?.parse()?)
        };
        let addr = field("resp")?;
        self.port = addr.port();
        self.pg_port = field("pg")?.port();
        self.raft_port = field("raft")?.port();
        self.addr = Some(addr);
        Ok(())
    }

    /// The process's peak resident set size so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let peak = status.lines().find_map(|line| line.strip_prefix("VmHWM:")).context("no VmHWM line")?;
        Ok(peak.trim().trim_end_matches("kB").trim().parse()?)
    }

    /// Whether the process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The node's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("seshat.log")).unwrap_or_default()
    }

    /// The PostgreSQL port.
    pub fn pg_port(&self) -> u16 {
        assert!(self.pg_port != 0, "node was launched");
        self.pg_port
    }

    /// A tokio-postgres client of this node (its connection task runs in
    /// the background).
    pub async fn pg(&self) -> Result<tokio_postgres::Client> {
        let config = format!("host=127.0.0.1 port={} user=seshat dbname=seshat", self.pg_port());
        let (client, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// The RESP address.
    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("node is running")
    }

    /// The RESP port.
    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("node is running").id()
    }

    /// A `redis` crate connection with the crate's default reply timeout.
    pub async fn client(&self) -> Result<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(format!("redis://{}/", self.addr()))?;
        Ok(client.get_multiplexed_async_connection().await?)
    }

    /// A `redis` crate connection whose replies may take `timeout`: in a
    /// cluster, a write can wait for an election (the crate's default of
    /// 0.5 s is shorter than an election timeout).
    pub async fn patient_client(&self, timeout: Duration) -> Result<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(format!("redis://{}/", self.addr()))?;
        let config = redis::AsyncConnectionConfig::new().set_response_timeout(Some(timeout));
        Ok(client.get_multiplexed_async_connection_with_config(&config).await?)
    }

    /// A raw TCP connection for byte-level tests.
    pub async fn raw(&self) -> Result<Raw> {
        Ok(Raw { stream: TcpStream::connect(self.addr()).await?, buffer: BytesMut::new() })
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            watchdog::stopping(child.id());
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> Result<ExitStatus> {
        let mut child = self.child.take().context("node is not running")?;
        watchdog::stopping(child.id());
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("seshat did not exit after SIGTERM; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the process again on the same data dir and port.
    pub fn restart(&mut self) -> Result<()> {
        if self.child.is_some() {
            self.kill9();
        }
        self.launch()
    }

    /// [`Node::restart`] with these environment variables from now on.
    pub fn restart_with_env(&mut self, env: &[(&str, &str)]) -> Result<()> {
        self.env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.restart()
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let child = self.child.as_mut().context("node is not running")?;
        watchdog::stopping(child.id());
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("seshat did not exit within {timeout:?}; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The loopback ports [`free_ports`] hands out: below Linux's default
/// ephemeral range (32768–60999), so an outgoing connection, which takes
/// its local port from that range, can never take one between the check
/// and the node's bind.
const TEST_PORTS: std::ops::Range<u32> = 20_000..32_000;

/// Ports that are free now, each handed out once per test process. Test
/// processes run one after another; the starting point still depends on the
/// process id so that two running at once rarely meet, and a port that is
/// taken is skipped.
pub fn free_ports(count: usize) -> Result<Vec<u16>> {
    free_ports_on([127, 0, 0, 1].into(), count)
}

/// As [`free_ports`], free on loopback address `ip` (a chaos test's node
/// addresses, 127.0.1.x: a node bound to an ephemeral port there could
/// find it taken, on restart, by another node's outgoing connection).
pub fn free_ports_on(ip: std::net::IpAddr, count: usize) -> Result<Vec<u16>> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let span = TEST_PORTS.end - TEST_PORTS.start;
    let offset = std::process::id() % 100 * (span / 100);
    let mut ports = Vec::with_capacity(count);
    for _ in 0..span {
        if ports.len() == count {
            return Ok(ports);
        }
        let port = (TEST_PORTS.start + (offset + NEXT.fetch_add(1, Ordering::Relaxed)) % span) as u16;
        if std::net::TcpListener::bind((ip, port)).is_ok() {
            ports.push(port);
        }
    }
    bail!("no {count} free loopback ports in {TEST_PORTS:?}")
}

/// A redis-server with no persistence on a free loopback port, the
/// reference Seshat is compared with; killed on drop.
pub struct RedisServer {
    child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts Debian's `redis-server` (installed by
    /// `scripts/install-deps.sh`) and waits until it accepts connections.
    pub async fn start() -> Result<RedisServer> {
        let dir = tempfile::tempdir()?;
        let port = free_ports(1)?[0];
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server (installed by scripts/install-deps.sh)")?;
        let server = RedisServer { child, addr: format!("127.0.0.1:{port}").parse()?, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(server.addr).await.is_err() {
            if Instant::now() > deadline {
                bail!("redis-server did not start on {}", server.addr);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(server)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A cluster of real `seshat` processes on loopback, node ids 1..=n. When
/// a test panics holding it, the end of each node's log goes to stderr,
/// which the test harness prints with the failure.
pub struct Cluster {
    pub nodes: Vec<Node>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for (index, node) in self.nodes.iter().enumerate() {
            eprintln!("--- the end of node {}'s log ---\n{}", index + 1, log_tail(&node.log()));
        }
    }
}

/// The last lines of a node's log, as a failure shows them.
pub(crate) fn log_tail(log: &str) -> String {
    const LINES: usize = 80;
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(LINES)..].join("\n")
}

impl Cluster {
    /// Starts `count` nodes bootstrapped with `--initial-members`, each with
    /// `extra_args`.
    pub fn start(count: usize, extra_args: &[&str]) -> Result<Cluster> {
        Cluster::start_with_env(count, extra_args, &[])
    }

    /// As [`Cluster::start`], with extra environment variables.
    pub fn start_with_env(count: usize, extra_args: &[&str], env: &[(&str, &str)]) -> Result<Cluster> {
        let mut cluster = Cluster::prepare(count, extra_args, env)?;
        for node in &mut cluster.nodes {
            node.launch()?;
        }
        Ok(cluster)
    }

    /// As [`Cluster::start`], but the node at `held` is not launched: an
    /// initial member that comes late ([`Node::restart`] launches it).
    pub fn start_holding_back(count: usize, extra_args: &[&str], held: usize) -> Result<Cluster> {
        let mut cluster = Cluster::prepare(count, extra_args, &[])?;
        for (index, node) in cluster.nodes.iter_mut().enumerate() {
            if index != held {
                node.launch()?;
            }
        }
        Ok(cluster)
    }

    /// The nodes of [`Cluster::start_with_env`], none launched yet.
    fn prepare(count: usize, extra_args: &[&str], env: &[(&str, &str)]) -> Result<Cluster> {
        let ports = free_ports(count * 2)?;
        let members: Vec<String> = (0..count).map(|i| format!("{}=127.0.0.1:{}", i + 1, ports[count + i])).collect();
        let members = members.join(",");
        let mut nodes = Vec::new();
        for i in 0..count {
            let id = (i + 1).to_string();
            let mut args = vec!["--node-id", &id, "--initial-members", &members];
            args.extend_from_slice(extra_args);
            let mut node = Node::prepare(ports[i], ports[count + i], &args)?;
            node.env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            nodes.push(node);
        }
        Ok(Cluster { nodes })
    }

    /// Starts one more node (id `id`) that joins through node `via`.
    pub fn join(&mut self, id: u64, via: usize, extra_args: &[&str]) -> Result<usize> {
        let id = id.to_string();
        let target = self.nodes[via].raft_addr();
        let mut args = vec!["--node-id", &id, "--join", &target];
        args.extend_from_slice(extra_args);
        let mut node = Node::prepare(0, 0, &args)?;
        node.launch()?;
        self.nodes.push(node);
        Ok(self.nodes.len() - 1)
    }

    /// The position of the node that leads, as the running nodes report
    /// it (`INFO replication`), once they agree; `None` if they do not
    /// within `timeout`.
    pub async fn leader(&self, timeout: Duration) -> Option<usize> {
        leader_among(self.nodes.iter().enumerate(), timeout).await
    }
}

/// The index of the first of `candidates` (index, node) that reports being
/// leader, polling until `timeout`.
pub(crate) async fn leader_among<'a>(
    candidates: impl Iterator<Item = (usize, &'a Node)> + Clone,
    timeout: Duration,
) -> Option<usize> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        for (index, node) in candidates.clone() {
            if node.is_running() && info_field(node, "seshat_raft_role").await.as_deref() == Some("leader") {
                return Some(index);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// redis-rs's async cluster client of the cluster that the nodes on
/// `ports` show, whose requests (retries after MOVED included) may take
/// `timeout`: the crate's cluster client waits forever by default.
pub async fn cluster_client(ports: &[u16], timeout: Duration) -> Result<redis::cluster_async::ClusterConnection> {
    let nodes: Vec<String> = ports.iter().map(|port| format!("redis://127.0.0.1:{port}")).collect();
    let client = redis::cluster::ClusterClientBuilder::new(nodes).response_timeout(timeout).build()?;
    Ok(client.get_async_connection().await?)
}

/// What `redis-cli -h 127.0.0.1 -p PORT ARGS…` prints; panics if it fails.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    match try_redis_cli(port, args) {
        Ok(stdout) => stdout,
        Err(failure) => panic!("redis-cli {args:?}: {failure}"),
    }
}

/// What `redis-cli -h 127.0.0.1 -p PORT ARGS…` prints, or, when it exits
/// with a failure (`--cluster check` does while a slot has no leader) or
/// does not exit within [`bounded::CLIENT_LIMIT`], everything it printed.
pub fn try_redis_cli(port: u16, args: &[&str]) -> Result<String, String> {
    let mut command = Command::new("redis-cli");
    command.args(["-h", "127.0.0.1", "-p", &port.to_string()]).args(args);
    let output = match bounded::output_within(&mut command, bounded::CLIENT_LIMIT) {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Err(e.to_string()),
        Err(e) => panic!("redis-cli (make test installs redis-tools): {e}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    match output.status.success() {
        true => Ok(stdout),
        false => Err(format!("{}{stdout}", String::from_utf8_lossy(&output.stderr))),
    }
}

/// One `INFO` field of `node`, if it answers.
pub async fn info_field(node: &Node, name: &str) -> Option<String> {
    info_fields(node, &[name]).await?.pop().flatten()
}

/// `INFO` fields of `node` from one reply (so they describe one moment),
/// if it answers.
pub async fn info_fields(node: &Node, names: &[&str]) -> Option<Vec<Option<String>>> {
    let mut raw = node.raw().await.ok()?;
    let reply = tokio::time::timeout(Duration::from_secs(2), raw.call(&["INFO", "everything"])).await.ok()?.ok()?;
    let Frame2::BulkString(text) = reply else { return None };
    let text = String::from_utf8_lossy(&text).into_owned();
    let field = |name: &str| {
        let prefix = format!("{name}:");
        text.lines().find_map(|line| line.strip_prefix(prefix.as_str()).map(|v| v.trim().to_string()))
    };
    Some(names.iter().map(|name| field(name)).collect())
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A raw RESP connection: send bytes, read decoded frames.
pub struct Raw {
    stream: TcpStream,
    buffer: BytesMut,
}

impl Raw {
    /// A raw connection to any RESP server (a reference redis-server).
    pub async fn connect(addr: SocketAddr) -> Result<Raw> {
        Ok(Raw { stream: TcpStream::connect(addr).await?, buffer: BytesMut::new() })
    }

    /// Sends `bytes` as they are.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    /// Sends a command as a multibulk.
    pub async fn send_command(&mut self, args: &[&[u8]]) -> Result<()> {
        self.send(&encode_command(args)).await
    }

    /// Reads the next RESP2 reply.
    pub async fn read2(&mut self) -> Result<Frame2> {
        self.read_with(|buf| Ok(redis_protocol::resp2::decode::decode(buf)?)).await
    }

    /// Reads the next RESP3 reply.
    pub async fn read3(&mut self) -> Result<Frame3> {
        self.read_with(|buf| Ok(redis_protocol::resp3::decode::complete::decode(buf)?)).await
    }

    /// The next RESP2 reply if one arrives within `wait`.
    pub async fn try_read2(&mut self, wait: Duration) -> Result<Option<Frame2>> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some((frame, used)) = redis_protocol::resp2::decode::decode(&self.buffer)? {
                let _ = self.buffer.split_to(used);
                return Ok(Some(frame));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.stream.read_buf(&mut self.buffer)).await {
                Err(_) => return Ok(None),
                Ok(read) => {
                    if read? == 0 {
                        bail!("connection closed");
                    }
                }
            }
        }
    }

    /// Sends a command and reads its RESP2 reply.
    /// A command of binary arguments, answered in RESP2.
    pub async fn call_bytes(&mut self, args: &[&[u8]]) -> Result<Frame2> {
        self.send_command(args).await?;
        self.read2().await
    }

    pub async fn call(&mut self, args: &[&str]) -> Result<Frame2> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send_command(&args).await?;
        self.read2().await
    }

    async fn read_with<F>(&mut self, decode: impl Fn(&[u8]) -> Result<Option<(F, usize)>>) -> Result<F> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some((frame, used)) = decode(&self.buffer)? {
                let _ = self.buffer.split_to(used);
                return Ok(frame);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let n = tokio::time::timeout(left, self.stream.read_buf(&mut self.buffer))
                .await
                .context("reply timed out")??;
            if n == 0 {
                bail!("connection closed (buffered: {:?})", String::from_utf8_lossy(&self.buffer));
            }
        }
    }

    /// True once the server has closed the connection (reads EOF), within 5 s.
    pub async fn closed(&mut self) -> bool {
        let mut scratch = [0u8; 1024];
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.stream.read(&mut scratch)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// A RESP2 reply as text: strings as they are, integers in decimal, arrays
/// as their items joined by spaces, nil as `(nil)`.
pub fn text(frame: &Frame2) -> String {
    match frame {
        Frame2::SimpleString(bytes) | Frame2::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Frame2::Error(error) => error.to_string(),
        Frame2::Integer(n) => n.to_string(),
        Frame2::Null => "(nil)".into(),
        Frame2::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(" "),
    }
}

/// A command as the multibulk a client library sends.
pub fn encode_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A test budget from the environment (`make differential` and friends
/// raise them), or `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Polls `check` every 10 ms until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}
