//! `ordo stream ...`: create streams, change roles, ask about roles.
//! The rules are in docs/ACL.md; every change is a signed transaction.

use crate::kvcli::Target;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ordo_client::keyfile;
use ordo_log::hex;
use ordo_proto::v1::AclQuery;
use ordo_proto::v1::acl_client::AclClient;
use ordo_txn::{AclOp, Address, StreamId};

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

fn account(text: &str) -> anyhow::Result<Address> {
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
            account: account(a)?,
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
            account: account(a)?,
        },
        RevokeWriter { account: a } => AclOp::RevokeWriter {
            stream,
            account: account(a)?,
        },
        RenounceWriter => AclOp::RenounceWriter { stream },
        GrantSpecialWriter { key: k, account: a } => AclOp::GrantSpecialWriter {
            stream,
            key: key(k),
            account: account(a)?,
        },
        RevokeSpecialWriter { key: k, account: a } => AclOp::RevokeSpecialWriter {
            stream,
            key: key(k),
            account: account(a)?,
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
            .map(account)
            .transpose()?
            .unwrap_or(ordo_txn::address_of(&key));
        return info(&args.target, stream, who, for_key.as_deref()).await;
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
    let result = client
        .transact(&key, async |tx| {
            tx.acl(op.clone());
            Ok(())
        })
        .await;
    let version = match result {
        Ok(((), version)) => version,
        Err(e) => bail!(e),
    };
    match created {
        Some(id) if args.target.json => {
            println!("{{\"stream_id\":\"{}\",\"version\":{version}}}", hex(&id))
        }
        Some(id) => println!("created stream {} at version {version}", hex(&id)),
        None if args.target.json => println!("{{\"committed\":true,\"version\":{version}}}"),
        None => println!("committed at version {version}"),
    }
    Ok(())
}

async fn info(
    target: &Target,
    stream: StreamId,
    who: Address,
    for_key: Option<&str>,
) -> anyhow::Result<()> {
    let channel = tonic::transport::Endpoint::from_shared(ordo_client::normalize_endpoint(
        &target.endpoint,
    )?)?
    .connect()
    .await?;
    let mut acl = AclClient::new(channel);
    let query = |key: &[u8]| AclQuery {
        stream: stream.to_vec(),
        account: who.to_vec(),
        key: key.to_vec(),
        ..Default::default()
    };
    let mut answers = vec![
        (
            "exists",
            acl.stream_exists(query(b"")).await?.into_inner().holds,
        ),
        ("admin", acl.is_admin(query(b"")).await?.into_inner().holds),
        (
            "writer",
            acl.is_writer(query(b"")).await?.into_inner().holds,
        ),
    ];
    if let Some(k) = for_key {
        answers.push((
            "special key",
            acl.is_special_key(query(k.as_bytes()))
                .await?
                .into_inner()
                .holds,
        ));
        answers.push((
            "special writer",
            acl.is_special_writer(query(k.as_bytes()))
                .await?
                .into_inner()
                .holds,
        ));
        answers.push((
            "can write",
            acl.can_write(query(k.as_bytes())).await?.into_inner().holds,
        ));
    }
    if target.json {
        let fields: Vec<String> = answers
            .iter()
            .map(|(name, holds)| format!("\"{}\":{holds}", name.replace(' ', "_")))
            .collect();
        println!(
            "{{\"stream_id\":\"{}\",\"account\":\"0x{}\",{}}}",
            hex(&stream),
            hex(&who),
            fields.join(",")
        );
    } else {
        println!("stream   {}\naccount  0x{}", hex(&stream), hex(&who));
        for (name, holds) in answers {
            println!("{name:<15}{}", if holds { "yes" } else { "no" });
        }
    }
    Ok(())
}
