//! Differential tests: seeded random command sequences (every data type,
//! TTLs, transactions; RESP2 and RESP3) run against a real redis-server
//! (Debian's `redis-server`, started here on a free port) and against a
//! Seshat node, replies compared after the normalizations of
//! `seshat_tests::differential` (each listed in `docs/compatibility.md`).
//!
//! `make test` runs a bounded budget; `make differential` a longer one:
//! `SESHAT_DIFF_SEEDS` seeds (default 4) from `SESHAT_DIFF_SEED` (default
//! 1), `SESHAT_DIFF_COMMANDS` steps each (default 1500). A difference
//! prints the seed and step, which replay it.

use anyhow::{Context, Result};
use seshat_tests::differential::{normalize, Command, Generator, Step, Tree};
use seshat_tests::{env_u64, Node, Raw, RedisServer};

/// A connection speaking RESP2 or RESP3.
struct Client {
    raw: Raw,
    resp3: bool,
}

impl Client {
    async fn call(&mut self, args: &[String]) -> Result<Tree> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.raw.send_command(&args).await?;
        Ok(if self.resp3 { Tree::from(self.raw.read3().await?) } else { Tree::from(self.raw.read2().await?) })
    }

    /// Runs `step`; returns one `(command text, normalized reply)` per
    /// reply the client saw.
    async fn run(&mut self, step: &Step) -> Result<Vec<(String, Tree)>> {
        let mut replies = Vec::new();
        match step {
            Step::Single(command) => {
                let reply = self.call(&command.args).await?;
                replies.push((command.args.join(" "), normalize(reply, command.norm)));
            }
            Step::Transaction { commands, discard } => {
                replies.push(("MULTI".into(), self.call(&["MULTI".into()]).await?));
                for command in commands {
                    replies.push((command.args.join(" "), self.call(&command.args).await?));
                }
                let end = if *discard { "DISCARD" } else { "EXEC" };
                let queued: Vec<String> = commands.iter().map(|c| c.args.join(" ")).collect();
                let reply = match self.call(&[end.into()]).await? {
                    Tree::Array(items) if items.len() == commands.len() => Tree::Array(
                        items
                            .into_iter()
                            .zip(commands)
                            .map(|(item, c): (Tree, &Command)| normalize(item, c.norm))
                            .collect(),
                    ),
                    other => other,
                };
                replies.push((format!("{end} [{}]", queued.join("; ")), reply));
            }
        }
        Ok(replies)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_command_sequences_answer_like_redis() -> Result<()> {
    let (seeds, first, steps) =
        (env_u64("SESHAT_DIFF_SEEDS", 4), env_u64("SESHAT_DIFF_SEED", 1), env_u64("SESHAT_DIFF_COMMANDS", 1500));
    let node = Node::start(&[])?;
    compare(&node, first..first + seeds, steps, Generator::new).await
}

/// The same sequences on one shard of three (every key tagged `{a}`: slot
/// 15495, the third shard), so that a shard other than the first, its
/// key prefixes and collection versions answer like Redis too, and the
/// commands without keys (DBSIZE, KEYS, FLUSHDB) cover every shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_command_sequences_on_a_shard_answer_like_redis() -> Result<()> {
    let (first, steps) = (env_u64("SESHAT_DIFF_SEED", 1), env_u64("SESHAT_DIFF_COMMANDS", 1500));
    let node = Node::start(&["--shards", "3"])?;
    // Seeds 3 and 4: RESP2 and RESP3.
    compare(&node, first + 2..first + 4, steps * 2 / 3, |seed| Generator::sharded(seed, "{a}")).await
}

/// Runs the steps of each seed's generator against redis-server and
/// `node`, comparing the replies.
async fn compare(
    node: &Node,
    seeds: std::ops::Range<u64>,
    steps: u64,
    generator_of: impl Fn(u64) -> Generator,
) -> Result<()> {
    let reference = RedisServer::start().await?;
    let mut compared = 0;
    let mut differences = Vec::new();
    for seed in seeds.clone() {
        // Every fourth seed speaks RESP3.
        let resp3 = seed % 4 == 0;
        let mut redis = Client { raw: Raw::connect(reference.addr).await?, resp3: false };
        let mut seshat = Client { raw: node.raw().await?, resp3: false };
        for client in [&mut redis, &mut seshat] {
            client.call(&["FLUSHALL".into()]).await?;
            client.call(&["SCRIPT".into(), "FLUSH".into()]).await?;
            client.call(&["FUNCTION".into(), "FLUSH".into()]).await?;
            let load = ["FUNCTION", "LOAD", seshat_tests::differential::LIBRARY];
            client.call(&load.map(String::from)).await?;
            if resp3 {
                client.resp3 = true;
                client.call(&["HELLO".into(), "3".into()]).await?;
            }
        }
        let mut generator = generator_of(seed);
        for index in 0..steps {
            let step = generator.step();
            let expected = redis.run(&step).await.with_context(|| format!("redis, seed {seed} step {index}"))?;
            let got = seshat.run(&step).await.with_context(|| format!("seshat, seed {seed} step {index}"))?;
            compared += expected.len();
            for ((command, want), (_, have)) in expected.iter().zip(&got) {
                if want != have {
                    differences.push(format!(
                        "seed {seed} step {index} (resp{}): {command}\n  redis:  {want:?}\n  seshat: {have:?}",
                        if resp3 { 3 } else { 2 }
                    ));
                }
            }
            if differences.len() >= 10 {
                break;
            }
        }
    }
    println!(
        "differential: seeds {seeds:?} x {steps} steps, {compared} replies compared, {} differences",
        differences.len()
    );
    assert!(differences.is_empty(), "replies differ from redis-server:\n{}", differences.join("\n"));
    Ok(())
}
