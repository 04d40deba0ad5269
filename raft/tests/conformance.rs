//! openraft's storage conformance suite against the RocksDB log store and
//! state-machine store, over a real RocksDB in a temp dir per case.

use bytes::Bytes;
use openraft::testing::{StoreBuilder, Suite};
use raft::testing::{state_machine_store, LogStore, StateMachineStore, StorageError, TypeConfig};
use raft::{Command, StateMachine};
use storage::{Batch, Layout, Service, Storage};

/// A state machine that only echoes: the suite exercises log, vote,
/// membership and applied-id bookkeeping, not a service.
struct Echo;

impl StateMachine for Echo {
    type Error = std::io::Error;

    fn apply(&mut self, _batch: &mut Batch, commands: Vec<Command>) -> Result<Vec<Bytes>, Self::Error> {
        Ok(commands.into_iter().map(|c| c.payload).collect())
    }

    fn last_stamp_ms(&self) -> u64 {
        0
    }

    fn reload(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Builds stores for the node with the given id. openraft's suite writes entries proposed by
/// node 0, so node 0 appends them as a leader does (synced by the syncer
/// thread) and any other node as a follower does (synced in place).
struct RocksBuilder(u64);

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore<Echo>, (tempfile::TempDir, Storage)> for RocksBuilder {
    async fn build(&self) -> Result<((tempfile::TempDir, Storage), LogStore, StateMachineStore<Echo>), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open(&dir.path().join("data"), Layout::Shared).expect("open storage");
        let store = storage.store(Service::Kv);
        let log = LogStore::open(store.clone(), self.0)?;
        let sm = state_machine_store(store, Echo, dir.path().join("snapshots"))?;
        Ok(((dir, storage), log, sm))
    }
}

#[test]
fn the_rocksdb_stores_pass_openraft_s_suite_as_the_leader() {
    Suite::test_all(RocksBuilder(0)).unwrap();
}

#[test]
fn the_rocksdb_stores_pass_openraft_s_suite_as_a_follower() {
    Suite::test_all(RocksBuilder(1)).unwrap();
}
