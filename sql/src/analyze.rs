//! EXPLAIN ANALYZE: the rows each plan node produced and the time it
//! took (its children's included, as PostgreSQL counts it), measured
//! while the query runs.
//!
//! The executor reports each query and source it runs to [`measure`],
//! keyed by the node's address in the plan; outside [`profiled`] that is
//! one thread-local check per node and nothing is kept.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::value::Value;

/// What one node did: rows out, time spent, how many times it ran.
#[derive(Debug, Clone, Copy, Default)]
pub struct Measure {
    pub rows: usize,
    pub time: Duration,
    pub loops: usize,
}

/// The measures of one run, by node address.
#[derive(Debug, Default)]
pub struct Profile {
    nodes: HashMap<usize, Measure>,
}

impl Profile {
    /// The measure of `node`, if it ran.
    pub fn of<T>(&self, node: &T) -> Option<Measure> {
        self.nodes.get(&(node as *const T as usize)).copied()
    }
}

thread_local! {
    static PROFILE: RefCell<Option<Profile>> = const { RefCell::new(None) };
}

/// Runs `run` with every node it executes measured.
pub fn profiled<T>(run: impl FnOnce() -> T) -> (T, Profile) {
    let previous = PROFILE.with(|p| p.replace(Some(Profile::default())));
    let result = run();
    let profile = PROFILE.with(|p| p.replace(previous)).unwrap_or_default();
    (result, profile)
}

/// Runs `node`'s execution, measuring it when a profile is being taken.
pub fn measure<T>(node: &T, run: impl FnOnce() -> Result<Vec<Vec<Value>>>) -> Result<Vec<Vec<Value>>> {
    if PROFILE.with(|p| p.borrow().is_none()) {
        return run();
    }
    let started = Instant::now();
    let rows = run()?;
    let time = started.elapsed();
    PROFILE.with(|p| {
        if let Some(profile) = p.borrow_mut().as_mut() {
            let measure = profile.nodes.entry(node as *const T as usize).or_default();
            measure.rows += rows.len();
            measure.time += time;
            measure.loops += 1;
        }
    });
    Ok(rows)
}
