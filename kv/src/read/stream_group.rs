//! Read semantics of XPENDING and XINFO: consumer groups and streams as
//! Redis 7.0 reports them. Idle times are measured from the read's "now".

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use storage::keyspace::kv_elements;
use storage::Family;

use super::ReadCtx;
use crate::error::{CommandError, Result};
use crate::record::{Collection, KeyType};
use crate::reply::Reply;
use crate::stream::group::{self, ConsumerMeta, GroupMeta, Nack, StreamView, ENTRIES_READ_UNKNOWN};
use crate::stream::{self, entry_reply, StoredEntry, StreamId, StreamMeta};

/// XPENDING's extended form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRange {
    /// IDLE: only entries idle at least this long (0: all).
    pub min_idle: i64,
    pub start: StreamId,
    pub end: StreamId,
    pub count: u64,
    /// Only this consumer's entries.
    pub consumer: Option<Bytes>,
}

/// What XINFO reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InfoKind {
    /// XINFO STREAM (`typed`: the subcommand as the client spelled it,
    /// for errors); its options as given (`FULL [COUNT n]`), checked
    /// after the key as Redis does.
    Stream {
        typed: Bytes,
        options: Vec<Bytes>,
    },
    Groups,
    Consumers {
        group: Bytes,
    },
}

fn bulk(text: &str) -> Reply {
    Reply::bulk(text.to_string())
}

fn id_reply(id: StreamId) -> Reply {
    Reply::bulk(id.to_string())
}

fn error(text: String) -> Reply {
    Reply::Error(CommandError::Other(text))
}

/// A stream as the group reads see it.
struct StreamAt<'c, 'a> {
    ctx: &'c ReadCtx<'a>,
    header: Collection,
    meta: StreamMeta,
}

impl StreamAt<'_, '_> {
    /// `(sub-key, value)` from `start` to the end of `prefix`, at most
    /// `limit`.
    fn scan(&self, prefix: &[u8], start: &[u8], limit: usize) -> Result<group::SubEntries> {
        let at = |sub: &[u8]| kv_elements::key(self.ctx.db, self.header.version, sub);
        let (from, to) = (at(start), at(&group::prefix_end(prefix)));
        let mut found = Vec::new();
        for entry in self.ctx.reader.scan(Family::KvElements, &from, Some(&to)).take(limit) {
            let (key, value) = entry?;
            found.push((kv_elements::sub_key(&key).to_vec(), value.into_vec()));
        }
        Ok(found)
    }

    fn all(&self, prefix: &[u8]) -> Result<group::SubEntries> {
        self.scan(prefix, prefix, usize::MAX)
    }

    fn get<T: for<'d> Deserialize<'d>>(&self, sub: &[u8]) -> Result<Option<T>> {
        match self.ctx.element(self.header.version, sub)? {
            None => Ok(None),
            Some(bytes) => Ok(Some(group::decode(&bytes)?)),
        }
    }

    fn group(&self, name: &[u8]) -> Result<Option<GroupMeta>> {
        self.get(&group::group_sub(name))
    }

    /// Every group, by name.
    fn groups(&self) -> Result<Vec<(Bytes, GroupMeta)>> {
        let groups = self.all(&[group::GROUP])?.into_iter();
        groups.map(|(sub, value)| Ok((Bytes::from(sub[1..].to_vec()), group::decode(&value)?))).collect()
    }

    /// The group's consumers, by name.
    fn consumers(&self, name: &[u8]) -> Result<Vec<(Bytes, ConsumerMeta)>> {
        let prefix = group::consumer_prefix(name);
        let consumers = self.all(&prefix)?.into_iter();
        consumers.map(|(sub, value)| Ok((Bytes::from(sub[prefix.len()..].to_vec()), group::decode(&value)?))).collect()
    }

    /// The group's pending entries from `start`, at most `limit`.
    fn pending(&self, name: &[u8], start: StreamId, limit: usize) -> Result<Vec<(StreamId, Nack)>> {
        let prefix = group::pending_prefix(name);
        let from = group::pending_sub(name, start);
        let pending = self.scan(&prefix, &from, limit)?.into_iter();
        pending.map(|(sub, value)| Ok((group::pending_id(&sub)?, group::decode(&value)?))).collect()
    }

    /// One consumer's pending IDs, at most `limit`.
    fn consumer_pending(&self, name: &[u8], consumer: &[u8], limit: usize) -> Result<Vec<StreamId>> {
        let prefix = group::consumer_pending_prefix(name, consumer);
        self.scan(&prefix, &prefix, limit)?.into_iter().map(|(sub, _)| group::pending_id(&sub)).collect()
    }

    fn entries(&self, limit: u64, rev: bool) -> Result<Vec<(StreamId, StoredEntry)>> {
        self.ctx.stream_entries(&self.header, StreamId::MIN, StreamId::MAX, limit, rev)
    }

    fn view(&self) -> Result<StreamView> {
        let first_id = self.entries(1, false)?.first().map_or(StreamId::MIN, |(id, _)| *id);
        Ok(StreamView { len: self.header.len, first_id, meta: self.meta })
    }

    /// The emulated radix-tree nodes that hold entries (`crate::stream`).
    fn nodes(&self) -> Result<u64> {
        let edge = |rev| -> Result<Option<u64>> { Ok(self.entries(1, rev)?.first().map(|(_, e)| e.node)) };
        Ok(match (edge(false)?, edge(true)?) {
            (Some(first), Some(last)) => last - first + 1,
            _ => 0,
        })
    }
}

fn lag_reply(view: &StreamView, group: &GroupMeta) -> Reply {
    view.lag(group).map_or(Reply::Nil, Reply::Int)
}

fn entries_read_reply(group: &GroupMeta) -> Reply {
    match group.entries_read {
        ENTRIES_READ_UNKNOWN => Reply::Nil,
        read => Reply::Int(read),
    }
}

impl ReadCtx<'_> {
    /// The stream at `key` (counted as a hit or miss), `None` if absent.
    fn stream_at(&self, key: &[u8]) -> Result<std::result::Result<Option<StreamAt<'_, '_>>, CommandError>> {
        Ok(match self.lookup(key)? {
            None => Ok(None),
            Some(record) if record.kind != KeyType::Stream => Err(CommandError::WrongType),
            Some(record) => Ok(Some(StreamAt { ctx: self, header: record.header()?, meta: record.stream_meta()? })),
        })
    }

    /// XPENDING: the summary, or with `range` the pending entries.
    pub fn xpending(&self, key: &Bytes, name: &Bytes, range: &Option<PendingRange>) -> Result<Reply> {
        self.consistent(|ctx| {
            let stream = match ctx.stream_at(key)? {
                Err(error) => return Ok(error.into()),
                Ok(stream) => stream,
            };
            let found = match &stream {
                Some(stream) => stream.group(name)?.map(|group| (stream, group)),
                None => None,
            };
            let Some((stream, _)) = found else {
                let (key, name) = (String::from_utf8_lossy(key), String::from_utf8_lossy(name));
                return Ok(error(format!("NOGROUP No such key '{key}' or consumer group '{name}'")));
            };
            match range {
                None => ctx.pending_summary(stream, name),
                Some(range) => ctx.pending_range(stream, name, range),
            }
        })
    }

    fn pending_summary(&self, stream: &StreamAt<'_, '_>, name: &[u8]) -> Result<Reply> {
        let pending = stream.pending(name, StreamId::MIN, usize::MAX)?;
        let (Some((first, _)), Some((last, _))) = (pending.first(), pending.last()) else {
            return Ok(Reply::Array(vec![Reply::Int(0), Reply::Nil, Reply::Nil, Reply::NilArray]));
        };
        let mut owners: BTreeMap<&[u8], u64> = BTreeMap::new();
        for (_, nack) in &pending {
            *owners.entry(&nack.consumer).or_default() += 1;
        }
        let owners = owners
            .into_iter()
            .map(|(consumer, count)| {
                Reply::Array(vec![Reply::Bulk(Bytes::copy_from_slice(consumer)), Reply::bulk(count.to_string())])
            })
            .collect();
        Ok(Reply::Array(vec![
            Reply::Int(pending.len() as i64),
            id_reply(*first),
            id_reply(*last),
            Reply::Array(owners),
        ]))
    }

    fn pending_range(&self, stream: &StreamAt<'_, '_>, name: &[u8], range: &PendingRange) -> Result<Reply> {
        let ids: Vec<StreamId> = match &range.consumer {
            Some(consumer) => {
                if stream.get::<ConsumerMeta>(&group::consumer_sub(name, consumer))?.is_none() {
                    return Ok(Reply::Array(Vec::new()));
                }
                let ids = stream.consumer_pending(name, consumer, usize::MAX)?;
                ids.into_iter().filter(|id| *id >= range.start).collect()
            }
            None => stream.pending(name, range.start, usize::MAX)?.into_iter().map(|(id, _)| id).collect(),
        };
        let mut found = Vec::new();
        for id in ids.into_iter().take_while(|id| *id <= range.end) {
            if found.len() as u64 >= range.count {
                break;
            }
            let Some(nack) = stream.get::<Nack>(&group::pending_sub(name, id))? else { continue };
            let idle = self.now_ms as i64 - nack.delivery_time as i64;
            if range.min_idle != 0 && idle < range.min_idle {
                continue;
            }
            found.push(Reply::Array(vec![
                id_reply(id),
                Reply::Bulk(nack.consumer),
                Reply::Int(idle.max(0)),
                Reply::Int(nack.delivery_count as i64),
            ]));
        }
        Ok(Reply::Array(found))
    }

    /// XINFO STREAM, GROUPS and CONSUMERS.
    pub fn xinfo(&self, key: &Bytes, kind: &InfoKind) -> Result<Reply> {
        self.consistent(|ctx| {
            let stream = match ctx.stream_at(key)? {
                Err(error) => return Ok(error.into()),
                Ok(None) => return Ok(CommandError::NoSuchKey.into()),
                Ok(Some(stream)) => stream,
            };
            match kind {
                InfoKind::Stream { typed, options } => ctx.stream_info(&stream, typed, options),
                InfoKind::Groups => {
                    let view = stream.view()?;
                    let mut groups = Vec::new();
                    for (name, group) in stream.groups()? {
                        groups.push(Reply::Map(vec![
                            (bulk("name"), Reply::Bulk(name.clone())),
                            (bulk("consumers"), Reply::Int(stream.consumers(&name)?.len() as i64)),
                            (
                                bulk("pending"),
                                Reply::Int(stream.pending(&name, StreamId::MIN, usize::MAX)?.len() as i64),
                            ),
                            (bulk("last-delivered-id"), id_reply(group.last_id)),
                            (bulk("entries-read"), entries_read_reply(&group)),
                            (bulk("lag"), lag_reply(&view, &group)),
                        ]));
                    }
                    Ok(Reply::Array(groups))
                }
                InfoKind::Consumers { group: name } => {
                    if stream.group(name)?.is_none() {
                        let (name, key) = (String::from_utf8_lossy(name), String::from_utf8_lossy(key));
                        return Ok(error(format!("NOGROUP No such consumer group '{name}' for key name '{key}'")));
                    }
                    let mut consumers = Vec::new();
                    for (consumer, meta) in stream.consumers(name)? {
                        let pending = stream.consumer_pending(name, &consumer, usize::MAX)?.len();
                        consumers.push(Reply::Map(vec![
                            (bulk("name"), Reply::Bulk(consumer)),
                            (bulk("pending"), Reply::Int(pending as i64)),
                            (bulk("idle"), Reply::Int((self.now_ms as i64 - meta.seen_time as i64).max(0))),
                        ]));
                    }
                    Ok(Reply::Array(consumers))
                }
            }
        })
    }

    /// XINFO STREAM `key` [FULL [COUNT n]].
    fn stream_info(&self, stream: &StreamAt<'_, '_>, typed: &[u8], options: &[Bytes]) -> Result<Reply> {
        let syntax = || {
            let typed = String::from_utf8_lossy(typed);
            error(format!("ERR unknown subcommand or wrong number of arguments for '{typed}'. Try XINFO HELP."))
        };
        let full = match options {
            [] => None,
            [full] if full.eq_ignore_ascii_case(b"FULL") => Some(10),
            [full, count, n] if full.eq_ignore_ascii_case(b"FULL") && count.eq_ignore_ascii_case(b"COUNT") => {
                match crate::number::parse_i64(n) {
                    None => return Ok(CommandError::NotInteger.into()),
                    Some(n) if n < 0 => Some(10),
                    Some(n) => Some(n as u64),
                }
            }
            _ => return Ok(syntax()),
        };
        let view = stream.view()?;
        let nodes = stream.nodes()?;
        let mut info = vec![
            (bulk("length"), Reply::Int(stream.header.len as i64)),
            (bulk("radix-tree-keys"), Reply::Int(nodes as i64)),
            (bulk("radix-tree-nodes"), Reply::Int(if nodes == 0 { 1 } else { nodes as i64 + 1 })),
            (bulk("last-generated-id"), id_reply(stream.meta.last_id)),
            (bulk("max-deleted-entry-id"), id_reply(stream.meta.max_deleted)),
            (bulk("entries-added"), Reply::Int(stream.meta.entries_added as i64)),
            (bulk("recorded-first-entry-id"), id_reply(view.first_id)),
        ];
        let Some(count) = full else {
            let edge = |rev| -> Result<Reply> {
                Ok(stream.entries(1, rev)?.pop().map_or(Reply::Nil, |(id, entry)| entry_reply(id, entry)))
            };
            info.push((bulk("groups"), Reply::Int(stream.groups()?.len() as i64)));
            info.push((bulk("first-entry"), edge(false)?));
            info.push((bulk("last-entry"), edge(true)?));
            return Ok(Reply::Map(info));
        };
        let limit = if count == 0 { usize::MAX } else { count as usize };
        let entries = stream.entries(limit as u64, false)?;
        info.push((bulk("entries"), Reply::Array(entries.into_iter().map(|(id, e)| entry_reply(id, e)).collect())));
        let mut groups = Vec::new();
        for (name, group) in stream.groups()? {
            let pending = stream.pending(&name, StreamId::MIN, usize::MAX)?;
            let shown = pending.iter().take(limit).map(|(id, nack)| {
                Reply::Array(vec![
                    id_reply(*id),
                    Reply::Bulk(nack.consumer.clone()),
                    Reply::Int(nack.delivery_time as i64),
                    Reply::Int(nack.delivery_count as i64),
                ])
            });
            let pending_shown = Reply::Array(shown.collect());
            let mut consumers = Vec::new();
            for (consumer, meta) in stream.consumers(&name)? {
                let ids = stream.consumer_pending(&name, &consumer, usize::MAX)?;
                let mut shown = Vec::new();
                for id in ids.iter().take(limit) {
                    let nack = stream.get::<Nack>(&group::pending_sub(&name, *id))?.ok_or_else(|| {
                        stream::corrupt(format!("pending entry {id} of a consumer is not in its group's list"))
                    })?;
                    let (time, count) = (nack.delivery_time as i64, nack.delivery_count as i64);
                    shown.push(Reply::Array(vec![id_reply(*id), Reply::Int(time), Reply::Int(count)]));
                }
                consumers.push(Reply::Map(vec![
                    (bulk("name"), Reply::Bulk(consumer)),
                    (bulk("seen-time"), Reply::Int(meta.seen_time as i64)),
                    (bulk("pel-count"), Reply::Int(ids.len() as i64)),
                    (bulk("pending"), Reply::Array(shown)),
                ]));
            }
            groups.push(Reply::Map(vec![
                (bulk("name"), Reply::Bulk(name)),
                (bulk("last-delivered-id"), id_reply(group.last_id)),
                (bulk("entries-read"), entries_read_reply(&group)),
                (bulk("lag"), lag_reply(&view, &group)),
                (bulk("pel-count"), Reply::Int(pending.len() as i64)),
                (bulk("pending"), pending_shown),
                (bulk("consumers"), Reply::Array(consumers)),
            ]));
        }
        info.push((bulk("groups"), Reply::Array(groups)));
        Ok(Reply::Map(info))
    }
}
