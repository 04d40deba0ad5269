//! The single-node group: order, batching, fatal errors, shutdown.

use std::sync::{Arc, Mutex};

use raft::{Entry, Group, GroupError, GroupId, StateMachine};

/// What was applied: `(index, command)` in order.
type AppliedLog = Arc<Mutex<Vec<(u64, String)>>>;
/// The size of each applied batch.
type BatchSizes = Arc<Mutex<Vec<usize>>>;

/// A state machine that records what it applied, and fails on request.
struct Recorder {
    applied: u64,
    log: AppliedLog,
    batches: BatchSizes,
}

#[derive(Debug, thiserror::Error)]
#[error("disk on fire")]
struct Fire;

impl StateMachine for Recorder {
    type Command = String;
    type Response = u64;
    type Error = Fire;

    fn applied_index(&self) -> u64 {
        self.applied
    }

    fn apply(&mut self, entries: Vec<Entry<String>>) -> Result<Vec<u64>, Fire> {
        if entries.iter().any(|e| e.command == "fail") {
            return Err(Fire);
        }
        self.batches.lock().unwrap().push(entries.len());
        let mut responses = Vec::new();
        for entry in entries {
            assert_eq!(entry.index, self.applied + 1, "indexes are consecutive");
            self.applied = entry.index;
            self.log.lock().unwrap().push((entry.index, entry.command));
            responses.push(entry.index);
        }
        Ok(responses)
    }
}

fn start(applied: u64) -> (Group<Recorder>, AppliedLog, BatchSizes) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let batches = Arc::new(Mutex::new(Vec::new()));
    let recorder = Recorder { applied, log: log.clone(), batches: batches.clone() };
    (Group::start_single(GroupId { service: "test", shard: 0 }, recorder), log, batches)
}

#[tokio::test]
async fn proposals_apply_in_order_after_the_recovered_index() {
    let (group, log, batches) = start(41);
    let proposals: Vec<_> = (0..500).map(|i| group.propose(format!("c{i}"))).collect();
    for (i, proposal) in proposals.into_iter().enumerate() {
        assert_eq!(proposal.await, Ok(42 + i as u64));
    }
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 500);
    assert!(log.iter().enumerate().all(|(i, (index, command))| *index == 42 + i as u64 && *command == format!("c{i}")));
    assert_eq!(group.status().applied_index, 541);
    // Proposals queued together are applied together (group commit).
    assert!(batches.lock().unwrap().len() < 500, "some batching happened");
    group.shutdown();
}

#[tokio::test]
async fn a_fatal_error_stops_the_group() {
    let (group, log, _) = start(0);
    assert_eq!(group.propose("ok".into()).await, Ok(1));
    let failing = group.propose("fail".into());
    assert!(matches!(failing.await, Err(GroupError::Fatal { .. })));
    assert_eq!(group.fatal().await, "disk on fire");
    assert!(matches!(group.propose("after".into()).await, Err(GroupError::Fatal { .. })));
    assert_eq!(log.lock().unwrap().len(), 1, "nothing applied after the failure");
    group.shutdown();
}

#[tokio::test]
async fn shutdown_applies_what_was_queued_then_refuses() {
    let (group, log, _) = start(0);
    let queued: Vec<_> = (0..100).map(|i| group.propose(format!("q{i}"))).collect();
    let stopper = group.clone();
    tokio::task::spawn_blocking(move || stopper.shutdown()).await.unwrap();
    for proposal in queued {
        assert!(proposal.await.is_ok(), "queued before shutdown, so applied");
    }
    assert_eq!(log.lock().unwrap().len(), 100);
    assert!(matches!(group.propose("late".into()).await, Err(GroupError::ShuttingDown(_))));
    assert!(matches!(group.read_barrier().await, Err(GroupError::ShuttingDown(_))));
}
