//! openraft's storage conformance suite against the RocksDB log store and
//! state-machine store, over a real RocksDB in a temp dir per case, as one
//! group among others sharing the service's families.

use bytes::Bytes;
use openraft::testing::{StoreBuilder, Suite};
use raft::testing::{state_machine_store, LogStore, StateMachineStore, StorageError, TypeConfig};
use raft::{Command, StateMachine};
use storage::keyspace::{self, Span};
use storage::{Batch, Durability, Family, Layout, Service, Storage, Store};

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

    fn state_spans(&self) -> Vec<Span> {
        vec![Span::prefix(Family::KvMeta, &keyspace::group_prefix(SHARD))]
    }
}

/// The group under test; its neighbours' keys surround it.
const SHARD: u32 = 3;

/// Fills the log and state of the groups beside [`SHARD`], which the suite
/// must never see nor change.
fn neighbours(store: &Store) {
    let mut batch = Batch::new();
    for shard in [SHARD - 1, SHARD + 1] {
        for index in [0, 1, 5, u64::MAX - 1] {
            batch.put(Family::KvRaftLog, keyspace::raft_log::key(shard, index).to_vec(), b"not an entry".to_vec());
        }
        batch.put(Family::KvRaftMeta, keyspace::raft_meta::vote(shard), b"not a vote".to_vec());
        batch.put(Family::KvMeta, keyspace::raft_state::applied(shard), b"not a log id".to_vec());
    }
    store.write(batch, Durability::Sync).expect("write the neighbours");
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
        neighbours(&store);
        let log = LogStore::open(store.clone(), self.0, SHARD)?;
        let sm = state_machine_store(store, SHARD, Echo, dir.path().join("snapshots"))?;
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
