//! Write semantics of the stream commands (`crate::stream`): XADD, XDEL,
//! XTRIM, XSETID.
//!
//! Every ID the server chooses comes from the entry's stamp (`txn.now_ms`),
//! so every replica adds the same IDs.

use bytes::Bytes;
use storage::keyspace::kv_elements;
use storage::{Family, Reader};

use super::txn::Txn;
use super::{Fail, OpResult};
use crate::error::CommandError;
use crate::notify::class::STREAM;
use crate::record::{Collection, KeyType, Record};
use crate::reply::Reply;
use crate::stream::{self, AddId, StoredEntry, StreamId, StreamMeta, Trim, ENTRY_MAX_BYTES};

/// A stream opened for a write.
pub(super) struct OpenStream {
    pub expire_at_ms: Option<u64>,
    pub header: Collection,
    pub meta: StreamMeta,
}

impl OpenStream {
    /// A new, empty stream (not stored until saved).
    pub fn new(txn: &mut Txn<'_>) -> Result<Self, Fail> {
        Ok(OpenStream { expire_at_ms: None, header: txn.new_collection()?, meta: StreamMeta::default() })
    }

    fn element_key(&self, db: u8, sub: &[u8]) -> Vec<u8> {
        kv_elements::key(db, self.header.version, sub)
    }
}

/// The stream at `key`: `None` if absent, WRONGTYPE for another type.
pub(super) fn existing(txn: &mut Txn<'_>, db: u8, key: &Bytes) -> Result<Option<OpenStream>, Fail> {
    match txn.get(db, key)? {
        None => Ok(None),
        Some(record) if record.kind != KeyType::Stream => Err(CommandError::WrongType.into()),
        Some(record) => Ok(Some(OpenStream {
            expire_at_ms: record.expire_at_ms,
            header: record.header()?,
            meta: record.stream_meta()?,
        })),
    }
}

/// The last ID of the stream at `key`, 0-0 if absent.
pub(super) fn last_id(txn: &mut Txn<'_>, db: u8, key: &Bytes) -> Result<StreamId, Fail> {
    Ok(existing(txn, db, key)?.map_or(StreamId::MIN, |stream| stream.meta.last_id))
}

/// Stores the stream's record (an empty stream stays).
pub(super) fn save(txn: &mut Txn<'_>, db: u8, key: &Bytes, stream: &OpenStream) -> Result<(), Fail> {
    Ok(txn.put(db, key, Record::stream(stream.expire_at_ms, stream.header, &stream.meta))?)
}

fn error(message: &str) -> Fail {
    CommandError::Other(format!("ERR {message}")).into()
}

/// XADD: appends an entry (creating the stream unless `no_mkstream`),
/// then trims; answers the new ID, or nil if absent with `no_mkstream`.
pub(super) fn xadd(
    txn: &mut Txn<'_>,
    db: u8,
    key: Bytes,
    id: AddId,
    fields: Vec<(Bytes, Bytes)>,
    no_mkstream: bool,
    trim: Option<Trim>,
) -> OpResult {
    if id == AddId::Exact(StreamId::MIN) {
        return Err(error("The ID specified in XADD must be greater than 0-0"));
    }
    let mut stream = match existing(txn, db, &key)? {
        Some(stream) => stream,
        None if no_mkstream => return Ok(Reply::Nil),
        None => {
            let stream = OpenStream { expire_at_ms: None, header: txn.new_collection()?, meta: StreamMeta::default() };
            // Redis creates the stream before anything below can fail.
            save(txn, db, &key, &stream)?;
            stream
        }
    };
    let last = stream.meta.last_id;
    if last == StreamId::MAX {
        return Err(error("The stream has exhausted the last possible ID, unable to add more items"));
    }
    let id = match id {
        AddId::Auto if txn.now_ms > last.ms => Some(StreamId { ms: txn.now_ms, seq: 0 }),
        AddId::Auto => last.next(),
        AddId::AutoSeq(ms) if ms == last.ms => last.next().filter(|next| next.ms == ms),
        AddId::AutoSeq(ms) => Some(StreamId { ms, seq: 0 }),
        AddId::Exact(id) => Some(id),
    };
    let Some(id) = id.filter(|id| *id > last) else {
        return Err(error("The ID specified in XADD is equal or smaller than the target stream top item"));
    };
    if fields.iter().map(|(field, value)| field.len() + value.len()).sum::<usize>() > ENTRY_MAX_BYTES {
        return Err(error("Elements are too large to be stored"));
    }
    let node = stream.meta.place_entry(stream.header.len);
    let entry = StoredEntry { node, fields };
    txn.put_element(Family::KvElements, stream.element_key(db, &stream::entry_sub(id)), entry.encode());
    stream.header.len += 1;
    stream.meta.last_id = id;
    stream.meta.entries_added += 1;
    txn.notify(STREAM, "xadd", db, &key);
    if let Some(trim) = trim {
        if trim_stream(txn, db, &mut stream, &trim)? > 0 {
            txn.notify(STREAM, "xtrim", db, &key);
        }
    }
    save(txn, db, &key, &stream)?;
    txn.signal(db, key);
    Ok(Reply::bulk(id.to_string()))
}

/// Removes the entries `trim` dooms; answers how many.
fn trim_stream(txn: &mut Txn<'_>, db: u8, stream: &mut OpenStream, trim: &Trim) -> Result<u64, Fail> {
    let (start, end) = entry_range(db, stream);
    let entries = Reader::scan(txn, Family::KvElements, &start, Some(&end)).map(|entry| {
        let (key, value) = entry?;
        let id = stream::entry_id(kv_elements::sub_key(&key))?;
        Ok((id, StoredEntry::decode(&value)?.node))
    });
    let doomed = stream::trim::doomed(trim, stream.header.len, entries)?;
    for id in &doomed {
        txn.delete_element(Family::KvElements, stream.element_key(db, &stream::entry_sub(*id)));
    }
    stream.header.len -= doomed.len() as u64;
    Ok(doomed.len() as u64)
}

/// The `kv_elements` keys of the stream's entries: `start <= key < end`.
fn entry_range(db: u8, stream: &OpenStream) -> (Vec<u8>, Vec<u8>) {
    let start = stream.element_key(db, &[stream::ENTRY]);
    let end = stream.element_key(db, &[stream::ENTRY + 1]);
    (start, end)
}

/// XTRIM: answers how many entries went.
pub(super) fn xtrim(txn: &mut Txn<'_>, db: u8, key: Bytes, trim: Trim) -> OpResult {
    let Some(mut stream) = existing(txn, db, &key)? else { return Ok(Reply::Int(0)) };
    let removed = trim_stream(txn, db, &mut stream, &trim)?;
    if removed > 0 {
        save(txn, db, &key, &stream)?;
        txn.notify(STREAM, "xtrim", db, &key);
    }
    Ok(Reply::Int(removed as i64))
}

/// XDEL: the IDs are parsed here, after the key's type is checked, as
/// Redis does; answers how many entries went.
pub(super) fn xdel(txn: &mut Txn<'_>, db: u8, key: Bytes, ids: Vec<Bytes>) -> OpResult {
    let Some(mut stream) = existing(txn, db, &key)? else { return Ok(Reply::Int(0)) };
    let ids = ids
        .iter()
        .map(|id| StreamId::parse(id, 0, true, false).map(|parsed| parsed.id))
        .collect::<Result<Vec<_>, _>>()?;
    let mut removed = 0;
    for id in ids {
        let element_key = stream.element_key(db, &stream::entry_sub(id));
        if Reader::get(txn, Family::KvElements, &element_key)?.is_some() {
            txn.delete_element(Family::KvElements, element_key);
            stream.meta.max_deleted = stream.meta.max_deleted.max(id);
            stream.header.len -= 1;
            removed += 1;
        }
    }
    if removed > 0 {
        save(txn, db, &key, &stream)?;
        txn.notify(STREAM, "xdel", db, &key);
    }
    Ok(Reply::Int(removed))
}

/// XSETID: the stream's last ID, and optionally its added-entries count
/// and largest deleted ID.
pub(super) fn xsetid(
    txn: &mut Txn<'_>,
    db: u8,
    key: Bytes,
    last_id: StreamId,
    entries_added: Option<u64>,
    max_deleted: Option<StreamId>,
) -> OpResult {
    let Some(mut stream) = existing(txn, db, &key)? else { return Err(CommandError::NoSuchKey.into()) };
    if stream.header.len > 0 {
        if last_id < last_entry(txn, db, &stream)?.unwrap_or(StreamId::MIN) {
            return Err(error("The ID specified in XSETID is smaller than the target stream top item"));
        }
        if entries_added.is_some_and(|added| added < stream.header.len) {
            return Err(error("The entries_added specified in XSETID is smaller than the target stream length"));
        }
    }
    stream.meta.last_id = last_id;
    if let Some(added) = entries_added {
        stream.meta.entries_added = added;
    }
    if let Some(max_deleted) = max_deleted.filter(|id| *id != StreamId::MIN) {
        stream.meta.max_deleted = max_deleted;
    }
    save(txn, db, &key, &stream)?;
    txn.notify(STREAM, "xsetid", db, &key);
    Ok(Reply::ok())
}

/// The ID of the stream's oldest entry.
pub(super) fn first_entry(txn: &Txn<'_>, db: u8, stream: &OpenStream) -> Result<Option<StreamId>, Fail> {
    let (start, end) = entry_range(db, stream);
    match Reader::scan(txn, Family::KvElements, &start, Some(&end)).next() {
        None => Ok(None),
        Some(entry) => Ok(Some(stream::entry_id(kv_elements::sub_key(&entry?.0))?)),
    }
}

/// The ID of the stream's newest entry.
pub(super) fn last_entry(txn: &Txn<'_>, db: u8, stream: &OpenStream) -> Result<Option<StreamId>, Fail> {
    let (start, end) = entry_range(db, stream);
    match Reader::scan_rev(txn, Family::KvElements, &start, &end).next() {
        None => Ok(None),
        Some(entry) => Ok(Some(stream::entry_id(kv_elements::sub_key(&entry?.0))?)),
    }
}
