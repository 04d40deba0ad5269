//! A client's session: autocommit statements, and transactions.
//!
//! # Transactions
//!
//! Outside a transaction block each statement commits on its own: a
//! query reads after the read barrier, a write runs at apply (it never
//! fails with 40001). A string of several statements is one implicit
//! transaction, as in PostgreSQL.
//!
//! In a transaction, statements run in the session against one RocksDB
//! snapshot, taken after the read barrier by the first statement, with
//! the transaction's own writes in an overlay over it. Each statement's
//! SQL is kept with a digest of the outcome the client saw, and, when it
//! could be recorded, what the statement read of the snapshot and the
//! writes before it, and what it wrote ([`crate::read_set`]). COMMIT of
//! a transaction that wrote proposes them ([`SqlCommand::CommitSteps`]);
//! at apply every replica takes them in log order: a statement whose
//! reads answer the same keeps its recorded writes, any other runs again
//! from its text, and the transaction's writes are kept only if every
//! outcome is the same, else apply answers 40001
//! (`serialization_failure`). A read-only transaction commits without a
//! log entry: all it saw is one snapshot.
//!
//! Its statements run at one time (`now()`), the session's clock when it
//! began, logged with the commit ([`SqlCommand::CommitSteps`]).
//!
//! So a committed transaction is equivalent to running it whole at its
//! place in the log: serializable (and linearizable: the place is
//! between the client's BEGIN and COMMIT). Statements whose outcome does
//! not depend on a concurrent change (`UPDATE t SET n = n + 1 WHERE id =
//! 1` still updates one row) commit without conflict.

use std::collections::BTreeMap;

use sqlparser::ast;
use storage::{Overlay, Reader, Snapshot, Writes};

use crate::cancel::{Cancellable, Canceller};
use crate::command::{Checked, Outcome, Ran, Rows, SqlCommand, Step};
use crate::copy::{self, CopyFrom};
use crate::copy_in::CopyIn;
use crate::datetime::{self, StatementTime};
use crate::error::{code, Error, Result, SqlError};
use crate::identity::Identity;
use crate::plan::OutputColumn;
use crate::prepare::{self, Prepared};
use crate::read_set::{Deferral, Deferred, OnLimit, Recorder, WriteSet};
use crate::service::{run_blocking, run_query, Sql};
use crate::types::DataType;
use crate::value::Value;
use crate::{parse, write};

/// Where the session is, as ReadyForQuery reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Idle,
    InTransaction,
    /// A statement of the transaction failed: only ROLLBACK (or COMMIT,
    /// which rolls back) ends it.
    Failed,
}

/// One client's session. Not shared: a connection owns it.
pub struct Session {
    sql: Sql,
    /// Stops the running statement on a client's cancel request.
    canceller: Canceller,
    transaction: Option<Transaction>,
    /// Run-time parameters changed by SET.
    settings: BTreeMap<String, String>,
    identity: Identity,
    /// A COPY FROM STDIN receiving the client's data.
    copy: Option<CopyIn>,
}

struct Transaction {
    /// BEGIN opened it; else it is a multi-statement string's.
    explicit: bool,
    read_only: bool,
    failed: bool,
    /// The snapshot its statements read, from the first statement on.
    snapshot: Option<Snapshot>,
    writes: Writes,
    /// Its statements so far, each with what it read and wrote.
    steps: Vec<Step>,
    wrote: bool,
    savepoints: Vec<Savepoint>,
    /// The time its statements run at (`now()`), fixed when it began and
    /// logged with its commit so that apply runs them at the same time.
    now_micros: i64,
    /// The stages of its COPY statements, with each statement's text,
    /// dropped when it ends unless it commits them (a
    /// committed COPY has already deleted its own).
    stages: Vec<(u128, String)>,
}

/// The transaction as it was when SAVEPOINT named it.
struct Savepoint {
    name: String,
    steps: usize,
    writes: Writes,
    wrote: bool,
}

impl Transaction {
    fn new(explicit: bool) -> Transaction {
        Transaction {
            explicit,
            read_only: false,
            failed: false,
            snapshot: None,
            writes: Writes::default(),
            steps: Vec::new(),
            wrote: false,
            savepoints: Vec::new(),
            now_micros: datetime::wall_clock_micros(),
            stages: Vec::new(),
        }
    }
}

fn aborted() -> SqlError {
    SqlError::new(
        code::IN_FAILED_SQL_TRANSACTION,
        "current transaction is aborted, commands ignored until end of transaction block",
    )
}

/// Run-time parameters SHOW knows, with their values when not SET.
pub(crate) const PARAMETERS: &[(&str, &str)] = &[
    ("application_name", ""),
    ("client_encoding", "UTF8"),
    ("client_min_messages", "notice"),
    ("datestyle", "ISO, MDY"),
    ("default_transaction_isolation", "serializable"),
    ("extra_float_digits", "1"),
    ("integer_datetimes", "on"),
    ("intervalstyle", "postgres"),
    ("lock_timeout", "0"),
    ("search_path", "\"$user\", public"),
    ("server_encoding", "UTF8"),
    ("server_version", "15.0"),
    ("standard_conforming_strings", "on"),
    ("statement_timeout", "0"),
    ("timezone", "UTC"),
    ("transaction_isolation", "serializable"),
];

impl Session {
    pub(crate) fn new(sql: Sql) -> Session {
        Session {
            sql,
            canceller: Canceller::default(),
            transaction: None,
            settings: BTreeMap::new(),
            identity: Identity::default(),
            copy: None,
        }
    }

    /// The user and database the connection named at startup.
    pub fn set_identity(&mut self, user: &str, database: &str) {
        if self.identity.user != user || self.identity.database != database {
            self.identity = Identity { user: user.to_string(), database: database.to_string() };
        }
    }

    /// What a cancel request for this session uses.
    pub fn canceller(&self) -> Canceller {
        self.canceller.clone()
    }

    pub fn status(&self) -> Status {
        match &self.transaction {
            Some(t) if t.explicit && t.failed => Status::Failed,
            Some(t) if t.explicit => Status::InTransaction,
            _ => Status::Idle,
        }
    }

    /// Runs the statements of `sql` in order, stopping at the first that
    /// fails: its error is the last result. Several statements outside a
    /// transaction block are one implicit transaction.
    pub async fn execute(&mut self, sql: &str) -> Vec<Result<Outcome>> {
        self.canceller.reset();
        let _timeout = self.statement_timeout();
        let statements = match parse::statements(sql) {
            Ok(statements) => statements,
            Err(error) => {
                self.fail();
                return vec![Err(error.into())];
            }
        };
        if statements.len() > 1 && statements.iter().any(is_copy_from_stdin) {
            self.fail();
            let message = "COPY FROM STDIN must be the only statement of its query string";
            return vec![Err(SqlError::unsupported(message).into())];
        }
        if statements.len() > 1 && self.transaction.is_none() {
            self.transaction = Some(Transaction::new(false));
        }
        let mut results = Vec::with_capacity(statements.len());
        for statement in statements {
            let result = self.statement(statement).await;
            let failed = result.is_err();
            results.push(result);
            if failed {
                break;
            }
        }
        if self.transaction.as_ref().is_some_and(|t| !t.explicit) {
            if results.last().is_some_and(|r| r.is_err()) {
                self.transaction = None;
            } else if let Err(error) = self.commit().await {
                results.push(Err(error));
            }
        }
        results
    }

    /// Prepares the one statement of `sql` (the extended protocol's
    /// Parse), against what this session sees: inside a transaction, its
    /// snapshot and own writes.
    pub async fn prepare(&mut self, sql: &str, declared: &[Option<DataType>]) -> Result<Prepared> {
        match &mut self.transaction {
            Some(transaction) if !transaction.failed => {
                let snapshot = snapshot_of(&self.sql, transaction).await?;
                let mut view = Overlay::new(&snapshot);
                view.extend(std::mem::take(&mut transaction.writes));
                let _time = StatementTime::enter(transaction.now_micros);
                let prepared = prepare::describe(&view, sql, declared, &self.identity);
                transaction.writes = view.into_writes();
                transaction.snapshot = Some(snapshot);
                prepared
            }
            _ => {
                let snapshot = self.sql.snapshot_for(None).await?;
                prepare::describe(&snapshot, sql, declared, &self.identity)
            }
        }
    }

    /// Runs a prepared statement with its parameters' values.
    pub async fn execute_prepared(&mut self, prepared: &Prepared, values: Vec<Value>) -> Result<Outcome> {
        self.canceller.reset();
        let _timeout = self.statement_timeout();
        let statement = prepared.with_values(values)?;
        self.statement(statement).await
    }

    fn fail(&mut self) {
        if let Some(transaction) = &mut self.transaction {
            transaction.failed = true;
        }
    }

    async fn statement(&mut self, mut statement: ast::Statement) -> Result<Outcome> {
        self.identity.substitute(&mut statement);
        let result = self.dispatch(statement).await;
        if result.is_err() {
            self.fail();
        }
        result
    }

    async fn dispatch(&mut self, statement: ast::Statement) -> Result<Outcome> {
        use ast::Statement as S;
        match statement {
            S::StartTransaction { modes, .. } => self.begin(&modes),
            S::Commit { chain: false, .. } => self.commit().await,
            S::Rollback { chain: false, savepoint: None } => {
                if let Some(transaction) = self.transaction.take() {
                    self.unstage(transaction.stages.into_iter().map(|(stage, _)| stage).collect()).await;
                }
                Ok(Outcome::command("ROLLBACK"))
            }
            S::Rollback { chain: false, savepoint: Some(name) } => self.rollback_to(&name),
            S::Savepoint { name } => self.savepoint(&name),
            S::ReleaseSavepoint { name } => self.release(&name),
            _ if self.transaction.as_ref().is_some_and(|t| t.failed) => Err(aborted().into()),
            S::ShowVariable { variable } => self.show(&variable),
            S::Copy { .. } if copy::refuse_server_files(&statement).is_err() => {
                Err(copy::refuse_server_files(&statement).unwrap_err().into())
            }
            S::Copy { payload: Some(_), .. } => Err(SqlError::new(
                code::SYNTAX_ERROR,
                "COPY data must follow as CopyData messages, not in the query string",
            )
            .into()),
            S::Copy { to: false, .. } => self.begin_copy(&statement).await,
            S::Vacuum(_) if self.transaction.is_some() => {
                Err(SqlError::new(code::ACTIVE_SQL_TRANSACTION, "VACUUM cannot run inside a transaction block").into())
            }
            S::Set(set) => self.set(set),
            S::Reset(reset) => self.reset(reset.reset),
            statement => match self.transaction.is_some() {
                true => self.in_transaction(statement).await,
                false => self.sql.autocommit(statement, &self.canceller).await,
            },
        }
    }

    fn begin(&mut self, modes: &[ast::TransactionMode]) -> Result<Outcome> {
        // BEGIN inside a multi-statement string makes its implicit
        // transaction a block; inside a block, PostgreSQL only warns.
        let transaction = self.transaction.get_or_insert_with(|| Transaction::new(true));
        transaction.explicit = true;
        for mode in modes {
            if let ast::TransactionMode::AccessMode(access) = mode {
                transaction.read_only = *access == ast::TransactionAccessMode::ReadOnly;
            }
        }
        Ok(Outcome::command("BEGIN"))
    }

    /// Ends the transaction: proposes it if it wrote, answers 40001 if
    /// a concurrent commit changed what it saw.
    async fn commit(&mut self) -> Result<Outcome> {
        let Some(transaction) = self.transaction.take() else {
            return Ok(Outcome::command("COMMIT"));
        };
        let Transaction { steps, now_micros, failed, wrote, stages, .. } = transaction;
        // A committed COPY deletes its own stage; the others (rolled back
        // to a savepoint, or all of them if the commit fails) are dropped.
        let uncommitted: Vec<u128> = stages
            .iter()
            .filter(|(_, sql)| !steps.iter().any(|step| &step.checked.sql == sql))
            .map(|(stage, _)| *stage)
            .collect();
        let all: Vec<u128> = stages.into_iter().map(|(stage, _)| stage).collect();
        let outcome = match (failed, wrote) {
            (true, _) => Ok(Outcome::command("ROLLBACK")),
            (false, false) => Ok(Outcome::command("COMMIT")),
            (false, true) => self.sql.propose(SqlCommand::CommitSteps { steps, now_micros }).await,
        };
        let committed =
            !failed && wrote && matches!(&outcome, Ok(Outcome::Command { command, .. }) if command == "COMMIT");
        self.unstage(if committed { uncommitted } else { all }).await;
        outcome
    }

    /// Begins COPY FROM STDIN: checks the table and options and answers
    /// how many columns the client sends; its data then comes through
    /// [`Session::copy_data`].
    async fn begin_copy(&mut self, statement: &ast::Statement) -> Result<Outcome> {
        if self.transaction.as_ref().is_some_and(|t| t.read_only) {
            let message = "cannot execute COPY FROM in a read-only transaction";
            return Err(SqlError::new(code::READ_ONLY_SQL_TRANSACTION, message).into());
        }
        let bound = match &mut self.transaction {
            Some(transaction) => {
                let snapshot = snapshot_of(&self.sql, transaction).await?;
                let mut view = Overlay::new(&snapshot);
                view.extend(std::mem::take(&mut transaction.writes));
                let bound = CopyFrom::bind(&view, statement);
                transaction.writes = view.into_writes();
                transaction.snapshot = Some(snapshot);
                bound?
            }
            None => CopyFrom::bind(&self.sql.snapshot_for(None).await?, statement)?,
        };
        let copy = CopyIn::new(statement, bound, self.transaction.is_some());
        let columns = copy.bound.width();
        self.copy = Some(copy);
        Ok(Outcome::CopyIn { columns })
    }

    /// A piece of a COPY's data (a CopyData message). An error is kept
    /// for [`Session::copy_done`], as PostgreSQL reports it once the data
    /// ends; the rest of the data is then ignored.
    pub async fn copy_data(&mut self, data: &[u8]) {
        let Some(copy) = &mut self.copy else { return };
        if let Some((seq, chunk)) = copy.data(data) {
            let stage = copy.stage;
            if let Err(error) = self.sql.propose(SqlCommand::Stage { stage, seq, data: chunk }).await {
                if let Some(copy) = &mut self.copy {
                    copy.fail(staging_failed(error));
                }
            }
        }
    }

    /// The end of a COPY's data (CopyDone): runs the statement.
    pub async fn copy_done(&mut self) -> Result<Outcome> {
        let Some(mut copy) = self.copy.take() else {
            return Err(SqlError::new(code::PROTOCOL_VIOLATION, "CopyDone without COPY FROM STDIN").into());
        };
        let stage = copy.stage;
        let result = self.finish_copy(&mut copy).await;
        if result.is_err() {
            self.fail();
            if self.transaction.is_none() {
                self.unstage(vec![stage]).await;
            }
        }
        result
    }

    /// The client abandoned its COPY (CopyFail with its message).
    pub async fn copy_fail(&mut self, message: &str) -> Error {
        if let Some(copy) = self.copy.take() {
            if self.transaction.is_none() {
                self.unstage(vec![copy.stage]).await;
            }
        }
        self.fail();
        SqlError::new(code::QUERY_CANCELED, format!("COPY from stdin failed: {message}")).into()
    }

    async fn finish_copy(&mut self, copy: &mut CopyIn) -> Result<Outcome> {
        if let Some(transaction) = &mut self.transaction {
            transaction.stages.push((copy.stage, copy.staged.to_string()));
        }
        if let Some((seq, chunk)) = copy.finish()? {
            let stage = copy.stage;
            self.sql.propose(SqlCommand::Stage { stage, seq, data: chunk }).await?;
        }
        if self.transaction.is_none() {
            return self.sql.propose(SqlCommand::Execute { sql: copy.staged.to_string() }).await;
        }
        let chunks = copy::Chunks::Held(copy.take_kept());
        let (staged, stage) = (&copy.staged, copy.stage);
        self.in_transaction_with(Kind::Writes, staged.to_string(), |view| {
            run_blocking(|| copy::load(view, &CopyFrom::bind(&*view, staged)?, stage, chunks))
        })
        .await
    }

    /// Proposes dropping `stages` (best effort: a stage left behind by a
    /// failure here only takes space).
    async fn unstage(&self, stages: Vec<u128>) {
        for stage in stages {
            if let Err(error) = self.sql.propose(SqlCommand::Unstage { stage }).await {
                tracing::warn!(%error, "a COPY's staged data was not dropped");
            }
        }
    }

    fn open(&mut self, what: &str) -> Result<&mut Transaction> {
        self.transaction.as_mut().filter(|t| t.explicit).ok_or_else(|| {
            SqlError::new(code::NO_ACTIVE_SQL_TRANSACTION, format!("{what} can only be used in transaction blocks"))
                .into()
        })
    }

    fn savepoint(&mut self, name: &ast::Ident) -> Result<Outcome> {
        let transaction = self.open("SAVEPOINT")?;
        if transaction.failed {
            return Err(aborted().into());
        }
        let savepoint = Savepoint {
            name: crate::bind::ident(name),
            steps: transaction.steps.len(),
            writes: transaction.writes.clone(),
            wrote: transaction.wrote,
        };
        transaction.savepoints.push(savepoint);
        Ok(Outcome::command("SAVEPOINT"))
    }

    /// The position of savepoint `name` (the latest of that name).
    fn find_savepoint(transaction: &Transaction, name: &ast::Ident) -> Result<usize> {
        let name = crate::bind::ident(name);
        transaction.savepoints.iter().rposition(|s| s.name == name).ok_or_else(|| {
            SqlError::new(code::INVALID_SAVEPOINT_SPECIFICATION, format!("savepoint \"{name}\" does not exist")).into()
        })
    }

    fn rollback_to(&mut self, name: &ast::Ident) -> Result<Outcome> {
        let transaction = self.open("ROLLBACK TO SAVEPOINT")?;
        let position = Self::find_savepoint(transaction, name)?;
        transaction.savepoints.truncate(position + 1);
        let savepoint = &transaction.savepoints[position];
        transaction.steps.truncate(savepoint.steps);
        transaction.writes = savepoint.writes.clone();
        transaction.wrote = savepoint.wrote;
        transaction.failed = false;
        Ok(Outcome::command("ROLLBACK"))
    }

    fn release(&mut self, name: &ast::Ident) -> Result<Outcome> {
        let transaction = self.open("RELEASE SAVEPOINT")?;
        if transaction.failed {
            return Err(aborted().into());
        }
        let position = Self::find_savepoint(transaction, name)?;
        transaction.savepoints.truncate(position);
        Ok(Outcome::command("RELEASE"))
    }

    /// A statement inside a transaction, on its snapshot and writes.
    async fn in_transaction(&mut self, statement: ast::Statement) -> Result<Outcome> {
        let transaction = self.transaction.as_mut().expect("checked by the caller");
        let kind = match &statement {
            ast::Statement::Query(_)
            | ast::Statement::Explain { .. }
            | ast::Statement::Copy { to: true, .. }
            | ast::Statement::Analyze(_) => Kind::Reads,
            ast::Statement::Insert(insert) if insert.on.is_none() => Kind::PlainInsert,
            _ => Kind::Writes,
        };
        let reads = kind == Kind::Reads;
        if transaction.read_only && !reads {
            let message = format!("cannot execute {} in a read-only transaction", command_name(&statement));
            return Err(SqlError::new(code::READ_ONLY_SQL_TRANSACTION, message).into());
        }
        // COMMIT runs the statement's text again; here it runs parsed (the
        // text is its AST's display, which parses back to the same AST).
        // A query leaves the async worker unless it is a point read; a
        // write's rows are mostly few, and handing the worker over would
        // cost more than they do.
        let sql = statement.to_string();
        self.in_transaction_with(kind, sql, |own| match reads {
            true => read(own, statement),
            false => write::run(own, statement).map(|effects| effects.outcome),
        })
        .await
    }

    /// Runs `run` on the transaction's snapshot and writes, as statement
    /// `sql`, recording what it reads of them and writes; if it succeeds,
    /// its writes join the transaction's, and it is kept for COMMIT with
    /// its outcome's digest and that record.
    async fn in_transaction_with(
        &mut self,
        kind: Kind,
        sql: String,
        run: impl FnOnce(&mut Overlay<'_, Recorder<&Overlay<'_, Snapshot>>>) -> Result<Outcome>,
    ) -> Result<Outcome> {
        let transaction = self.transaction.as_mut().expect("checked by the caller");
        let snapshot = snapshot_of(&self.sql, transaction).await?;
        let mut view = Overlay::new(&snapshot);
        view.extend(std::mem::take(&mut transaction.writes));
        let _time = StatementTime::enter(transaction.now_micros);
        let _cancellable = Cancellable::enter(&self.canceller);
        let recorder = Recorder::new(&view, OnLimit::KeepReading);
        let mut own = Overlay::new(&recorder);
        let deferral = (kind == Kind::PlainInsert).then(Deferral::enter_visible);
        let result = run(&mut own);
        let Deferred { rows: deferred, provisional } = deferral.map(Deferral::take).unwrap_or_default();
        let writes = own.into_writes();
        let read = recorder.into_reads();
        let step = result.map(|outcome| {
            let ran = read.zip(WriteSet::of_all_but(&writes, &provisional));
            let ran = ran.map(|(reads, writes)| Ran { reads, writes, deferred });
            view.extend(writes);
            (Step { checked: Checked { sql, digest: outcome.digest() }, ran }, outcome)
        });
        transaction.writes = view.into_writes();
        transaction.snapshot = Some(snapshot);
        let (step, outcome) = step?;
        transaction.wrote |= kind != Kind::Reads;
        transaction.steps.push(step);
        Ok(outcome)
    }

    fn show(&self, variable: &[ast::Ident]) -> Result<Outcome> {
        let name: Vec<String> = variable.iter().map(crate::bind::ident).collect();
        let name = name.join(" ");
        let value = match name.as_str() {
            "transaction isolation level" => "serializable".to_string(),
            "transaction_read_only" => {
                if self.transaction.as_ref().is_some_and(|t| t.read_only) { "on" } else { "off" }.to_string()
            }
            _ => self.setting(&name)?,
        };
        let column = match name.as_str() {
            "transaction isolation level" => "transaction_isolation".to_string(),
            _ => name,
        };
        Ok(Outcome::Rows(Rows {
            columns: vec![OutputColumn { name: column, data_type: DataType::Text }],
            rows: vec![vec![Value::Text(value)]],
            command: "SHOW".into(),
        }))
    }

    fn setting(&self, name: &str) -> Result<String> {
        if let Some(value) = self.settings.get(name) {
            return Ok(value.clone());
        }
        PARAMETERS.iter().find(|(known, _)| *known == name).map(|(_, value)| value.to_string()).ok_or_else(|| {
            SqlError::new(code::UNDEFINED_OBJECT, format!("unrecognized configuration parameter \"{name}\"")).into()
        })
    }

    /// A timer that stops the statement about to run once
    /// `statement_timeout` passes (none when it is 0); dropping it
    /// disarms it.
    fn statement_timeout(&self) -> Option<AbortOnDrop> {
        let millis = self.settings.get("statement_timeout").and_then(|v| duration_millis(v).ok()).unwrap_or(0);
        if millis == 0 {
            return None;
        }
        let handle = tokio::runtime::Handle::try_current().ok()?;
        let canceller = self.canceller.clone();
        Some(AbortOnDrop(handle.spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
            canceller.time_out();
        })))
    }

    fn reset(&mut self, reset: ast::Reset) -> Result<Outcome> {
        match reset {
            ast::Reset::ALL => self.settings.clear(),
            ast::Reset::ConfigurationParameter(name) => {
                let name = crate::bind::object_name(&name)?;
                self.setting(&name)?;
                self.settings.remove(&name);
            }
            // There is no SET SESSION AUTHORIZATION to undo.
            ast::Reset::SessionAuthorization => {}
        }
        Ok(Outcome::command("RESET"))
    }

    fn set(&mut self, set: ast::Set) -> Result<Outcome> {
        match set {
            // Every isolation level runs as SERIALIZABLE, which is allowed
            // to be stronger than asked.
            ast::Set::SetTransaction { modes, snapshot: None, .. } => {
                if let Some(transaction) = &mut self.transaction {
                    for mode in modes {
                        if let ast::TransactionMode::AccessMode(access) = mode {
                            transaction.read_only = access == ast::TransactionAccessMode::ReadOnly;
                        }
                    }
                }
                Ok(Outcome::command("SET"))
            }
            ast::Set::SingleAssignment { variable, values, .. } => {
                let name = crate::bind::object_name(&variable)?;
                self.setting(&name)?;
                if name == "transaction_isolation" || name == "default_transaction_isolation" {
                    return Ok(Outcome::command("SET"));
                }
                let value: Vec<String> = values.iter().map(setting_text).collect();
                let value = value.join(", ");
                if name == "statement_timeout" {
                    duration_millis(&value)?;
                }
                self.settings.insert(name, value);
                Ok(Outcome::command("SET"))
            }
            ast::Set::SetTimeZone { value, .. } => {
                self.settings.insert("timezone".into(), setting_text(&value));
                Ok(Outcome::command("SET"))
            }
            other => Err(SqlError::unsupported(format!("{other}")).into()),
        }
    }
}

/// A failed proposal of COPY data, as the COPY's error.
fn staging_failed(error: Error) -> SqlError {
    match error {
        Error::Sql(error) => error,
        other => SqlError::new(code::CONNECTION_FAILURE, format!("COPY's data was not replicated: {other}")),
    }
}

/// What a statement of a transaction does, as far as running it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// It only reads.
    Reads,
    /// A plain INSERT: rows of a table without a primary key are left to
    /// apply to store under ids it draws ([`Deferral::enter_visible`]).
    PlainInsert,
    /// It writes.
    Writes,
}

/// The snapshot of `transaction`: the one its first statement took, after
/// the read barrier.
async fn snapshot_of(sql: &Sql, transaction: &mut Transaction) -> Result<Snapshot> {
    match transaction.snapshot.take() {
        Some(snapshot) => Ok(snapshot),
        None => sql.snapshot_for(None).await,
    }
}

/// A query, EXPLAIN, COPY TO or ANALYZE inside a transaction.
fn read<R: Reader>(view: &mut Overlay<'_, R>, statement: ast::Statement) -> Result<Outcome> {
    match statement {
        ast::Statement::Query(query) => run_query(&*view, &query),
        other => run_blocking(|| write::run(view, other)).map(|effects| effects.outcome),
    }
}

fn is_copy_from_stdin(statement: &ast::Statement) -> bool {
    matches!(statement, ast::Statement::Copy { to: false, target: ast::CopyTarget::Stdin, .. })
}

/// What a session's connection closing leaves: its open transaction's
/// stages and its COPY's are dropped (by a task: dropping cannot wait).
impl Drop for Session {
    fn drop(&mut self) {
        let mut stages: Vec<u128> =
            self.transaction.take().map(|t| t.stages.into_iter().map(|(stage, _)| stage).collect()).unwrap_or_default();
        stages.extend(self.copy.take().map(|copy| copy.stage));
        if stages.is_empty() {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let sql = self.sql.clone();
            handle.spawn(async move {
                for stage in stages {
                    if let Err(error) = sql.propose(SqlCommand::Unstage { stage }).await {
                        tracing::warn!(%error, "a closed session's staged COPY data was not dropped");
                    }
                }
            });
        }
    }
}

/// A task aborted when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A duration setting in milliseconds: a number (milliseconds) or one
/// with PostgreSQL's units (`us`, `ms`, `s`, `min`, `h`, `d`).
fn duration_millis(value: &str) -> Result<u64> {
    let invalid = || SqlError::new(code::INVALID_PARAMETER_VALUE, format!("invalid value for parameter: \"{value}\""));
    let trimmed = value.trim();
    let split = trimmed.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: f64 = number.parse().map_err(|_| invalid())?;
    let per_unit = match unit.trim() {
        "" | "ms" => 1.0,
        "us" => 0.001,
        "s" => 1000.0,
        "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return Err(invalid().into()),
    };
    Ok((number * per_unit).round() as u64)
}

/// A SET value as SHOW prints it: a quoted string without its quotes.
fn setting_text(expr: &ast::Expr) -> String {
    match expr {
        ast::Expr::Value(ast::ValueWithSpan { value: ast::Value::SingleQuotedString(s), .. }) => s.clone(),
        other => other.to_string(),
    }
}

/// The command a statement is, as PostgreSQL names it in errors.
fn command_name(statement: &ast::Statement) -> String {
    statement.to_string().split_whitespace().next().unwrap_or_default().to_uppercase()
}
