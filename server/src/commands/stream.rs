//! `ordo stream ...`: create streams, change roles, ask about roles.
//! The rules are in docs/ACL.md; every change is a signed transaction.

use crate::commands::json::{self, CommittedJson};
use crate::commands::target::Target;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ordo_client::acl::AclQuestion;
use ordo_client::{Client, hex, keyfile};
use ordo_txn::{AclOp, Address, StreamId};
use serde::Serialize;

/// Options of the `stream` commands.
#[derive(Debug, Args)]
pub struct StreamArgs {
    /// Node, key and stream.
    #[command(flatten)]
    pub target: Target,
    /// What to do.
    #[command(subcommand)]
    pub command: StreamCommand,
}

/// The `stream` commands. ACCOUNT is a 0x-prefixed 20-byte address.
#[derive(Debug, Subcommand)]
pub enum StreamCommand {
    /// Create the stream NAME under your key (prints its id).
    Create {
        /// The name.
        name: String,
    },
    /// Make ACCOUNT an admin (admins only).
    GrantAdmin {
        /// Who.
        account: String,
    },
    /// Give up your admin role.
    RenounceAdmin,
    /// Make KEY special: only its special writers and admins may write it.
    SetSpecial {
        /// The key.
        key: String,
    },
    /// Make KEY normal again.
    SetNormal {
        /// The key.
        key: String,
    },
    /// Let ACCOUNT write normal keys (admins and writers).
    GrantWriter {
        /// Who.
        account: String,
    },
    /// Take the writer role from ACCOUNT (admins only).
    RevokeWriter {
        /// Who.
        account: String,
    },
    /// Give up your writer role.
    RenounceWriter,
    /// Let ACCOUNT write special KEY (admins and its special writers).
    GrantSpecialWriter {
        /// The key.
        key: String,
        /// Who.
        account: String,
    },
    /// Take the special-writer role of KEY from ACCOUNT (admins only).
    RevokeSpecialWriter {
        /// The key.
        key: String,
        /// Who.
        account: String,
    },
    /// Give up your special-writer role of KEY.
    RenounceSpecialWriter {
        /// The key.
        key: String,
    },
    /// Show the roles of ACCOUNT (default: your key's) and, with --for-key, what it may do with that key.
    Info {
        /// Whose roles.
        account: Option<String>,
        /// A key to ask about.
        #[arg(long)]
        for_key: Option<String>,
    },
}

/// Parses a 0x-prefixed 20-byte address, as every command taking an
/// ACCOUNT does.
pub(crate) fn parse_account(text: &str) -> anyhow::Result<Address> {
    keyfile::parse_hex::<20>(text)
        .with_context(|| format!("{text:?} is not a 0x-prefixed 20-byte address"))
}

/// The operation a command performs, if it changes something.
fn operation(command: &StreamCommand, stream: StreamId) -> anyhow::Result<Option<AclOp>> {
    use StreamCommand::*;
    let key = |k: &String| k.as_bytes().to_vec();
    Ok(Some(match command {
        Create { name } => AclOp::CreateStream {
            name: name.as_bytes().to_vec(),
        },
        GrantAdmin { account: a } => AclOp::GrantAdmin {
            stream,
            account: parse_account(a)?,
        },
        RenounceAdmin => AclOp::RenounceAdmin { stream },
        SetSpecial { key: k } => AclOp::SetKeySpecial {
            stream,
            key: key(k),
        },
        SetNormal { key: k } => AclOp::SetKeyNormal {
            stream,
            key: key(k),
        },
        GrantWriter { account: a } => AclOp::GrantWriter {
            stream,
            account: parse_account(a)?,
        },
        RevokeWriter { account: a } => AclOp::RevokeWriter {
            stream,
            account: parse_account(a)?,
        },
        RenounceWriter => AclOp::RenounceWriter { stream },
        GrantSpecialWriter { key: k, account: a } => AclOp::GrantSpecialWriter {
            stream,
            key: key(k),
            account: parse_account(a)?,
        },
        RevokeSpecialWriter { key: k, account: a } => AclOp::RevokeSpecialWriter {
            stream,
            key: key(k),
            account: parse_account(a)?,
        },
        RenounceSpecialWriter { key: k } => AclOp::RenounceSpecialWriter {
            stream,
            key: key(k),
        },
        Info { .. } => return Ok(None),
    }))
}

/// Runs a `stream` command.
pub async fn run(args: StreamArgs) -> anyhow::Result<()> {
    let (key, stream, client) = args.target.connect().await?;
    if let StreamCommand::Info {
        account: who,
        for_key,
    } = &args.command
    {
        let who = who
            .as_deref()
            .map(parse_account)
            .transpose()?
            .unwrap_or(ordo_txn::address_of(&key));
        return info(&client, &args.target, stream, who, for_key.as_deref()).await;
    }
    let Some(op) = operation(&args.command, stream)? else {
        return Ok(());
    };
    let created = match &op {
        AclOp::CreateStream { name } => {
            Some(ordo_txn::stream_id(&ordo_txn::address_of(&key), name))
        }
        _ => None,
    };
    let version = match client.apply_op(&key, op).await {
        Ok(version) => version,
        Err(e) => bail!(e),
    };
    match created {
        Some(id) if args.target.json => json::print(&CreatedJson {
            stream_id: hex(&id),
            version,
        })?,
        Some(id) => println!("created stream {} at version {version}", hex(&id)),
        None if args.target.json => json::print(&CommittedJson::at(version))?,
        None => println!("committed at version {version}"),
    }
    Ok(())
}

/// A created stream, as `--json` prints it.
#[derive(Debug, Serialize)]
struct CreatedJson {
    stream_id: String,
    version: u64,
}

/// The questions `stream info` asks, and the names it prints them under.
const STREAM_QUESTIONS: [(&str, AclQuestion); 3] = [
    ("exists", AclQuestion::StreamExists),
    ("admin", AclQuestion::IsAdmin),
    ("writer", AclQuestion::IsWriter),
];

/// The questions `stream info --for-key` asks as well.
const KEY_QUESTIONS: [(&str, AclQuestion); 3] = [
    ("special_key", AclQuestion::IsSpecialKey),
    ("special_writer", AclQuestion::IsSpecialWriter),
    ("can_write", AclQuestion::CanWrite),
];

/// The roles, as `stream info --json` prints them: the stream, the account
/// and one boolean per question asked.
#[derive(Debug, Serialize)]
struct InfoJson {
    stream_id: String,
    account: String,
    #[serde(flatten)]
    answers: std::collections::BTreeMap<&'static str, bool>,
}

async fn info(
    client: &Client,
    target: &Target,
    stream: StreamId,
    who: Address,
    for_key: Option<&str>,
) -> anyhow::Result<()> {
    let key = for_key.unwrap_or_default().as_bytes();
    let key_questions = if for_key.is_some() {
        &KEY_QUESTIONS[..]
    } else {
        &[]
    };
    let mut answers = Vec::new();
    for &(name, question) in STREAM_QUESTIONS.iter().chain(key_questions) {
        answers.push((name, client.ask_acl(question, stream, who, key).await?));
    }
    if target.json {
        return json::print(&InfoJson {
            stream_id: hex(&stream),
            account: format!("0x{}", hex(&who)),
            answers: answers.into_iter().collect(),
        });
    }
    println!("stream   {}\naccount  0x{}", hex(&stream), hex(&who));
    for (name, holds) in answers {
        let name = name.replace('_', " ");
        println!("{name:<15}{}", if holds { "yes" } else { "no" });
    }
    Ok(())
}
