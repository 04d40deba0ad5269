//! Failure detection: which nodes this node hears from, and its reports
//! to the metadata group, which agrees on the failed ones.
//!
//! Every node pings every other node of the map over the Raft transport
//! (the `ping` node service) every [`PING_INTERVAL`]. A node it has not
//! heard from for [`FAILURE_TIMEOUT`] is suspected here (Redis's PFAIL,
//! `fail?`), and this node reports it to the metadata group; once it
//! answers again, this node withdraws its report. The map marks a node
//! failed when a majority of the nodes report it (Redis's FAIL; see
//! `ClusterMap::failed`), so every node shows the same verdict.
//!
//! Each round compares this node's suspicions with the reports the map
//! holds from it and proposes the differences, so a report lost to an
//! unavailable metadata group, or left by this node's previous process,
//! is put right in a later round.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use raft::{answer_now, NodeId, NodeService, RaftNode, ServiceAnswer};
use tokio::time::Instant;

use super::{MetaCommand, MetaGroup};

/// The node service the pings go to.
pub const SERVICE: &str = "ping";
/// How often this node pings each other node.
pub const PING_INTERVAL: Duration = Duration::from_millis(500);
/// A node not heard from for this long is suspected and reported: a few
/// election timeouts, so a leader change or a slow fsync is no failure.
pub const FAILURE_TIMEOUT: Duration = Duration::from_secs(2);

/// The nodes this node suspects now. Cheap to clone.
#[derive(Clone, Default)]
pub struct Suspects {
    inner: Arc<Mutex<BTreeSet<NodeId>>>,
}

impl Suspects {
    /// Whether this node has not heard from node `id` for the failure
    /// timeout.
    pub fn contains(&self, id: NodeId) -> bool {
        self.inner.lock().expect("suspects lock").contains(&id)
    }

    fn set(&self, suspects: BTreeSet<NodeId>) {
        *self.inner.lock().expect("suspects lock") = suspects;
    }
}

/// Answers pings.
pub(super) fn serve(node: &RaftNode) {
    node.register_service(SERVICE, Arc::new(Pong));
}

struct Pong;

impl NodeService for Pong {
    fn handle(&self, _message: Bytes) -> ServiceAnswer {
        answer_now(Bytes::new())
    }
}

impl MetaGroup {
    /// Pings the other nodes and reports the ones this node cannot reach,
    /// until `shutdown` resolves.
    pub async fn run_failure_detector(&self, node: RaftNode, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let me = node.id();
        let mut last_heard: HashMap<NodeId, Instant> = HashMap::new();
        let mut interval = tokio::time::interval(PING_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = interval.tick() => {}
            }
            let map = self.map();
            if !map.nodes.contains_key(&me) {
                continue;
            }
            let others: Vec<_> = map.nodes.values().filter(|record| record.id != me).collect();
            let pings = others.iter().map(|record| {
                let node = &node;
                async move {
                    (record.id, node.call_service(&record.raft_addr, SERVICE, Bytes::new(), PING_INTERVAL * 2).await)
                }
            });
            let now = Instant::now();
            for (id, answer) in futures_util::future::join_all(pings).await {
                match answer {
                    Ok(_) => {
                        last_heard.insert(id, Instant::now());
                    }
                    // First sight: the timeout counts from now.
                    Err(_) => {
                        last_heard.entry(id).or_insert(now);
                    }
                }
            }
            last_heard.retain(|id, _| map.nodes.contains_key(id));
            let suspects: BTreeSet<NodeId> =
                last_heard.iter().filter(|(_, heard)| heard.elapsed() > FAILURE_TIMEOUT).map(|(id, _)| *id).collect();
            let reports: Vec<MetaCommand> = others
                .iter()
                .filter_map(|record| {
                    let suspected = suspects.contains(&record.id);
                    let reported = map.failure_reports.get(&record.id).is_some_and(|reporters| reporters.contains(&me));
                    (suspected != reported).then_some(MetaCommand::Report {
                        reporter: me,
                        about: record.id,
                        reachable: !suspected,
                    })
                })
                .collect();
            self.suspects.set(suspects);
            let proposals = reports.into_iter().map(|report| async move {
                match tokio::time::timeout(PING_INTERVAL * 2, self.propose(&report)).await {
                    Ok(Ok(reply)) => tracing::info!(?report, ?reply, "reported a node's reachability"),
                    Ok(Err(error)) => tracing::debug!(%error, ?report, "reporting a node's reachability; will retry"),
                    Err(_) => tracing::debug!(?report, "reporting a node's reachability timed out; will retry"),
                }
            });
            futures_util::future::join_all(proposals).await;
        }
    }

    /// The nodes this node suspects now (see the module docs).
    pub fn suspects(&self) -> &Suspects {
        &self.suspects
    }
}
