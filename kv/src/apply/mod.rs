//! The durable, deterministic state machine of the Redis service.
//!
//! [`KvStateMachine::apply`] runs a batch of log entries through one
//! [`txn::Txn`] and adds the result, with the last time stamp, to the
//! group's write batch, which also records the applied log id (`raft`
//! writes it). So a crash leaves either the whole batch applied or none of
//! it, and restart resumes at the recorded index: nothing is re-applied,
//! nothing skipped.
//!
//! Determinism: the only inputs are the stored state and the entries (their
//! ops and stamps). "Now" is `max(entry stamp, last applied stamp)`, so time
//! never runs backwards across entries or leader changes. User errors are
//! replies; storage errors abort the batch and stop the group.

mod bits;
mod block;
mod collection;
mod exec;
mod function;
mod hash;
mod hll;
mod keys;
mod list;
mod script;
mod set;
mod stream;
mod stream_group;
mod string;
mod txn;
mod waiters;
mod zset;

use std::ops::RangeInclusive;
use std::sync::Arc;

use bytes::Bytes;
use raft::{Command, StateMachine};
use storage::keyspace::{kv_group, kv_meta, Shard, Span};
use storage::{Batch, Store};

use crate::blocking::Blocked;
use crate::command::{LogCommand, WriteOp};
use crate::cursors::CursorTable;
use crate::dbmap::{DbMap, DbMapState};
use crate::error::{CommandError, Error, Result};
use crate::notify::{Applied, KeyEvents, NotifyFlags};
use crate::reply::Reply;
use crate::script::engine::Engine;
use crate::script::everywhere::StoredEverywhere;
use crate::script::ScriptCommandsSlot;
use crate::sorted::Combine;
use waiters::WaitQueue;

use crate::meta::read_u64;
use crate::DATABASES;
pub(crate) use txn::Txn;

/// Why an op did not produce a reply.
pub(crate) enum Fail {
    /// A user error: becomes the reply.
    User(CommandError),
    /// A storage failure: aborts the batch.
    Fatal(Error),
}

impl From<CommandError> for Fail {
    fn from(error: CommandError) -> Self {
        Fail::User(error)
    }
}

impl From<Error> for Fail {
    fn from(error: Error) -> Self {
        Fail::Fatal(error)
    }
}

impl From<storage::Error> for Fail {
    fn from(error: storage::Error) -> Self {
        Fail::Fatal(error.into())
    }
}

pub(crate) type OpResult = std::result::Result<Reply, Fail>;

/// The state machine of one group of the Redis service, over the
/// service's RocksDB families (its spans of them: see
/// [`storage::keyspace`]).
pub struct KvStateMachine {
    store: Store,
    /// The group's shard: the prefix of its `kv_meta` and `kv_expiry` keys.
    shard: Shard,
    /// The hash slots the group owns.
    slots: Vec<RangeInclusive<u16>>,
    last_stamp_ms: u64,
    stats: Arc<crate::stats::Stats>,
    /// SCAN cursors of reads inside EXEC.
    cursors: Arc<CursorTable>,
    /// The replicated queue of blocked clients (a mirror of `kv_meta`).
    waiters: WaitQueue,
    /// This node's blocked clients, handed what each batch serves them.
    blocked: Arc<Blocked>,
    /// The Lua VM of the group's scripts, made by the first one.
    engine: Option<Engine>,
    /// What parses the scripts' commands.
    script_commands: Arc<ScriptCommandsSlot>,
    /// SWAPDB's logical → physical databases (a mirror of `kv_meta`).
    dbs: DbMap,
    /// What readers need to know of `dbs`.
    db_state: Arc<DbMapState>,
    /// Where each committed batch hands its keyspace events.
    key_events: Arc<KeyEvents>,
    /// The scripts this node found in every shard it holds.
    scripts_everywhere: Arc<StoredEverywhere>,
    /// The batch being written flushes this group's scripts.
    scripts_flushed: bool,
}

/// What an op needs besides the txn: SCAN cursors for EXEC's reads, the
/// database map (SWAPDB changes it, later commands use it), and the queue
/// of blocked clients (SWAPDB signals their keys).
pub(crate) struct Context<'a> {
    pub cursors: &'a CursorTable,
    pub dbs: &'a mut DbMap,
    pub waiters: &'a WaitQueue,
    /// The group's Lua VM, made by the first script.
    pub engine: &'a mut Option<Engine>,
    /// What parses a script's commands.
    pub commands: &'a ScriptCommandsSlot,
}

/// What every group's state machine on a node shares.
#[derive(Clone)]
pub struct NodeShared {
    pub stats: Arc<crate::stats::Stats>,
    /// SCAN cursors of reads inside EXEC.
    pub cursors: Arc<CursorTable>,
    /// This node's blocked clients.
    pub blocked: Arc<Blocked>,
    /// Where committed batches hand their keyspace events.
    pub key_events: Arc<KeyEvents>,
    /// What parses the commands of scripts.
    pub script_commands: Arc<ScriptCommandsSlot>,
    /// The scripts found in every shard the node holds.
    pub scripts_everywhere: Arc<StoredEverywhere>,
    /// Whether SWAPDB ever ran (only a single-shard service runs it).
    pub(crate) db_state: Arc<DbMapState>,
}

impl NodeShared {
    /// Fresh, for a node whose only blocked-client registry is `blocked`.
    pub fn new(blocked: Arc<Blocked>) -> NodeShared {
        NodeShared {
            stats: Arc::default(),
            cursors: Arc::default(),
            blocked,
            key_events: Arc::default(),
            script_commands: Arc::default(),
            scripts_everywhere: Arc::default(),
            db_state: Arc::default(),
        }
    }
}

impl KvStateMachine {
    /// Opens the state machine of group `shard`, which owns hash slots
    /// `slots`, stored in `store`.
    pub fn open(store: Store, shard: Shard, slots: Vec<RangeInclusive<u16>>, shared: NodeShared) -> Result<Self> {
        let NodeShared { stats, cursors, blocked, key_events, script_commands, scripts_everywhere, db_state } = shared;
        let last_stamp_ms = read_u64(&store, &kv_meta::last_stamp(shard))?;
        let waiters = WaitQueue::load(&store, shard)?;
        let dbs = DbMap::load(&store, shard)?;
        db_state.observe(&dbs);
        let machine = KvStateMachine {
            store,
            shard,
            slots,
            last_stamp_ms,
            stats,
            cursors,
            waiters,
            blocked,
            engine: None,
            script_commands,
            dbs,
            db_state,
            key_events,
            scripts_everywhere,
            scripts_flushed: false,
        };
        machine.publish_queue();
        Ok(machine)
    }

    /// Tells this node's registry what the replicated queue now holds.
    fn publish_queue(&self) {
        let earlier = self.waiters.of_other_boots(self.blocked.node(), self.blocked.boot());
        self.blocked.queue_applied(self.shard, self.waiters.len(), earlier);
    }

    /// The store the state machine lives in.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

impl StateMachine for KvStateMachine {
    type Error = Error;

    fn apply(&mut self, batch: &mut Batch, commands: Vec<Command>) -> Result<Vec<Bytes>> {
        let mut txn = txn::Txn::new(&self.store, self.shard, &self.slots, self.last_stamp_ms);
        if self.key_events.collect_changes() {
            txn.changed = Some(Vec::new());
        }
        let mut replies = Vec::with_capacity(commands.len());
        let mut deliveries = Vec::new();
        let queue_before = self.waiters.len();
        let mut queue_changed = false;
        for command in commands {
            let log_command = LogCommand::decode(&command.payload).map_err(|e| Error::Corrupt {
                family: "kv_raft_log",
                reason: format!("entry {}: {e}", command.index),
            })?;
            txn.now_ms = txn.now_ms.max(command.stamp_ms);
            txn.index = command.index;
            txn.record_signals(self.waiters.len() > 0);
            let logical = log_command.db;
            let db = self.dbs.physical(logical);
            let (notify, writer, op) = match log_command.op {
                WriteOp::Observed { notify, writer, op } => (notify, writer, *op),
                op => (NotifyFlags::default(), None, op),
            };
            txn.notify = notify;
            txn.writer = writer;
            txn.begin_op();
            let first_event = txn.events.len();
            queue_changed |=
                matches!(op, WriteOp::Block { .. } | WriteOp::Unblock { .. } | WriteOp::PurgeWaiters { .. });
            let result = match op {
                WriteOp::Block { keys, pop, waiter } => {
                    block::block(&mut txn, &mut self.waiters, db, logical, keys, pop, waiter)
                }
                WriteOp::Unblock { waiter } => block::unblock(&mut txn, &mut self.waiters, waiter),
                WriteOp::PurgeWaiters { node, keep_boot } => {
                    block::purge(&mut txn, &mut self.waiters, node, keep_boot, &mut deliveries)
                }
                op => {
                    let mut ctx = Context {
                        cursors: &self.cursors,
                        dbs: &mut self.dbs,
                        waiters: &self.waiters,
                        engine: &mut self.engine,
                        commands: &self.script_commands,
                    };
                    execute(&mut txn, &mut ctx, db, op)
                }
            };
            let reply = match result {
                Ok(reply) => reply,
                Err(Fail::User(error)) => Reply::Error(error),
                Err(Fail::Fatal(error)) => return Err(error),
            };
            if self.waiters.len() > 0 {
                block::serve_ready(&mut txn, &mut self.waiters, &self.dbs, &mut deliveries)?;
            }
            txn.take_misses();
            txn.notify = NotifyFlags::default();
            txn.writer = None;
            for event in &mut txn.events[first_event..] {
                event.db = self.dbs.logical(event.db);
            }
            queue_changed |= self.waiters.len() != queue_before;
            replies.push(reply.encode());
        }
        let now = txn.now_ms;
        let expired = txn.expired;
        self.scripts_flushed |= txn.scripts_flushed;
        let applied = Applied {
            shard: self.shard,
            served: false,
            events: std::mem::take(&mut txn.events),
            changed: txn.changed.take().unwrap_or_default(),
            flushed: txn.flushed_any,
        };
        txn.commit(batch, now)?;
        if !applied.events.is_empty() || !applied.changed.is_empty() || applied.flushed {
            self.key_events.emit(applied);
        }
        self.db_state.observe(&self.dbs);
        self.blocked.deliver(deliveries);
        if queue_changed {
            self.publish_queue();
        }
        self.last_stamp_ms = now;
        self.stats.expired_keys.fetch_add(expired, std::sync::atomic::Ordering::Relaxed);
        Ok(replies)
    }

    fn written(&mut self) {
        if std::mem::take(&mut self.scripts_flushed) {
            self.scripts_everywhere.clear();
        }
    }

    fn last_stamp_ms(&self) -> u64 {
        self.last_stamp_ms
    }

    fn reload(&mut self) -> Result<()> {
        // The snapshot's scripts replaced the group's.
        self.scripts_everywhere.clear();
        self.last_stamp_ms = read_u64(&self.store, &kv_meta::last_stamp(self.shard))?;
        self.waiters = WaitQueue::load(&self.store, self.shard)?;
        self.dbs = DbMap::load(&self.store, self.shard)?;
        self.db_state.observe(&self.dbs);
        self.publish_queue();
        // A snapshot replaced the state: any key may have changed, and no
        // batch reported it.
        self.key_events.emit(Applied { shard: self.shard, flushed: true, ..Applied::default() });
        Ok(())
    }

    fn state_spans(&self) -> Vec<Span> {
        kv_group::spans(self.shard, &self.slots, DATABASES as u8)
    }
}

/// The read path over the batch's txn: writes that first read like a read
/// command (EXEC's reads, SORT … STORE, the STORE forms of set and
/// sorted-set algebra) run the read code itself, seeing the batch's writes.
pub(crate) fn reading<'a>(txn: &'a txn::Txn<'_>, cursors: &'a CursorTable, db: u8) -> crate::read::ReadCtx<'a> {
    let shards = (txn.shard, txn.shard + 1);
    let slots = (0, storage::keyspace::SLOTS - 1);
    crate::read::ReadCtx {
        reader: txn,
        live: None,
        shards,
        slots,
        db,
        now_ms: txn.now_ms,
        stats: None,
        cursors,
        seed: None,
        misses: txn.misses(),
    }
}

fn execute(txn: &mut txn::Txn<'_>, ctx: &mut Context<'_>, db: u8, op: WriteOp) -> OpResult {
    let cursors = ctx.cursors;
    match op {
        WriteOp::Set { key, value, condition, expiry, reply } => {
            string::set(txn, db, key, value, condition, expiry, reply)
        }
        WriteOp::MSet { pairs, only_if_none_exist } => string::mset(txn, db, pairs, only_if_none_exist),
        WriteOp::GetDel { key } => string::getdel(txn, db, key),
        WriteOp::GetEx { key, expiry } => string::getex(txn, db, key, expiry),
        WriteOp::IncrBy { key, delta } => string::incr_by(txn, db, key, delta),
        WriteOp::IncrByFloat { key, delta } => string::incr_by_float(txn, db, key, delta),
        WriteOp::Append { key, value } => string::append(txn, db, key, value),
        WriteOp::SetRange { key, offset, value } => string::setrange(txn, db, key, offset, value),
        WriteOp::PfAdd { key, elements, sparse_max } => hll::pfadd(txn, db, key, elements, sparse_max),
        WriteOp::PfCount { key } => hll::pfcount(txn, db, key),
        WriteOp::PfMerge { dest, sources, sparse_max } => hll::pfmerge(txn, db, dest, sources, sparse_max),
        WriteOp::PfDebug { subcommand, key } => hll::pfdebug(txn, db, subcommand, key),
        WriteOp::Del { keys } => keys::del(txn, db, keys),
        WriteOp::Rename { from, to, only_if_absent } => keys::rename(txn, db, from, to, only_if_absent),
        WriteOp::Copy { from, to, to_db, replace } => keys::copy(txn, db, from, to, ctx.dbs.physical(to_db), replace),
        WriteOp::Expire { key, at, condition, command } => keys::expire(txn, db, key, at, condition, &command),
        WriteOp::Persist { key } => keys::persist(txn, db, key),
        WriteOp::FlushDb => keys::flush(txn, Some(db)),
        WriteOp::FlushAll => keys::flush(txn, None),
        WriteOp::ExpireDue { keys } => keys::expire_due(txn, keys),
        WriteOp::HSet { key, pairs, mode } => hash::hset(txn, db, key, pairs, mode),
        WriteOp::HDel { key, fields } => hash::hdel(txn, db, key, fields),
        WriteOp::HIncrBy { key, field, delta } => hash::hincrby(txn, db, key, field, delta),
        WriteOp::HIncrByFloat { key, field, delta } => hash::hincrbyfloat(txn, db, key, field, delta),
        WriteOp::LPush { key, values, end, only_if_exists } => list::push(txn, db, key, values, end, only_if_exists),
        WriteOp::LPop { key, end, count } => list::pop(txn, db, key, end, count),
        WriteOp::LPopFirst { keys, end, count, single } => list::pop_first(txn, db, keys, end, count, single),
        WriteOp::LMove { from, to, from_end, to_end } => list::lmove(txn, db, from, to, from_end, to_end),
        WriteOp::LSet { key, index, value } => list::lset(txn, db, key, index, value),
        WriteOp::LInsert { key, before, pivot, value } => list::linsert(txn, db, key, before, pivot, value),
        WriteOp::LRem { key, count, value } => list::lrem(txn, db, key, count, value),
        WriteOp::LTrim { key, start, stop } => list::ltrim(txn, db, key, start, stop),
        WriteOp::SAdd { key, members } => set::sadd(txn, db, key, members),
        WriteOp::SRem { key, members } => set::srem(txn, db, key, members),
        WriteOp::SPop { key, count, seed } => set::spop(txn, db, key, count, seed),
        WriteOp::SMove { from, to, member } => set::smove(txn, db, from, to, member),
        WriteOp::SStore { algebra, destination, keys } => set::store(txn, cursors, db, algebra, destination, keys),
        WriteOp::ZAdd { key, flags, pairs } => zset::zadd(txn, db, key, flags, pairs),
        WriteOp::ZRem { key, members } => zset::zrem(txn, db, key, members),
        WriteOp::ZRemRange { key, spec } => zset::zremrange(txn, db, key, spec),
        WriteOp::ZPop { key, max, count } => zset::zpop(txn, db, key, max, count),
        WriteOp::ZPopFirst { keys, max, count, shape } => zset::zpop_first(txn, db, keys, max, count, shape),
        WriteOp::ZStore { destination, keys, weights, combine, aggregate } => {
            let result = reading(txn, cursors, db).combined(&keys, &weights, combine, aggregate)??;
            let event = match combine {
                Combine::Union => "zunionstore",
                Combine::Inter => "zinterstore",
                Combine::Diff => "zdiffstore",
            };
            zset::zstore(txn, db, destination, result, event)
        }
        WriteOp::ZRangeStore { destination, source, range } => zset::zrangestore(txn, db, destination, source, range),
        WriteOp::GeoSearchStore { destination, source, search, store_distance, georadius } => {
            let found = reading(txn, cursors, db).geo_matches(&source, &search)??;
            let scored = found.into_iter().map(|m| (m.member, if store_distance { m.distance } else { m.score }));
            let event = if georadius { "georadiusstore" } else { "geosearchstore" };
            zset::zstore(txn, db, destination, scored.collect(), event)
        }
        WriteOp::SetBit { key, offset, value } => bits::setbit(txn, db, key, offset, value),
        WriteOp::BitOp { operation, destination, keys } => bits::bitop(txn, db, operation, destination, keys),
        WriteOp::BitField { key, ops } => bits::bitfield(txn, db, key, ops),
        WriteOp::Move { key, to_db } => keys::move_key(txn, db, key, ctx.dbs.physical(to_db)),
        WriteOp::Restore { key, ttl_ms, absolute, replace, payload } => {
            keys::restore(txn, db, key, ttl_ms, absolute, replace, &payload)
        }
        WriteOp::SortStore { key, options, destination } => {
            list::sort_store(txn, cursors, db, key, options, destination)
        }
        WriteOp::XAdd { key, id, fields, no_mkstream, trim } => {
            stream::xadd(txn, db, key, id, fields, no_mkstream, trim)
        }
        WriteOp::XDel { key, ids } => stream::xdel(txn, db, key, ids),
        WriteOp::XTrim { key, trim } => stream::xtrim(txn, db, key, trim),
        WriteOp::XSetId { key, last_id, entries_added, max_deleted } => {
            stream::xsetid(txn, db, key, last_id, entries_added, max_deleted)
        }
        WriteOp::XGroup { key, group, command } => stream_group::xgroup(txn, db, key, group, command),
        WriteOp::XReadGroup { group, consumer, keys, ids, count, noack } => {
            stream_group::xreadgroup(txn, db, &group, &consumer, &keys, &ids, count, noack)
        }
        WriteOp::XAck { key, group, ids } => stream_group::xack(txn, db, key, group, ids),
        WriteOp::XClaim { key, group, consumer, args } => stream_group::xclaim(txn, db, key, group, consumer, args),
        WriteOp::XAutoClaim { key, group, consumer, min_idle, start, count, justid } => {
            stream_group::xautoclaim(txn, db, key, group, consumer, min_idle, start, count, justid)
        }
        WriteOp::Eval { script: source, keys, args, seed, budget, read_only } => {
            let run = script::Run { keys, args, seed, budget, read_only };
            script::eval(txn, ctx, db, source, run)
        }
        WriteOp::ScriptLoad { body } => script::load(txn, ctx, body),
        WriteOp::ScriptFlush => script::flush(txn, ctx),
        // A library's code runs at load, up to its budget: off the
        // pipeline's worker, so the node's other groups go on.
        WriteOp::FunctionLoad { code, replace, budget } => {
            raft::run_blocking(|| function::load(txn, ctx, code, replace, budget))
        }
        WriteOp::FunctionDelete { library } => function::delete(txn, ctx, library),
        WriteOp::FunctionFlush => function::flush(txn, ctx),
        WriteOp::FunctionRestore { payload, policy, budget } => {
            raft::run_blocking(|| function::restore(txn, ctx, payload, policy, budget))
        }
        WriteOp::FCall { function, keys, args, seed, budget, read_only } => {
            let run = script::Run { keys, args, seed, budget, read_only };
            function::fcall(txn, ctx, db, function, run)
        }
        WriteOp::Exec { watched, commands } => exec::exec(txn, ctx, watched, commands),
        WriteOp::SwapDb { a, b } => keys::swapdb(txn, ctx, a, b),
        // The entry's flags are already in force (`KvStateMachine::apply`).
        WriteOp::Observed { op, .. } => execute(txn, ctx, db, *op),
        // A connection runs blocking commands inside MULTI in their
        // non-blocking form; the blocked-client ops are never queued.
        WriteOp::Block { .. } | WriteOp::Unblock { .. } | WriteOp::PurgeWaiters { .. } => {
            Err(CommandError::Other("ERR blocked-client operations cannot run inside MULTI".into()).into())
        }
    }
}
