//! Log-ready write commands.
//!
//! A [`LogCommand`] carries everything its apply needs with the leader's
//! time stamp, which the Raft entry carries ([`raft::Command::stamp_ms`]):
//! the database and the operation. Relative times (`EX 10`) stay relative in
//! the operation and are resolved against the stamp at apply time, so apply
//! never reads a clock and every replica computes the same absolute expiry.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::bits::{BitOperation, FieldOp};
use crate::geo::GeoSearch;
use crate::notify::{NotifyFlags, Writer};
use crate::read::{ReadOp, SortOptions};
use crate::record::KeyType;
use crate::reply::Reply;
use crate::script::ScriptSource;
use crate::set_algebra::SetAlgebra;
use crate::sorted::{Aggregate, Combine, Range, RangeSpec};
use crate::stream::group::GroupCommand;
use crate::stream::{AddId, StreamId, Trim};

/// One entry of the `kv` log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogCommand {
    /// The database (SELECT) the command runs in.
    pub db: u8,
    pub op: WriteOp,
}

/// When a SET-like command writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetCondition {
    Always,
    /// NX: only if the key does not exist.
    IfAbsent,
    /// XX: only if the key exists.
    IfPresent,
}

/// What a write does to the key's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetExpiry {
    /// Remove any expiry (plain SET, GETEX PERSIST).
    Clear,
    /// KEEPTTL: keep the existing expiry.
    Keep,
    /// EX/PX: this many ms after the stamp.
    AfterMs(u64),
    /// EXAT/PXAT: at this Unix time in ms.
    AtMs(u64),
}

/// What SET answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetReply {
    /// SET: `OK`, or nil if the condition failed.
    Ok,
    /// SET … GET / GETSET: the old value or nil.
    OldValue,
    /// SETNX: 1 if written, else 0.
    Flag,
}

/// The condition of EXPIRE and friends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpireCondition {
    Always,
    /// NX: only if the key has no expiry.
    IfNone,
    /// XX: only if the key has an expiry.
    IfSome,
    /// GT: only if the new expiry is greater (no expiry counts as infinite).
    IfGreater,
    /// LT: only if the new expiry is less.
    IfLess,
    /// XX and LT together: only if the key has an expiry and the new one is
    /// less. (XX with GT is plain GT, which already needs an expiry.)
    IfSomeAndLess,
}

/// A new expiry for EXPIRE and friends; may lie in the past (deletes the key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpireAt {
    /// EXPIRE/PEXPIRE: this many ms after the stamp (may be negative).
    AfterMs(i64),
    /// EXPIREAT/PEXPIREAT: at this Unix time in ms (may be negative).
    AtMs(i64),
}

/// What HSET-like commands do and answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HashSetMode {
    /// HSET: set every field, answer how many were new.
    Count,
    /// HMSET: set every field, answer OK.
    Ok,
    /// HSETNX: set the one field only if absent, answer 1 or 0.
    IfAbsent,
}

/// An end of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum End {
    Left,
    Right,
}

/// The options of ZADD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ZAddFlags {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
    pub ch: bool,
    pub incr: bool,
}

/// How a pop from the first non-empty sorted set answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PopShape {
    /// BZPOPMIN, BZPOPMAX: `[key, member, score]`.
    Flat,
    /// ZMPOP, BZMPOP: `[key, [[member, score]…]]`.
    Nested,
}

/// A key the expiry sweeper found due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueKey {
    pub db: u8,
    pub expire_at_ms: u64,
    pub key: Bytes,
}

/// A write operation. See each command's Redis documentation for its
/// semantics; the variants name which commands they serve.
///
/// The Raft log stores variants by position: a new one goes at the end
/// (`log_format`'s tests check it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WriteOp {
    /// SET, SETNX, SETEX, PSETEX, GETSET.
    Set {
        key: Bytes,
        value: Bytes,
        condition: SetCondition,
        expiry: SetExpiry,
        reply: SetReply,
    },
    /// MSET, and MSETNX when `only_if_none_exist`.
    MSet {
        pairs: Vec<(Bytes, Bytes)>,
        only_if_none_exist: bool,
    },
    GetDel {
        key: Bytes,
    },
    /// GETEX with an option (EX/PX/EXAT/PXAT, or PERSIST as `Clear`).
    GetEx {
        key: Bytes,
        expiry: SetExpiry,
    },
    /// INCR, DECR, INCRBY, DECRBY.
    IncrBy {
        key: Bytes,
        delta: i64,
    },
    IncrByFloat {
        key: Bytes,
        delta: f64,
    },
    Append {
        key: Bytes,
        value: Bytes,
    },
    SetRange {
        key: Bytes,
        offset: u64,
        value: Bytes,
    },
    /// DEL, UNLINK.
    Del {
        keys: Vec<Bytes>,
    },
    /// RENAME, and RENAMENX when `only_if_absent`.
    Rename {
        from: Bytes,
        to: Bytes,
        only_if_absent: bool,
    },
    Copy {
        from: Bytes,
        to: Bytes,
        to_db: u8,
        replace: bool,
    },
    /// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (`command` names it in errors).
    Expire {
        key: Bytes,
        at: ExpireAt,
        condition: ExpireCondition,
        command: String,
    },
    Persist {
        key: Bytes,
    },
    FlushDb,
    FlushAll,
    /// Removal of expired keys, proposed by the leader's sweeper.
    ExpireDue {
        keys: Vec<DueKey>,
    },
    /// HSET, HMSET, HSETNX.
    HSet {
        key: Bytes,
        pairs: Vec<(Bytes, Bytes)>,
        mode: HashSetMode,
    },
    HDel {
        key: Bytes,
        fields: Vec<Bytes>,
    },
    HIncrBy {
        key: Bytes,
        field: Bytes,
        delta: i64,
    },
    HIncrByFloat {
        key: Bytes,
        field: Bytes,
        delta: f64,
    },
    /// LPUSH, RPUSH, and LPUSHX/RPUSHX when `only_if_exists`.
    LPush {
        key: Bytes,
        values: Vec<Bytes>,
        end: End,
        only_if_exists: bool,
    },
    /// LPOP, RPOP.
    LPop {
        key: Bytes,
        end: End,
        count: Option<u64>,
    },
    /// LMPOP and BLMPOP; BLPOP and BRPOP when `single`.
    LPopFirst {
        keys: Vec<Bytes>,
        end: End,
        count: u64,
        single: bool,
    },
    /// LMOVE, RPOPLPUSH, BLMOVE, BRPOPLPUSH.
    LMove {
        from: Bytes,
        to: Bytes,
        from_end: End,
        to_end: End,
    },
    LSet {
        key: Bytes,
        index: i64,
        value: Bytes,
    },
    LInsert {
        key: Bytes,
        before: bool,
        pivot: Bytes,
        value: Bytes,
    },
    LRem {
        key: Bytes,
        count: i64,
        value: Bytes,
    },
    LTrim {
        key: Bytes,
        start: i64,
        stop: i64,
    },
    SAdd {
        key: Bytes,
        members: Vec<Bytes>,
    },
    SRem {
        key: Bytes,
        members: Vec<Bytes>,
    },
    /// SPOP; `seed` is the proposer's random draw, so that every replica
    /// pops the same members.
    SPop {
        key: Bytes,
        count: Option<u64>,
        seed: u64,
    },
    SMove {
        from: Bytes,
        to: Bytes,
        member: Bytes,
    },
    /// SINTERSTORE, SUNIONSTORE, SDIFFSTORE.
    SStore {
        algebra: SetAlgebra,
        destination: Bytes,
        keys: Vec<Bytes>,
    },
    /// ZADD, and ZINCRBY as ZADD INCR.
    ZAdd {
        key: Bytes,
        flags: ZAddFlags,
        pairs: Vec<(f64, Bytes)>,
    },
    ZRem {
        key: Bytes,
        members: Vec<Bytes>,
    },
    /// ZREMRANGEBYRANK, ZREMRANGEBYSCORE, ZREMRANGEBYLEX.
    ZRemRange {
        key: Bytes,
        spec: RangeSpec,
    },
    /// ZPOPMIN, ZPOPMAX (`max`).
    ZPop {
        key: Bytes,
        max: bool,
        count: Option<u64>,
    },
    /// ZMPOP, BZMPOP, BZPOPMIN, BZPOPMAX.
    ZPopFirst {
        keys: Vec<Bytes>,
        max: bool,
        count: u64,
        shape: PopShape,
    },
    /// ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE.
    ZStore {
        destination: Bytes,
        keys: Vec<Bytes>,
        weights: Vec<f64>,
        combine: Combine,
        aggregate: Aggregate,
    },
    ZRangeStore {
        destination: Bytes,
        source: Bytes,
        range: Range,
    },
    SetBit {
        key: Bytes,
        offset: u64,
        value: bool,
    },
    BitOp {
        operation: BitOperation,
        destination: Bytes,
        keys: Vec<Bytes>,
    },
    /// BITFIELD with at least one SET or INCRBY.
    BitField {
        key: Bytes,
        ops: Vec<FieldOp>,
    },
    /// MOVE.
    Move {
        key: Bytes,
        to_db: u8,
    },
    /// SORT … STORE.
    SortStore {
        key: Bytes,
        options: SortOptions,
        destination: Bytes,
    },
    /// EXEC: the queued commands of a MULTI, run at once unless a watched
    /// key changed since it was watched.
    Exec {
        watched: Vec<WatchedKey>,
        commands: Vec<QueuedCommand>,
    },
    /// RESTORE. The TTL's sign and the payload are checked when applied,
    /// after the key, in the order Redis checks them.
    Restore {
        key: Bytes,
        /// Milliseconds from now, or a Unix time in ms with `absolute`; 0
        /// means no expiry.
        ttl_ms: i64,
        absolute: bool,
        replace: bool,
        payload: Bytes,
    },
    /// A blocking pop (BLPOP, BLMOVE, BZMPOP, …): pops now if it can, or
    /// else registers `waiter` on `keys` in the replicated queue of blocked
    /// clients, which later writes serve at apply (`crate::blocking`).
    Block {
        keys: Vec<Bytes>,
        pop: BlockingPop,
        waiter: WaiterId,
    },
    /// A blocked client gives up (timeout, disconnect): removes `waiter`
    /// if it is still queued. Answers 1 if it was, 0 if it was already
    /// served or purged.
    Unblock {
        waiter: WaiterId,
    },
    /// Removes every queued waiter of `node` except those of its boot
    /// `keep_boot`: a restarted node's earlier clients are gone.
    PurgeWaiters {
        node: u64,
        keep_boot: Option<u64>,
    },
    /// SWAPDB of two logical databases (`crate::dbmap`).
    SwapDb {
        a: u8,
        b: u8,
    },
    /// PFADD: adds `elements` to the HyperLogLog at `key` (`crate::hll`),
    /// creating it. `sparse_max` is the proposer's
    /// `hll-sparse-max-bytes`, carried so every replica promotes alike.
    PfAdd {
        key: Bytes,
        elements: Vec<Bytes>,
        sparse_max: u64,
    },
    /// PFCOUNT of one key: the cached cardinality, or computed and cached
    /// in the value (which changes its bytes, as in Redis).
    PfCount {
        key: Bytes,
    },
    /// PFMERGE: `dest` becomes the union of itself and `sources`.
    PfMerge {
        dest: Bytes,
        sources: Vec<Bytes>,
        sparse_max: u64,
    },
    /// PFDEBUG GETREG, DECODE, ENCODING or TODENSE of `key` (GETREG and
    /// TODENSE turn a sparse sketch dense, as in Redis).
    PfDebug {
        subcommand: Bytes,
        key: Bytes,
    },
    /// GEOSEARCHSTORE, and GEORADIUS(BYMEMBER) with STORE or STOREDIST
    /// (`georadius`, which names the keyspace event): the matches of
    /// `search` in `source` replace `destination` as a sorted set scored by
    /// geohash, or (`store_distance`) by distance.
    GeoSearchStore {
        destination: Bytes,
        source: Bytes,
        search: GeoSearch,
        store_distance: bool,
        georadius: bool,
    },
    /// `op` as the proposing node observes it (`crate::notify`): with its
    /// `notify-keyspace-events`, and the writing client if that client
    /// tracks keys with NOLOOP.
    Observed {
        notify: NotifyFlags,
        writer: Option<Writer>,
        op: Box<WriteOp>,
    },
    /// XADD: an entry `id` (or one the server picks) with `fields`, then
    /// `trim`.
    XAdd {
        key: Bytes,
        id: AddId,
        fields: Vec<(Bytes, Bytes)>,
        no_mkstream: bool,
        trim: Option<Trim>,
    },
    /// XDEL; the IDs as given (checked after the key's type, as Redis).
    XDel {
        key: Bytes,
        ids: Vec<Bytes>,
    },
    XTrim {
        key: Bytes,
        trim: Trim,
    },
    XSetId {
        key: Bytes,
        last_id: StreamId,
        entries_added: Option<u64>,
        max_deleted: Option<StreamId>,
    },
    /// XGROUP CREATE, SETID, DESTROY, CREATECONSUMER, DELCONSUMER.
    XGroup {
        key: Bytes,
        group: Bytes,
        command: GroupCommand,
    },
    /// XREADGROUP (without BLOCK, or inside MULTI); the IDs as given
    /// (`>` or an ID), checked with the keys as Redis does.
    XReadGroup {
        group: Bytes,
        consumer: Bytes,
        keys: Vec<Bytes>,
        ids: Vec<Bytes>,
        count: u64,
        noack: bool,
    },
    /// XACK; the IDs as given (checked once the group is found).
    XAck {
        key: Bytes,
        group: Bytes,
        ids: Vec<Bytes>,
    },
    /// XCLAIM; `args` are the arguments after the consumer, parsed once
    /// the group is found, as Redis does.
    XClaim {
        key: Bytes,
        group: Bytes,
        consumer: Bytes,
        args: Vec<Bytes>,
    },
    XAutoClaim {
        key: Bytes,
        group: Bytes,
        consumer: Bytes,
        min_idle: u64,
        start: StreamId,
        count: u64,
        justid: bool,
    },
    /// EVAL, EVALSHA, and EVAL_RO/EVALSHA_RO inside MULTI (`read_only`):
    /// runs the script at apply (`crate::script`), `math.random` and the
    /// random commands seeded with `seed`, aborted past `budget` Lua
    /// instructions.
    Eval {
        script: ScriptSource,
        keys: Vec<Bytes>,
        args: Vec<Bytes>,
        seed: u64,
        budget: u64,
        read_only: bool,
    },
    /// SCRIPT LOAD: compiles `body` and stores it under its digest.
    ScriptLoad {
        body: Bytes,
    },
    /// SCRIPT FLUSH: forgets every stored script.
    ScriptFlush,
    /// FUNCTION LOAD [REPLACE]: runs the library's code to register its
    /// functions (within `budget` Lua instructions) and stores it.
    FunctionLoad {
        code: Bytes,
        replace: bool,
        budget: u64,
    },
    /// FUNCTION DELETE.
    FunctionDelete {
        library: Bytes,
    },
    /// FUNCTION FLUSH.
    FunctionFlush,
    /// FUNCTION RESTORE: the libraries of a FUNCTION DUMP payload.
    FunctionRestore {
        payload: Bytes,
        policy: RestorePolicy,
        budget: u64,
    },
    /// FCALL, and FCALL_RO inside MULTI (`read_only`): as `Eval`, with a
    /// stored library's function.
    FCall {
        function: Bytes,
        keys: Vec<Bytes>,
        args: Vec<Bytes>,
        seed: u64,
        budget: u64,
        read_only: bool,
    },
}

/// What FUNCTION RESTORE does with the libraries already loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestorePolicy {
    /// Deletes them first.
    Flush,
    /// Keeps them; a library of the same name aborts the restore.
    Append,
    /// Keeps them, but a restored library replaces one of its name.
    Replace,
}

impl WriteOp {
    /// Whether the op is the service's own bookkeeping (the queue of
    /// blocked clients) rather than a command: it notifies nothing.
    pub(crate) fn is_internal(&self) -> bool {
        matches!(self, WriteOp::Unblock { .. } | WriteOp::PurgeWaiters { .. })
    }
}

/// A blocked client, unique across the cluster and across restarts: the
/// node it is connected to, that node process's random boot id, and a
/// number the node draws per blocking call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WaiterId {
    pub node: u64,
    pub boot: u64,
    pub token: u64,
}

/// What a blocked client pops once one of its keys has data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlockingPop {
    /// BLPOP, BRPOP (`single`: `[key, element]`) and BLMPOP (`[key,
    /// [elements]]`, up to `count`).
    List { end: End, count: u64, single: bool },
    /// BLMOVE, BRPOPLPUSH: from the blocked key to `to`.
    Move { to: Bytes, from_end: End, to_end: End },
    /// BZPOPMIN/BZPOPMAX (`Flat`) and BZMPOP (`Nested`), up to `count`.
    ZSet { max: bool, count: u64, shape: PopShape },
    /// XREAD BLOCK: the entries above `ids[i]` of the `i`-th key, up to
    /// `count` (0: all; once blocked, 1000 as Redis), read rather than
    /// popped. The IDs as given (`$` or an ID); a queued client's `$`
    /// became the stream's last ID when it blocked.
    Stream { ids: Vec<Bytes>, count: u64 },
    /// XREADGROUP BLOCK: new entries (`>`) delivered to `group` for
    /// `consumer`, as XREADGROUP does.
    Group { group: Bytes, consumer: Bytes, ids: Vec<Bytes>, count: u64, noack: bool },
}

impl BlockingPop {
    /// Whether data of type `kind` serves this pop.
    pub(crate) fn served_by(&self, kind: KeyType) -> bool {
        match self {
            BlockingPop::List { .. } | BlockingPop::Move { .. } => kind == KeyType::List,
            BlockingPop::ZSet { .. } => kind == KeyType::ZSet,
            BlockingPop::Stream { .. } | BlockingPop::Group { .. } => kind == KeyType::Stream,
        }
    }

    /// The pop as a command that never blocks (inside MULTI, where Redis
    /// answers at once, nil if nothing is there): from the first of `keys`
    /// that has data.
    pub fn immediate(self, mut keys: Vec<Bytes>) -> TxnStep {
        TxnStep::Write(match self {
            BlockingPop::List { end, count, single } => WriteOp::LPopFirst { keys, end, count, single },
            BlockingPop::Move { to, from_end, to_end } => {
                WriteOp::LMove { from: keys.swap_remove(0), to, from_end, to_end }
            }
            BlockingPop::ZSet { max, count, shape } => WriteOp::ZPopFirst { keys, max, count, shape },
            BlockingPop::Stream { ids, count } => return TxnStep::Read(ReadOp::XRead { keys, ids, count }),
            BlockingPop::Group { group, consumer, ids, count, noack } => {
                WriteOp::XReadGroup { group, consumer, keys, ids, count, noack }
            }
        })
    }
}

/// A key under WATCH: what the watching node had applied when it looked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchedKey {
    pub db: u8,
    pub key: Bytes,
    /// The node's applied log index, read before the key: every write up
    /// to it was visible to the look.
    pub observed_index: u64,
    /// Whether the key existed (and had not expired) then.
    pub existed: bool,
}

/// One command queued by MULTI, with the database it was queued in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedCommand {
    pub db: u8,
    pub step: TxnStep,
}

/// What a queued command does at EXEC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TxnStep {
    Write(WriteOp),
    Read(ReadOp),
    /// A command that ran on the connection when it was queued (PING,
    /// SELECT, a run-time error found while parsing): its reply.
    Reply(Reply),
}

impl LogCommand {
    /// The command's log bytes.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("log commands always serialize")
    }

    /// Decodes log bytes written by [`LogCommand::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_commands_round_trip_through_bytes() {
        let commands = [
            LogCommand {
                db: 3,
                op: WriteOp::Set {
                    key: Bytes::from_static(b"k"),
                    value: Bytes::from_static(b"\x00\xffv"),
                    condition: SetCondition::IfAbsent,
                    expiry: SetExpiry::AfterMs(10_000),
                    reply: SetReply::OldValue,
                },
            },
            LogCommand { db: 0, op: WriteOp::IncrByFloat { key: Bytes::from_static(b"f"), delta: -0.5 } },
            LogCommand {
                db: 15,
                op: WriteOp::Expire {
                    key: Bytes::from_static(b"e"),
                    at: ExpireAt::AfterMs(-1),
                    condition: ExpireCondition::IfGreater,
                    command: "expire".into(),
                },
            },
        ];
        for command in commands {
            assert_eq!(LogCommand::decode(&command.encode()).unwrap(), command);
        }
    }
}
