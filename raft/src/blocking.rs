//! Long synchronous work on a runtime worker without holding up the
//! runtime: Raft's heartbeats, other groups and other clients go on.

/// Runs `work` (a long query, a statement executed at apply, a large
/// batch write) so that on a multi-threaded runtime the worker hands its
/// other tasks to another thread while it runs; elsewhere, in place.
pub fn run_blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}
