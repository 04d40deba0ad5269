//! Cancel requests: a client opens a second connection and sends the
//! process id and secret key its first connection was given
//! (BackendKeyData); the statement that connection's session is running
//! stops with 57014 ([`sql::Canceller`] says what can be stopped).
//!
//! A connection registers its session's canceller under its key when it
//! first runs a statement (the key is set during authentication), and
//! unregisters when it closes. A request with an unknown key does
//! nothing, as in PostgreSQL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::ClientInfo;
use pgwire::messages::cancel::CancelRequest;
use sql::Canceller;

type Key = (i32, Vec<u8>);

/// The sessions of the node's connections, by their cancel key.
#[derive(Default)]
pub struct Cancels {
    sessions: Mutex<HashMap<Key, Canceller>>,
}

#[async_trait]
impl CancelHandler for Cancels {
    async fn on_cancel_request(&self, request: CancelRequest) {
        let key = (request.pid, request.secret_key.to_bytes().to_vec());
        let canceller = self.sessions.lock().expect("cancel registry").get(&key).cloned();
        if let Some(canceller) = canceller {
            canceller.cancel();
        }
    }
}

/// One connection's place in [`Cancels`].
pub struct Registration {
    cancels: Arc<Cancels>,
    canceller: Canceller,
    key: OnceLock<Key>,
}

impl Registration {
    pub fn new(cancels: Arc<Cancels>, canceller: Canceller) -> Registration {
        Registration { cancels, canceller, key: OnceLock::new() }
    }

    /// Registers the connection under the key `client` was given, once.
    pub fn register(&self, client: &impl ClientInfo) {
        self.key.get_or_init(|| {
            let (pid, secret) = client.pid_and_secret_key();
            let key = (pid, secret.to_bytes().to_vec());
            self.cancels.sessions.lock().expect("cancel registry").insert(key.clone(), self.canceller.clone());
            key
        });
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(key) = self.key.get() {
            self.cancels.sessions.lock().expect("cancel registry").remove(key);
        }
    }
}
