//! Golden scripts: command semantics as reviewed text.
//!
//! Each `tests/scripts/*.txt` file is a session against an in-process node
//! (real RocksDB in a temp dir, real RESP over loopback) whose clock only
//! moves when the script says so. Lines starting with `> ` are commands,
//! written as at a `redis-cli` prompt; the lines after each command are its
//! reply, rendered like `redis-cli` renders it. Directives:
//!
//! - `:advance MS` moves the clock forward;
//! - `:sweep` runs one expiry sweep (the leader's background removal);
//! - `:connect` opens a fresh connection (new session state).
//!
//! The test re-runs every command and compares the regenerated file with the
//! checked-in one. `UPDATE_GOLDEN=1 cargo test -p protocol-resp --test golden`
//! rewrites the files instead; review the diff like code. With
//! `GOLDEN_REFERENCE=127.0.0.1:6379` the scripts without clock directives are
//! replayed against that real Redis and its answers written to `*.redis`
//! files beside them, to diff by hand (they are not checked in).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::BytesMut;
use kv::{Kv, KvConfig, KvStart, ManualClock};
use protocol_resp::{NodeFacts, RespConfig, RespFrontend};
use raft::{Bootstrap, Frontend, GroupSettings, RaftNode, Shutdown};
use redis_protocol::resp3::types::{OwnedFrame, Resp3Frame};
use storage::{Layout, Service, Storage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// 2023-11-14T22:13:20Z: far from any edge, easy to read in EXPIRETIME.
const START_MS: u64 = 1_700_000_000_000;

struct Harness {
    clock: Arc<ManualClock>,
    kv: Kv,
    addr: std::net::SocketAddr,
    stream: TcpStream,
    buffer: BytesMut,
    /// Whether the connection speaks RESP3 (after a successful `HELLO 3`).
    resp3: bool,
}

impl Harness {
    async fn start(dir: &Path) -> (Harness, Shutdown, Storage) {
        let storage = Storage::open(dir, Layout::Shared).unwrap();
        let clock = Arc::new(ManualClock::new(START_MS));
        let node = RaftNode::start(1, TcpListener::bind("127.0.0.1:0").await.unwrap(), None).unwrap();
        let script_commands = Arc::new(kv::script::ScriptCommandsSlot::default());
        let opened = Kv::open(KvStart {
            node: &node,
            store: storage.store(Service::Kv),
            snapshots_dir: dir.join("snapshots"),
            shards: None,
            default_shards: 1,
            meta_store: storage.store(Service::Meta),
            settings: GroupSettings::default(),
            bootstrap: Bootstrap::Initialize([(1, node.addr().to_string())].into()),
            clock: clock.clone(),
            config: KvConfig::default(),
            script_commands: script_commands.clone(),
        })
        .await
        .unwrap();
        let frontend =
            RespFrontend::new(opened.kv().clone(), node.clone(), RespConfig::default(), NodeFacts::default()).unwrap();
        script_commands.install(frontend.script_commands());
        let kv = opened.start_groups().await.unwrap();
        while !kv.group().is_leader() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let serving = shutdown.clone();
        tokio::spawn(async move { frontend.serve(listener, serving).await.unwrap() });
        let stream = TcpStream::connect(addr).await.unwrap();
        (Harness { clock, kv, addr, stream, buffer: BytesMut::new(), resp3: false }, shutdown, storage)
    }

    async fn command(&mut self, line: &str) -> String {
        let args = protocol_resp::request::split_args(line.as_bytes()).expect("balanced quotes in script");
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in &args {
            request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            request.extend_from_slice(arg);
            request.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&request).await.unwrap();
        let verb = args.first().map(|a| String::from_utf8_lossy(a).to_ascii_uppercase()).unwrap_or_default();
        let hello3 = verb == "HELLO" && args.get(1).is_some_and(|v| &v[..] == b"3");
        let rendered = self.reply(self.resp3 || hello3).await;
        if !rendered.starts_with("(error)") {
            match verb.as_str() {
                "HELLO" if args.len() > 1 => self.resp3 = hello3,
                "RESET" => self.resp3 = false,
                _ => {}
            }
        }
        rendered
    }

    async fn reply(&mut self, resp3: bool) -> String {
        loop {
            let decoded = if resp3 {
                redis_protocol::resp3::decode::complete::decode(&self.buffer).unwrap()
            } else {
                redis_protocol::resp2::decode::decode(&self.buffer)
                    .unwrap_or_else(|e| panic!("{e:?} decoding {:?}", String::from_utf8_lossy(&self.buffer)))
                    .map(|(f, n)| (from_resp2(f), n))
            };
            if let Some((frame, used)) = decoded {
                let _ = self.buffer.split_to(used);
                return render(&frame, "");
            }
            if self.stream.read_buf(&mut self.buffer).await.unwrap() == 0 {
                return "(connection closed)".into();
            }
        }
    }
}

/// A RESP2 reply in RESP3's model, for one renderer.
fn from_resp2(frame: redis_protocol::resp2::types::OwnedFrame) -> OwnedFrame {
    use redis_protocol::resp2::types::OwnedFrame as F2;
    match frame {
        F2::SimpleString(data) => OwnedFrame::SimpleString { data, attributes: None },
        F2::Error(data) => OwnedFrame::SimpleError { data, attributes: None },
        F2::Integer(data) => OwnedFrame::Number { data, attributes: None },
        F2::BulkString(data) => OwnedFrame::BlobString { data, attributes: None },
        F2::Array(items) => OwnedFrame::Array { data: items.into_iter().map(from_resp2).collect(), attributes: None },
        F2::Null => OwnedFrame::Null,
    }
}

/// Renders a reply like `redis-cli` does.
fn render(frame: &OwnedFrame, indent: &str) -> String {
    let text = |bytes: &[u8]| format!("{:?}", String::from_utf8_lossy(bytes));
    match frame {
        OwnedFrame::SimpleString { data, .. } => String::from_utf8_lossy(data).into_owned(),
        OwnedFrame::SimpleError { data, .. } => format!("(error) {data}"),
        OwnedFrame::BlobError { data, .. } => format!("(error) {}", String::from_utf8_lossy(data)),
        OwnedFrame::Number { data, .. } => format!("(integer) {data}"),
        OwnedFrame::Double { data, .. } => format!("(double) {data}"),
        OwnedFrame::Boolean { data, .. } => format!("({data})"),
        OwnedFrame::Null => "(nil)".into(),
        OwnedFrame::BlobString { data, .. } | OwnedFrame::BigNumber { data, .. } => text(data),
        OwnedFrame::VerbatimString { data, .. } => text(data),
        OwnedFrame::Array { data, .. } | OwnedFrame::Push { data, .. } => list(data.iter(), indent),
        OwnedFrame::Set { data, .. } => list(data.iter(), indent),
        OwnedFrame::Map { data, .. } => {
            if data.is_empty() {
                return "(empty hash)".into();
            }
            let width = data.len().to_string().len();
            let inner = format!("{indent}{}", " ".repeat(width + 2));
            data.iter()
                .enumerate()
                .map(|(i, (k, v))| {
                    let prefix = if i == 0 { String::new() } else { indent.to_string() };
                    format!("{prefix}{:>width$}# {} => {}", i + 1, render(k, &inner), render(v, &inner))
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
        other => format!("(unrendered {:?})", other.kind()),
    }
}

fn list<'a>(items: impl ExactSizeIterator<Item = &'a OwnedFrame>, indent: &str) -> String {
    if items.len() == 0 {
        return "(empty array)".into();
    }
    let width = items.len().to_string().len();
    let inner = format!("{indent}{}", " ".repeat(width + 2));
    items
        .enumerate()
        .map(|(i, item)| {
            let prefix = if i == 0 { String::new() } else { indent.to_string() };
            format!("{prefix}{:>width$}) {}", i + 1, render(item, &inner))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn run_script(path: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, shutdown, _storage) = Harness::start(dir.path()).await;
    if let Some(reference) = reference_server() {
        // Replay against a real Redis instead (see `golden_scripts`).
        harness.addr = reference;
        harness.stream = TcpStream::connect(reference).await.unwrap();
        harness.command("FLUSHALL").await;
    }
    let script = std::fs::read_to_string(path).unwrap();
    let mut out = String::new();
    for line in script.lines() {
        if let Some(command) = line.strip_prefix("> ") {
            out.push_str(line);
            out.push('\n');
            out.push_str(&harness.command(command).await);
            out.push('\n');
        } else if let Some(directive) = line.strip_prefix(':') {
            out.push_str(line);
            out.push('\n');
            let mut words = directive.split_whitespace();
            match words.next() {
                Some("advance") => {
                    harness.clock.advance(words.next().and_then(|ms| ms.parse().ok()).expect(":advance MS"))
                }
                Some("sweep") => {
                    harness.kv.sweep_expired().await.unwrap();
                }
                Some("connect") => {
                    harness.stream = TcpStream::connect(harness.addr).await.unwrap();
                    harness.buffer.clear();
                }
                other => panic!("unknown directive {other:?} in {}", path.display()),
            }
        } else if line.starts_with('#') || line.is_empty() {
            out.push_str(line);
            out.push('\n');
        }
        // Any other line is expected output, regenerated above.
    }
    shutdown.cancel();
    harness.kv.shutdown().await;
    out
}

#[tokio::test]
async fn golden_scripts() {
    // The package dir named at run time: a binary built in another
    // checkout (a reused target dir) reads this checkout's scripts.
    let package =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from);
    let dir = package.join("tests/scripts");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "txt"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no scripts in {}", dir.display());
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    if reference_server().is_some() {
        // Reviewer's aid: write what a real Redis answers next to each script
        // (`*.redis`), to diff by hand; nothing is asserted.
        for path in paths {
            let script = std::fs::read_to_string(&path).unwrap();
            if script.contains("\n:advance") {
                continue; // a real server's clock cannot be moved
            }
            std::fs::write(path.with_extension("redis"), run_script(&path).await).unwrap();
        }
        return;
    }
    let mut failures = Vec::new();
    for path in paths {
        let expected = std::fs::read_to_string(&path).unwrap();
        let actual = run_script(&path).await;
        if update {
            std::fs::write(&path, &actual).unwrap();
        } else if actual != expected {
            failures.push(format!("--- {}\n{}", path.display(), diff(&expected, &actual)));
        }
    }
    assert!(failures.is_empty(), "golden scripts differ (UPDATE_GOLDEN=1 to accept):\n{}", failures.join("\n"));
}

/// `GOLDEN_REFERENCE=HOST:PORT` names a real Redis to replay scripts against.
fn reference_server() -> Option<std::net::SocketAddr> {
    std::env::var("GOLDEN_REFERENCE").ok().map(|addr| addr.parse().expect("GOLDEN_REFERENCE=HOST:PORT"))
}

/// The first differing lines, enough to see what changed.
fn diff(expected: &str, actual: &str) -> String {
    let (e, a): (Vec<_>, Vec<_>) = (expected.lines().collect(), actual.lines().collect());
    let first = e.iter().zip(&a).position(|(x, y)| x != y).unwrap_or(e.len().min(a.len()));
    let show = |lines: &[&str]| {
        lines.iter().skip(first.saturating_sub(2)).take(8).map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
    };
    format!("at line {}\nexpected:\n{}\nactual:\n{}", first + 1, show(&e), show(&a))
}
