//! The registry of connected clients, for CLIENT LIST/INFO/KILL and INFO.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

/// What CLIENT LIST shows of a connection, updated as it runs.
#[derive(Debug, Clone)]
pub(crate) struct ClientState {
    pub name: Option<String>,
    pub db: u8,
    pub resp: i64,
    pub last_command: &'static str,
    pub last_active: Instant,
    pub lib_name: Option<String>,
    pub lib_ver: Option<String>,
    /// The number of commands queued by an open MULTI.
    pub multi: Option<usize>,
}

/// One connected client.
pub(crate) struct Client {
    pub id: u64,
    pub addr: SocketAddr,
    pub local_addr: SocketAddr,
    pub created: Instant,
    pub state: Mutex<ClientState>,
    /// Out-of-band replies for the connection (tracking invalidations),
    /// set once by its session.
    pushes: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<kv::Reply>>,
    killed: Notify,
    kill_requested: std::sync::atomic::AtomicBool,
}

impl Client {
    fn new(id: u64, addr: SocketAddr, local_addr: SocketAddr) -> Client {
        let now = Instant::now();
        Client {
            id,
            addr,
            local_addr,
            created: now,
            state: Mutex::new(ClientState {
                name: None,
                db: 0,
                resp: 2,
                last_command: "",
                last_active: now,
                lib_name: None,
                lib_ver: None,
                multi: None,
            }),
            pushes: std::sync::OnceLock::new(),
            killed: Notify::new(),
            kill_requested: false.into(),
        }
    }

    /// A client no connection has (the one a script's commands are
    /// parsed for); it is in no registry.
    pub fn detached() -> Arc<Client> {
        let nowhere = SocketAddr::from(([0, 0, 0, 0], 0));
        Arc::new(Client::new(0, nowhere, nowhere))
    }

    pub fn update(&self, change: impl FnOnce(&mut ClientState)) {
        change(&mut self.state.lock().expect("client state lock"));
    }

    pub fn snapshot(&self) -> ClientState {
        self.state.lock().expect("client state lock").clone()
    }

    /// Gives the connection where its out-of-band replies go.
    pub fn set_pushes(&self, pushes: tokio::sync::mpsc::UnboundedSender<kv::Reply>) {
        let _ = self.pushes.set(pushes);
    }

    /// Sends an out-of-band reply to the connection (dropped if it is gone).
    pub fn push(&self, reply: kv::Reply) {
        if let Some(pushes) = self.pushes.get() {
            let _ = pushes.send(reply);
        }
    }

    /// Asks the connection to close after its current command.
    fn kill(&self) {
        self.kill_requested.store(true, Ordering::Release);
        self.killed.notify_one();
    }

    /// Resolves once [`Client::kill`] was called.
    pub async fn killed(&self) {
        while !self.kill_requested.load(Ordering::Acquire) {
            self.killed.notified().await;
        }
    }

    /// The client's line in CLIENT LIST, in Redis's field order; `tracking`
    /// is its CLIENT TRACKING options, if it tracks.
    pub fn describe(&self, tracking: Option<crate::tracking::Options>) -> String {
        let state = self.snapshot();
        let now = Instant::now();
        let mut flags = String::new();
        if state.multi.is_some() {
            flags.push('x');
        }
        if let Some(tracking) = &tracking {
            flags.push('t');
            if tracking.broken_redirect {
                flags.push('R');
            }
            if tracking.bcast {
                flags.push('B');
            }
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let redirect = tracking.map_or(-1, |tracking| tracking.redirect as i64);
        format!(
            "id={} addr={} laddr={} fd=-1 name={} age={} idle={} flags={} db={} sub=0 psub=0 ssub=0 multi={} \
             qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r \
             cmd={} user=default redir={} resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.local_addr,
            state.name.as_deref().unwrap_or(""),
            now.duration_since(self.created).as_secs(),
            now.duration_since(state.last_active).as_secs(),
            flags,
            state.db,
            state.multi.map_or(-1, |queued| queued as i64),
            if state.last_command.is_empty() { "NULL" } else { state.last_command },
            redirect,
            state.resp,
            state.lib_name.as_deref().unwrap_or(""),
            state.lib_ver.as_deref().unwrap_or(""),
        )
    }
}

/// Every connected client by id.
#[derive(Default)]
pub(crate) struct Clients {
    next_id: AtomicU64,
    connected: Mutex<BTreeMap<u64, Arc<Client>>>,
}

impl Clients {
    /// Registers a new connection unless `max` clients are already connected.
    pub fn register(&self, addr: SocketAddr, local_addr: SocketAddr, max: usize) -> Option<Arc<Client>> {
        let mut connected = self.connected.lock().expect("clients lock");
        if connected.len() >= max {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let client = Arc::new(Client::new(id, addr, local_addr));
        connected.insert(id, client.clone());
        Some(client)
    }

    /// Closes `client`'s connection after its current command and removes it
    /// at once, as Redis does: it is gone from CLIENT LIST and the count.
    pub fn kill(&self, client: &Client) {
        client.kill();
        self.unregister(client.id);
    }

    pub fn unregister(&self, id: u64) {
        self.connected.lock().expect("clients lock").remove(&id);
    }

    /// The connected client `id`.
    pub fn get(&self, id: u64) -> Option<Arc<Client>> {
        self.connected.lock().expect("clients lock").get(&id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Client>> {
        self.connected.lock().expect("clients lock").values().cloned().collect()
    }

    pub fn count(&self) -> usize {
        self.connected.lock().expect("clients lock").len()
    }
}
