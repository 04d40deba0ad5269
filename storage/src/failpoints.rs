//! Fault injection for tests of retry paths that real faults hit only by
//! chance. `SESHAT_FAILPOINTS=name=count,…` arms a failpoint for its first
//! `count` hits; unset (the normal case), every check is one atomic load.
//!
//! Failpoints:
//! - `drop-forward-reply@<group>` (e.g. `drop-forward-reply@kv/0`): the
//!   leader of that group applies a forwarded write but never answers it,
//!   so the follower retries the same request.
//! - `log-append-error`: appending to the Raft log fails as a failing disk
//!   would; openraft stops the group and the node exits 1.
//! - `abort-mid-snapshot-install`: the process aborts while installing a
//!   snapshot, after clearing the state families and ingesting the first
//!   one's files, as a crash or power loss at that moment would.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

static ARMED: LazyLock<HashMap<String, AtomicU64>> = LazyLock::new(|| {
    let spec = std::env::var("SESHAT_FAILPOINTS").unwrap_or_default();
    spec.split(',')
        .filter_map(|item| item.split_once('='))
        .filter_map(|(name, count)| Some((name.trim().to_string(), AtomicU64::new(count.trim().parse().ok()?))))
        .collect()
});

/// True if failpoint `name`, scoped to `scope` (armed as `name@scope`),
/// is armed; uses up one of its hits. Costs one check when nothing is
/// armed.
pub fn fire_in(name: &str, scope: &str) -> bool {
    let fired = !ARMED.is_empty() && take_hit(&format!("{name}@{scope}"));
    if fired {
        tracing::warn!("failpoint {name} fired in {scope}");
    }
    fired
}

/// True if failpoint `name` is armed; uses up one of its hits.
pub fn fire(name: &str) -> bool {
    let fired = take_hit(name);
    if fired {
        tracing::warn!("failpoint {name} fired");
    }
    fired
}

/// Uses up one hit of the failpoint armed as `armed`, if it has one left.
fn take_hit(armed: &str) -> bool {
    let Some(remaining) = ARMED.get(armed) else { return false };
    remaining.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)).is_ok()
}
