//! `ordo dev` configuration: a TOML file, environment variables and flags.
//!
//! Precedence, highest first: command-line flags, `ORDO_*` environment
//! variables (both through clap), the file given with `--config`, then the
//! defaults below. Unknown keys in the file are errors, so a typo never
//! silently falls back to a default.
//!
//! ```toml
//! listen = "127.0.0.1:7420"          # gRPC
//! metrics_listen = "127.0.0.1:7421"  # Prometheus, GET /metrics
//! data_dir = "./ordo-data"
//! batch_max_transactions = 16384     # per log entry, at most 16384
//! batch_max_bytes = 8388608          # per log entry, at most 64 MiB
//! batch_linger_ms = 0                # wait for more commits before appending
//! batch_gather_us = 200              # wait up to this for the commits recent batches foretell
//! log_appenders = ["0x…"]            # who may append raw entries (Log.Append)
//! da_account_bytes_per_hour = 4294967296  # blob bytes each account may disperse
//! da_max_inflight_bytes = 536870912  # blob bytes held in memory at once
//! da_default_ttl_secs = 2592000      # how long a blob is kept unless its owner says
//! ```

use crate::node::commits::BatchLimits;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Default gRPC address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7420";
/// Default metrics address.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:7421";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./ordo-data";
/// Largest configuration file read.
pub const MAX_CONFIG_BYTES: u64 = 64 * 1024;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config file {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        error: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("config file {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why (with line and column from the parser).
        reason: String,
    },
    /// A value is out of its allowed range.
    #[error("config: {0}")]
    OutOfRange(String),
}

/// Reads the config file at `path` (refusing one over
/// [`MAX_CONFIG_BYTES`]) and parses it with `parse`.
pub fn load_with<T>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, ConfigError> {
    let read = |error| ConfigError::Read {
        path: path.into(),
        error,
    };
    let size = std::fs::metadata(path).map_err(read)?.len();
    if size > MAX_CONFIG_BYTES {
        return Err(ConfigError::Invalid {
            path: path.into(),
            reason: format!("{size} bytes; the limit is {MAX_CONFIG_BYTES}"),
        });
    }
    let text = std::fs::read_to_string(path).map_err(read)?;
    parse(&text).map_err(|reason| ConfigError::Invalid {
        path: path.into(),
        reason,
    })
}

/// The file's contents: every key optional.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// gRPC listen address.
    pub listen: Option<SocketAddr>,
    /// Metrics listen address.
    pub metrics_listen: Option<SocketAddr>,
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// Most transactions per log entry.
    pub batch_max_transactions: Option<usize>,
    /// Most encoded transaction bytes per log entry.
    pub batch_max_bytes: Option<usize>,
    /// How long the batcher waits for more commits, in milliseconds.
    pub batch_linger_ms: Option<u64>,
    /// How long a batch may wait for the commits recent batches foretell,
    /// in microseconds (0: never).
    pub batch_gather_us: Option<u64>,
    /// Accounts (0x-prefixed addresses) that may append raw entries.
    pub log_appenders: Option<Vec<String>>,
    /// Bytes each account may disperse per hour.
    pub da_account_bytes_per_hour: Option<u64>,
    /// Bytes of blobs the node holds in memory at once.
    pub da_max_inflight_bytes: Option<u64>,
    /// Seconds a blob is kept when its owner does not say.
    pub da_default_ttl_secs: Option<u64>,
}

impl FileConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        load_with(path, Self::parse)
    }

    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// The accounts the file lets append raw entries.
    pub fn log_appenders(&self) -> Result<Vec<ordo_txn::Address>, ConfigError> {
        self.log_appenders
            .iter()
            .flatten()
            .map(|text| parse_address(text))
            .collect()
    }

    /// Blob dispersal's limits, defaults filled in and checked.
    pub fn da_limits(&self) -> Result<crate::node::da::DaLimits, ConfigError> {
        let defaults = crate::node::da::DaLimits::default();
        let limits = crate::node::da::DaLimits {
            account_bytes_per_hour: self
                .da_account_bytes_per_hour
                .unwrap_or(defaults.account_bytes_per_hour),
            max_inflight_bytes: self
                .da_max_inflight_bytes
                .unwrap_or(defaults.max_inflight_bytes),
            default_ttl_secs: self
                .da_default_ttl_secs
                .unwrap_or(defaults.default_ttl_secs),
        };
        limits.check().map_err(ConfigError::OutOfRange)?;
        Ok(limits)
    }

    /// The batching limits, defaults filled in and checked against the hard maxima.
    pub fn batch_limits(&self) -> Result<BatchLimits, ConfigError> {
        let defaults = BatchLimits::default();
        let limits = BatchLimits {
            max_transactions: self
                .batch_max_transactions
                .unwrap_or(defaults.max_transactions),
            max_bytes: self.batch_max_bytes.unwrap_or(defaults.max_bytes),
            linger: self
                .batch_linger_ms
                .map_or(defaults.linger, std::time::Duration::from_millis),
            gather: self
                .batch_gather_us
                .map_or(defaults.gather, std::time::Duration::from_micros),
            ..defaults
        };
        limits.check().map_err(ConfigError::OutOfRange)?;
        Ok(limits)
    }
}

/// A 0x-prefixed 20-byte address.
pub fn parse_address(text: &str) -> Result<ordo_txn::Address, ConfigError> {
    ordo_client::keyfile::parse_hex::<20>(text).ok_or_else(|| {
        ConfigError::OutOfRange(format!("{text:?} is not a 0x-prefixed 20-byte address"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses_and_typos_are_refused() {
        let config = FileConfig::parse(
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"/tmp/x\"\nbatch_max_transactions = 10\nbatch_linger_ms = 2\nbatch_gather_us = 0\n",
        )
        .unwrap();
        assert_eq!(config.listen.unwrap().port(), 9000);
        let limits = config.batch_limits().unwrap();
        assert_eq!(
            (
                limits.max_transactions,
                limits.linger.as_millis(),
                limits.gather
            ),
            (10, 2, std::time::Duration::ZERO)
        );
        let typo = FileConfig::parse("listne = \"127.0.0.1:9000\"\n").unwrap_err();
        assert!(typo.contains("listne"), "{typo}");
        assert!(FileConfig::parse("listen = 5\n").is_err());
    }

    #[test]
    fn batch_limits_past_the_hard_maxima_are_refused() {
        let config = FileConfig {
            batch_max_transactions: Some(1_000_000),
            ..FileConfig::default()
        };
        assert!(matches!(
            config.batch_limits(),
            Err(ConfigError::OutOfRange(_))
        ));
        let config = FileConfig {
            batch_max_bytes: Some(0),
            ..FileConfig::default()
        };
        assert!(config.batch_limits().is_err());
        let config = FileConfig {
            batch_gather_us: Some(1_001),
            ..FileConfig::default()
        };
        let refused = config.batch_limits().unwrap_err().to_string();
        assert!(refused.contains("batch_gather_us"), "{refused}");
    }
}
