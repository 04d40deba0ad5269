//! Per-connection state: the selected database, the protocol version,
//! authentication, the open MULTI, the watched keys and the pub/sub
//! subscriptions.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use kv::{QueuedCommand, Reply, WatchedKey};
use raft::Shutdown;
use tokio::sync::mpsc;

use crate::clients::Client;
use crate::encode::Protocol;
use crate::pubsub::Inbox;
use crate::server::Server;

pub(crate) struct Session {
    pub server: Arc<Server>,
    /// Cancelled when the frontend shuts down (ends blocking commands).
    pub shutdown: Shutdown,
    pub client: Arc<Client>,
    pub db: u8,
    pub protocol: Protocol,
    pub authenticated: bool,
    /// Set by QUIT: close once the replies so far are written.
    pub closing: bool,
    /// Set by READONLY: reads skip the read index and see this node's
    /// replica as it is (possibly behind the leader).
    pub stale_reads: bool,
    /// Set by MULTI until EXEC or DISCARD.
    pub transaction: Option<Transaction>,
    /// The keys under WATCH. WATCH's reads add to it when they complete,
    /// which is before any later EXEC is dispatched (EXEC waits for the
    /// connection's earlier reads, as every proposing command does).
    pub watched: Arc<Mutex<Vec<WatchedKey>>>,
    /// Pub/sub: the channels and patterns subscribed to, and where their
    /// messages arrive (created by the first SUBSCRIBE).
    pub channels: BTreeSet<Bytes>,
    pub patterns: BTreeSet<Bytes>,
    pub inbox: Option<(Inbox, mpsc::UnboundedReceiver<Reply>)>,
}

/// An open MULTI.
pub(crate) struct Transaction {
    pub commands: Vec<QueuedCommand>,
    /// A command was refused while queueing: EXEC answers EXECABORT.
    pub failed: bool,
    /// The database when MULTI began, restored if the transaction is
    /// dropped (a queued SELECT takes effect at once).
    pub db_at_multi: u8,
}

impl Session {
    pub fn new(server: Arc<Server>, client: Arc<Client>, shutdown: Shutdown) -> Self {
        let authenticated = !server.requires_auth();
        Session {
            server,
            shutdown,
            client,
            db: 0,
            protocol: Protocol::Resp2,
            authenticated,
            closing: false,
            stale_reads: false,
            transaction: None,
            watched: Arc::default(),
            channels: BTreeSet::new(),
            patterns: BTreeSet::new(),
            inbox: None,
        }
    }

    /// How many channels and patterns the connection is subscribed to.
    pub fn subscriptions(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// The next pub/sub message for this connection; never resolves when
    /// it has no inbox.
    pub async fn next_push(&mut self) -> Reply {
        match &mut self.inbox {
            Some((_, receiver)) => match receiver.recv().await {
                Some(push) => push,
                None => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    }

    /// Forgets every watched key (EXEC, DISCARD, UNWATCH, RESET).
    pub fn unwatch(&self) {
        self.watched.lock().expect("watched keys lock").clear();
    }

    /// Ends an open MULTI without running it; returns whether one was open.
    pub fn discard(&mut self) -> bool {
        let Some(transaction) = self.transaction.take() else {
            return false;
        };
        self.select(transaction.db_at_multi);
        self.client.update(|state| state.multi = None);
        true
    }

    pub fn select(&mut self, db: u8) {
        self.db = db;
        self.client.update(|state| state.db = db);
    }

    pub fn set_protocol(&mut self, protocol: Protocol) {
        self.protocol = protocol;
        self.client.update(|state| state.resp = protocol.version());
    }
}
