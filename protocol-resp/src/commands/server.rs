//! Server commands: INFO, CONFIG, COMMAND, TIME, SAVE and friends.

use std::sync::atomic::Ordering;

use kv::{glob_matches, CommandError, Reply, DATABASES};

use super::flags::{self, ADMIN, FAST, LOADING, NOSCRIPT, STALE};
use super::{all, help, lookup, reply, spec, unknown_subcommand, wrong_arity, Outcome, Spec};
use crate::args::Args;
use crate::server::{unix_seconds, Server};
use crate::session::Session;

type Result = std::result::Result<Outcome, CommandError>;

/// The Redis version whose semantics Seshat follows; clients gate features on it.
pub(crate) const REDIS_VERSION: &str = "7.2.0";

fn time(_session: &mut Session, _args: &mut Args) -> Result {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    reply(Reply::Array(vec![Reply::bulk(now.as_secs().to_string()), Reply::bulk(now.subsec_micros().to_string())]))
}

fn lastsave(session: &mut Session, _args: &mut Args) -> Result {
    reply(Reply::Int(session.server.last_save.load(Ordering::Relaxed) as i64))
}

/// Every acknowledged write is already fsynced; SAVE only records the time.
fn save(session: &mut Session, _args: &mut Args) -> Result {
    session.server.last_save.store(unix_seconds(), Ordering::Relaxed);
    reply(Reply::ok())
}

fn bgsave(session: &mut Session, args: &mut Args) -> Result {
    if let Some(option) = args.next_opt() {
        if !option.eq_ignore_ascii_case(b"SCHEDULE") {
            return Err(CommandError::Syntax);
        }
    }
    args.finish()?;
    session.server.last_save.store(unix_seconds(), Ordering::Relaxed);
    reply(Reply::Status("Background saving started".into()))
}

fn info(session: &mut Session, args: &mut Args) -> Result {
    let requested: Vec<String> = args.rest().iter().map(|s| String::from_utf8_lossy(s).to_ascii_lowercase()).collect();
    let server = session.server.clone();
    let kv = server.kv.clone();
    super::read_local(session, move |ctx| {
        let keyspace: Vec<String> = ctx
            .keyspace()?
            .into_iter()
            .map(|(db, keys, expires)| format!("db{db}:keys={keys},expires={expires},avg_ttl=0"))
            .collect();
        let text = info_text(&server, &kv, &requested, &keyspace);
        Ok(Reply::Verbatim(text))
    })
}

/// The INFO sections in Redis's order; `default` and `all` select all.
const SECTIONS: [&str; 7] = ["server", "clients", "memory", "persistence", "stats", "replication", "keyspace"];

fn info_text(server: &Server, kv: &kv::Kv, requested: &[String], keyspace: &[String]) -> String {
    let everything =
        requested.is_empty() || requested.iter().any(|s| matches!(s.as_str(), "all" | "default" | "everything"));
    let mut out = String::new();
    for section in SECTIONS {
        if !everything && !requested.iter().any(|s| s == section) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        let title = format!("{}{}", section[..1].to_ascii_uppercase(), &section[1..]);
        out.push_str(&format!("# {title}\r\n"));
        for line in section_lines(section, server, kv, keyspace) {
            out.push_str(&line);
            out.push_str("\r\n");
        }
    }
    out
}

fn section_lines(section: &str, server: &Server, kv: &kv::Kv, keyspace: &[String]) -> Vec<String> {
    let stats = &server.stats;
    let kv_stats = kv.stats();
    let uptime = server.started.elapsed().as_secs();
    let config = server.config();
    match section {
        "server" => vec![
            format!("redis_version:{REDIS_VERSION}"),
            format!("seshat_version:{}", env!("CARGO_PKG_VERSION")),
            "redis_git_sha1:00000000".into(),
            "redis_git_dirty:0".into(),
            "redis_mode:standalone".into(),
            format!("os:{} {}", std::env::consts::OS, std::env::consts::ARCH),
            "arch_bits:64".into(),
            "multiplexing_api:epoll".into(),
            format!("process_id:{}", std::process::id()),
            format!("run_id:{}", server.run_id),
            format!("tcp_port:{}", server.facts.tcp_port),
            format!(
                "server_time_usec:{}",
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_micros()
            ),
            format!("uptime_in_seconds:{uptime}"),
            format!("uptime_in_days:{}", uptime / 86_400),
            format!("executable:{}", std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default()),
            format!(
                "config_file:{}",
                server.facts.config_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
            ),
            format!("data_dir:{}", server.facts.data_dir.display()),
            format!("storage_layout:{}", server.facts.storage_layout),
        ],
        "clients" => vec![
            format!("connected_clients:{}", server.clients.count()),
            format!("maxclients:{}", config.maxclients),
            format!("blocked_clients:{}", kv.blocked().count()),
        ],
        "memory" => {
            let rss = resident_bytes();
            vec![
                format!("used_memory:{rss}"),
                format!("used_memory_human:{}", human_bytes(rss)),
                format!("used_memory_rss:{rss}"),
                format!("used_memory_rss_human:{}", human_bytes(rss)),
                format!("used_disk_estimate:{}", kv.estimated_size()),
                "maxmemory:0".into(),
                "maxmemory_human:0B".into(),
                "maxmemory_policy:noeviction".into(),
                "mem_allocator:libc".into(),
            ]
        }
        "persistence" => vec![
            "loading:0".into(),
            "async_loading:0".into(),
            "rdb_changes_since_last_save:0".into(),
            "rdb_bgsave_in_progress:0".into(),
            format!("rdb_last_save_time:{}", server.last_save.load(Ordering::Relaxed)),
            "rdb_last_bgsave_status:ok".into(),
            "aof_enabled:0".into(),
            "aof_rewrite_in_progress:0".into(),
            "seshat_durability:fsync_before_reply".into(),
        ],
        "stats" => vec![
            format!("total_connections_received:{}", stats.total_connections_received.load(Ordering::Relaxed)),
            format!("total_commands_processed:{}", stats.total_commands_processed.load(Ordering::Relaxed)),
            format!("total_net_input_bytes:{}", stats.total_net_input_bytes.load(Ordering::Relaxed)),
            format!("total_net_output_bytes:{}", stats.total_net_output_bytes.load(Ordering::Relaxed)),
            format!("rejected_connections:{}", stats.rejected_connections.load(Ordering::Relaxed)),
            format!("expired_keys:{}", kv_stats.expired_keys.load(Ordering::Relaxed)),
            "evicted_keys:0".into(),
            format!("keyspace_hits:{}", kv_stats.keyspace_hits.load(Ordering::Relaxed)),
            format!("keyspace_misses:{}", kv_stats.keyspace_misses.load(Ordering::Relaxed)),
        ],
        "replication" => {
            let status = kv.status();
            let leader = status.leader.as_ref();
            let mut lines = vec![
                format!("role:{}", if status.role == raft::Role::Leader { "master" } else { "slave" }),
                format!("connected_slaves:{}", status.replication.len()),
                format!("seshat_group:{}", status.id),
                format!("seshat_node_id:{}", status.node_id),
                format!("seshat_raft_role:{}", status.role.name()),
                format!("seshat_raft_term:{}", status.term),
                format!("seshat_leader_id:{}", leader.map_or(String::new(), |l| l.id.to_string())),
                format!("seshat_leader_addr:{}", leader.map_or("", |l| l.addr.as_str())),
                format!("seshat_commit_index:{}", status.commit_index),
                format!("seshat_applied_index:{}", status.applied_index),
                format!("seshat_last_log_index:{}", status.last_log_index),
                format!("seshat_snapshot_index:{}", status.snapshot_index),
                format!("seshat_purged_index:{}", status.purged_index),
                format!("seshat_snapshots_installed:{}", status.snapshots_installed),
                format!("seshat_members:{}", status.members.len()),
            ];
            for (id, matched) in &status.replication {
                lines.push(format!("seshat_peer_{id}:match_index={matched}"));
            }
            lines
        }
        "keyspace" => keyspace.to_vec(),
        _ => Vec::new(),
    }
}

/// The process's resident set size in bytes (Linux), or 0.
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|text| text.split_whitespace().nth(1).and_then(|pages| pages.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.2}G", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.2}M", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.2}K", b as f64 / (1u64 << 10) as f64),
        b => format!("{b}B"),
    }
}

/// Applies a new value to a parameter, or says why it is invalid.
type Setter = fn(&Server, &str) -> std::result::Result<(), String>;

/// A configuration parameter CONFIG GET and SET know.
struct Parameter {
    name: &'static str,
    get: fn(&Server) -> String,
    /// `None` for immutable parameters.
    set: Option<Setter>,
}

const PARAMETERS: &[Parameter] = &[
    Parameter {
        name: "maxclients",
        get: |s| s.config().maxclients.to_string(),
        set: Some(|s, v| {
            let value: usize = v
                .parse()
                .ok()
                .filter(|n| (1..=u32::MAX as usize).contains(n))
                .ok_or("argument must be between 1 and 4294967295 inclusive")?;
            s.config.write().expect("config lock").maxclients = value;
            Ok(())
        }),
    },
    Parameter {
        name: "proto-max-bulk-len",
        get: |s| s.config().proto_max_bulk_len.to_string(),
        set: Some(|s, v| {
            let value = parse_memory(v)
                .filter(|n| *n >= 1024 * 1024)
                .ok_or("argument must be a memory value of at least 1mb")?;
            s.config.write().expect("config lock").proto_max_bulk_len = value;
            Ok(())
        }),
    },
    Parameter {
        name: "requirepass",
        get: |s| s.config().requirepass.unwrap_or_default(),
        set: Some(|s, v| {
            s.config.write().expect("config lock").requirepass = (!v.is_empty()).then(|| v.to_string());
            Ok(())
        }),
    },
    Parameter { name: "databases", get: |_| DATABASES.to_string(), set: None },
    Parameter { name: "port", get: |s| s.facts.tcp_port.to_string(), set: None },
    Parameter { name: "bind", get: |s| s.local_addr.get().map(|a| a.ip().to_string()).unwrap_or_default(), set: None },
    Parameter { name: "dir", get: |s| s.facts.data_dir.display().to_string(), set: None },
    // Snapshots and the AOF do not exist: every write is fsynced before its reply.
    Parameter { name: "save", get: |_| String::new(), set: None },
    Parameter { name: "appendonly", get: |_| "no".into(), set: None },
    Parameter { name: "maxmemory", get: |_| "0".into(), set: None },
    Parameter { name: "maxmemory-policy", get: |_| "noeviction".into(), set: None },
    Parameter { name: "timeout", get: |_| "0".into(), set: None },
];

/// Parses a Redis memory value: a number with an optional k/kb/m/mb/g/gb unit.
fn parse_memory(value: &str) -> Option<usize> {
    let lower = value.to_ascii_lowercase();
    let digits_end = lower.find(|c: char| !c.is_ascii_digit()).unwrap_or(lower.len());
    let number: usize = lower[..digits_end].parse().ok()?;
    let unit = match &lower[digits_end..] {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    number.checked_mul(unit)
}

fn config(session: &mut Session, args: &mut Args) -> Result {
    let sub = args.next()?;
    match String::from_utf8_lossy(&sub).to_ascii_uppercase().as_str() {
        "GET" => {
            if args.remaining() == 0 {
                return Err(wrong_arity("config|get"));
            }
            let patterns = args.rest();
            let pairs = PARAMETERS
                .iter()
                .filter(|p| {
                    patterns.iter().any(|pattern| glob_matches(&pattern.to_ascii_lowercase(), p.name.as_bytes()))
                })
                .map(|p| (Reply::bulk(p.name), Reply::bulk((p.get)(&session.server))))
                .collect();
            reply(Reply::Map(pairs))
        }
        "SET" => {
            if args.remaining() < 2 || !args.remaining().is_multiple_of(2) {
                return Err(wrong_arity("config|set"));
            }
            let mut changes = Vec::new();
            while args.remaining() > 0 {
                let name = String::from_utf8_lossy(&args.next()?).to_ascii_lowercase();
                let value = String::from_utf8_lossy(&args.next()?).into_owned();
                let parameter = PARAMETERS.iter().find(|p| p.name == name).ok_or_else(|| {
                    CommandError::Other(format!("ERR Unknown option or number of arguments for CONFIG SET - '{name}'"))
                })?;
                let set = parameter.set.ok_or_else(|| {
                    CommandError::Other(format!(
                        "ERR CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config"
                    ))
                })?;
                changes.push((name, set, value));
            }
            for (name, set, value) in changes {
                set(&session.server, &value).map_err(|reason| {
                    CommandError::Other(format!(
                        "ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"
                    ))
                })?;
            }
            reply(Reply::ok())
        }
        "RESETSTAT" => {
            args.finish().map_err(|_| wrong_arity("config|resetstat"))?;
            session.server.stats.reset();
            session.server.kv.stats().reset();
            reply(Reply::ok())
        }
        "HELP" => reply(help(&[
            "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "HELP",
            "    Print this help.",
        ])),
        _ => Err(unknown_subcommand(&sub, "config")),
    }
}

/// A command's COMMAND INFO entry.
fn command_info(spec: &Spec) -> Reply {
    let flag_names = flags::NAMES
        .iter()
        .filter(|(bit, _)| spec.flags & bit != 0)
        .map(|(_, name)| Reply::Status((*name).into()))
        .collect();
    Reply::Array(vec![
        Reply::bulk(spec.name),
        Reply::Int(spec.arity),
        Reply::Set(flag_names),
        Reply::Int(spec.first_key),
        Reply::Int(spec.last_key),
        Reply::Int(spec.step),
        Reply::Set(vec![]),
        Reply::Set(vec![]),
        Reply::Array(vec![]),
        Reply::Array(vec![]),
    ])
}

/// A command's COMMAND DOCS entry.
fn command_docs(spec: &Spec) -> Reply {
    Reply::Map(vec![
        (Reply::bulk("summary"), Reply::bulk(spec.summary)),
        (Reply::bulk("since"), Reply::bulk(spec.since)),
        (Reply::bulk("group"), Reply::bulk(spec.group)),
    ])
}

fn command(_session: &mut Session, args: &mut Args) -> Result {
    let Some(sub) = args.next_opt() else {
        return reply(Reply::Array(all().map(command_info).collect()));
    };
    match String::from_utf8_lossy(&sub).to_ascii_uppercase().as_str() {
        "COUNT" => {
            args.finish().map_err(|_| wrong_arity("command|count"))?;
            reply(Reply::Int(all().count() as i64))
        }
        "LIST" => reply(Reply::Array(all().map(|spec| Reply::bulk(spec.name)).collect())),
        "INFO" => {
            let names = args.rest();
            if names.is_empty() {
                return reply(Reply::Array(all().map(command_info).collect()));
            }
            reply(Reply::Array(names.iter().map(|name| lookup(name).map_or(Reply::NilArray, command_info)).collect()))
        }
        "DOCS" => {
            let names = args.rest();
            let specs: Vec<&Spec> =
                if names.is_empty() { all().collect() } else { names.iter().filter_map(|n| lookup(n)).collect() };
            reply(Reply::Map(specs.into_iter().map(|spec| (Reply::bulk(spec.name), command_docs(spec))).collect()))
        }
        "HELP" => reply(help(&[
            "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "HELP",
            "    Print this help.",
        ])),
        _ => Err(unknown_subcommand(&sub, "command")),
    }
}

pub(super) const COMMANDS: &[Spec] = &[
    spec!("time", 1, LOADING | STALE | FAST, 0, 0, 0, "server", "2.6.0", "Returns the server time.", time),
    spec!(
        "lastsave",
        1,
        LOADING | STALE | FAST,
        0,
        0,
        0,
        "server",
        "1.0.0",
        "Returns the Unix timestamp of the last successful save to disk.",
        lastsave
    ),
    spec!(
        "save",
        1,
        ADMIN | NOSCRIPT,
        0,
        0,
        0,
        "server",
        "1.0.0",
        "Synchronously saves the database(s) to disk.",
        save
    ),
    spec!(
        "bgsave",
        -1,
        ADMIN | NOSCRIPT,
        0,
        0,
        0,
        "server",
        "1.0.0",
        "Asynchronously saves the database(s) to disk.",
        bgsave
    ),
    spec!(
        "info",
        -1,
        LOADING | STALE,
        0,
        0,
        0,
        "server",
        "1.0.0",
        "Returns information and statistics about the server.",
        info
    ),
    spec!(
        "config",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "server",
        "2.0.0",
        "A container for server configuration commands.",
        config
    ),
    spec!(
        "command",
        -1,
        LOADING | STALE,
        0,
        0,
        0,
        "server",
        "2.8.13",
        "Returns detailed information about all commands.",
        command
    ),
];
