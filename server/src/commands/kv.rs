//! `ordo kv ...`: reads and writes of keys.

use crate::commands::json::{self, CommittedJson, JsonBytes};
use crate::commands::target::Target;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ordo_client::{Client, ClientError};
use ordo_txn::{SigningKey, StreamId};
use serde::Serialize;

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
        /// Wait until the node has applied this version (the one a commit
        /// printed): reads your own write on any replica.
        #[arg(long, default_value_t = 0)]
        min_version: u64,
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

/// A read, as `kv get --json` prints it.
#[derive(Debug, Serialize)]
struct ReadJson {
    key: JsonBytes,
    found: bool,
    value: JsonBytes,
    version: u64,
}

/// A row, as `kv scan --json` prints it.
#[derive(Debug, Serialize)]
struct RowJson {
    key: JsonBytes,
    value: JsonBytes,
    version: u64,
}

/// Runs a `kv` command.
pub async fn run(args: KvArgs) -> anyhow::Result<()> {
    let (key, stream, client) = args.target.connect().await?;
    let json = args.target.json;
    match &args.command {
        KvCommand::Get {
            key: k,
            min_version,
        } => {
            let read = client.get_after(stream, k.as_bytes(), *min_version).await?;
            if json {
                json::print(&ReadJson {
                    key: JsonBytes::of(k.as_bytes()),
                    found: read.found,
                    value: JsonBytes::of(&read.value),
                    version: read.value_version,
                })?;
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
                    json::print(&RowJson {
                        key: JsonBytes::of(&row.key),
                        value: JsonBytes::of(&row.value),
                        version: row.version,
                    })?;
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
        Ok(((), version)) if json => json::print(&CommittedJson::at(version))?,
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
        Ok(((), version)) if json => json::print(&CommittedJson::at(version))?,
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
