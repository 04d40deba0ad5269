//! The kv state machine on real RocksDB: determinism, restart, invariants.
//!
//! The tests drive [`KvStateMachine`] as the Raft group does: commands with
//! log indexes and leader stamps, each batch's changes written as one
//! RocksDB batch.

use std::ops::RangeInclusive;
use std::sync::Arc;

use bytes::Bytes;
use kv::{
    Blocked, End, ExpireAt, ExpireCondition, KvStateMachine, LogCommand, NodeShared, QueuedCommand, ReadOp, Reply,
    SetCondition, SetExpiry, SetReply, TxnStep, WatchedKey, WriteOp,
};
use raft::{Command, StateMachine};
use rand::{Rng, SeedableRng};
use storage::keyspace::{kv_data, kv_expiry, kv_group, kv_meta, Span, SLOTS};
use storage::{Batch, Durability, Family, Layout, Reader, Service, Storage, Store};

const START_MS: u64 = 1_700_000_000_000;

fn key(i: u64) -> Bytes {
    tagged("", i)
}

/// Key `i` after `tag` (a `{hash tag}` puts every key in one slot).
fn tagged(tag: &str, i: u64) -> Bytes {
    Bytes::from(format!("{tag}key:{i}"))
}

/// A command with the stamp its leader gave it.
#[derive(Clone)]
struct Stamped {
    stamp_ms: u64,
    command: LogCommand,
}

/// A seeded stream of writes over a small keyspace, with TTLs, flushes and
/// MULTI/EXEC transactions whose WATCH may or may not hold.
fn random_ops(seed: u64, count: usize) -> Vec<Stamped> {
    random_tagged_ops(seed, count, "")
}

/// [`random_ops`] over keys starting with `tag`.
fn random_tagged_ops(seed: u64, count: usize, tag: &str) -> Vec<Stamped> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut stamp = START_MS;
    (0..count as u64)
        .map(|position| {
            stamp += rng.random_range(0..200);
            let db = rng.random_range(0..3);
            let op = if rng.random_range(0..10) == 0 {
                let index = position + 1;
                let watched = (0..rng.random_range(0..3))
                    .map(|_| WatchedKey {
                        db,
                        key: tagged(tag, rng.random_range(0..20)),
                        observed_index: index.saturating_sub(rng.random_range(1..30)),
                        existed: rng.random_bool(0.5),
                    })
                    .collect();
                let commands = (0..rng.random_range(0..4))
                    .map(|_| {
                        let step = match rng.random_range(0..3) {
                            0 => TxnStep::Read(ReadOp::Get { key: tagged(tag, rng.random_range(0..20)) }),
                            _ => TxnStep::Write(random_op(&mut rng, tag)),
                        };
                        QueuedCommand { db: rng.random_range(0..3), step }
                    })
                    .collect();
                WriteOp::Exec { watched, commands }
            } else {
                random_op(&mut rng, tag)
            };
            Stamped { stamp_ms: stamp, command: LogCommand { db, op } }
        })
        .collect()
}

/// A list element: short, or now and then longer than a list chunk keeps
/// inline.
fn element(rng: &mut impl Rng) -> Bytes {
    match rng.random_range(0..20) {
        0 => Bytes::from(vec![b'b'; 600]),
        n => Bytes::from(format!("e{}", n % 6)),
    }
}

fn random_list_op(rng: &mut impl Rng, k: Bytes) -> WriteOp {
    let end = if rng.random_bool(0.5) { End::Left } else { End::Right };
    match rng.random_range(0..8) {
        0..=2 => WriteOp::LPush {
            key: k,
            values: (0..rng.random_range(1..80)).map(|_| element(rng)).collect(),
            end,
            only_if_exists: false,
        },
        3 => WriteOp::LPop { key: k, end, count: rng.random_bool(0.5).then(|| rng.random_range(0..40)) },
        4 => WriteOp::LTrim { key: k, start: rng.random_range(-50..50), stop: rng.random_range(-50..50) },
        5 => WriteOp::LInsert { key: k, before: rng.random_bool(0.5), pivot: element(rng), value: element(rng) },
        6 => WriteOp::LRem { key: k, count: rng.random_range(-3..3), value: element(rng) },
        _ => WriteOp::LSet { key: k, index: rng.random_range(-40..40), value: element(rng) },
    }
}

fn random_op(rng: &mut impl Rng, tag: &str) -> WriteOp {
    let k = tagged(tag, rng.random_range(0..20));
    if rng.random_bool(0.25) {
        return random_list_op(rng, k);
    }
    match rng.random_range(0..100) {
        0..=29 => WriteOp::Set {
            key: k,
            value: Bytes::from(rng.random_range(0..1000).to_string()),
            condition: [SetCondition::Always, SetCondition::IfAbsent, SetCondition::IfPresent][rng.random_range(0..3)],
            expiry: [SetExpiry::Clear, SetExpiry::Keep, SetExpiry::AfterMs(rng.random_range(1..2000))]
                [rng.random_range(0..3)],
            reply: SetReply::Ok,
        },
        30..=44 => WriteOp::IncrBy { key: k, delta: rng.random_range(-5..5) },
        45..=54 => WriteOp::Del { keys: vec![k, tagged(tag, rng.random_range(0..20))] },
        55..=69 => WriteOp::Expire {
            key: k,
            at: ExpireAt::AfterMs(rng.random_range(-100..3000)),
            condition: ExpireCondition::Always,
            command: "pexpire".into(),
        },
        70..=77 => WriteOp::Persist { key: k },
        78..=85 => WriteOp::Rename { from: k, to: tagged(tag, rng.random_range(0..20)), only_if_absent: false },
        86..=91 => WriteOp::Copy {
            from: k,
            to: tagged(tag, rng.random_range(0..20)),
            to_db: rng.random_range(0..3),
            replace: true,
        },
        92..=95 => WriteOp::Append { key: k, value: Bytes::from_static(b"x") },
        96..=97 => WriteOp::MSet {
            pairs: vec![(k.clone(), Bytes::from_static(b"m")), (k, Bytes::from_static(b"n"))],
            only_if_none_exist: false,
        },
        98 => WriteOp::SwapDb { a: rng.random_range(0..3), b: rng.random_range(0..3) },
        _ => WriteOp::FlushDb,
    }
}

fn open(dir: &std::path::Path) -> (Storage, KvStateMachine) {
    let storage = Storage::open(dir, Layout::Shared).unwrap();
    let machine = group(&storage, 0, vec![0..=SLOTS - 1]);
    (storage, machine)
}

/// The state machine of group `shard`, owning `slots`, in `storage`.
fn group(storage: &Storage, shard: u32, slots: Vec<RangeInclusive<u16>>) -> KvStateMachine {
    let store = storage.store(Service::Kv);
    let blocked = Arc::new(Blocked::new(1));
    KvStateMachine::open(store, shard, slots, NodeShared::new(blocked)).unwrap()
}

/// Applies `commands` in batches of `batch`, writing each batch as the
/// group does.
fn apply_all(machine: &mut KvStateMachine, commands: &[Stamped], batch: usize) -> Vec<Reply> {
    apply_from(machine, commands, batch, 1)
}

/// [`apply_all`], the first command at log index `first_index`.
fn apply_from(machine: &mut KvStateMachine, commands: &[Stamped], batch: usize, first_index: u64) -> Vec<Reply> {
    let mut replies = Vec::new();
    for (chunk_number, chunk) in commands.chunks(batch).enumerate() {
        let first = (chunk_number * batch) as u64 + first_index;
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, c)| Command {
                index: first + i as u64,
                stamp_ms: c.stamp_ms,
                payload: Bytes::from(c.command.encode()),
            })
            .collect();
        let mut write = Batch::new();
        let encoded = machine.apply(&mut write, entries).unwrap();
        machine.store().write(write, Durability::Sync).unwrap();
        replies.extend(encoded.iter().map(|bytes| Reply::decode(bytes).unwrap()));
    }
    replies
}

/// Every key and value of the state-machine families.
fn dump(store: &Store) -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for &family in Service::Kv.state_families() {
        for entry in store.scan(family, &[], None) {
            let (k, v) = entry.unwrap();
            out.push((family.name(), k.to_vec(), v.to_vec()));
        }
    }
    out
}

#[test]
fn the_same_log_gives_the_same_bytes_whatever_the_batching() {
    let commands = random_ops(7, 2_000);
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a_storage, mut a) = open(a_dir.path());
    let (b_storage, mut b) = open(b_dir.path());
    let a_replies = apply_all(&mut a, &commands, 1);
    let b_replies = apply_all(&mut b, &commands, 97);
    assert_eq!(a_replies, b_replies);
    assert_eq!(dump(&a_storage.store(Service::Kv)), dump(&b_storage.store(Service::Kv)));
}

/// The entries of `spans` in `store`.
fn dump_spans(store: &Store, spans: &[Span]) -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for span in spans {
        for entry in store.scan(span.family, &span.start, Some(&span.end)) {
            let (k, v) = entry.unwrap();
            out.push((span.family.name(), k.to_vec(), v.to_vec()));
        }
    }
    out
}

/// Two groups sharing the service's families, each over keys of its own
/// slots, write exactly what each writes alone, within its own spans
/// (flushes and SWAPDB included), and their spans hold every key stored.
#[test]
fn groups_sharing_the_families_keep_to_their_spans() {
    // "{b}…" keys are in slot 3300, "{a}…" keys in slot 15495.
    let halves = [(0, vec![0..=SLOTS / 2 - 1], "{b}", 5), (1, vec![SLOTS / 2..=SLOTS - 1], "{a}", 6)];
    let dir = tempfile::tempdir().unwrap();
    let shared = Storage::open(dir.path(), Layout::Shared).unwrap();
    let mut alone = Vec::new();
    let mut machines: Vec<_> =
        halves.iter().map(|(shard, slots, _, _)| group(&shared, *shard, slots.clone())).collect();
    let streams: Vec<_> = halves.iter().map(|(_, _, tag, seed)| random_tagged_ops(*seed, 1_500, tag)).collect();
    for (chunk, _) in streams[0].chunks(100).enumerate() {
        for (machine, stream) in machines.iter_mut().zip(&streams) {
            apply_from(machine, &stream[chunk * 100..(chunk + 1) * 100], 25, chunk as u64 * 100 + 1);
        }
    }
    for ((shard, slots, _, _), stream) in halves.iter().zip(&streams) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), Layout::Shared).unwrap();
        apply_all(&mut group(&storage, *shard, slots.clone()), stream, 25);
        alone.push((dir, storage));
    }
    let store = shared.store(Service::Kv);
    let mut in_spans = 0;
    for ((shard, slots, _, _), (_, storage)) in halves.iter().zip(&alone) {
        let spans = kv_group::spans(*shard, slots, 16);
        let own = dump_spans(&store, &spans);
        assert!(own.len() > 50, "group {shard} stores its keys: {}", own.len());
        assert_eq!(own, dump_spans(&storage.store(Service::Kv), &spans), "group {shard} as if alone");
        in_spans += own.len();
    }
    assert_eq!(in_spans, dump(&store).len(), "every stored key is in one group's spans");
}

/// A group's shard changes where its keys live (prefixes, versions), never
/// what a command answers.
#[test]
fn the_shard_changes_no_reply() {
    let commands = random_ops(13, 2_000);
    let replies: Vec<Vec<Reply>> = [0, 2]
        .map(|shard| {
            let dir = tempfile::tempdir().unwrap();
            let storage = Storage::open(dir.path(), Layout::Shared).unwrap();
            apply_all(&mut group(&storage, shard, vec![0..=SLOTS - 1]), &commands, 50)
        })
        .into();
    assert_eq!(replies[0], replies[1]);
}

#[test]
fn counters_and_the_expiry_index_match_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, mut machine) = open(dir.path());
    apply_all(&mut machine, &random_ops(11, 3_000), 50);
    let store = storage.store(Service::Kv);
    for db in 0..3u8 {
        let (start, end) = kv_data::db_range(db);
        let mut keys = 0u64;
        let mut expiring = Vec::new();
        for entry in store.scan(Family::KvData, &start, Some(&end)) {
            let (raw_key, raw_value) = entry.unwrap();
            keys += 1;
            let at = u64::from_be_bytes(raw_value[1..9].try_into().unwrap());
            if at != 0 {
                let (_, _, user_key) = kv_data::decode(&raw_key).unwrap();
                expiring.push(kv_expiry::key(0, db, at, user_key));
            }
        }
        expiring.sort();
        let (start, end) = kv_expiry::db_range(0, db);
        let index: Vec<Vec<u8>> =
            store.scan(Family::KvExpiry, &start, Some(&end)).map(|e| e.unwrap().0.to_vec()).collect();
        assert_eq!(index, expiring, "db {db}: the expiry index has exactly the expiring records");
        let count = |name: Vec<u8>| {
            store.get(Family::KvMeta, &name).unwrap().map_or(0, |v| u64::from_be_bytes(v.try_into().unwrap()))
        };
        assert_eq!(count(kv_meta::key_count(0, db)), keys, "db {db} key count");
        assert_eq!(count(kv_meta::expires_count(0, db)), expiring.len() as u64, "db {db} expires count");
    }
}

#[test]
fn restart_and_reload_recover_the_last_stamp() {
    let dir = tempfile::tempdir().unwrap();
    let commands = random_ops(3, 100);
    let last_stamp = commands.last().unwrap().stamp_ms;
    {
        let (_storage, mut machine) = open(dir.path());
        apply_all(&mut machine, &commands, 10);
        assert_eq!(machine.last_stamp_ms(), last_stamp);
    }
    let (_storage, mut machine) = open(dir.path());
    assert_eq!(machine.last_stamp_ms(), last_stamp);
    machine.reload().unwrap();
    assert_eq!(machine.last_stamp_ms(), last_stamp);
}

#[test]
fn a_reload_reports_that_every_key_may_have_changed() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path(), Layout::Shared).unwrap();
    let shared = NodeShared::new(Arc::new(Blocked::new(1)));
    let mut changes = shared.key_events.subscribe();
    let mut machine = KvStateMachine::open(storage.store(Service::Kv), 2, vec![0..=SLOTS - 1], shared).unwrap();
    machine.reload().unwrap();
    let applied = changes.try_recv().expect("a reload reports");
    assert!(applied.flushed && applied.shard == 2, "{applied:?}");
}

#[test]
fn a_corrupt_entry_is_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let (_storage, mut machine) = open(dir.path());
    let garbage = Command { index: 1, stamp_ms: START_MS, payload: Bytes::from_static(&[0xff, 0xff, 0xff]) };
    assert!(matches!(machine.apply(&mut Batch::new(), vec![garbage]), Err(kv::Error::Corrupt { .. })));
}

#[test]
fn user_errors_are_replies_and_the_batch_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (_storage, mut machine) = open(dir.path());
    let set = |value: &'static str| WriteOp::Set {
        key: Bytes::from_static(b"k"),
        value: Bytes::from_static(value.as_bytes()),
        condition: SetCondition::Always,
        expiry: SetExpiry::Clear,
        reply: SetReply::Ok,
    };
    let commands = [
        set("text"),
        WriteOp::IncrBy { key: Bytes::from_static(b"k"), delta: 1 },
        set("41"),
        WriteOp::IncrBy { key: Bytes::from_static(b"k"), delta: 1 },
    ];
    let commands: Vec<Stamped> =
        commands.into_iter().map(|op| Stamped { stamp_ms: START_MS, command: LogCommand { db: 0, op } }).collect();
    let replies = apply_all(&mut machine, &commands, 4);
    assert_eq!(replies, vec![Reply::ok(), Reply::Error(kv::CommandError::NotInteger), Reply::ok(), Reply::Int(42)]);
}

#[test]
fn time_never_runs_backwards_across_stamps() {
    let dir = tempfile::tempdir().unwrap();
    let (_storage, mut machine) = open(dir.path());
    let set_px = Stamped {
        stamp_ms: START_MS + 10_000,
        command: LogCommand {
            db: 0,
            op: WriteOp::Set {
                key: Bytes::from_static(b"k"),
                value: Bytes::from_static(b"v"),
                condition: SetCondition::Always,
                expiry: SetExpiry::AfterMs(1_000),
                reply: SetReply::Ok,
            },
        },
    };
    // A later entry stamped by a clock that went back must not revive time.
    let late_clock = Stamped {
        stamp_ms: START_MS,
        command: LogCommand {
            db: 0,
            op: WriteOp::Expire {
                key: Bytes::from_static(b"k"),
                at: ExpireAt::AfterMs(500),
                condition: ExpireCondition::Always,
                command: "pexpire".into(),
            },
        },
    };
    let dir_store = apply_and_store(&mut machine, &[set_px, late_clock]);
    assert_eq!(machine.last_stamp_ms(), START_MS + 10_000);
    let record = dir_store.get(Family::KvData, &kv_data::key(0, b"k")).unwrap().expect("key exists");
    let expire_at = u64::from_be_bytes(record[1..9].try_into().unwrap());
    assert_eq!(expire_at, START_MS + 10_000 + 500, "PEXPIRE resolved against the later of the two stamps");
}

fn apply_and_store(machine: &mut KvStateMachine, commands: &[Stamped]) -> Store {
    apply_all(machine, commands, commands.len());
    machine.store().clone()
}

/// List chunks hold exactly each list: LRANGE returns LLEN elements, and
/// the elements stored on their own are exactly the big elements of the
/// live lists, none left behind by pops, trims, rewrites, deletes, renames
/// or copies.
#[test]
fn list_chunks_hold_exactly_the_lists() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(21);
    let mut ops: Vec<Stamped> = (0..3_000)
        .map(|_| {
            let k = key(rng.random_range(0..8));
            let op = match rng.random_range(0..20) {
                0 => WriteOp::Del { keys: vec![k] },
                1 => WriteOp::Rename { from: k, to: key(rng.random_range(0..8)), only_if_absent: false },
                2 => WriteOp::Copy {
                    from: k,
                    to: key(rng.random_range(0..8)),
                    to_db: rng.random_range(0..2),
                    replace: true,
                },
                _ => random_list_op(&mut rng, k),
            };
            Stamped { stamp_ms: 1, command: LogCommand { db: rng.random_range(0..2), op } }
        })
        .collect();
    let queries = (0..2u8)
        .flat_map(|db| (0..8).map(move |i| (db, key(i))))
        .flat_map(|(db, key)| {
            [ReadOp::LLen { key: key.clone() }, ReadOp::LRange { key, start: 0, stop: -1 }]
                .map(|read| QueuedCommand { db, step: TxnStep::Read(read) })
        })
        .collect();
    let exec = WriteOp::Exec { watched: Vec::new(), commands: queries };
    ops.push(Stamped { stamp_ms: 1, command: LogCommand { db: 0, op: exec } });
    let dir = tempfile::tempdir().unwrap();
    let (storage, mut machine) = open(dir.path());
    let replies = apply_all(&mut machine, &ops, 40);
    let Some(Reply::Array(results)) = replies.last() else { panic!("EXEC answered {:?}", replies.last()) };
    let mut big = 0;
    for pair in results.chunks(2) {
        let Reply::Int(len) = pair[0] else { panic!("LLEN answered {:?}", pair[0]) };
        let lengths = match &pair[1] {
            Reply::Bulks { lengths, .. } => lengths.clone(),
            Reply::Array(items) if items.is_empty() => Vec::new(),
            other => panic!("LRANGE answered {other:?}"),
        };
        assert_eq!(lengths.len() as i64, len, "LRANGE 0 -1 returns LLEN elements");
        big += lengths.iter().filter(|length| **length > 512).count();
    }
    assert!(big > 0, "the workload stores big elements");
    // `kv_elements` keys are `db | version (8) | sub-key`; a list element
    // stored on its own has the sub-key `1 | position (8)`.
    let store = storage.store(Service::Kv);
    let stored = store.scan(Family::KvElements, &[], None).map(|e| e.unwrap().0).filter(|k| k.len() == 18 && k[9] == 1);
    assert_eq!(stored.count(), big, "big elements stored on their own");
}
