//! Chaos runs: a cluster of real `seshat` processes behind fault-injecting
//! proxies ([`crate::faults`]), a recorded workload ([`crate::workload`]),
//! and the checks that prove a run kept every promise:
//!
//! 1. after healing, every key is read once more through a linearizable
//!    GET, so a lost acknowledged write or a doubly applied INCR shows up
//!    in the history;
//! 2. the history is linearizable ([`crate::linearizability`]);
//! 3. every replica converges: once all have applied the same index, each
//!    node's own copy of every key (read with `READONLY`) is the same.
//!
//! When a check fails, the history, the checker's explanation, the fault
//! schedule and every node's log and data dir are written to a report
//! directory (`$SESHAT_CHAOS_REPORTS`, else `seshat-chaos-reports` under
//! the target directory or the system temp dir), whose path the error
//! names.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::faults::{node_ip, Faults, NodeId, NodeProxy};
use crate::linearizability::{self, Op, Reply};
use crate::workload::{self, Recorder};
use crate::Node;

/// Short timeouts so that faults resolve within seconds.
pub const CHAOS_ARGS: &[&str] =
    &["--heartbeat-ms", "50", "--election-timeout-ms", "300", "--request-timeout-ms", "2000"];

/// The client id final reads are recorded under.
const CHECKER_CLIENT: usize = 1000;

/// A cluster under test, its faults and its history.
pub struct ChaosCluster {
    name: String,
    /// Node `i` has id `i + 1`.
    pub nodes: Vec<Node>,
    /// Indexes of nodes removed from the membership: no longer checked.
    removed: Vec<usize>,
    node_args: Vec<String>,
    proxies: Vec<NodeProxy>,
    pub faults: Faults,
    pub recorder: Recorder,
    started: Instant,
    schedule: Mutex<String>,
    workload: Option<(CancellationToken, JoinHandle<()>)>,
}

impl ChaosCluster {
    /// Starts `count` nodes, each behind its proxy, with [`CHAOS_ARGS`]
    /// and `extra_args`.
    pub async fn start(name: &str, count: usize, extra_args: &[&str]) -> Result<ChaosCluster> {
        let args: Vec<&str> = CHAOS_ARGS.iter().chain(extra_args).copied().collect();
        ChaosCluster::start_with_args(name, count, &args).await
    }

    /// Starts `count` nodes, each behind its proxy, with exactly `node_args`
    /// (besides ids, addresses and members).
    pub async fn start_with_args(name: &str, count: usize, node_args: &[&str]) -> Result<ChaosCluster> {
        let faults = Faults::default();
        let mut raft_ports = Vec::new();
        let mut proxies = Vec::new();
        for index in 0..count {
            let id = index as NodeId + 1;
            let port = crate::free_ports_on(node_ip(id), 1)?[0];
            raft_ports.push(port);
            proxies.push(NodeProxy::start(id, SocketAddr::new(node_ip(id), port), faults.clone()).await?);
        }
        let members: Vec<String> =
            proxies.iter().enumerate().map(|(index, proxy)| format!("{}={}", index + 1, proxy.addr())).collect();
        let members = members.join(",");
        let mut nodes = Vec::new();
        for (index, port) in raft_ports.into_iter().enumerate() {
            let id = (index + 1).to_string();
            let mut args = vec!["--node-id", &id, "--initial-members", &members];
            args.extend_from_slice(node_args);
            let mut node = Node::prepare(crate::free_ports(1)?[0], port, &args)?;
            node.raft_host = node_ip(index as NodeId + 1).to_string();
            nodes.push(node);
        }
        for node in &mut nodes {
            node.launch()?;
        }
        Ok(ChaosCluster {
            name: name.to_string(),
            nodes,
            removed: Vec::new(),
            node_args: node_args.iter().map(|arg| arg.to_string()).collect(),
            proxies,
            faults,
            recorder: Recorder::default(),
            started: Instant::now(),
            schedule: Mutex::default(),
            workload: None,
        })
    }

    /// Starts one more node behind its own proxy and has it join through
    /// node `via`; returns its index once it runs (the join completes in
    /// the background, as with `--join`).
    pub async fn add_node(&mut self, via: usize) -> Result<usize> {
        let index = self.nodes.len();
        let id = index as NodeId + 1;
        let port = crate::free_ports_on(node_ip(id), 1)?[0];
        let proxy = NodeProxy::start(id, SocketAddr::new(node_ip(id), port), self.faults.clone()).await?;
        let (id_arg, join, advertise) =
            (id.to_string(), self.proxies[via].addr().to_string(), proxy.addr().to_string());
        let mut args = vec!["--node-id", &id_arg, "--join", &join, "--raft-advertise-addr", &advertise];
        args.extend(self.node_args.iter().map(String::as_str));
        let mut node = Node::prepare(crate::free_ports(1)?[0], port, &args)?;
        node.raft_host = node_ip(id).to_string();
        self.note(&format!("start node {id}, joining through node {}", via + 1));
        node.launch()?;
        self.nodes.push(node);
        self.proxies.push(proxy);
        Ok(index)
    }

    /// Removes node `index` from the membership (through any live node),
    /// then stops it.
    pub async fn remove_node(&mut self, index: usize) -> Result<()> {
        self.note(&format!("SESHAT REMOVE-NODE {}", index + 1));
        let via = (0..self.nodes.len())
            .find(|&i| i != index && !self.removed.contains(&i) && self.nodes[i].is_running())
            .context("no live node to ask")?;
        let mut c = self.nodes[via].patient_client(Duration::from_secs(40)).await?;
        let _: redis::Value =
            redis::cmd("SESHAT").arg("REMOVE-NODE").arg(index + 1).query_async(&mut c).await.context("REMOVE-NODE")?;
        self.removed.push(index);
        self.nodes[index].kill9();
        Ok(())
    }

    /// Indexes of the nodes that are (or will be again) members.
    fn members(&self) -> impl Iterator<Item = usize> + Clone + '_ {
        (0..self.nodes.len()).filter(|index| !self.removed.contains(index))
    }

    /// Records a step of the fault schedule.
    pub fn note(&self, event: &str) {
        let line = format!("{:>8.3}s {event}\n", self.started.elapsed().as_secs_f64());
        self.schedule.lock().expect("schedule lock").push_str(&line);
    }

    /// The ids of every node.
    pub fn ids(&self) -> Vec<NodeId> {
        (1..=self.nodes.len() as NodeId).collect()
    }

    /// The RESP addresses of the nodes (stopped ones too).
    pub fn resp_addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|node| SocketAddr::new([127, 0, 0, 1].into(), node.port())).collect()
    }

    /// Starts `clients` recorded clients spread over the nodes.
    pub fn start_workload(&mut self, clients: usize, seed: u64) {
        let (stop, recorder, addrs) = (CancellationToken::new(), self.recorder.clone(), self.resp_addrs());
        let running = stop.clone();
        let task = tokio::spawn(async move { workload::run_clients(&recorder, &addrs, clients, seed, running).await });
        self.note(&format!("workload: {clients} clients, seed {seed}"));
        self.workload = Some((stop, task));
    }

    /// Stops the workload and waits for its clients to finish.
    pub async fn stop_workload(&mut self) {
        if let Some((stop, task)) = self.workload.take() {
            stop.cancel();
            let _ = task.await;
            self.note("workload stopped");
        }
    }

    /// The index of the node that reports being leader, if one does within
    /// `timeout`.
    pub async fn leader(&self, timeout: Duration) -> Option<usize> {
        crate::leader_among(self.members().map(|index| (index, &self.nodes[index])), timeout).await
    }

    /// The leader of each shard (`SESHAT SHARDS`) as the first running
    /// member that answers sees them, once every shard has one; `None`
    /// if none does within `timeout`.
    pub async fn shard_leaders(&self, timeout: Duration) -> Option<Vec<NodeId>> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            for index in self.members().filter(|index| self.nodes[*index].is_running()) {
                let Ok(mut c) = self.nodes[index].client().await else { continue };
                let mut command = redis::cmd("SESHAT");
                let shards = command.arg("SHARDS").query_async::<Vec<String>>(&mut c);
                let Ok(Ok(lines)) = tokio::time::timeout(Duration::from_secs(2), shards).await else { continue };
                let leader = |line: &String| {
                    line.split(' ').find_map(|f| f.strip_prefix("leader=")).and_then(|id| id.parse::<NodeId>().ok())
                };
                if let Some(leaders) = lines.iter().map(leader).collect::<Option<Vec<NodeId>>>() {
                    return Some(leaders);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// Time until a SET through node `index` succeeds.
    pub async fn time_to_write(&self, index: usize, timeout: Duration) -> Result<Duration> {
        let started = Instant::now();
        let addr = self.resp_addrs()[index];
        while started.elapsed() < timeout {
            if let Some(mut c) = workload::connect(addr).await {
                if let Ok(()) = redis::cmd("SET").arg("probe").arg("x").query_async::<()>(&mut c).await {
                    return Ok(started.elapsed());
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        bail!("no write succeeded through node {} within {timeout:?}", index + 1)
    }

    /// SIGSTOP / SIGCONT node `index`.
    pub fn pause(&self, index: usize, paused: bool) -> Result<()> {
        let signal = if paused { "-STOP" } else { "-CONT" };
        self.note(&format!("kill {signal} node {}", index + 1));
        let status =
            std::process::Command::new("kill").args([signal, &self.nodes[index].pid().to_string()]).status()?;
        anyhow::ensure!(status.success(), "kill {signal} failed");
        Ok(())
    }

    /// Heals every fault, restarts stopped nodes, stops the workload, and
    /// runs the checks (see the module docs). Returns the number of
    /// operations checked.
    pub async fn heal_and_check(&mut self) -> Result<usize> {
        self.stop_workload().await;
        self.faults.heal_all();
        self.note("healed all links");
        for index in self.members().collect::<Vec<_>>() {
            if !self.nodes[index].is_running() {
                self.note(&format!("restart node {}", index + 1));
                self.nodes[index].launch()?;
            }
        }
        let outcome = self.check().await;
        if let Err(problem) = &outcome {
            let report = self.report(&format!("{problem:#}"));
            bail!("{problem:#}\nreport: {}", report.display());
        }
        outcome
    }

    /// How many WATCH/MULTI/EXEC transactions of the workload committed
    /// and how many aborted (unknown outcomes are in neither).
    pub fn transactions(&self) -> (usize, usize) {
        let history = self.recorder.history();
        let outcomes = history.iter().filter(|o| matches!(o.op, linearizability::Op::Cas { .. }));
        outcomes.fold((0, 0), |(committed, aborted), o| match o.reply {
            linearizability::Reply::Ok => (committed + 1, aborted),
            linearizability::Reply::NotSet => (committed, aborted + 1),
            _ => (committed, aborted),
        })
    }

    async fn check(&self) -> Result<usize> {
        self.final_reads().await?;
        let history = self.recorder.history();
        linearizability::check(&history).map_err(|violation| anyhow::anyhow!("{violation}"))?;
        self.converged().await?;
        Ok(history.len())
    }

    /// One linearizable GET of every key after healing, retried until it
    /// gets a reply (only replies are recorded).
    async fn final_reads(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        for key in workload::keys() {
            loop {
                anyhow::ensure!(Instant::now() < deadline, "no final read of {key} succeeded after healing");
                let index = self.leader(Duration::from_secs(10)).await.context("no leader after healing")?;
                let mut connection = workload::connect(self.resp_addrs()[index]).await;
                if self.recorder.run(CHECKER_CLIENT, &key, Op::Get, &mut connection).await != Reply::Unknown {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// Waits until every node has applied the same index, then compares
    /// every key's local copy across the nodes. The copies count only if
    /// no node applied anything while they were read: a write the workload
    /// gave up on (its outcome unknown) may still be retried by the node
    /// that took it and land after healing, on one node before another.
    async fn converged(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let before = self.applied_indexes().await;
            if before.iter().all(|a| a.is_some() && *a == before[0]) {
                let copies = self.local_copies().await?;
                if self.applied_indexes().await == before {
                    return same_copies(&copies, &self.members().collect::<Vec<_>>());
                }
            }
            anyhow::ensure!(Instant::now() < deadline, "replicas did not converge: applied indexes {before:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every member's applied index of every shard (`SESHAT SHARDS`), in
    /// member order.
    async fn applied_indexes(&self) -> Vec<Option<Vec<String>>> {
        let mut applied = Vec::new();
        for index in self.members() {
            applied.push(shard_applied(&self.nodes[index]).await);
        }
        applied
    }

    /// Every member's local copy (READONLY) of every workload key.
    async fn local_copies(&self) -> Result<Vec<Vec<Option<Vec<u8>>>>> {
        let mut copies = Vec::new();
        for index in self.members() {
            let mut c = self.nodes[index].client().await?;
            let () = redis::cmd("READONLY").query_async(&mut c).await?;
            let mut values = Vec::new();
            for key in workload::keys() {
                values.push(redis::cmd("GET").arg(&key).query_async::<Option<Vec<u8>>>(&mut c).await?);
            }
            copies.push(values);
        }
        Ok(copies)
    }

    /// Writes the report of a failed run; returns its directory.
    fn report(&self, problem: &str) -> PathBuf {
        let base = std::env::var_os("SESHAT_CHAOS_REPORTS").map(PathBuf::from).unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir)
                .join("seshat-chaos-reports")
        });
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let dir = base.join(format!("{}-{stamp}", self.name));
        let _ = std::fs::create_dir_all(&dir);
        let mut history = String::new();
        for op in self.recorder.history() {
            let _ = writeln!(history, "{op:?}");
        }
        let _ = std::fs::write(dir.join("history.txt"), history);
        let _ = std::fs::write(dir.join("problem.txt"), problem);
        let _ = std::fs::write(dir.join("schedule.txt"), self.schedule.lock().expect("schedule lock").as_str());
        for (index, node) in self.nodes.iter().enumerate() {
            let _ = std::fs::write(dir.join(format!("node{}.log", index + 1)), node.log());
            let copy = dir.join(format!("node{}-data", index + 1));
            let _ = std::process::Command::new("cp").arg("-a").arg(node.data_dir()).arg(&copy).status();
        }
        dir
    }
}

/// The applied index of each shard on `node`, if it answers.
async fn shard_applied(node: &crate::Node) -> Option<Vec<String>> {
    let mut c = node.client().await.ok()?;
    let mut command = redis::cmd("SESHAT");
    let shards = command.arg("SHARDS").query_async::<Vec<String>>(&mut c);
    let lines = tokio::time::timeout(Duration::from_secs(2), shards).await.ok()?.ok()?;
    let applied = |line: &String| line.split(' ').find_map(|f| f.strip_prefix("applied=")).map(str::to_string);
    lines.iter().map(applied).collect()
}

/// One randomized fault schedule: for `duration`, one fault at a time, drawn
/// from `seed` (kill and restart, pause, isolate, one-way drops, link
/// delay, held links, connection resets), each lifted before the next.
/// Returns how many faults it injected.
pub async fn nemesis(cluster: &mut ChaosCluster, seed: u64, duration: Duration) -> Result<usize> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let ids = cluster.ids();
    let started = Instant::now();
    let mut injected = 0;
    while started.elapsed() < duration {
        let target = rng.random_range(0..cluster.nodes.len());
        let id = target as NodeId + 1;
        let other = ids[(target + rng.random_range(1..ids.len())) % ids.len()];
        let fault_for = Duration::from_millis(rng.random_range(200..1500));
        match rng.random_range(0..7) {
            0 => {
                cluster.note(&format!("kill -9 node {id}"));
                cluster.nodes[target].kill9();
                tokio::time::sleep(fault_for).await;
                cluster.note(&format!("restart node {id}"));
                cluster.nodes[target].launch()?;
            }
            1 => {
                cluster.pause(target, true)?;
                tokio::time::sleep(fault_for).await;
                cluster.pause(target, false)?;
            }
            2 => {
                cluster.note(&format!("isolate node {id}"));
                cluster.faults.isolate(id, &ids);
                tokio::time::sleep(fault_for).await;
            }
            3 => {
                cluster.note(&format!("drop {id} -> {other}"));
                cluster.faults.set(id, other, Some(crate::faults::Fault::Drop));
                tokio::time::sleep(fault_for).await;
            }
            4 => {
                let delay = Duration::from_millis(rng.random_range(5..40));
                cluster.note(&format!("delay {delay:?} between {id} and {other}"));
                cluster.faults.set_both(id, other, Some(crate::faults::Fault::Delay(delay)));
                tokio::time::sleep(fault_for).await;
            }
            5 => {
                cluster.note(&format!("hold {id} -> {other}"));
                cluster.faults.set(id, other, Some(crate::faults::Fault::Hold));
                tokio::time::sleep(fault_for).await;
            }
            _ => {
                cluster.note(&format!("reset connections between {id} and {other}"));
                cluster.faults.reset(id, other);
            }
        }
        cluster.faults.heal_all();
        cluster.note("healed");
        injected += 1;
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..800))).await;
    }
    Ok(injected)
}

/// Checks that every member (`members[i]` read `copies[i]`) holds the
/// same values.
fn same_copies(copies: &[Vec<Option<Vec<u8>>>], members: &[usize]) -> Result<()> {
    for (position, copy) in copies.iter().enumerate().skip(1) {
        anyhow::ensure!(
            *copy == copies[0],
            "node {} holds {:?}, node {} holds {:?}",
            members[position] + 1,
            copy,
            members[0] + 1,
            copies[0]
        );
    }
    Ok(())
}
