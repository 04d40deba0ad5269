//! Simple queries: a string of statements to the connection's session,
//! its outcomes to PostgreSQL's messages (shared with the extended
//! protocol), and ReadyForQuery with the session's transaction status.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::{stream, Sink, SinkExt};
use pgwire::api::copy::{send_copy_in_response, send_copy_out_response};
use pgwire::api::portal::Format;
use pgwire::api::query::{send_execution_response, send_query_response, send_ready_for_query, SimpleQueryHandler};
use pgwire::api::results::{QueryResponse, Response, Tag};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireConnectionState};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::response::{EmptyQueryResponse, TransactionStatus};
use pgwire::messages::simplequery::Query;
use pgwire::messages::PgWireBackendMessage;
use sql::{Outcome, Rows, Status};
use tokio::sync::Mutex;

use crate::cancel::Registration;
use crate::deallocate::{self, Names};
use crate::format;

/// A connection's session, shared by its simple and extended handlers.
pub type SharedSession = Arc<Mutex<sql::Session>>;

pub struct QueryHandler {
    session: SharedSession,
    registration: Arc<Registration>,
    names: Arc<Names>,
}

impl QueryHandler {
    pub fn new(session: SharedSession, registration: Arc<Registration>, names: Arc<Names>) -> Self {
        QueryHandler { session, registration, names }
    }
}

#[async_trait]
impl SimpleQueryHandler for QueryHandler {
    /// pgwire's own loop, except that ReadyForQuery reports the session's
    /// transaction status (a failed COMMIT ends the transaction; ROLLBACK
    /// TO SAVEPOINT leaves the failed state).
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        self.registration.register(client);
        let responses = match deallocate::parse(&query.query) {
            Some(target) => vec![match self.names.deallocate(client.portal_store(), &target) {
                Ok(tag) => Response::Execution(Tag::new(tag)),
                Err(error) => Response::Error(error),
            }],
            None => self.do_query(client, &query.query).await?,
        };
        if responses.is_empty() {
            client.feed(PgWireBackendMessage::EmptyQueryResponse(EmptyQueryResponse::new())).await?;
        }
        for response in responses {
            match response {
                Response::Query(rows) => send_query_response(client, rows, true).await?,
                Response::Execution(tag) => send_execution_response(client, tag).await?,
                Response::Error(error) => client.feed(PgWireBackendMessage::ErrorResponse((*error).into())).await?,
                Response::CopyOut(copy) => send_copy_out_response(client, copy).await?,
                // COPY FROM STDIN is its string's only statement: the copy
                // handler ends it, with ReadyForQuery.
                Response::CopyIn(copy) => {
                    send_copy_in_response(client, copy).await?;
                    client.set_state(PgWireConnectionState::CopyInProgress(false));
                    return Ok(());
                }
                _ => unreachable!("a session answers rows, tags, COPY and errors"),
            }
        }
        let status = transaction_status(self.session.lock().await.status());
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.set_transaction_status(status);
        send_ready_for_query(client, status).await
    }

    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut session = self.session.lock().await;
        identify(&mut session, client);
        let results = session.execute(query).await;
        Ok(results.into_iter().map(|result| response(result, None)).collect())
    }
}

/// The session's status as ReadyForQuery reports it.
pub fn transaction_status(status: Status) -> TransactionStatus {
    match status {
        Status::Idle => TransactionStatus::Idle,
        Status::InTransaction => TransactionStatus::Transaction,
        Status::Failed => TransactionStatus::Error,
    }
}

/// A statement's result as PostgreSQL's messages; rows in `formats`
/// (all text when `None`).
pub fn response(result: sql::Result<Outcome>, formats: Option<&Format>) -> Response {
    match result {
        Ok(Outcome::Rows(rows)) => Response::Query(rows_response(rows, formats)),
        Ok(Outcome::Command { command, rows }) => Response::Execution(command_tag(&command, rows)),
        Ok(Outcome::CopyIn { columns }) => crate::copy::copy_in(columns),
        Ok(Outcome::CopyOut(out)) => crate::copy::copy_out(out),
        Err(error) => Response::Error(Box::new(error_info(error))),
    }
}

fn command_tag(command: &str, rows: Option<u64>) -> Tag {
    match rows {
        Some(n) => Tag::new(command).with_rows(n as usize),
        None => Tag::new(command),
    }
}

fn rows_response(rows: Rows, formats: Option<&Format>) -> QueryResponse {
    let types: Vec<sql::DataType> = rows.columns.iter().map(|c| c.data_type).collect();
    let fields = format::fields(&rows.columns, formats);
    let data: Vec<_> = rows.rows.iter().map(|row| Ok(format::data_row(row, &types, &fields))).collect();
    let mut response = QueryResponse::new(fields, stream::iter(data));
    response.set_command_tag(&rows.command);
    response
}

/// A failed statement as PostgreSQL reports it.
pub fn error_info(error: sql::Error) -> ErrorInfo {
    let (code, message, context) = match error {
        sql::Error::Sql(error) => (error.code, error.message, error.context),
        sql::Error::Group(raft::GroupError::Unavailable { reason, .. }) => {
            (sql::code::CONNECTION_FAILURE.to_string(), format!("the sql group did not answer in time: {reason}"), None)
        }
        sql::Error::Group(raft::GroupError::ShuttingDown(_)) => {
            ("57P01".to_string(), "terminating connection because Seshat is shutting down".to_string(), None)
        }
        other => {
            tracing::error!(error = %other, "statement failed in the service");
            (sql::code::INTERNAL_ERROR.to_string(), other.to_string(), None)
        }
    };
    let mut info = ErrorInfo::new("ERROR".to_string(), code, message);
    info.where_context = context;
    info
}

/// Tells the session the user and database the client named at startup
/// (the database defaults to the user, as in PostgreSQL).
pub fn identify(session: &mut sql::Session, client: &impl ClientInfo) {
    let metadata = client.metadata();
    let user = metadata.get("user").map_or("", String::as_str);
    let database = metadata.get("database").map_or(user, String::as_str);
    session.set_identity(user, database);
}
