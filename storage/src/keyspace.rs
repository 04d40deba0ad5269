//! The keyspace: every column family and every key shape Seshat writes.
//!
//! This module is the single source of truth for on-disk keys. Keys are
//! order-preserving: integers are big-endian so that byte order is numeric
//! order, and a prefix groups what is scanned together.
//!
//! # Families of the `kv` service (the Redis frontend)
//!
//! | family        | key                                   | value |
//! |---------------|---------------------------------------|-------|
//! | `kv_raft_log` | `shard: u32, index: u64`, see [`raft_log`] | a serialized log entry (owned by the `raft` crate) |
//! | `kv_raft_meta`| `shard: u32`, ASCII name, see [`raft_meta`] | the group's vote, committed log id, last purged log id |
//! | `kv_meta`     | `shard: u32`, ASCII name, see [`kv_meta`] and [`raft_state`] | state-machine metadata: applied log id, membership, client sessions, last time stamp, per-db key counts |
//! | `kv_data`     | `db: u8, slot: u16, user key`         | the key's record: type, expiry, modification index, value or collection header (format owned by `kv`) |
//! | `kv_expiry`   | `shard: u32, db: u8, expire_at_ms: u64, slot: u16, user key` | empty; an index of keys with a TTL, in expiry order |
//! | `kv_elements` | `db: u8, version: u64, sub-key`, see [`kv_elements`] | one element of a hash, list, set or sorted set |
//! | `kv_scores`   | `db: u8, version: u64, score: u64 (order-preserving f64), member` | empty; a sorted set's members in score order |
//!
//! # Families of the `sql` service (the PostgreSQL frontend)
//!
//! | family          | key                          | value |
//! |-----------------|------------------------------|-------|
//! | `sql_raft_log`  | as `kv_raft_log`             | as `kv_raft_log` |
//! | `sql_raft_meta` | as `kv_raft_meta`            | as `kv_raft_meta` |
//! | `sql_meta`      | `raft_state` keys of shard 0, and the SQL service's counters (ASCII names) | owned by `sql` |
//! | `sql_catalog`   | table descriptors and names  | owned by `sql` |
//! | `sql_rows`      | `table id: u32`, primary key | a row |
//! | `sql_index`     | `index id: u32`, indexed values, primary key | empty |
//!
//! # Families of the `meta` service (the metadata group)
//!
//! | family           | key                     | value |
//! |------------------|-------------------------|-------|
//! | `meta_raft_log`  | as `kv_raft_log`        | as `kv_raft_log` |
//! | `meta_raft_meta` | as `kv_raft_meta`       | as `kv_raft_meta` |
//! | `meta_state`     | `raft_state` keys of shard 0, and the cluster map (see [`meta_state`]) | owned by `kv::meta_group` |
//!
//! The SQL key shapes are defined in the `sql` crate (`sql::keys`), on the
//! order-preserving encoding described there; storage only lists the
//! families.
//!
//! The hash slot is Redis Cluster's: CRC16 (XMODEM) of the key, or of the
//! text inside the first non-empty `{…}` (the hash tag), modulo 16384. It is
//! part of every key from day one so that a slot's keys are one contiguous
//! range per database and can move between shards by range scan.
//!
//! # Groups sharing families
//!
//! A service runs one Raft group per shard (`kv/0`, `kv/1`, …), and its
//! groups share the service's families. The raft log and raft meta
//! families are the *log side* of a group: every key starts with the
//! group's [`group_prefix`] (its shard, `u32` big-endian), so one group's
//! log is one key range. Every other family of a service is its *state
//! side* ([`Service::state_families`]); a group's state is a list of
//! [`Span`]s of them ([`kv_group::spans`] for the Redis service, whole
//! families for the single SQL group): what a Raft snapshot of the group
//! carries and what installing one replaces. For the Redis service:
//! - `kv_meta` and `kv_expiry` keys start with the group prefix;
//! - `kv_data` keys are the group's hash slots, one range per database and
//!   slot range;
//! - `kv_elements` and `kv_scores` keys are the group's collection versions
//!   (a shard allocates versions from `shard << 40` on, see
//!   [`kv_elements::first_version`]), one range per database.
//!
//! No key of a state family starts with the byte `0xff`, so `[] .. [0xff]`
//! spans a whole family ([`FAMILY_SPAN_END`]).
//!
//! A collection's elements live under its *version*, a number allocated
//! once per collection from a counter in `kv_meta` and never reused. The
//! record in `kv_data` names the live version, so deleting, overwriting or
//! expiring a collection of any size rewrites one record and adds one range
//! deletion of the old version's elements, which RocksDB reclaims in
//! background compaction; RENAME moves the record and keeps the elements.
//!
//! `kv_expiry` is exact, not a hint: every record with an expiry has exactly
//! one index entry and no other entries exist; the state machine keeps both in
//! the same write batch.

use std::ops::RangeInclusive;

use crc::{Crc, CRC_16_XMODEM};

/// Number of Redis Cluster hash slots.
pub const SLOTS: u16 = 16384;

/// A shard of a service: the group `<service>/<shard>`.
pub type Shard = u32;

/// The first bytes of every key of group `shard` in the families its
/// service's groups share by prefix (see the module docs).
pub fn group_prefix(shard: Shard) -> [u8; 4] {
    shard.to_be_bytes()
}

/// A key of group `shard`: its prefix followed by `parts`.
fn group_key(shard: Shard, parts: &[&[u8]]) -> Vec<u8> {
    let mut key = Vec::with_capacity(4 + parts.iter().map(|part| part.len()).sum::<usize>());
    key.extend_from_slice(&group_prefix(shard));
    for part in parts {
        key.extend_from_slice(part);
    }
    key
}

/// The smallest key greater than every key starting with `prefix` (the
/// family's end if there is none).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    FAMILY_SPAN_END.to_vec()
}

/// The keys `[start, end)` of one family: a piece of a group's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub family: Family,
    pub start: Vec<u8>,
    pub end: Vec<u8>,
}

impl Span {
    /// Every key of `family`.
    pub fn whole(family: Family) -> Span {
        Span { family, start: Vec::new(), end: FAMILY_SPAN_END.to_vec() }
    }

    /// Every key of `family` that starts with `prefix`.
    pub fn prefix(family: Family, prefix: &[u8]) -> Span {
        Span { family, start: prefix.to_vec(), end: prefix_end(prefix) }
    }

    /// Whether `key` lies in the span.
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.start.as_slice() && key < self.end.as_slice()
    }
}

/// A service whose families live in one RocksDB instance (per layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// The Redis service.
    Kv,
    /// The SQL service.
    Sql,
    /// The metadata group: the cluster's nodes and shards.
    Meta,
}

impl Service {
    /// Every service, in a stable order.
    pub const ALL: [Service; 3] = [Service::Kv, Service::Sql, Service::Meta];

    /// The service's name: its directory in the isolated layout and the
    /// prefix of its families.
    pub fn name(self) -> &'static str {
        match self {
            Service::Kv => "kv",
            Service::Sql => "sql",
            Service::Meta => "meta",
        }
    }

    /// The families that belong to this service.
    pub fn families(self) -> &'static [Family] {
        match self {
            Service::Kv => &[
                Family::KvRaftLog,
                Family::KvRaftMeta,
                Family::KvMeta,
                Family::KvData,
                Family::KvExpiry,
                Family::KvElements,
                Family::KvScores,
            ],
            Service::Sql => &[
                Family::SqlRaftLog,
                Family::SqlRaftMeta,
                Family::SqlMeta,
                Family::SqlCatalog,
                Family::SqlRows,
                Family::SqlIndex,
            ],
            Service::Meta => &[Family::MetaRaftLog, Family::MetaRaftMeta, Family::MetaState],
        }
    }

    /// The family holding the service's Raft log.
    pub fn raft_log_family(self) -> Family {
        match self {
            Service::Kv => Family::KvRaftLog,
            Service::Sql => Family::SqlRaftLog,
            Service::Meta => Family::MetaRaftLog,
        }
    }

    /// The family holding the service's Raft vote and log pointers.
    pub fn raft_meta_family(self) -> Family {
        match self {
            Service::Kv => Family::KvRaftMeta,
            Service::Sql => Family::SqlRaftMeta,
            Service::Meta => Family::MetaRaftMeta,
        }
    }

    /// The families holding the service's state machine: the content of a
    /// snapshot. The first one also holds the [`raft_state`] keys.
    pub fn state_families(self) -> &'static [Family] {
        match self {
            Service::Kv => &[Family::KvMeta, Family::KvData, Family::KvExpiry, Family::KvElements, Family::KvScores],
            Service::Sql => &[Family::SqlMeta, Family::SqlCatalog, Family::SqlRows, Family::SqlIndex],
            Service::Meta => &[Family::MetaState],
        }
    }

    /// The family holding the [`raft_state`] keys.
    pub fn state_meta_family(self) -> Family {
        self.state_families()[0]
    }
}

/// The exclusive end of every key of a state family (see the module docs).
pub const FAMILY_SPAN_END: &[u8] = &[0xff];

/// A column family. See the module docs for what each holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    KvRaftLog,
    KvRaftMeta,
    KvMeta,
    KvData,
    KvExpiry,
    KvElements,
    KvScores,
    SqlRaftLog,
    SqlRaftMeta,
    SqlMeta,
    SqlCatalog,
    SqlRows,
    SqlIndex,
    MetaRaftLog,
    MetaRaftMeta,
    MetaState,
}

impl Family {
    /// Every family.
    pub const ALL: [Family; 16] = [
        Family::KvRaftLog,
        Family::KvRaftMeta,
        Family::KvMeta,
        Family::KvData,
        Family::KvExpiry,
        Family::KvElements,
        Family::KvScores,
        Family::SqlRaftLog,
        Family::SqlRaftMeta,
        Family::SqlMeta,
        Family::SqlCatalog,
        Family::SqlRows,
        Family::SqlIndex,
        Family::MetaRaftLog,
        Family::MetaRaftMeta,
        Family::MetaState,
    ];

    /// The family named `name` (see [`Family::name`]).
    pub fn from_name(name: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|family| family.name() == name)
    }

    /// The RocksDB column family name.
    pub fn name(self) -> &'static str {
        match self {
            Family::KvRaftLog => "kv_raft_log",
            Family::KvRaftMeta => "kv_raft_meta",
            Family::KvMeta => "kv_meta",
            Family::KvData => "kv_data",
            Family::KvExpiry => "kv_expiry",
            Family::KvElements => "kv_elements",
            Family::KvScores => "kv_scores",
            Family::SqlRaftLog => "sql_raft_log",
            Family::SqlRaftMeta => "sql_raft_meta",
            Family::SqlMeta => "sql_meta",
            Family::SqlCatalog => "sql_catalog",
            Family::SqlRows => "sql_rows",
            Family::SqlIndex => "sql_index",
            Family::MetaRaftLog => "meta_raft_log",
            Family::MetaRaftMeta => "meta_raft_meta",
            Family::MetaState => "meta_state",
        }
    }

    /// Whether the family is read key by key (a service's state, Raft's
    /// metadata), where bloom filters pay, rather than only in ranges (a
    /// Raft log).
    pub fn is_read_by_key(self) -> bool {
        !matches!(self, Family::KvRaftLog | Family::SqlRaftLog | Family::MetaRaftLog)
    }

    /// Whether the family holds keys rewritten over and over (counters,
    /// pointers, sessions), bounded in number, rather than a service's
    /// data.
    pub fn is_rewritten_in_place(self) -> bool {
        matches!(
            self,
            Family::KvRaftMeta
                | Family::KvMeta
                | Family::SqlRaftMeta
                | Family::SqlMeta
                | Family::MetaRaftMeta
                | Family::MetaState
        )
    }

    /// The service that owns this family.
    pub fn service(self) -> Service {
        match self {
            Family::KvRaftLog
            | Family::KvRaftMeta
            | Family::KvMeta
            | Family::KvData
            | Family::KvExpiry
            | Family::KvElements
            | Family::KvScores => Service::Kv,
            Family::SqlRaftLog
            | Family::SqlRaftMeta
            | Family::SqlMeta
            | Family::SqlCatalog
            | Family::SqlRows
            | Family::SqlIndex => Service::Sql,
            Family::MetaRaftLog | Family::MetaRaftMeta | Family::MetaState => Service::Meta,
        }
    }
}

/// The shard that owns hash slot `slot` when the slots are divided evenly
/// among `shards` shards (see [`shard_slots`]).
pub fn slot_shard(slot: u16, shards: Shard) -> Shard {
    (u64::from(slot) * u64::from(shards) / u64::from(SLOTS)) as Shard
}

/// The hash slots of shard `shard` of `shards` when the slots are divided
/// evenly: consecutive ranges in shard order, sizes differing by at most
/// one.
pub fn shard_slots(shard: Shard, shards: Shard) -> RangeInclusive<u16> {
    let first = |shard: Shard| (u64::from(shard) * u64::from(SLOTS)).div_ceil(u64::from(shards));
    first(shard) as u16..=(first(shard + 1) - 1) as u16
}

/// The Redis Cluster hash slot of `key`.
pub fn hash_slot(key: &[u8]) -> u16 {
    const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_XMODEM);
    CRC16.checksum(hash_tag(key)) % SLOTS
}

/// The part of `key` that is hashed: the content of the first `{…}` if it is
/// non-empty, else the whole key.
fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&b| b == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// Keys of a raft log family: the group's prefix, then the entry's index.
pub mod raft_log {
    use super::{group_prefix, Shard};

    /// The key of group `shard`'s entry at `index`: big-endian, so that key
    /// order is log order within the group.
    pub fn key(shard: Shard, index: u64) -> [u8; 12] {
        let mut key = [0u8; 12];
        key[..4].copy_from_slice(&group_prefix(shard));
        key[4..].copy_from_slice(&index.to_be_bytes());
        key
    }

    /// The index of a log key.
    pub fn decode(key: &[u8]) -> Option<u64> {
        Some(u64::from_be_bytes(key.get(4..)?.try_into().ok()?))
    }
}

/// Keys in a raft meta family: the group's prefix, then an ASCII name.
/// Values are serialized by `raft`, but for [`raft_meta::SHARDS`].
pub mod raft_meta {
    use super::{group_key, Shard};

    /// How many shards (groups) of the service this data dir holds: `u32`
    /// big-endian, written by the service at its first start. Its prefix is
    /// that of shard `u32::MAX`, which no group has.
    pub const SHARDS: &[u8] = b"\xff\xff\xff\xffshards";

    /// This node's name in the Redis Cluster protocol (CLUSTER MYID): 40
    /// lowercase hex digits, drawn at the service's first start.
    pub const CLUSTER_NAME: &[u8] = b"\xff\xff\xff\xffcluster_name";

    /// The last vote granted or held.
    pub fn vote(shard: Shard) -> Vec<u8> {
        group_key(shard, &[b"vote"])
    }

    /// The last committed log id known to this node.
    pub fn committed(shard: Shard) -> Vec<u8> {
        group_key(shard, &[b"committed"])
    }

    /// The last purged log id (every entry up to it is gone).
    pub fn purged(shard: Shard) -> Vec<u8> {
        group_key(shard, &[b"purged"])
    }
}

/// Raft's keys in a service's state meta family ([`Service::state_meta_family`]),
/// written in the same batch as the state they describe, under the group's
/// prefix (so they are part of the group's state spans). Values are
/// serialized by `raft`.
pub mod raft_state {
    use super::{group_key, prefix_end, Shard};

    /// What a session key has after the group's prefix, before the client.
    const SESSIONS: &[u8] = b"raft/session/";

    /// The id of the last applied log entry.
    pub fn applied(shard: Shard) -> Vec<u8> {
        group_key(shard, &[b"raft/applied"])
    }

    /// The last applied membership configuration.
    pub fn membership(shard: Shard) -> Vec<u8> {
        group_key(shard, &[b"raft/membership"])
    }

    /// The prefix of the group's client sessions (exactly-once writes).
    pub fn session_prefix(shard: Shard) -> Vec<u8> {
        group_key(shard, &[SESSIONS])
    }

    /// The key of the session of `client`.
    pub fn session(shard: Shard, client: u64) -> Vec<u8> {
        group_key(shard, &[SESSIONS, &client.to_be_bytes()])
    }

    /// The exclusive end of the session keys.
    pub fn session_end(shard: Shard) -> Vec<u8> {
        prefix_end(&session_prefix(shard))
    }
}

/// Keys in `kv_meta`: the group's prefix, then an ASCII name (and, for
/// some, a database and a slot).
pub mod kv_meta {
    use super::{group_key, group_prefix, prefix_end, Shard};

    /// The largest leader time stamp applied: `u64` big-endian milliseconds.
    pub fn last_stamp(shard: Shard) -> Vec<u8> {
        group_key(shard, &[b"last_stamp"])
    }

    /// The number of the group's keys in database `db`: `u64` big-endian.
    pub fn key_count(shard: Shard, db: u8) -> Vec<u8> {
        group_key(shard, &[b"keys/", &[db]])
    }

    /// The number of the group's keys with an expiry in database `db`:
    /// `u64` big-endian.
    pub fn expires_count(shard: Shard, db: u8) -> Vec<u8> {
        group_key(shard, &[b"expires/", &[db]])
    }

    /// If `key` is one of the group's per-database counters
    /// ([`key_count`] or [`expires_count`]): its database, and whether it
    /// counts keys (`true`) or expiries.
    pub fn decode_counter(shard: Shard, key: &[u8]) -> Option<(u8, bool)> {
        let rest = key.strip_prefix(&group_prefix(shard)[..])?;
        let (keys, db) = if let Some(db) = rest.strip_prefix(b"keys/") {
            (true, db)
        } else {
            (false, rest.strip_prefix(b"expires/")?)
        };
        match db {
            [db] => Some((*db, keys)),
            _ => None,
        }
    }

    /// The next collection version to allocate: `u64` big-endian.
    pub fn next_version(shard: Shard) -> Vec<u8> {
        group_key(shard, &[b"next_version"])
    }

    /// The log index of the last deletion of a key of hash slot `slot` in
    /// `db`: `u64` big-endian (WATCH's evidence that an absent key was
    /// created and deleted again).
    pub fn slot_deleted(shard: Shard, db: u8, slot: u16) -> Vec<u8> {
        let [high, low] = slot.to_be_bytes();
        group_key(shard, &[b"deleted/", &[db, high, low]])
    }

    /// The log index of the last creation of a key of hash slot `slot` in
    /// `db`: `u64` big-endian (with [`flushed`], WATCH's evidence that an
    /// absent key existed when a flush removed it).
    pub fn slot_created(shard: Shard, db: u8, slot: u16) -> Vec<u8> {
        let [high, low] = slot.to_be_bytes();
        group_key(shard, &[b"created/", &[db, high, low]])
    }

    /// The log index of the last FLUSHDB or FLUSHALL that emptied the
    /// group's part of `db`.
    pub fn flushed(shard: Shard, db: u8) -> Vec<u8> {
        group_key(shard, &[b"flushed/", &[db]])
    }

    /// A client blocked on keys (BLPOP and friends), by its position in
    /// the order clients blocked (`seq: u64` big-endian); the value (the
    /// waiter: db, keys, what it pops, who it is) is encoded by `kv`.
    pub fn waiter(shard: Shard, seq: u64) -> Vec<u8> {
        group_key(shard, &[b"waiter/", &seq.to_be_bytes()])
    }

    /// The range `[start, end)` of the group's [`waiter`] keys.
    pub fn waiters(shard: Shard) -> (Vec<u8>, Vec<u8>) {
        let prefix = group_key(shard, &[b"waiter/"]);
        let end = prefix_end(&prefix);
        (prefix, end)
    }

    /// The position the next blocked client gets: `u64` big-endian.
    pub fn next_waiter(shard: Shard) -> Vec<u8> {
        group_key(shard, &[b"next_waiter"])
    }

    /// SWAPDB's map: 16 bytes, the physical database of each logical one
    /// (absent: the identity).
    pub fn db_map(shard: Shard) -> Vec<u8> {
        group_key(shard, &[b"db_map"])
    }

    /// The log index of the last SWAPDB of logical database `db` (WATCH's
    /// evidence that every key of it may have changed).
    pub fn swapped(shard: Shard, db: u8) -> Vec<u8> {
        group_key(shard, &[b"swapped/", &[db]])
    }

    /// The body of a Lua script (SCRIPT LOAD, EVAL) by its SHA1 digest,
    /// 40 lower-case hex digits.
    pub fn script(shard: Shard, sha: &[u8]) -> Vec<u8> {
        group_key(shard, &[SCRIPTS, sha])
    }

    /// The range `[start, end)` of the group's [`script`] keys.
    pub fn scripts(shard: Shard) -> (Vec<u8>, Vec<u8>) {
        name_range(shard, SCRIPTS)
    }

    /// The range `[start, end)` of the group's keys named `prefix…`.
    fn name_range(shard: Shard, prefix: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let start = group_key(shard, &[prefix]);
        let end = prefix_end(&start);
        (start, end)
    }

    const SCRIPTS: &[u8] = b"script/";

    /// A function library (FUNCTION LOAD) by name: its code and the
    /// functions it registered, encoded by `kv`.
    pub fn library(shard: Shard, name: &[u8]) -> Vec<u8> {
        group_key(shard, &[LIBRARIES, name])
    }

    /// The range `[start, end)` of the group's [`library`] keys.
    pub fn libraries(shard: Shard) -> (Vec<u8>, Vec<u8>) {
        name_range(shard, LIBRARIES)
    }

    /// The library of function `name` (FCALL's lookup).
    pub fn function(shard: Shard, name: &[u8]) -> Vec<u8> {
        group_key(shard, &[FUNCTIONS, name])
    }

    /// The range `[start, end)` of the group's [`function`] keys.
    pub fn functions(shard: Shard) -> (Vec<u8>, Vec<u8>) {
        name_range(shard, FUNCTIONS)
    }

    const LIBRARIES: &[u8] = b"library/";
    const FUNCTIONS: &[u8] = b"function/";
}

/// Keys of `kv_elements` and `kv_scores`: `db, version, …`.
///
/// In `kv_elements` the rest is the element's sub-key: a hash field, a set
/// or sorted-set member, or a list position (`u64` big-endian). In
/// `kv_scores` it is the score ([`score_bits`]) then the member.
pub mod kv_elements {
    use super::Shard;

    /// Bits of a version below the shard that allocated it.
    const SHARD_SHIFT: u32 = 40;

    /// The first version of shard `shard`'s range: versions are unique
    /// across the service's groups, so that a group's elements are one
    /// range per database and never collide with another group's.
    pub fn first_version(shard: Shard) -> u64 {
        u64::from(shard) << SHARD_SHIFT
    }

    /// The prefix of every element of collection `version` in `db`.
    pub fn prefix(db: u8, version: u64) -> [u8; 9] {
        let mut prefix = [0u8; 9];
        prefix[0] = db;
        prefix[1..].copy_from_slice(&version.to_be_bytes());
        prefix
    }

    /// The key of sub-key `sub` of collection `version` in `db`.
    pub fn key(db: u8, version: u64, sub: &[u8]) -> Vec<u8> {
        let mut key = Vec::with_capacity(9 + sub.len());
        key.extend_from_slice(&prefix(db, version));
        key.extend_from_slice(sub);
        key
    }

    /// The range `[start, end)` holding every element of the collection.
    pub fn range(db: u8, version: u64) -> (Vec<u8>, Vec<u8>) {
        (prefix(db, version).to_vec(), prefix(db, version + 1).to_vec())
    }

    /// The range `[start, end)` holding every element of every collection
    /// of shard `shard` in `db`.
    pub fn shard_range(db: u8, shard: Shard) -> (Vec<u8>, Vec<u8>) {
        let end = match shard.checked_add(1) {
            Some(next) => prefix(db, first_version(next)).to_vec(),
            None => vec![db + 1],
        };
        (prefix(db, first_version(shard)).to_vec(), end)
    }

    /// The sub-key of an element key.
    pub fn sub_key(key: &[u8]) -> &[u8] {
        key.get(9..).unwrap_or_default()
    }

    /// A score as 8 bytes whose byte order is the numeric order of the
    /// doubles (-inf first, +inf last; -0.0 sorts just before 0.0).
    pub fn score_bits(score: f64) -> [u8; 8] {
        let bits = score.to_bits();
        let ordered = if bits >> 63 == 1 { !bits } else { bits | (1 << 63) };
        ordered.to_be_bytes()
    }

    /// The inverse of [`score_bits`].
    pub fn score_from_bits(bytes: [u8; 8]) -> f64 {
        let ordered = u64::from_be_bytes(bytes);
        let bits = if ordered >> 63 == 1 { ordered & !(1 << 63) } else { !ordered };
        f64::from_bits(bits)
    }
}

/// Keys of `kv_data`: `db, slot, user key`.
pub mod kv_data {
    use super::hash_slot;

    /// The record key of `user_key` in database `db`.
    pub fn key(db: u8, user_key: &[u8]) -> Vec<u8> {
        let mut key = Vec::with_capacity(3 + user_key.len());
        key.push(db);
        key.extend_from_slice(&hash_slot(user_key).to_be_bytes());
        key.extend_from_slice(user_key);
        key
    }

    /// The first key of database `db` (inclusive) and of the next database
    /// (exclusive): the range that holds all of `db`.
    pub fn db_range(db: u8) -> (Vec<u8>, Vec<u8>) {
        let next = db.checked_add(1).expect("database numbers are small");
        (vec![db], vec![next])
    }

    /// The range `[start, end)` of the records of slots `first ..= last`
    /// in `db`.
    pub fn slots_range(db: u8, first: u16, last: u16) -> (Vec<u8>, Vec<u8>) {
        let start = [db, (first >> 8) as u8, first as u8].to_vec();
        let end = match last.checked_add(1) {
            Some(next) => [db, (next >> 8) as u8, next as u8].to_vec(),
            None => vec![db + 1],
        };
        (start, end)
    }

    /// Splits a record key into `(db, slot, user key)`.
    pub fn decode(key: &[u8]) -> Option<(u8, u16, &[u8])> {
        if key.len() < 3 {
            return None;
        }
        Some((key[0], u16::from_be_bytes([key[1], key[2]]), &key[3..]))
    }
}

/// Keys of `kv_expiry`: `shard, db, expire_at_ms, slot, user key`.
pub mod kv_expiry {
    use super::{group_prefix, hash_slot, Shard};

    /// Bytes before the user key.
    const HEAD: usize = 4 + 1 + 8 + 2;

    /// The index key for `user_key` in `db` of group `shard`, expiring at
    /// `expire_at_ms`.
    pub fn key(shard: Shard, db: u8, expire_at_ms: u64, user_key: &[u8]) -> Vec<u8> {
        let mut key = Vec::with_capacity(HEAD + user_key.len());
        key.extend_from_slice(&group_prefix(shard));
        key.push(db);
        key.extend_from_slice(&expire_at_ms.to_be_bytes());
        key.extend_from_slice(&hash_slot(user_key).to_be_bytes());
        key.extend_from_slice(user_key);
        key
    }

    /// The range of the group's index keys of `db`.
    pub fn db_range(shard: Shard, db: u8) -> (Vec<u8>, Vec<u8>) {
        let mut start = group_prefix(shard).to_vec();
        start.push(db);
        let mut end = group_prefix(shard).to_vec();
        end.push(db + 1);
        (start, end)
    }

    /// The range of the group's index keys of `db` that expire at or
    /// before `now_ms`.
    pub fn due_range(shard: Shard, db: u8, now_ms: u64) -> (Vec<u8>, Vec<u8>) {
        let (start, _) = db_range(shard, db);
        let mut end = start.clone();
        end.extend_from_slice(&now_ms.saturating_add(1).to_be_bytes());
        (start, end)
    }

    /// Splits an index key into `(db, expire_at_ms, user key)`.
    pub fn decode(key: &[u8]) -> Option<(u8, u64, &[u8])> {
        if key.len() < HEAD {
            return None;
        }
        let at = u64::from_be_bytes(key[5..13].try_into().ok()?);
        Some((key[4], at, &key[HEAD..]))
    }
}

/// The state of one group of the Redis service: which spans of its
/// families it owns (see the module docs).
/// Keys of the `meta_state` family besides the metadata group's
/// [`raft_state`] keys (which start with shard 0's prefix, `00 00 00 00`).
pub mod meta_state {
    /// The cluster map: nodes, shards and the configuration epoch.
    pub const MAP: &[u8] = b"map";
}

pub mod kv_group {
    use super::{group_prefix, kv_data, kv_elements, kv_expiry, Family, RangeInclusive, Shard, Span};

    /// The spans holding group `shard`'s part of database `db`: its
    /// records, expiry index, elements and scores (not its `kv_meta`).
    pub fn db_spans(shard: Shard, slots: &[RangeInclusive<u16>], db: u8) -> Vec<Span> {
        let mut spans = Vec::with_capacity(slots.len() + 3);
        for range in slots {
            let (start, end) = kv_data::slots_range(db, *range.start(), *range.end());
            spans.push(Span { family: Family::KvData, start, end });
        }
        let (start, end) = kv_expiry::db_range(shard, db);
        spans.push(Span { family: Family::KvExpiry, start, end });
        for family in [Family::KvElements, Family::KvScores] {
            let (start, end) = kv_elements::shard_range(db, shard);
            spans.push(Span { family, start, end });
        }
        spans
    }

    /// Every span of group `shard`, which owns hash slots `slots`, over
    /// `databases` databases, in family order then key order (the order a
    /// snapshot lists them in).
    pub fn spans(shard: Shard, slots: &[RangeInclusive<u16>], databases: u8) -> Vec<Span> {
        let mut spans = vec![Span::prefix(Family::KvMeta, &group_prefix(shard))];
        let per_db: Vec<Span> = (0..databases).flat_map(|db| db_spans(shard, slots, db)).collect();
        for family in [Family::KvData, Family::KvExpiry, Family::KvElements, Family::KvScores] {
            spans.extend(per_db.iter().filter(|span| span.family == family).cloned());
        }
        spans
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_slot_matches_redis_cluster() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(hash_slot(b"123456789"), 0x31C3 % SLOTS);
        assert_eq!(hash_slot(b"foo"), 12182);
        assert_eq!(hash_slot(b"bar"), 5061);
        assert_eq!(hash_slot(b"{user1000}.following"), hash_slot(b"user1000"));
        assert_eq!(hash_slot(b"{user1000}.followers"), hash_slot(b"user1000"));
        // An empty tag hashes the whole key; only the first tag counts.
        let whole_key = Crc::<u16>::new(&CRC_16_XMODEM).checksum(b"foo{}{bar}") % SLOTS;
        assert_eq!(hash_slot(b"foo{}{bar}"), whole_key);
        assert_ne!(hash_slot(b"foo{}{bar}"), hash_slot(b"bar"));
        assert_eq!(hash_slot(b"foo{{bar}}zap"), hash_slot(b"{bar"));
        assert_eq!(hash_slot(b"foo{bar}{zap}"), hash_slot(b"bar"));
    }

    #[test]
    fn slots_divide_evenly_among_shards() {
        for shards in [1, 2, 3, 5, 7, 16, 100, 16384] {
            let mut next = 0u32;
            for shard in 0..shards {
                let slots = shard_slots(shard, shards);
                assert_eq!(u32::from(*slots.start()), next, "{shard} of {shards}");
                assert!(slots.len() == 16384 / shards as usize || slots.len() == 16384 / shards as usize + 1);
                for slot in [*slots.start(), *slots.end()] {
                    assert_eq!(slot_shard(slot, shards), shard, "slot {slot} of {shard}/{shards}");
                }
                next = u32::from(*slots.end()) + 1;
            }
            assert_eq!(next, 16384);
        }
    }

    #[test]
    fn record_keys_sort_by_db_then_slot() {
        let a = kv_data::key(0, b"foo");
        let b = kv_data::key(0, b"bar");
        let c = kv_data::key(1, b"bar");
        assert!(b < a, "slot 5061 sorts before slot 12182");
        assert!(a < c, "db 0 sorts before db 1");
        let (start, end) = kv_data::db_range(0);
        assert!(start <= a && a < end && b < end && c >= end);
        assert_eq!(kv_data::decode(&a), Some((0, 12182, &b"foo"[..])));
    }

    #[test]
    fn element_keys_group_by_collection_and_scores_sort_numerically() {
        let (start, end) = kv_elements::range(2, 7);
        let key = kv_elements::key(2, 7, b"field");
        assert!(start <= key && key < end);
        assert!(kv_elements::key(2, 8, b"") >= end);
        assert_eq!(kv_elements::sub_key(&key), b"field");
        let scores = [f64::NEG_INFINITY, -1e300, -1.5, -0.0, 0.0, 1e-300, 2.0, f64::INFINITY];
        for pair in scores.windows(2) {
            assert!(kv_elements::score_bits(pair[0]) < kv_elements::score_bits(pair[1]), "{pair:?}");
        }
        for score in scores {
            assert_eq!(kv_elements::score_from_bits(kv_elements::score_bits(score)).to_bits(), score.to_bits());
        }
    }

    #[test]
    fn expiry_keys_sort_by_time_within_a_group_and_db() {
        let early = kv_expiry::key(3, 0, 1_000, b"zzz");
        let late = kv_expiry::key(3, 0, 2_000, b"aaa");
        assert!(early < late);
        let (start, end) = kv_expiry::due_range(3, 0, 1_500);
        assert!(start <= early && early < end);
        assert!(late >= end);
        assert_eq!(kv_expiry::decode(&late), Some((0, 2_000, &b"aaa"[..])));
        let (start, end) = kv_expiry::db_range(3, 0);
        assert!(start <= early && late < end);
        assert!(!Span { family: Family::KvExpiry, start, end }.contains(&kv_expiry::key(2, 0, 1_000, b"zzz")));
    }

    #[test]
    fn a_groups_keys_are_its_own_spans() {
        let slots = [0..=99, 200..=SLOTS - 1];
        let spans = kv_group::spans(1, &slots, 16);
        let owned = |family: Family, key: &[u8]| spans.iter().any(|s| s.family == family && s.contains(key));
        let in_slot = |slot: u16| (0u32..).map(|i| i.to_string()).find(|k| hash_slot(k.as_bytes()) == slot).unwrap();
        for (slot, mine) in [(0, true), (99, true), (100, false), (199, false), (200, true), (SLOTS - 1, true)] {
            let key = in_slot(slot);
            assert_eq!(owned(Family::KvData, &kv_data::key(15, key.as_bytes())), mine, "slot {slot}");
        }
        for shard in [0, 1, 2] {
            let mine = shard == 1;
            assert_eq!(owned(Family::KvMeta, &kv_meta::key_count(shard, 3)), mine);
            assert_eq!(owned(Family::KvMeta, &raft_state::session(shard, 7)), mine);
            assert_eq!(owned(Family::KvExpiry, &kv_expiry::key(shard, 15, u64::MAX, b"k")), mine);
            let version = kv_elements::first_version(shard) + 5;
            assert_eq!(owned(Family::KvElements, &kv_elements::key(4, version, b"field")), mine);
            assert_eq!(owned(Family::KvScores, &kv_elements::key(4, version, b"")), mine);
        }
        // Spans of one family never overlap and come in key order.
        for pair in spans.windows(2).filter(|pair| pair[0].family == pair[1].family) {
            assert!(pair[0].end <= pair[1].start, "{pair:?}");
        }
    }

    #[test]
    fn group_counters_decode() {
        assert_eq!(kv_meta::decode_counter(2, &kv_meta::key_count(2, 5)), Some((5, true)));
        assert_eq!(kv_meta::decode_counter(2, &kv_meta::expires_count(2, 0)), Some((0, false)));
        assert_eq!(kv_meta::decode_counter(1, &kv_meta::key_count(2, 5)), None);
        assert_eq!(kv_meta::decode_counter(2, &kv_meta::next_version(2)), None);
    }

    #[test]
    fn log_keys_sort_by_group_then_index() {
        assert!(raft_log::key(0, u64::MAX) < raft_log::key(1, 0));
        assert!(raft_log::key(1, 9) < raft_log::key(1, 10));
        assert_eq!(raft_log::decode(&raft_log::key(1, 10)), Some(10));
    }
}
