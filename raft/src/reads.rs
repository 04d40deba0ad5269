//! Linearizable reads by read index (Raft thesis §6.4), batched.
//!
//! A read needs the commit index of a leader that has confirmed, AFTER the
//! read arrived, that it still leads (openraft's `get_read_log_id` sends a
//! heartbeat round to a quorum). Confirmations are batched: reads that
//! arrive while a round is running wait for the next round, which then
//! serves all of them with one confirmation. A read that joined a round
//! started before it arrived could miss a write acknowledged in between;
//! joining only the next round rules that out.
//!
//! A leader under a lease ([`crate::lease`]) needs no round: the lease,
//! checked after the read arrived, rules out any other leader, so its last
//! log index is a read index.
//!
//! A follower obtains the index from the leader (one `ReadIndex` RPC per
//! round), then waits until it has applied that far and reads locally.
//!
//! While the leader hands its role over, it reads under no lease, and
//! rounds wait for the handover to end (see [`crate::handover`]) and then
//! ask whoever leads.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::group::{GroupError, Inner};
use crate::transport::wire::{Reply, Rpc};

type Waiter = oneshot::Sender<Result<u64, GroupError>>;

/// Batches read-index confirmations.
pub(crate) struct ReadBatcher {
    /// Ask the leader when this node does not lead (local reads); refuse
    /// otherwise (requests from followers must not bounce around).
    forward: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    waiting: Vec<Waiter>,
    running: bool,
}

impl ReadBatcher {
    pub(crate) fn new(forward: bool) -> Arc<Self> {
        Arc::new(ReadBatcher { forward, state: Mutex::default() })
    }

    /// A log index that, once applied locally, makes a read linearizable.
    pub(crate) async fn read_index(self: &Arc<Self>, inner: &Arc<Inner>, deadline: Instant) -> Result<u64, GroupError> {
        // No lease while handing over: the target may win with this
        // leader's vote before the lease would have run out.
        let lease = (!inner.handovers.in_progress())
            .then(|| inner.leases.read_index(&inner.raft.metrics().borrow(), Instant::now()))
            .flatten();
        if let Some(index) = lease {
            // The metrics may lag a write this node applied (and answered)
            // since they were reported.
            return Ok(index.max(*inner.applied.index.borrow()));
        }
        let (waiter, receiver) = oneshot::channel();
        let start_round = {
            let mut state = self.state.lock().expect("read batcher lock");
            state.waiting.push(waiter);
            !std::mem::replace(&mut state.running, true)
        };
        if start_round {
            tokio::spawn(self.clone().run_rounds(inner.clone()));
        }
        match tokio::time::timeout_at(deadline, receiver).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(GroupError::ShuttingDown(inner.name.to_string())),
            Err(_) => Err(inner.unavailable("no leader confirmed a read index in time")),
        }
    }

    /// Runs confirmation rounds until no read waits.
    async fn run_rounds(self: Arc<Self>, inner: Arc<Inner>) {
        while let Some(round) = self.take_round() {
            let deadline = Instant::now() + inner.settings.request_timeout;
            let result = confirm(&inner, self.forward, deadline).await;
            for waiter in round {
                let _ = waiter.send(result.clone());
            }
        }
    }

    fn take_round(&self) -> Option<Vec<Waiter>> {
        let mut state = self.state.lock().expect("read batcher lock");
        if state.waiting.is_empty() {
            state.running = false;
            return None;
        }
        Some(std::mem::take(&mut state.waiting))
    }
}

/// One confirmation round.
async fn confirm(inner: &Inner, forward: bool, deadline: Instant) -> Result<u64, GroupError> {
    loop {
        let leader = if forward { inner.wait_for_leader(deadline).await } else { inner.leader() };
        let outcome: Result<u64, GroupError> = match leader {
            None if forward => return Err(inner.unavailable("no leader is known")),
            None => return Err(GroupError::NotLeader { leader: None }),
            Some((leader, _)) if leader == inner.node_id && inner.handovers.in_progress() => {
                // A confirmation round would renew the followers' leases.
                inner.handovers.wait_idle(deadline).await;
                if Instant::now() >= deadline {
                    return Err(inner.unavailable("a leadership handover did not finish in time"));
                }
                continue;
            }
            Some((leader, _)) if leader == inner.node_id => {
                match tokio::time::timeout_at(deadline, inner.raft.get_read_log_id()).await {
                    Ok(Ok((read_log_id, _))) => return Ok(read_log_id.map_or(0, |id| id.index)),
                    Ok(Err(error)) => Err(inner.unavailable(error.to_string())),
                    Err(_) => return Err(inner.unavailable("leadership was not confirmed by a quorum in time")),
                }
            }
            Some((leader, _)) if !forward => return Err(GroupError::NotLeader { leader: Some(leader) }),
            Some((_, addr)) => {
                let timeout = deadline.saturating_duration_since(Instant::now());
                match inner.node.peers().call(&addr, &inner.name, Rpc::ReadIndex, timeout).await {
                    Ok(Reply::ReadIndex(Ok(index))) => return Ok(index),
                    Ok(Reply::ReadIndex(Err(error))) => Err(error),
                    Ok(_) => Err(inner.unavailable("the leader answered with an unexpected reply")),
                    Err(error) => Err(inner.unavailable(error.to_string())),
                }
            }
        };
        if let Err(error) = outcome {
            if Instant::now() >= deadline {
                return Err(error);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
