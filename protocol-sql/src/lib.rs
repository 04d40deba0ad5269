//! The PostgreSQL frontend: the v3 wire protocol (pgwire) over the `sql`
//! service, so that `psql` and drivers connect unchanged.
//!
//! It holds no database logic: startup and authentication ([`startup`]),
//! then each simple-query string goes to [`sql::Sql::execute`] and its
//! outcomes become RowDescription/DataRow/CommandComplete or an
//! ErrorResponse with the statement's SQLSTATE ([`query`]). The session
//! stays usable after an error.
//!
//! Prepared statements go through the extended protocol ([`extended`]):
//! parameters and rows in text or binary ([`format`]).
//!
//! COPY FROM STDIN and COPY TO STDOUT in text and CSV ([`copy`]).
//!
//! Cancel requests stop the running statement ([`cancel`]).
//!
//! Not yet: TLS (an SSLRequest is answered `N`), COPY's binary format.

mod cancel;
mod copy;
mod deallocate;
mod extended;
mod format;
mod query;
mod startup;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use pgwire::api::PgWireServerHandlers;
use raft::{Frontend, Shutdown};
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio::task::JoinSet;

use crate::cancel::{Cancels, Registration};
use crate::extended::ExtendedHandler;
use crate::query::QueryHandler;
use crate::startup::Startup;

/// How long a connection may finish what it is doing once the node
/// stops.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// The PostgreSQL frontend's settings.
#[derive(Debug, Clone, Default)]
pub struct PgConfig {
    /// With a password, clients authenticate with SCRAM-SHA-256 (any
    /// user name); without, every client is trusted.
    pub password: Option<String>,
}

/// The PostgreSQL frontend.
pub struct PgFrontend {
    sql: sql::Sql,
    startup: Arc<Startup>,
    cancels: Arc<Cancels>,
}

/// One connection's handlers, around its session.
struct Handlers {
    query: Arc<QueryHandler>,
    extended: Arc<ExtendedHandler>,
    copy: Arc<copy::CopyIn>,
    startup: Arc<Startup>,
    cancels: Arc<Cancels>,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl pgwire::api::query::SimpleQueryHandler> {
        self.query.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl pgwire::api::query::ExtendedQueryHandler> {
        self.extended.clone()
    }

    fn copy_handler(&self) -> Arc<impl pgwire::api::copy::CopyHandler> {
        self.copy.clone()
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        self.startup.clone()
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        self.cancels.clone()
    }
}

impl PgFrontend {
    pub fn new(sql: sql::Sql, config: PgConfig) -> Self {
        PgFrontend { sql, startup: Arc::new(Startup::new(config.password)), cancels: Arc::default() }
    }

    fn handlers(&self) -> Handlers {
        let session = self.sql.session();
        let registration = Arc::new(Registration::new(self.cancels.clone(), session.canceller()));
        let session = Arc::new(Mutex::new(session));
        let names = Arc::new(deallocate::Names::default());
        Handlers {
            query: Arc::new(QueryHandler::new(session.clone(), registration.clone(), names.clone())),
            extended: Arc::new(ExtendedHandler::new(session.clone(), registration, names)),
            copy: Arc::new(copy::CopyIn::new(session)),
            startup: self.startup.clone(),
            cancels: self.cancels.clone(),
        }
    }
}

#[async_trait::async_trait]
impl Frontend for PgFrontend {
    fn name(&self) -> &'static str {
        "pg"
    }

    async fn serve(&self, listener: TcpListener, shutdown: Shutdown) -> io::Result<()> {
        tracing::info!(addr = %listener.local_addr()?, "PostgreSQL frontend listening");
        let mut connections = JoinSet::new();
        loop {
            let (socket, addr) = tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
                accepted = raft::accept(&listener) => accepted,
            };
            let _ = socket.set_nodelay(true);
            let handlers = self.handlers();
            let shutdown = shutdown.clone();
            connections.spawn(async move {
                let drained = async {
                    shutdown.cancelled().await;
                    tokio::time::sleep(DRAIN_TIMEOUT).await;
                };
                tokio::select! {
                    served = pgwire::tokio::process_socket(socket, None, handlers) => {
                        if let Err(error) = served {
                            tracing::debug!(%addr, %error, "PostgreSQL connection ended with an error");
                        }
                    }
                    _ = drained => {}
                }
            });
        }
        while connections.join_next().await.is_some() {}
        Ok(())
    }
}
