//! Per-connection state: the selected database, the protocol version,
//! authentication, the open MULTI, the watched keys and the pub/sub
//! subscriptions.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use kv::{QueuedCommand, Reply, Shard, WatchedKey};
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
    /// Where the keys of the request being dispatched live (`None`: it
    /// has none), set by `commands::dispatch`.
    pub route: Option<Route>,
    /// Where the keys under WATCH live, if any are watched.
    pub watched_route: Option<Route>,
    /// The keys under WATCH. WATCH's reads add to it when they complete,
    /// which is before any later EXEC is dispatched (EXEC waits for the
    /// connection's earlier reads, as every proposing command does).
    pub watched: Arc<Mutex<Vec<WatchedKey>>>,
    /// Pub/sub: the channels and patterns subscribed to, and where their
    /// messages arrive (created by the first SUBSCRIBE).
    pub channels: BTreeSet<Bytes>,
    pub patterns: BTreeSet<Bytes>,
    pub inbox: Option<(Inbox, mpsc::UnboundedReceiver<Reply>)>,
    /// CLIENT REPLY.
    pub reply_mode: ReplyMode,
    /// Set by MONITOR: the lines of every command the node's clients send.
    pub monitor: Option<tokio::sync::broadcast::Receiver<std::sync::Arc<str>>>,
    /// Set by CLIENT REPLY OFF and SKIP: their own reply is not sent.
    pub silence_this: bool,
    /// Tracking invalidations and other replies sent to this connection
    /// by others (`Client::push`).
    pub pushes: mpsc::UnboundedReceiver<Reply>,
    /// CLIENT TRACKING is on (the table is `Server::tracking`).
    pub tracking: bool,
}

/// CLIENT REPLY: whether replies (and pub/sub messages) are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplyMode {
    On,
    Off,
    /// The next command's reply is not sent.
    SkipNext,
}

/// An open MULTI.
pub(crate) struct Transaction {
    pub commands: Vec<QueuedCommand>,
    /// A command was refused while queueing: EXEC answers EXECABORT.
    pub failed: bool,
    /// The database when MULTI began, restored if the transaction is
    /// dropped (a queued SELECT takes effect at once).
    pub db_at_multi: u8,
    /// Where the queued commands' keys live, if any has keys.
    pub route: Option<Route>,
}

/// Where a request's keys live: their shard and, when the request was
/// routed with several shards or under the Redis Cluster protocol, the
/// hash slot of its first key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub shard: Shard,
    pub slot: Option<u16>,
}

impl Route {
    /// Whether keys at `other` may join a transaction at `self`: the same
    /// shard, and (`per_slot`, the cluster protocol) the same slot.
    pub(crate) fn admits(self, other: Route, per_slot: bool) -> bool {
        self.shard == other.shard && (!per_slot || self.slot == other.slot)
    }
}

impl Session {
    pub fn new(server: Arc<Server>, client: Arc<Client>, shutdown: Shutdown) -> Self {
        let authenticated = !server.requires_auth();
        let (pushes, push_receiver) = mpsc::unbounded_channel();
        client.set_pushes(pushes);
        Session {
            pushes: push_receiver,
            tracking: false,
            server,
            shutdown,
            client,
            db: 0,
            protocol: Protocol::Resp2,
            authenticated,
            closing: false,
            stale_reads: false,
            transaction: None,
            route: None,
            watched_route: None,
            watched: Arc::default(),
            channels: BTreeSet::new(),
            patterns: BTreeSet::new(),
            inbox: None,
            reply_mode: ReplyMode::On,
            monitor: None,
            silence_this: false,
        }
    }

    /// How many channels and patterns the connection is subscribed to.
    /// Whether the reply of the command just dispatched is withheld
    /// (CLIENT REPLY OFF, or SKIP for the command after it).
    pub fn reply_silenced(&mut self) -> bool {
        if std::mem::take(&mut self.silence_this) {
            return true;
        }
        match self.reply_mode {
            ReplyMode::On => false,
            ReplyMode::Off => true,
            ReplyMode::SkipNext => {
                self.reply_mode = ReplyMode::On;
                true
            }
        }
    }

    pub fn subscriptions(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// The next out-of-band reply for this connection: a pub/sub message, a
    /// tracking invalidation or a MONITOR line; never resolves when it has
    /// none.
    pub async fn next_push(&mut self) -> Reply {
        let pushes = async {
            match self.pushes.recv().await {
                Some(push) => push,
                None => std::future::pending().await,
            }
        };
        let inbox = async {
            match &mut self.inbox {
                Some((_, receiver)) => match receiver.recv().await {
                    Some(push) => push,
                    None => std::future::pending().await,
                },
                None => std::future::pending().await,
            }
        };
        let monitor = async {
            let Some(lines) = self.monitor.as_mut() else { return std::future::pending().await };
            let line = match lines.recv().await {
                Ok(line) => line.to_string(),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(skipped)) => {
                    format!("(monitor fell behind: {skipped} commands not shown)")
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => std::future::pending().await,
            };
            Reply::Status(line.into())
        };
        tokio::select! {
            push = inbox => push,
            push = pushes => push,
            line = monitor => line,
        }
    }

    /// The shard of the request being dispatched (`None`: it has no keys).
    pub(crate) fn shard(&self) -> Option<Shard> {
        self.route.map(|route| route.shard)
    }

    /// Forgets every watched key (EXEC, DISCARD, UNWATCH, RESET).
    pub fn unwatch(&mut self) {
        self.watched.lock().expect("watched keys lock").clear();
        self.watched_route = None;
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
