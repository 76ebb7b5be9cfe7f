//! Which node, which key, which stream: the options every data command
//! shares.

use anyhow::Context;
use clap::Args;
use ordo_client::{Client, keyfile};
use ordo_txn::{SigningKey, StreamId};
use std::path::PathBuf;

/// The key file `ordo dev` creates for the CLI user, and the CLI's default.
pub const DEFAULT_KEY_FILE: &str = "./ordo-data/cli.key";

/// Which node, which key, which stream: options shared by `kv`, `watch`
/// and `stream`.
#[derive(Debug, Args)]
pub struct Target {
    /// The node: `host:port` or `http://host:port`.
    #[arg(long, env = "ORDO_ENDPOINT", default_value = ordo_client::DEFAULT_ENDPOINT, global = true)]
    pub endpoint: String,
    /// Key file to sign with (`ordo keygen` makes one).
    #[arg(long = "key", id = "key_file", env = "ORDO_KEY", default_value = DEFAULT_KEY_FILE, global = true)]
    pub key_file: PathBuf,
    /// Stream name, under the key's own account.
    #[arg(long, default_value = ordo_client::DEFAULT_STREAM, global = true)]
    pub stream: String,
    /// A stream id (64 hex digits), for another account's stream; overrides --stream.
    #[arg(long, global = true)]
    pub stream_id: Option<String>,
    /// Print JSON instead of text, one object per line (see `commands::json`
    /// for how bytes that are not UTF-8 are written).
    #[arg(long, global = true)]
    pub json: bool,
    /// Sign every transaction instead of proving the key once per session
    /// (trusts no node to vouch for the sender).
    #[arg(long, global = true)]
    pub signed: bool,
}

impl Target {
    /// The stream the options name: `--stream-id`, else `--stream` under
    /// `key`'s account.
    pub fn stream_of(&self, key: &SigningKey) -> anyhow::Result<StreamId> {
        match &self.stream_id {
            Some(hex) => keyfile::parse_hex::<32>(hex).context("--stream-id must be 64 hex digits"),
            None => Ok(ordo_txn::stream_id(
                &ordo_txn::address_of(key),
                self.stream.as_bytes(),
            )),
        }
    }

    /// Loads the key, picks the stream and connects.
    pub async fn connect(&self) -> anyhow::Result<(SigningKey, StreamId, Client)> {
        let key = keyfile::load(&self.key_file)?;
        let stream = self.stream_of(&key)?;
        let mode = match self.signed {
            true => ordo_client::CommitMode::Signed,
            false => ordo_client::CommitMode::Session,
        };
        let client = Client::connect(&self.endpoint)
            .await?
            .with_commit_mode(mode);
        Ok((key, stream, client))
    }
}
