//! Reading collections: the header from `kv_data`, elements from
//! `kv_elements` under the header's version.
//!
//! A collection read looks at the record and then at its elements, so it
//! must run inside [`ReadCtx::consistent`]: between two reads of the live
//! store a write could replace the collection.

use storage::keyspace::kv_elements;
use storage::Family;

use super::ReadCtx;
use crate::error::{CommandError, Result};
use crate::record::{Collection, KeyType};
use crate::reply::Reply;

/// How many elements a SCAN-family call returns at once when the
/// collection is at most this long: all of them, with cursor 0, as Redis
/// does for its compact encodings.
pub(crate) const SCAN_ALL_UP_TO: u64 = 128;

impl ReadCtx<'_> {
    /// The live collection of type `kind` at `key` (counted as a hit or
    /// miss): `Ok(None)` if absent, `Err(WrongType)` for another type.
    pub(crate) fn collection(
        &self,
        key: &[u8],
        kind: KeyType,
    ) -> Result<std::result::Result<Option<Collection>, CommandError>> {
        Ok(match self.lookup(key)? {
            None => Ok(None),
            Some(record) if record.kind != kind => Err(CommandError::WrongType),
            Some(record) => Ok(Some(record.header()?)),
        })
    }

    /// Runs `read` on the collection of type `kind` at `key` at one point in
    /// time; an absent key answers `absent`, another type WRONGTYPE.
    pub(crate) fn with_collection(
        &self,
        key: &[u8],
        kind: KeyType,
        absent: Reply,
        read: impl FnOnce(&ReadCtx<'_>, Collection) -> Result<Reply>,
    ) -> Result<Reply> {
        self.consistent(|ctx| match ctx.collection(key, kind)? {
            Err(error) => Ok(error.into()),
            Ok(None) => Ok(absent),
            Ok(Some(collection)) => read(ctx, collection),
        })
    }

    /// The value of element `sub` of collection `version`.
    pub(crate) fn element(&self, version: u64, sub: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.reader.get(Family::KvElements, &kv_elements::key(self.db, version, sub))?)
    }

    /// Calls `visit` with each element of collection `version` in sub-key
    /// order, starting after the element key `after` if it belongs to this
    /// version, until it returns false.
    pub(crate) fn each_element(
        &self,
        version: u64,
        after: Option<&[u8]>,
        mut visit: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let (mut start, end) = kv_elements::range(self.db, version);
        if let Some(after) = after.filter(|after| **after >= *start && **after < *end) {
            start = after.to_vec();
            start.push(0);
        }
        Ok(self
            .reader
            .visit(Family::KvElements, &start, &end, &mut |key, value| visit(kv_elements::sub_key(key), value))?)
    }

    /// The reply of a SCAN-family call that examined `examined` entries
    /// of the `count` asked for, `last` (a storage key) being the last:
    /// the next cursor (0 when the iteration is done) and what it found.
    pub(crate) fn scan_reply(&self, last: Option<Vec<u8>>, examined: usize, count: usize, found: Vec<Reply>) -> Reply {
        let next = match last {
            Some(last) if examined >= count => self.cursors.register(self.db, last),
            _ => 0,
        };
        Reply::Array(vec![Reply::bulk(next.to_string()), Reply::Array(found)])
    }

    /// Every `(sub-key, value)` of collection `version`, in order.
    pub(crate) fn elements(&self, version: u64) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut all = Vec::new();
        self.each_element(version, None, |sub, value| {
            all.push((sub.to_vec(), value.to_vec()));
            true
        })?;
        Ok(all)
    }
}
