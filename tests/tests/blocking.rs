//! Blocking commands with several clients, against a real redis-server and
//! a Seshat node side by side: scripted scenarios (the order Redis serves
//! blocked clients in, MULTI wake-ups, timeouts, type changes, DEL and
//! RENAME of the key, BLMOVE chains) and seeded random ones. Each side runs
//! the same steps; the transcripts (every reply, and which clients a step
//! served) must be equal.
//!
//! After each step the runner waits until every client with a command
//! outstanding has either answered or is counted in INFO `blocked_clients`:
//! both servers take a served client off that count before they answer
//! the command that served it, so "still blocked" is never a guess.
//!
//! `make test` runs the scripted scenarios and `SESHAT_BLOCKING_SEEDS`
//! random ones (default 4) from `SESHAT_BLOCKING_SEED` (default 1), each
//! `SESHAT_BLOCKING_STEPS` steps (default 40); `make differential` more.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use seshat_tests::differential::Tree;
use seshat_tests::{env_u64, Node, Raw, RedisServer};

/// One step of a scenario.
#[derive(Debug, Clone)]
enum Step {
    /// Sends a (blocking) command on deferred client `n`, without waiting.
    Send(usize, Vec<String>),
    /// Runs a command on the control connection.
    Call(Vec<String>),
    /// Runs commands in one MULTI/EXEC on the control connection.
    Multi(Vec<Vec<String>>),
    /// Waits this long (for timeouts).
    Sleep(Duration),
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

fn send(client: usize, text: &str) -> Step {
    Step::Send(client, words(text))
}

fn call(text: &str) -> Step {
    Step::Call(words(text))
}

fn multi(texts: &[&str]) -> Step {
    Step::Multi(texts.iter().map(|t| words(t)).collect())
}

/// One server with a control connection and deferred clients.
struct Side {
    name: &'static str,
    control: Raw,
    clients: Vec<Raw>,
    /// Which clients have a command outstanding.
    pending: Vec<bool>,
}

impl Side {
    async fn connect(name: &'static str, addr: SocketAddr, clients: usize) -> Result<Side> {
        let mut control = Raw::connect(addr).await?;
        control.call(&["FLUSHALL"]).await?;
        let mut deferred = Vec::new();
        for _ in 0..clients {
            deferred.push(Raw::connect(addr).await?);
        }
        Ok(Side { name, control, clients: deferred, pending: vec![false; clients] })
    }

    async fn call(&mut self, args: &[String]) -> Result<Tree> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.control.send_command(&args).await?;
        Ok(Tree::from(self.control.read2().await?))
    }

    /// Runs `steps`; the transcript of everything the clients saw.
    async fn run(&mut self, steps: &[Step]) -> Result<Vec<String>> {
        let mut transcript = Vec::new();
        for (index, step) in steps.iter().enumerate() {
            match step {
                Step::Send(client, args) => {
                    if self.pending[*client] {
                        bail!("step {index}: client {client} is busy");
                    }
                    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
                    self.clients[*client].send_command(&args).await?;
                    self.pending[*client] = true;
                    transcript.push(format!("{client} <- {}", args_text(&args)));
                }
                Step::Call(args) => {
                    let reply = self.call(args).await?;
                    transcript.push(format!("{} -> {reply:?}", args.join(" ")));
                }
                Step::Multi(commands) => {
                    self.call(&["MULTI".into()]).await?;
                    for command in commands {
                        self.call(command).await?;
                    }
                    let reply = self.call(&["EXEC".into()]).await?;
                    transcript.push(format!("EXEC -> {reply:?}"));
                }
                Step::Sleep(duration) => tokio::time::sleep(*duration).await,
            }
            let served = self.settle().await.with_context(|| format!("{}: after step {index} {step:?}", self.name))?;
            transcript.extend(served);
        }
        Ok(transcript)
    }

    /// Waits until every client with a command outstanding has answered or
    /// is blocked; the answers, by client.
    async fn settle(&mut self) -> Result<Vec<String>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut answers = Vec::new();
        loop {
            for (client, raw) in self.clients.iter_mut().enumerate() {
                if !self.pending[client] {
                    continue;
                }
                if let Some(frame) = raw.try_read2(Duration::from_millis(2)).await? {
                    self.pending[client] = false;
                    answers.push((client, Tree::from(frame)));
                }
            }
            let outstanding = self.pending.iter().filter(|p| **p).count() as u64;
            if blocked_clients(&mut self.control).await? == outstanding {
                break;
            }
            if Instant::now() > deadline {
                bail!("clients neither answered nor blocked within 10 s (outstanding: {:?})", self.pending);
            }
        }
        answers.sort_by_key(|(client, _)| *client);
        Ok(answers.into_iter().map(|(client, reply)| format!("{client} -> {reply:?}")).collect())
    }
}

fn args_text(args: &[&[u8]]) -> String {
    args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>().join(" ")
}

async fn blocked_clients(control: &mut Raw) -> Result<u64> {
    let info = Tree::from(control.call(&["INFO", "clients"]).await?);
    let Tree::Bulk(text) = info else { bail!("INFO answered {info:?}") };
    let text = String::from_utf8_lossy(&text).into_owned();
    let line = text.lines().find_map(|l| l.strip_prefix("blocked_clients:")).context("no blocked_clients")?;
    Ok(line.trim().parse()?)
}

/// Runs `steps` on both servers with `clients` deferred clients each.
async fn compare(redis: SocketAddr, seshat: SocketAddr, clients: usize, steps: &[Step]) -> Result<Option<String>> {
    let (mut reference, mut subject) =
        (Side::connect("redis", redis, clients).await?, Side::connect("seshat", seshat, clients).await?);
    let (expected, got) = tokio::try_join!(reference.run(steps), subject.run(steps))?;
    Ok((expected != got).then(|| {
        let mut lines = Vec::new();
        for (i, line) in expected.iter().enumerate() {
            let have = got.get(i).map(String::as_str).unwrap_or("(nothing)");
            let mark = if have == line { " " } else { "!" };
            lines.push(format!("{mark} redis:  {line}\n{mark} seshat: {have}"));
        }
        lines.join("\n")
    }))
}

fn scripted() -> Vec<(&'static str, usize, Vec<Step>)> {
    vec![
        (
            "one MULTI serves three BZMPOP clients in the order they blocked; the fourth waits",
            4,
            vec![
                send(0, "BZMPOP 0 2 z1 z2 MIN COUNT 1"),
                send(1, "BZMPOP 0 2 z1 z2 MAX COUNT 10"),
                send(2, "BZMPOP 0 2 z1 z2 MIN COUNT 10"),
                send(3, "BZMPOP 0 2 z1 z2 MAX COUNT 1"),
                multi(&["ZADD z1 1 a 2 b 3 c 4 d 5 e", "ZADD z2 1 a 2 b 3 c 4 d 5 e"]),
                call("ZADD z2 6 f 7 g"),
                call("ZRANGE z2 0 -1 WITHSCORES"),
            ],
        ),
        (
            "BRPOPLPUSH and BLMOVE chains: a move's push serves the destination's clients",
            4,
            vec![
                send(0, "BRPOPLPUSH src dst 0"),
                send(1, "BLPOP dst 0"),
                send(2, "BLMOVE src dst LEFT RIGHT 0"),
                send(3, "BRPOPLPUSH dst src 0"),
                multi(&["RPUSH src a b c"]),
                call("LRANGE src 0 -1"),
                call("LRANGE dst 0 -1"),
            ],
        ),
        (
            "a key that gets data and another type in one MULTI serves nobody",
            3,
            vec![
                send(0, "BLPOP k 0"),
                send(1, "BZPOPMIN k 0"),
                send(2, "BLMPOP 0 1 k RIGHT COUNT 2"),
                multi(&["LPUSH k x", "DEL k", "SET k foo"]),
                multi(&["DEL k", "ZADD k 1 m", "DEL k", "SADD k s"]),
                call("DEL k"),
                call("ZADD k 1 m 2 n"),
                call("RPUSH k a b c"),
            ],
        ),
        (
            "a list pushed and popped empty in one MULTI serves nobody; a later push does",
            2,
            vec![
                send(0, "BLPOP q 0"),
                send(1, "BRPOP q 0"),
                multi(&["LPUSH q x", "LPOP q"]),
                multi(&["LPUSH q y", "DEL q"]),
                call("RPUSH q 1 2 3"),
                call("LRANGE q 0 -1"),
            ],
        ),
        (
            "RENAME onto a waited key serves it; a key of another type stays waiting",
            3,
            vec![
                send(0, "BLPOP r 0"),
                send(1, "BZPOPMAX r 0"),
                send(2, "BLPOP r2 0"),
                call("RPUSH other x y"),
                call("RENAME other r"),
                call("ZADD zz 1 a"),
                call("RENAME zz r"),
                call("SET r2 str"),
                call("RENAME r2 r2b"),
                call("LPUSH r2 z"),
            ],
        ),
        (
            "timeouts answer nil; clients blocked longer are still served",
            4,
            vec![
                send(0, "BLPOP t 0.2"),
                send(1, "BZPOPMIN tz 0.2"),
                send(2, "BLMOVE t t2 LEFT RIGHT 0.2"),
                send(3, "BLPOP t 0"),
                Step::Sleep(Duration::from_millis(600)),
                call("RPUSH t last"),
                call("EXISTS t t2"),
            ],
        ),
        (
            "a client on several keys is served by the first that gets data, in block order per key",
            3,
            vec![
                send(0, "BLPOP a b 0"),
                send(1, "BLPOP b 0"),
                send(2, "BLPOP b a 0"),
                call("RPUSH b 1 2"),
                call("RPUSH a 3"),
                call("RPUSH b 4 5"),
                call("LRANGE b 0 -1"),
            ],
        ),
        (
            "BLMPOP counts share one MULTI's elements in block order",
            3,
            vec![
                send(0, "BLMPOP 0 2 l1 l2 LEFT COUNT 2"),
                send(1, "BLMPOP 0 1 l2 RIGHT COUNT 5"),
                send(2, "BLMPOP 0 2 l2 l1 LEFT COUNT 1"),
                multi(&["RPUSH l2 a b c", "RPUSH l1 x"]),
                call("LRANGE l1 0 -1"),
            ],
        ),
        (
            "BLMOVE into a key of another type answers WRONGTYPE when served and moves nothing",
            2,
            vec![
                send(0, "BLMOVE s d LEFT LEFT 0"),
                send(1, "BLPOP s 0"),
                call("SET d str"),
                call("LPUSH s x y"),
                call("LRANGE s 0 -1"),
            ],
        ),
        (
            "SWAPDB serves the clients blocked on keys the other database holds",
            3,
            vec![
                send(0, "BLPOP sw 0"),
                send(1, "BZPOPMIN swz 0"),
                send(2, "BLPOP only-here 0"),
                call("SELECT 1"),
                call("RPUSH sw a b"),
                call("ZADD swz 1 m"),
                call("SELECT 0"),
                call("SWAPDB 0 1"),
                call("LRANGE sw 0 -1"),
                call("SWAPDB 0 1"),
                call("RPUSH only-here z"),
            ],
        ),
        (
            "XREAD BLOCK: every reader above the new entry's ID is served, with $ fixed when it blocked",
            5,
            vec![
                call("XADD s 1-0 f a"),
                send(0, "XREAD BLOCK 0 STREAMS s $"),
                send(1, "XREAD BLOCK 0 COUNT 1 STREAMS other s 0-0 1-0"),
                send(2, "XREAD BLOCK 0 STREAMS s 5-0"),
                send(3, "XREAD BLOCK 0 STREAMS absent $"),
                send(4, "XREAD BLOCK 0 STREAMS other $"),
                multi(&["XADD s 2-0 f b", "XADD s 3-0 f c"]),
                call("XADD other 1-0 f d"),
                call("XADD s 6-0 f e"),
                call("LPUSH absent x"),
                call("DEL absent"),
                call("XADD absent 1-0 f g"),
            ],
        ),
        (
            "XREADGROUP BLOCK: each new entry goes to one consumer of the group; a destroyed group or a retyped key unblocks with an error",
            5,
            vec![
                call("XGROUP CREATE s g $ MKSTREAM"),
                call("XGROUP CREATE s h $"),
                send(0, "XREADGROUP GROUP g alice BLOCK 0 STREAMS s >"),
                send(1, "XREADGROUP GROUP g bob BLOCK 0 COUNT 1 STREAMS s >"),
                send(2, "XREADGROUP GROUP h carol BLOCK 0 NOACK STREAMS s >"),
                send(3, "XREADGROUP GROUP h dave BLOCK 0 STREAMS s >"),
                send(4, "XREAD BLOCK 0 STREAMS s $"),
                multi(&["XADD s 1-0 f a", "XADD s 2-0 f b"]),
                call("XADD s 3-0 f c"),
                call("XPENDING s g"),
                call("XPENDING s h"),
                send(0, "XREADGROUP GROUP g alice BLOCK 0 STREAMS s >"),
                send(2, "XREADGROUP GROUP h carol BLOCK 0 STREAMS s >"),
                call("XGROUP DESTROY s g"),
                call("DEL s"),
                call("SET s notastream"),
            ],
        ),
        (
            "XREAD BLOCK times out with a null array, and a retyped key serves nobody",
            2,
            vec![
                send(0, "XREAD BLOCK 300 STREAMS s $"),
                send(1, "XREAD BLOCK 0 STREAMS t 0"),
                Step::Sleep(Duration::from_millis(600)),
                call("SET t notastream"),
                call("DEL t"),
                call("XADD t 1-0 f v"),
            ],
        ),
        (
            "blocking commands inside MULTI never block",
            1,
            vec![
                multi(&[
                    "BLPOP none 0",
                    "BRPOPLPUSH none x 0",
                    "BZPOPMIN none 0",
                    "BLMPOP 0 1 none LEFT",
                    "BZMPOP 0 1 none MIN",
                    "XREAD BLOCK 0 STREAMS none 0",
                    "XREADGROUP GROUP g c BLOCK 0 STREAMS none >",
                ]),
                call("LPUSH none v"),
                multi(&["BLPOP none 0"]),
            ],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_clients_are_served_like_redis() -> Result<()> {
    let reference = RedisServer::start().await?;
    let node = Node::start(&[])?;
    let mut failures = Vec::new();
    for (name, clients, steps) in scripted() {
        if let Some(difference) = compare(reference.addr, node.addr(), clients, &steps).await? {
            failures.push(format!("{name}:\n{difference}"));
        }
    }
    assert!(failures.is_empty(), "blocked clients differ from redis-server:\n\n{}", failures.join("\n\n"));
    Ok(())
}

/// A random scenario: `clients` deferred clients block on random keys with
/// random pops while the control connection pushes, deletes, retypes and
/// renames those keys, alone or in MULTI.
fn random_steps(seed: u64, clients: usize, count: usize) -> Vec<Step> {
    let mut rng = StdRng::seed_from_u64(seed);
    let lists = ["l1", "l2", "l3"];
    let zsets = ["z1", "z2"];
    let mut busy = vec![false; clients];
    let mut steps = Vec::new();
    let mut element = 0;
    for _ in 0..count {
        let idle: Vec<usize> = (0..clients).filter(|c| !busy[*c]).collect();
        if !idle.is_empty() && rng.random_bool(0.45) {
            let client = *idle.choose(&mut rng).expect("an idle client");
            let list = *lists.choose(&mut rng).expect("a list");
            let other = *lists.choose(&mut rng).expect("a list");
            let zset = *zsets.choose(&mut rng).expect("a zset");
            let command = match rng.random_range(0..8) {
                0 => format!("BLPOP {list} {other} 0"),
                1 => format!("BRPOP {list} 0"),
                2 => format!("BLMPOP 0 2 {list} {other} LEFT COUNT {}", rng.random_range(1..4)),
                3 => format!("BLMOVE {list} {other} RIGHT LEFT 0"),
                4 => format!("BRPOPLPUSH {list} {other} 0"),
                5 => format!("BZPOPMIN {zset} 0"),
                6 => format!("BZPOPMAX {zset} {list} 0"),
                _ => format!("BZMPOP 0 2 {zset} z2 MAX COUNT {}", rng.random_range(1..4)),
            };
            // A deferred client stays busy until it is served: later steps
            // only use the idle ones.
            busy[client] = true;
            steps.push(Step::Send(client, words(&command)));
            continue;
        }
        let commands = if rng.random_bool(0.3) { rng.random_range(2..5) } else { 1 };
        let mut writes = Vec::new();
        for _ in 0..commands {
            element += 1;
            let list = *lists.choose(&mut rng).expect("a list");
            let zset = *zsets.choose(&mut rng).expect("a zset");
            writes.push(words(&match rng.random_range(0..10) {
                0..=2 => format!("RPUSH {list} e{element} f{element}"),
                3 => format!("LPUSH {list} e{element}"),
                4 | 5 => format!("ZADD {zset} {} m{element} {} n{element}", element % 7, element % 5),
                6 => format!("DEL {list}"),
                7 => format!("SET {list} s{element}"),
                8 => format!("RENAME {zset} {list}"),
                _ => format!("LPOP {list}"),
            }));
        }
        steps.push(if commands == 1 { Step::Call(writes.remove(0)) } else { Step::Multi(writes) });
        // Served clients are idle again; which ones only the run knows, so
        // the generator frees them conservatively: a client is reused only
        // after the scenario's keys are all emptied below.
        if rng.random_bool(0.15) {
            steps.push(call("DEL l1 l2 l3 z1 z2"));
            for list in lists {
                // Enough elements for every client (5 x COUNT 3 at most).
                let elements: Vec<String> = (1..=16).map(|i| format!("x{i}")).collect();
                steps.push(Step::Call(words(&format!("RPUSH {list} {}", elements.join(" ")))));
            }
            for zset in zsets {
                let members: Vec<String> = (1..=16).map(|i| format!("{i} y{i}")).collect();
                steps.push(Step::Call(words(&format!("ZADD {zset} {}", members.join(" ")))));
            }
            busy.iter_mut().for_each(|b| *b = false);
        }
    }
    steps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_blocking_scenarios_answer_like_redis() -> Result<()> {
    let (seeds, first, count) =
        (env_u64("SESHAT_BLOCKING_SEEDS", 4), env_u64("SESHAT_BLOCKING_SEED", 1), env_u64("SESHAT_BLOCKING_STEPS", 40));
    let reference = RedisServer::start().await?;
    // Two connection threads: deliveries, timeouts and hang-ups race across
    // threads here, which the default (one thread on two cores) never does.
    let node = Node::start(&["--worker-threads", "2"])?;
    for seed in first..first + seeds {
        let steps = random_steps(seed, 5, count as usize);
        if let Some(difference) = compare(reference.addr, node.addr(), 5, &steps).await? {
            panic!("seed {seed} differs from redis-server:\n{difference}");
        }
    }
    println!("blocking differential: {seeds} seeds x {count} steps, no difference");
    Ok(())
}

/// The same scenarios on one shard of three: every key tagged `{a}` (slot
/// 15495, the third shard), so that its group's queue of blocked clients
/// serves them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_blocking_scenarios_on_a_shard_answer_like_redis() -> Result<()> {
    let (first, count) = (env_u64("SESHAT_BLOCKING_SEED", 1), env_u64("SESHAT_BLOCKING_STEPS", 40));
    let reference = RedisServer::start().await?;
    let node = Node::start(&["--worker-threads", "2", "--shards", "3"])?;
    for seed in first + 4..first + 6 {
        let steps = tagged(random_steps(seed, 5, count as usize), "{a}");
        if let Some(difference) = compare(reference.addr, node.addr(), 5, &steps).await? {
            panic!("seed {seed} differs from redis-server:\n{difference}");
        }
    }
    Ok(())
}

/// `steps` with every key of [`random_steps`] after `tag`.
fn tagged(steps: Vec<Step>, tag: &str) -> Vec<Step> {
    let tag_words = |words: Vec<String>| -> Vec<String> {
        let keys = ["l1", "l2", "l3", "z1", "z2"];
        words
            .into_iter()
            .map(|word| if keys.contains(&word.as_str()) { format!("{tag}{word}") } else { word })
            .collect()
    };
    steps
        .into_iter()
        .map(|step| match step {
            Step::Send(client, words) => Step::Send(client, tag_words(words)),
            Step::Call(words) => Step::Call(tag_words(words)),
            Step::Multi(commands) => Step::Multi(commands.into_iter().map(tag_words).collect()),
            other => other,
        })
        .collect()
}
