//! The sqllogictest files (`tests/slt/*.slt`) run against Seshat and
//! against a real PostgreSQL 15: the expected results in the files are
//! PostgreSQL's, and Seshat must give the same.
//!
//! Each file runs on a fresh database: a new Seshat node, and a new
//! database of one PostgreSQL server. Statements go through the simple
//! query protocol; values compare as PostgreSQL's text output (NULL as
//! `NULL`); an expected error is a regex over `message (SQLSTATE code)`.
//! The labels `seshat` and `postgres` name the engine for `skipif` and
//! `onlyif`.

use std::path::PathBuf;

use async_trait::async_trait;
use seshat_tests::postgres::Postgres;
use seshat_tests::Node;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};
use tokio_postgres::{Client, SimpleQueryMessage};

/// One engine's connection, as the runner drives it.
struct Engine {
    client: Client,
    name: &'static str,
}

/// An error as the files match it: message and SQLSTATE.
#[derive(Debug)]
struct EngineError(String);

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EngineError {}

impl From<tokio_postgres::Error> for EngineError {
    fn from(error: tokio_postgres::Error) -> Self {
        match error.as_db_error() {
            Some(db) => EngineError(format!("{} (SQLSTATE {})", db.message(), db.code().code())),
            None => EngineError(format!("{error} (no SQLSTATE)")),
        }
    }
}

#[async_trait]
impl AsyncDB for Engine {
    type Error = EngineError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, EngineError> {
        let mut columns = None;
        let mut rows = Vec::new();
        let mut count = 0;
        for message in self.client.simple_query(sql).await? {
            match message {
                SimpleQueryMessage::RowDescription(description) => columns = Some(description.len()),
                SimpleQueryMessage::Row(row) => {
                    rows.push((0..row.len()).map(|i| row.get(i).unwrap_or("NULL").to_string()).collect())
                }
                SimpleQueryMessage::CommandComplete(n) => count = n,
                _ => {}
            }
        }
        Ok(match columns {
            Some(width) => DBOutput::Rows { types: vec![DefaultColumnType::Any; width], rows },
            None => DBOutput::StatementComplete(count),
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        self.name
    }

    async fn sleep(duration: std::time::Duration) {
        tokio::time::sleep(duration).await
    }
}

fn files() -> Vec<PathBuf> {
    let dir = seshat_tests::package_dir().join("slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    files
}

async fn run(client: Client, name: &'static str, file: &PathBuf) -> Result<(), String> {
    let mut engine = Some(Engine { client, name });
    let mut runner = Runner::new(move || {
        let engine = engine.take().expect("one connection per file");
        async move { Ok::<_, EngineError>(engine) }
    });
    runner.add_label(name);
    runner.run_file_async(file).await.map_err(|error| format!("{name}: {}", error.display(true)))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sqllogictest_files_pass_on_seshat() {
    let mut failures = Vec::new();
    for file in files() {
        let node = Node::start(&[]).unwrap();
        if let Err(error) = run(node.pg().await.unwrap(), "seshat", &file).await {
            failures.push(error);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sqllogictest_files_pass_on_postgresql() {
    let server = Postgres::start().unwrap();
    let admin = server.connect("postgres").await.unwrap();
    let mut failures = Vec::new();
    for (i, file) in files().iter().enumerate() {
        let database = format!("slt{i}");
        admin.batch_execute(&format!("CREATE DATABASE {database}")).await.unwrap();
        if let Err(error) = run(server.connect(&database).await.unwrap(), "postgres", file).await {
            failures.push(error);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
