//! EVAL, EVALSHA, SCRIPT LOAD and SCRIPT FLUSH at apply (see
//! `crate::script` for the life of a script).
//!
//! A script's commands run in the entry's txn one after another, exactly
//! as the commands of an EXEC do; a storage failure inside one aborts
//! the batch like any other (the script's reply is never sent).

use bytes::Bytes;
use rand::{RngCore, SeedableRng};
use storage::keyspace::kv_meta;

use super::txn::Txn;
use super::{execute, reading, Context, Fail, OpResult};
use crate::command::{TxnStep, WriteOp};
use crate::error::{CommandError, Error};
use crate::reply::Reply;
use crate::script::engine::{Engine, Host, Inputs};
use crate::script::pace::Code;
use crate::script::{self, shebang, ScriptCommands, ScriptSource, ScriptStep, Sha};

/// The inputs of an EVAL- or FCALL-like entry besides what it runs.
pub(super) struct Run {
    pub keys: Vec<Bytes>,
    pub args: Vec<Bytes>,
    pub seed: u64,
    pub budget: u64,
    /// EVAL_RO, FCALL_RO: writes are refused.
    pub read_only: bool,
}

impl Run {
    pub(super) fn inputs(&self) -> Inputs<'_> {
        Inputs { keys: &self.keys, args: &self.args, seed: self.seed, budget: self.budget }
    }
}

pub(super) fn eval(txn: &mut Txn<'_>, ctx: &mut Context<'_>, db: u8, script: ScriptSource, run: Run) -> OpResult {
    let (sha, body) = match script {
        ScriptSource::Body(body) => (Sha::of(&body), body),
        ScriptSource::Sha(sha) => match txn.get_meta(&sha.stored_key(txn.shard))? {
            Some(body) => (sha, Bytes::from(body)),
            None => return Err(script::no_script().into()),
        },
    };
    let flags = shebang::flags(&body)?;
    let read_only = run.read_only || (flags.shebang && flags.no_writes);
    in_txn(txn, ctx, db, Code::Script(sha), read_only, run.seed, |host, engine| {
        let function = engine.compile(&sha, &body)?;
        store(host.txn, &sha, &body)?;
        Ok(engine.run(&sha, &function, run.inputs(), host))
    })
}

/// Runs `run` (of `code`, a script or a function, in the group's VM)
/// with its commands in the entry's txn through the host it is given;
/// `read_only` refuses writes, `seed` seeds the random commands. The
/// group's [`Pace`](crate::script::pace::Pace) picks the thread.
pub(super) fn in_txn(
    txn: &mut Txn<'_>,
    ctx: &mut Context<'_>,
    db: u8,
    code: Code,
    read_only: bool,
    seed: u64,
    run: impl FnOnce(&mut ApplyHost<'_, '_, '_>, &mut Engine) -> Result<Reply, Fail>,
) -> OpResult {
    let slot = ctx.commands;
    let commands = slot.get();
    // Out of the context while the code's commands use the context.
    let mut engine = ctx.engine.take().unwrap_or_else(Engine::new);
    let logical = ctx.dbs.logical(db);
    let (result, fatal) = {
        let mut host = ApplyHost {
            txn: &mut *txn,
            ctx: &mut *ctx,
            commands,
            db: logical,
            read_only,
            random: rand::rngs::StdRng::seed_from_u64(seed),
            fatal: None,
        };
        let mut pace = std::mem::take(&mut engine.pace);
        let result = pace.run(code, || run(&mut host, &mut engine));
        engine.pace = pace;
        (result, host.fatal)
    };
    *ctx.engine = Some(engine);
    match fatal {
        Some(error) => Err(Fail::Fatal(error)),
        None => result,
    }
}

/// SCRIPT LOAD: the script's digest, once it compiles.
pub(super) fn load(txn: &mut Txn<'_>, ctx: &mut Context<'_>, body: Bytes) -> OpResult {
    shebang::flags(&body)?;
    let sha = Sha::of(&body);
    ctx.engine.get_or_insert_with(Engine::new).compile(&sha, &body)?;
    store(txn, &sha, &body)?;
    Ok(Reply::bulk(sha.hex()))
}

/// SCRIPT FLUSH.
pub(super) fn flush(txn: &mut Txn<'_>, ctx: &mut Context<'_>) -> OpResult {
    let (start, end) = kv_meta::scripts(txn.shard);
    txn.delete_meta_range(&start, &end)?;
    txn.scripts_flushed = true;
    if let Some(engine) = ctx.engine.as_mut() {
        engine.flush();
    }
    Ok(Reply::ok())
}

/// Keeps `body` under its digest (EVAL caches what it runs, as Redis).
fn store(txn: &mut Txn<'_>, sha: &Sha, body: &Bytes) -> Result<(), Fail> {
    let key = sha.stored_key(txn.shard);
    if txn.get_meta(&key)?.is_none() {
        txn.put_meta(key, Some(body.to_vec()));
    }
    Ok(())
}

/// Runs a script's commands in the entry's txn.
pub(super) struct ApplyHost<'h, 't, 'c> {
    pub(super) txn: &'h mut Txn<'t>,
    ctx: &'h mut Context<'c>,
    commands: &'h dyn ScriptCommands,
    /// The logical database the script is in.
    db: u8,
    read_only: bool,
    /// The seeds of the script's random commands.
    random: rand::rngs::StdRng,
    /// A storage failure: the batch aborts once the script returns.
    fatal: Option<Error>,
}

impl Host for ApplyHost<'_, '_, '_> {
    fn call(&mut self, words: Vec<Bytes>) -> Reply {
        if self.fatal.is_some() {
            return Reply::Error(CommandError::Other("ERR a storage failure stopped the script".into()));
        }
        let call = match self.commands.parse(&words, self.db, self.read_only) {
            Ok(call) => call,
            Err(error) => return Reply::Error(error),
        };
        if !call.keys.iter().all(|key| self.txn.owns_key(key)) {
            return Reply::Error(script::non_local_key());
        }
        self.db = call.db;
        let db = self.ctx.dbs.physical(call.db);
        let outcome = match call.step {
            ScriptStep::Time => Ok(script::time_reply(self.txn.now_ms)),
            ScriptStep::Step(TxnStep::Reply(reply)) => Ok(reply),
            ScriptStep::Step(TxnStep::Write(op)) => {
                self.txn.begin_op();
                let op = match op {
                    WriteOp::SPop { key, count, .. } => WriteOp::SPop { key, count, seed: self.random.next_u64() },
                    op => op,
                };
                execute(self.txn, self.ctx, db, op)
            }
            ScriptStep::Step(TxnStep::Read(op)) => {
                let mut read = reading(self.txn, self.ctx.cursors, db);
                read.seed = Some(self.random.next_u64());
                read.run(&op).map_err(Fail::Fatal)
            }
        };
        match outcome {
            Ok(reply) => reply,
            Err(Fail::User(error)) => Reply::Error(error),
            Err(Fail::Fatal(error)) => {
                self.fatal = Some(error);
                Reply::Error(CommandError::Other("ERR a storage failure stopped the script".into()))
            }
        }
    }
}
