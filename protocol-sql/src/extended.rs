//! The extended query protocol: Parse prepares a statement in the SQL
//! service (parameter types inferred, result columns known, so Describe
//! answers before anything runs), Bind decodes the parameters in the
//! formats the client chose, Execute runs it. pgwire keeps the named and
//! unnamed statements and portals, and hands rows out `max_rows` at a
//! time (PortalSuspended in between).

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::{Sink, SinkExt};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::ExtendedQueryHandler;
use pgwire::api::results::{FieldInfo, Response};
use pgwire::api::stmt::QueryParser;
use pgwire::api::stmt::StoredStatement;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::extendedquery::{Execute, Parse, ParseComplete};
use pgwire::messages::PgWireBackendMessage;
use sql::{code, DataType, Prepared, SqlError, Value};

use crate::cancel::Registration;
use crate::deallocate::Names;
use crate::format;
use crate::query::{error_info, identify, response, transaction_status, SharedSession};

pub struct ExtendedHandler {
    parser: Arc<Parser>,
    registration: Arc<Registration>,
    names: Arc<Names>,
}

impl ExtendedHandler {
    pub fn new(session: SharedSession, registration: Arc<Registration>, names: Arc<Names>) -> Self {
        ExtendedHandler { parser: Arc::new(Parser { session }), registration, names }
    }
}

/// Prepares statements in the connection's session.
pub struct Parser {
    session: SharedSession,
}

fn user_error(error: sql::Error) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(error)))
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Arc<Prepared>;

    async fn parse_sql<C>(&self, client: &C, sql: &str, types: &[Option<Type>]) -> PgWireResult<Option<Arc<Prepared>>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut declared = Vec::with_capacity(types.len());
        for ty in types {
            declared.push(match ty {
                None => None,
                Some(ty) => Some(DataType::from_oid(ty.oid()).ok_or_else(|| {
                    let message = format!("parameters of type {} are not supported by Seshat yet", ty.name());
                    user_error(SqlError::new(code::FEATURE_NOT_SUPPORTED, message).into())
                })?),
            });
        }
        let mut session = self.session.lock().await;
        identify(&mut session, client);
        let prepared = session.prepare(sql, &declared).await.map_err(user_error)?;
        Ok(Some(Arc::new(prepared)))
    }

    fn get_parameter_types(&self, statement: &Arc<Prepared>) -> PgWireResult<Vec<Type>> {
        Ok(statement.params().iter().map(|ty| Type::from_oid(ty.oid()).unwrap_or(Type::TEXT)).collect())
    }

    fn get_result_schema(&self, statement: &Arc<Prepared>, formats: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        Ok(format::fields(statement.columns(), formats).as_ref().clone())
    }
}

/// The portal's parameter values, in the prepared statement's types.
fn parameters(portal: &Portal<Arc<Prepared>>) -> Result<Vec<Value>, SqlError> {
    let types = portal.statement.statement.params();
    let mut values = Vec::with_capacity(portal.parameters.len());
    for (index, (bytes, &ty)) in portal.parameters.iter().zip(types).enumerate() {
        values.push(match bytes {
            None => Value::Null,
            Some(bytes) => format::decode_param(bytes, ty, portal.parameter_format.format_for(index), index)?,
        });
    }
    if portal.parameters.len() != types.len() {
        return Err(SqlError::new(
            code::PROTOCOL_VIOLATION,
            format!(
                "bind message supplies {} parameters, but prepared statement \"{}\" requires {}",
                portal.parameters.len(),
                portal.statement.id,
                types.len()
            ),
        ));
    }
    Ok(values)
}

#[async_trait]
impl ExtendedQueryHandler for ExtendedHandler {
    type Statement = Arc<Prepared>;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        _client: &mut C,
        portal: &Portal<Arc<Prepared>>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // An error is returned, not answered: pgwire then discards the
        // rest of the pipeline until Sync, as PostgreSQL does.
        let values = parameters(portal).map_err(|error| user_error(error.into()))?;
        let mut session = self.parser.session.lock().await;
        let outcome = session.execute_prepared(&portal.statement.statement, values).await.map_err(user_error)?;
        Ok(response(Ok(outcome), Some(&portal.result_column_format)))
    }

    /// pgwire's Parse, recording the statement's name for DEALLOCATE
    /// ([`crate::deallocate`]).
    async fn on_parse<C>(&self, client: &mut C, message: Parse) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.clone().unwrap_or_default();
        match StoredStatement::parse(client, &message, self.query_parser()).await? {
            Some(statement) => client.portal_store().put_statement(Arc::new(statement)),
            None => client.portal_store().put_empty_statement(&name),
        }
        self.names.record(Some(&name));
        client.send(PgWireBackendMessage::ParseComplete(ParseComplete::new())).await?;
        Ok(())
    }

    /// pgwire's Execute, then the transaction status the session has
    /// (which Sync's ReadyForQuery reports, and an error builds on).
    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.registration.register(client);
        let executed = self._on_execute(client, message).await;
        client.set_transaction_status(transaction_status(self.parser.session.lock().await.status()));
        executed
    }
}
