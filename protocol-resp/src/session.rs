//! Per-connection state: the selected database, the protocol version,
//! authentication.

use std::sync::Arc;

use crate::clients::Client;
use crate::encode::Protocol;
use crate::server::Server;

pub(crate) struct Session {
    pub server: Arc<Server>,
    pub client: Arc<Client>,
    pub db: u8,
    pub protocol: Protocol,
    pub authenticated: bool,
    /// Set by QUIT: close once the replies so far are written.
    pub closing: bool,
    /// Set by READONLY: reads skip the read index and see this node's
    /// replica as it is (possibly behind the leader).
    pub stale_reads: bool,
}

impl Session {
    pub fn new(server: Arc<Server>, client: Arc<Client>) -> Self {
        let authenticated = !server.requires_auth();
        Session { server, client, db: 0, protocol: Protocol::Resp2, authenticated, closing: false, stale_reads: false }
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
