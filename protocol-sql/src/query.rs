//! Simple queries: a string of statements to the SQL service, its
//! outcomes to PostgreSQL's messages.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::{stream, Sink};
use pgwire::api::query::SimpleQueryHandler;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::store::PortalStore;

use pgwire::api::{ClientInfo, ClientPortalStore, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use sql::{Outcome, Rows};

pub struct QueryHandler {
    sql: sql::Sql,
}

impl QueryHandler {
    pub fn new(sql: sql::Sql) -> Self {
        QueryHandler { sql }
    }
}

#[async_trait]
impl SimpleQueryHandler for QueryHandler {
    async fn do_query<C>(&self, _client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut responses = Vec::new();
        for result in self.sql.execute(query).await {
            responses.push(match result {
                Ok(Outcome::Rows(rows)) => Response::Query(rows_response(rows)?),
                Ok(Outcome::Command { command, rows }) => Response::Execution(command_tag(&command, rows)),
                Err(error) => Response::Error(Box::new(error_info(error))),
            });
        }
        Ok(responses)
    }
}

fn command_tag(command: &str, rows: Option<u64>) -> Tag {
    match rows {
        Some(n) => Tag::new(command).with_rows(n as usize),
        None => Tag::new(command),
    }
}

fn rows_response(rows: Rows) -> PgWireResult<QueryResponse> {
    let types: Vec<sql::DataType> = rows.columns.iter().map(|c| c.data_type).collect();
    let schema: Arc<Vec<FieldInfo>> = Arc::new(
        rows.columns
            .iter()
            .map(|column| {
                let ty = Type::from_oid(column.data_type.oid()).unwrap_or(Type::TEXT);
                FieldInfo::new(column.name.clone(), None, None, ty, FieldFormat::Text)
            })
            .collect(),
    );
    let mut data = Vec::with_capacity(rows.rows.len());
    let mut encoder = DataRowEncoder::new(schema.clone());
    for row in rows.rows {
        for (value, ty) in row.iter().zip(&types) {
            encoder.encode_field(&value.to_text(*ty))?;
        }
        data.push(Ok(encoder.take_row()));
    }
    let mut response = QueryResponse::new(schema, stream::iter(data));
    response.set_command_tag(&rows.command);
    Ok(response)
}

/// A failed statement as PostgreSQL reports it.
fn error_info(error: sql::Error) -> ErrorInfo {
    let (code, message) = match error {
        sql::Error::Sql(error) => (error.code, error.message),
        sql::Error::Group(raft::GroupError::Unavailable { reason, .. }) => {
            (sql::code::CONNECTION_FAILURE.to_string(), format!("no quorum of the sql group answered: {reason}"))
        }
        sql::Error::Group(raft::GroupError::ShuttingDown(_)) => {
            ("57P01".to_string(), "terminating connection because Seshat is shutting down".to_string())
        }
        other => {
            tracing::error!(error = %other, "statement failed in the service");
            (sql::code::INTERNAL_ERROR.to_string(), other.to_string())
        }
    };
    ErrorInfo::new("ERROR".to_string(), code, message)
}
