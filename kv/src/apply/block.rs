//! Blocking pops at apply: queueing a client that found nothing, serving
//! queued clients once a command gives their keys data, and removing the
//! ones that leave (see `crate::blocking` for the whole life).
//!
//! Serving follows Redis 7.0's `handleClientsBlockedOnKeys`: the keys a
//! command created (or gave another type) are ready, in the order it did;
//! each ready key serves its waiters in the order they blocked, each with
//! its own pop from that key, skipping waiters for another type, until the
//! key is gone. Keys that serving creates (a BLMOVE destination) are ready
//! in the next round. Everything happens in the command's own apply, so
//! the next command already sees the served state.

use bytes::Bytes;

use super::txn::Txn;
use super::waiters::{WaitQueue, Waiter};
use super::{list, reading, stream, stream_group, zset, Fail, OpResult};
use crate::blocking::Delivery;
use crate::command::{BlockingPop, WaiterId};
use crate::cursors::CursorTable;
use crate::dbmap::DbMap;
use crate::error::{CommandError, Result};
use crate::record::KeyType;
use crate::reply::Reply;

/// How many entries a blocked XREAD without COUNT gets at most (Redis's
/// `XREAD_BLOCKED_DEFAULT_COUNT`).
const XREAD_BLOCKED_COUNT: u64 = 1000;

/// `WriteOp::Block`: the pop's reply if a key has data (or an error);
/// else queues the client (under its `logical` database; `db` is where
/// that is stored) and answers [`Reply::Blocked`].
pub(super) fn block(
    txn: &mut Txn<'_>,
    queue: &mut WaitQueue,
    db: u8,
    logical: u8,
    keys: Vec<Bytes>,
    pop: BlockingPop,
    id: WaiterId,
) -> OpResult {
    let reply = pop_first(txn, db, keys.clone(), &pop)?;
    if !matches!(reply, Reply::Nil | Reply::NilArray) {
        return Ok(reply);
    }
    let pop = match pop {
        // `$` means the entries added from now on.
        BlockingPop::Stream { ids, count } => {
            let mut resolved = Vec::with_capacity(ids.len());
            for (key, id) in keys.iter().zip(ids) {
                resolved.push(match id.as_ref() {
                    b"$" => Bytes::from(stream::last_id(txn, db, key)?.to_string()),
                    _ => id,
                });
            }
            BlockingPop::Stream { ids: resolved, count }
        }
        pop => pop,
    };
    queue.push(txn, Waiter { id, db: logical, keys, pop });
    Ok(Reply::Blocked)
}

/// `WriteOp::Unblock`: 1 if the client was still queued (now removed),
/// 0 if a write served it, or a purge removed it, first.
pub(super) fn unblock(txn: &mut Txn<'_>, queue: &mut WaitQueue, id: WaiterId) -> OpResult {
    let removed = queue.position(&id).and_then(|seq| queue.remove(txn, seq));
    Ok(Reply::Int(i64::from(removed.is_some())))
}

/// `WriteOp::PurgeWaiters`: removes `node`'s waiters of other boots than
/// `keep_boot`; answers how many.
pub(super) fn purge(
    txn: &mut Txn<'_>,
    queue: &mut WaitQueue,
    node: u64,
    keep_boot: Option<u64>,
    deliveries: &mut Vec<(WaiterId, Delivery)>,
) -> OpResult {
    let seqs = queue.of_node(node, keep_boot);
    for seq in &seqs {
        if let Some(waiter) = queue.remove(txn, *seq) {
            deliveries.push((waiter.id, Delivery::Purged));
        }
    }
    Ok(Reply::Int(seqs.len() as i64))
}

/// Serves every queued client that the keys signaled since the last call
/// can serve, in Redis's order (module docs); their replies go to
/// `deliveries`.
pub(super) fn serve_ready(
    txn: &mut Txn<'_>,
    queue: &mut WaitQueue,
    dbs: &DbMap,
    deliveries: &mut Vec<(WaiterId, Delivery)>,
) -> Result<()> {
    let mut ready = ready_keys(txn, queue, dbs, &[]);
    while !ready.is_empty() {
        let round = std::mem::take(&mut ready);
        for (db, key) in &round {
            serve_key(txn, queue, dbs, *db, key, deliveries)?;
            let more = ready_keys(txn, queue, dbs, &ready);
            ready.extend(more);
        }
    }
    Ok(())
}

/// The signaled keys that clients wait on, by logical database, each once
/// and not already in `pending`.
fn ready_keys(txn: &mut Txn<'_>, queue: &WaitQueue, dbs: &DbMap, pending: &[(u8, Bytes)]) -> Vec<(u8, Bytes)> {
    let signals = txn.take_signals().into_iter().map(|(db, key)| (dbs.logical(db), key));
    signals.filter(|(db, key)| queue.has_waiters(*db, key) && !pending.contains(&(*db, key.clone()))).collect()
}

/// Serves the clients waiting on `key` of logical database `logical`,
/// first blocked first, while it holds data of their type.
fn serve_key(
    txn: &mut Txn<'_>,
    queue: &mut WaitQueue,
    dbs: &DbMap,
    logical: u8,
    key: &Bytes,
    deliveries: &mut Vec<(WaiterId, Delivery)>,
) -> Result<()> {
    let db = dbs.physical(logical);
    for seq in queue.waiting_on(logical, key) {
        let kind = txn.get(db, key)?.map(|record| record.kind);
        let Some(waiter) = queue.get(seq) else { continue };
        let reply = match serve_waiter(txn, db, key, kind, waiter) {
            Ok(None) => continue,
            Ok(Some(reply)) => reply,
            Err(Fail::User(error)) => Reply::Error(error),
            Err(Fail::Fatal(error)) => return Err(error),
        };
        if let Some(waiter) = queue.remove(txn, seq) {
            deliveries.push((waiter.id, Delivery::Served(reply)));
        }
    }
    Ok(())
}

/// What `waiter` gets from `key`, now of type `kind` (`None`: deleted),
/// if it is served.
fn serve_waiter(
    txn: &mut Txn<'_>,
    db: u8,
    key: &Bytes,
    kind: Option<KeyType>,
    waiter: &Waiter,
) -> std::result::Result<Option<Reply>, Fail> {
    let Some(kind) = kind else {
        return match waiter.pop {
            BlockingPop::Group { .. } => Err(stream_key_gone()),
            _ => Ok(None),
        };
    };
    let blocked_count = |count: u64| if count == 0 { XREAD_BLOCKED_COUNT } else { count };
    match &waiter.pop {
        // A stream read takes nothing: one client served or not, the next
        // may be.
        BlockingPop::Stream { ids, count } if kind == KeyType::Stream => {
            let at = waiter.keys.iter().position(|k| k == key).expect("a waiter waits on its keys");
            let pop = BlockingPop::Stream { ids: vec![ids[at].clone()], count: blocked_count(*count) };
            Ok(Some(pop_first(txn, db, vec![key.clone()], &pop)?).filter(|reply| *reply != Reply::NilArray))
        }
        BlockingPop::Group { .. } if kind != KeyType::Stream => Err(stream_key_gone()),
        BlockingPop::Group { group, consumer, count, noack, .. } => {
            stream_group::serve_blocked(txn, db, key, group, consumer, blocked_count(*count), *noack)
        }
        pop if pop.served_by(kind) => Ok(Some(pop_first(txn, db, vec![key.clone()], pop)?)),
        _ => Ok(None),
    }
}

/// What a client blocked in XREADGROUP gets when its stream is deleted or
/// replaced by another type.
fn stream_key_gone() -> Fail {
    CommandError::Other("UNBLOCKED the stream key no longer exists".into()).into()
}

/// The non-blocking form of `pop` over `keys`: from the first that has
/// data; nil if none.
fn pop_first(txn: &mut Txn<'_>, db: u8, mut keys: Vec<Bytes>, pop: &BlockingPop) -> OpResult {
    match pop.clone() {
        BlockingPop::List { end, count, single } => list::pop_first(txn, db, keys, end, count, single),
        BlockingPop::Move { to, from_end, to_end } => {
            let from = keys.swap_remove(0);
            list::lmove(txn, db, from, to, from_end, to_end)
        }
        BlockingPop::ZSet { max, count, shape } => zset::zpop_first(txn, db, keys, max, count, shape),
        BlockingPop::Stream { ids, count } => Ok(reading(txn, &CursorTable::default(), db).xread(&keys, &ids, count)?),
        BlockingPop::Group { group, consumer, ids, count, noack } => {
            stream_group::xreadgroup(txn, db, &group, &consumer, &keys, &ids, count, noack)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use raft::{Command, StateMachine};
    use storage::{Batch, Durability, Layout, Service, Storage};

    use super::*;
    use crate::blocking::Blocked;
    use crate::command::{End, LogCommand, PopShape, QueuedCommand, TxnStep, WriteOp, ZAddFlags};
    use crate::{KvStateMachine, NodeShared};

    struct Machine {
        _dir: tempfile::TempDir,
        _storage: Storage,
        machine: KvStateMachine,
        blocked: Arc<Blocked>,
        index: u64,
    }

    impl Machine {
        fn new() -> Machine {
            let dir = tempfile::tempdir().unwrap();
            let storage = Storage::open(dir.path(), Layout::Shared).unwrap();
            let blocked = Arc::new(Blocked::new(1));
            let machine = KvStateMachine::open(
                storage.store(Service::Kv),
                0,
                vec![0..=storage::keyspace::SLOTS - 1],
                NodeShared::new(blocked.clone()),
            )
            .unwrap();
            Machine { _dir: dir, _storage: storage, machine, blocked, index: 0 }
        }

        /// Applies `ops` in one batch and writes it, as the group does.
        fn apply(&mut self, ops: Vec<WriteOp>) -> Vec<Reply> {
            let commands = ops
                .into_iter()
                .map(|op| {
                    self.index += 1;
                    let payload = bytes::Bytes::from(LogCommand { db: 0, op }.encode());
                    Command { index: self.index, stamp_ms: 1_700_000_000_000, payload }
                })
                .collect();
            let mut batch = Batch::new();
            let replies = self.machine.apply(&mut batch, commands).unwrap();
            self.machine.store().write(batch, Durability::Buffered).unwrap();
            replies.iter().map(|reply| Reply::decode(reply).unwrap()).collect()
        }
    }

    fn b(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    fn zadd(key: &str, members: &[&str]) -> WriteOp {
        let pairs = members.iter().enumerate().map(|(i, m)| (i as f64 + 1.0, b(m))).collect();
        WriteOp::ZAdd { key: b(key), flags: ZAddFlags::default(), pairs }
    }

    fn exec(ops: Vec<WriteOp>) -> WriteOp {
        let commands = ops.into_iter().map(|op| QueuedCommand { db: 0, step: TxnStep::Write(op) }).collect();
        WriteOp::Exec { watched: Vec::new(), commands }
    }

    fn bzmpop(max: bool, count: u64) -> BlockingPop {
        BlockingPop::ZSet { max, count, shape: PopShape::Nested }
    }

    fn pair(member: &str, score: f64) -> Reply {
        Reply::Array(vec![Reply::Bulk(b(member)), Reply::Double(score)])
    }

    #[tokio::test]
    async fn one_transaction_serves_every_client_it_can_in_the_order_they_blocked() {
        let mut m = Machine::new();
        let blocked = m.blocked.clone();
        let pops = [bzmpop(false, 1), bzmpop(true, 10), bzmpop(false, 10), bzmpop(true, 1)];
        let mut clients = Vec::new();
        for pop in pops {
            let registration = blocked.register();
            let block = WriteOp::Block { keys: vec![b("z1"), b("z2")], pop, waiter: registration.id };
            assert_eq!(m.apply(vec![block]), vec![Reply::Blocked]);
            clients.push(registration);
        }
        let replies = m.apply(vec![
            exec(vec![zadd("z1", &["a", "b", "c", "d", "e"]), zadd("z2", &["f", "g", "h", "i", "j"])]),
            WriteOp::ZAdd { key: b("probe"), flags: ZAddFlags::default(), pairs: vec![(1.0, b("x"))] },
        ]);
        assert_eq!(replies[1], Reply::Int(1));
        let served = |key: &str, members: Vec<Reply>| {
            Delivery::Served(Reply::Array(vec![Reply::Bulk(b(key)), Reply::Array(members)]))
        };
        let expected = [
            served("z1", vec![pair("a", 1.0)]),
            served("z1", vec![pair("e", 5.0), pair("d", 4.0), pair("c", 3.0), pair("b", 2.0)]),
            served("z2", (0..5).map(|i| pair(["f", "g", "h", "i", "j"][i], i as f64 + 1.0)).collect()),
        ];
        let mut fourth = clients.pop().unwrap();
        for (mut client, expected) in clients.into_iter().zip(expected) {
            assert_eq!((&mut client.delivery).await.unwrap(), expected);
        }
        assert!(fourth.delivery.try_recv().is_err(), "z1 and z2 are empty: the fourth client still waits");
        m.apply(vec![zadd("z2", &["k", "l"])]);
        assert_eq!((&mut fourth.delivery).await.unwrap(), served("z2", vec![pair("l", 2.0)]));
        assert_eq!(m.machine.waiters.len(), 0);
    }

    #[tokio::test]
    async fn a_key_that_changes_type_in_the_same_transaction_serves_nobody() {
        let mut m = Machine::new();
        let blocked = m.blocked.clone();
        let mut client = blocked.register();
        let pop = BlockingPop::List { end: End::Left, count: 1, single: true };
        m.apply(vec![WriteOp::Block { keys: vec![b("k")], pop, waiter: client.id }]);
        let push = WriteOp::LPush { key: b("k"), values: vec![b("x")], end: End::Left, only_if_exists: false };
        let set = WriteOp::Set {
            key: b("k"),
            value: b("foo"),
            condition: crate::command::SetCondition::Always,
            expiry: crate::command::SetExpiry::Clear,
            reply: crate::command::SetReply::Ok,
        };
        m.apply(vec![exec(vec![push.clone(), WriteOp::Del { keys: vec![b("k")] }, set])]);
        assert!(client.delivery.try_recv().is_err(), "a string never serves a list pop");
        m.apply(vec![WriteOp::Del { keys: vec![b("k")] }, push]);
        assert_eq!(
            (&mut client.delivery).await.unwrap(),
            Delivery::Served(Reply::Array(vec![Reply::Bulk(b("k")), Reply::Bulk(b("x"))]))
        );
    }

    #[tokio::test]
    async fn a_blmove_chain_serves_the_destination_s_clients_in_the_same_apply() {
        let mut m = Machine::new();
        let blocked = m.blocked.clone();
        let mut mover = blocked.register();
        let mut popper = blocked.register();
        let moving = BlockingPop::Move { to: b("dst"), from_end: End::Right, to_end: End::Left };
        let popping = BlockingPop::List { end: End::Left, count: 1, single: true };
        m.apply(vec![
            WriteOp::Block { keys: vec![b("src")], pop: moving, waiter: mover.id },
            WriteOp::Block { keys: vec![b("dst")], pop: popping, waiter: popper.id },
        ]);
        let push = WriteOp::LPush { key: b("src"), values: vec![b("job")], end: End::Left, only_if_exists: false };
        let replies = m.apply(vec![push, WriteOp::LPop { key: b("dst"), end: End::Left, count: None }]);
        assert_eq!(replies[1], Reply::Nil, "the chain ran before the next command");
        assert_eq!((&mut mover.delivery).await.unwrap(), Delivery::Served(Reply::Bulk(b("job"))));
        assert_eq!(
            (&mut popper.delivery).await.unwrap(),
            Delivery::Served(Reply::Array(vec![Reply::Bulk(b("dst")), Reply::Bulk(b("job"))]))
        );
    }

    #[tokio::test]
    async fn unblock_and_purge_leave_nobody_to_serve() {
        let mut m = Machine::new();
        let blocked = m.blocked.clone();
        let gone = blocked.register();
        let crashed = WaiterId { node: 2, boot: 7, token: 0 };
        let restarted = WaiterId { node: 2, boot: 8, token: 0 };
        let pop = || BlockingPop::List { end: End::Left, count: 1, single: true };
        let replies = m.apply(vec![
            WriteOp::Block { keys: vec![b("q")], pop: pop(), waiter: gone.id },
            WriteOp::Block { keys: vec![b("q")], pop: pop(), waiter: crashed },
            WriteOp::Block { keys: vec![b("q")], pop: pop(), waiter: restarted },
            WriteOp::Unblock { waiter: gone.id },
            WriteOp::Unblock { waiter: gone.id },
            WriteOp::PurgeWaiters { node: 2, keep_boot: Some(8) },
        ]);
        assert_eq!(replies[3..], [Reply::Int(1), Reply::Int(0), Reply::Int(1)]);
        assert_eq!(m.machine.waiters.len(), 1);
        // The queue survives a reopen: it lives in kv_meta.
        m.machine.reload().unwrap();
        assert_eq!(m.machine.waiters.position(&restarted), Some(2));
        let push = WriteOp::LPush { key: b("q"), values: vec![b("x")], end: End::Left, only_if_exists: false };
        assert_eq!(m.apply(vec![push, WriteOp::LPop { key: b("q"), end: End::Left, count: None }])[1], Reply::Nil);
        assert_eq!(m.machine.waiters.len(), 0);
    }
}
