//! Server commands: INFO, CONFIG, COMMAND, TIME, SAVE and friends.

use std::sync::atomic::Ordering;

use kv::{CommandError, Reply};

use super::flags::{self, ADMIN, FAST, LOADING, NOSCRIPT, NO_MULTI, STALE};
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
    // Inside MULTI Redis cannot fork, so it answers that it scheduled one.
    let text = if session.transaction.is_some() { "Background saving scheduled" } else { "Background saving started" };
    reply(Reply::Status(text.into()))
}

fn info(session: &mut Session, args: &mut Args) -> Result {
    let requested: Vec<String> = args.rest().iter().map(|s| String::from_utf8_lossy(s).to_ascii_lowercase()).collect();
    let server = session.server.clone();
    let kv = server.kv.clone();
    super::read_local(session, move |ctx| {
        // Stored databases, named as SELECT names them (SWAPDB may have
        // swapped them).
        let mut databases = Vec::new();
        for (db, keys, expires) in ctx.keyspace()? {
            databases.push((kv.logical_db(db)?, keys, expires));
        }
        databases.sort_unstable();
        let keyspace: Vec<String> = databases
            .into_iter()
            .map(|(db, keys, expires)| format!("db{db}:keys={keys},expires={expires},avg_ttl=0"))
            .collect();
        let text = info_text(&server, &kv, &requested, &keyspace);
        Ok(Reply::Verbatim(text))
    })
}

/// The INFO sections in Redis's order; `default` and `all` select all.
const SECTIONS: [&str; 8] =
    ["server", "clients", "memory", "persistence", "stats", "replication", "cluster", "keyspace"];

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
            format!("maxclients:{}", server.maxclients()),
            format!("blocked_clients:{}", kv.blocked().count()),
            format!("blocked_clients_in_cluster:{}", kv.blocked().in_cluster()),
            format!("tracking_clients:{}", server.tracking.stats().0),
        ],
        "memory" => {
            let rss = storage::resident_bytes();
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
        "stats" => {
            let tracking = server.tracking.stats();
            vec![
                format!("total_connections_received:{}", stats.total_connections_received.load(Ordering::Relaxed)),
                format!("total_commands_processed:{}", stats.total_commands_processed.load(Ordering::Relaxed)),
                format!("total_net_input_bytes:{}", stats.total_net_input_bytes.load(Ordering::Relaxed)),
                format!("total_net_output_bytes:{}", stats.total_net_output_bytes.load(Ordering::Relaxed)),
                format!("rejected_connections:{}", stats.rejected_connections.load(Ordering::Relaxed)),
                format!("expired_keys:{}", kv_stats.expired_keys.load(Ordering::Relaxed)),
                "evicted_keys:0".into(),
                format!("keyspace_hits:{}", kv_stats.keyspace_hits.load(Ordering::Relaxed)),
                format!("keyspace_misses:{}", kv_stats.keyspace_misses.load(Ordering::Relaxed)),
                format!("tracking_total_keys:{}", tracking.1),
                format!("tracking_total_items:{}", tracking.2),
                format!("tracking_total_prefixes:{}", tracking.3),
            ]
        }
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
        "cluster" => vec![format!("cluster_enabled:{}", u8::from(server.facts.cluster_enabled))],
        "keyspace" => keyspace.to_vec(),
        _ => Vec::new(),
    }
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.2}G", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.2}M", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.2}K", b as f64 / (1u64 << 10) as f64),
        b => format!("{b}B"),
    }
}

fn config(session: &mut Session, args: &mut Args) -> Result {
    let sub = args.next()?;
    match String::from_utf8_lossy(&sub).to_ascii_uppercase().as_str() {
        "GET" => {
            if args.remaining() == 0 {
                return Err(wrong_arity("config|get"));
            }
            let patterns = args.rest();
            let settings = session.server.config.read().expect("config lock");
            let pairs = settings.params.matching(&patterns);
            reply(Reply::Map(
                pairs.into_iter().map(|(name, value)| (Reply::bulk(name), Reply::bulk(value.to_string()))).collect(),
            ))
        }
        "SET" => {
            if args.remaining() < 2 {
                return Err(wrong_arity("config|set"));
            }
            if !args.remaining().is_multiple_of(2) {
                return Err(CommandError::Syntax);
            }
            let mut pairs = Vec::new();
            while args.remaining() > 0 {
                let name = String::from_utf8_lossy(&args.next()?).into_owned();
                let value = String::from_utf8_lossy(&args.next()?).into_owned();
                pairs.push((name, value));
            }
            let mut settings = session.server.config.write().expect("config lock");
            let mut params = settings.params.clone();
            params.set(&pairs).map_err(|error| CommandError::Other(error.0))?;
            params.apply(&mut settings);
            session.server.kv.set_notify_flags(settings.notify_keyspace_events);
            reply(Reply::ok())
        }
        "REWRITE" => {
            args.finish().map_err(|_| wrong_arity("config|rewrite"))?;
            let Some(path) = session.server.facts.config_file.clone() else {
                return Err(CommandError::Other("ERR The server is running without a config file".into()));
            };
            let params = session.server.config().params;
            crate::config::rewrite(&path, &params)
                .map_err(|reason| CommandError::Other(format!("ERR Rewriting config file: {reason}")))?;
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
            "REWRITE",
            "    Rewrite the configuration file.",
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
        "GETKEYS" | "GETKEYSANDFLAGS" => {
            let with_flags = sub.eq_ignore_ascii_case(b"GETKEYSANDFLAGS");
            let full_name = if with_flags { "command|getkeysandflags" } else { "command|getkeys" };
            let words = args.rest();
            if words.len() < 2 {
                return Err(wrong_arity(full_name));
            }
            let spec = lookup(&words[0]).ok_or_else(|| CommandError::Other("ERR Invalid command specified".into()))?;
            let count = words.len() as i64;
            if (spec.arity > 0 && count != spec.arity) || (spec.arity < 0 && count < -spec.arity) {
                return Err(CommandError::Other("ERR Invalid number of arguments specified for command".into()));
            }
            let keys = super::keyspec::keys(spec, &words)
                .map_err(|_| CommandError::Other("ERR Invalid arguments specified for command".into()))?;
            if keys.is_empty() {
                return Err(CommandError::Other("ERR The command has no key arguments".into()));
            }
            reply(Reply::Array(
                keys.into_iter()
                    .map(|(key, key_flags)| match with_flags {
                        false => Reply::Bulk(key),
                        true => Reply::Array(vec![
                            Reply::Bulk(key),
                            Reply::Set(key_flags.iter().map(|f| Reply::Status((*f).into())).collect()),
                        ]),
                    })
                    .collect(),
            ))
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
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full Redis command.",
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
        ADMIN | NOSCRIPT | NO_MULTI,
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
