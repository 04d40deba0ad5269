//! The blocking pops' shared parts: the timeout argument, and handing the
//! pop to `kv`, which blocks the client (or not, inside MULTI).

use std::time::Duration;

use bytes::Bytes;
use kv::{BlockingPop, CommandError, TxnStep};

use super::{read, service_error, write, Outcome};
use crate::session::Session;

/// A blocking command's timeout in seconds (0: forever).
pub(super) fn timeout(text: &[u8]) -> Result<Option<Duration>, CommandError> {
    let seconds = kv::number::parse_f64(text)
        .filter(|s| s.is_finite())
        .ok_or_else(|| CommandError::Other("ERR timeout is not a float or out of range".into()))?;
    if seconds < 0.0 {
        return Err(CommandError::Other("ERR timeout is negative".into()));
    }
    Ok((seconds > 0.0).then(|| Duration::from_secs_f64(seconds)))
}

/// Pops per `pop` from the first of `keys` with data, blocking until
/// `timeout` if none has any. Inside MULTI it never blocks.
pub(super) fn blocking(
    session: &mut Session,
    keys: Vec<Bytes>,
    pop: BlockingPop,
    timeout: Option<Duration>,
) -> Result<Outcome, CommandError> {
    if session.transaction.is_some() {
        return match pop.immediate(keys) {
            TxnStep::Write(op) => write(session, op),
            TxnStep::Read(op) => read(session, op),
            TxnStep::Reply(reply) => Ok(Outcome::Reply(reply)),
        };
    }
    let (kv, shard, db, client, shutdown) = (
        session.server.kv.clone(),
        session.shard().unwrap_or(0),
        session.db,
        session.client.clone(),
        session.shutdown.clone(),
    );
    Ok(Outcome::Operator(Box::pin(async move {
        let gone = async {
            tokio::select! {
                _ = client.killed() => {}
                _ = shutdown.cancelled() => {}
            }
        };
        kv.block(shard, db, keys, pop, timeout, gone).await.unwrap_or_else(service_error)
    })))
}
