//! Write semantics of the consumer-group commands (`crate::stream::group`):
//! XGROUP, XREADGROUP, XACK, XCLAIM, XAUTOCLAIM, in Redis 7.0's order of
//! checks. Delivery and idle times are the entry's stamp, so every replica
//! records the same ones.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use storage::keyspace::kv_elements;
use storage::{Family, Reader};

use super::stream::{existing, first_entry, last_entry, OpenStream};
use super::txn::Txn;
use super::{Fail, OpResult};
use crate::error::CommandError;
use crate::notify::class::STREAM;
use crate::reply::Reply;
use crate::stream::group::{self, ConsumerMeta, GroupCommand, GroupMeta, Nack, StreamView};
use crate::stream::{self, entry_reply, StoredEntry, StreamId};

fn error(message: &str) -> Fail {
    CommandError::Other(format!("ERR {message}")).into()
}

fn no_group(text: String) -> Fail {
    CommandError::Other(format!("NOGROUP {text}")).into()
}

/// A stream's elements, addressed by sub-key.
struct Elements {
    db: u8,
    version: u64,
}

impl Elements {
    fn of(db: u8, stream: &OpenStream) -> Self {
        Elements { db, version: stream.header.version }
    }

    fn key(&self, sub: &[u8]) -> Vec<u8> {
        kv_elements::key(self.db, self.version, sub)
    }

    fn get<T: for<'a> Deserialize<'a>>(&self, txn: &Txn<'_>, sub: &[u8]) -> Result<Option<T>, Fail> {
        match Reader::get(txn, Family::KvElements, &self.key(sub))? {
            None => Ok(None),
            Some(bytes) => Ok(Some(group::decode(&bytes)?)),
        }
    }

    fn put<T: Serialize>(&self, txn: &mut Txn<'_>, sub: &[u8], value: &T) {
        txn.put_element(Family::KvElements, self.key(sub), group::encode(value));
    }

    fn delete(&self, txn: &mut Txn<'_>, sub: &[u8]) {
        txn.delete_element(Family::KvElements, self.key(sub));
    }

    /// The `(sub-key, value)` pairs from `start` (a sub-key) to the end of
    /// `prefix`, at most `limit`.
    fn scan(&self, txn: &Txn<'_>, prefix: &[u8], start: &[u8], limit: usize) -> Result<group::SubEntries, Fail> {
        let (from, to) = (self.key(start), self.key(&group::prefix_end(prefix)));
        let mut found = Vec::new();
        for entry in Reader::scan(txn, Family::KvElements, &from, Some(&to)).take(limit) {
            let (key, value) = entry?;
            found.push((kv_elements::sub_key(&key).to_vec(), value.into_vec()));
        }
        Ok(found)
    }

    fn entry(&self, txn: &Txn<'_>, id: StreamId) -> Result<Option<StoredEntry>, Fail> {
        match Reader::get(txn, Family::KvElements, &self.key(&stream::entry_sub(id)))? {
            None => Ok(None),
            Some(bytes) => Ok(Some(StoredEntry::decode(&bytes)?)),
        }
    }

    /// Records `id` as pending for `consumer` (taking it from another
    /// owner if it had one).
    fn assign(&self, txn: &mut Txn<'_>, group: &[u8], id: StreamId, nack: Nack) -> Result<(), Fail> {
        let sub = group::pending_sub(group, id);
        if let Some(old) = self.get::<Nack>(txn, &sub)? {
            self.delete(txn, &group::consumer_pending_sub(group, &old.consumer, id));
        }
        self.put(txn, &group::consumer_pending_sub(group, &nack.consumer, id), &());
        self.put(txn, &sub, &nack);
        Ok(())
    }

    /// Removes `id` from the PELs; whether it was pending.
    fn acknowledge(&self, txn: &mut Txn<'_>, group: &[u8], id: StreamId) -> Result<bool, Fail> {
        let sub = group::pending_sub(group, id);
        let Some(nack) = self.get::<Nack>(txn, &sub)? else { return Ok(false) };
        self.delete(txn, &group::consumer_pending_sub(group, &nack.consumer, id));
        self.delete(txn, &sub);
        Ok(true)
    }

    /// The consumer, refreshed (its seen time now), or created (notified).
    fn touch_consumer(&self, txn: &mut Txn<'_>, key: &Bytes, group: &[u8], consumer: &[u8]) -> Result<(), Fail> {
        let sub = group::consumer_sub(group, consumer);
        if self.get::<ConsumerMeta>(txn, &sub)?.is_none() {
            txn.notify(STREAM, "xgroup-createconsumer", self.db, key);
        }
        self.put(txn, &sub, &ConsumerMeta { seen_time: txn.now_ms });
        Ok(())
    }
}

/// What a group's counters need to know of its stream.
fn view(txn: &Txn<'_>, db: u8, stream: &OpenStream) -> Result<StreamView, Fail> {
    let first_id = first_entry(txn, db, stream)?.unwrap_or(StreamId::MIN);
    Ok(StreamView { len: stream.header.len, first_id, meta: stream.meta })
}

/// XGROUP (module docs of `GroupCommand`).
pub(super) fn xgroup(txn: &mut Txn<'_>, db: u8, key: Bytes, name: Bytes, command: GroupCommand) -> OpResult {
    let stream = existing(txn, db, &key)?;
    let mkstream = matches!(command, GroupCommand::Create { mkstream: true, .. });
    let found = match &stream {
        Some(stream) => Elements::of(db, stream).get::<GroupMeta>(txn, &group::group_sub(&name))?,
        None => None,
    };
    if !mkstream {
        if stream.is_none() {
            return Err(error(
                "The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the \
                 MKSTREAM option to create an empty stream automatically.",
            ));
        }
        let needs_group = match &command {
            GroupCommand::SetId { .. } | GroupCommand::CreateConsumer { .. } | GroupCommand::DelConsumer { .. } => true,
            GroupCommand::Malformed { needs_group, .. } => *needs_group,
            _ => false,
        };
        if needs_group && found.is_none() {
            let (name, key) = (String::from_utf8_lossy(&name), String::from_utf8_lossy(&key));
            return Err(no_group(format!("No such consumer group '{name}' for key name '{key}'")));
        }
    }
    match command {
        GroupCommand::Malformed { subcommand, .. } => Err(CommandError::Other(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try XGROUP HELP.",
            String::from_utf8_lossy(&subcommand)
        ))
        .into()),
        GroupCommand::Create { id, entries_read, .. } => {
            let last_id = match id.as_ref() {
                b"$" => stream.as_ref().map_or(StreamId::MIN, |s| s.meta.last_id),
                _ => StreamId::parse(&id, 0, true, false)?.id,
            };
            let stream = match stream {
                Some(stream) => stream,
                None => {
                    let stream = OpenStream::new(txn)?;
                    super::stream::save(txn, db, &key, &stream)?;
                    stream
                }
            };
            if found.is_some() {
                return Err(CommandError::Other("BUSYGROUP Consumer Group name already exists".into()).into());
            }
            Elements::of(db, &stream).put(txn, &group::group_sub(&name), &GroupMeta { last_id, entries_read });
            txn.notify(STREAM, "xgroup-create", db, &key);
            Ok(Reply::ok())
        }
        GroupCommand::SetId { id, entries_read } => {
            let stream = stream.expect("checked above");
            let last_id = match id.as_ref() {
                b"$" => stream.meta.last_id,
                _ => StreamId::parse(&id, 0, false, false)?.id,
            };
            Elements::of(db, &stream).put(txn, &group::group_sub(&name), &GroupMeta { last_id, entries_read });
            txn.notify(STREAM, "xgroup-setid", db, &key);
            Ok(Reply::ok())
        }
        GroupCommand::Destroy => {
            let Some(stream) = stream.filter(|_| found.is_some()) else { return Ok(Reply::Int(0)) };
            let elements = Elements::of(db, &stream);
            elements.delete(txn, &group::group_sub(&name));
            for prefix in [group::pending_prefix(&name), group::consumer_prefix(&name)] {
                for (sub, _) in elements.scan(txn, &prefix, &prefix, usize::MAX)? {
                    elements.delete(txn, &sub);
                }
            }
            let consumer_pels = group::consumer_pendings_prefix(&name);
            for (sub, _) in elements.scan(txn, &consumer_pels, &consumer_pels, usize::MAX)? {
                elements.delete(txn, &sub);
            }
            txn.notify(STREAM, "xgroup-destroy", db, &key);
            // Clients blocked in XREADGROUP on the group learn it is gone.
            txn.signal(db, key);
            Ok(Reply::Int(1))
        }
        GroupCommand::CreateConsumer { consumer } => {
            let elements = Elements::of(db, stream.as_ref().expect("checked above"));
            let sub = group::consumer_sub(&name, &consumer);
            if elements.get::<ConsumerMeta>(txn, &sub)?.is_some() {
                return Ok(Reply::Int(0));
            }
            elements.put(txn, &sub, &ConsumerMeta { seen_time: txn.now_ms });
            txn.notify(STREAM, "xgroup-createconsumer", db, &key);
            Ok(Reply::Int(1))
        }
        GroupCommand::DelConsumer { consumer } => {
            let elements = Elements::of(db, stream.as_ref().expect("checked above"));
            let sub = group::consumer_sub(&name, &consumer);
            if elements.get::<ConsumerMeta>(txn, &sub)?.is_none() {
                return Ok(Reply::Int(0));
            }
            let prefix = group::consumer_pending_prefix(&name, &consumer);
            let pending = elements.scan(txn, &prefix, &prefix, usize::MAX)?;
            for (sub, _) in &pending {
                elements.delete(txn, sub);
                elements.delete(txn, &group::pending_sub(&name, group::pending_id(sub)?));
            }
            elements.delete(txn, &sub);
            txn.notify(STREAM, "xgroup-delconsumer", db, &key);
            Ok(Reply::Int(pending.len() as i64))
        }
    }
}

/// XREADGROUP's read of one stream.
struct GroupRead {
    key: Bytes,
    stream: OpenStream,
    group: GroupMeta,
    /// `None` for `>` (new entries), else the consumer's history above it.
    after: Option<StreamId>,
}

/// XREADGROUP (and a blocked one being served): per stream, new entries
/// (`>`: delivered to the group, pending for `consumer` unless `noack`) or
/// the consumer's own history above an ID. A null array when nothing is
/// served.
#[allow(clippy::too_many_arguments)]
pub(super) fn xreadgroup(
    txn: &mut Txn<'_>,
    db: u8,
    name: &Bytes,
    consumer: &Bytes,
    keys: &[Bytes],
    ids: &[Bytes],
    count: u64,
    noack: bool,
) -> OpResult {
    let mut reads = Vec::with_capacity(keys.len());
    for (key, id) in keys.iter().zip(ids) {
        let stream = existing(txn, db, key)?;
        if stream.is_none() {
            txn.key_miss(db, key);
        }
        let found = match &stream {
            Some(stream) => Elements::of(db, stream).get::<GroupMeta>(txn, &group::group_sub(name))?,
            None => None,
        };
        let (Some(stream), Some(group)) = (stream, found) else {
            let (key, name) = (String::from_utf8_lossy(key), String::from_utf8_lossy(name));
            return Err(no_group(format!(
                "No such key '{key}' or consumer group '{name}' in XREADGROUP with GROUP option"
            )));
        };
        let after = match id.as_ref() {
            b"$" => {
                return Err(error(
                    "The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this \
                     consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just \
                     return an empty result set.",
                ))
            }
            b">" => None,
            _ => Some(StreamId::parse(id, 0, true, false)?.id),
        };
        reads.push(GroupRead { key: key.clone(), stream, group, after });
    }
    let limit = if count == 0 { usize::MAX } else { count as usize };
    let mut served = Vec::new();
    for mut read in reads {
        let elements = Elements::of(db, &read.stream);
        let entries = match read.after {
            Some(after) => {
                elements.touch_consumer(txn, &read.key, name, consumer)?;
                history(txn, &elements, name, consumer, after, limit)?
            }
            None => {
                let newest = last_entry(txn, db, &read.stream)?;
                if read.stream.header.len == 0 || newest.is_none_or(|newest| newest <= read.group.last_id) {
                    continue;
                }
                elements.touch_consumer(txn, &read.key, name, consumer)?;
                deliver_new(txn, db, &elements, &mut read, name, consumer, limit, noack)?
            }
        };
        served.push((Reply::Bulk(read.key), Reply::Array(entries)));
    }
    Ok(if served.is_empty() { Reply::NilArray } else { Reply::KeyedArrays(served) })
}

/// A client blocked in XREADGROUP on `key` (a stream now): an error if
/// its group is gone, new entries if there are some (`None`: keep
/// waiting).
pub(super) fn serve_blocked(
    txn: &mut Txn<'_>,
    db: u8,
    key: &Bytes,
    name: &Bytes,
    consumer: &Bytes,
    count: u64,
    noack: bool,
) -> Result<Option<Reply>, Fail> {
    if stream_group(txn, db, key, name)?.is_none() {
        let gone = "NOGROUP the consumer group this client was blocked on no longer exists";
        return Err(CommandError::Other(gone.into()).into());
    }
    let reply =
        xreadgroup(txn, db, name, consumer, std::slice::from_ref(key), &[Bytes::from_static(b">")], count, noack)?;
    Ok(Some(reply).filter(|reply| *reply != Reply::NilArray))
}

/// The consumer's pending entries above `after`, each delivered again
/// (an entry deleted since answers its ID and a null array).
fn history(
    txn: &mut Txn<'_>,
    elements: &Elements,
    name: &[u8],
    consumer: &[u8],
    after: StreamId,
    limit: usize,
) -> Result<Vec<Reply>, Fail> {
    let Some(start) = after.next() else { return Ok(Vec::new()) };
    let prefix = group::consumer_pending_prefix(name, consumer);
    let mut from = prefix.clone();
    from.extend_from_slice(&start.encode());
    let mut entries = Vec::new();
    for (sub, _) in elements.scan(txn, &prefix, &from, limit)? {
        let id = group::pending_id(&sub)?;
        match elements.entry(txn, id)? {
            None => entries.push(Reply::Array(vec![Reply::bulk(id.to_string()), Reply::NilArray])),
            Some(entry) => {
                let pending = group::pending_sub(name, id);
                if let Some(mut nack) = elements.get::<Nack>(txn, &pending)? {
                    nack.delivery_time = txn.now_ms;
                    nack.delivery_count += 1;
                    elements.put(txn, &pending, &nack);
                }
                entries.push(entry_reply(id, entry));
            }
        }
    }
    Ok(entries)
}

/// New entries above the group's last ID, delivered to it.
#[allow(clippy::too_many_arguments)]
fn deliver_new(
    txn: &mut Txn<'_>,
    db: u8,
    elements: &Elements,
    read: &mut GroupRead,
    name: &[u8],
    consumer: &Bytes,
    limit: usize,
    noack: bool,
) -> Result<Vec<Reply>, Fail> {
    let view = view(txn, db, &read.stream)?;
    let Some(start) = read.group.last_id.next() else { return Ok(Vec::new()) };
    let from = stream::entry_sub(start);
    let mut entries = Vec::new();
    for (sub, value) in elements.scan(txn, &[stream::ENTRY], &from, limit)? {
        let id = stream::entry_id(&sub)?;
        view.deliver(&mut read.group, id);
        if !noack {
            let nack = Nack { consumer: consumer.clone(), delivery_time: txn.now_ms, delivery_count: 1 };
            elements.assign(txn, name, id, nack)?;
        }
        entries.push(entry_reply(id, StoredEntry::decode(&value)?));
    }
    elements.put(txn, &group::group_sub(name), &read.group);
    Ok(entries)
}

/// The stream and group of XACK, XCLAIM, XAUTOCLAIM: WRONGTYPE for
/// another type, `None` for no key or no group.
fn stream_group(txn: &mut Txn<'_>, db: u8, key: &Bytes, name: &[u8]) -> Result<Option<(OpenStream, GroupMeta)>, Fail> {
    let Some(stream) = existing(txn, db, key)? else { return Ok(None) };
    let found = Elements::of(db, &stream).get::<GroupMeta>(txn, &group::group_sub(name))?;
    Ok(found.map(|group| (stream, group)))
}

/// [`stream_group`] for XACK, XCLAIM and XAUTOCLAIM, which look the
/// key up to be read (a missing key is a `keymiss`).
fn read_stream_group(
    txn: &mut Txn<'_>,
    db: u8,
    key: &Bytes,
    name: &[u8],
) -> Result<Option<(OpenStream, GroupMeta)>, Fail> {
    let found = stream_group(txn, db, key, name)?;
    if found.is_none() && existing(txn, db, key)?.is_none() {
        txn.key_miss(db, key);
    }
    Ok(found)
}

fn no_key_or_group(key: &[u8], name: &[u8]) -> Fail {
    let (key, name) = (String::from_utf8_lossy(key), String::from_utf8_lossy(name));
    no_group(format!("No such key '{key}' or consumer group '{name}'"))
}

/// XACK: the IDs are parsed after the key and group are found, all or
/// nothing; answers how many were pending.
pub(super) fn xack(txn: &mut Txn<'_>, db: u8, key: Bytes, name: Bytes, ids: Vec<Bytes>) -> OpResult {
    let Some((stream, _)) = read_stream_group(txn, db, &key, &name)? else { return Ok(Reply::Int(0)) };
    let ids = ids.iter().map(|id| StreamId::parse(id, 0, true, false).map(|p| p.id)).collect::<Result<Vec<_>, _>>()?;
    let elements = Elements::of(db, &stream);
    let mut acknowledged = 0;
    for id in ids {
        acknowledged += i64::from(elements.acknowledge(txn, &name, id)?);
    }
    Ok(Reply::Int(acknowledged))
}

/// XCLAIM's arguments after the consumer, parsed after the key and group
/// are found, as Redis does.
struct ClaimArgs {
    min_idle: u64,
    ids: Vec<StreamId>,
    delivery_time: Option<i64>,
    retry_count: Option<u64>,
    force: bool,
    justid: bool,
    last_id: StreamId,
}

fn claim_args(words: &[Bytes], now: u64) -> Result<ClaimArgs, Fail> {
    let integer = |word: &[u8], message: &str| kv_integer(word).ok_or_else(|| error(message));
    let min_idle = integer(&words[0], "Invalid min-idle-time argument for XCLAIM")?.max(0) as u64;
    let mut at = 1;
    let mut ids = Vec::new();
    while let Some(Ok(parsed)) = words.get(at).map(|w| StreamId::parse(w, 0, true, false)) {
        ids.push(parsed.id);
        at += 1;
    }
    let mut args = ClaimArgs {
        min_idle,
        ids,
        delivery_time: None,
        retry_count: None,
        force: false,
        justid: false,
        last_id: StreamId::MIN,
    };
    while at < words.len() {
        let more = at + 1 < words.len();
        let option = words[at].to_ascii_uppercase();
        match option.as_slice() {
            b"FORCE" => args.force = true,
            b"JUSTID" => args.justid = true,
            b"IDLE" if more => {
                at += 1;
                let idle = integer(&words[at], "Invalid IDLE option argument for XCLAIM")?;
                args.delivery_time = Some(now as i64 - idle);
            }
            b"TIME" if more => {
                at += 1;
                args.delivery_time = Some(integer(&words[at], "Invalid TIME option argument for XCLAIM")?);
            }
            b"RETRYCOUNT" if more => {
                at += 1;
                let count = integer(&words[at], "Invalid RETRYCOUNT option argument for XCLAIM")?;
                args.retry_count = (count >= 0).then_some(count as u64);
            }
            b"LASTID" if more => {
                at += 1;
                args.last_id = StreamId::parse(&words[at], 0, true, false)?.id;
            }
            _ => {
                let option = String::from_utf8_lossy(&words[at]);
                return Err(error(&format!("Unrecognized XCLAIM option '{option}'")));
            }
        }
        at += 1;
    }
    Ok(args)
}

fn kv_integer(word: &[u8]) -> Option<i64> {
    crate::number::parse_i64(word)
}

/// XCLAIM: `words` are the arguments after the consumer (min-idle-time,
/// IDs, options).
pub(super) fn xclaim(
    txn: &mut Txn<'_>,
    db: u8,
    key: Bytes,
    name: Bytes,
    consumer: Bytes,
    words: Vec<Bytes>,
) -> OpResult {
    let Some((stream, mut group)) = read_stream_group(txn, db, &key, &name)? else {
        return Err(no_key_or_group(&key, &name));
    };
    let now = txn.now_ms;
    let args = claim_args(&words, now)?;
    let elements = Elements::of(db, &stream);
    if args.last_id > group.last_id {
        group.last_id = args.last_id;
        elements.put(txn, &group::group_sub(&name), &group);
    }
    let delivery_time = match args.delivery_time {
        Some(time) if time >= 0 && time as u64 <= now => time as u64,
        _ => now,
    };
    let mut claimed = Vec::new();
    let mut consumer_touched = false;
    for id in args.ids {
        let pending = group::pending_sub(&name, id);
        let nack = elements.get::<Nack>(txn, &pending)?;
        let Some(entry) = elements.entry(txn, id)? else {
            // Gone from the stream: gone from the PEL too.
            elements.acknowledge(txn, &name, id)?;
            continue;
        };
        let nack = match nack {
            Some(nack) if args.min_idle > 0 && now.saturating_sub(nack.delivery_time) < args.min_idle => continue,
            Some(nack) => nack,
            // A pending entry FORCE creates counts one delivery already.
            None if args.force => Nack { consumer: Bytes::new(), delivery_time: now, delivery_count: 1 },
            None => continue,
        };
        if !consumer_touched {
            elements.touch_consumer(txn, &key, &name, &consumer)?;
            consumer_touched = true;
        }
        let delivery_count = match args.retry_count {
            Some(count) => count,
            None if args.justid => nack.delivery_count,
            None => nack.delivery_count + 1,
        };
        elements.assign(txn, &name, id, Nack { consumer: consumer.clone(), delivery_time, delivery_count })?;
        claimed.push(if args.justid { Reply::bulk(id.to_string()) } else { entry_reply(id, entry) });
    }
    Ok(Reply::Array(claimed))
}

/// XAUTOCLAIM: claims pending entries idle for at least `min_idle` from
/// `start` on, `count` at most (examining ten times as many); answers
/// `[next cursor, claimed, IDs dropped because deleted]`.
#[allow(clippy::too_many_arguments)]
pub(super) fn xautoclaim(
    txn: &mut Txn<'_>,
    db: u8,
    key: Bytes,
    name: Bytes,
    consumer: Bytes,
    min_idle: u64,
    start: StreamId,
    count: u64,
    justid: bool,
) -> OpResult {
    let Some((stream, _)) = read_stream_group(txn, db, &key, &name)? else {
        return Err(no_key_or_group(&key, &name));
    };
    let now = txn.now_ms;
    let elements = Elements::of(db, &stream);
    let prefix = group::pending_prefix(&name);
    let mut from = prefix.clone();
    from.extend_from_slice(&start.encode());
    let (mut count, mut attempts) = (count, count.saturating_mul(10));
    let (mut claimed, mut deleted) = (Vec::new(), Vec::new());
    let mut consumer_touched = false;
    let mut next = StreamId::MIN;
    // Every entry examined, and the one after as the next cursor.
    let examined = usize::try_from(attempts.saturating_add(1)).unwrap_or(usize::MAX);
    for (sub, value) in elements.scan(txn, &prefix, &from, examined)? {
        if attempts == 0 || count == 0 {
            next = group::pending_id(&sub)?;
            break;
        }
        attempts -= 1;
        let id = group::pending_id(&sub)?;
        let nack: Nack = group::decode(&value)?;
        let Some(entry) = elements.entry(txn, id)? else {
            elements.acknowledge(txn, &name, id)?;
            deleted.push(Reply::bulk(id.to_string()));
            count -= 1;
            continue;
        };
        if min_idle > 0 && now.saturating_sub(nack.delivery_time) < min_idle {
            continue;
        }
        if !consumer_touched {
            elements.touch_consumer(txn, &key, &name, &consumer)?;
            consumer_touched = true;
        }
        let delivery_count = if justid { nack.delivery_count } else { nack.delivery_count + 1 };
        elements.assign(txn, &name, id, Nack { consumer: consumer.clone(), delivery_time: now, delivery_count })?;
        claimed.push(if justid { Reply::bulk(id.to_string()) } else { entry_reply(id, entry) });
        count -= 1;
    }
    Ok(Reply::Array(vec![Reply::bulk(next.to_string()), Reply::Array(claimed), Reply::Array(deleted)]))
}
