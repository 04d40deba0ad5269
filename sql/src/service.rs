//! The SQL service handle: statements from a frontend, reads on the
//! linearizable read path, writes through the `sql/0` log.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use raft::{Bootstrap, Clock, Group, GroupId, GroupSettings, RaftNode};
use sqlparser::ast;
use storage::Store;

use crate::command::{Outcome, Rows, SqlCommand};
use crate::error::{code, Error, Result, SqlError};
use crate::machine::SqlMachine;
use crate::{exec, parse, query};

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

    /// Runs the statements of `sql` in order, each on its own (autocommit),
    /// stopping at the first that fails: its error is the last result.
    pub async fn execute(&self, sql: &str) -> Vec<Result<Outcome>> {
        let statements = match parse::statements(sql) {
            Ok(statements) => statements,
            Err(error) => return vec![Err(error.into())],
        };
        let mut results = Vec::with_capacity(statements.len());
        for statement in statements {
            let result = self.statement(statement).await;
            let failed = result.is_err();
            results.push(result);
            if failed {
                break;
            }
        }
        results
    }

    async fn statement(&self, statement: ast::Statement) -> Result<Outcome> {
        match statement {
            ast::Statement::Query(query) => self.read(&query).await,
            ast::Statement::CreateTable(_)
            | ast::Statement::Drop { .. }
            | ast::Statement::Insert(_)
            | ast::Statement::Update(_)
            | ast::Statement::Delete(_) => self.write(statement.to_string()).await,
            ast::Statement::StartTransaction { .. }
            | ast::Statement::Commit { .. }
            | ast::Statement::Rollback { .. }
            | ast::Statement::Savepoint { .. } => Err(SqlError::new(
                code::FEATURE_NOT_SUPPORTED,
                "explicit transactions (BEGIN, COMMIT, ROLLBACK, SAVEPOINT) are not supported by Seshat yet: every \
                 statement commits on its own",
            )
            .into()),
            other => {
                let text = other.to_string();
                let words: Vec<&str> = text.split_whitespace().take(2).collect();
                Err(SqlError::unsupported(format!("the statement {}", words.join(" "))).into())
            }
        }
    }

    /// A query, after the read barrier, on one snapshot.
    async fn read(&self, query: &ast::Query) -> Result<Outcome> {
        self.inner.group.read_barrier().await?;
        let snapshot = self.inner.store.snapshot();
        let plan = query::plan(&snapshot, query)?;
        let rows = exec::select(&snapshot, &plan)?;
        Ok(Outcome::Rows(Rows { columns: plan.columns, rows, command: "SELECT".into() }))
    }

    async fn write(&self, sql: String) -> Result<Outcome> {
        let response = self.inner.group.propose(Bytes::from(SqlCommand::Execute { sql }.encode())).await?;
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
