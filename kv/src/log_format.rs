//! The Raft log stores commands with postcard, which writes an enum variant
//! as its position in the declaration. A variant inserted before others
//! would make every node that runs the new code read old entries as other
//! commands. These tests pin the position of every variant that the log
//! carries: new variants go at the end. Fields are stored by position too;
//! a command that needs a new field gets a new variant.

use serde::de::{self, DeserializeOwned, Visitor};
use serde::forward_to_deserialize_any;

/// A deserializer that only records the variant names an enum's
/// `Deserialize` asks for, in declaration order.
#[derive(Default)]
struct VariantNames(Option<&'static [&'static str]>);

impl<'de> de::Deserializer<'de> for &mut VariantNames {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not an enum"))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0 = Some(variants);
        Err(de::Error::custom("variant names recorded"))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

fn variants<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut names = VariantNames::default();
    let _ = T::deserialize(&mut names);
    names.0.expect("an enum")
}

/// Every enum the log carries, with its variants as released.
fn released() -> Vec<(&'static str, &'static [&'static str], &'static [&'static str])> {
    use crate::bits::{BitOperation, FieldOp, Overflow};
    use crate::command::*;
    use crate::read::{HashPart, LcsOutput, ReadOp};
    use crate::set_algebra::SetAlgebra;
    use crate::sorted::{Aggregate, Combine, LexBound, RangeSpec, ScoreBound};
    vec![
        ("WriteOp", variants::<WriteOp>(), WRITE_OP),
        ("ReadOp", variants::<ReadOp>(), READ_OP),
        ("TxnStep", variants::<TxnStep>(), TXN_STEP),
        ("SetCondition", variants::<SetCondition>(), SET_CONDITION),
        ("SetExpiry", variants::<SetExpiry>(), SET_EXPIRY),
        ("SetReply", variants::<SetReply>(), SET_REPLY),
        ("ExpireCondition", variants::<ExpireCondition>(), EXPIRE_CONDITION),
        ("ExpireAt", variants::<ExpireAt>(), EXPIRE_AT),
        ("HashSetMode", variants::<HashSetMode>(), HASH_SET_MODE),
        ("End", variants::<End>(), END),
        ("SetAlgebra", variants::<SetAlgebra>(), SET_ALGEBRA),
        ("PopShape", variants::<PopShape>(), POP_SHAPE),
        ("HashPart", variants::<HashPart>(), HASH_PART),
        ("LcsOutput", variants::<LcsOutput>(), LCS_OUTPUT),
        ("ScoreBound", variants::<ScoreBound>(), SCORE_BOUND),
        ("LexBound", variants::<LexBound>(), LEX_BOUND),
        ("RangeSpec", variants::<RangeSpec>(), RANGE_SPEC),
        ("Combine", variants::<Combine>(), COMBINE),
        ("Aggregate", variants::<Aggregate>(), AGGREGATE),
        ("BitOperation", variants::<BitOperation>(), BIT_OPERATION),
        ("Overflow", variants::<Overflow>(), OVERFLOW),
        ("FieldOp", variants::<FieldOp>(), FIELD_OP),
        ("BlockingPop", variants::<BlockingPop>(), BLOCKING_POP),
        ("AddId", variants::<crate::stream::AddId>(), ADD_ID),
        ("TrimStrategy", variants::<crate::stream::TrimStrategy>(), TRIM_STRATEGY),
        ("GroupCommand", variants::<crate::stream::group::GroupCommand>(), GROUP_COMMAND),
        ("InfoKind", variants::<crate::read::InfoKind>(), INFO_KIND),
        ("ScriptSource", variants::<crate::script::ScriptSource>(), SCRIPT_SOURCE),
        ("RestorePolicy", variants::<RestorePolicy>(), RESTORE_POLICY),
    ]
}

#[test]
fn every_released_variant_keeps_its_position() {
    for (name, actual, released) in released() {
        assert!(
            actual.starts_with(released),
            "{name}'s variants moved: the log stores them by position, so new ones go at the end\n\
             released: {released:?}\nnow:      {actual:?}"
        );
    }
}

// The variants as released, in declaration order.
const WRITE_OP: &[&str] = &[
    "Set",
    "MSet",
    "GetDel",
    "GetEx",
    "IncrBy",
    "IncrByFloat",
    "Append",
    "SetRange",
    "Del",
    "Rename",
    "Copy",
    "Expire",
    "Persist",
    "FlushDb",
    "FlushAll",
    "ExpireDue",
    "HSet",
    "HDel",
    "HIncrBy",
    "HIncrByFloat",
    "LPush",
    "LPop",
    "LPopFirst",
    "LMove",
    "LSet",
    "LInsert",
    "LRem",
    "LTrim",
    "SAdd",
    "SRem",
    "SPop",
    "SMove",
    "SStore",
    "ZAdd",
    "ZRem",
    "ZRemRange",
    "ZPop",
    "ZPopFirst",
    "ZStore",
    "ZRangeStore",
    "SetBit",
    "BitOp",
    "BitField",
    "Move",
    "SortStore",
    "Exec",
    "Restore",
    "Block",
    "Unblock",
    "PurgeWaiters",
    "SwapDb",
    "PfAdd",
    "PfCount",
    "PfMerge",
    "PfDebug",
    "GeoSearchStore",
    "Observed",
    "XAdd",
    "XDel",
    "XTrim",
    "XSetId",
    "XGroup",
    "XReadGroup",
    "XAck",
    "XClaim",
    "XAutoClaim",
    "Eval",
    "ScriptLoad",
    "ScriptFlush",
    "FunctionLoad",
    "FunctionDelete",
    "FunctionFlush",
    "FunctionRestore",
    "FCall",
];
const READ_OP: &[&str] = &[
    "Get",
    "MGet",
    "StrLen",
    "GetRange",
    "Lcs",
    "Exists",
    "Type",
    "Ttl",
    "ExpireTime",
    "ObjectEncoding",
    "ObjectConstant",
    "Keys",
    "Scan",
    "RandomKey",
    "DbSize",
    "HGet",
    "HMGet",
    "HGetAll",
    "HExists",
    "HLen",
    "HStrLen",
    "HRandField",
    "HScan",
    "LLen",
    "LIndex",
    "LRange",
    "LPos",
    "SMembers",
    "SIsMember",
    "SCard",
    "SRandMember",
    "SAlgebra",
    "SInterCard",
    "SScan",
    "ZScore",
    "ZCard",
    "ZCount",
    "ZRange",
    "ZRank",
    "ZCombine",
    "ZInterCard",
    "ZRandMember",
    "ZScan",
    "GetBit",
    "BitCount",
    "BitPos",
    "BitFieldGet",
    "Sort",
    "Dump",
    "ObjectEncodingWith",
    "MemoryUsage",
    "PfCountUnion",
    "GeoPos",
    "GeoHash",
    "GeoDist",
    "GeoSearch",
    "XLen",
    "XRange",
    "XRead",
    "XPending",
    "XInfo",
    "ScriptExists",
    "FunctionList",
    "FunctionDump",
    "FunctionStats",
    "ObjectFreq",
];
const TXN_STEP: &[&str] = &["Write", "Read", "Reply"];
const SET_CONDITION: &[&str] = &["Always", "IfAbsent", "IfPresent"];
const SET_EXPIRY: &[&str] = &["Clear", "Keep", "AfterMs", "AtMs"];
const SET_REPLY: &[&str] = &["Ok", "OldValue", "Flag"];
const EXPIRE_CONDITION: &[&str] = &["Always", "IfNone", "IfSome", "IfGreater", "IfLess", "IfSomeAndLess"];
const EXPIRE_AT: &[&str] = &["AfterMs", "AtMs"];
const HASH_SET_MODE: &[&str] = &["Count", "Ok", "IfAbsent"];
const END: &[&str] = &["Left", "Right"];
const SET_ALGEBRA: &[&str] = &["Inter", "Union", "Diff"];
const POP_SHAPE: &[&str] = &["Flat", "Nested"];
const HASH_PART: &[&str] = &["Both", "Fields", "Values"];
const LCS_OUTPUT: &[&str] = &["String", "Length", "Ranges"];
const SCORE_BOUND: &[&str] = &["Inclusive", "Exclusive"];
const LEX_BOUND: &[&str] = &["Min", "Max", "Inclusive", "Exclusive"];
const RANGE_SPEC: &[&str] = &["Rank", "Score", "Lex"];
const COMBINE: &[&str] = &["Union", "Inter", "Diff"];
const AGGREGATE: &[&str] = &["Sum", "Min", "Max"];
const BIT_OPERATION: &[&str] = &["And", "Or", "Xor", "Not"];
const OVERFLOW: &[&str] = &["Wrap", "Sat", "Fail"];
const FIELD_OP: &[&str] = &["Get", "Set", "IncrBy"];
const BLOCKING_POP: &[&str] = &["List", "Move", "ZSet", "Stream", "Group"];
const ADD_ID: &[&str] = &["Auto", "AutoSeq", "Exact"];
const TRIM_STRATEGY: &[&str] = &["MaxLen", "MinId"];
const INFO_KIND: &[&str] = &["Stream", "Groups", "Consumers"];
const GROUP_COMMAND: &[&str] = &["Create", "SetId", "Destroy", "CreateConsumer", "DelConsumer", "Malformed"];

const SCRIPT_SOURCE: &[&str] = &["Body", "Sha"];
const RESTORE_POLICY: &[&str] = &["Flush", "Append", "Replace"];
