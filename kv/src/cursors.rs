//! SCAN cursors of one node: which key a cursor number resumes after.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// SCAN cursors: a bounded table from cursor number to the last `kv_data`
/// key returned. The oldest cursors are forgotten first.
#[derive(Default)]
pub struct CursorTable {
    inner: Mutex<Cursors>,
}

#[derive(Default)]
struct Cursors {
    next: u64,
    positions: HashMap<u64, (u8, Vec<u8>)>,
    order: VecDeque<u64>,
}

const MAX_CURSORS: usize = 16 * 1024;

impl CursorTable {
    /// Records a position and returns its (non-zero) cursor number.
    pub(crate) fn register(&self, db: u8, last_key: Vec<u8>) -> u64 {
        let mut cursors = self.inner.lock().expect("cursor table lock");
        cursors.next += 1;
        let cursor = cursors.next;
        cursors.positions.insert(cursor, (db, last_key));
        cursors.order.push_back(cursor);
        if cursors.order.len() > MAX_CURSORS {
            if let Some(oldest) = cursors.order.pop_front() {
                cursors.positions.remove(&oldest);
            }
        }
        cursor
    }

    /// The last key returned before `cursor`, if the cursor is known for `db`.
    pub(crate) fn resume(&self, cursor: u64, db: u8) -> Option<Vec<u8>> {
        if cursor == 0 {
            return None;
        }
        let cursors = self.inner.lock().expect("cursor table lock");
        cursors.positions.get(&cursor).filter(|(cursor_db, _)| *cursor_db == db).map(|(_, key)| key.clone())
    }
}
