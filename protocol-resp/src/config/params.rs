//! Every parameter of Redis 7.0's CONFIG, with its kind, default, whether
//! CONFIG SET may change it, and what it does in Seshat.
//!
//! Parameters that mean nothing here are still accepted, stored, reported
//! and rewritten, so tools and test suites that tune Redis keep working;
//! [`Use::Ignored`] says why each has no effect (`docs/compatibility.md`
//! lists them).

use super::value::Kind;

/// What a parameter does in Seshat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Use {
    /// Changes what the node does (see `Config::apply`).
    Applied,
    /// Reported as the node has it (set by `seshat`'s flags or fixed).
    Fact,
    /// Stored and reported only; the reason Seshat has nothing it changes.
    Ignored(&'static str),
}

/// One CONFIG parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Param {
    pub name: &'static str,
    /// The older name Redis still accepts and lists (`slave-*`, `*-ziplist-*`).
    pub alias: Option<&'static str>,
    pub kind: Kind,
    pub default: &'static str,
    /// Whether CONFIG SET may change it.
    pub mutable: bool,
    pub seshat: Use,
}

const PERSISTENCE: Use = Use::Ignored("no RDB or AOF: every write is fsynced on a Raft majority before its reply");
const REPLICATION: Use = Use::Ignored("replication is Raft's (--initial-members, --join, SESHAT ADD-NODE)");
const CLUSTER: Use = Use::Ignored("Raft, not Redis Cluster's bus, keeps the shards available (--cluster-enabled)");
const MEMORY: Use = Use::Ignored("data lives in RocksDB on disk and is never evicted");
const ALLOCATOR: Use = Use::Ignored("RocksDB and the Rust allocator manage memory and background work");
const PROCESS: Use = Use::Ignored("the process is configured by seshat's flags and its service manager");
const TLS: Use = Use::Ignored("TLS is not served yet");
const ENCODING: Use = Use::Ignored("values live in RocksDB; no listpack, intset or quicklist exists to tune");
const SCRIPTING: Use =
    Use::Ignored("scripts are aborted after a budget of Lua instructions, the same on every replica, not after a time");
const STREAMS: Use = Use::Ignored("streams keep entries in RocksDB; `~` trimming emulates nodes of 100 entries");
const ACL: Use = Use::Ignored("ACLs are not implemented (requirepass is)");
const LATENCY_STATS: Use = Use::Ignored("INFO latencystats is not reported (LATENCY HISTOGRAM is)");
const LOG_FILTER: Use = Use::Ignored("the log filter is seshat's --log-level (tracing directives), read at start");
const CLIENT_LIMITS: Use = Use::Ignored("client buffers are bounded by proto-max-bulk-len and the pipeline limit");

const I32: i64 = i32::MAX as i64;

const fn param(name: &'static str, kind: Kind, default: &'static str, mutable: bool, seshat: Use) -> Param {
    Param { name, alias: None, kind, default, mutable, seshat }
}

const fn aliased(
    name: &'static str,
    alias: &'static str,
    kind: Kind,
    default: &'static str,
    mutable: bool,
    seshat: Use,
) -> Param {
    Param { name, alias: Some(alias), kind, default, mutable, seshat }
}

const fn yes_no(name: &'static str, default: &'static str, mutable: bool, seshat: Use) -> Param {
    param(name, Kind::Bool, default, mutable, seshat)
}

const fn int(name: &'static str, min: i64, max: i64, default: &'static str, seshat: Use) -> Param {
    param(name, Kind::Int { min, max }, default, true, seshat)
}

const fn memory(name: &'static str, min: i64, max: i64, default: &'static str, seshat: Use) -> Param {
    param(name, Kind::Memory { min, max }, default, true, seshat)
}

const fn text(name: &'static str, default: &'static str, mutable: bool, seshat: Use) -> Param {
    param(name, Kind::Text, default, mutable, seshat)
}

const fn one_of(name: &'static str, names: &'static [&'static str], default: &'static str, seshat: Use) -> Param {
    param(name, Kind::Enum(names), default, true, seshat)
}

/// Every parameter, in Redis 7.0's order.
pub(crate) const PARAMETERS: &[Param] = &[
    // yes/no
    yes_no("rdbchecksum", "yes", false, PERSISTENCE),
    yes_no("daemonize", "no", false, PROCESS),
    yes_no("io-threads-do-reads", "no", false, PROCESS),
    yes_no("always-show-logo", "no", false, PROCESS),
    yes_no("protected-mode", "yes", true, Use::Ignored("seshat listens on --resp-addr only (127.0.0.1 by default)")),
    yes_no("rdbcompression", "yes", true, PERSISTENCE),
    yes_no("rdb-del-sync-files", "no", true, PERSISTENCE),
    yes_no("activerehashing", "yes", true, ALLOCATOR),
    yes_no("stop-writes-on-bgsave-error", "yes", true, PERSISTENCE),
    yes_no("set-proc-title", "yes", false, PROCESS),
    yes_no("dynamic-hz", "yes", true, ALLOCATOR),
    yes_no("lazyfree-lazy-eviction", "no", true, ALLOCATOR),
    yes_no("lazyfree-lazy-expire", "no", true, ALLOCATOR),
    yes_no("lazyfree-lazy-server-del", "no", true, ALLOCATOR),
    yes_no("lazyfree-lazy-user-del", "no", true, ALLOCATOR),
    yes_no("lazyfree-lazy-user-flush", "no", true, ALLOCATOR),
    yes_no("repl-disable-tcp-nodelay", "no", true, REPLICATION),
    yes_no("repl-diskless-sync", "yes", true, REPLICATION),
    yes_no("aof-rewrite-incremental-fsync", "yes", true, PERSISTENCE),
    yes_no("no-appendfsync-on-rewrite", "no", true, PERSISTENCE),
    yes_no("cluster-require-full-coverage", "yes", true, CLUSTER),
    yes_no("rdb-save-incremental-fsync", "yes", true, PERSISTENCE),
    yes_no("aof-load-truncated", "yes", true, PERSISTENCE),
    yes_no("aof-use-rdb-preamble", "yes", true, PERSISTENCE),
    yes_no("aof-timestamp-enabled", "no", true, PERSISTENCE),
    aliased("cluster-replica-no-failover", "cluster-slave-no-failover", Kind::Bool, "no", true, CLUSTER),
    aliased("replica-lazy-flush", "slave-lazy-flush", Kind::Bool, "no", true, REPLICATION),
    aliased("replica-serve-stale-data", "slave-serve-stale-data", Kind::Bool, "yes", true, REPLICATION),
    aliased("replica-read-only", "slave-read-only", Kind::Bool, "yes", true, REPLICATION),
    aliased("replica-ignore-maxmemory", "slave-ignore-maxmemory", Kind::Bool, "yes", true, REPLICATION),
    yes_no("jemalloc-bg-thread", "yes", true, ALLOCATOR),
    yes_no("activedefrag", "no", true, ALLOCATOR),
    yes_no("syslog-enabled", "no", false, PROCESS),
    yes_no("cluster-enabled", "no", false, Use::Fact),
    yes_no("appendonly", "no", true, PERSISTENCE),
    yes_no("cluster-allow-reads-when-down", "no", true, CLUSTER),
    yes_no("cluster-allow-pubsubshard-when-down", "yes", true, CLUSTER),
    yes_no("crash-log-enabled", "yes", true, PROCESS),
    yes_no("crash-memcheck-enabled", "yes", true, PROCESS),
    yes_no("disable-thp", "yes", false, PROCESS),
    yes_no("cluster-allow-replica-migration", "yes", true, CLUSTER),
    yes_no("replica-announced", "yes", true, REPLICATION),
    yes_no("latency-tracking", "yes", true, Use::Applied),
    yes_no("aof-disable-auto-gc", "no", true, PERSISTENCE),
    yes_no("replica-ignore-disk-write-errors", "no", true, REPLICATION),
    // text
    text("aclfile", "", false, ACL),
    text("unixsocket", "", false, PROCESS),
    text("pidfile", "", false, PROCESS),
    aliased("replica-announce-ip", "slave-announce-ip", Kind::Text, "", true, REPLICATION),
    text("masteruser", "", true, REPLICATION),
    text("cluster-announce-ip", "", true, CLUSTER),
    text("cluster-config-file", "nodes.conf", false, CLUSTER),
    text("cluster-announce-hostname", "", true, CLUSTER),
    text("syslog-ident", "redis", false, PROCESS),
    text("dbfilename", "dump.rdb", true, PERSISTENCE),
    text("appendfilename", "appendonly.aof", false, PERSISTENCE),
    text("appenddirname", "appendonlydir", false, PERSISTENCE),
    text("server_cpulist", "", false, PROCESS),
    text("bio_cpulist", "", false, PROCESS),
    text("aof_rewrite_cpulist", "", false, PERSISTENCE),
    text("bgsave_cpulist", "", false, PERSISTENCE),
    text("ignore-warnings", "", true, PROCESS),
    text("proc-title-template", "{title} {listen-addr} {server-mode}", true, PROCESS),
    text("bind-source-addr", "", true, REPLICATION),
    text("logfile", "", false, PROCESS),
    text("masterauth", "", true, REPLICATION),
    text("requirepass", "", true, Use::Applied),
    // one of several names
    param("supervised", Kind::Enum(&["upstart", "systemd", "auto", "no"]), "no", false, PROCESS),
    param(
        "syslog-facility",
        Kind::Enum(&["user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"]),
        "local0",
        false,
        PROCESS,
    ),
    one_of("repl-diskless-load", &["disabled", "on-empty-db", "swapdb"], "disabled", REPLICATION),
    one_of("loglevel", &["debug", "verbose", "notice", "warning"], "notice", LOG_FILTER),
    one_of(
        "maxmemory-policy",
        &[
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "noeviction",
        ],
        "noeviction",
        MEMORY,
    ),
    one_of("appendfsync", &["everysec", "always", "no"], "everysec", PERSISTENCE),
    one_of("oom-score-adj", &["no", "yes", "relative", "absolute"], "no", PROCESS),
    one_of("acl-pubsub-default", &["allchannels", "resetchannels"], "resetchannels", ACL),
    one_of("sanitize-dump-payload", &["no", "yes", "clients"], "no", Use::Ignored("RESTORE always checks payloads")),
    param("enable-protected-configs", Kind::Enum(&["no", "yes", "local"]), "no", false, PROCESS),
    param("enable-debug-command", Kind::Enum(&["no", "yes", "local"]), "no", false, PROCESS),
    param("enable-module-command", Kind::Enum(&["no", "yes", "local"]), "no", false, PROCESS),
    one_of("cluster-preferred-endpoint-type", &["ip", "hostname", "unknown-endpoint"], "ip", CLUSTER),
    one_of("propagation-error-behavior", &["ignore", "panic", "panic-on-replicas"], "ignore", REPLICATION),
    param("shutdown-on-sigint", Kind::Flags(&["default", "save", "nosave", "now", "force"]), "default", true, PROCESS),
    param("shutdown-on-sigterm", Kind::Flags(&["default", "save", "nosave", "now", "force"]), "default", true, PROCESS),
    // integers
    param("databases", Kind::Int { min: 1, max: I32 }, "16", false, Use::Fact),
    param("port", Kind::Int { min: 0, max: 65535 }, "6379", false, Use::Fact),
    param("io-threads", Kind::Int { min: 1, max: 128 }, "1", false, PROCESS),
    int("auto-aof-rewrite-percentage", 0, I32, "100", PERSISTENCE),
    aliased(
        "cluster-replica-validity-factor",
        "cluster-slave-validity-factor",
        Kind::Int { min: 0, max: I32 },
        "10",
        true,
        CLUSTER,
    ),
    aliased(
        "list-max-listpack-size",
        "list-max-ziplist-size",
        Kind::Int { min: i32::MIN as i64, max: I32 },
        "-2",
        true,
        Use::Applied,
    ),
    int("tcp-keepalive", 0, I32, "300", PROCESS),
    int("cluster-migration-barrier", 0, I32, "1", CLUSTER),
    int("active-defrag-cycle-min", 1, 99, "1", ALLOCATOR),
    int("active-defrag-cycle-max", 1, 99, "25", ALLOCATOR),
    int("active-defrag-threshold-lower", 0, 1000, "10", ALLOCATOR),
    int("active-defrag-threshold-upper", 0, 1000, "100", ALLOCATOR),
    int("lfu-log-factor", 0, I32, "10", MEMORY),
    int("lfu-decay-time", 0, I32, "1", MEMORY),
    aliased("replica-priority", "slave-priority", Kind::Int { min: 0, max: I32 }, "100", true, REPLICATION),
    int("repl-diskless-sync-delay", 0, I32, "5", REPLICATION),
    int("maxmemory-samples", 1, I32, "5", MEMORY),
    int("maxmemory-eviction-tenacity", 0, 100, "10", MEMORY),
    int("timeout", 0, I32, "0", Use::Applied),
    aliased("replica-announce-port", "slave-announce-port", Kind::Int { min: 0, max: 65535 }, "0", true, REPLICATION),
    param("tcp-backlog", Kind::Int { min: 0, max: I32 }, "511", false, PROCESS),
    param("cluster-port", Kind::Int { min: 0, max: 65535 }, "0", false, CLUSTER),
    int("cluster-announce-bus-port", 0, 65535, "0", CLUSTER),
    int("cluster-announce-port", 0, 65535, "0", CLUSTER),
    int("cluster-announce-tls-port", 0, 65535, "0", CLUSTER),
    int("repl-timeout", 1, I32, "60", REPLICATION),
    aliased(
        "repl-ping-replica-period",
        "repl-ping-slave-period",
        Kind::Int { min: 1, max: I32 },
        "10",
        true,
        REPLICATION,
    ),
    int("list-compress-depth", 0, I32, "0", ENCODING),
    int("active-expire-effort", 1, 10, "1", Use::Ignored("the leader's expiry sweeper removes every due key")),
    int("hz", 0, I32, "10", ALLOCATOR),
    aliased("min-replicas-to-write", "min-slaves-to-write", Kind::Int { min: 0, max: I32 }, "0", true, REPLICATION),
    aliased("min-replicas-max-lag", "min-slaves-max-lag", Kind::Int { min: 0, max: I32 }, "10", true, REPLICATION),
    int("shutdown-timeout", 0, I32, "10", PROCESS),
    int("repl-diskless-sync-max-replicas", 0, I32, "0", REPLICATION),
    param("maxclients", Kind::UInt { min: 1, max: u32::MAX as u64 }, "10000", true, Use::Applied),
    param("unixsocketperm", Kind::Octal { max: 0o777 }, "0", false, PROCESS),
    param("socket-mark-id", Kind::UInt { min: 0, max: u32::MAX as u64 }, "0", false, PROCESS),
    param("active-defrag-max-scan-fields", Kind::UInt { min: 1, max: i64::MAX as u64 }, "1000", true, ALLOCATOR),
    param("slowlog-max-len", Kind::UInt { min: 0, max: i64::MAX as u64 }, "128", true, Use::Applied),
    param("acllog-max-len", Kind::UInt { min: 0, max: i64::MAX as u64 }, "128", true, ACL),
    aliased("busy-reply-threshold", "lua-time-limit", Kind::Int { min: 0, max: i64::MAX }, "5000", true, SCRIPTING),
    int("cluster-node-timeout", 0, i64::MAX, "15000", CLUSTER),
    int("slowlog-log-slower-than", -1, i64::MAX, "10000", Use::Applied),
    int("latency-monitor-threshold", 0, i64::MAX, "0", Use::Applied),
    memory("proto-max-bulk-len", 1024 * 1024, i64::MAX, "536870912", Use::Applied),
    int("stream-node-max-entries", 0, i64::MAX, "100", STREAMS),
    memory("repl-backlog-size", 1, i64::MAX, "1048576", REPLICATION),
    memory("maxmemory", 0, i64::MAX, "0", MEMORY),
    memory("cluster-link-sendbuf-limit", 0, i64::MAX, "0", CLUSTER),
    aliased(
        "hash-max-listpack-entries",
        "hash-max-ziplist-entries",
        Kind::UInt { min: 0, max: i64::MAX as u64 },
        "512",
        true,
        Use::Applied,
    ),
    param("set-max-intset-entries", Kind::UInt { min: 0, max: i64::MAX as u64 }, "512", true, Use::Applied),
    aliased(
        "zset-max-listpack-entries",
        "zset-max-ziplist-entries",
        Kind::UInt { min: 0, max: i64::MAX as u64 },
        "128",
        true,
        Use::Applied,
    ),
    memory("active-defrag-ignore-bytes", 1, i64::MAX, "104857600", ALLOCATOR),
    aliased(
        "hash-max-listpack-value",
        "hash-max-ziplist-value",
        Kind::Memory { min: 0, max: i64::MAX },
        "64",
        true,
        Use::Applied,
    ),
    memory("stream-node-max-bytes", 0, i64::MAX, "4096", STREAMS),
    aliased(
        "zset-max-listpack-value",
        "zset-max-ziplist-value",
        Kind::Memory { min: 0, max: i64::MAX },
        "64",
        true,
        Use::Applied,
    ),
    memory("hll-sparse-max-bytes", 0, i64::MAX, "3000", Use::Applied),
    param("tracking-table-max-keys", Kind::UInt { min: 0, max: i64::MAX as u64 }, "1000000", true, Use::Applied),
    memory("client-query-buffer-limit", 1024 * 1024, i64::MAX, "1073741824", CLIENT_LIMITS),
    param("maxmemory-clients", Kind::MemoryOrPercent, "0", true, MEMORY),
    int("repl-backlog-ttl", 0, i64::MAX, "3600", REPLICATION),
    memory("auto-aof-rewrite-min-size", 0, i64::MAX, "67108864", PERSISTENCE),
    // TLS (Redis built with TLS lists these)
    int("tls-port", 0, 65535, "0", TLS),
    int("tls-session-cache-size", 0, I32, "20480", TLS),
    int("tls-session-cache-timeout", 0, I32, "300", TLS),
    yes_no("tls-cluster", "no", true, TLS),
    yes_no("tls-replication", "no", true, TLS),
    one_of("tls-auth-clients", &["no", "yes", "optional"], "yes", TLS),
    yes_no("tls-prefer-server-ciphers", "no", true, TLS),
    yes_no("tls-session-caching", "yes", true, TLS),
    text("tls-cert-file", "", true, TLS),
    text("tls-key-file", "", true, TLS),
    text("tls-key-file-pass", "", true, TLS),
    text("tls-client-cert-file", "", true, TLS),
    text("tls-client-key-file", "", true, TLS),
    text("tls-client-key-file-pass", "", true, TLS),
    text("tls-dh-params-file", "", true, TLS),
    text("tls-ca-cert-file", "", true, TLS),
    text("tls-ca-cert-dir", "", true, TLS),
    text("tls-protocols", "", true, TLS),
    text("tls-ciphers", "", true, TLS),
    text("tls-ciphersuites", "", true, TLS),
    // special
    param("dir", Kind::Text, "", false, Use::Fact),
    param("save", Kind::Save, "", true, PERSISTENCE),
    param(
        "client-output-buffer-limit",
        Kind::OutputBufferLimit,
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        true,
        CLIENT_LIMITS,
    ),
    param("oom-score-adj-values", Kind::OomScoreAdjValues, "0 200 800", true, PROCESS),
    param("notify-keyspace-events", Kind::KeyspaceEvents, "", true, Use::Applied),
    param("bind", Kind::Text, "", false, Use::Fact),
    Param {
        name: "replicaof",
        alias: Some("slaveof"),
        kind: Kind::Text,
        default: "",
        mutable: false,
        seshat: REPLICATION,
    },
    param("latency-tracking-info-percentiles", Kind::Percentiles, "50 99 99.9", true, LATENCY_STATS),
];

/// The parameter called `name` (or by its alias), case-insensitive.
pub(crate) fn find(name: &str) -> Option<&'static Param> {
    let name = name.to_ascii_lowercase();
    PARAMETERS.iter().find(|p| p.name == name || p.alias == Some(name.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_is_a_valid_value_in_its_canonical_form() {
        for param in PARAMETERS {
            if param.seshat == Use::Fact {
                continue;
            }
            assert_eq!(param.kind.parse(param.default).as_deref(), Ok(param.default), "{}", param.name);
        }
    }

    #[test]
    fn names_and_aliases_are_unique() {
        let mut names: Vec<&str> = PARAMETERS.iter().flat_map(|p| [Some(p.name), p.alias]).flatten().collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
        // Redis 7.0.15 (with TLS) lists 192 names, aliases included.
        assert_eq!(count, 192);
    }
}
