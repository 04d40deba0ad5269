//! The SQL service handle: statements from a frontend, reads on the
//! linearizable read path, writes through the `sql/0` log.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use raft::{Bootstrap, Clock, Group, GroupId, GroupSettings, RaftNode};
use sqlparser::ast;
use storage::{Overlay, Reader, Snapshot, Store};

use crate::cancel::{Cancellable, Canceller};
use crate::command::{Outcome, Rows, SqlCommand};
use crate::datetime::{wall_clock_micros, StatementTime};
use crate::error::{code, Error, Result, SqlError};
use crate::machine::SqlMachine;
use crate::read_set::{Deferral, OnLimit, Recorder, WriteSet};
use crate::session::Session;
use crate::{exec, query, write};

/// How the `sql/0` group runs on this node.
pub struct SqlStart<'a> {
    pub node: &'a RaftNode,
    pub store: Store,
    pub snapshot_dir: PathBuf,
    pub settings: GroupSettings,
    pub bootstrap: Bootstrap,
    pub clock: Arc<dyn Clock>,
}

/// The SQL service of this node. Cheap to clone.
#[derive(Clone)]
pub struct Sql {
    inner: Arc<Inner>,
}

struct Inner {
    group: Group,
    store: Store,
}

impl Sql {
    /// Opens the service on `start.store` and starts its group `sql/0`.
    pub async fn start(start: SqlStart<'_>) -> Result<Sql> {
        let machine = SqlMachine::open(start.store.clone())?;
        let group = Group::start(
            start.node,
            GroupId { service: "sql", shard: 0 },
            start.store.clone(),
            machine,
            start.snapshot_dir,
            start.settings,
            start.clock,
            start.bootstrap,
        )
        .await
        .map_err(|error| Error::Corrupt(format!("the sql group did not start: {error}")))?;
        Ok(Sql { inner: Arc::new(Inner { group, store: start.store }) })
    }

    /// A new client session.
    pub fn session(&self) -> Session {
        Session::new(self.clone())
    }

    /// `snapshot`, or, without one, a snapshot taken after the read
    /// barrier: it has every write acknowledged before this call.
    pub(crate) async fn snapshot_for(&self, snapshot: Option<Snapshot>) -> Result<Snapshot> {
        if let Some(snapshot) = snapshot {
            return Ok(snapshot);
        }
        self.inner.group.read_barrier().await?;
        Ok(self.inner.store.snapshot())
    }

    /// A statement on its own, outside a transaction block.
    /// Queries stop when `canceller` is used; writes, once proposed, do not.
    pub(crate) async fn autocommit(&self, statement: ast::Statement, canceller: &Canceller) -> Result<Outcome> {
        match statement {
            ast::Statement::Query(query) => self.read(&query, canceller).await,
            ast::Statement::Explain { statement, analyze, format: None, options: None, .. } => {
                let snapshot = self.snapshot_for(None).await?;
                run_blocking(|| {
                    let _time = StatementTime::enter(wall_clock_micros());
                    let _cancellable = Cancellable::enter(canceller);
                    write::explain(&snapshot, &statement, analyze)
                })
            }
            ast::Statement::Copy { to: true, .. } | ast::Statement::Vacuum(_) | ast::Statement::Analyze(_) => {
                let snapshot = self.snapshot_for(None).await?;
                run_blocking(|| {
                    let _time = StatementTime::enter(wall_clock_micros());
                    let _cancellable = Cancellable::enter(canceller);
                    write::run(&mut Overlay::new(&snapshot), statement).map(|effects| effects.outcome)
                })
            }
            ast::Statement::CreateTable(_)
            | ast::Statement::CreateIndex(_)
            | ast::Statement::CreateView(_)
            | ast::Statement::Drop { .. }
            | ast::Statement::Truncate(_)
            | ast::Statement::AlterTable(_) => self.propose(SqlCommand::Execute { sql: statement.to_string() }).await,
            ast::Statement::Insert(_) | ast::Statement::Update(_) | ast::Statement::Delete(_) => {
                let sql = statement.to_string();
                let command = match self.run_ahead(statement, &sql) {
                    Some(command) => command,
                    None => SqlCommand::Execute { sql },
                };
                self.propose(command).await
            }
            other => {
                let text = other.to_string();
                let words: Vec<&str> = text.split_whitespace().take(2).collect();
                Err(SqlError::unsupported(format!("the statement {}", words.join(" "))).into())
            }
        }
    }

    /// A writing statement run ahead on this node's state, with what it
    /// read and wrote ([`crate::read_set`]), so that apply need not run
    /// it again; `None` when it must go by its text: it failed (this
    /// node's state may be behind the log's), read the time, dropped a
    /// table, or read or wrote more than is recorded.
    fn run_ahead(&self, statement: ast::Statement, sql: &str) -> Option<SqlCommand> {
        let recorder = Recorder::new(self.inner.store.snapshot(), OnLimit::Abandon);
        let mut view = Overlay::new(&recorder);
        let time = StatementTime::enter(wall_clock_micros());
        // A plain INSERT leaves rows of tables without a primary key to
        // apply (an upsert reads what it inserted: it draws ahead).
        let deferral =
            matches!(&statement, ast::Statement::Insert(insert) if insert.on.is_none()).then(Deferral::enter);
        let effects = write::run(&mut view, statement).ok()?;
        let deferred = deferral.map(|deferral| deferral.take().rows).unwrap_or_default();
        if time.was_read() || !effects.dropped.is_empty() {
            return None;
        }
        let writes = WriteSet::of(&view.into_writes())?;
        let reads = recorder.into_reads()?;
        Some(SqlCommand::ExecuteRead { sql: sql.to_string(), reads, writes, deferred, outcome: effects.outcome })
    }

    /// A query, after the read barrier, on one snapshot.
    async fn read(&self, query: &ast::Query, canceller: &Canceller) -> Result<Outcome> {
        self.inner.group.read_barrier().await?;
        let snapshot = self.inner.store.snapshot();
        // The whole query runs at one time (`now()`).
        let _time = StatementTime::enter(wall_clock_micros());
        let _cancellable = Cancellable::enter(canceller);
        run_query(&snapshot, query)
    }

    /// Proposes `command` to `sql/0`; its outcome once applied.
    pub(crate) async fn propose(&self, command: SqlCommand) -> Result<Outcome> {
        let response = self.inner.group.propose(Bytes::from(command.encode())).await?;
        let response: std::result::Result<Outcome, SqlError> = postcard::from_bytes(&response)
            .map_err(|e| SqlError::new(code::INTERNAL_ERROR, format!("undecodable response: {e}")))?;
        Ok(response?)
    }

    /// The `sql/0` group.
    pub fn group(&self) -> &Group {
        &self.inner.group
    }

    /// Resolves with the reason if the service stops on a fatal error.
    pub async fn fatal(&self) -> String {
        self.inner.group.fatal().await
    }

    /// Stops the group; writes still queued fail.
    pub async fn shutdown(&self) {
        self.inner.group.shutdown().await;
    }
}

/// Plans and runs `query` on `view`: on the async worker when it reads at
/// most one row (handing the worker over costs more than a point read),
/// off it otherwise.
pub(crate) fn run_query(view: &impl Reader, query: &ast::Query) -> Result<Outcome> {
    let plan = query::plan(view, query)?;
    let rows = match plan.reads_at_most_one_row() {
        true => exec::query(view, &plan)?,
        false => run_blocking(|| exec::query(view, &plan))?,
    };
    Ok(Outcome::Rows(Rows { columns: plan.columns().to_vec(), rows, command: "SELECT".into() }))
}

/// A statement's long synchronous part (binding, reading, joining),
/// off the runtime's worker: other clients, Raft's heartbeats and a
/// cancel request keep going during a long query.
pub(crate) use raft::run_blocking;
