//! Getting proposals into the log: appended here when this node leads,
//! forwarded to the leader otherwise, retried until the request deadline.
//!
//! One task per group takes submissions in queue order and starts each one
//! (appends it, or sends it on the leader's connection) before taking the
//! next, so proposals queued in order reach the leader's log in order while
//! the leader is stable. Each submission is then awaited on its own task;
//! one that failed in a way that may be retried (no leader yet, leader
//! changed, connection lost, reply lost) is sent again with the SAME serial,
//! which the state machine's client sessions turn into exactly-once
//! application. After a leader change, retried proposals of one pipeline
//! may be appended in a different order than they were queued.

use std::time::Duration;

use bytes::Bytes;
use openraft::error::ClientWriteError;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::group::{GroupError, Inner};
use crate::transport::wire::{Reply, Rpc};
use crate::transport::TransportError;
use crate::types::{Request, TypeConfig};

/// The longest one forwarding attempt waits before it is retried.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
/// The pause between attempts when no leader answers.
const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// A proposal waiting to be appended.
pub(crate) struct Submission {
    pub(crate) request: Request,
    pub(crate) reply: oneshot::Sender<Result<Bytes, GroupError>>,
    pub(crate) deadline: Instant,
    /// Forwarded by a follower: append here or refuse, never forward again.
    pub(crate) forwarded: bool,
}

type AppendReceiver = openraft::raft::responder::OneshotResponder<TypeConfig>;

/// The first attempt, started in queue order.
enum Attempt {
    Local(<AppendReceiver as openraft::raft::responder::Responder<TypeConfig>>::Receiver),
    Remote(std::pin::Pin<Box<dyn std::future::Future<Output = Result<Reply, TransportError>> + Send>>),
    Failed(GroupError),
}

pub(crate) async fn run(inner: std::sync::Arc<Inner>, mut queue: mpsc::UnboundedReceiver<Submission>) {
    loop {
        let mut submission = tokio::select! {
            _ = inner.stopped.cancelled() => return,
            submission = queue.recv() => match submission {
                Some(submission) => submission,
                None => return,
            },
        };
        let attempt = start(&inner, &mut submission).await;
        let inner = inner.clone();
        tokio::spawn(async move {
            let forwarded = submission.forwarded;
            let serial = submission.request.serial;
            let mut result = finish(&inner, attempt).await;
            if !forwarded {
                while let Err(error) = &result {
                    if !retriable(error) {
                        break;
                    }
                    if Instant::now() >= submission.deadline {
                        let last = match error {
                            GroupError::Unavailable { reason, .. } => reason.clone(),
                            other => other.to_string(),
                        };
                        result =
                            Err(inner
                                .unavailable(format!("no leader accepted the write in time; last attempt: {last}")));
                        break;
                    }
                    tokio::time::sleep(RETRY_PAUSE).await;
                    let attempt = start(&inner, &mut submission).await;
                    result = finish(&inner, attempt).await;
                }
                inner.session.answered(serial);
            }
            let _ = submission.reply.send(result);
        });
    }
}

/// Starts one attempt: appends locally when leading, else sends to the leader.
async fn start(inner: &Inner, submission: &mut Submission) -> Attempt {
    if inner.leader_id() == Some(inner.node_id) {
        submission.request.stamp_ms = inner.stamp();
        return match inner.raft.client_write_ff(submission.request.clone()).await {
            Ok(receiver) => Attempt::Local(receiver),
            Err(fatal) => {
                Attempt::Failed(GroupError::Fatal { group: inner.name.to_string(), reason: fatal.to_string() })
            }
        };
    }
    let leader = if submission.forwarded { inner.leader() } else { inner.wait_for_leader(submission.deadline).await };
    let Some((leader, addr)) = leader else {
        return Attempt::Failed(inner.unavailable("no leader is known"));
    };
    if leader == inner.node_id {
        // Became leader while waiting: append on the next attempt.
        return Attempt::Failed(GroupError::NotLeader { leader: Some(leader) });
    }
    if submission.forwarded {
        return Attempt::Failed(GroupError::NotLeader { leader: Some(leader) });
    }
    let deadline = submission.deadline.min(Instant::now() + ATTEMPT_TIMEOUT);
    let peers = inner.node.peers();
    match peers.send(&addr, &inner.name, Rpc::Forward(submission.request.clone()), deadline).await {
        Ok(reply) => Attempt::Remote(Box::pin(reply)),
        Err(error) => Attempt::Failed(inner.unavailable(error.to_string())),
    }
}

async fn finish(inner: &Inner, attempt: Attempt) -> Result<Bytes, GroupError> {
    match attempt {
        Attempt::Failed(error) => Err(error),
        Attempt::Local(receiver) => match receiver.await {
            Ok(Ok(response)) => Ok(response.data),
            Ok(Err(ClientWriteError::ForwardToLeader(forward))) => {
                Err(GroupError::NotLeader { leader: forward.leader_id })
            }
            Ok(Err(ClientWriteError::ChangeMembershipError(error))) => Err(GroupError::Membership(error.to_string())),
            // The responder was dropped: leadership was lost mid-append.
            Err(_) => Err(GroupError::NotLeader { leader: None }),
        },
        Attempt::Remote(reply) => match reply.await {
            Ok(Reply::Forward(result)) => result,
            Ok(_) => Err(GroupError::NotLeader { leader: None }),
            Err(error) => Err(inner.unavailable(error.to_string())),
        },
    }
}

/// Whether an attempt may be repeated with the same serial.
fn retriable(error: &GroupError) -> bool {
    matches!(error, GroupError::NotLeader { .. } | GroupError::Unavailable { .. } | GroupError::ShuttingDown(_))
}
