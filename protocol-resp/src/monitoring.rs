//! What SLOWLOG and LATENCY report: commands that took long on this node,
//! and per-command latency histograms.
//!
//! A command's duration runs from its dispatch to its reply, so for a
//! write it includes the Raft round (append, majority fsync, apply) and
//! for a read its read barrier: what the client waited, which is what an
//! operator looks for. CONFIG `slowlog-log-slower-than`/`slowlog-max-len`
//! decide what SLOWLOG keeps, `latency-monitor-threshold` what LATENCY
//! records, and `latency-tracking` whether LATENCY HISTOGRAM counts.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use kv::Reply;

use crate::clients::Client;
use crate::server::unix_seconds;

/// Redis's limits on what one slow log entry keeps of a command.
const MAX_ARGS: usize = 32;
const MAX_ARG_LEN: usize = 128;
/// LATENCY keeps this many samples per event.
const LATENCY_SAMPLES: usize = 160;

/// The thresholds in force when a command completed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Thresholds {
    /// Microseconds; negative: the slow log is off.
    pub slowlog_slower_than_us: i64,
    pub slowlog_max_len: usize,
    /// Milliseconds; 0: the latency monitor is off.
    pub latency_ms: u64,
    pub tracking: bool,
}

pub(crate) struct Monitoring {
    slowlog: Mutex<SlowLog>,
    latency: Mutex<Latency>,
    /// Per command, counted without a lock (every command passes here).
    histograms: HashMap<&'static str, Histogram>,
}

/// One command's calls and counts per power-of-two microsecond bucket.
struct Histogram {
    calls: AtomicU64,
    buckets: [AtomicU64; 40],
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { calls: AtomicU64::new(0), buckets: std::array::from_fn(|_| AtomicU64::new(0)) }
    }
}

#[derive(Default)]
struct SlowLog {
    next_id: u64,
    /// Newest first.
    entries: VecDeque<SlowEntry>,
}

struct SlowEntry {
    id: u64,
    unix_seconds: u64,
    micros: u64,
    args: Vec<Bytes>,
    addr: String,
    name: String,
}

/// One latency event's `(unix seconds, milliseconds)` samples, oldest
/// first, and its all-time maximum.
type EventHistory = (VecDeque<(u64, u64)>, u64);

#[derive(Default)]
struct Latency {
    /// Per event ("command", "fast-command"): samples, oldest first, at
    /// most one per second, and the largest ever seen.
    events: BTreeMap<&'static str, EventHistory>,
}

impl Monitoring {
    /// Monitoring for the commands called `names`.
    pub(crate) fn new(names: impl Iterator<Item = &'static str>) -> Self {
        Monitoring {
            slowlog: Mutex::default(),
            latency: Mutex::default(),
            histograms: names.map(|name| (name, Histogram::default())).collect(),
        }
    }

    /// Records a completed command `name` (its words when the slow log may
    /// want them) that took `elapsed`.
    pub(crate) fn observe(
        &self,
        thresholds: Thresholds,
        name: &'static str,
        fast: bool,
        words: Option<Vec<Bytes>>,
        client: &Client,
        elapsed: Duration,
    ) {
        let micros = elapsed.as_micros() as u64;
        if let Some(histogram) = self.histograms.get(name).filter(|_| thresholds.tracking) {
            histogram.calls.fetch_add(1, Ordering::Relaxed);
            let bucket = (64 - micros.max(1).saturating_sub(1).leading_zeros() as usize).min(39);
            histogram.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        let millis = micros / 1000;
        if thresholds.latency_ms > 0 && millis >= thresholds.latency_ms {
            let event = if fast { "fast-command" } else { "command" };
            let now = unix_seconds();
            let mut latency = self.latency.lock().expect("latency lock");
            let (samples, max) = latency.events.entry(event).or_default();
            *max = (*max).max(millis);
            match samples.back_mut() {
                Some((at, latest)) if *at == now => *latest = (*latest).max(millis),
                _ => samples.push_back((now, millis)),
            }
            if samples.len() > LATENCY_SAMPLES {
                samples.pop_front();
            }
        }
        let (Some(words), true) = (words, thresholds.slowlog_slower_than_us >= 0) else { return };
        if micros < thresholds.slowlog_slower_than_us as u64 {
            return;
        }
        let state = client.snapshot();
        let mut slowlog = self.slowlog.lock().expect("slow log lock");
        let id = slowlog.next_id;
        slowlog.next_id += 1;
        slowlog.entries.push_front(SlowEntry {
            id,
            unix_seconds: unix_seconds(),
            micros,
            args: redacted(words),
            addr: client.addr.to_string(),
            name: state.name.unwrap_or_default(),
        });
        slowlog.entries.truncate(thresholds.slowlog_max_len);
    }

    /// SLOWLOG GET: the newest `count` entries (`None`: all).
    pub(crate) fn slowlog(&self, count: Option<usize>) -> Reply {
        let slowlog = self.slowlog.lock().expect("slow log lock");
        let entries = slowlog.entries.iter().take(count.unwrap_or(usize::MAX));
        Reply::Array(
            entries
                .map(|entry| {
                    Reply::Array(vec![
                        Reply::Int(entry.id as i64),
                        Reply::Int(entry.unix_seconds as i64),
                        Reply::Int(entry.micros as i64),
                        Reply::Array(entry.args.iter().cloned().map(Reply::Bulk).collect()),
                        Reply::bulk(entry.addr.clone()),
                        Reply::bulk(entry.name.clone()),
                    ])
                })
                .collect(),
        )
    }

    pub(crate) fn slowlog_len(&self) -> usize {
        self.slowlog.lock().expect("slow log lock").entries.len()
    }

    pub(crate) fn slowlog_reset(&self) {
        self.slowlog.lock().expect("slow log lock").entries.clear();
    }

    /// LATENCY LATEST: `[event, time, latest ms, max ms]` per event.
    pub(crate) fn latest(&self) -> Reply {
        let latency = self.latency.lock().expect("latency lock");
        Reply::Array(
            latency
                .events
                .iter()
                .filter_map(|(event, (samples, max))| {
                    let (at, latest) = samples.back()?;
                    Some(Reply::Array(vec![
                        Reply::bulk(*event),
                        Reply::Int(*at as i64),
                        Reply::Int(*latest as i64),
                        Reply::Int(*max as i64),
                    ]))
                })
                .collect(),
        )
    }

    /// LATENCY HISTORY: `[time, ms]` per sample of `event`.
    pub(crate) fn history(&self, event: &str) -> Reply {
        let latency = self.latency.lock().expect("latency lock");
        let samples = latency.events.get(event).map(|(samples, _)| samples.iter().copied().collect::<Vec<_>>());
        Reply::Array(
            samples
                .unwrap_or_default()
                .into_iter()
                .map(|(at, ms)| Reply::Array(vec![Reply::Int(at as i64), Reply::Int(ms as i64)]))
                .collect(),
        )
    }

    /// LATENCY RESET: forgets `events` (all when empty); how many it had.
    pub(crate) fn reset(&self, events: &[String]) -> i64 {
        let mut latency = self.latency.lock().expect("latency lock");
        if events.is_empty() {
            let count = latency.events.len();
            latency.events.clear();
            return count as i64;
        }
        events.iter().filter(|event| latency.events.remove(event.as_str()).is_some()).count() as i64
    }

    /// The events recorded, with their sample counts and maxima, for
    /// LATENCY DOCTOR.
    pub(crate) fn events(&self) -> Vec<(&'static str, usize, u64)> {
        let latency = self.latency.lock().expect("latency lock");
        latency.events.iter().map(|(event, (samples, max))| (*event, samples.len(), *max)).collect()
    }

    /// LATENCY HISTOGRAM of `commands` (all when empty): per command its
    /// calls and the cumulative count per power-of-two microsecond bound.
    pub(crate) fn histograms(&self, commands: &[String]) -> Reply {
        let mut names: Vec<&&'static str> = self.histograms.keys().collect();
        names.sort();
        let pairs = names
            .into_iter()
            .filter(|name| commands.is_empty() || commands.iter().any(|c| c.eq_ignore_ascii_case(name)))
            .filter_map(|name| {
                let histogram = &self.histograms[*name];
                let calls = histogram.calls.load(Ordering::Relaxed);
                if calls == 0 {
                    return None;
                }
                let mut cumulative = 0;
                let bounds = histogram
                    .buckets
                    .iter()
                    .enumerate()
                    .map(|(bucket, count)| (bucket, count.load(Ordering::Relaxed)))
                    .filter(|(_, count)| *count > 0)
                    .map(|(bucket, count)| {
                        cumulative += count;
                        (Reply::Int(1i64 << bucket), Reply::Int(cumulative as i64))
                    })
                    .collect();
                let detail = vec![
                    (Reply::bulk("calls"), Reply::Int(calls as i64)),
                    (Reply::bulk("histogram_usec"), Reply::Map(bounds)),
                ];
                Some((Reply::bulk(*name), Reply::Map(detail)))
            })
            .collect();
        Reply::Map(pairs)
    }
}

/// The words a slow log entry keeps: passwords hidden, at most 32
/// arguments and 128 bytes of each, as Redis trims them.
fn redacted(mut words: Vec<Bytes>) -> Vec<Bytes> {
    let hidden: Vec<usize> = {
        let secret = crate::redact::secret(&words);
        (0..words.len()).filter(|i| secret(*i)).collect()
    };
    for i in hidden {
        words[i] = Bytes::from_static(b"(redacted)");
    }
    let total = words.len();
    if total > MAX_ARGS {
        words.truncate(MAX_ARGS - 1);
        words.push(Bytes::from(format!("... ({} more arguments)", total - MAX_ARGS + 1)));
    }
    for word in &mut words {
        if word.len() > MAX_ARG_LEN {
            let more = word.len() - MAX_ARG_LEN;
            let mut kept = word[..MAX_ARG_LEN].to_vec();
            kept.extend_from_slice(format!("... ({more} more bytes)").as_bytes());
            *word = Bytes::from(kept);
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_log_entries_hide_passwords_and_trim_like_redis() {
        let auth = redacted(vec![Bytes::from_static(b"AUTH"), Bytes::from_static(b"secret")]);
        assert_eq!(auth[1], Bytes::from_static(b"(redacted)"));
        let many: Vec<Bytes> = (0..40).map(|i| Bytes::from(i.to_string())).collect();
        let kept = redacted(many);
        assert_eq!(kept.len(), 32);
        assert_eq!(kept[31], Bytes::from_static(b"... (9 more arguments)"));
        let long = redacted(vec![Bytes::from_static(b"SET"), Bytes::from(vec![b'x'; 200])]);
        assert!(long[1].ends_with(b"... (72 more bytes)"));
    }
}
