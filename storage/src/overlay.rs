//! Reading through pending writes: an [`Overlay`] of puts and deletes over
//! any [`Reader`], which is itself a reader, so code that reads and writes
//! within one applied entry sees its own writes before they reach storage.

use std::collections::BTreeMap;

use crate::batch::Batch;
use crate::error::Result;
use crate::keyspace::Family;
use crate::store::{KeyValue, Reader, Scan};

/// The direction of a merged scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Forward,
    Reverse,
}

/// Merges stored entries with written entries of the same range (both in
/// `order`); a written entry wins, and a written `None` hides the stored
/// entry.
pub fn merge<'s>(
    base: impl Iterator<Item = Result<KeyValue>> + 's,
    written: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    order: Order,
) -> impl Iterator<Item = Result<KeyValue>> + 's {
    let mut base = base.peekable();
    let mut written = written.into_iter().peekable();
    std::iter::from_fn(move || loop {
        let take_written = match (base.peek(), written.peek()) {
            (None, None) => return None,
            (Some(Err(_)), _) | (Some(_), None) => return base.next(),
            (None, Some(_)) => true,
            (Some(Ok((stored, _))), Some((key, _))) => {
                if stored.as_ref() == key.as_slice() {
                    base.next();
                    true
                } else {
                    match order {
                        Order::Forward => key.as_slice() < stored.as_ref(),
                        Order::Reverse => key.as_slice() > stored.as_ref(),
                    }
                }
            }
        };
        if take_written {
            let (key, value) = written.next().expect("peeked");
            if let Some(value) = value {
                return Some(Ok((key.into_boxed_slice(), value.into_boxed_slice())));
            }
        } else {
            return base.next();
        }
    })
}

/// The writes of an overlay, detached from what it read over (a SQL
/// transaction keeps its own between statements, and copies them at each
/// savepoint).
#[derive(Clone, Default)]
pub struct Writes(BTreeMap<(Family, Vec<u8>), Option<Vec<u8>>>);

/// One write: a put (`Some` value) or a delete (`None`).
pub type Write = ((Family, Vec<u8>), Option<Vec<u8>>);

impl Writes {
    /// Whether a write goes to `family`.
    pub fn touches(&self, family: Family) -> bool {
        self.0.range((family, Vec::new())..).next().is_some_and(|((written, _), _)| *written == family)
    }

    /// The writes in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&(Family, Vec<u8>), &Option<Vec<u8>>)> {
        self.0.iter()
    }
}

impl IntoIterator for Writes {
    type Item = Write;
    type IntoIter = std::collections::btree_map::IntoIter<(Family, Vec<u8>), Option<Vec<u8>>>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl FromIterator<Write> for Writes {
    fn from_iter<I: IntoIterator<Item = Write>>(writes: I) -> Writes {
        Writes(writes.into_iter().collect())
    }
}

/// Puts and deletes not yet written, read over `base`.
pub struct Overlay<'a, R: Reader> {
    base: &'a R,
    writes: BTreeMap<(Family, Vec<u8>), Option<Vec<u8>>>,
}

impl<'a, R: Reader> Overlay<'a, R> {
    pub fn new(base: &'a R) -> Self {
        Overlay { base, writes: BTreeMap::new() }
    }

    pub fn put(&mut self, family: Family, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert((family, key), Some(value));
    }

    pub fn delete(&mut self, family: Family, key: Vec<u8>) {
        self.writes.insert((family, key), None);
    }

    /// The writes, to be taken over by another overlay ([`Overlay::extend`]).
    pub fn into_writes(self) -> Writes {
        Writes(self.writes)
    }

    /// Takes over `writes`, made after this overlay's own.
    pub fn extend(&mut self, writes: Writes) {
        self.writes.extend(writes.0);
    }

    /// The writes as a batch, in key order.
    pub fn into_batch(self, batch: &mut Batch) {
        for ((family, key), value) in self.writes {
            match value {
                Some(value) => batch.put(family, key, value),
                None => batch.delete(family, key),
            }
        }
    }

    fn written(&self, family: Family, start: &[u8], end: Option<&[u8]>) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let range = (family, start.to_vec())..;
        self.writes
            .range(range)
            .take_while(|((f, key), _)| *f == family && end.is_none_or(|end| key.as_slice() < end))
            .map(|((_, key), value)| (key.clone(), value.clone()))
            .collect()
    }
}

impl<R: Reader> Reader for Overlay<'_, R> {
    fn get(&self, family: Family, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.writes.get(&(family, key.to_vec())) {
            Some(value) => Ok(value.clone()),
            None => self.base.get(family, key),
        }
    }

    fn store_id(&self) -> u64 {
        self.base.store_id()
    }

    fn has_pending(&self, family: Family) -> bool {
        let first = self.writes.range((family, Vec::new())..).next();
        first.is_some_and(|((written, _), _)| *written == family) || self.base.has_pending(family)
    }

    fn scan<'s>(&'s self, family: Family, start: &[u8], end: Option<&[u8]>) -> Scan<'s> {
        let written = self.written(family, start, end);
        Scan::new(merge(self.base.scan(family, start, end), written, Order::Forward))
    }

    fn scan_rev<'s>(&'s self, family: Family, start: &[u8], end: &[u8]) -> Scan<'s> {
        let mut written = self.written(family, start, Some(end));
        written.reverse();
        Scan::new(merge(self.base.scan_rev(family, start, end), written, Order::Reverse))
    }
}

#[cfg(test)]
mod tests {
    use super::{merge, Order};

    fn entries(pairs: &[(&str, &str)]) -> Vec<crate::Result<crate::KeyValue>> {
        pairs.iter().map(|(k, v)| Ok((k.as_bytes().into(), v.as_bytes().into()))).collect()
    }

    #[test]
    fn merge_prefers_the_written_entries_and_hides_their_deletions() {
        let base = entries(&[("a", "1"), ("c", "3"), ("e", "5")]);
        let written = vec![
            (b"b".to_vec(), Some(b"2".to_vec())),
            (b"c".to_vec(), None),
            (b"e".to_vec(), Some(b"five".to_vec())),
            (b"f".to_vec(), Some(b"6".to_vec())),
        ];
        let strings = |entry: crate::Result<crate::KeyValue>| {
            let (k, v) = entry.unwrap();
            (String::from_utf8(k.to_vec()).unwrap(), String::from_utf8(v.to_vec()).unwrap())
        };
        let merged: Vec<(String, String)> =
            merge(base.into_iter(), written.clone(), Order::Forward).map(strings).collect();
        let expected = [("a", "1"), ("b", "2"), ("e", "five"), ("f", "6")];
        assert_eq!(merged, expected.map(|(k, v)| (k.to_string(), v.to_string())));
        let mut base = entries(&[("a", "1"), ("c", "3"), ("e", "5")]);
        base.reverse();
        let mut written = written;
        written.reverse();
        let merged: Vec<(String, String)> = merge(base.into_iter(), written, Order::Reverse).map(strings).collect();
        let mut expected = expected.map(|(k, v)| (k.to_string(), v.to_string())).to_vec();
        expected.reverse();
        assert_eq!(merged, expected);
    }
}
