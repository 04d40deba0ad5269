//! Group commit across everything that writes to one RocksDB instance.
//!
//! Each instance has one syncer thread. A writer that needs its buffered
//! writes durable hands a completion to [`WalSyncer::after_sync`] and goes
//! on; the thread takes every completion queued since its last round,
//! fsyncs the WAL ONCE and runs them all. A synced WAL covers every write
//! made before the sync started, and a completion is queued only after its
//! writes returned, so each completion runs after a sync that covers them.
//!
//! One thread per instance, not per Raft group: a node hosts many groups
//! over one instance (every shard of a service, and with the shared layout
//! every service), and their appends land together, so one fsync serves
//! them all where a syncer per group would fsync once per group. Nothing
//! waits for the fsync on an async runtime's worker thread.

use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use rocksdb::DB;

use crate::error::{Error, Result};

/// What runs once the writes made before it was queued are durable (or
/// the sync failed). It runs on the syncer thread, so it must be quick
/// and must not own the last handle on its store: dropping that joins
/// the syncer thread, which cannot join itself.
pub type Completion = Box<dyn FnOnce(Result<()>) + Send>;

/// The syncer thread of one RocksDB instance.
pub(crate) struct WalSyncer {
    /// Taken on drop, which ends the thread; then it is joined, so that its
    /// handle on the instance is gone when the last store's is. (A sender
    /// is `Sync`: appends of every group send through it without a lock.)
    queue: Option<mpsc::Sender<Completion>>,
    thread: Option<JoinHandle<()>>,
}

impl WalSyncer {
    /// Starts the syncer thread of `db`, named after `name`.
    pub(crate) fn start(db: Arc<DB>, name: &str) -> WalSyncer {
        let (queue, completions) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("wal-sync-{name}"))
            .spawn(move || run(&db, &completions))
            .expect("spawn the WAL syncer thread");
        WalSyncer { queue: Some(queue), thread: Some(thread) }
    }

    /// Runs `done` after the next WAL sync, which covers every write that
    /// returned before this call.
    pub(crate) fn after_sync(&self, done: Completion) {
        let queue = self.queue.as_ref().expect("the queue is taken only on drop");
        // The thread ends early only if a completion panicked: then no
        // write can be confirmed durable any more.
        if let Err(mpsc::SendError(done)) = queue.send(done) {
            done(Err(Error::WalSync("the syncer thread stopped".into())));
        }
    }
}

impl Drop for WalSyncer {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Syncs the WAL once per round of queued completions and runs them.
fn run(db: &DB, completions: &mpsc::Receiver<Completion>) {
    while let Ok(first) = completions.recv() {
        let mut round = vec![first];
        round.extend(completions.try_iter());
        let synced = db.flush_wal(true).map_err(|error| error.to_string());
        if let Err(error) = &synced {
            tracing::error!(%error, "syncing the WAL failed");
        }
        for done in round {
            done(synced.clone().map_err(Error::WalSync));
        }
    }
}
