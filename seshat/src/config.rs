//! Configuration: defaults, then the TOML file given by `--config`, then
//! flags. Flags win.
//!
//! The TOML file uses the flags' names as keys (`data-dir`, `resp-addr`,
//! `storage-layout`, `requirepass`, `log-level`, `maxclients`,
//! `proto-max-bulk-len`); unknown keys are an error, so a typo never passes
//! silently.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use serde::Deserialize;
use storage::Layout;

/// Seshat: a strongly consistent database that speaks Redis, on RocksDB.
///
/// The same settings come from the command line and from the TOML file, so
/// one struct reads both: clap parses the flags, serde the file.
#[derive(Debug, Default, Parser, Deserialize)]
#[command(version, about, long_about = None)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Flags {
    /// TOML file with any of the settings below (keys as the flag names).
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Where data lives. [default: ./seshat-data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Address of the Redis (RESP) listener; port 0 picks a free port.
    /// [default: 127.0.0.1:6379]
    #[arg(long, value_name = "HOST:PORT")]
    pub resp_addr: Option<SocketAddr>,

    /// RocksDB layout: one shared instance, or one instance per service.
    /// Fixed when the data dir is created. [default: shared]
    #[arg(long, value_name = "shared|isolated")]
    pub storage_layout: Option<Layout>,

    /// Require clients to AUTH with this password.
    #[arg(long, value_name = "PASSWORD")]
    pub requirepass: Option<String>,

    /// Log filter: error, warn, info, debug, trace, or a tracing directive.
    /// [default: info]
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// Maximum number of connected Redis clients. [default: 10000]
    #[arg(long, value_name = "N")]
    pub maxclients: Option<usize>,

    /// Longest argument a Redis client may send, in bytes. [default: 536870912]
    #[arg(long, value_name = "BYTES")]
    pub proto_max_bulk_len: Option<usize>,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub config_file: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub resp_addr: SocketAddr,
    pub storage_layout: Layout,
    pub requirepass: Option<String>,
    pub log_level: String,
    pub maxclients: usize,
    pub proto_max_bulk_len: usize,
}

impl Config {
    /// Merges defaults, the file named by `--config` and the flags.
    pub fn load(flags: Flags) -> anyhow::Result<Config> {
        let file = match &flags.config {
            Some(path) => read_file(path)?,
            None => Flags::default(),
        };
        let defaults = protocol_resp::RespConfig::default();
        Ok(Config {
            config_file: flags.config,
            data_dir: flags.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("seshat-data")),
            resp_addr: flags.resp_addr.or(file.resp_addr).unwrap_or_else(|| "127.0.0.1:6379".parse().expect("valid")),
            storage_layout: flags.storage_layout.or(file.storage_layout).unwrap_or_default(),
            requirepass: flags.requirepass.or(file.requirepass).filter(|p| !p.is_empty()),
            log_level: flags.log_level.or(file.log_level).unwrap_or_else(|| "info".into()),
            maxclients: flags.maxclients.or(file.maxclients).unwrap_or(defaults.maxclients),
            proto_max_bulk_len: flags
                .proto_max_bulk_len
                .or(file.proto_max_bulk_len)
                .unwrap_or(defaults.proto_max_bulk_len),
        })
    }
}

fn read_file(path: &Path) -> anyhow::Result<Flags> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(args: &[&str], file: Option<&str>) -> anyhow::Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let mut argv = vec!["seshat".to_string()];
        if let Some(text) = file {
            let path = dir.path().join("seshat.toml");
            std::fs::write(&path, text).unwrap();
            argv.push("--config".into());
            argv.push(path.display().to_string());
        }
        argv.extend(args.iter().map(|s| s.to_string()));
        Config::load(Flags::try_parse_from(argv)?)
    }

    #[test]
    fn defaults_are_the_single_node_setup() {
        let config = load(&[], None).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("seshat-data"));
        assert_eq!(config.resp_addr.to_string(), "127.0.0.1:6379");
        assert_eq!(config.storage_layout, Layout::Shared);
        assert_eq!(config.requirepass, None);
    }

    #[test]
    fn flags_win_over_the_file() {
        let file = "data-dir = \"/from/file\"\nresp-addr = \"127.0.0.1:7000\"\nstorage-layout = \"isolated\"\n";
        let config = load(&["--resp-addr", "127.0.0.1:7001"], Some(file)).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/from/file"));
        assert_eq!(config.resp_addr.to_string(), "127.0.0.1:7001");
        assert_eq!(config.storage_layout, Layout::Isolated);
    }

    #[test]
    fn unknown_file_keys_and_bad_values_are_errors() {
        assert!(load(&[], Some("data-dri = \"x\"\n")).is_err());
        assert!(load(&["--storage-layout", "sideways"], None).is_err());
    }
}
