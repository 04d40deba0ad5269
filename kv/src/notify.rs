//! What applied writes tell the frontend: keyspace notifications (Redis's
//! event classes, the `notify-keyspace-events` flags that select them, the
//! events writes produce) and, for client-side caching, the keys they
//! changed.
//!
//! Events are produced at apply, by every replica alike, and only for
//! entries proposed with notifications on: the proposing node wraps its
//! op in `WriteOp::Observed` with its flags (as Redis, the setting is
//! the node's own; CONFIG SET it on every node for events of writes
//! through any node). The flags travel in the entry, so replicas agree on
//! what an entry notifies. After a batch commits, the state machine hands
//! its events to [`KeyEvents`]; the frontend publishes those of the groups
//! this node leads through the cluster-wide pub/sub, so each event is
//! published once, by the node that applied it as leader. Like Redis's,
//! notifications are fire and forget: a leader change can lose or repeat
//! the events of the entries applied around it.
//!
//! Changed keys (for CLIENT TRACKING's invalidations) are collected only
//! while the frontend asks for them ([`KeyEvents::track_changes`]) or
//! another node follows a shard's changes here (`crate::change_feed`).
//! A node's tracking clients are its own: it takes the changes of the
//! shards it hosts from its own replicas, and follows those of the others
//! on a node that hosts them (`service::follow`), which it hands on as
//! batches of the shard like its own. An entry carries its writer
//! ([`Writer`]) when the writing client tracks with NOLOOP, so that it is
//! not told of its own writes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use storage::keyspace::Shard;
use tokio::sync::mpsc;

use crate::change_feed::ChangeFeeds;

/// Event classes and the two channel kinds, as Redis numbers them.
pub mod class {
    /// `K`: `__keyspace@<db>__:<key>` channels.
    pub const KEYSPACE: u16 = 1 << 0;
    /// `E`: `__keyevent@<db>__:<event>` channels.
    pub const KEYEVENT: u16 = 1 << 1;
    /// `g`: DEL, EXPIRE, RENAME, … .
    pub const GENERIC: u16 = 1 << 2;
    /// `$`
    pub const STRING: u16 = 1 << 3;
    /// `l`
    pub const LIST: u16 = 1 << 4;
    /// `s`
    pub const SET: u16 = 1 << 5;
    /// `h`
    pub const HASH: u16 = 1 << 6;
    /// `z`
    pub const ZSET: u16 = 1 << 7;
    /// `x`: a key removed because it expired.
    pub const EXPIRED: u16 = 1 << 8;
    /// `e`: Seshat never evicts.
    pub const EVICTED: u16 = 1 << 9;
    /// `t`: streams.
    pub const STREAM: u16 = 1 << 10;
    /// `m`: a read of a missing key (`keymiss`).
    pub const KEY_MISS: u16 = 1 << 11;
    /// `d`: module events (Seshat has no modules).
    pub const MODULE: u16 = 1 << 13;
    /// `n`: a key created.
    pub const NEW: u16 = 1 << 14;
    /// `A`: every class but `m` and `n`.
    pub const ALL: u16 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;
}

/// The `notify-keyspace-events` setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyFlags(pub u16);

impl NotifyFlags {
    /// Parses Redis's class characters (`KEA`, `Elg`, …); `None` for any
    /// other character.
    pub fn parse(text: &str) -> Option<NotifyFlags> {
        let mut flags = 0;
        for c in text.chars() {
            flags |= match c {
                'A' => class::ALL,
                'g' => class::GENERIC,
                '$' => class::STRING,
                'l' => class::LIST,
                's' => class::SET,
                'h' => class::HASH,
                'z' => class::ZSET,
                'x' => class::EXPIRED,
                'e' => class::EVICTED,
                'K' => class::KEYSPACE,
                'E' => class::KEYEVENT,
                't' => class::STREAM,
                'm' => class::KEY_MISS,
                'd' => class::MODULE,
                'n' => class::NEW,
                _ => return None,
            };
        }
        Some(NotifyFlags(flags))
    }

    /// Whether an event of `class` is published on any channel.
    pub(crate) fn wants(self, class: u16) -> bool {
        self.0 & class != 0 && self.0 & (class::KEYSPACE | class::KEYEVENT) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// The canonical text CONFIG GET answers (`AKE`, `glE`), as Redis
/// writes it (but for `An`, see below).
impl std::fmt::Display for NotifyFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let has = |class: u16| self.0 & class != 0;
        let mut text = String::new();
        if self.0 & class::ALL == class::ALL {
            text.push('A');
            // Redis drops an `n` after `A` here (while it keeps notifying
            // new keys); Seshat shows the setting in force.
            if has(class::NEW) {
                text.push('n');
            }
        } else {
            let classes = [
                (class::GENERIC, 'g'),
                (class::STRING, '$'),
                (class::LIST, 'l'),
                (class::SET, 's'),
                (class::HASH, 'h'),
                (class::ZSET, 'z'),
                (class::EXPIRED, 'x'),
                (class::EVICTED, 'e'),
                (class::STREAM, 't'),
                (class::MODULE, 'd'),
                (class::NEW, 'n'),
            ];
            text.extend(classes.iter().filter(|(class, _)| has(*class)).map(|(_, c)| c));
        }
        for (class, c) in [(class::KEYSPACE, 'K'), (class::KEYEVENT, 'E'), (class::KEY_MISS, 'm')] {
            if has(class) {
                text.push(c);
            }
        }
        f.write_str(&text)
    }
}

/// One event: `event` happened to `key` of logical database `db`, under
/// the entry's `flags` (which say the channels it goes to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEvent {
    pub db: u8,
    pub event: &'static str,
    pub key: Bytes,
    pub flags: NotifyFlags,
}

impl KeyEvent {
    /// The `(channel, message)` pairs Redis publishes for the event: the
    /// keyspace channel first, then the keyevent channel.
    pub fn messages(&self) -> Vec<(Bytes, Bytes)> {
        let mut messages = Vec::with_capacity(2);
        if self.flags.0 & class::KEYSPACE != 0 {
            let mut channel = format!("__keyspace@{}__:", self.db).into_bytes();
            channel.extend_from_slice(&self.key);
            messages.push((Bytes::from(channel), Bytes::from_static(self.event.as_bytes())));
        }
        if self.flags.0 & class::KEYEVENT != 0 {
            let channel = format!("__keyevent@{}__:{}", self.db, self.event);
            messages.push((Bytes::from(channel), self.key.clone()));
        }
        messages
    }
}

/// The client that proposed an entry: a connection of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Writer {
    pub node: u64,
    pub client: u64,
}

/// What one applied batch reports, or the key misses of one read this
/// node served.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// The shard whose group applied it.
    pub shard: Shard,
    /// The events are a read's key misses, which only the node that
    /// served the read knows of: that node publishes them, leader or not.
    pub served: bool,
    pub events: Vec<KeyEvent>,
    /// Every key the batch changed, in order, with the entry's writer (if
    /// it carried one); collected only while tracking is asked for.
    pub changed: Vec<(Bytes, Option<Writer>)>,
    /// A FLUSHDB, FLUSHALL or SWAPDB ran: every key may have changed.
    pub flushed: bool,
}

/// The keys a command looked up to read and did not find (Redis's
/// `keymiss` events), by physical database, in lookup order. Collected
/// only while `m` notifications are on; reads record through `&self`.
#[derive(Debug, Default)]
pub(crate) struct Misses(Mutex<Vec<(u8, Bytes)>>);

impl Misses {
    pub(crate) fn record(&self, db: u8, key: &[u8]) {
        self.0.lock().expect("misses lock").push((db, Bytes::copy_from_slice(key)));
    }

    pub(crate) fn take(&self) -> Vec<(u8, Bytes)> {
        std::mem::take(&mut *self.0.lock().expect("misses lock"))
    }

    /// [`Misses::take`] by its owner, without locking.
    pub(crate) fn drain(&mut self) -> Vec<(u8, Bytes)> {
        std::mem::take(self.0.get_mut().expect("misses lock"))
    }
}

/// Where applied batches hand what they report: the frontend's receiver,
/// if it took one.
#[derive(Default)]
pub struct KeyEvents {
    receiver: Mutex<Option<mpsc::UnboundedSender<Applied>>>,
    /// Whether this node's clients track keys.
    tracking: AtomicBool,
    /// Other nodes' feeds of changed keys.
    pub(crate) feeds: ChangeFeeds,
}

impl KeyEvents {
    /// What every batch applied from now on reports.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<Applied> {
        let (sender, receiver) = mpsc::unbounded_channel();
        *self.receiver.lock().expect("key events lock") = Some(sender);
        receiver
    }

    /// Whether batches report the keys they change (client tracking):
    /// on while any client of this node tracks.
    pub fn track_changes(&self, on: bool) {
        self.tracking.store(on, Ordering::Relaxed);
    }

    /// Whether this node's clients track keys.
    pub(crate) fn tracked_here(&self) -> bool {
        self.tracking.load(Ordering::Relaxed)
    }

    /// Whether batches collect the keys they change: for this node's
    /// tracking clients or another node's feed.
    pub(crate) fn collect_changes(&self) -> bool {
        self.tracked_here() || self.feeds.any()
    }

    /// Hands on what a batch of this node's replica reports.
    pub(crate) fn emit(&self, applied: Applied) {
        self.feeds.collect(&applied);
        self.hand_on(applied);
    }

    /// Hands `applied` to the frontend only (changes followed on another
    /// node, which this node's feeds do not relay).
    pub(crate) fn hand_on(&self, applied: Applied) {
        if let Some(sender) = self.receiver.lock().expect("key events lock").as_ref() {
            let _ = sender.send(applied);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_print_as_redis_does() {
        let text = |s: &str| NotifyFlags::parse(s).map(|f| f.to_string());
        assert_eq!(text("KEA").as_deref(), Some("AKE"));
        assert_eq!(text("Elg").as_deref(), Some("glE"));
        assert_eq!(text("Kx$n").as_deref(), Some("$xnK"));
        assert_eq!(text("m").as_deref(), Some("m"));
        assert_eq!(text("KEAn").as_deref(), Some("AnKE"));
        assert_eq!(text("").as_deref(), Some(""));
        assert_eq!(text("KEq"), None);
    }

    #[test]
    fn an_event_goes_to_the_channels_its_flags_name() {
        let event =
            KeyEvent { db: 3, event: "set", key: Bytes::from_static(b"k"), flags: NotifyFlags::parse("KE$").unwrap() };
        let messages = event.messages();
        assert_eq!(messages[0], (Bytes::from_static(b"__keyspace@3__:k"), Bytes::from_static(b"set")));
        assert_eq!(messages[1], (Bytes::from_static(b"__keyevent@3__:set"), Bytes::from_static(b"k")));
        let only_space = KeyEvent { flags: NotifyFlags::parse("K$").unwrap(), ..event };
        assert_eq!(only_space.messages().len(), 1);
        assert!(!NotifyFlags::parse("$").unwrap().wants(class::STRING));
        assert!(NotifyFlags::parse("E$").unwrap().wants(class::STRING));
    }
}
