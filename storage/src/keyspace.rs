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
//! | `kv_raft_log` | `index: u64`, see [`raft_log`]        | a serialized log entry (owned by the `raft` crate) |
//! | `kv_raft_meta`| ASCII name, see [`raft_meta`]         | the group's vote, committed log id, last purged log id |
//! | `kv_meta`     | ASCII name, see [`kv_meta`] and [`raft_state`] | state-machine metadata: applied log id, membership, client sessions, last time stamp, per-db key counts |
//! | `kv_data`     | `db: u8, slot: u16, user key`         | the key's record: type, expiry, modification index, value or collection header (format owned by `kv`) |
//! | `kv_expiry`   | `db: u8, expire_at_ms: u64, slot: u16, user key` | empty; an index of keys with a TTL, in expiry order |
//! | `kv_elements` | `db: u8, version: u64, sub-key`, see [`kv_elements`] | one element of a hash, list, set or sorted set |
//! | `kv_scores`   | `db: u8, version: u64, score: u64 (order-preserving f64), member` | empty; a sorted set's members in score order |
//!
//! # Families of the `sql` service (the PostgreSQL frontend)
//!
//! | family          | key                          | value |
//! |-----------------|------------------------------|-------|
//! | `sql_raft_log`  | as `kv_raft_log`             | as `kv_raft_log` |
//! | `sql_raft_meta` | as `kv_raft_meta`            | as `kv_raft_meta` |
//! | `sql_meta`      | ASCII name (`raft_state` keys and the SQL service's counters) | owned by `sql` |
//! | `sql_catalog`   | table descriptors and names  | owned by `sql` |
//! | `sql_rows`      | `table id: u32`, primary key | a row |
//! | `sql_index`     | `index id: u32`, indexed values, primary key | empty |
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
//! The raft log and raft meta families are the *log side* of a group; every
//! other family of a service is its *state side* ([`Service::state_families`]):
//! what a Raft snapshot carries and what installing one replaces. No key of a
//! state family starts with the byte `0xff`, so `[] .. [0xff]` spans a whole
//! family ([`FAMILY_SPAN_END`]).
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

use crc::{Crc, CRC_16_XMODEM};

/// Number of Redis Cluster hash slots.
pub const SLOTS: u16 = 16384;

/// A service whose families live in one RocksDB instance (per layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// The Redis service.
    Kv,
    /// The SQL service.
    Sql,
}

impl Service {
    /// Every service, in a stable order.
    pub const ALL: [Service; 2] = [Service::Kv, Service::Sql];

    /// The service's name: its directory in the isolated layout and the
    /// prefix of its families.
    pub fn name(self) -> &'static str {
        match self {
            Service::Kv => "kv",
            Service::Sql => "sql",
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
        }
    }

    /// The family holding the service's Raft log.
    pub fn raft_log_family(self) -> Family {
        match self {
            Service::Kv => Family::KvRaftLog,
            Service::Sql => Family::SqlRaftLog,
        }
    }

    /// The family holding the service's Raft vote and log pointers.
    pub fn raft_meta_family(self) -> Family {
        match self {
            Service::Kv => Family::KvRaftMeta,
            Service::Sql => Family::SqlRaftMeta,
        }
    }

    /// The families holding the service's state machine: the content of a
    /// snapshot. The first one also holds the [`raft_state`] keys.
    pub fn state_families(self) -> &'static [Family] {
        match self {
            Service::Kv => &[Family::KvMeta, Family::KvData, Family::KvExpiry, Family::KvElements, Family::KvScores],
            Service::Sql => &[Family::SqlMeta, Family::SqlCatalog, Family::SqlRows, Family::SqlIndex],
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
}

impl Family {
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
        }
    }

    /// Whether the family is read key by key (a service's state, Raft's
    /// metadata), where bloom filters pay, rather than only in ranges (a
    /// Raft log).
    pub fn is_read_by_key(self) -> bool {
        !matches!(self, Family::KvRaftLog | Family::SqlRaftLog)
    }

    /// Whether the family holds keys rewritten over and over (counters,
    /// pointers, sessions), bounded in number, rather than a service's
    /// data.
    pub fn is_rewritten_in_place(self) -> bool {
        matches!(self, Family::KvRaftMeta | Family::KvMeta | Family::SqlRaftMeta | Family::SqlMeta)
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
        }
    }
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

/// Keys of a raft log family: the entry's index.
pub mod raft_log {
    /// The key of the entry at `index`: `u64` big-endian, so that key order
    /// is log order.
    pub fn key(index: u64) -> [u8; 8] {
        index.to_be_bytes()
    }

    /// The index of a log key.
    pub fn decode(key: &[u8]) -> Option<u64> {
        Some(u64::from_be_bytes(key.try_into().ok()?))
    }
}

/// Key names in a raft meta family. Values are serialized by `raft`.
pub mod raft_meta {
    /// The last vote granted or held.
    pub const VOTE: &[u8] = b"vote";
    /// The last committed log id known to this node.
    pub const COMMITTED: &[u8] = b"committed";
    /// The last purged log id (every entry up to it is gone).
    pub const PURGED: &[u8] = b"purged";
}

/// Raft's keys in a service's state meta family ([`Service::state_meta_family`]),
/// written in the same batch as the state they describe. Values are
/// serialized by `raft`.
pub mod raft_state {
    /// The id of the last applied log entry.
    pub const APPLIED: &[u8] = b"raft/applied";
    /// The last applied membership configuration.
    pub const MEMBERSHIP: &[u8] = b"raft/membership";
    /// The prefix of client sessions (exactly-once writes).
    pub const SESSION_PREFIX: &[u8] = b"raft/session/";

    /// The key of the session of `client`.
    pub fn session(client: u64) -> Vec<u8> {
        let mut key = SESSION_PREFIX.to_vec();
        key.extend_from_slice(&client.to_be_bytes());
        key
    }

    /// The exclusive end of the session keys.
    pub fn session_end() -> Vec<u8> {
        let mut end = SESSION_PREFIX.to_vec();
        *end.last_mut().expect("non-empty prefix") += 1;
        end
    }
}

/// Key names in `kv_meta`.
pub mod kv_meta {
    /// The largest leader time stamp applied: `u64` big-endian milliseconds.
    pub const LAST_STAMP: &[u8] = b"last_stamp";

    /// The number of keys in database `db`: `u64` big-endian.
    pub fn key_count(db: u8) -> Vec<u8> {
        let mut key = b"keys/".to_vec();
        key.push(db);
        key
    }

    /// The number of keys with an expiry in database `db`: `u64` big-endian.
    pub fn expires_count(db: u8) -> Vec<u8> {
        let mut key = b"expires/".to_vec();
        key.push(db);
        key
    }

    /// The next collection version to allocate: `u64` big-endian.
    pub const NEXT_VERSION: &[u8] = b"next_version";

    /// The log index of the last deletion of a key of hash slot `slot` in
    /// `db`: `u64` big-endian (WATCH's evidence that an absent key was
    /// created and deleted again).
    pub fn slot_deleted(db: u8, slot: u16) -> Vec<u8> {
        let mut key = b"deleted/".to_vec();
        key.push(db);
        key.extend_from_slice(&slot.to_be_bytes());
        key
    }

    /// The log index of the last creation of a key of hash slot `slot` in
    /// `db`: `u64` big-endian (with [`flushed`], WATCH's evidence that an
    /// absent key existed when a flush removed it).
    pub fn slot_created(db: u8, slot: u16) -> Vec<u8> {
        let mut key = b"created/".to_vec();
        key.push(db);
        key.extend_from_slice(&slot.to_be_bytes());
        key
    }

    /// The log index of the last FLUSHDB or FLUSHALL that emptied `db`.
    pub fn flushed(db: u8) -> Vec<u8> {
        let mut key = b"flushed/".to_vec();
        key.push(db);
        key
    }

    /// A client blocked on keys (BLPOP and friends), by its position in
    /// the order clients blocked (`seq: u64` big-endian); the value (the
    /// waiter: db, keys, what it pops, who it is) is encoded by `kv`.
    pub fn waiter(seq: u64) -> Vec<u8> {
        let mut key = WAITERS.to_vec();
        key.extend_from_slice(&seq.to_be_bytes());
        key
    }

    /// The prefix of every [`waiter`] key.
    pub const WAITERS: &[u8] = b"waiter/";

    /// The exclusive end of the [`waiter`] keys.
    pub const WAITERS_END: &[u8] = b"waiter0";

    /// The position the next blocked client gets: `u64` big-endian.
    pub const NEXT_WAITER: &[u8] = b"next_waiter";

    /// SWAPDB's map: 16 bytes, the physical database of each logical one
    /// (absent: the identity).
    pub const DB_MAP: &[u8] = b"db_map";

    /// The log index of the last SWAPDB of logical database `db` (WATCH's
    /// evidence that every key of it may have changed).
    pub fn swapped(db: u8) -> Vec<u8> {
        let mut key = b"swapped/".to_vec();
        key.push(db);
        key
    }
}

/// Keys of `kv_elements` and `kv_scores`: `db, version, …`.
///
/// In `kv_elements` the rest is the element's sub-key: a hash field, a set
/// or sorted-set member, or a list position (`u64` big-endian). In
/// `kv_scores` it is the score ([`score_bits`]) then the member.
pub mod kv_elements {
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

    /// Splits a record key into `(db, slot, user key)`.
    pub fn decode(key: &[u8]) -> Option<(u8, u16, &[u8])> {
        if key.len() < 3 {
            return None;
        }
        Some((key[0], u16::from_be_bytes([key[1], key[2]]), &key[3..]))
    }
}

/// Keys of `kv_expiry`: `db, expire_at_ms, slot, user key`.
pub mod kv_expiry {
    use super::hash_slot;

    /// The index key for `user_key` in `db` expiring at `expire_at_ms`.
    pub fn key(db: u8, expire_at_ms: u64, user_key: &[u8]) -> Vec<u8> {
        let mut key = Vec::with_capacity(11 + user_key.len());
        key.push(db);
        key.extend_from_slice(&expire_at_ms.to_be_bytes());
        key.extend_from_slice(&hash_slot(user_key).to_be_bytes());
        key.extend_from_slice(user_key);
        key
    }

    /// The range of index keys of `db` that expire at or before `now_ms`.
    pub fn due_range(db: u8, now_ms: u64) -> (Vec<u8>, Vec<u8>) {
        let start = vec![db];
        let mut end = vec![db];
        end.extend_from_slice(&now_ms.saturating_add(1).to_be_bytes());
        (start, end)
    }

    /// Splits an index key into `(db, expire_at_ms, user key)`.
    pub fn decode(key: &[u8]) -> Option<(u8, u64, &[u8])> {
        if key.len() < 11 {
            return None;
        }
        let at = u64::from_be_bytes(key[1..9].try_into().ok()?);
        Some((key[0], at, &key[11..]))
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
    fn expiry_keys_sort_by_time_within_a_db() {
        let early = kv_expiry::key(0, 1_000, b"zzz");
        let late = kv_expiry::key(0, 2_000, b"aaa");
        assert!(early < late);
        let (start, end) = kv_expiry::due_range(0, 1_500);
        assert!(start <= early && early < end);
        assert!(late >= end);
        assert_eq!(kv_expiry::decode(&late), Some((0, 2_000, &b"aaa"[..])));
    }
}
