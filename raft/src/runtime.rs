//! The consensus thread: one OS thread per node running a single-threaded
//! tokio runtime on which every Raft task of the node lives (openraft's
//! core, replication and state-machine tasks, the submit and read tasks,
//! the peer transport).
//!
//! Client connections run on the process's main runtime. Keeping consensus
//! on its own thread means a burst of client work never queues in front of
//! a heartbeat, a replication reply or an apply, and the hops between Raft
//! tasks are task switches on one thread rather than wake-ups of another
//! (measured: the 3-node SET benchmark gained about 10%, see
//! `docs/design.md`). The two sides talk only through channels, which work
//! across runtimes.
//!
//! Invariant: nothing on this thread blocks for long. Blocking work
//! (snapshot files) goes to the runtime's blocking pool; the one exception
//! is a follower's log sync (see `log_store`), bounded by one fsync.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long stopping waits for blocking tasks (snapshot IO) to finish.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A node's consensus thread and its runtime.
pub(crate) struct ConsensusRuntime {
    handle: Handle,
    stop: CancellationToken,
    /// Fires after the runtime is dropped, that is after every task on it
    /// ended; taken by the first [`ConsensusRuntime::stop`].
    stopped: Mutex<Option<oneshot::Receiver<()>>>,
}

impl ConsensusRuntime {
    /// Starts the thread, named `name`.
    pub(crate) fn start(name: String) -> std::io::Result<ConsensusRuntime> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let handle = runtime.handle().clone();
        let stop = CancellationToken::new();
        let (done, stopped) = oneshot::channel();
        let until = stop.clone();
        std::thread::Builder::new().name(name).spawn(move || {
            runtime.block_on(until.cancelled());
            runtime.shutdown_timeout(STOP_GRACE);
            let _ = done.send(());
        })?;
        Ok(ConsensusRuntime { handle, stop, stopped: Mutex::new(Some(stopped)) })
    }

    /// A handle to the runtime, for spawning onto it.
    pub(crate) fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Runs `task` on the consensus thread.
    pub(crate) fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(task)
    }

    /// Ends every task on the thread and waits until the thread is done.
    /// Must not be awaited on the consensus thread itself.
    pub(crate) async fn stop(&self) {
        self.stop.cancel();
        let stopped = self.stopped.lock().expect("stopped lock").take();
        if let Some(stopped) = stopped {
            let _ = stopped.await;
        }
    }
}

impl Drop for ConsensusRuntime {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
