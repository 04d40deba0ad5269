//! Snapshot files: a group's state at one applied log id.
//!
//! A group's state is a list of spans of its service's state families
//! ([`crate::StateMachine::state_spans`]; the groups of a service share its
//! families). A snapshot file is a sequence of length-delimited frames
//! (tokio-util's codec), each a postcard-encoded [`Frame`]: first the
//! [`SnapshotMeta`], then the spans, then every `(span, key, value)` read
//! through one RocksDB snapshot, span by span, then an end marker. The
//! file names its spans, so installing it replaces exactly what it
//! carries. openraft streams the
//! file to followers in chunks; a follower receives it into a file of its
//! own and [`install`]s it.
//!
//! Files live in the group's snapshot directory: `current.snap` is the last
//! built or installed snapshot (renamed into place only when complete, so it
//! is never partial); `building.snap` and `receiving.snap` are in progress;
//! `installing.snap` is a complete received snapshot whose install has begun
//! and not finished, and `installing.sst/` holds the SST files an install
//! writes.
//!
//! Installing streams the file into SST files and ingests them
//! ([`storage::Store::replace_spans`]), so a follower catching up on a
//! large dataset holds one SST file's index and filter in memory, not the
//! data.
//!
//! Invariants:
//! - The state read for a snapshot includes its own `raft/applied` and
//!   `raft/membership` keys, so the meta and the data always agree.
//! - An install replaces the spans one after another, so a crash can leave
//!   some replaced and some not. `installing.snap` is durable
//!   before the first family changes and renamed to `current.snap` only
//!   after the last: while it exists the state is suspect, and
//!   [`SnapshotDir::finish_interrupted_install`] redoes the install (it is
//!   idempotent) before the state machine reads anything. So after a crash
//!   the state is the old one or the snapshot's, never a mix.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use storage::keyspace::Span;
use storage::{Family, Reader, Store};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

use crate::stored::{self, StateKeys};
use crate::types::SnapshotMeta;

/// The largest frame in a snapshot file: one key and value.
const MAX_FRAME: usize = 1 << 30;

#[derive(Serialize, Deserialize)]
enum Frame {
    Meta(SnapshotMeta),
    Spans(Vec<StoredSpan>),
    Entry { span: u32, key: Bytes, value: Bytes },
    End,
}

/// A [`Span`] in a snapshot file: its family by name.
#[derive(Serialize, Deserialize)]
struct StoredSpan {
    family: String,
    start: Bytes,
    end: Bytes,
}

impl StoredSpan {
    fn new(span: &Span) -> StoredSpan {
        StoredSpan {
            family: span.family.name().to_string(),
            start: Bytes::copy_from_slice(&span.start),
            end: Bytes::copy_from_slice(&span.end),
        }
    }

    fn span(&self) -> std::io::Result<Span> {
        let family = Family::from_name(&self.family)
            .ok_or_else(|| invalid(&format!("snapshot names an unknown family {}", self.family)))?;
        Ok(Span { family, start: self.start.to_vec(), end: self.end.to_vec() })
    }
}

/// The snapshot directory of one group.
#[derive(Debug, Clone)]
pub(crate) struct SnapshotDir {
    dir: PathBuf,
}

impl SnapshotDir {
    pub(crate) fn open(dir: PathBuf) -> std::io::Result<SnapshotDir> {
        fs::create_dir_all(&dir)?;
        // Leftovers of an interrupted build or transfer are useless; an
        // interrupted install is finished before the state is read.
        for name in ["building.snap", "receiving.snap"] {
            let _ = fs::remove_file(dir.join(name));
        }
        Ok(SnapshotDir { dir })
    }

    fn installing(&self) -> PathBuf {
        self.dir.join("installing.snap")
    }

    pub(crate) fn current(&self) -> PathBuf {
        self.dir.join("current.snap")
    }

    pub(crate) fn receiving(&self) -> PathBuf {
        self.dir.join("receiving.snap")
    }

    /// The size of the current snapshot file in bytes (0 if there is none).
    pub(crate) fn current_size(&self) -> u64 {
        fs::metadata(self.current()).map_or(0, |meta| meta.len())
    }

    /// The meta of the current snapshot, if there is one.
    pub(crate) fn current_meta(&self) -> std::io::Result<Option<SnapshotMeta>> {
        let file = match File::open(self.current()) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut frames = FrameReader::new(file);
        match frames.next_frame()? {
            Some(Frame::Meta(meta)) => Ok(Some(meta)),
            _ => Err(invalid("snapshot file does not start with its meta")),
        }
    }

    /// Makes `path` (a complete snapshot file) the current snapshot.
    pub(crate) fn promote(&self, path: &Path) -> std::io::Result<()> {
        fs::rename(path, self.current())?;
        File::open(&self.dir)?.sync_all()
    }

    /// Writes a snapshot of the group's `spans` of `store` as they are now
    /// (its applied state under `keys`, which the spans include) and makes
    /// it current.
    pub(crate) fn build(
        &self,
        store: &Store,
        keys: StateKeys,
        spans: &[Span],
        snapshot_id: String,
    ) -> std::io::Result<SnapshotMeta> {
        let view = store.snapshot();
        let (last_log_id, last_membership) = stored::applied_state(&view, keys)?;
        let meta = SnapshotMeta { last_log_id, last_membership, snapshot_id };

        let path = self.dir.join("building.snap");
        let mut out = FrameWriter::new(File::create(&path)?);
        out.write(&Frame::Meta(meta.clone()))?;
        out.write(&Frame::Spans(spans.iter().map(StoredSpan::new).collect()))?;
        for (position, span) in spans.iter().enumerate() {
            for item in view.scan(span.family, &span.start, Some(&span.end)) {
                let (key, value) = item.map_err(std::io::Error::other)?;
                let frame = Frame::Entry { span: position as u32, key: Bytes::from(key), value: Bytes::from(value) };
                out.write(&frame)?;
            }
        }
        out.write(&Frame::End)?;
        out.finish()?;
        self.promote(&path)?;
        Ok(meta)
    }
}

impl SnapshotDir {
    /// Replaces `store`'s state with the received snapshot `received` and
    /// makes it the current snapshot.
    pub(crate) fn install(&self, store: &Store, mut received: File) -> std::io::Result<()> {
        if is_same_file(&received, &self.receiving())? {
            received.sync_all()?;
        } else {
            // openraft may hand over another handle than the one it got
            // from `begin_receiving_snapshot` (its conformance suite does):
            // copy that one.
            received.seek(SeekFrom::Start(0))?;
            let mut copy = File::create(self.receiving())?;
            std::io::copy(&mut received, &mut copy)?;
            copy.sync_all()?;
        }
        // Only a complete, synced file ever bears the name `installing.snap`.
        fs::rename(self.receiving(), self.installing())?;
        File::open(&self.dir)?.sync_all()?;
        self.install_from_installing(store)
    }

    /// Finishes an install that a crash interrupted, if there was one;
    /// true if it did. Call before reading the state families.
    pub(crate) fn finish_interrupted_install(&self, store: &Store) -> std::io::Result<bool> {
        if !self.installing().exists() {
            return Ok(false);
        }
        self.install_from_installing(store)?;
        Ok(true)
    }

    fn install_from_installing(&self, store: &Store) -> std::io::Result<()> {
        replace_state(store, &self.installing(), &self.dir.join("installing.sst"))?;
        self.promote(&self.installing())
    }
}

fn is_same_file(file: &File, path: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let (open, named) = match (file.metadata(), fs::metadata(path)) {
        (Ok(open), Ok(named)) => (open, named),
        (_, Err(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    Ok(open.dev() == named.dev() && open.ino() == named.ino())
}

/// Replaces the spans the snapshot file at `path` names with its content,
/// streaming it through SST files in `work_dir`.
fn replace_state(store: &Store, path: &Path, work_dir: &Path) -> std::io::Result<()> {
    let mut frames = FrameReader::new(File::open(path)?);
    match frames.next_frame()? {
        Some(Frame::Meta(_)) => {}
        _ => return Err(invalid("snapshot file does not start with its meta")),
    }
    let spans = match frames.next_frame()? {
        Some(Frame::Spans(spans)) => spans.iter().map(StoredSpan::span).collect::<std::io::Result<Vec<Span>>>()?,
        _ => return Err(invalid("snapshot file does not list its spans after its meta")),
    };
    let entries = std::iter::from_fn(|| match frames.next_frame() {
        Ok(Some(Frame::Entry { span, key, value })) => Some(Ok((span as usize, key.to_vec(), value.to_vec()))),
        Ok(Some(Frame::End)) => None,
        Ok(Some(Frame::Meta(_) | Frame::Spans(_))) => {
            Some(Err(corrupt(path, invalid("second meta or spans frame in a snapshot"))))
        }
        Ok(None) => Some(Err(corrupt(path, invalid("snapshot file ends before its end marker")))),
        Err(e) => Some(Err(corrupt(path, e))),
    });
    store.replace_spans(&spans, work_dir, entries).map_err(std::io::Error::other)
}

fn corrupt(path: &Path, source: std::io::Error) -> storage::Error {
    storage::Error::Io { path: path.to_path_buf(), source }
}

fn invalid(reason: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, reason.to_string())
}

fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder().max_frame_length(MAX_FRAME).new_codec()
}

struct FrameWriter {
    out: BufWriter<File>,
    codec: LengthDelimitedCodec,
    buffer: BytesMut,
}

impl FrameWriter {
    fn new(file: File) -> Self {
        FrameWriter { out: BufWriter::new(file), codec: codec(), buffer: BytesMut::new() }
    }

    fn write(&mut self, frame: &Frame) -> std::io::Result<()> {
        let bytes = postcard::to_stdvec(frame).map_err(std::io::Error::other)?;
        self.buffer.clear();
        self.codec.encode(Bytes::from(bytes), &mut self.buffer)?;
        self.out.write_all(&self.buffer)
    }

    fn finish(self) -> std::io::Result<()> {
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    }
}

struct FrameReader {
    input: BufReader<File>,
    codec: LengthDelimitedCodec,
    buffer: BytesMut,
}

impl FrameReader {
    fn new(file: File) -> Self {
        FrameReader { input: BufReader::new(file), codec: codec(), buffer: BytesMut::new() }
    }

    fn next_frame(&mut self) -> std::io::Result<Option<Frame>> {
        loop {
            if let Some(frame) = self.codec.decode(&mut self.buffer)? {
                return postcard::from_bytes(&frame).map(Some).map_err(|e| invalid(&e.to_string()));
            }
            let mut chunk = [0u8; 64 * 1024];
            let read = self.input.read(&mut chunk)?;
            if read == 0 {
                return Ok(None);
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }
}
