//! Cancel requests: a client's other connection asks to stop the
//! statement its session is running (PostgreSQL's CancelRequest).
//!
//! A session has one flag ([`Canceller`]); the frontend sets it, and the
//! executor checks it as it reads rows and joins them ([`check`]): a
//! cancelled statement ends with 57014 (`query_canceled`) and writes
//! nothing. The flag is cleared when the next statement starts, so a
//! cancel that arrives between statements is dropped, as PostgreSQL does.
//!
//! `statement_timeout` uses the same flag: a timer set when a statement
//! starts ([`Session`](crate::Session)) stops it the same way.
//!
//! What can be cancelled is what runs in the session: queries, and
//! statements inside a transaction block. A write proposed to the log
//! (autocommit, or COMMIT) runs to its end: once proposed it may apply,
//! and answering 57014 then would lie.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use crate::error::{code, SqlError};

/// Sets a session's cancel flag from anywhere.
#[derive(Debug, Clone, Default)]
pub struct Canceller(Arc<AtomicU8>);

const RUNNING_ON: u8 = 0;
const CANCELLED: u8 = 1;
const TIMED_OUT: u8 = 2;

impl Canceller {
    /// Asks the session's running statement to stop.
    pub fn cancel(&self) {
        self.0.store(CANCELLED, Ordering::Relaxed);
    }

    /// Stops the running statement: its `statement_timeout` passed.
    pub(crate) fn time_out(&self) {
        self.0.store(TIMED_OUT, Ordering::Relaxed);
    }

    /// Forgets an earlier request: a new statement starts.
    pub(crate) fn reset(&self) {
        self.0.store(RUNNING_ON, Ordering::Relaxed);
    }
}

thread_local! {
    static RUNNING: RefCell<Option<Canceller>> = const { RefCell::new(None) };
}

/// While alive, the statement running on this thread stops when
/// `canceller` is used.
pub(crate) struct Cancellable {
    previous: Option<Canceller>,
}

impl Cancellable {
    pub(crate) fn enter(canceller: &Canceller) -> Cancellable {
        Cancellable { previous: RUNNING.with(|r| r.replace(Some(canceller.clone()))) }
    }
}

impl Drop for Cancellable {
    fn drop(&mut self) {
        RUNNING.with(|r| *r.borrow_mut() = self.previous.take());
    }
}

/// 57014 if the running statement was cancelled or timed out.
pub fn check() -> Result<(), SqlError> {
    let state = RUNNING.with(|r| r.borrow().as_ref().map_or(RUNNING_ON, |c| c.0.load(Ordering::Relaxed)));
    match state {
        CANCELLED => Err(SqlError::new(code::QUERY_CANCELED, "canceling statement due to user request")),
        TIMED_OUT => Err(SqlError::new(code::QUERY_CANCELED, "canceling statement due to statement timeout")),
        _ => Ok(()),
    }
}
