//! Atomic write batches across the families of one service.

use crate::keyspace::Family;

/// One operation of a batch, kept by family so that the store can resolve
/// column-family handles when the batch is written.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Put { family: Family, key: Vec<u8>, value: Vec<u8> },
    Delete { family: Family, key: Vec<u8> },
    DeleteRange { family: Family, start: Vec<u8>, end: Vec<u8> },
}

/// A set of writes applied atomically by [`crate::Store::write`]: all or none.
///
/// Operations apply in the order they were added, so a later put of a key
/// wins over an earlier delete of it.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub(crate) ops: Vec<Op>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value` in `family`.
    pub fn put(&mut self, family: Family, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(Op::Put { family, key: key.into(), value: value.into() });
    }

    /// Removes `key` from `family`.
    pub fn delete(&mut self, family: Family, key: impl Into<Vec<u8>>) {
        self.ops.push(Op::Delete { family, key: key.into() });
    }

    /// How many operations it holds.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether it holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Removes every key in `[start, end)` from `family`.
    pub fn delete_range(&mut self, family: Family, start: impl Into<Vec<u8>>, end: impl Into<Vec<u8>>) {
        self.ops.push(Op::DeleteRange { family, start: start.into(), end: end.into() });
    }
}
