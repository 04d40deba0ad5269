//! The runtime the commit pipeline runs on: every group's openraft core
//! and state-machine worker, its submit task and its snapshot trigger.
//!
//! A write's acknowledgement passes through these tasks one after another
//! (submit, append, the log sync's completion, commit, apply, reply).
//! On the process's main runtime each hop waited for a worker behind
//! the connections' statements. On a thread of its own, which mostly
//! waits, the kernel runs the pipeline soon after it is woken. Measured
//! on 2 cores with pgbench's TPC-B-like script (8 clients, one node):
//! from the submit task to the log append ~180 → ~40 µs, from the log
//! sync's completion to apply ~290 → ~190 µs, from apply's end to the
//! submit task ~220 → ~130 µs. (Throughput on that machine swung too
//! much between runs to credit this with a figure of its own.)
//!
//! One worker thread serves every group of the process; a long apply
//! (a bulk COPY's statement) runs through [`crate::run_blocking`], which
//! hands the worker's other tasks to another thread meanwhile.

use std::future::Future;
use std::sync::LazyLock;

use tokio::runtime::{Builder, Runtime};
use tokio::task::JoinHandle;

static PIPELINE: LazyLock<Runtime> = LazyLock::new(|| {
    Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("raft-pipeline")
        .enable_all()
        .build()
        .expect("the commit pipeline's runtime")
});

/// Runs `task` on the pipeline's runtime; openraft spawns the tasks of a
/// group on the runtime that creates it, so a group is created there too.
pub(crate) fn spawn<F>(task: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    PIPELINE.spawn(task)
}
