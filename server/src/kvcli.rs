//! `ordo keygen` and `ordo kv ...`: the command-line client.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ordo_client::{Client, keyfile};
use ordo_txn::{SigningKey, StreamId};
use std::path::PathBuf;

/// The key file `ordo dev` creates for the CLI user, and the CLI's default.
pub const DEFAULT_KEY_FILE: &str = "./ordo-data/cli.key";

/// The stream `ordo dev` creates for the CLI user, and the CLI's default.
pub const DEFAULT_STREAM: &str = "default";

/// Options shared by the `kv` commands.
#[derive(Debug, Args)]
pub struct KvArgs {
    /// The node: `host:port` or `http://host:port`.
    #[arg(long, env = "ORDO_ENDPOINT", default_value = ordo_client::DEFAULT_ENDPOINT, global = true)]
    pub endpoint: String,
    /// Key file to sign with (`ordo keygen` makes one).
    #[arg(long = "key", id = "key_file", env = "ORDO_KEY", default_value = DEFAULT_KEY_FILE, global = true)]
    pub key_file: PathBuf,
    /// Stream name, under the key's own account.
    #[arg(long, default_value = DEFAULT_STREAM, global = true)]
    pub stream: String,
    /// A stream id (64 hex digits), for another account's stream; overrides --stream.
    #[arg(long, global = true)]
    pub stream_id: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: KvCommand,
}

/// The `kv` commands.
#[derive(Debug, Subcommand)]
pub enum KvCommand {
    /// Read a key (exit status 1 if it has no value).
    Get {
        /// The key.
        key: String,
    },
    /// Write a key.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Delete a key.
    Del {
        /// The key.
        key: String,
    },
    /// List keys in order, optionally under a prefix.
    Scan {
        /// Only keys starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
        /// At most this many rows.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

/// Options of `ordo keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the key (never overwritten).
    #[arg(long, default_value = "./ordo.key")]
    pub out: PathBuf,
}

/// Writes a new key file and prints its address.
pub fn keygen(args: &KeygenArgs) -> anyhow::Result<()> {
    let key = keyfile::create(&args.out)?;
    println!("{} {}", keyfile::address_hex(&key), args.out.display());
    Ok(())
}

fn stream_of(args: &KvArgs, key: &SigningKey) -> anyhow::Result<StreamId> {
    match &args.stream_id {
        Some(hex) => keyfile::parse_hex::<32>(hex).context("--stream-id must be 64 hex digits"),
        None => Ok(ordo_txn::stream_id(
            &ordo_txn::address_of(key),
            args.stream.as_bytes(),
        )),
    }
}

fn quote(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

/// Runs a `kv` command.
pub async fn run(args: KvArgs) -> anyhow::Result<()> {
    let key = keyfile::load(&args.key_file)?;
    let stream = stream_of(&args, &key)?;
    let client = Client::connect(&args.endpoint).await?;
    match &args.command {
        KvCommand::Get { key: k } => {
            let read = client.get_at(stream, k.as_bytes(), 0).await?;
            if args.json {
                println!(
                    "{{\"key\":{},\"found\":{},\"value\":{},\"version\":{}}}",
                    quote(k.as_bytes()),
                    read.found,
                    quote(&read.value),
                    read.value_version
                );
            } else if read.found {
                println!("{}", String::from_utf8_lossy(&read.value));
            }
            if !read.found {
                if !args.json {
                    eprintln!("{k}: not found");
                }
                std::process::exit(1);
            }
        }
        KvCommand::Put { key: k, value } => {
            write(&client, &key, stream, k, Some(value.as_bytes()), args.json).await?
        }
        KvCommand::Del { key: k } => write(&client, &key, stream, k, None, args.json).await?,
        KvCommand::Scan { prefix, limit } => {
            let rows = client
                .scan_prefix(stream, prefix.as_bytes(), *limit)
                .await?;
            for row in rows {
                if args.json {
                    println!(
                        "{{\"key\":{},\"value\":{},\"version\":{}}}",
                        quote(&row.key),
                        quote(&row.value),
                        row.version
                    );
                } else {
                    println!(
                        "{}\t{}",
                        String::from_utf8_lossy(&row.key),
                        String::from_utf8_lossy(&row.value)
                    );
                }
            }
        }
    }
    Ok(())
}

async fn write(
    client: &Client,
    signer: &SigningKey,
    stream: StreamId,
    key: &str,
    value: Option<&[u8]>,
    json: bool,
) -> anyhow::Result<()> {
    let result = client
        .transact(signer, async |tx| {
            match value {
                Some(v) => tx.put(stream, key.as_bytes(), v),
                None => tx.delete(stream, key.as_bytes()),
            }
            Ok(())
        })
        .await;
    match result {
        Ok(((), version)) if json => println!("{{\"committed\":true,\"version\":{version}}}"),
        Ok(((), version)) => println!("committed at version {version}"),
        Err(e) => bail!(e),
    }
    Ok(())
}
