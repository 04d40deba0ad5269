//! Read commands as data: what a MULTI queues and EXEC runs at apply time.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::stream_group::{InfoKind, PendingRange};
use super::{ElementScan, EncodingLimits, HashPart, LcsOutput, LposOptions, ReadCtx, ScanArgs, SortOptions};
use crate::bits::FieldOp;
use crate::error::{CommandError, Result};
use crate::geo::{GeoFields, GeoSearch};
use crate::reply::Reply;
use crate::set_algebra::SetAlgebra;
use crate::sorted::{Aggregate, Combine, Range, RangeSpec};
use crate::stream::StreamId;

/// A read-only command. See each command's Redis documentation for its
/// semantics; the variants name which commands they serve.
///
/// The Raft log stores variants by position: a new one goes at the end
/// (`log_format`'s tests check it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ReadOp {
    Get {
        key: Bytes,
    },
    MGet {
        keys: Vec<Bytes>,
    },
    StrLen {
        key: Bytes,
    },
    /// GETRANGE, SUBSTR.
    GetRange {
        key: Bytes,
        start: i64,
        end: i64,
    },
    Lcs {
        a: Bytes,
        b: Bytes,
        output: LcsOutput,
    },
    /// EXISTS, TOUCH.
    Exists {
        keys: Vec<Bytes>,
    },
    Type {
        key: Bytes,
    },
    /// TTL, PTTL.
    Ttl {
        key: Bytes,
        millis: bool,
    },
    /// EXPIRETIME, PEXPIRETIME.
    ExpireTime {
        key: Bytes,
        millis: bool,
    },
    ObjectEncoding {
        key: Bytes,
    },
    /// OBJECT IDLETIME/FREQ/REFCOUNT: `present` if the key exists, else nil.
    ObjectConstant {
        key: Bytes,
        present: i64,
    },
    Keys {
        pattern: Bytes,
    },
    Scan {
        cursor: u64,
        args: ScanArgs,
    },
    RandomKey,
    DbSize,
    HGet {
        key: Bytes,
        field: Bytes,
    },
    HMGet {
        key: Bytes,
        fields: Vec<Bytes>,
    },
    /// HGETALL, HKEYS, HVALS.
    HGetAll {
        key: Bytes,
        part: HashPart,
    },
    HExists {
        key: Bytes,
        field: Bytes,
    },
    HLen {
        key: Bytes,
    },
    HStrLen {
        key: Bytes,
        field: Bytes,
    },
    HRandField {
        key: Bytes,
        count: Option<i64>,
        with_values: bool,
    },
    HScan {
        key: Bytes,
        cursor: u64,
        args: ElementScan,
    },
    LLen {
        key: Bytes,
    },
    LIndex {
        key: Bytes,
        index: i64,
    },
    LRange {
        key: Bytes,
        start: i64,
        stop: i64,
    },
    LPos {
        key: Bytes,
        element: Bytes,
        options: LposOptions,
    },
    SMembers {
        key: Bytes,
    },
    /// SISMEMBER, and SMISMEMBER when `many`.
    SIsMember {
        key: Bytes,
        members: Vec<Bytes>,
        many: bool,
    },
    SCard {
        key: Bytes,
    },
    SRandMember {
        key: Bytes,
        count: Option<i64>,
    },
    /// SINTER, SUNION, SDIFF.
    SAlgebra {
        algebra: SetAlgebra,
        keys: Vec<Bytes>,
    },
    SInterCard {
        keys: Vec<Bytes>,
        limit: u64,
    },
    SScan {
        key: Bytes,
        cursor: u64,
        args: ElementScan,
    },
    /// ZSCORE, and ZMSCORE when `many`.
    ZScore {
        key: Bytes,
        members: Vec<Bytes>,
        many: bool,
    },
    ZCard {
        key: Bytes,
    },
    /// ZCOUNT (a score range), ZLEXCOUNT (a lex range).
    ZCount {
        key: Bytes,
        spec: RangeSpec,
    },
    /// ZRANGE, ZREVRANGE, ZRANGEBYSCORE, ZREVRANGEBYSCORE, ZRANGEBYLEX,
    /// ZREVRANGEBYLEX.
    ZRange {
        key: Bytes,
        range: Range,
        with_scores: bool,
    },
    /// ZRANK, ZREVRANK.
    ZRank {
        key: Bytes,
        member: Bytes,
        rev: bool,
    },
    /// ZUNION, ZINTER, ZDIFF.
    ZCombine {
        keys: Vec<Bytes>,
        weights: Vec<f64>,
        combine: Combine,
        aggregate: Aggregate,
        with_scores: bool,
    },
    ZInterCard {
        keys: Vec<Bytes>,
        limit: u64,
    },
    ZRandMember {
        key: Bytes,
        count: Option<i64>,
        with_scores: bool,
    },
    ZScan {
        key: Bytes,
        cursor: u64,
        args: ElementScan,
    },
    GetBit {
        key: Bytes,
        offset: u64,
    },
    /// BITCOUNT: the range is `(start, end, in bits)`.
    BitCount {
        key: Bytes,
        range: Option<(i64, i64, bool)>,
    },
    BitPos {
        key: Bytes,
        bit: u8,
        start: i64,
        end: Option<i64>,
        bit_mode: bool,
    },
    /// BITFIELD_RO, and BITFIELD with GET subcommands only.
    BitFieldGet {
        key: Bytes,
        ops: Vec<FieldOp>,
    },
    /// SORT without STORE, SORT_RO.
    Sort {
        key: Bytes,
        options: SortOptions,
    },
    /// DUMP.
    Dump {
        key: Bytes,
    },
    /// OBJECT ENCODING under the node's CONFIG thresholds.
    ObjectEncodingWith {
        key: Bytes,
        limits: EncodingLimits,
    },
    /// MEMORY USAGE (`samples` 0: every element).
    MemoryUsage {
        key: Bytes,
        samples: u64,
    },
    /// PFCOUNT of several keys: their union's cardinality.
    PfCountUnion {
        keys: Vec<Bytes>,
    },
    GeoPos {
        key: Bytes,
        members: Vec<Bytes>,
    },
    GeoHash {
        key: Bytes,
        members: Vec<Bytes>,
    },
    /// GEODIST, in units of `to_meters` meters.
    GeoDist {
        key: Bytes,
        from: Bytes,
        to: Bytes,
        to_meters: f64,
    },
    /// GEOSEARCH, GEORADIUS, GEORADIUSBYMEMBER and their `_RO` forms.
    GeoSearch {
        key: Bytes,
        search: GeoSearch,
        fields: GeoFields,
    },
    XLen {
        key: Bytes,
    },
    /// XRANGE, XREVRANGE (`rev`): `start ..= end`, at most `count`.
    XRange {
        key: Bytes,
        start: StreamId,
        end: StreamId,
        count: Option<u64>,
        rev: bool,
    },
    /// XREAD (inside MULTI, or without BLOCK).
    XRead {
        keys: Vec<Bytes>,
        /// The IDs as given (`$`, or an ID), parsed in order with the
        /// keys' type checks, as Redis does.
        ids: Vec<Bytes>,
        count: u64,
    },
    XPending {
        key: Bytes,
        group: Bytes,
        /// The extended form's arguments (`None`: the summary).
        range: Option<PendingRange>,
    },
    XInfo {
        key: Bytes,
        kind: InfoKind,
    },
    /// SCRIPT EXISTS: whether the group stores each script.
    ScriptExists {
        shas: Vec<Option<crate::script::Sha>>,
    },
    /// FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE].
    FunctionList {
        pattern: Option<Bytes>,
        with_code: bool,
    },
    /// FUNCTION DUMP.
    FunctionDump,
    /// FUNCTION STATS.
    FunctionStats,
    /// OBJECT FREQ: nil for a missing key, else the error that no LFU
    /// policy is selected (Redis looks the key up first).
    ObjectFreq {
        key: Bytes,
    },
}

/// OBJECT FREQ's answer for a key that exists.
const NO_LFU: &str = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

impl ReadCtx<'_> {
    /// Runs `op`.
    pub fn run(&self, op: &ReadOp) -> Result<Reply> {
        match op {
            ReadOp::Get { key } => self.get(key),
            ReadOp::MGet { keys } => self.mget(keys),
            ReadOp::StrLen { key } => self.strlen(key),
            ReadOp::PfCountUnion { keys } => self.pfcount_union(keys),
            ReadOp::GeoPos { key, members } => self.geopos(key, members),
            ReadOp::GeoHash { key, members } => self.geohash(key, members),
            ReadOp::GeoDist { key, from, to, to_meters } => self.geodist(key, from, to, *to_meters),
            ReadOp::GeoSearch { key, search, fields } => self.geosearch(key, search, *fields),
            ReadOp::XLen { key } => self.xlen(key),
            ReadOp::XRange { key, start, end, count, rev } => self.xrange(key, *start, *end, *count, *rev),
            ReadOp::XRead { keys, ids, count } => self.xread(keys, ids, *count),
            ReadOp::XPending { key, group, range } => self.xpending(key, group, range),
            ReadOp::XInfo { key, kind } => self.xinfo(key, kind),
            ReadOp::ScriptExists { shas } => self.script_exists(shas),
            ReadOp::FunctionList { pattern, with_code } => self.function_list(pattern.as_deref(), *with_code),
            ReadOp::FunctionDump => self.function_dump(),
            ReadOp::FunctionStats => self.function_stats(),
            ReadOp::GetRange { key, start, end } => self.getrange(key, *start, *end),
            ReadOp::Lcs { a, b, output } => self.lcs(a, b, *output),
            ReadOp::Exists { keys } => self.exists(keys),
            ReadOp::Type { key } => self.type_of(key),
            ReadOp::Dump { key } => self.dump(key),
            ReadOp::Ttl { key, millis } => self.ttl(key, *millis),
            ReadOp::ExpireTime { key, millis } => self.expire_time(key, *millis),
            ReadOp::ObjectEncoding { key } => self.object_encoding(key, &EncodingLimits::default()),
            ReadOp::ObjectEncodingWith { key, limits } => self.object_encoding(key, limits),
            ReadOp::MemoryUsage { key, samples } => self.memory_usage(key, *samples),
            ReadOp::ObjectConstant { key, present } => {
                Ok(if self.lookup_unnotified(key)?.is_some() { Reply::Int(*present) } else { Reply::Nil })
            }
            ReadOp::ObjectFreq { key } => Ok(match self.lookup_unnotified(key)? {
                Some(_) => Reply::Error(CommandError::Other(NO_LFU.into())),
                None => Reply::Nil,
            }),
            ReadOp::Keys { pattern } => self.keys(pattern),
            ReadOp::Scan { cursor, args } => self.scan(*cursor, args),
            ReadOp::RandomKey => self.random_key(),
            ReadOp::DbSize => self.dbsize(),
            ReadOp::HGet { key, field } => self.hget(key, field),
            ReadOp::HMGet { key, fields } => self.hmget(key, fields),
            ReadOp::HGetAll { key, part } => self.hgetall(key, *part),
            ReadOp::HExists { key, field } => self.hexists(key, field),
            ReadOp::HLen { key } => self.hlen(key),
            ReadOp::HStrLen { key, field } => self.hstrlen(key, field),
            ReadOp::HRandField { key, count, with_values } => self.hrandfield(key, *count, *with_values),
            ReadOp::HScan { key, cursor, args } => self.hscan(key, *cursor, args),
            ReadOp::LLen { key } => self.llen(key),
            ReadOp::LIndex { key, index } => self.lindex(key, *index),
            ReadOp::LRange { key, start, stop } => self.lrange(key, *start, *stop),
            ReadOp::LPos { key, element, options } => self.lpos(key, element, *options),
            ReadOp::SMembers { key } => self.smembers(key),
            ReadOp::SIsMember { key, members, many } => self.sismember(key, members, *many),
            ReadOp::SCard { key } => self.scard(key),
            ReadOp::SRandMember { key, count } => self.srandmember(key, *count),
            ReadOp::SAlgebra { algebra, keys } => self.set_algebra(*algebra, keys),
            ReadOp::SInterCard { keys, limit } => self.sintercard(keys, *limit),
            ReadOp::SScan { key, cursor, args } => self.sscan(key, *cursor, args),
            ReadOp::ZScore { key, members, many } => self.zscore(key, members, *many),
            ReadOp::ZCard { key } => self.zcard(key),
            ReadOp::ZCount { key, spec } => self.zcount(key, spec),
            ReadOp::ZRange { key, range, with_scores } => self.zrange(key, range, *with_scores),
            ReadOp::ZRank { key, member, rev } => self.zrank(key, member, *rev),
            ReadOp::ZCombine { keys, weights, combine, aggregate, with_scores } => {
                self.zcombine(keys, weights, *combine, *aggregate, *with_scores)
            }
            ReadOp::ZInterCard { keys, limit } => self.zintercard(keys, *limit),
            ReadOp::ZRandMember { key, count, with_scores } => self.zrandmember(key, *count, *with_scores),
            ReadOp::ZScan { key, cursor, args } => self.zscan(key, *cursor, args),
            ReadOp::GetBit { key, offset } => self.getbit(key, *offset),
            ReadOp::BitCount { key, range } => self.bitcount(key, *range),
            ReadOp::BitPos { key, bit, start, end, bit_mode } => self.bitpos(key, *bit, *start, *end, *bit_mode),
            ReadOp::BitFieldGet { key, ops } => self.bitfield_get(key, ops),
            ReadOp::Sort { key, options } => self.sort(key, options),
        }
    }
}
