//! Replacing a service's families wholesale with a sorted stream of
//! entries, in bounded memory: how a follower installs a Raft snapshot.
//!
//! [`Store::replace_families`] writes the entries into SST files in a work
//! directory (RocksDB's `SstFileWriter`, at most [`FILE_BYTES`] each), the
//! first of each family starting with a range deletion of the whole
//! family, then ingests each family's files, moving them into the
//! instance: one ingestion replaces a family's content at once. The data
//! never passes through memory as a whole: an SST writer holds one data
//! block plus the index and filter of its current file.
//!
//! Invariants:
//! - Nothing changes until every entry has been written to a file: a
//!   stream that fails (a corrupt or truncated snapshot, keys out of order,
//!   an unknown family) leaves the families as they were.
//! - An ingested file gets a sequence number above everything the
//!   instance holds, so its range deletion clears the old content, and
//!   RocksDB snapshots taken before keep reading that content.
//! - Within this process the replacement is atomic: live reads and new
//!   snapshots of the store wait on its gate while the families are
//!   ingested (the memtables are flushed before, so that takes
//!   milliseconds). Reads that do not wait for the applied index (a
//!   follower's READONLY reads) would otherwise see one family replaced
//!   and another not.
//! - Across a crash it is NOT atomic: the families are ingested one after
//!   another, so a crash can leave some replaced and some not.
//!   Running the replacement again with the same entries gives the same
//!   content, so the caller keeps what it needs to redo it (the snapshot
//!   file) until it has returned, and redoes it before anything reads.

use std::iter::Peekable;
use std::path::{Path, PathBuf};

use rocksdb::{IngestExternalFileOptions, SstFileWriter};

use crate::error::{Error, Result};
use crate::failpoints;
use crate::keyspace::{Family, FAMILY_SPAN_END};
use crate::store::Store;
use crate::tuning;

/// The size at which an SST file is finished and the next one started. An
/// SST writer keeps the filter hashes and index entries of its file in
/// memory: for 64 MiB of 100-byte values, about 4 MiB.
const FILE_BYTES: u64 = 64 * 1024 * 1024;

/// One family's entry in the replacement stream.
pub type FamilyEntry = (Family, Vec<u8>, Vec<u8>);

impl Store {
    /// Replaces the content of `families` (all of this store's service)
    /// with `entries`, using `work_dir` (created, then removed) for the SST
    /// files. Within a family, entries come in strictly ascending key
    /// order, and each family's entries are contiguous; a family with no
    /// entries ends up empty.
    ///
    /// `entries` yields errors of its own source (e.g. reading a snapshot
    /// file) as [`Error::Io`] or [`Error::Corrupt`].
    pub fn replace_families(
        &self,
        families: &[Family],
        work_dir: &Path,
        entries: impl Iterator<Item = Result<FamilyEntry>>,
    ) -> Result<()> {
        let _ = std::fs::remove_dir_all(work_dir);
        std::fs::create_dir_all(work_dir).map_err(|e| Error::io(work_dir, e))?;
        let result = self.write_files(families, work_dir, entries).and_then(|files| self.swap_in(files));
        let _ = std::fs::remove_dir_all(work_dir);
        result
    }

    /// Writes `entries` into SST files, returning each family's files.
    /// The first file of every family in `families` (a file of its own
    /// for a family without entries) also holds a range deletion of the
    /// whole family, which clears what the instance holds when the file is
    /// ingested but not the entries of the file (RocksDB's rule for range
    /// deletions in an SST file) nor of the family's later files.
    fn write_files(
        &self,
        families: &[Family],
        work_dir: &Path,
        entries: impl Iterator<Item = Result<FamilyEntry>>,
    ) -> Result<Vec<(Family, Vec<PathBuf>)>> {
        let mut entries = entries.peekable();
        let mut files: Vec<(Family, Vec<PathBuf>)> = Vec::new();
        while let Some(first) = entries.next() {
            let (family, key, value) = first?;
            if !families.contains(&family) {
                return Err(corrupt(family, "an entry of a family that is not being replaced"));
            }
            let first_of_family = match files.last() {
                Some((last, _)) if *last == family => false,
                _ if files.iter().any(|(f, _)| *f == family) => {
                    return Err(corrupt(family, "the family's entries are not contiguous"));
                }
                _ => true,
            };
            if first_of_family {
                files.push((family, Vec::new()));
            }
            let family_files = &mut files.last_mut().expect("pushed above").1;
            let path = work_dir.join(format!("{}-{}.sst", family.name(), family_files.len()));
            family_files.push(path.clone());
            self.write_file(&path, family, first_of_family, Some((key, value)), &mut entries)?;
        }
        for family in families {
            if !files.iter().any(|(f, _)| f == family) {
                let path = work_dir.join(format!("{}-0.sst", family.name()));
                self.write_file(&path, *family, true, None, &mut std::iter::empty().peekable())?;
                files.push((*family, vec![path]));
            }
        }
        Ok(files)
    }

    /// Writes one SST file of `family` at `path`: the range deletion of the
    /// family if `clears`, then `first` and the entries of `family` that
    /// follow it in `rest`, until the file reaches [`FILE_BYTES`].
    fn write_file(
        &self,
        path: &Path,
        family: Family,
        clears: bool,
        first: Option<(Vec<u8>, Vec<u8>)>,
        rest: &mut Peekable<impl Iterator<Item = Result<FamilyEntry>>>,
    ) -> Result<()> {
        let options = tuning::family_options(family, &self.cache);
        let mut writer = SstFileWriter::create(&options);
        writer.open(path)?;
        if clears {
            writer.delete_range(&[][..], FAMILY_SPAN_END)?;
        }
        if let Some((key, value)) = first {
            let out_of_order = |e| corrupt(family, &format!("a key out of order: {e}"));
            writer.put(&key, &value).map_err(out_of_order)?;
            while writer.file_size() < FILE_BYTES {
                if !matches!(rest.peek(), Some(Ok((next, _, _))) if *next == family) {
                    break;
                }
                let (_, key, value) = rest.next().expect("peeked")?;
                writer.put(&key, &value).map_err(out_of_order)?;
            }
        }
        writer.finish()?;
        Ok(())
    }

    /// Ingests each family's `files`, which replace its content. The
    /// memtables are flushed first, so that ingesting (under the gate)
    /// does not wait for a flush.
    fn swap_in(&self, files: Vec<(Family, Vec<PathBuf>)>) -> Result<()> {
        for (family, _) in &files {
            self.db.flush_cf(self.cf(*family))?;
        }
        let mut ingest = IngestExternalFileOptions::default();
        ingest.set_move_files(true);
        let _exclusive = self.gate.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        for (family, paths) in files {
            self.db.ingest_external_file_cf_opts(self.cf(family), &ingest, paths)?;
            if failpoints::fire("abort-mid-snapshot-install") {
                std::process::abort();
            }
        }
        Ok(())
    }
}

fn corrupt(family: Family, reason: &str) -> Error {
    Error::Corrupt { family: family.name(), reason: reason.to_string() }
}
