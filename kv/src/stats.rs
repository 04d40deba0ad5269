//! The Redis service's counters for INFO.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters for INFO stats. Reset by CONFIG RESETSTAT.
#[derive(Debug, Default)]
pub struct Stats {
    pub keyspace_hits: AtomicU64,
    pub keyspace_misses: AtomicU64,
    pub expired_keys: AtomicU64,
}

impl Stats {
    pub fn reset(&self) {
        for counter in [&self.keyspace_hits, &self.keyspace_misses, &self.expired_keys] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}
