//! A bound on how long a test may hold the cluster
//! ([`crate::one_cluster_at_a_time`]). Every wait in the harness and its
//! clients is bounded, but a bug can hide one that is not; a test still
//! holding the cluster after the bound has hung. The watchdog then prints
//! the end of the log of every node the test binary runs, kills those
//! nodes and ends the test binary: CI fails at once, showing what the
//! nodes did, instead of at its own time limit showing nothing.
//!
//! `SESHAT_TEST_LIMIT_SECONDS` sets the bound: 600 by default, 0 for none
//! (`make chaos` and `make differential`, whose runs last as long as they
//! are asked to).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

/// The nodes this test binary runs: process id → log file.
static RUNNING: Mutex<BTreeMap<u32, PathBuf>> = Mutex::new(BTreeMap::new());

/// Records a node process that started.
pub(crate) fn started(pid: u32, log: PathBuf) {
    RUNNING.lock().expect("running nodes lock").insert(pid, log);
}

/// Forgets a node process, before it is reaped (so that the watchdog
/// never signals a process id the system may have given another process).
pub(crate) fn stopping(pid: u32) {
    RUNNING.lock().expect("running nodes lock").remove(&pid);
}

/// Ends the test binary if it is not dropped within the bound.
pub struct Watchdog {
    _disarm: mpsc::Sender<()>,
}

/// A watchdog for the calling test (named after its thread), or `None`
/// when `SESHAT_TEST_LIMIT_SECONDS` is 0.
pub fn arm() -> Option<Watchdog> {
    let seconds = std::env::var("SESHAT_TEST_LIMIT_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(600);
    if seconds == 0 {
        return None;
    }
    let limit = Duration::from_secs(seconds);
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    let (disarm, disarmed) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if disarmed.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
            end_the_binary(&test, limit);
        }
    });
    Some(Watchdog { _disarm: disarm })
}

/// Writes straight to the process's stderr: the test harness captures
/// what `eprintln!` prints, and would drop it at the exit.
fn end_the_binary(test: &str, limit: Duration) -> ! {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{test} held the cluster for more than {limit:?} (SESHAT_TEST_LIMIT_SECONDS): it hung");
    let running = RUNNING.lock().expect("running nodes lock");
    for (pid, log) in running.iter() {
        let log = std::fs::read_to_string(log).unwrap_or_default();
        let _ = writeln!(stderr, "--- the end of node process {pid}'s log ---\n{}", crate::log_tail(&log));
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    }
    let _ = writeln!(stderr, "{test}: its nodes are killed; ending the test binary");
    std::process::exit(1)
}
