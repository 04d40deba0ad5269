//! The command table as scripts see it: `kv` applies a script's
//! `redis.call`s and asks this parser what each one does
//! ([`kv::script::ScriptCommands`]).
//!
//! A call is parsed exactly as MULTI would queue it: the command's handler
//! runs on a session that has no connection and an open transaction, and
//! what it queues (a write, a read, or its reply) is the step. Before
//! that come Redis's checks for scripts, with its words: unknown command,
//! arity, `noscript`, a write from a read-only script. TIME is answered
//! by `kv` from the log entry's stamp.
//!
//! Replicas must parse alike: handlers draw nothing random that `kv` does
//! not replace (SPOP's seed). The few settings a handler reads are this
//! node's (`hll-sparse-max-bytes`): replicas configured differently could
//! store a HyperLogLog a script writes in different encodings.

use std::sync::Arc;

use bytes::Bytes;
use kv::script::{ScriptCall, ScriptCommands, ScriptStep};
use kv::{CommandError, Reply, TxnStep};
use raft::Shutdown;

use crate::args::Args;
use crate::clients::Client;
use crate::commands::{flags, keyspec, lookup, Outcome};
use crate::server::Server;
use crate::session::{Session, Transaction};

pub(crate) struct ScriptParser {
    server: Arc<Server>,
    /// The connection-less client every parsing session shares, and a
    /// shutdown signal nothing cancels (parsing never waits).
    client: Arc<Client>,
    shutdown: Shutdown,
}

impl ScriptParser {
    pub(crate) fn new(server: Arc<Server>) -> ScriptParser {
        ScriptParser { server, client: Client::detached(), shutdown: Shutdown::new() }
    }
}

fn refusal(text: &str) -> CommandError {
    CommandError::Other(format!("ERR {text}"))
}

impl ScriptCommands for ScriptParser {
    fn parse(&self, words: &[Bytes], db: u8, read_only: bool) -> Result<ScriptCall, CommandError> {
        let spec = lookup(&words[0]).ok_or_else(|| refusal("Unknown Redis command called from script"))?;
        let count = words.len() as i64;
        if (spec.arity > 0 && count != spec.arity) || (spec.arity < 0 && count < -spec.arity) {
            return Err(refusal("Wrong number of args calling Redis command from script"));
        }
        if spec.flags & flags::NOSCRIPT != 0 {
            return Err(refusal("This Redis command is not allowed from script"));
        }
        if read_only && spec.flags & flags::WRITE != 0 {
            return Err(refusal("Write commands are not allowed from read-only scripts."));
        }
        let keys = keyspec::keys(spec, words).map(|keys| keys.into_iter().map(|(key, _)| key).collect());
        if spec.name == "time" {
            return Ok(ScriptCall { step: ScriptStep::Time, db, keys: Vec::new() });
        }
        let mut session = Session::new(self.server.clone(), self.client.clone(), self.shutdown.clone());
        session.db = db;
        session.authenticated = true;
        session.transaction = Some(Transaction { commands: Vec::new(), failed: false, db_at_multi: db, route: None });
        let result = (spec.handler)(&mut session, &mut Args::of_request(words));
        let queued = session.transaction.as_mut().and_then(|transaction| transaction.commands.pop());
        let step = match (queued, result) {
            (Some(queued), _) => queued.step,
            (None, Ok(Outcome::Reply(reply))) => TxnStep::Reply(reply),
            (None, Err(error)) => TxnStep::Reply(Reply::Error(error)),
            (None, Ok(_)) => {
                return Err(refusal(
                    "This command cannot run inside a script in Seshat: it reports or acts on one node",
                ))
            }
        };
        Ok(ScriptCall { step: ScriptStep::Step(step), db: session.db, keys: keys.unwrap_or_default() })
    }
}
