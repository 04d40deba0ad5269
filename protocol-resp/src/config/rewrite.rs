//! CONFIG REWRITE: the node's `--config` TOML file brought up to date.
//!
//! Seshat's own settings are the file's top-level keys (the flags' names);
//! the Redis parameters that are not the default live in its `[redis]`
//! table, which the node applies at start. A parameter that is both
//! (`requirepass`, `maxclients`, `proto-max-bulk-len`) is written as the
//! top-level key. Everything else in the file (other keys, comments,
//! layout) is kept; parameters back at their default leave the table.
//! The file is replaced atomically (written beside it, then renamed).

use std::path::Path;

use toml_edit::{value, DocumentMut, Item, Table};

use super::{Params, Use};

/// The Redis parameters that are also `seshat` flags, by the flag's TOML
/// key, written as numbers where the flag is one.
const FLAG_KEYS: &[(&str, &str, bool)] = &[
    ("requirepass", "requirepass", false),
    ("maxclients", "maxclients", true),
    ("proto-max-bulk-len", "proto-max-bulk-len", true),
];

/// Rewrites `path` with `params`; the error says what failed.
pub(crate) fn rewrite(path: &Path, params: &Params) -> Result<(), String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(format!("reading {}: {error}", path.display())),
    };
    let mut document: DocumentMut = text.parse().map_err(|e| format!("parsing {}: {e}", path.display()))?;
    for (param, key, numeric) in FLAG_KEYS {
        let param = super::find(param).expect("flag parameters are in the table");
        let current = params.get(param);
        if current == param.default {
            document.remove(key);
        } else if *numeric {
            let number: i64 = current.parse().map_err(|_| format!("{key} is not a number: {current}"))?;
            document[key] = value(number);
        } else {
            document[key] = value(current);
        }
    }
    let mut redis = Table::new();
    for (param, current) in params.changed() {
        if FLAG_KEYS.iter().any(|(name, _, _)| *name == param.name) || param.seshat == Use::Fact {
            continue;
        }
        redis[param.name] = value(current);
    }
    if redis.is_empty() {
        document.remove("redis");
    } else {
        // Keep the table where it was and its comments; replace its keys.
        match document.get_mut("redis").and_then(Item::as_table_mut) {
            Some(table) => {
                let stale: Vec<String> =
                    table.iter().map(|(k, _)| k.to_string()).filter(|k| !redis.contains_key(k)).collect();
                for key in stale {
                    table.remove(&key);
                }
                for (key, item) in redis.iter() {
                    table[key] = item.clone();
                }
            }
            None => document["redis"] = Item::Table(redis),
        }
    }
    let temporary = path.with_extension("rewrite.tmp");
    std::fs::write(&temporary, document.to_string()).map_err(|e| format!("writing {}: {e}", temporary.display()))?;
    std::fs::rename(&temporary, path).map_err(|e| format!("renaming over {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrite_keeps_the_rest_of_the_file_and_drops_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seshat.toml");
        std::fs::write(&path, "# my node\ndata-dir = \"/d\"\n\n# tuned\n[redis]\nhz = \"20\"\ntimeout = \"5\"\n")
            .unwrap();
        let mut params = Params::default();
        let pairs = |items: &[(&str, &str)]| -> Vec<(String, String)> {
            items.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
        };
        params.set(&pairs(&[("timeout", "7"), ("maxclients", "50"), ("hash-max-ziplist-value", "1kb")])).unwrap();
        rewrite(&path, &params).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# my node\ndata-dir = \"/d\"\n"), "{text}");
        assert!(text.contains("maxclients = 50\n"), "{text}");
        assert!(text.contains("timeout = \"7\""), "{text}");
        assert!(text.contains("hash-max-listpack-value = \"1024\""), "{text}");
        assert!(!text.contains("hz ="), "a default leaves the table: {text}");
        assert!(text.contains("# tuned"), "{text}");
        assert!(!dir.path().join("seshat.rewrite.tmp").exists());
    }
}
