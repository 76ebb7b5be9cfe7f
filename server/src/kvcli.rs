//! `ordo keygen` and `ordo kv ...`: the command-line client.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ordo_client::{Client, ClientError, keyfile};
use ordo_txn::{SigningKey, StreamId};
use std::path::PathBuf;

/// The key file `ordo dev` creates for the CLI user, and the CLI's default.
pub const DEFAULT_KEY_FILE: &str = "./ordo-data/cli.key";

/// The stream `ordo dev` creates for the CLI user, and the CLI's default.
pub const DEFAULT_STREAM: &str = "default";

/// Which node, which key, which stream: options shared by `kv` and `stream`.
#[derive(Debug, Args)]
pub struct Target {
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
}

/// Options of the `kv` commands.
#[derive(Debug, Args)]
pub struct KvArgs {
    /// Node, key and stream.
    #[command(flatten)]
    pub target: Target,
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
    /// Commit several puts and deletes atomically, optionally only if keys
    /// are still at the versions you expect (compare-and-set).
    Txn {
        /// `KEY=VALUE` to write (repeatable).
        #[arg(long = "put")]
        puts: Vec<String>,
        /// `KEY` to delete (repeatable).
        #[arg(long = "del")]
        deletes: Vec<String>,
        /// `KEY@VERSION`: commit only if KEY was last written (or deleted) by
        /// VERSION; 0 means never written. Repeatable.
        #[arg(long = "expect")]
        expects: Vec<String>,
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

pub(crate) fn stream_of(args: &Target, key: &SigningKey) -> anyhow::Result<StreamId> {
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

impl Target {
    /// Loads the key, picks the stream and connects.
    pub(crate) async fn connect(&self) -> anyhow::Result<(SigningKey, StreamId, Client)> {
        let key = keyfile::load(&self.key_file)?;
        let stream = stream_of(self, &key)?;
        Ok((key, stream, Client::connect(&self.endpoint).await?))
    }
}

/// Runs a `kv` command.
pub async fn run(args: KvArgs) -> anyhow::Result<()> {
    let (key, stream, client) = args.target.connect().await?;
    let json = args.target.json;
    match &args.command {
        KvCommand::Get { key: k } => {
            let read = client.get_at(stream, k.as_bytes(), 0).await?;
            if json {
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
                if !json {
                    eprintln!("{k}: not found");
                }
                std::process::exit(1);
            }
        }
        KvCommand::Put { key: k, value } => {
            write(&client, &key, stream, k, Some(value.as_bytes()), json).await?
        }
        KvCommand::Del { key: k } => write(&client, &key, stream, k, None, json).await?,
        KvCommand::Txn {
            puts,
            deletes,
            expects,
        } => txn(&client, &key, stream, puts, deletes, expects, json).await?,
        KvCommand::Scan { prefix, limit } => {
            let rows = client
                .scan_prefix(stream, prefix.as_bytes(), *limit)
                .await?;
            for row in rows {
                if json {
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

/// A write of `kv txn`: (key, Some(value)) or (key, None).
type TxnWrite = (String, Option<String>);

/// A guard of `kv txn`: the key and the version it must be at.
type TxnGuard = (String, u64);

/// Parses `kv txn`'s arguments.
fn txn_plan(
    puts: &[String],
    deletes: &[String],
    expects: &[String],
) -> anyhow::Result<(Vec<TxnWrite>, Vec<TxnGuard>)> {
    let mut writes = Vec::new();
    for put in puts {
        let (k, v) = put
            .split_once('=')
            .with_context(|| format!("--put {put:?}: expected KEY=VALUE"))?;
        writes.push((k.to_string(), Some(v.to_string())));
    }
    writes.extend(deletes.iter().map(|k| (k.clone(), None)));
    let mut guards = Vec::new();
    for expect in expects {
        let (k, v) = expect
            .rsplit_once('@')
            .with_context(|| format!("--expect {expect:?}: expected KEY@VERSION"))?;
        let version = v
            .parse()
            .with_context(|| format!("--expect {expect:?}: {v:?} is not a version"))?;
        guards.push((k.to_string(), version));
    }
    if writes.is_empty() {
        bail!("nothing to commit: give --put KEY=VALUE or --del KEY");
    }
    Ok((writes, guards))
}

async fn txn(
    client: &Client,
    signer: &SigningKey,
    stream: StreamId,
    puts: &[String],
    deletes: &[String],
    expects: &[String],
    json: bool,
) -> anyhow::Result<()> {
    let (writes, guards) = txn_plan(puts, deletes, expects)?;
    let result = client
        .transact(signer, async |tx| {
            for (k, want) in &guards {
                let (_, got) = tx.get_versioned(stream, k.as_bytes()).await?;
                if got != *want {
                    return Err(ClientError::Cancelled(format!("expectation failed: {k} is at version {got}, expected {want}; nothing written")));
                }
            }
            for (k, v) in &writes {
                match v {
                    Some(v) => tx.put(stream, k.as_bytes(), v.as_bytes()),
                    None => tx.delete(stream, k.as_bytes()),
                }
            }
            Ok(())
        })
        .await;
    match result {
        Err(ClientError::Cancelled(why)) => {
            eprintln!("{why}");
            std::process::exit(1);
        }
        Err(other) => bail!(other),
        Ok(((), version)) if json => println!("{{\"committed\":true,\"version\":{version}}}"),
        Ok(((), version)) => println!("committed at version {version}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txn_arguments_are_parsed_strictly() {
        let (writes, guards) = txn_plan(&["a=1".into()], &["b".into()], &["a@3".into()]).unwrap();
        assert_eq!(
            writes,
            vec![("a".into(), Some("1".into())), ("b".into(), None)]
        );
        assert_eq!(guards, vec![("a".into(), 3)]);
        assert!(txn_plan(&["novalue".into()], &[], &[]).is_err());
        assert!(txn_plan(&["a=1".into()], &[], &["a@x".into()]).is_err());
        assert!(txn_plan(&[], &[], &[]).is_err());
    }
}

/// Options of `ordo watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Node, key and stream.
    #[command(flatten)]
    pub target: Target,
    /// Only keys starting with this.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Start after this version (the last one you saw); 0: from the beginning.
    #[arg(long, default_value_t = 0)]
    pub after_version: u64,
}

/// Prints committed changes as they happen, one line each, until stopped.
pub async fn watch(args: WatchArgs) -> anyhow::Result<()> {
    let (_, stream, _) = args.target.connect().await?;
    let channel = tonic::transport::Endpoint::from_shared(ordo_client::normalize_endpoint(
        &args.target.endpoint,
    )?)?
    .connect()
    .await?;
    let request = ordo_proto::v1::WatchRequest {
        stream: stream.to_vec(),
        prefix: args.prefix.into_bytes(),
        after_version: args.after_version,
    };
    let mut events = ordo_proto::v1::kv_client::KvClient::new(channel)
        .watch(request)
        .await?
        .into_inner();
    while let Some(event) = events.message().await? {
        let (key, value) = (
            String::from_utf8_lossy(&event.key),
            String::from_utf8_lossy(&event.value),
        );
        let change = if event.deleted { "del" } else { "put" };
        if args.target.json {
            println!(
                "{{\"version\":{},\"change\":\"{change}\",\"key\":{},\"value\":{}}}",
                event.version,
                quote(&event.key),
                quote(&event.value)
            );
        } else {
            println!("{}\t{change}\t{key}\t{value}", event.version);
        }
    }
    Ok(())
}
