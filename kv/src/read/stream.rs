//! Read semantics of the stream commands (`crate::stream`): XLEN, XRANGE,
//! XREVRANGE and XREAD.

use bytes::Bytes;
use storage::keyspace::kv_elements;
use storage::Family;

use super::ReadCtx;
use crate::error::{CommandError, Result};
use crate::record::{Collection, KeyType};
use crate::reply::Reply;
use crate::stream::{self, entry_reply, StoredEntry, StreamId};

/// Where XREAD reads a stream from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadAfter {
    /// Entries above this ID.
    Id(StreamId),
    /// `$`: entries above the stream's last ID (none, unless blocking).
    Last,
}

/// XREAD's ID argument: `$`, or an ID (`>` belongs to XREADGROUP).
pub(crate) fn read_after(word: &[u8]) -> std::result::Result<ReadAfter, CommandError> {
    match word {
        b"$" => Ok(ReadAfter::Last),
        b">" => Err(CommandError::Other(
            "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."
                .into(),
        )),
        _ => Ok(ReadAfter::Id(StreamId::parse(word, 0, true, false)?.id)),
    }
}

impl ReadCtx<'_> {
    /// XLEN.
    pub fn xlen(&self, key: &[u8]) -> Result<Reply> {
        Ok(match self.collection(key, KeyType::Stream)? {
            Err(error) => error.into(),
            Ok(header) => Reply::Int(header.map_or(0, |h| h.len) as i64),
        })
    }

    /// XRANGE and XREVRANGE (`rev`): the entries from `start` to `end`,
    /// both included, at most `count`; COUNT 0 answers a null array.
    pub fn xrange(&self, key: &[u8], start: StreamId, end: StreamId, count: Option<u64>, rev: bool) -> Result<Reply> {
        self.with_collection(key, KeyType::Stream, Reply::Array(Vec::new()), |ctx, stream| {
            if count == Some(0) {
                return Ok(Reply::NilArray);
            }
            let entries = ctx.stream_entries(&stream, start, end, count.unwrap_or(u64::MAX), rev)?;
            Ok(Reply::Array(entries.into_iter().map(|(id, entry)| entry_reply(id, entry)).collect()))
        })
    }

    /// XREAD without BLOCK: per stream, up to `count` (0: all) entries
    /// above its ID; streams with none are left out, and a null array
    /// answers when none has any. Each key's type is checked, and then its
    /// ID parsed, before anything is read, as Redis does.
    pub fn xread(&self, keys: &[Bytes], ids: &[Bytes], count: u64) -> Result<Reply> {
        self.consistent(|ctx| {
            let mut streams = Vec::with_capacity(keys.len());
            for (key, id) in keys.iter().zip(ids) {
                let stream = match ctx.stream(key)? {
                    Err(error) => return Ok(error.into()),
                    Ok(stream) => stream,
                };
                let after = match read_after(id) {
                    Err(error) => return Ok(error.into()),
                    Ok(ReadAfter::Last) => stream.map(|_| StreamId::MAX),
                    Ok(ReadAfter::Id(id)) => Some(id),
                };
                streams.push((key, stream, after));
            }
            let mut found = Vec::new();
            for (key, stream, after) in streams {
                // Redis looks each key up again to serve it, so a missing
                // one misses twice (this snapshot already knows it is).
                let Some(stream) = stream else {
                    ctx.looked_up(key, false);
                    continue;
                };
                let Some(from) = after.and_then(StreamId::next) else { continue };
                let limit = if count == 0 { u64::MAX } else { count };
                let entries = ctx.stream_entries(&stream, from, StreamId::MAX, limit, false)?;
                if !entries.is_empty() {
                    let entries = entries.into_iter().map(|(id, entry)| entry_reply(id, entry)).collect();
                    found.push((Reply::Bulk(key.clone()), Reply::Array(entries)));
                }
            }
            Ok(if found.is_empty() { Reply::NilArray } else { Reply::KeyedArrays(found) })
        })
    }

    /// The stream at `key`: its header, `None` if absent, or WRONGTYPE.
    fn stream(&self, key: &[u8]) -> Result<std::result::Result<Option<Collection>, CommandError>> {
        self.collection(key, KeyType::Stream)
    }

    /// Up to `limit` entries of `stream` with IDs from `start` to `end`
    /// (both included), oldest first or with `rev` newest first.
    pub(crate) fn stream_entries(
        &self,
        stream: &Collection,
        start: StreamId,
        end: StreamId,
        limit: u64,
        rev: bool,
    ) -> Result<Vec<(StreamId, StoredEntry)>> {
        let mut found = Vec::new();
        if start > end {
            return Ok(found);
        }
        let from = kv_elements::key(self.db, stream.version, &stream::entry_sub(start));
        let mut to = kv_elements::key(self.db, stream.version, &stream::entry_sub(end));
        to.push(0);
        let scan = match rev {
            false => self.reader.scan(Family::KvElements, &from, Some(&to)),
            true => self.reader.scan_rev(Family::KvElements, &from, &to),
        };
        for entry in scan {
            if found.len() as u64 >= limit {
                break;
            }
            let (key, value) = entry?;
            found.push((stream::entry_id(kv_elements::sub_key(&key))?, StoredEntry::decode(&value)?));
        }
        Ok(found)
    }
}
