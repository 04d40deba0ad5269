//! The Redis (RESP2/RESP3) frontend.
//!
//! Shaped like mini-redis: request framing with Redis's limits
//! ([`request`]), reply encoding per protocol version (`encode`), an
//! argument cursor that rejects leftovers (`args`), one file per command
//! family ending with its table (`commands`), a connection loop that
//! pipelines (`connection`) and a listener with a client cap and a shutdown
//! signal ([`RespFrontend`]). No database logic lives here: commands parse
//! their arguments, call `kv`, and format what it returns.
//!
//! # Life of a request
//!
//! 1. The connection reads bytes; the parser takes each complete request
//!    (multibulk or inline), refusing oversized or malformed input with
//!    `-ERR Protocol error: …` and closing.
//! 2. Dispatch looks the name up in the command table, checks arity and
//!    authentication, and runs the handler: connection commands answer at
//!    once, writes become proposals, reads become deferred linearizable reads.
//! 3. Replies are awaited in request order and encoded for the protocol the
//!    connection spoke when it sent the command (HELLO switches it).

mod applied;
mod args;
mod clients;
mod commands;
mod config;
mod connection;
mod encode;
mod listener;
mod monitor;
mod monitoring;
mod pause;
mod pubsub;
mod redact;
pub mod request;
mod script_commands;
mod server;
mod session;
mod tracking;

pub use config::ConfigError;
pub use listener::RespFrontend;
pub use server::{NodeFacts, RespConfig};
