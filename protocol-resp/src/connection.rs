//! One client connection: read, parse, dispatch, reply in order.
//!
//! Pipelining: every complete request in the input buffer is dispatched
//! before any reply is awaited, so a pipeline of writes is proposed at once
//! and shares a group commit. Replies are awaited and encoded strictly in
//! request order. Each command observes exactly the effects of the commands
//! before it on the connection: a read starts only once every earlier
//! command has completed (so a GET after a SET sees the SET), and a write is
//! proposed only once every earlier read has run (so it does not see the
//! SET after it). Consecutive reads have no order among themselves to keep:
//! they run together, so a pipeline of reads shares one read-index round
//! instead of waiting for one round each.
//!
//! Shutdown and CLIENT KILL are checked between batches: commands already
//! dispatched always complete and are answered before the connection closes.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::BytesMut;
use futures_util::future::join_all;
use kv::{CommandError, Reply};
use raft::Shutdown;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::clients::Client;
use crate::commands::{dispatch, write_result, Outcome, Request};
use crate::encode::{encode, Protocol};
use crate::request::{Limits, RequestParser};
use crate::server::Server;
use crate::session::Session;

/// Replies are flushed at least every this many commands of a pipeline.
const MAX_PENDING: usize = 1024;

pub(crate) async fn serve(server: Arc<Server>, client: Arc<Client>, mut stream: TcpStream, shutdown: Shutdown) {
    let _ = stream.set_nodelay(true);
    let mut session = Session::new(server.clone(), client.clone(), shutdown.clone());
    let mut parser = RequestParser::default();
    let mut input = BytesMut::with_capacity(16 * 1024);
    let mut output = BytesMut::with_capacity(16 * 1024);
    let mut pending = Pipeline::default();
    loop {
        let read = tokio::select! {
            read = stream.read_buf(&mut input) => read,
            push = session.next_push() => {
                encode(&mut output, &push, session.protocol);
                if write_out(&server, &mut stream, &mut output).await.is_err() {
                    break;
                }
                continue;
            }
            _ = shutdown.cancelled() => break,
            _ = client.killed() => break,
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                server.stats.total_net_input_bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
        let mut protocol_error = None;
        let (max_bulk_len, max_args) = server.limits();
        loop {
            let limits = Limits { max_bulk_len, max_args, authenticated: session.authenticated };
            match parser.next(&mut input, limits) {
                Ok(Some(words)) => {
                    let request = Request::new(words);
                    // A write is proposed at dispatch; a read runs when its
                    // turn comes. So a write must not be proposed while an
                    // earlier read still waits, or the read would see it.
                    if request.is_write() && pending.has_read {
                        pending.complete(&mut output).await;
                    }
                    let outcome = dispatch(&mut session, request);
                    pending.push(session.protocol, outcome);
                    if session.closing {
                        break;
                    }
                    if pending.outcomes.len() >= MAX_PENDING {
                        pending.complete(&mut output).await;
                        if write_out(&server, &mut stream, &mut output).await.is_err() {
                            return;
                        }
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    protocol_error = Some(error);
                    break;
                }
            }
        }
        pending.complete(&mut output).await;
        if let Some(error) = &protocol_error {
            tracing::debug!(error = %error.0, "protocol error, closing");
            let reply = Reply::Error(CommandError::Other(format!("ERR Protocol error: {}", error.0)));
            encode(&mut output, &reply, session.protocol);
        }
        if write_out(&server, &mut stream, &mut output).await.is_err() || protocol_error.is_some() || session.closing {
            break;
        }
    }
    crate::commands::unsubscribe_all(&mut session);
    let _ = stream.shutdown().await;
}

/// The dispatched commands of a connection whose replies are not written
/// yet, each with the protocol its reply is encoded in.
#[derive(Default)]
struct Pipeline {
    outcomes: Vec<(Protocol, Outcome)>,
    /// Whether a read or operator command is among the outcomes (it has not
    /// run yet).
    has_read: bool,
    /// Replies waiting behind a read that has not run yet, in request
    /// order (`None`: that read's slot). Kept between batches, like `reads`,
    /// so that completing a batch allocates nothing.
    queued: Vec<(Protocol, Option<Reply>)>,
    /// The reads among `queued`, with their slots.
    reads: Vec<PendingRead>,
}

type PendingRead = (usize, Pin<Box<dyn Future<Output = Reply> + Send>>);

impl Pipeline {
    fn push(&mut self, protocol: Protocol, outcome: Outcome) {
        self.has_read |= matches!(outcome, Outcome::Read(_) | Outcome::Operator(_));
        self.outcomes.push((protocol, outcome));
    }

    /// Awaits every outcome and encodes the replies in request order.
    async fn complete(&mut self, output: &mut BytesMut) {
        let mut outcomes = std::mem::take(&mut self.outcomes);
        for (protocol, outcome) in outcomes.drain(..) {
            match outcome {
                Outcome::Read(read) => {
                    self.reads.push((self.queued.len(), read));
                    self.queued.push((protocol, None));
                }
                Outcome::Reply(reply) if self.queued.is_empty() => encode(output, &reply, protocol),
                Outcome::Reply(reply) => self.queued.push((protocol, Some(reply))),
                Outcome::Write(proposal) => {
                    self.flush(output).await;
                    encode(output, &write_result(proposal.await), protocol);
                }
                Outcome::Operator(operation) => {
                    self.flush(output).await;
                    encode(output, &operation.await, protocol);
                }
            }
        }
        self.outcomes = outcomes;
        self.flush(output).await;
        self.has_read = false;
    }

    /// Runs the queued reads together, then encodes the queued replies.
    async fn flush(&mut self, output: &mut BytesMut) {
        if self.reads.len() == 1 {
            let (slot, read) = self.reads.pop().expect("one read");
            self.queued[slot].1 = Some(read.await);
        } else if !self.reads.is_empty() {
            let done = join_all(self.reads.drain(..).map(|(slot, read)| async move { (slot, read.await) })).await;
            for (slot, reply) in done {
                self.queued[slot].1 = Some(reply);
            }
        }
        for (protocol, reply) in self.queued.drain(..) {
            encode(output, &reply.expect("every read has run"), protocol);
        }
    }
}

async fn write_out(server: &Server, stream: &mut TcpStream, output: &mut BytesMut) -> std::io::Result<()> {
    if output.is_empty() {
        return Ok(());
    }
    stream.write_all(output).await?;
    server.stats.total_net_output_bytes.fetch_add(output.len() as u64, Ordering::Relaxed);
    output.clear();
    Ok(())
}
