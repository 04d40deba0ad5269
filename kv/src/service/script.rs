//! Read-only scripts on the read path (`crate::script`): after the read
//! barrier of the script's shard, in this node's reader VM, against one
//! snapshot. A shard this node holds no replica of runs the script
//! through its log instead, as a read-only entry.
//!
//! Also EVAL's storing of its script beyond its own shard: Redis keeps one
//! script cache, so EVALSHA finds a script whichever keys it names, while
//! here each shard's group stores its own scripts ([`Kv::write_scripts`]).

use bytes::Bytes;
use storage::keyspace::Shard;

use super::{Kv, Pending, WriteReply};
use crate::command::WriteOp;
use crate::dbmap::DbMap;
use crate::error::Result;
use crate::notify::Writer;
use crate::read::{ReadCode, ReadScript};
use crate::reply::Reply;
use crate::script::engine::Engine;
use crate::script::{Sha, DEFAULT_BUDGET};
use storage::{Family, Reader};

impl Kv {
    /// [`Kv::write_from`] of `op`, which runs or loads the scripts
    /// `bodies` (an EVAL, or an EXEC with EVAL or SCRIPT LOAD inside): also
    /// stores each (SCRIPT LOAD) in every other shard whose replica on this
    /// node lacks it, and answers `op`'s reply once those loads applied
    /// too, so that a later EVALSHA finds them in any shard. A load that
    /// fails leaves its shard without the script (EVALSHA there answers
    /// NOSCRIPT, which clients answer with EVAL); shards this node holds
    /// no replica of are not asked. A script found in every shard is
    /// remembered (`crate::script::everywhere`), so a script run again and
    /// again is looked up once.
    pub fn write_scripts(
        &self,
        shard: Option<Shard>,
        db: u8,
        op: WriteOp,
        bodies: &[Bytes],
        writer: Option<Writer>,
    ) -> WriteReply {
        if self.shards() == 1 || bodies.is_empty() {
            return self.write_from(shard, db, op, writer);
        }
        let target = shard.unwrap_or(0);
        let everywhere = &self.inner.hosting.scripts_everywhere;
        let mut loads = Vec::new();
        for body in bodies {
            let sha = Sha::of(body);
            if everywhere.contains(&sha) {
                continue;
            }
            let generation = everywhere.generation();
            let lacking: Vec<Shard> = (0..self.shards()).filter(|s| !self.stores_script(*s, &sha)).collect();
            if lacking.is_empty() {
                everywhere.record(generation, sha);
            }
            for other in lacking.into_iter().filter(|s| *s != target) {
                loads.push(self.write(Some(other), db, WriteOp::ScriptLoad { body: body.clone() }));
            }
        }
        let reply = self.write_from(shard, db, op, writer);
        if loads.is_empty() {
            return reply;
        }
        let pending = Box::pin(async move {
            let reply = reply.await;
            for load in loads {
                let _ = load.await;
            }
            reply
        });
        WriteReply { pending: Pending::Boxed(pending) }
    }

    /// Whether this node's replica of `shard` stores script `sha` (yes for
    /// a shard it holds no replica of: not asked).
    fn stores_script(&self, shard: Shard, sha: &Sha) -> bool {
        if self.group_of(shard).is_none() {
            return true;
        }
        self.inner.store.get(Family::KvMeta, &sha.stored_key(shard)).is_ok_and(|stored| stored.is_some())
    }

    /// Forgets the scripts this node's reader VM compiled (SCRIPT FLUSH).
    pub fn flush_script_reader(&self) {
        if let Some(engine) = self.inner.script_reader.lock().expect("script reader lock").as_mut() {
            engine.flush();
        }
    }

    /// Runs a read-only script (EVAL_RO, EVALSHA_RO, a `no-writes` EVAL,
    /// FCALL_RO)
    /// on database `db` of `shard` (`None`: it has no keys): linearizable,
    /// or with `stale` as this replica has the data.
    pub async fn eval_read(
        &self,
        shard: Option<Shard>,
        db: u8,
        code: ReadCode,
        keys: Vec<Bytes>,
        args: Vec<Bytes>,
        stale: bool,
    ) -> Result<Reply> {
        let target = shard.unwrap_or(0);
        let seed = rand::random();
        let Some(group) = self.group_of(target) else {
            let (budget, read_only) = (DEFAULT_BUDGET, true);
            let op = match code {
                ReadCode::Script(script) => WriteOp::Eval { script, keys, args, seed, budget, read_only },
                ReadCode::Function(function) => WriteOp::FCall { function, keys, args, seed, budget, read_only },
            };
            return self.write(shard, db, op).await;
        };
        if !stale {
            group.read_barrier().await?;
        }
        let commands = self.inner.script_commands.get();
        raft::run_blocking(|| {
            let map = match self.inner.dbs.ever_swapped() {
                true => Some(DbMap::load(&self.inner.store, 0)?),
                false => None,
            };
            let physical = |logical: u8| map.as_ref().map_or(logical, |map| map.physical(logical));
            let mut reader = self.inner.script_reader.lock().expect("script reader lock");
            let engine = reader.get_or_insert_with(Engine::new);
            self.read_stale(Some(target), db, |ctx| {
                ctx.consistent(|ctx| {
                    let run = ReadScript { code, keys: &keys, args: &args, db, physical: &physical };
                    ctx.run_read_script(engine, &*commands, run, seed, DEFAULT_BUDGET)
                })
            })
        })
    }
}
