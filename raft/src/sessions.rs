//! Client sessions: each proposed request applies exactly once (Raft thesis
//! §6.3), however often it is forwarded or retried.
//!
//! Every [`Request`] carries its client session, a serial number and
//! `acked_below`: the client promises never to retry a serial below it. A
//! session keeps the responses of applied serials at or above that mark, so
//! a retry that reaches the log again gets the first response back instead
//! of applying twice; an entry whose serial is below the mark is a stale
//! duplicate and is skipped.
//!
//! Sessions are part of the replicated state: they change only through
//! applied entries (deterministically), are written in the same batch as the
//! state they describe and travel in snapshots. At most [`MAX_SESSIONS`] are
//! kept; the least recently active is evicted first. A session is one
//! running node process, so eviction needs thousands of restarts within the
//! life of one request.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use storage::keyspace::raft_state;
use storage::{Batch, Reader};

use crate::stored::StateKeys;
use crate::types::Request;

/// The most client sessions kept.
pub const MAX_SESSIONS: usize = 4096;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Session {
    acked_below: u64,
    /// The log index of the session's last entry, for eviction.
    last_active: u64,
    responses: BTreeMap<u64, Bytes>,
}

/// What to do with an entry.
#[derive(Debug, PartialEq)]
pub(crate) enum Verdict {
    /// First time this serial reaches the state machine.
    Execute,
    /// Applied before (possibly earlier in the same batch): answer with the
    /// stored response once the batch is applied.
    Duplicate,
}

/// Every session, cached in memory; changes are written with each batch.
#[derive(Default)]
pub(crate) struct Sessions {
    sessions: HashMap<u64, Session>,
    dirty: BTreeSet<u64>,
    evicted: BTreeSet<u64>,
}

impl Sessions {
    /// Loads the group's sessions.
    pub(crate) fn load(reader: &impl Reader, keys: StateKeys) -> Result<Sessions, String> {
        let mut sessions = HashMap::new();
        let prefix = raft_state::session_prefix(keys.shard);
        let end = raft_state::session_end(keys.shard);
        for item in reader.scan(keys.family, &prefix, Some(&end)) {
            let (key, value) = item.map_err(|e| e.to_string())?;
            let client_bytes = &key[prefix.len()..];
            let client = u64::from_be_bytes(client_bytes.try_into().map_err(|_| "malformed session key".to_string())?);
            let session: Session = postcard::from_bytes(&value).map_err(|e| format!("session {client}: {e}"))?;
            sessions.insert(client, session);
        }
        Ok(Sessions { sessions, ..Sessions::default() })
    }

    /// Decides whether the entry at `index` carrying `request` executes.
    pub(crate) fn check(&mut self, request: &Request, index: u64) -> Verdict {
        let session = self.sessions.entry(request.client).or_default();
        session.last_active = index;
        if request.acked_below > session.acked_below {
            session.acked_below = request.acked_below;
            session.responses = session.responses.split_off(&request.acked_below);
        }
        self.dirty.insert(request.client);
        self.evicted.remove(&request.client);
        if request.serial < session.acked_below || session.responses.contains_key(&request.serial) {
            return Verdict::Duplicate;
        }
        // Reserve the serial so that a duplicate later in the same batch is
        // recognised; `record` fills in the response.
        session.responses.insert(request.serial, Bytes::new());
        Verdict::Execute
    }

    /// Records the response of an executed serial.
    pub(crate) fn record(&mut self, client: u64, serial: u64, response: Bytes) {
        if let Some(session) = self.sessions.get_mut(&client).filter(|s| serial >= s.acked_below) {
            session.responses.insert(serial, response);
        }
    }

    /// The stored response of `serial`, or empty if it was answered long ago
    /// (nobody waits for it any more).
    pub(crate) fn response(&self, client: u64, serial: u64) -> Bytes {
        self.sessions.get(&client).and_then(|s| s.responses.get(&serial)).cloned().unwrap_or_default()
    }

    /// Evicts sessions beyond [`MAX_SESSIONS`] and adds every change since the
    /// last flush to `batch`.
    pub(crate) fn flush(&mut self, batch: &mut Batch, keys: StateKeys) {
        while self.sessions.len() > MAX_SESSIONS {
            let oldest = self
                .sessions
                .iter()
                .min_by_key(|(client, session)| (session.last_active, **client))
                .map(|(client, _)| *client)
                .expect("more than MAX_SESSIONS sessions");
            self.sessions.remove(&oldest);
            self.dirty.remove(&oldest);
            self.evicted.insert(oldest);
        }
        for client in std::mem::take(&mut self.dirty) {
            let session = &self.sessions[&client];
            let session = postcard::to_stdvec(session).expect("sessions serialize");
            batch.put(keys.family, raft_state::session(keys.shard, client), session);
        }
        for client in std::mem::take(&mut self.evicted) {
            batch.delete(keys.family, raft_state::session(keys.shard, client));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(client: u64, serial: u64, acked_below: u64) -> Request {
        Request { client, serial, acked_below, stamp_ms: 0, payload: Bytes::new() }
    }

    #[test]
    fn a_retried_serial_is_answered_from_the_session() {
        let mut sessions = Sessions::default();
        assert_eq!(sessions.check(&request(1, 0, 0), 1), Verdict::Execute);
        sessions.record(1, 0, Bytes::from_static(b"first"));
        assert_eq!(sessions.check(&request(1, 0, 0), 2), Verdict::Duplicate);
        assert_eq!(sessions.response(1, 0), Bytes::from_static(b"first"));
        // Another client's serial 0 is a different request.
        assert_eq!(sessions.check(&request(2, 0, 0), 3), Verdict::Execute);
    }

    #[test]
    fn serials_below_the_ack_mark_are_stale_and_forgotten() {
        let mut sessions = Sessions::default();
        for serial in 0..3 {
            assert_eq!(sessions.check(&request(1, serial, 0), serial + 1), Verdict::Execute);
            sessions.record(1, serial, Bytes::from(vec![serial as u8]));
        }
        // Out of order: serial 4 applies before serial 3 is retried.
        assert_eq!(sessions.check(&request(1, 4, 3), 10), Verdict::Execute);
        assert_eq!(sessions.check(&request(1, 3, 3), 11), Verdict::Execute);
        assert_eq!(sessions.check(&request(1, 1, 0), 12), Verdict::Duplicate, "below the mark");
        assert_eq!(sessions.response(1, 1), Bytes::new(), "forgotten");
    }

    #[test]
    fn a_duplicate_in_the_same_batch_is_recognised() {
        let mut sessions = Sessions::default();
        assert_eq!(sessions.check(&request(7, 5, 5), 1), Verdict::Execute);
        assert_eq!(sessions.check(&request(7, 5, 5), 2), Verdict::Duplicate);
        sessions.record(7, 5, Bytes::from_static(b"r"));
        assert_eq!(sessions.response(7, 5), Bytes::from_static(b"r"));
    }

    #[test]
    fn the_least_recently_active_session_is_evicted() {
        let mut sessions = Sessions::default();
        for client in 0..=MAX_SESSIONS as u64 {
            sessions.check(&request(client, 0, 0), client + 100);
        }
        let mut batch = Batch::new();
        sessions.flush(&mut batch, StateKeys { family: storage::Family::KvMeta, shard: 0 });
        assert_eq!(sessions.sessions.len(), MAX_SESSIONS);
        assert!(!sessions.sessions.contains_key(&0));
    }
}
