//! How Raft's own values (vote, log pointers, entries, applied state) are
//! stored: postcard bytes under the keys of `storage::keyspace`. One
//! encoding and one reader for every such value, and one typed accessor
//! for the applied state, which the live store and snapshots both read.

use serde::de::DeserializeOwned;
use serde::Serialize;
use storage::keyspace::{raft_state, Shard};
use storage::{Family, Reader};

use crate::types::{LogId, StoredMembership};

/// The stored bytes of `value`.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("raft values always serialize")
}

/// The value stored under `key` in `family`, if any.
pub(crate) fn read<T: DeserializeOwned>(
    reader: &impl Reader,
    family: Family,
    key: &[u8],
) -> std::io::Result<Option<T>> {
    let Some(bytes) = reader.get(family, key).map_err(std::io::Error::other)? else {
        return Ok(None);
    };
    postcard::from_bytes(&bytes).map(Some).map_err(|e| {
        let key = String::from_utf8_lossy(key);
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{} {key}: {e}", family.name()))
    })
}

/// Where a group keeps its Raft state beside its service's state: the
/// service's state meta family, under the group's prefix.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StateKeys {
    pub(crate) family: Family,
    pub(crate) shard: Shard,
}

/// The last applied log id and membership recorded in a group's state
/// (`raft/applied`, `raft/membership`).
pub(crate) fn applied_state(
    reader: &impl Reader,
    keys: StateKeys,
) -> std::io::Result<(Option<LogId>, StoredMembership)> {
    let applied = read::<LogId>(reader, keys.family, &raft_state::applied(keys.shard))?;
    let membership =
        read::<StoredMembership>(reader, keys.family, &raft_state::membership(keys.shard))?.unwrap_or_default();
    Ok((applied, membership))
}

/// Adds the applied log id (and, if given, the membership) to `batch`.
pub(crate) fn put_applied_state(
    batch: &mut storage::Batch,
    keys: StateKeys,
    applied: &LogId,
    membership: Option<&StoredMembership>,
) {
    batch.put(keys.family, raft_state::applied(keys.shard), encode(applied));
    if let Some(membership) = membership {
        batch.put(keys.family, raft_state::membership(keys.shard), encode(membership));
    }
}
