//! The scripts a node found stored in every shard it holds a replica of,
//! so that EVAL on a node with several shards looks them up there once,
//! not on every call (`crate::Kv::write_scripts`).
//!
//! The set only ever claims what the store showed, so it must forget
//! whatever a held shard may lose afterwards. It is cleared when:
//! - a held shard's SCRIPT FLUSH has been written (the state machine
//!   clears it once the batch is visible, `StateMachine::written`);
//! - a held shard installed a snapshot (its scripts are the snapshot's);
//! - the node starts holding another shard (its scripts are unknown).
//!
//! A lookup that raced a clear must not record what it saw before it: a
//! reader takes the generation first, reads the store, and records a
//! script only if no clear came in between ([`StoredEverywhere::record`]).
//! A clear after the store was written therefore either finds the record
//! (and drops it) or has bumped the generation before it.

use std::collections::HashSet;
use std::sync::RwLock;

use super::Sha;

/// See the module docs. Every EVAL on a node with several shards reads
/// it; only a miss or a clear writes.
#[derive(Debug, Default)]
pub struct StoredEverywhere {
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Grows with every clear.
    generation: u64,
    shas: HashSet<Sha>,
}

impl StoredEverywhere {
    /// Whether every held shard stores `sha`, as last seen.
    pub fn contains(&self, sha: &Sha) -> bool {
        self.state.read().expect("stored-everywhere lock").shas.contains(sha)
    }

    /// The generation to pass to [`StoredEverywhere::record`]; taken
    /// before reading the store.
    pub fn generation(&self) -> u64 {
        self.state.read().expect("stored-everywhere lock").generation
    }

    /// Records that every held shard stores `sha`, as read after taking
    /// `generation`; nothing if a clear came since.
    pub fn record(&self, generation: u64, sha: Sha) {
        let mut state = self.state.write().expect("stored-everywhere lock");
        if state.generation == generation {
            state.shas.insert(sha);
        }
    }

    /// Forgets every script: a held shard may have lost some.
    pub fn clear(&self) {
        let mut state = self.state.write().expect("stored-everywhere lock");
        state.generation += 1;
        state.shas.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clear_between_lookup_and_record_drops_the_record() {
        let everywhere = StoredEverywhere::default();
        let (a, b) = (Sha::of(b"return 1"), Sha::of(b"return 2"));
        let generation = everywhere.generation();
        everywhere.record(generation, a);
        assert!(everywhere.contains(&a));
        let stale = everywhere.generation();
        everywhere.clear();
        assert!(!everywhere.contains(&a), "a clear forgets what was recorded");
        everywhere.record(stale, b);
        assert!(!everywhere.contains(&b), "a lookup from before the clear is not recorded");
        everywhere.record(everywhere.generation(), b);
        assert!(everywhere.contains(&b));
    }
}
