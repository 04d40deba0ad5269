//! Read-only scripts on the read path (`crate::script`): after the read
//! barrier of the script's shard, in this node's reader VM, against one
//! snapshot. A shard this node holds no replica of runs the script
//! through its log instead, as a read-only entry.

use bytes::Bytes;
use storage::keyspace::Shard;

use super::Kv;
use crate::command::WriteOp;
use crate::dbmap::DbMap;
use crate::error::Result;
use crate::read::{ReadCode, ReadScript};
use crate::reply::Reply;
use crate::script::engine::Engine;
use crate::script::DEFAULT_BUDGET;

impl Kv {
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
