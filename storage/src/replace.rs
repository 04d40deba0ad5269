//! Replacing spans of a service's families with a sorted stream of
//! entries, in bounded memory: how a follower installs a Raft snapshot of
//! one group (whose state is a list of spans, see [`crate::keyspace`]).
//!
//! [`Store::replace_spans`] writes the entries into SST files in a work
//! directory (RocksDB's `SstFileWriter`, at most [`FILE_BYTES`] each), the
//! first of each span starting with a range deletion of the whole span,
//! then ingests each span's files, moving them into the instance: one
//! ingestion replaces a span's content at once, and keys outside the spans
//! (other groups') are untouched. The data never passes through memory as
//! a whole: an SST writer holds one data block plus the index and filter
//! of its current file.
//!
//! Invariants:
//! - Nothing changes until every entry has been written to a file: a
//!   stream that fails (a corrupt or truncated snapshot, keys out of order
//!   or outside their span, an unknown span) leaves the store as it was.
//! - An ingested file gets a sequence number above everything the
//!   instance holds, so its range deletion clears the old content, and
//!   RocksDB snapshots taken before keep reading that content.
//! - Within this process the replacement is atomic: live reads and new
//!   snapshots of the store wait on its gate while the spans are ingested
//!   (the memtables are flushed before, so that takes milliseconds). Reads
//!   that do not wait for the applied index (a follower's READONLY reads)
//!   would otherwise see one span replaced and another not.
//! - Across a crash it is NOT atomic: the spans are ingested one after
//!   another, so a crash can leave some replaced and some not. Running the
//!   replacement again with the same entries gives the same content, so
//!   the caller keeps what it needs to redo it (the snapshot file) until it
//!   has returned, and redoes it before anything reads.

use std::collections::BTreeSet;
use std::iter::Peekable;
use std::path::{Path, PathBuf};

use rocksdb::{IngestExternalFileOptions, SstFileWriter};

use crate::error::{Error, Result};
use crate::failpoints;
use crate::keyspace::{Family, Span};
use crate::store::Store;
use crate::tuning;

/// The size at which an SST file is finished and the next one started. An
/// SST writer keeps the filter hashes and index entries of its file in
/// memory: for 64 MiB of 100-byte values, about 4 MiB.
const FILE_BYTES: u64 = 64 * 1024 * 1024;

/// One entry of the replacement stream: the position of its span in the
/// list being replaced, its key and its value.
pub type SpanEntry = (usize, Vec<u8>, Vec<u8>);

impl Store {
    /// Replaces the content of `spans` (of this store's service, pairwise
    /// disjoint) with `entries`, using `work_dir` (created, then removed)
    /// for the SST files. Entries come span by span, in the order of
    /// `spans`, in strictly ascending key order within their span; a span
    /// with no entries ends up empty.
    ///
    /// `entries` yields errors of its own source (e.g. reading a snapshot
    /// file) as [`Error::Io`] or [`Error::Corrupt`].
    pub fn replace_spans(
        &self,
        spans: &[Span],
        work_dir: &Path,
        entries: impl Iterator<Item = Result<SpanEntry>>,
    ) -> Result<()> {
        if let Some(span) = spans.iter().find(|span| span.family.service() != self.service()) {
            return Err(corrupt(span.family, "a span of another service's family"));
        }
        let _ = std::fs::remove_dir_all(work_dir);
        std::fs::create_dir_all(work_dir).map_err(|e| Error::io(work_dir, e))?;
        let result = self.write_files(spans, work_dir, entries).and_then(|files| self.swap_in(spans, files));
        let _ = std::fs::remove_dir_all(work_dir);
        result
    }

    /// Writes `entries` into SST files, returning each span's files (in
    /// the order of `spans`). The first file of every span (a file of its
    /// own for a span without entries) also holds a range deletion of the
    /// whole span, which clears what the instance holds when the file is
    /// ingested but not the entries of the file (RocksDB's rule for range
    /// deletions in an SST file) nor of the span's later files.
    fn write_files(
        &self,
        spans: &[Span],
        work_dir: &Path,
        entries: impl Iterator<Item = Result<SpanEntry>>,
    ) -> Result<Vec<Vec<PathBuf>>> {
        let mut entries = entries.peekable();
        let mut files: Vec<Vec<PathBuf>> = vec![Vec::new(); spans.len()];
        let mut current: Option<usize> = None;
        while let Some(first) = entries.next() {
            let (position, key, value) = first?;
            let Some(span) = spans.get(position) else {
                return Err(Error::Corrupt {
                    family: "snapshot",
                    reason: format!("an entry of unknown span {position}"),
                });
            };
            if current.is_some_and(|current| position < current)
                || (current != Some(position) && !files[position].is_empty())
            {
                return Err(corrupt(span.family, "the spans' entries are not contiguous and in order"));
            }
            current = Some(position);
            let path = work_dir.join(format!("{position}-{}.sst", files[position].len()));
            let clears = files[position].is_empty();
            files[position].push(path.clone());
            self.write_file(&path, position, span, clears, Some((key, value)), &mut entries)?;
        }
        for (position, span) in spans.iter().enumerate() {
            if files[position].is_empty() {
                let path = work_dir.join(format!("{position}-0.sst"));
                self.write_file(&path, position, span, true, None, &mut std::iter::empty().peekable())?;
                files[position].push(path);
            }
        }
        Ok(files)
    }

    /// Writes one SST file of `span` (at `position`) at `path`: the range
    /// deletion of the span if `clears`, then `first` and the entries of
    /// the span that follow it in `rest`, until the file reaches
    /// [`FILE_BYTES`].
    fn write_file(
        &self,
        path: &Path,
        position: usize,
        span: &Span,
        clears: bool,
        first: Option<(Vec<u8>, Vec<u8>)>,
        rest: &mut Peekable<impl Iterator<Item = Result<SpanEntry>>>,
    ) -> Result<()> {
        let options = tuning::family_options(span.family, &self.cache);
        let mut writer = SstFileWriter::create(&options);
        writer.open(path)?;
        if clears {
            writer.delete_range(&span.start, &span.end)?;
        }
        if let Some((key, value)) = first {
            put(&mut writer, span, key, value)?;
            while writer.file_size() < FILE_BYTES {
                if !matches!(rest.peek(), Some(Ok((next, _, _))) if *next == position) {
                    break;
                }
                let (_, key, value) = rest.next().expect("peeked")?;
                put(&mut writer, span, key, value)?;
            }
        }
        writer.finish()?;
        Ok(())
    }

    /// Ingests each span's `files`, which replace its content. The
    /// memtables are flushed first, so that ingesting (under the gate)
    /// does not wait for a flush.
    fn swap_in(&self, spans: &[Span], files: Vec<Vec<PathBuf>>) -> Result<()> {
        let families: BTreeSet<Family> = spans.iter().map(|span| span.family).collect();
        for family in families {
            self.db.flush_cf(self.cf(family))?;
        }
        let mut ingest = IngestExternalFileOptions::default();
        ingest.set_move_files(true);
        let _exclusive = self.gate.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        for (span, paths) in spans.iter().zip(files) {
            self.db.ingest_external_file_cf_opts(self.cf(span.family), &ingest, paths)?;
            if failpoints::fire("abort-mid-snapshot-install") {
                std::process::abort();
            }
        }
        Ok(())
    }
}

/// Adds `key` (which must lie in `span` and follow the file's last key).
fn put(writer: &mut SstFileWriter, span: &Span, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
    if !span.contains(&key) {
        return Err(corrupt(span.family, "a key outside its span"));
    }
    writer.put(&key, &value).map_err(|e| corrupt(span.family, &format!("a key out of order: {e}")))
}

fn corrupt(family: Family, reason: &str) -> Error {
    Error::Corrupt { family: family.name(), reason: reason.to_string() }
}
