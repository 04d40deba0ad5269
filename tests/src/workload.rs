//! A recorded client workload for chaos tests: concurrent clients doing
//! GET, SET, INCR and APPEND on a small key set over real RESP connections,
//! each operation recorded with its invocation and completion times for the
//! linearizability checker.
//!
//! Registers (`r0`…) take GET, SET, APPEND and read-modify-write
//! transactions (WATCH, GET, MULTI, SET, EXEC); counters (`c0`…) take GET
//! and INCR; locks (`l0`…) take GET, `SET NX` (compare-and-set against
//! absent), GETSET (swap) and DEL; so no operation fails for a wrong type.
//! Every written value is unique. A write answered with an error, a timeout or a broken
//! connection is recorded as unknown: it may or may not have applied. A
//! client reconnects after any failure (to the same node).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::aio::MultiplexedConnection;
use tokio_util::sync::CancellationToken;

use crate::linearizability::{Nanos, Op, Operation, Reply};

/// Registers and counters the workload uses.
pub const REGISTERS: usize = 3;
pub const COUNTERS: usize = 2;
pub const LOCKS: usize = 2;

/// How long a client waits for one reply before counting it unknown.
const OP_TIMEOUT: Duration = Duration::from_secs(3);

/// The shared record of a run.
#[derive(Clone)]
pub struct Recorder {
    epoch: Instant,
    operations: Arc<Mutex<Vec<Operation>>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder { epoch: Instant::now(), operations: Arc::default() }
    }
}

impl Recorder {
    fn now(&self) -> Nanos {
        self.epoch.elapsed().as_nanos() as Nanos
    }

    fn record(&self, operation: Operation) {
        self.operations.lock().expect("history lock").push(operation);
    }

    /// Everything recorded so far.
    pub fn history(&self) -> Vec<Operation> {
        self.operations.lock().expect("history lock").clone()
    }

    /// Runs one operation as `client` on `connection`, records it and
    /// returns the reply; drops the connection after a failure.
    pub async fn run(&self, client: usize, key: &str, op: Op, connection: &mut Option<MultiplexedConnection>) -> Reply {
        let invoked = self.now();
        let reply = match connection.as_mut() {
            Some(c) => tokio::time::timeout(OP_TIMEOUT, execute(c, key, &op)).await.ok().and_then(Result::ok),
            None => None,
        };
        let reply = match reply {
            Some(reply) => reply,
            None => {
                *connection = None;
                Reply::Unknown
            }
        };
        let completed = (reply != Reply::Unknown).then(|| self.now());
        self.record(Operation { client, key: key.to_string(), op, reply: reply.clone(), invoked, completed });
        reply
    }

    /// A read-modify-write transaction: `WATCH key`, `GET key` (recorded),
    /// then `MULTI`, `SET key new`, `EXEC` (recorded as [`Op::Cas`] over
    /// the value read).
    pub async fn compare_and_set(
        &self,
        client: usize,
        key: &str,
        new: Vec<u8>,
        connection: &mut Option<MultiplexedConnection>,
    ) {
        let Some(c) = connection.as_mut() else { return };
        let mut watch = redis::cmd("WATCH");
        watch.arg(key);
        if !matches!(tokio::time::timeout(OP_TIMEOUT, watch.query_async::<()>(c)).await, Ok(Ok(()))) {
            *connection = None;
            return;
        }
        let Reply::Value(expected) = self.run(client, key, Op::Get, connection).await else {
            return;
        };
        self.run(client, key, Op::Cas { expected, new }, connection).await;
    }
}

async fn execute(connection: &mut MultiplexedConnection, key: &str, op: &Op) -> redis::RedisResult<Reply> {
    Ok(match op {
        Op::Get => Reply::Value(redis::cmd("GET").arg(key).query_async(connection).await?),
        Op::Set(value) => {
            let () = redis::cmd("SET").arg(key).arg(value).query_async(connection).await?;
            Reply::Ok
        }
        Op::SetNx(value) => {
            let set: Option<String> = redis::cmd("SET").arg(key).arg(value).arg("NX").query_async(connection).await?;
            if set.is_some() {
                Reply::Ok
            } else {
                Reply::NotSet
            }
        }
        Op::GetSet(value) => Reply::Value(redis::cmd("GETSET").arg(key).arg(value).query_async(connection).await?),
        Op::Del => Reply::Int(redis::cmd("DEL").arg(key).query_async(connection).await?),
        Op::Incr => Reply::Int(redis::cmd("INCR").arg(key).query_async(connection).await?),
        Op::Append(suffix) => Reply::Int(redis::cmd("APPEND").arg(key).arg(suffix).query_async(connection).await?),
        Op::Cas { new, .. } => {
            let committed: Option<((),)> = redis::pipe().atomic().set(key, new).query_async(connection).await?;
            if committed.is_some() {
                Reply::Ok
            } else {
                Reply::NotSet
            }
        }
    })
}

/// A connection to `addr` whose replies may take [`OP_TIMEOUT`] (the
/// `redis` crate's default, 0.5 s, is shorter than an election).
pub async fn connect(addr: SocketAddr) -> Option<MultiplexedConnection> {
    let client = redis::Client::open(format!("redis://{addr}/")).ok()?;
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(Some(OP_TIMEOUT));
    let connect = client.get_multiplexed_async_connection_with_config(&config);
    tokio::time::timeout(OP_TIMEOUT, connect).await.ok()?.ok()
}

/// Runs `clients` clients until `stop`, client `i` talking to
/// `nodes[i % nodes.len()]`, with operations drawn from `seed`.
pub async fn run_clients(
    recorder: &Recorder,
    nodes: &[SocketAddr],
    clients: usize,
    seed: u64,
    stop: CancellationToken,
) {
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (recorder, addr, stop) = (recorder.clone(), nodes[client % nodes.len()], stop.clone());
        let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(client as u64));
        tasks.push(tokio::spawn(async move {
            let mut connection = None;
            let mut serial = 0u64;
            while !stop.is_cancelled() {
                if connection.is_none() {
                    connection = connect(addr).await;
                    if connection.is_none() {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                }
                serial += 1;
                match next_op(&mut rng, client, serial) {
                    Planned::Single(key, op) => {
                        recorder.run(client, &key, op, &mut connection).await;
                    }
                    Planned::Transaction(key, new) => {
                        recorder.compare_and_set(client, &key, new, &mut connection).await
                    }
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}

/// A client's next step.
enum Planned {
    /// One command.
    Single(String, Op),
    /// A read-modify-write transaction writing the value.
    Transaction(String, Vec<u8>),
}

fn next_op(rng: &mut StdRng, client: usize, serial: u64) -> Planned {
    if rng.random_bool(0.2) {
        let key = format!("l{}", rng.random_range(0..LOCKS));
        let op = match rng.random_range(0..10) {
            0..=3 => Op::Get,
            4..=6 => Op::SetNx(format!("{client}.{serial}").into_bytes()),
            7 => Op::GetSet(format!("{client}.{serial}").into_bytes()),
            _ => Op::Del,
        };
        Planned::Single(key, op)
    } else if rng.random_bool(0.6) {
        let key = format!("r{}", rng.random_range(0..REGISTERS));
        let value = format!("{client}.{serial}").into_bytes();
        match rng.random_range(0..10) {
            0..=3 => Planned::Single(key, Op::Get),
            4..=6 => Planned::Single(key, Op::Set(value)),
            7 => Planned::Transaction(key, value),
            _ => Planned::Single(key, Op::Append(format!("+{client}.{serial}").into_bytes())),
        }
    } else {
        let key = format!("c{}", rng.random_range(0..COUNTERS));
        Planned::Single(key, if rng.random_bool(0.5) { Op::Get } else { Op::Incr })
    }
}

/// Every key the workload touches.
pub fn keys() -> Vec<String> {
    let registers = (0..REGISTERS).map(|i| format!("r{i}"));
    let counters = (0..COUNTERS).map(|i| format!("c{i}"));
    registers.chain(counters).chain((0..LOCKS).map(|i| format!("l{i}"))).collect()
}
