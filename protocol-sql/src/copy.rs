//! COPY's sub-protocol: CopyInResponse and the client's CopyData,
//! CopyDone or CopyFail for COPY FROM STDIN; CopyOutResponse, CopyData
//! and CopyDone for COPY TO STDOUT. The session does the work
//! ([`sql::Session::copy_data`]); this module only moves the messages.

use std::fmt::Debug;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{stream, Sink};
use pgwire::api::copy::CopyHandler;
use pgwire::api::query::send_execution_response;
use pgwire::api::results::{CopyResponse, Response, Tag};
use pgwire::api::ClientInfo;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::PgWireBackendMessage;
use sql::{CopyOut, Outcome};

use crate::query::{error_info, transaction_status, SharedSession};

/// Text format: the only one Seshat's COPY speaks.
const TEXT: i8 = 0;

/// CopyInResponse for a COPY FROM STDIN of `columns` columns.
pub fn copy_in(columns: usize) -> Response {
    Response::CopyIn(CopyResponse::new(TEXT, columns, stream::empty()))
}

/// COPY TO STDOUT's lines as CopyData messages, one per row. A header
/// goes with the first row, so that the tag counts rows only.
pub fn copy_out(out: CopyOut) -> Response {
    let CopyOut { columns, mut lines, rows } = out;
    if lines.len() as u64 > rows && lines.len() > 1 {
        let header = lines.remove(0);
        lines[0].splice(0..0, header);
    }
    let data = lines.into_iter().map(|line| Ok(CopyData::new(Bytes::from(line))));
    Response::CopyOut(CopyResponse::new(TEXT, columns, stream::iter(data)))
}

/// Hands a connection's COPY messages to its session.
pub struct CopyIn {
    session: SharedSession,
}

impl CopyIn {
    pub fn new(session: SharedSession) -> Self {
        CopyIn { session }
    }
}

#[async_trait]
impl CopyHandler for CopyIn {
    async fn on_copy_data<C>(&self, _client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.session.lock().await.copy_data(&copy_data.data).await;
        Ok(())
    }

    /// Runs the COPY; CommandComplete `COPY n`, or its error (pgwire then
    /// sends ReadyForQuery, or awaits Sync in the extended protocol).
    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut session = self.session.lock().await;
        let result = session.copy_done().await;
        client.set_transaction_status(transaction_status(session.status()));
        match result {
            Ok(Outcome::Command { command, rows }) => {
                send_execution_response(client, Tag::new(&command).with_rows(rows.unwrap_or(0) as usize)).await
            }
            Ok(other) => unreachable!("COPY FROM answers a command tag, not {other:?}"),
            Err(error) => Err(PgWireError::UserError(Box::new(error_info(error)))),
        }
    }

    async fn on_copy_fail<C>(&self, client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut session = self.session.lock().await;
        let error = session.copy_fail(&fail.message).await;
        client.set_transaction_status(transaction_status(session.status()));
        PgWireError::UserError(Box::new(error_info(error)))
    }
}
