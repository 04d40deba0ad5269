//! Scripts on the read path: SCRIPT EXISTS, and the run of a read-only
//! script (EVAL_RO, EVALSHA_RO, `no-writes`) against one snapshot.

use bytes::Bytes;
use rand::{RngCore, SeedableRng};
use storage::Family;

use super::ReadCtx;
use crate::command::TxnStep;
use crate::error::{CommandError, Result};
use crate::reply::Reply;
use crate::script::engine::{Engine, Host, Inputs};
use crate::script::{self, shebang, ScriptCommands, ScriptSource, ScriptStep, Sha};

/// What a read-only run runs.
pub enum ReadCode {
    /// EVAL_RO, EVALSHA_RO, a `no-writes` EVAL.
    Script(ScriptSource),
    /// FCALL_RO of this function.
    Function(Bytes),
}

/// A read-only script and its inputs.
pub(crate) struct ReadScript<'s> {
    pub code: ReadCode,
    pub keys: &'s [Bytes],
    pub args: &'s [Bytes],
    /// The logical database the script starts in.
    pub db: u8,
    /// SELECT's logical database as stored.
    pub physical: &'s dyn Fn(u8) -> u8,
}

impl ReadCtx<'_> {
    /// SCRIPT EXISTS: 1 or 0 per digest (0 for one that is not a digest).
    pub fn script_exists(&self, shas: &[Option<Sha>]) -> Result<Reply> {
        let mut replies = Vec::with_capacity(shas.len());
        for sha in shas {
            let exists = match sha {
                Some(sha) => self.stored_script(sha)?.is_some(),
                None => false,
            };
            replies.push(Reply::Int(i64::from(exists)));
        }
        Ok(Reply::Array(replies))
    }

    fn stored_script(&self, sha: &Sha) -> Result<Option<Vec<u8>>> {
        Ok(self.reader.get(Family::KvMeta, &sha.stored_key(self.shards.0))?)
    }

    /// Runs a read-only script in `engine`: its commands are reads of this
    /// context (a write is refused); random commands draw from `seed`.
    pub(crate) fn run_read_script(
        &self,
        engine: &mut Engine,
        commands: &dyn ScriptCommands,
        run: ReadScript<'_>,
        seed: u64,
        budget: u64,
    ) -> Result<Reply> {
        let inputs = Inputs { keys: run.keys, args: run.args, seed, budget };
        let refusal = |error: CommandError| Ok(Reply::Error(error));
        // What to run: a compiled script, or a function's callback.
        let ready = match run.code {
            ReadCode::Script(source) => {
                let (sha, body) = match source {
                    ScriptSource::Body(body) => (Sha::of(&body), Some(body)),
                    ScriptSource::Sha(sha) => (sha, self.stored_script(&sha)?.map(Bytes::from)),
                };
                let function = match (body, engine.compiled(&sha)) {
                    // A script EVAL_RO ran on this node is known here, as in Redis.
                    (None, Some(function)) => function,
                    (None, None) => return refusal(script::no_script()),
                    (Some(body), _) => {
                        if let Err(error) = shebang::flags(&body) {
                            return refusal(error);
                        }
                        match engine.compile(&sha, &body) {
                            Ok(function) => function,
                            Err(error) => return refusal(error),
                        }
                    }
                };
                Ready::Script(sha, function)
            }
            ReadCode::Function(name) => {
                let Some((library, function)) = self.find_function(&name)? else {
                    return refusal(CommandError::Other("ERR Function not found".into()));
                };
                if function.writes() {
                    return refusal(crate::script::library::read_only_refusal());
                }
                let body = match crate::script::library::metadata(&library.code) {
                    Ok(metadata) => metadata.body,
                    Err(error) => return refusal(error),
                };
                match engine.function(&library.name, &body, &function.name, budget) {
                    Ok(callback) => Ready::Function(function.name, callback),
                    Err(error) => return refusal(error),
                }
            }
        };
        let mut host = ReadHost {
            ctx: self,
            commands,
            db: run.db,
            physical: run.physical,
            random: rand::rngs::StdRng::seed_from_u64(seed),
            failure: None,
        };
        let reply = match ready {
            Ready::Script(sha, function) => engine.run(&sha, &function, inputs, &mut host),
            Ready::Function(name, callback) => engine.run_function(&name, &callback, inputs, &mut host),
        };
        match host.failure {
            Some(error) => Err(error),
            None => Ok(reply),
        }
    }
}

/// A read-only run, compiled: a script by its digest, or a function's
/// callback by the function's name.
enum Ready {
    Script(Sha, mlua::Function),
    Function(String, mlua::Function),
}

/// Runs a read-only script's commands as reads of one context.
struct ReadHost<'h, 'c> {
    ctx: &'h ReadCtx<'c>,
    commands: &'h dyn ScriptCommands,
    db: u8,
    physical: &'h dyn Fn(u8) -> u8,
    random: rand::rngs::StdRng,
    failure: Option<crate::error::Error>,
}

impl Host for ReadHost<'_, '_> {
    fn call(&mut self, words: Vec<Bytes>) -> Reply {
        let call = match self.commands.parse(&words, self.db, true) {
            Ok(call) => call,
            Err(error) => return Reply::Error(error),
        };
        let (first, last) = self.ctx.slots;
        if !call.keys.iter().all(|key| (first..=last).contains(&storage::keyspace::hash_slot(key))) {
            return Reply::Error(script::non_local_key());
        }
        self.db = call.db;
        match call.step {
            ScriptStep::Time => script::time_reply(self.ctx.now_ms),
            ScriptStep::Step(TxnStep::Reply(reply)) => reply,
            ScriptStep::Step(TxnStep::Write(_)) => {
                Reply::Error(CommandError::Other("ERR Write commands are not allowed from read-only scripts.".into()))
            }
            ScriptStep::Step(TxnStep::Read(op)) => {
                let read = ReadCtx { db: (self.physical)(call.db), seed: Some(self.random.next_u64()), ..*self.ctx };
                read.run(&op).unwrap_or_else(|error| {
                    let reply = Reply::Error(CommandError::Other(format!("ERR {error}")));
                    self.failure.get_or_insert(error);
                    reply
                })
            }
        }
    }
}
