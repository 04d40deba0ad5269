//! Redis's CONFIG parameters: every one Redis 7.0 has, with its validation,
//! for CONFIG GET, SET and REWRITE.
//!
//! [`Params`] holds every parameter's value as CONFIG GET answers it. A SET
//! of several pairs checks them all before it changes any (Redis's
//! atomicity: all or nothing). The parameters Seshat acts on
//! ([`params::Use::Applied`]) are mirrored into typed fields of the
//! server's settings by [`Params::apply`]; the others are stored, reported
//! and rewritten only.

mod params;
mod rewrite;
mod value;

use std::collections::BTreeMap;

pub(crate) use params::{find, Param, Use, PARAMETERS};
pub(crate) use rewrite::rewrite;

use crate::server::Settings;

/// Every parameter's current value, by canonical name.
#[derive(Debug, Clone)]
pub struct Params {
    values: BTreeMap<&'static str, String>,
}

impl Default for Params {
    fn default() -> Self {
        Params { values: PARAMETERS.iter().map(|p| (p.name, p.default.to_string())).collect() }
    }
}

/// Why a CONFIG SET was refused: Redis's error line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl Params {
    /// The value of `param` (a canonical name from the table).
    pub(crate) fn get(&self, param: &Param) -> &str {
        self.values.get(param.name).map(String::as_str).unwrap_or(param.default)
    }

    /// The value of the parameter called `name`.
    pub(crate) fn value(&self, name: &str) -> &str {
        find(name).map(|param| self.get(param)).unwrap_or_default()
    }

    /// Records what the node has (port, bind, dir, …) for [`Use::Fact`]
    /// parameters; CONFIG SET refuses to change those.
    pub(crate) fn set_fact(&mut self, name: &'static str, value: String) {
        self.values.insert(name, value);
    }

    /// Sets every `(name, value)` pair, or none: the first invalid pair is
    /// the error, in Redis 7.0's words.
    pub fn set(&mut self, pairs: &[(String, String)]) -> Result<(), ConfigError> {
        let mut changes: Vec<(&'static Param, String)> = Vec::with_capacity(pairs.len());
        for (name, _) in pairs {
            let param = find(name).ok_or_else(|| {
                ConfigError(format!("ERR Unknown option or number of arguments for CONFIG SET - '{name}'"))
            })?;
            let failed = |reason: &str| {
                ConfigError(format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"))
            };
            if !param.mutable {
                return Err(failed("can't set immutable config"));
            }
            if changes.iter().any(|(seen, _)| seen.name == param.name) {
                return Err(failed("duplicate parameter"));
            }
            changes.push((param, String::new()));
        }
        for ((param, canonical), (name, value)) in changes.iter_mut().zip(pairs) {
            *canonical = param.kind.parse(value).map_err(|reason| {
                ConfigError(format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"))
            })?;
            if param.name == "client-output-buffer-limit" {
                *canonical = value::merge_output_buffer_limit(self.get(param), canonical);
            }
        }
        for (param, canonical) in changes {
            self.values.insert(param.name, canonical);
        }
        Ok(())
    }

    /// The pairs whose name (or alias) matches one of `patterns` (Redis glob,
    /// case-insensitive), each name once, in table order.
    pub(crate) fn matching(&self, patterns: &[bytes::Bytes]) -> Vec<(&'static str, &str)> {
        let matches = |name: &str| {
            patterns.iter().any(|pattern| kv::glob_matches(&pattern.to_ascii_lowercase(), name.as_bytes()))
        };
        let mut pairs = Vec::new();
        for param in PARAMETERS {
            for name in [Some(param.name), param.alias].into_iter().flatten() {
                if matches(name) {
                    pairs.push((name, self.get(param)));
                }
            }
        }
        pairs
    }

    /// The parameters whose value is not the default, with their values.
    pub(crate) fn changed(&self) -> impl Iterator<Item = (&'static Param, &str)> {
        PARAMETERS.iter().filter(|p| p.seshat != Use::Fact).map(|p| (p, self.get(p))).filter(|(p, v)| *v != p.default)
    }

    /// Sets the parameters a config file (or a flag) gives at start: like
    /// [`Params::set`], but immutable ones may be set too, as Redis's
    /// config file may; only the node's facts may not.
    pub(crate) fn load(&mut self, pairs: &[(String, String)]) -> Result<(), ConfigError> {
        for (name, value) in pairs {
            let param = find(name)
                .filter(|p| p.seshat != Use::Fact)
                .ok_or_else(|| ConfigError(format!("'{name}' is not a Redis parameter a config file may set")))?;
            let canonical =
                param.kind.parse(value).map_err(|reason| ConfigError(format!("'{name}' = '{value}': {reason}")))?;
            self.values.insert(param.name, canonical);
        }
        Ok(())
    }

    /// Mirrors the parameters Seshat acts on into `config`'s typed fields.
    pub(crate) fn apply(&self, config: &mut Settings) {
        let number = |name: &str| self.value(name).parse::<i64>().unwrap_or_default();
        let password = self.value("requirepass");
        config.requirepass = (!password.is_empty()).then(|| password.to_string());
        config.maxclients = number("maxclients") as usize;
        config.proto_max_bulk_len = number("proto-max-bulk-len") as usize;
        config.timeout_secs = number("timeout") as u64;
        config.slowlog_slower_than_us = number("slowlog-log-slower-than");
        config.slowlog_max_len = number("slowlog-max-len") as usize;
        config.latency_threshold_ms = number("latency-monitor-threshold") as u64;
        config.latency_tracking = self.value("latency-tracking") == "yes";
        config.encodings = kv::EncodingLimits {
            hash_entries: number("hash-max-listpack-entries") as u64,
            hash_value: number("hash-max-listpack-value") as u64,
            set_intset_entries: number("set-max-intset-entries") as u64,
            zset_entries: number("zset-max-listpack-entries") as u64,
            zset_value: number("zset-max-listpack-value") as u64,
            list_size: number("list-max-listpack-size"),
        };
        config.hll_sparse_max_bytes = number("hll-sparse-max-bytes") as u64;
        config.tracking_table_max_keys = number("tracking-table-max-keys") as u64;
        config.notify_keyspace_events =
            kv::notify::NotifyFlags::parse(self.value("notify-keyspace-events")).unwrap_or_default();
        config.params = self.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_set_of_several_pairs_is_all_or_nothing() {
        let mut params = Params::default();
        params.set(&pairs(&[("hash-max-ziplist-value", "10"), ("MAXCLIENTS", "5")])).unwrap();
        assert_eq!(params.value("hash-max-listpack-value"), "10");
        assert_eq!(params.value("maxclients"), "5");
        let error = params.set(&pairs(&[("maxclients", "7"), ("timeout", "-1")])).unwrap_err();
        assert_eq!(
            error.0,
            "ERR CONFIG SET failed (possibly related to argument 'timeout') - argument must be between 0 and \
             2147483647 inclusive"
        );
        assert_eq!(params.value("maxclients"), "5", "nothing of a refused SET is applied");
        let error = params.set(&pairs(&[("nosuch", "1")])).unwrap_err();
        assert_eq!(error.0, "ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'");
        let error = params.set(&pairs(&[("timeout", "1"), ("timeout", "2")])).unwrap_err();
        assert!(error.0.ends_with("- duplicate parameter"), "{}", error.0);
        let error = params.set(&pairs(&[("databases", "2")])).unwrap_err();
        assert!(error.0.ends_with("- can't set immutable config"), "{}", error.0);
    }

    #[test]
    fn get_lists_aliases_too() {
        let params = Params::default();
        let names: Vec<&str> =
            params.matching(&[bytes::Bytes::from_static(b"hash-max-*")]).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "hash-max-listpack-entries",
                "hash-max-ziplist-entries",
                "hash-max-listpack-value",
                "hash-max-ziplist-value"
            ]
        );
    }
}
