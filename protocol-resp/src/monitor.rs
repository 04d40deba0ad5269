//! MONITOR: every command this node's clients send, streamed to the
//! connections that asked, in Redis's line format:
//! `1339518083.107412 [0 127.0.0.1:60866] "keys" "*"`.
//!
//! Admin commands are not shown and passwords are hidden, as in Redis. A
//! monitor that cannot keep up skips lines (it is told how many) rather
//! than slowing the node down.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::broadcast;

/// Lines waiting for a slow monitor before it skips some.
const BACKLOG: usize = 4096;

pub(crate) struct Monitors {
    lines: broadcast::Sender<Arc<str>>,
    /// Whether a monitor may be listening: set by a subscription, cleared
    /// when a line finds nobody. Every command checks it, without a lock.
    watched: AtomicBool,
}

impl Default for Monitors {
    fn default() -> Self {
        Monitors { lines: broadcast::channel(BACKLOG).0, watched: AtomicBool::new(false) }
    }
}

impl Monitors {
    /// Whether any connection may be monitoring (checked before copying
    /// a command's words).
    pub(crate) fn watched(&self) -> bool {
        self.watched.load(Ordering::Relaxed)
    }

    /// A new monitor's stream of lines.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        let lines = self.lines.subscribe();
        self.watched.store(true, Ordering::Relaxed);
        lines
    }

    /// Shows `words`, sent by `addr` in database `db`, to every monitor.
    pub(crate) fn feed(&self, db: u8, addr: &str, words: &[Bytes]) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let mut line = format!("{}.{:06} [{db} {addr}]", now.as_secs(), now.subsec_micros());
        let secret = crate::redact::secret(words);
        for (i, word) in words.iter().enumerate() {
            line.push(' ');
            if secret(i) {
                line.push_str("\"(redacted)\"");
            } else {
                quote(&mut line, word);
            }
        }
        if self.lines.send(Arc::from(line)).is_err() {
            // Every monitor has gone: stop copying words for them.
            self.watched.store(false, Ordering::Relaxed);
            if self.lines.receiver_count() > 0 {
                // One subscribed meanwhile.
                self.watched.store(true, Ordering::Relaxed);
            }
        }
    }
}

/// `word` in double quotes with Redis's escapes (`sdscatrepr`).
fn quote(out: &mut String, word: &[u8]) {
    out.push('"');
    for &byte in word {
        match byte {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            b if b.is_ascii_graphic() || b == b' ' => out.push(b as char),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_quote_like_redis_and_hide_passwords() {
        let monitors = Monitors::default();
        let mut lines = monitors.subscribe();
        monitors.feed(3, "127.0.0.1:5000", &[Bytes::from_static(b"SET"), Bytes::from_static(b"k\n\"\x01")]);
        monitors.feed(0, "127.0.0.1:5000", &[Bytes::from_static(b"AUTH"), Bytes::from_static(b"secret")]);
        let first = lines.try_recv().unwrap();
        assert!(first.ends_with(" [3 127.0.0.1:5000] \"SET\" \"k\\n\\\"\\x01\""), "{first}");
        let second = lines.try_recv().unwrap();
        assert!(second.ends_with("\"AUTH\" \"(redacted)\""), "{second}");
    }
}
