//! Which thread runs a script at apply. Scheduling only: where a script
//! runs never changes what it computes.
//!
//! A script runs on the commit pipeline's one worker, which every group
//! of the node shares. A long script there would hold up every group's
//! heartbeats and applies, so by default it runs through
//! [`raft::run_blocking`], which first hands the worker's other tasks to
//! another thread. That hand-off costs a thread wake-up per script, more
//! than a short script itself costs. So code this node last saw finish
//! within [`QUICK`] runs in place, and everything else (new code, code
//! that was slow) is handed off.
//!
//! The price: code that ran quickly and now runs long (its input grew)
//! holds the worker for that one run, at most its instruction budget;
//! the next run of it is handed off again.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::Sha;

/// A run this short is cheaper in place than a hand-off.
const QUICK: Duration = Duration::from_millis(2);

/// How many codes the memo keeps before it starts again (a client that
/// makes up a new script per call would otherwise grow it forever).
const CAPACITY: usize = 4096;

/// What an entry runs, as the memo knows it.
#[derive(PartialEq, Eq, Hash)]
pub(crate) enum Code {
    Script(Sha),
    Function(String),
}

/// The codes this node last saw finish quickly.
#[derive(Default)]
pub(crate) struct Pace {
    quick: HashSet<Code>,
}

impl Pace {
    /// Runs `work` (a run of `code`) in place if `code` was quick last
    /// time, else off the worker; then remembers how long it took.
    pub(crate) fn run<T>(&mut self, code: Code, work: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let result = match self.quick.contains(&code) {
            true => work(),
            false => raft::run_blocking(work),
        };
        if started.elapsed() < QUICK {
            if self.quick.len() >= CAPACITY {
                self.quick.clear();
            }
            self.quick.insert(code);
        } else {
            self.quick.remove(&code);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_that_finished_quickly_runs_in_place_next_time_until_it_is_slow() {
        let mut pace = Pace::default();
        let code = || Code::Function("f".into());
        assert_eq!(pace.run(code(), || 7), 7);
        assert!(pace.quick.contains(&code()), "a quick run is remembered");
        pace.run(code(), || std::thread::sleep(QUICK * 2));
        assert!(!pace.quick.contains(&code()), "a slow run is forgotten");
        for n in 0..CAPACITY + 1 {
            pace.run(Code::Function(n.to_string()), || ());
        }
        assert!(pace.quick.len() <= CAPACITY);
    }
}
