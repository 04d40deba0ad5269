//! Opening and saving collections (hashes, lists, sets, sorted sets) in
//! the apply txn.
//!
//! A command opens the collection at a key (WRONGTYPE if the key holds
//! another type), changes elements under its version and saves the header.
//! Saving an empty collection deletes the key, as Redis never keeps an
//! empty one; the txn then drops the version, and its elements with it.

use bytes::Bytes;
use storage::keyspace::kv_elements;
use storage::{Family, Reader};

use super::txn::Txn;
use super::{Fail, OpResult};
use crate::error::CommandError;
use crate::notify::class::GENERIC;
use crate::record::{Collection, KeyType, Record};
use crate::reply::Reply;

/// A collection opened for a write.
pub(super) struct Open {
    pub kind: KeyType,
    pub expire_at_ms: Option<u64>,
    pub header: Collection,
    /// Whether the key exists (false: a new, empty collection).
    pub existed: bool,
}

impl Open {
    /// The `kv_elements` key of `sub`.
    pub fn element_key(&self, db: u8, sub: &[u8]) -> Vec<u8> {
        kv_elements::key(db, self.header.version, sub)
    }
}

/// The live collection of type `kind` at `key`: `None` if absent,
/// WRONGTYPE if the key holds another type.
pub(super) fn existing(txn: &mut Txn<'_>, db: u8, key: &Bytes, kind: KeyType) -> Result<Option<Open>, Fail> {
    match txn.get(db, key)? {
        None => Ok(None),
        Some(record) if record.kind != kind => Err(CommandError::WrongType.into()),
        Some(record) => {
            Ok(Some(Open { kind, expire_at_ms: record.expire_at_ms, header: record.header()?, existed: true }))
        }
    }
}

/// The collection at `key`, or a new empty one (not stored until saved).
pub(super) fn open(txn: &mut Txn<'_>, db: u8, key: &Bytes, kind: KeyType) -> Result<Open, Fail> {
    match existing(txn, db, key, kind)? {
        Some(open) => Ok(open),
        None => Ok(Open { kind, expire_at_ms: None, header: txn.new_collection()?, existed: false }),
    }
}

/// Stores the header, or deletes the key if the collection is empty.
pub(super) fn save(txn: &mut Txn<'_>, db: u8, key: &Bytes, open: &Open) -> Result<(), Fail> {
    if open.header.len == 0 {
        if open.existed {
            txn.delete(db, key)?;
        }
    } else {
        txn.put(db, key, Record::collection(open.kind, open.expire_at_ms, open.header))?;
    }
    Ok(())
}

/// Notifies `del` if `open` was saved empty (its key deleted).
pub(super) fn notify_if_emptied(txn: &mut Txn<'_>, db: u8, key: &Bytes, open: &Open) {
    if open.header.len == 0 && open.existed {
        txn.notify(GENERIC, "del", db, key);
    }
}

/// The stored value of element `element_key`, if any.
pub(super) fn element(txn: &Txn<'_>, element_key: &[u8]) -> Result<Option<Vec<u8>>, Fail> {
    Ok(Reader::get(txn, Family::KvElements, element_key)?)
}

/// Removes the sub-keys `subs` of the hash or set at `key` (HDEL, SREM);
/// answers how many were there. An emptied collection is deleted. Notifies
/// `event` of `class` if any was removed, and `del` if the key went.
pub(super) fn remove_subs(
    txn: &mut Txn<'_>,
    db: u8,
    key: &Bytes,
    kind: KeyType,
    subs: Vec<Bytes>,
    (class, event): (u16, &'static str),
) -> OpResult {
    let Some(mut open) = existing(txn, db, key, kind)? else {
        return Ok(Reply::Int(0));
    };
    let mut removed = 0;
    for sub in subs {
        let element_key = open.element_key(db, &sub);
        if element(txn, &element_key)?.is_some() {
            txn.delete_element(Family::KvElements, element_key);
            removed += 1;
        }
    }
    open.header.len -= removed;
    if removed > 0 {
        save(txn, db, key, &open)?;
        txn.notify(class, event, db, key);
        notify_if_emptied(txn, db, key, &open);
    }
    Ok(Reply::Int(removed as i64))
}

/// Every element of `open` as `(sub-key, value)`, in sub-key order.
pub(super) fn elements(txn: &Txn<'_>, db: u8, open: &Open) -> Result<Vec<(Bytes, Bytes)>, Fail> {
    let (start, end) = kv_elements::range(db, open.header.version);
    let mut all = Vec::with_capacity(open.header.len as usize);
    for entry in Reader::scan(txn, Family::KvElements, &start, Some(&end)) {
        let (key, value) = entry?;
        all.push((Bytes::copy_from_slice(kv_elements::sub_key(&key)), Bytes::from(value.into_vec())));
    }
    Ok(all)
}
