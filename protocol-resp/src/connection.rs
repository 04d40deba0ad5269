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
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures_util::future::join_all;
use kv::{CommandError, Reply};
use raft::Shutdown;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::clients::Client;
use crate::commands::{dispatch, flags, write_result, Outcome, Request};
use crate::encode::{encode, Protocol};
use crate::monitoring::Thresholds;
use crate::request::{Limits, RequestParser};
use crate::server::Server;
use crate::session::{ReplyMode, Session};

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
        // CONFIG `timeout`: an idle client is closed, unless it subscribed
        // (Redis exempts pub/sub clients; blocked ones wait elsewhere).
        let idle_limit = server.idle_timeout().filter(|_| session.subscriptions() == 0);
        let idle = async {
            match idle_limit {
                Some(limit) => tokio::time::sleep(limit).await,
                None => std::future::pending().await,
            }
        };
        let read = tokio::select! {
            read = stream.read_buf(&mut input) => read,
            _ = idle => break,
            push = session.next_push() => {
                if session.reply_mode == ReplyMode::On {
                    encode(&mut output, &push, session.protocol);
                }
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
        let thresholds = server.thresholds();
        loop {
            let limits = Limits { max_bulk_len, max_args, authenticated: session.authenticated };
            match parser.next(&mut input, limits) {
                Ok(Some(words)) => {
                    let request = Request::new(words);
                    let shown = request.spec().is_some_and(|spec| spec.flags & flags::ADMIN == 0);
                    if server.monitors.watched() && shown {
                        server.monitors.feed(session.db, &client.addr.to_string(), request.words());
                    }
                    let mut timing =
                        request.spec().filter(|spec| spec.flags & flags::BLOCKING == 0).map(|spec| Timing {
                            started: Instant::now(),
                            name: spec.name,
                            fast: spec.flags & flags::FAST != 0,
                            words: None,
                            thresholds,
                        });
                    // A write is proposed at dispatch; a read runs when its
                    // turn comes. So a write must not be proposed while an
                    // earlier read still waits, or the read would see it.
                    if request.is_write() && pending.has_read {
                        let socket =
                            Socket { server: &server, client: &client, stream: &mut stream, input: &mut input };
                        if pending.complete(&mut output, socket).await.is_err() {
                            return hang_up(&mut session);
                        }
                    }
                    if server.pause.active() {
                        server.pause.wait(request.is_write()).await;
                    }
                    let outcome = dispatch(&mut session, &request);
                    if let Some(timing) = timing.as_mut().filter(|_| thresholds.slowlog_slower_than_us >= 0) {
                        // Kept for the slow log: moved, not copied.
                        timing.words = Some(request.into_words());
                    }
                    let silenced = session.reply_silenced();
                    pending.push(session.protocol, outcome, timing, silenced);
                    if session.closing {
                        break;
                    }
                    if pending.outcomes.len() >= MAX_PENDING {
                        let socket =
                            Socket { server: &server, client: &client, stream: &mut stream, input: &mut input };
                        if pending.complete(&mut output, socket).await.is_err() {
                            return hang_up(&mut session);
                        }
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
        let socket = Socket { server: &server, client: &client, stream: &mut stream, input: &mut input };
        if pending.complete(&mut output, socket).await.is_err() {
            return hang_up(&mut session);
        }
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

/// The client hung up while a command waited.
fn hang_up(session: &mut Session) {
    crate::commands::unsubscribe_all(session);
}

/// The connection's socket and unparsed input, lent to a pipeline while it
/// completes: a command that may wait long (a blocking pop) first writes
/// the replies before it, and ends its wait if the client hangs up.
struct Socket<'a> {
    server: &'a Server,
    client: &'a Client,
    stream: &'a mut TcpStream,
    input: &'a mut BytesMut,
}

/// When a command was dispatched, for SLOWLOG and LATENCY.
struct Timing {
    started: Instant,
    name: &'static str,
    fast: bool,
    /// The command's words, kept while the slow log is on.
    words: Option<Vec<Bytes>>,
    /// What SLOWLOG and LATENCY recorded when the command was read.
    thresholds: Thresholds,
}

impl Timing {
    /// Records the command as completed now.
    fn done(self, server: &Server, client: &Client) {
        let elapsed = self.started.elapsed();
        server.monitoring.observe(self.thresholds, self.name, self.fast, self.words, client, elapsed);
    }
}

/// The client closed the connection (or it broke).
struct HungUp;

/// Input read while a command waits is kept, up to this many bytes, for
/// the commands after it.
const MAX_INPUT_WHILE_WAITING: usize = 1 << 20;

impl Socket<'_> {
    /// Resolves when the client hangs up; keeps what it sends meanwhile.
    async fn hung_up(&mut self) {
        loop {
            if self.input.len() >= MAX_INPUT_WHILE_WAITING {
                return std::future::pending().await;
            }
            match self.stream.read_buf(self.input).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    self.server.stats.total_net_input_bytes.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        }
    }
}

/// The dispatched commands of a connection whose replies are not written
/// yet, each with the protocol its reply is encoded in.
#[derive(Default)]
struct Pipeline {
    /// Each with its protocol, timing, and whether CLIENT REPLY silences it.
    outcomes: Vec<(Protocol, Outcome, Option<Timing>, bool)>,
    /// Whether a read or operator command is among the outcomes (it has not
    /// run yet).
    has_read: bool,
    /// Replies waiting behind a read that has not run yet, in request
    /// order (`None`: that read's slot). Kept between batches, like `reads`,
    /// so that completing a batch allocates nothing.
    queued: Vec<(Option<Protocol>, Option<Reply>)>,
    /// The reads among `queued`, with their slots.
    reads: Vec<PendingRead>,
}

type PendingRead = (usize, Pin<Box<dyn Future<Output = Reply> + Send>>, Option<Timing>);

impl Pipeline {
    fn push(&mut self, protocol: Protocol, outcome: Outcome, timing: Option<Timing>, silenced: bool) {
        self.has_read |= matches!(outcome, Outcome::Read(_) | Outcome::Operator(_));
        self.outcomes.push((protocol, outcome, timing, silenced));
    }

    /// Awaits every outcome and encodes the replies in request order.
    async fn complete(&mut self, output: &mut BytesMut, mut socket: Socket<'_>) -> Result<(), HungUp> {
        let (server, client) = (socket.server, socket.client);
        let done = |timing: Option<Timing>| {
            if let Some(timing) = timing {
                timing.done(server, client);
            }
        };
        let mut outcomes = std::mem::take(&mut self.outcomes);
        for (protocol, outcome, timing, silenced) in outcomes.drain(..) {
            // A silenced reply is still awaited (in order) but not written.
            let protocol = (!silenced).then_some(protocol);
            match outcome {
                Outcome::Read(read) => {
                    self.reads.push((self.queued.len(), read, timing));
                    self.queued.push((protocol, None));
                }
                Outcome::Reply(reply) => {
                    done(timing);
                    if self.queued.is_empty() {
                        encode_to(output, &reply, protocol);
                    } else {
                        self.queued.push((protocol, Some(reply)));
                    }
                }
                Outcome::Write(proposal) => {
                    self.flush(output, server, client).await;
                    encode_to(output, &write_result(proposal.await), protocol);
                    done(timing);
                }
                Outcome::Operator(operation) => {
                    self.flush(output, server, client).await;
                    if write_out(socket.server, socket.stream, output).await.is_err() {
                        return Err(HungUp);
                    }
                    let reply = tokio::select! {
                        reply = operation => reply,
                        // Dropping the operation ends it: a blocked client
                        // leaves the queue.
                        _ = socket.hung_up() => return Err(HungUp),
                    };
                    encode_to(output, &reply, protocol);
                    done(timing);
                }
            }
        }
        self.outcomes = outcomes;
        self.flush(output, server, client).await;
        self.has_read = false;
        Ok(())
    }

    /// Runs the queued reads together, then encodes the queued replies.
    async fn flush(&mut self, output: &mut BytesMut, server: &Server, client: &Client) {
        if self.reads.len() == 1 {
            let (slot, read, timing) = self.reads.pop().expect("one read");
            self.queued[slot].1 = Some(read.await);
            if let Some(timing) = timing {
                timing.done(server, client);
            }
        } else if !self.reads.is_empty() {
            let done = join_all(self.reads.drain(..).map(|(slot, read, timing)| async move {
                let reply = read.await;
                (slot, reply, timing)
            }))
            .await;
            for (slot, reply, timing) in done {
                self.queued[slot].1 = Some(reply);
                if let Some(timing) = timing {
                    timing.done(server, client);
                }
            }
        }
        for (protocol, reply) in self.queued.drain(..) {
            encode_to(output, &reply.expect("every read has run"), protocol);
        }
    }
}

/// Encodes `reply` unless CLIENT REPLY silenced it (`None`).
fn encode_to(output: &mut BytesMut, reply: &Reply, protocol: Option<Protocol>) {
    if let Some(protocol) = protocol {
        encode(output, reply, protocol);
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
