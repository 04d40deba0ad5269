//! A COPY FROM STDIN in progress in a session: the client's data checked
//! record by record as it arrives (so a bad line is reported with its
//! number before the rest is staged) and cut into chunks for the log
//! ([`crate::copy`] has how the statement then runs).
//!
//! Memory is bounded by a chunk and the longest record, except in a
//! transaction block, where the chunks are kept to run the statement on
//! the block's view.

use sqlparser::ast;

use crate::copy::{self, CopyFrom, CHUNK_BYTES};
use crate::copy_format::{Record, RecordReader};
use crate::error::SqlError;

pub(crate) struct CopyIn {
    /// The statement as logged: reading the stage.
    pub staged: ast::Statement,
    pub bound: CopyFrom,
    pub stage: u128,
    reader: RecordReader,
    /// Data not yet in a chunk.
    pending: Vec<u8>,
    /// Chunks handed out to stage so far.
    staged_chunks: u32,
    /// In a transaction block: every chunk handed out.
    kept: Option<Vec<Vec<u8>>>,
    /// The first error: the rest of the data is ignored.
    error: Option<SqlError>,
}

impl CopyIn {
    /// Begins `statement` (COPY FROM STDIN), bound as `bound`; `keep`
    /// keeps the chunks (in a transaction block).
    pub fn new(statement: &ast::Statement, bound: CopyFrom, keep: bool) -> CopyIn {
        let stage = rand::random::<u128>();
        let reader = RecordReader::new(bound.options.clone());
        CopyIn {
            staged: copy::staged_statement(statement, stage),
            bound,
            stage,
            reader,
            pending: Vec::new(),
            staged_chunks: 0,
            kept: keep.then(Vec::new),
            error: None,
        }
    }

    /// Takes a piece of the client's data: a full chunk to stage, with
    /// its sequence number, when one is ready.
    pub fn data(&mut self, data: &[u8]) -> Option<(u32, Vec<u8>)> {
        if self.error.is_some() {
            return None;
        }
        if let Err(error) = self.check(|reader, each| reader.feed(data, each)) {
            self.fail(error);
            return None;
        }
        self.pending.extend_from_slice(data);
        (self.pending.len() >= CHUNK_BYTES).then(|| self.chunk())
    }

    /// The end of the data: the last chunk to stage, if any, or the
    /// error that failed the COPY.
    pub fn finish(&mut self) -> Result<Option<(u32, Vec<u8>)>, SqlError> {
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        self.check(|reader, each| reader.finish(each))?;
        Ok((!self.pending.is_empty()).then(|| self.chunk()))
    }

    /// Reads records with `read` and checks that each converts to the
    /// columns' types; the first error, placed at its line.
    fn check(
        &mut self,
        read: impl FnOnce(&mut RecordReader, &mut dyn FnMut(Record, u64) -> Result<(), SqlError>) -> Result<(), SqlError>,
    ) -> Result<(), SqlError> {
        let mut records = Vec::new();
        let read = read(&mut self.reader, &mut |record, line| {
            records.push((record, line));
            Ok(())
        });
        for (record, line) in records {
            self.bound.values(record).map_err(|error| self.bound.context(error, line))?;
        }
        read.map_err(|error| self.bound.context(error, self.reader.line()))
    }

    /// Records the first error (staging failed, or a record did not read).
    pub fn fail(&mut self, error: SqlError) {
        self.error.get_or_insert(error);
        self.pending = Vec::new();
        self.kept = self.kept.as_ref().map(|_| Vec::new());
    }

    /// The chunks kept for a transaction block.
    pub fn take_kept(&mut self) -> Vec<Vec<u8>> {
        self.kept.take().unwrap_or_default()
    }

    fn chunk(&mut self) -> (u32, Vec<u8>) {
        let chunk = std::mem::take(&mut self.pending);
        if let Some(kept) = &mut self.kept {
            kept.push(chunk.clone());
        }
        let seq = self.staged_chunks;
        self.staged_chunks += 1;
        (seq, chunk)
    }
}
