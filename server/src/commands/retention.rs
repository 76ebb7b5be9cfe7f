//! `ordo compact` and `ordo retention`: how much history the log keeps
//! (docs/RETENTION.md): raise the horizon now, show or set the policy.

use anyhow::Context;
use clap::{Args, Subcommand};
use ordo_txn::retention::KEEP_ALL_VERSIONS;
use ordo_txn::{AclOp, RetentionOp};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Where to send a retention command, and as whom.
#[derive(Debug, Args)]
pub struct ActingArgs {
    /// The node to talk to: `host:port` or `http://host:port`.
    #[arg(long, env = "ORDO_ENDPOINT", default_value = ordo_client::DEFAULT_ENDPOINT, global = true)]
    pub endpoint: String,
    /// The key file of the acting account: the log's admin (or, for
    /// `compact`, a gateway).
    #[arg(long = "key", env = "ORDO_KEY", global = true)]
    pub key_file: Option<PathBuf>,
}

/// Options of `ordo compact`.
#[derive(Debug, Args)]
pub struct CompactArgs {
    /// The new horizon: reads, snapshots and watch resumes below this
    /// version are refused from then on, and their history is collected.
    #[arg(long)]
    pub to: u64,
    /// Node and key.
    #[command(flatten)]
    pub acting: ActingArgs,
}

/// Options of `ordo retention`.
#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: RetentionCommand,
    /// Node and key.
    #[command(flatten)]
    pub acting: ActingArgs,
}

/// The subcommands of `ordo retention`.
#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// The policy, the horizon and what the node has collected.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Set the policy (the log's admin): how much history is kept at least.
    Set {
        /// The newest versions never compacted, or `all` to keep every
        /// version (no compaction at all).
        #[arg(long, value_parser = parse_keep_versions)]
        keep_versions: u64,
        /// Seconds of history the gateways' compactors keep.
        #[arg(long)]
        keep_secs: u64,
    },
}

fn parse_keep_versions(text: &str) -> Result<u64, String> {
    match text {
        "all" => Ok(KEEP_ALL_VERSIONS),
        n => n
            .parse()
            .map_err(|e| format!("a number of versions, or `all`: {e}")),
    }
}

/// Runs `ordo compact`.
pub async fn compact(args: CompactArgs) -> anyhow::Result<()> {
    let op = RetentionOp::Compact { to: args.to };
    let version = commit(&args.acting, op).await?;
    println!(
        "compacted at version {version}: history is kept from version {} on",
        args.to
    );
    Ok(())
}

/// Runs `ordo retention`.
pub async fn run(args: RetentionArgs) -> anyhow::Result<()> {
    match args.command {
        RetentionCommand::Status { json } => status(&args.acting.endpoint, json).await,
        RetentionCommand::Set {
            keep_versions,
            keep_secs,
        } => {
            let op = RetentionOp::SetPolicy {
                keep_versions,
                keep_secs,
            };
            let version = commit(&args.acting, op).await?;
            println!("retention policy set at version {version}");
            Ok(())
        }
    }
}

/// Commits one retention operation as the `--key` account.
async fn commit(acting: &ActingArgs, op: RetentionOp) -> anyhow::Result<u64> {
    let key = load_key(acting.key_file.as_deref())?;
    let client = ordo_client::Client::connect(&acting.endpoint).await?;
    Ok(client.apply_op(&key, AclOp::Retention(op)).await?)
}

fn load_key(key_file: Option<&Path>) -> anyhow::Result<ordo_txn::SigningKey> {
    let key_file = key_file.context("--key (or ORDO_KEY): the acting account's key file")?;
    Ok(ordo_client::keyfile::load(key_file)?)
}

/// `ordo retention status --json`, and the `retention` part of
/// `ordo status --json`.
#[derive(Debug, Serialize)]
pub struct RetentionJson {
    horizon: u64,
    /// Absent when every version is kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_versions: Option<u64>,
    keep_secs: u64,
    collected_rows: u64,
    swept_deletes: u64,
    stored_versions: u64,
}

impl RetentionJson {
    /// The JSON form of the node's retention status.
    pub fn of(status: &ordo_proto::v1::RetentionStatus) -> Self {
        Self {
            horizon: status.horizon,
            keep_versions: (status.keep_versions != KEEP_ALL_VERSIONS)
                .then_some(status.keep_versions),
            keep_secs: status.keep_secs,
            collected_rows: status.collected_rows,
            swept_deletes: status.swept_deletes,
            stored_versions: status.stored_versions,
        }
    }
}

/// The policy in words.
pub fn describe_policy(status: &ordo_proto::v1::RetentionStatus) -> String {
    match status.keep_versions {
        KEEP_ALL_VERSIONS => "keeps every version".to_string(),
        n => format!(
            "keeps the newest {n} versions and {} s of history",
            status.keep_secs
        ),
    }
}

async fn status(endpoint: &str, json: bool) -> anyhow::Result<()> {
    let client = ordo_client::Client::connect(endpoint).await?;
    let retention = client
        .status()
        .await?
        .retention
        .context("the node reported no retention status")?;
    if json {
        return crate::commands::json::print(&RetentionJson::of(&retention));
    }
    println!("horizon        {}", retention.horizon);
    println!("policy         {}", describe_policy(&retention));
    println!(
        "collected      {} rows, {} deletes swept; about {} versions stored",
        retention.collected_rows, retention.swept_deletes, retention.stored_versions
    );
    Ok(())
}
