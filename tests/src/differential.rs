//! Differential testing against a real Redis: a seeded generator of random
//! command sequences over every data type (with TTLs and transactions),
//! run against redis-server and Seshat side by side, replies compared.
//!
//! Replies are compared as [`Tree`]s after a per-command normalization
//! that removes only what Redis leaves unspecified, each case listed in
//! `docs/compatibility.md`:
//! - the order of set members, hash fields and KEYS results (sorted);
//! - remaining TTLs, which depend on timing (any positive value is 1).
//!
//! Commands whose replies are random (SPOP, SRANDMEMBER, HRANDFIELD,
//! ZRANDMEMBER, RANDOMKEY) or encoding details (OBJECT ENCODING, SCAN
//! cursors) are left to the golden scripts. Float increments are binary
//! fractions, whose long-double (Redis) and double (Seshat) renderings
//! agree.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use redis_protocol::resp2::types::OwnedFrame as Frame2;
use redis_protocol::resp3::types::OwnedFrame as Frame3;

/// A reply, independent of the protocol's framing.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub enum Tree {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Null,
    Array(Vec<Tree>),
    /// RESP3 maps, as pairs (normalized to sorted order).
    Map(Vec<(Tree, Tree)>),
    /// RESP3 sets (normalized to sorted order).
    Set(Vec<Tree>),
    Double(f64),
    Bool(bool),
}

impl From<Frame2> for Tree {
    fn from(frame: Frame2) -> Self {
        match frame {
            Frame2::SimpleString(s) => Tree::Status(String::from_utf8_lossy(&s).into_owned()),
            Frame2::Error(e) => Tree::Error(e),
            Frame2::Integer(n) => Tree::Int(n),
            Frame2::BulkString(b) => Tree::Bulk(b),
            Frame2::Null => Tree::Null,
            Frame2::Array(items) => Tree::Array(items.into_iter().map(Tree::from).collect()),
        }
    }
}

impl From<Frame3> for Tree {
    fn from(frame: Frame3) -> Self {
        match frame {
            Frame3::BlobString { data, .. } | Frame3::VerbatimString { data, .. } => Tree::Bulk(data),
            Frame3::SimpleString { data, .. } => Tree::Status(String::from_utf8_lossy(&data).into_owned()),
            Frame3::SimpleError { data, .. } => Tree::Error(data),
            Frame3::BlobError { data, .. } => Tree::Error(String::from_utf8_lossy(&data).into_owned()),
            Frame3::Boolean { data, .. } => Tree::Bool(data),
            Frame3::Null => Tree::Null,
            Frame3::Number { data, .. } => Tree::Int(data),
            Frame3::Double { data, .. } => Tree::Double(data),
            Frame3::Array { data, .. } | Frame3::Push { data, .. } => {
                Tree::Array(data.into_iter().map(Tree::from).collect())
            }
            Frame3::Map { data, .. } => {
                let mut pairs: Vec<(Tree, Tree)> =
                    data.into_iter().map(|(k, v)| (Tree::from(k), Tree::from(v))).collect();
                pairs.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
                Tree::Map(pairs)
            }
            Frame3::Set { data, .. } => {
                let mut items: Vec<Tree> = data.into_iter().map(Tree::from).collect();
                sort(&mut items);
                Tree::Set(items)
            }
            other => Tree::Error(format!("unexpected frame {other:?}")),
        }
    }
}

fn sort(items: &mut [Tree]) {
    items.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
}

/// What may legitimately differ in a command's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Norm {
    Exact,
    /// An array whose order is unspecified.
    Unordered,
    /// A flat array of pairs (or a map) whose order is unspecified.
    UnorderedPairs,
    /// `[cursor, flat pairs]` of HSCAN/ZSCAN over a small collection.
    ScanPairs,
    /// A remaining time: positive values become 1.
    Remaining,
}

/// Applies `norm` to `tree`.
pub fn normalize(tree: Tree, norm: Norm) -> Tree {
    match (norm, tree) {
        (Norm::Unordered, Tree::Array(mut items)) => {
            sort(&mut items);
            Tree::Array(items)
        }
        (Norm::UnorderedPairs, Tree::Array(items)) => Tree::Array(sorted_pairs(items)),
        (Norm::ScanPairs, Tree::Array(mut items)) if items.len() == 2 => {
            if let Tree::Array(pairs) = items.pop().expect("two items") {
                items.push(Tree::Array(sorted_pairs(pairs)));
            }
            Tree::Array(items)
        }
        (Norm::Remaining, Tree::Int(n)) if n > 0 => Tree::Int(1),
        (_, tree) => tree,
    }
}

fn sorted_pairs(items: Vec<Tree>) -> Vec<Tree> {
    let mut pairs: Vec<Vec<Tree>> = items.chunks(2).map(<[Tree]>::to_vec).collect();
    pairs.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    pairs.into_iter().flatten().collect()
}

/// One command with its normalization.
#[derive(Debug, Clone)]
pub struct Command {
    pub args: Vec<String>,
    pub norm: Norm,
}

/// A step of a generated session.
#[derive(Debug, Clone)]
pub enum Step {
    Single(Command),
    /// MULTI, the commands, then EXEC (or DISCARD).
    Transaction {
        commands: Vec<Command>,
        discard: bool,
    },
}

const VALUES: &[&str] = &["a", "b", "c", "1", "2", "10", "-3", "x y", "", "007", "3.5"];
const SCORES: &[&str] = &["1", "2", "2.5", "-1", "0", "10", "+inf", "-inf"];
const BOUNDS: &[&str] = &["-inf", "+inf", "0", "1", "(1", "2", "(2.5", "10"];
const LEX: &[&str] = &["-", "+", "[a", "(a", "[c", "(b", "[x y"];
const INDEXES: &[i64] = &[0, 1, 2, -1, -2, 5, -10, 3];
const FLOATS: &[&str] = &["0.5", "1.25", "-2.5", "8"];

/// The function library every seed starts with loaded, for FCALL.
pub const LIBRARY: &str = "#!lua name=difflib
redis.register_function('lib_incr', function(keys, args) return redis.call('INCRBY', keys[1], args[1]) end)
redis.register_function{function_name='lib_get', callback=function(keys) return redis.call('GET', keys[1]) end,
  flags={'no-writes'}}
redis.register_function('lib_push', function(keys, args)
  local n = redis.call('RPUSH', keys[1], args[1])
  return {n, redis.call('LRANGE', keys[1], 0, -1)}
end)
redis.register_function('lib_fail', function(keys) return redis.call('HGET', keys[1], 'f') end)";

/// The seeded generator.
pub struct Generator {
    rng: StdRng,
    /// What every key starts with (a `{hash tag}` puts them all in one slot).
    tag: String,
    /// Whether transactions leave out commands without keys (with several
    /// shards, a transaction runs in one shard's group and refuses them).
    sharded: bool,
}

impl Generator {
    pub fn new(seed: u64) -> Self {
        Generator { rng: StdRng::seed_from_u64(seed), tag: String::new(), sharded: false }
    }

    /// A generator whose keys all start with `tag`, for a node with several
    /// shards: every command stays in the tag's shard.
    pub fn sharded(seed: u64, tag: &str) -> Self {
        Generator { tag: tag.to_string(), sharded: true, ..Generator::new(seed) }
    }

    /// The key `name` after the generator's tag.
    fn tagged(&self, name: &str) -> String {
        format!("{}{name}", self.tag)
    }

    fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
        options.choose(&mut self.rng).expect("options")
    }

    fn index(&mut self) -> String {
        INDEXES.choose(&mut self.rng).expect("indexes").to_string()
    }

    /// A key of `family` (`s`, `h`, `l`, `t`, `z`, `g`, `x`), or sometimes of any
    /// family, so that type errors are compared too.
    fn key(&mut self, family: &str) -> String {
        let family = if self.rng.random_bool(0.1) { self.pick(&["s", "h", "l", "t", "z", "g", "x"]) } else { family };
        let n = self.rng.random_range(0..3);
        self.tagged(&format!("{family}{n}"))
    }

    /// A short value, or now and then one longer than a list chunk keeps
    /// inline (Seshat stores those on their own).
    fn value(&mut self) -> String {
        if self.rng.random_bool(0.03) {
            return format!("{}-{}", "v".repeat(600), self.rng.random_range(0..3));
        }
        self.pick(VALUES).to_string()
    }

    /// The next step.
    pub fn step(&mut self) -> Step {
        if self.rng.random_bool(0.06) {
            let commands = (0..self.rng.random_range(0..5)).map(|_| self.queued_command()).collect();
            return Step::Transaction { commands, discard: self.rng.random_bool(0.1) };
        }
        Step::Single(self.command())
    }

    /// A command for a transaction: with several shards, one with keys.
    fn queued_command(&mut self) -> Command {
        loop {
            let command = self.command();
            if !self.sharded || !matches!(command.args[0].as_str(), "DBSIZE" | "FLUSHDB" | "KEYS") {
                return command;
            }
        }
    }

    /// One random command of any family.
    pub fn command(&mut self) -> Command {
        let (args, norm) = match self.rng.random_range(0..31) {
            0..=3 => self.string(),
            4..=7 => self.hash(),
            8..=11 => self.list(),
            12..=15 => self.set(),
            16..=19 => self.zset(),
            20 => self.edges(),
            21 => self.hyperloglog(),
            22 => self.geo(),
            23 | 24 => self.stream(),
            29 | 30 => self.script(),
            _ => self.keyspace(),
        };
        Command { args, norm }
    }

    /// Lua scripts over the other families' keys: commands through
    /// redis.call and redis.pcall (errors raised and caught), replies
    /// converted both ways in RESP2 and RESP3, read-only scripts, and
    /// EVALSHA of a script EVAL has cached, and FCALL of [`LIBRARY`]'s
    /// functions.
    fn script(&mut self) -> (Vec<String>, Norm) {
        const SCRIPTS: &[(&str, &str, &str)] = &[
            ("EVAL", "return redis.call('INCRBY', KEYS[1], ARGV[1])", "s"),
            ("EVAL", "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('STRLEN', KEYS[1])", "s"),
            ("EVAL", "return redis.pcall('LPUSH', KEYS[1], ARGV[1], ARGV[1])", "l"),
            ("EVAL", "local v = redis.call('GET', KEYS[1]) if v then return redis.call('APPEND', KEYS[1], ARGV[1]) end return v", "s"),
            ("EVAL", "return redis.call('HSET', KEYS[1], ARGV[1], ARGV[1])", "h"),
            ("EVAL", "return redis.call('HGETALL', KEYS[1])", "h*"),
            ("EVAL", "redis.setresp(3) return redis.call('HGETALL', KEYS[1])", "h*"),
            ("EVAL", "local n = redis.call('SCARD', KEYS[1]) redis.call('SADD', KEYS[1], ARGV[1]) return {n, redis.call('SISMEMBER', KEYS[1], ARGV[1])}", "t"),
            ("EVAL", "return redis.call('ZADD', KEYS[1], 1.5, ARGV[1])", "z"),
            ("EVAL", "redis.setresp(3) return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')", "z"),
            ("EVAL", "return {redis.call('TYPE', KEYS[1])['ok'], redis.call('EXISTS', KEYS[1])}", "l"),
            ("EVAL", "return redis.call('LPOP', KEYS[1])", "l"),
            ("EVAL", "return redis.call('XLEN', KEYS[1])", "x"),
            ("EVAL", "local r = redis.pcall('INCR', KEYS[1]) if type(r) == 'table' and r.err then return 'caught: ' .. r.err end return r", "s"),
            ("EVAL_RO", "return redis.call('GET', KEYS[1])", "s"),
            ("EVAL_RO", "return redis.call('DEL', KEYS[1])", "s"),
            ("EVAL_RO", "return redis.call('LRANGE', KEYS[1], 0, -1)", "l"),
            // e0e1f9fa… is `return 1`, which the first template of EVAL runs.
            ("EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", ""),
            ("EVAL", "return 1", ""),
            ("FCALL", "lib_incr", "s"),
            ("FCALL_RO", "lib_get", "s"),
            ("FCALL_RO", "lib_incr", "s"),
            ("FCALL", "lib_push", "l"),
            ("FCALL", "lib_fail", "h"),
            ("FCALL", "nosuchfunction", ""),
        ];
        // A family ending in `*`: the reply is a hash's pairs, whose order
        // is unspecified.
        let (command, body, family) = *SCRIPTS.choose(&mut self.rng).expect("scripts");
        let (family, norm) = match family.strip_suffix('*') {
            Some(family) => (family, Norm::UnorderedPairs),
            None => (family, Norm::Exact),
        };
        let mut args = vec![command.to_string(), body.to_string()];
        match family {
            "" => args.push("0".into()),
            family => {
                args.push("1".into());
                let key = self.key(family);
                args.push(key);
                args.push(self.pick(&["1", "7", "a", "-2"]).to_string());
            }
        }
        (args, norm)
    }

    /// Argument checks and corner cases Redis answers in a particular
    /// order: `numkeys` errors, COUNT arity, negative BITCOUNT ranges,
    /// SORT BY nosort with DESC and LIMIT. The SORT keys (`nl`, `nz`) are
    /// only ever a list and a sorted set: over a set, BY nosort follows
    /// Redis's hash order, which is unspecified.
    fn edges(&mut self) -> (Vec<String>, Norm) {
        let numkeys = self.pick(&["0", "-1", "x", "1", "3"]).to_string();
        let exact = |args: Vec<String>| (args, Norm::Exact);
        match self.rng.random_range(0..9) {
            0 => exact(vec!["LMPOP".into(), numkeys, self.key("l"), "LEFT".into()]),
            1 => exact(vec!["ZMPOP".into(), numkeys, self.key("z"), "MIN".into()]),
            2 => exact(vec!["SINTERCARD".into(), numkeys, self.key("t")]),
            3 => exact(vec![self.pick(&["LPOP", "RPOP"]).into(), self.key("l"), "1".into(), "1".into()]),
            4 => {
                let (start, end) = (self.rng.random_range(-8..3), self.rng.random_range(-8..3));
                exact(vec!["BITCOUNT".into(), self.key("s"), start.to_string(), end.to_string()])
            }
            5 => exact(vec!["RPUSH".into(), self.tagged("nl"), self.value(), self.value()]),
            6 => {
                let score = self.rng.random_range(0..4).to_string();
                exact(vec!["ZADD".into(), self.tagged("nz"), score, self.value()])
            }
            _ => {
                let name = self.pick(&["nl", "nz"]);
                let key = self.tagged(name);
                let mut args = vec!["SORT".into(), key, "BY".into(), "nosort".into()];
                if self.rng.random_bool(0.5) {
                    args.push("DESC".into());
                }
                if self.rng.random_bool(0.5) {
                    args.extend(["LIMIT".into(), self.rng.random_range(0..3).to_string(), "2".into()]);
                }
                exact(args)
            }
        }
    }

    /// HyperLogLog commands over the `p` keys; GET compares the sketches'
    /// bytes (sparse runs, cached cardinality) with Redis's.
    fn hyperloglog(&mut self) -> (Vec<String>, Norm) {
        let k = self.key("p");
        let exact = |args: Vec<String>| (args, Norm::Exact);
        match self.rng.random_range(0..8) {
            0 | 1 => {
                let mut args = vec!["PFADD".into(), k];
                for _ in 0..self.rng.random_range(0..4) {
                    args.push(self.value());
                }
                exact(args)
            }
            2 => {
                let (from, count) = (self.rng.random_range(0..500), self.rng.random_range(1..300));
                let mut args = vec!["PFADD".into(), k];
                args.extend((from..from + count).map(|i| format!("e{i}")));
                exact(args)
            }
            3 => exact(vec!["PFCOUNT".into(), k]),
            4 => {
                let k2 = self.key("p");
                exact(vec!["PFCOUNT".into(), k, k2])
            }
            5 => {
                let (k2, k3) = (self.key("p"), self.key("p"));
                exact(vec!["PFMERGE".into(), k, k2, k3])
            }
            6 => exact(vec!["GET".into(), k]),
            _ => exact(vec!["PFDEBUG".into(), self.pick(&["ENCODING", "DECODE"]).into(), k]),
        }
    }

    /// A position in Sicily on a 0.0001° grid, so that two members rarely
    /// share one (Redis's partial sort may order exact ties otherwise).
    fn position(&mut self) -> [String; 2] {
        let longitude = 13.0 + f64::from(self.rng.random_range(0..25_000)) / 10_000.0;
        let latitude = 37.0 + f64::from(self.rng.random_range(0..15_000)) / 10_000.0;
        [format!("{longitude:.4}"), format!("{latitude:.4}")]
    }

    fn place(&mut self) -> String {
        format!("m{}", self.rng.random_range(0..8))
    }

    /// The options every geo search takes: order, COUNT (with ANY), and
    /// (unless it stores) the WITH fields.
    fn geo_options(&mut self, args: &mut Vec<String>, stores: bool) {
        if self.rng.random_bool(0.5) {
            args.push(self.pick(&["ASC", "DESC"]).into());
        }
        if self.rng.random_bool(0.4) {
            args.extend(["COUNT".into(), self.rng.random_range(1..5).to_string()]);
            if self.rng.random_bool(0.3) {
                args.push("ANY".into());
            }
        }
        if !stores {
            for field in ["WITHDIST", "WITHCOORD", "WITHHASH"] {
                if self.rng.random_bool(0.3) {
                    args.push(field.into());
                }
            }
        }
    }

    /// Geo commands over the `g` keys (sometimes plain sorted sets or other
    /// types): positions, distances and hashes, searches by radius and box
    /// around points and members, stored searches.
    fn geo(&mut self) -> (Vec<String>, Norm) {
        let k = self.key("g");
        let exact = |args: Vec<String>| (args, Norm::Exact);
        let unit = self.pick(&["m", "km", "mi", "ft"]).to_string();
        let radius = |unit: &str, rng: &mut StdRng| -> String {
            let km = rng.random_range(1..250);
            match unit {
                "m" => (km * 1000).to_string(),
                "km" => km.to_string(),
                "mi" => (km * 5 / 8).max(1).to_string(),
                _ => (km * 3281).to_string(),
            }
        };
        match self.rng.random_range(0..10) {
            0..=2 => {
                let mut args = vec!["GEOADD".into(), k];
                if self.rng.random_bool(0.3) {
                    args.push(self.pick(&["NX", "XX", "CH"]).into());
                }
                for _ in 0..self.rng.random_range(1..4) {
                    args.extend(self.position());
                    args.push(self.place());
                }
                exact(args)
            }
            3 => {
                let command = self.pick(&["GEOPOS", "GEOHASH"]).to_string();
                let (a, b) = (self.place(), self.place());
                exact(vec![command, k, a, b])
            }
            4 => {
                let (a, b) = (self.place(), self.place());
                exact(vec!["GEODIST".into(), k, a, b, unit])
            }
            5 | 6 => {
                let stores = self.rng.random_bool(0.3);
                let mut args =
                    if stores { vec!["GEOSEARCHSTORE".into(), self.key("g"), k] } else { vec!["GEOSEARCH".into(), k] };
                if self.rng.random_bool(0.5) {
                    args.extend(["FROMMEMBER".into(), self.place()]);
                } else {
                    args.push("FROMLONLAT".into());
                    args.extend(self.position());
                }
                if self.rng.random_bool(0.5) {
                    args.extend(["BYRADIUS".into(), radius(&unit, &mut self.rng), unit]);
                } else {
                    let (width, height) = (radius(&unit, &mut self.rng), radius(&unit, &mut self.rng));
                    args.extend(["BYBOX".into(), width, height, unit]);
                }
                self.geo_options(&mut args, stores);
                if stores && self.rng.random_bool(0.5) {
                    args.push("STOREDIST".into());
                }
                exact(args)
            }
            7 | 8 => {
                let by_member = self.rng.random_bool(0.5);
                let mut args = if by_member {
                    vec![self.pick(&["GEORADIUSBYMEMBER", "GEORADIUSBYMEMBER_RO"]).into(), k, self.place()]
                } else {
                    let mut args = vec![self.pick(&["GEORADIUS", "GEORADIUS_RO"]).into(), k];
                    args.extend(self.position());
                    args
                };
                args.extend([radius(&unit, &mut self.rng), unit]);
                let stores = !args[0].ends_with("_RO") && self.rng.random_bool(0.4);
                self.geo_options(&mut args, stores);
                if stores {
                    args.extend([self.pick(&["STORE", "STOREDIST"]).into(), self.key("g")]);
                }
                exact(args)
            }
            _ => exact(vec!["ZRANGE".into(), k, "0".into(), "-1".into(), "WITHSCORES".into()]),
        }
    }

    /// A stream entry ID: small, so that commands meet, sometimes with
    /// `-*`, `-`/`+` or a bad spelling (where `any` allows them).
    fn stream_id(&mut self, any: bool) -> String {
        let (ms, seq) = (self.rng.random_range(0..30), self.rng.random_range(0..3));
        match self.rng.random_range(0..20) {
            0 if any => self.pick(&["-", "+", "bad", "1-x"]).to_string(),
            1..=4 => ms.to_string(),
            _ => format!("{ms}-{seq}"),
        }
    }

    /// A trim clause of XADD or XTRIM (exact trims, and `~` that only
    /// ever trims streams longer than a node).
    fn stream_trim(&mut self, args: &mut Vec<String>) {
        let strategy = self.pick(&["MAXLEN", "MINID"]);
        args.push(strategy.into());
        if self.rng.random_bool(0.4) {
            args.push(self.pick(&["=", "~"]).into());
        }
        args.push(match strategy {
            "MAXLEN" => self.rng.random_range(0..6).to_string(),
            _ => self.stream_id(false),
        });
        if args.contains(&"~".to_string()) && self.rng.random_bool(0.3) {
            args.extend(["LIMIT".into(), self.rng.random_range(0..3).to_string()]);
        }
    }

    /// Stream commands over the `x` keys with explicit IDs (a server's
    /// `*` IDs come from its own clock): adds, ranges, deletes, trims,
    /// reads of several streams, XSETID.
    fn stream(&mut self) -> (Vec<String>, Norm) {
        let k = self.key("x");
        let exact = |args: Vec<String>| (args, Norm::Exact);
        match self.rng.random_range(0..20) {
            12..=19 => self.stream_group(k),
            0..=3 => {
                let mut args = vec!["XADD".into(), k];
                if self.rng.random_bool(0.1) {
                    args.push("NOMKSTREAM".into());
                }
                if self.rng.random_bool(0.2) {
                    self.stream_trim(&mut args);
                }
                let id = match self.rng.random_range(0..6) {
                    0 => format!("{}-*", self.rng.random_range(0..30)),
                    _ => self.stream_id(false),
                };
                args.push(id);
                for _ in 0..self.rng.random_range(1..3) {
                    args.push(self.pick(&["f", "g", "name"]).into());
                    args.push(self.value());
                }
                exact(args)
            }
            4 | 5 => {
                let rev = self.rng.random_bool(0.3);
                let (mut start, mut end) = (self.stream_id(true), self.stream_id(true));
                for bound in [&mut start, &mut end] {
                    if self.rng.random_bool(0.2) {
                        bound.insert(0, '(');
                    }
                }
                if self.rng.random_bool(0.5) {
                    (start, end) = ("-".into(), "+".into());
                }
                let mut args =
                    if rev { vec!["XREVRANGE".into(), k, end, start] } else { vec!["XRANGE".into(), k, start, end] };
                if self.rng.random_bool(0.3) {
                    args.extend(["COUNT".into(), self.rng.random_range(-1..4).to_string()]);
                }
                exact(args)
            }
            6 => exact(vec!["XLEN".into(), k]),
            7 => {
                let mut args = vec!["XDEL".into(), k];
                args.extend((0..self.rng.random_range(1..4)).map(|_| self.stream_id(false)));
                exact(args)
            }
            8 => {
                let mut args = vec!["XTRIM".into(), k];
                self.stream_trim(&mut args);
                exact(args)
            }
            9 | 10 => {
                let mut args = vec!["XREAD".into()];
                if self.rng.random_bool(0.4) {
                    args.extend(["COUNT".into(), self.rng.random_range(0..3).to_string()]);
                }
                let keys: Vec<String> = (0..self.rng.random_range(1..3)).map(|_| self.key("x")).collect();
                let ids: Vec<String> = keys
                    .iter()
                    .map(|_| if self.rng.random_bool(0.2) { "$".into() } else { self.stream_id(false) })
                    .collect();
                args.push("STREAMS".into());
                args.extend(keys);
                args.extend(ids);
                exact(args)
            }
            _ => {
                let mut args = vec!["XSETID".into(), k, self.stream_id(false)];
                if self.rng.random_bool(0.3) {
                    args.extend(["ENTRIESADDED".into(), self.rng.random_range(0..8).to_string()]);
                }
                if self.rng.random_bool(0.3) {
                    args.extend(["MAXDELETEDID".into(), self.stream_id(false)]);
                }
                exact(args)
            }
        }
    }

    /// Consumer-group commands on stream `k`, leaving out what reports
    /// idle times (they depend on each server's clock).
    fn stream_group(&mut self, k: String) -> (Vec<String>, Norm) {
        let group = self.pick(&["g1", "g2"]).to_string();
        let consumer = self.pick(&["c1", "c2", "c3"]).to_string();
        let exact = |args: Vec<String>| (args, Norm::Exact);
        match self.rng.random_range(0..11) {
            0 => {
                let id = if self.rng.random_bool(0.5) { "$".into() } else { self.stream_id(false) };
                let mut args = vec!["XGROUP".into(), "CREATE".into(), k, group, id];
                if self.rng.random_bool(0.5) {
                    args.push("MKSTREAM".into());
                }
                exact(args)
            }
            1 => {
                let id = if self.rng.random_bool(0.5) { "$".into() } else { self.stream_id(false) };
                exact(vec!["XGROUP".into(), "SETID".into(), k, group, id])
            }
            2 => {
                let sub = self.pick(&["DESTROY", "CREATECONSUMER", "DELCONSUMER"]);
                let mut args = vec!["XGROUP".into(), sub.into(), k, group];
                if sub != "DESTROY" {
                    args.push(consumer);
                }
                exact(args)
            }
            3..=5 => {
                let mut args = vec!["XREADGROUP".into(), "GROUP".into(), group, consumer];
                if self.rng.random_bool(0.4) {
                    args.extend(["COUNT".into(), self.rng.random_range(0..3).to_string()]);
                }
                if self.rng.random_bool(0.2) {
                    args.push("NOACK".into());
                }
                let id = if self.rng.random_bool(0.7) { ">".into() } else { self.stream_id(false) };
                args.extend(["STREAMS".into(), k, id]);
                exact(args)
            }
            6 => {
                let mut args = vec!["XACK".into(), k, group];
                args.extend((0..self.rng.random_range(1..3)).map(|_| self.stream_id(false)));
                exact(args)
            }
            7 => exact(vec!["XPENDING".into(), k, group]),
            8 => exact(vec!["XINFO".into(), "GROUPS".into(), k]),
            9 => {
                let mut args = vec!["XCLAIM".into(), k, group, consumer, "0".into(), self.stream_id(false)];
                args.push(self.pick(&["JUSTID", "FORCE", "RETRYCOUNT", "LASTID"]).into());
                if args.last().is_some_and(|a| a == "RETRYCOUNT") {
                    args.push("3".into());
                } else if args.last().is_some_and(|a| a == "LASTID") {
                    args.push(self.stream_id(false));
                }
                exact(args)
            }
            _ => {
                let mut args = vec!["XAUTOCLAIM".into(), k, group, consumer, "0".into(), self.stream_id(false)];
                if self.rng.random_bool(0.5) {
                    args.extend(["COUNT".into(), self.rng.random_range(1..4).to_string()]);
                }
                exact(args)
            }
        }
    }

    fn string(&mut self) -> (Vec<String>, Norm) {
        let k = self.key("s");
        let v = self.value();
        let exact = |args: Vec<String>| (args, Norm::Exact);
        match self.rng.random_range(0..16) {
            0 => exact(vec!["SET".into(), k, v]),
            1 => {
                let option = self.pick(&["NX", "XX", "GET", "KEEPTTL"]).to_string();
                exact(vec!["SET".into(), k, v, option])
            }
            2 => exact(vec!["SET".into(), k, v, "EX".into(), "1000".into()]),
            3 | 4 => exact(vec!["GET".into(), k]),
            5 => exact(vec!["INCR".into(), k]),
            6 => exact(vec!["INCRBY".into(), k, self.index()]),
            7 => exact(vec!["APPEND".into(), k, v]),
            8 => exact(vec!["STRLEN".into(), k]),
            9 => exact(vec!["GETRANGE".into(), k, self.index(), self.index()]),
            10 => exact(vec!["SETRANGE".into(), k, self.rng.random_range(0..4).to_string(), v]),
            11 => {
                let k2 = self.key("s");
                exact(vec!["MSET".into(), k, v, k2, self.value()])
            }
            12 => {
                let k2 = self.key("s");
                exact(vec!["MGET".into(), k, k2])
            }
            13 => exact(vec!["GETDEL".into(), k]),
            14 => exact(vec!["INCRBYFLOAT".into(), k, self.pick(FLOATS).into()]),
            15 if self.rng.random_bool(0.5) => self.bits(),
            _ => exact(vec!["GETSET".into(), k, v]),
        }
    }

    fn hash(&mut self) -> (Vec<String>, Norm) {
        let k = self.key("h");
        let f = self.pick(&["f1", "f2", "f3", "n"]).to_string();
        let v = self.value();
        let exact = |args: Vec<String>| (args, Norm::Exact);
        match self.rng.random_range(0..15) {
            0 | 1 => {
                let f2 = self.pick(&["f1", "f2", "n"]).to_string();
                exact(vec!["HSET".into(), k, f, v, f2, self.value()])
            }
            2 => exact(vec!["HSETNX".into(), k, f, v]),
            3 => exact(vec!["HGET".into(), k, f]),
            4 => exact(vec!["HMGET".into(), k, f, "f2".into(), "nope".into()]),
            5 => (vec!["HGETALL".into(), k], Norm::UnorderedPairs),
            6 => exact(vec!["HDEL".into(), k, f, "f3".into()]),
            7 => exact(vec!["HEXISTS".into(), k, f]),
            8 => exact(vec!["HLEN".into(), k]),
            9 => exact(vec!["HSTRLEN".into(), k, f]),
            10 => (vec!["HKEYS".into(), k], Norm::Unordered),
            11 => (vec!["HVALS".into(), k], Norm::Unordered),
            12 => exact(vec!["HINCRBY".into(), k, f, self.index()]),
            13 => exact(vec!["HINCRBYFLOAT".into(), k, f, self.pick(FLOATS).into()]),
            _ => (vec!["HSCAN".into(), k, "0".into()], Norm::ScanPairs),
        }
    }

    fn list(&mut self) -> (Vec<String>, Norm) {
        let k = self.key("l");
        let v = self.value();
        let ends = [self.pick(&["LEFT", "RIGHT"]).to_string(), self.pick(&["LEFT", "RIGHT"]).to_string()];
        let args: Vec<String> = match self.rng.random_range(0..19) {
            0 | 1 => vec!["RPUSH".into(), k, v, self.value()],
            2 => vec!["LPUSH".into(), k, v],
            3 => vec![self.pick(&["LPUSHX", "RPUSHX"]).into(), k, v],
            4 => vec![self.pick(&["LPOP", "RPOP"]).into(), k],
            5 => vec!["LPOP".into(), k, self.rng.random_range(0..4).to_string()],
            6 => vec!["LLEN".into(), k],
            7 | 8 => vec!["LRANGE".into(), k, self.index(), self.index()],
            9 => vec!["LINDEX".into(), k, self.index()],
            10 => vec!["LSET".into(), k, self.index(), v],
            11 => vec!["LINSERT".into(), k, self.pick(&["BEFORE", "AFTER"]).into(), self.value(), v],
            12 => vec!["LREM".into(), k, self.index(), v],
            13 => vec!["LTRIM".into(), k, self.index(), self.index()],
            14 => vec![
                "LPOS".into(),
                k,
                v,
                "RANK".into(),
                self.pick(&["1", "-1", "2"]).into(),
                "COUNT".into(),
                "0".into(),
            ],
            15 => {
                let k2 = self.key("l");
                let [from, to] = ends;
                vec!["LMOVE".into(), k, k2, from, to]
            }
            16 => {
                let k2 = self.key("l");
                vec!["RPOPLPUSH".into(), k, k2]
            }
            17 => {
                let k2 = self.key("l");
                let [end, _] = ends;
                vec!["LMPOP".into(), "2".into(), k, k2, end, "COUNT".into(), "2".into()]
            }
            _ => {
                let k2 = self.key("l");
                vec!["BLPOP".into(), k, k2, "0.01".into()]
            }
        };
        (args, Norm::Exact)
    }

    fn set(&mut self) -> (Vec<String>, Norm) {
        let k = self.key("t");
        let k2 = self.key("t");
        let m = self.value();
        match self.rng.random_range(0..13) {
            0 | 1 => (vec!["SADD".into(), k, m, self.value()], Norm::Exact),
            2 => (vec!["SREM".into(), k, m], Norm::Exact),
            3 => (vec!["SMEMBERS".into(), k], Norm::Unordered),
            4 => (vec!["SISMEMBER".into(), k, m], Norm::Exact),
            5 => (vec!["SMISMEMBER".into(), k, m, "a".into()], Norm::Exact),
            6 => (vec!["SCARD".into(), k], Norm::Exact),
            7 => (vec!["SMOVE".into(), k, k2, m], Norm::Exact),
            8 => (vec![self.pick(&["SINTER", "SUNION", "SDIFF"]).into(), k, k2], Norm::Unordered),
            9 => {
                let k3 = self.key("t");
                (vec![self.pick(&["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]).into(), k3, k, k2], Norm::Exact)
            }
            10 => (vec!["SINTERCARD".into(), "2".into(), k, k2], Norm::Exact),
            11 => (vec!["SPOP".into(), k, "0".into()], Norm::Exact),
            _ => (vec!["SADD".into(), k, m], Norm::Exact),
        }
    }

    fn zset(&mut self) -> (Vec<String>, Norm) {
        let k = self.key("z");
        let k2 = self.key("z");
        let m = self.pick(&["a", "b", "c", "d", "x y"]).to_string();
        let s = self.pick(SCORES).to_string();
        let args: Vec<String> = match self.rng.random_range(0..24) {
            0..=2 => vec!["ZADD".into(), k, s, m, self.pick(SCORES).into(), "b".into()],
            3 => {
                let flag = self.pick(&["NX", "XX", "GT", "LT", "CH", "INCR"]).to_string();
                vec!["ZADD".into(), k, flag, s, m]
            }
            4 => vec!["ZINCRBY".into(), k, self.pick(&["1", "-2", "0.5"]).into(), m],
            5 => vec!["ZSCORE".into(), k, m],
            6 => vec!["ZMSCORE".into(), k, m, "nope".into()],
            7 => vec!["ZCARD".into(), k],
            8 => vec!["ZCOUNT".into(), k, self.pick(BOUNDS).into(), self.pick(BOUNDS).into()],
            9 => return self.lex(),
            10 | 11 => {
                let mut args = vec!["ZRANGE".into(), k, self.index(), self.index()];
                if self.rng.random_bool(0.3) {
                    args.push("REV".into());
                }
                if self.rng.random_bool(0.5) {
                    args.push("WITHSCORES".into());
                }
                args
            }
            12 => {
                let mut args =
                    vec!["ZRANGE".into(), k, self.pick(BOUNDS).into(), self.pick(BOUNDS).into(), "BYSCORE".into()];
                if self.rng.random_bool(0.3) {
                    args.push("REV".into());
                }
                if self.rng.random_bool(0.3) {
                    args.extend(["LIMIT".into(), self.rng.random_range(0..3).to_string(), self.index()]);
                }
                args.push("WITHSCORES".into());
                args
            }
            13 => return self.lex(),
            14 => vec![
                "ZREVRANGEBYSCORE".into(),
                k,
                self.pick(BOUNDS).into(),
                self.pick(BOUNDS).into(),
                "WITHSCORES".into(),
            ],
            15 => vec![self.pick(&["ZRANK", "ZREVRANK"]).into(), k, m],
            16 => vec!["ZREM".into(), k, m],
            17 => vec!["ZREMRANGEBYSCORE".into(), k, self.pick(BOUNDS).into(), self.pick(BOUNDS).into()],
            18 => vec!["ZREMRANGEBYRANK".into(), k, self.index(), self.index()],
            19 => vec![self.pick(&["ZPOPMIN", "ZPOPMAX"]).into(), k, self.rng.random_range(0..3).to_string()],
            20 => vec!["ZMPOP".into(), "2".into(), k, k2, self.pick(&["MIN", "MAX"]).into()],
            21 => {
                let mut args = vec![self.pick(&["ZUNION", "ZINTER"]).into(), "2".into(), k, k2];
                if self.rng.random_bool(0.5) {
                    args.extend(["WEIGHTS".into(), "2".into(), "0.5".into()]);
                }
                if self.rng.random_bool(0.5) {
                    args.extend(["AGGREGATE".into(), self.pick(&["SUM", "MIN", "MAX"]).into()]);
                }
                args.push("WITHSCORES".into());
                args
            }
            22 => {
                let k3 = self.key("z");
                vec![self.pick(&["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]).into(), k3, "2".into(), k, k2]
            }
            _ => {
                let k3 = self.key("z");
                vec!["ZRANGESTORE".into(), k3, k, self.index(), self.index()]
            }
        };
        (args, Norm::Exact)
    }

    /// Bit commands on the string keys.
    fn bits(&mut self) -> (Vec<String>, Norm) {
        let k = self.key("s");
        let offset = self.rng.random_range(0..40).to_string();
        let args = match self.rng.random_range(0..6) {
            0 => vec!["SETBIT".into(), k, offset, self.pick(&["0", "1"]).into()],
            1 => vec!["GETBIT".into(), k, offset],
            2 => vec!["BITCOUNT".into(), k, self.index(), self.index(), self.pick(&["BYTE", "BIT"]).into()],
            3 => vec!["BITPOS".into(), k, self.pick(&["0", "1"]).into(), self.index()],
            4 => {
                let k2 = self.key("s");
                vec!["BITOP".into(), self.pick(&["AND", "OR", "XOR"]).into(), self.tagged("s2"), k, k2]
            }
            _ => vec![
                "BITFIELD".into(),
                k,
                "INCRBY".into(),
                "i5".into(),
                offset,
                "7".into(),
                "GET".into(),
                "u4".into(),
                "0".into(),
            ],
        };
        (args, Norm::Exact)
    }

    /// Lexicographic ranges, on sorted sets whose scores are all 0 (the
    /// only case Redis defines them for).
    fn lex(&mut self) -> (Vec<String>, Norm) {
        let n = self.rng.random_range(0..2);
        let k = self.tagged(&format!("x{n}"));
        let (min, max) = (self.pick(LEX).to_string(), self.pick(LEX).to_string());
        let args = match self.rng.random_range(0..5) {
            0 | 1 => vec!["ZADD".into(), k, "0".into(), self.value(), "0".into(), self.value()],
            2 => vec![self.pick(&["ZRANGEBYLEX", "ZLEXCOUNT", "ZREMRANGEBYLEX"]).into(), k, min, max],
            3 => vec!["ZREVRANGEBYLEX".into(), k, max, min],
            _ => vec!["ZRANGE".into(), k, min, max, "BYLEX".into(), "LIMIT".into(), "1".into(), "2".into()],
        };
        (args, Norm::Exact)
    }

    fn keyspace(&mut self) -> (Vec<String>, Norm) {
        let family = self.pick(&["s", "h", "l", "t", "z", "x"]).to_string();
        let k = self.key(&family);
        let k2 = self.key(&family);
        match self.rng.random_range(0..13) {
            0 => (vec!["DEL".into(), k, k2], Norm::Exact),
            1 => (vec!["EXISTS".into(), k, k2], Norm::Exact),
            2 => (vec!["TYPE".into(), k], Norm::Exact),
            3 => (vec![self.pick(&["RENAME", "RENAMENX"]).into(), k, k2], Norm::Exact),
            4 => (vec!["COPY".into(), k, k2, "REPLACE".into()], Norm::Exact),
            5 => (vec!["EXPIRE".into(), k, "1000".into()], Norm::Exact),
            6 => (vec!["PERSIST".into(), k], Norm::Exact),
            7 => (vec![self.pick(&["TTL", "PTTL"]).into(), k], Norm::Remaining),
            8 if self.rng.random_bool(0.2) => (vec!["FLUSHDB".into()], Norm::Exact),
            8 => (vec!["DBSIZE".into()], Norm::Exact),
            9 => (vec!["KEYS".into(), self.tagged(&format!("{family}*"))], Norm::Unordered),
            10 if self.rng.random_bool(0.5) => {
                let mut args = vec!["SORT".into(), k];
                if self.rng.random_bool(0.5) {
                    args.push("ALPHA".into());
                }
                if self.rng.random_bool(0.3) {
                    args.extend(["LIMIT".into(), "1".into(), "2".into()]);
                }
                if self.rng.random_bool(0.3) {
                    args.extend(["STORE".into(), self.tagged("l2")]);
                }
                (args, Norm::Exact)
            }
            10 => (vec!["EXPIRE".into(), k, "0".into()], Norm::Exact),
            11 => {
                // GT never repeats an earlier PEXPIRE's amount: the new time
                // would tie the current one only within the same
                // millisecond, which Redis's clock and Seshat's entry
                // stamps do not share.
                let flag = self.pick(&["NX", "XX", "GT", "LT"]);
                let amount = if flag == "GT" { self.pick(&["400000", "600000"]) } else { "500000" };
                (vec!["PEXPIRE".into(), k, amount.into(), flag.into()], Norm::Exact)
            }
            _ => (vec!["FLUSHDB".into()], Norm::Exact),
        }
    }
}
