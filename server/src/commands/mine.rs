//! `ordo mine`: storage mining from the command line (docs/MINING.md):
//! where mining stands on a log, a miner's registration and rewards,
//! registering a miner, and turning mining on.

use anyhow::Context;
use clap::{Args, Subcommand};
use ordo_mine::Target;
use ordo_txn::attest::SYSTEM_STREAM;
use ordo_txn::mining::{MINER_PREFIX, REWARD_PREFIX};
use ordo_txn::{AclOp, Address, MiningOp};
use serde::Serialize;
use std::path::PathBuf;

/// Options of `ordo mine`.
#[derive(Debug, Args)]
pub struct MineArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: MineCommand,
    /// The node to talk to: `host:port` or `http://host:port`.
    #[arg(long, env = "ORDO_ENDPOINT", default_value = ordo_client::DEFAULT_ENDPOINT, global = true)]
    pub endpoint: String,
    /// The key file of the account acting (or shown, for `status`).
    #[arg(long = "key", env = "ORDO_KEY", global = true)]
    pub key_file: Option<PathBuf>,
}

/// The subcommands of `ordo mine`.
#[derive(Debug, Subcommand)]
pub enum MineCommand {
    /// Where mining stands, and a miner's beneficiary and rewards (the
    /// `--miner` account's, else the `--key` account's).
    Status {
        /// The miner to show (`0x` and 40 hex digits).
        #[arg(long)]
        miner: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Register the `--key` account as a miner whose rewards go to
    /// BENEFICIARY (run again to change it).
    Register {
        /// Who is credited (`0x` and 40 hex digits).
        #[arg(long)]
        beneficiary: String,
    },
    /// Turn mining on for the log: its admin's key, once.
    Configure {
        /// Entries per epoch.
        #[arg(long)]
        epoch_entries: u64,
        /// Accepted proofs per epoch the difficulty steers toward.
        #[arg(long)]
        target_proofs: u64,
        /// The first epoch's difficulty: one hit in this many attempts on
        /// average, for a miner holding everything.
        #[arg(long)]
        attempts_per_hit: u64,
        /// Credited to a miner's beneficiary per accepted proof.
        #[arg(long)]
        reward: u64,
    },
}

/// Runs `ordo mine`.
pub async fn run(args: MineArgs) -> anyhow::Result<()> {
    let client = ordo_client::Client::connect(&args.endpoint).await?;
    match args.command {
        MineCommand::Status { miner, json } => {
            status(&client, args.key_file.as_deref(), miner, json).await
        }
        MineCommand::Register { beneficiary } => {
            let beneficiary = crate::commands::stream::parse_account(&beneficiary)?;
            let op = MiningOp::RegisterMiner { beneficiary };
            commit(&client, args.key_file.as_deref(), op, "miner registered").await
        }
        MineCommand::Configure {
            epoch_entries,
            target_proofs,
            attempts_per_hit,
            reward,
        } => {
            let op = MiningOp::Configure {
                epoch_entries,
                target_proofs,
                initial_target: Target::one_in(attempts_per_hit).to_bytes(),
                reward_per_proof: reward,
            };
            commit(&client, args.key_file.as_deref(), op, "mining configured").await
        }
    }
}

/// Commits one mining operation as the `--key` account.
async fn commit(
    client: &ordo_client::Client,
    key_file: Option<&std::path::Path>,
    op: MiningOp,
    done: &str,
) -> anyhow::Result<()> {
    let key_file = key_file.context("--key (or ORDO_KEY): the acting account's key file")?;
    let key = ordo_client::keyfile::load(key_file)?;
    let version = client.apply_op(&key, AclOp::Mining(op)).await?;
    println!("{done} at version {version}");
    Ok(())
}

/// `ordo mine status --json`.
#[derive(Debug, Serialize)]
struct StatusJson {
    configured: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    log: Option<LogJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    miner: Option<MinerJson>,
    /// Present when the node asked mines.
    #[serde(skip_serializing_if = "Option::is_none")]
    node_miner: Option<NodeMinerJson>,
}

/// What the node's own miner has done since it started.
#[derive(Debug, Serialize)]
struct NodeMinerJson {
    /// Hex.
    account: String,
    attempts: u64,
    held: u64,
    hits: u64,
    accepted: u64,
    refused: u64,
    sealed_chunks: u64,
    attempts_per_second: f64,
}

/// The log's mining state.
#[derive(Debug, Serialize)]
struct LogJson {
    epoch_entries: u64,
    target_proofs: u32,
    reward_per_proof: u64,
    epoch: u64,
    /// Hex, 32 bytes big-endian.
    target: String,
    /// About 2^256 / target: attempts per hit for a miner holding everything.
    attempts_per_hit: f64,
    accepted: u32,
    mineable_chunks: u64,
}

/// One miner's registration and rewards.
#[derive(Debug, Serialize)]
struct MinerJson {
    /// Hex.
    account: String,
    /// Hex; absent when the account is not a registered miner.
    #[serde(skip_serializing_if = "Option::is_none")]
    beneficiary: Option<String>,
    /// The beneficiary's total rewards (decimal text, as the ledger keeps it).
    rewards: String,
}

async fn status(
    client: &ordo_client::Client,
    key_file: Option<&std::path::Path>,
    miner: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let status = client.status().await?;
    let node_miner = status.miner.map(|m| NodeMinerJson {
        account: ordo_txn::ids::hex(&m.account),
        attempts: m.attempts,
        held: m.held,
        hits: m.hits,
        accepted: m.accepted,
        refused: m.refused,
        sealed_chunks: m.sealed_chunks,
        attempts_per_second: m.attempts_per_second,
    });
    let log = status.mining.map(|m| LogJson {
        epoch_entries: m.epoch_entries,
        target_proofs: m.target_proofs,
        reward_per_proof: m.reward_per_proof,
        epoch: m.epoch,
        attempts_per_hit: attempts_per_hit(&m.target),
        target: ordo_txn::ids::hex(&m.target),
        accepted: m.accepted,
        mineable_chunks: m.mineable_chunks,
    });
    let account = match (miner, key_file) {
        (Some(miner), _) => Some(crate::commands::stream::parse_account(&miner)?),
        (None, Some(key_file)) => {
            Some(ordo_txn::address_of(&ordo_client::keyfile::load(key_file)?))
        }
        (None, None) => None,
    };
    let miner = match account {
        Some(account) => Some(miner_of(client, account).await?),
        None => None,
    };
    let report = StatusJson {
        configured: log.is_some(),
        log,
        miner,
        node_miner,
    };
    if json {
        return crate::commands::json::print(&report);
    }
    print_status(&report);
    Ok(())
}

/// A miner's beneficiary and its rewards, from the ledger.
async fn miner_of(client: &ordo_client::Client, account: Address) -> anyhow::Result<MinerJson> {
    let beneficiary = client
        .get(SYSTEM_STREAM, &[MINER_PREFIX, account.as_slice()].concat())
        .await?;
    let beneficiary: Option<Address> = beneficiary
        .map(|b| Address::try_from(b.as_slice()))
        .transpose()
        .context("a miner's beneficiary in the ledger is not 20 bytes")?;
    let rewards = match beneficiary {
        Some(to) => {
            client
                .get(SYSTEM_STREAM, &[REWARD_PREFIX, to.as_slice()].concat())
                .await?
        }
        None => None,
    };
    Ok(MinerJson {
        account: ordo_txn::ids::hex(&account),
        beneficiary: beneficiary.map(|b| ordo_txn::ids::hex(&b)),
        rewards: rewards.map_or_else(|| "0".into(), |r| String::from_utf8_lossy(&r).into_owned()),
    })
}

/// About 2^256 / target, for people.
fn attempts_per_hit(target: &[u8]) -> f64 {
    let target = target
        .iter()
        .fold(0f64, |acc, &b| acc * 256.0 + f64::from(b));
    2f64.powi(256) / (target + 1.0)
}

fn print_status(report: &StatusJson) {
    match &report.log {
        None => println!("mining         not configured on this log"),
        Some(log) => {
            println!(
                "mining         epochs of {} entries, aiming at {} proofs each, reward {}",
                log.epoch_entries, log.target_proofs, log.reward_per_proof
            );
            match log.epoch {
                0 => println!("epoch          none open yet"),
                epoch => println!("epoch          {epoch}, {} proofs accepted", log.accepted),
            }
            println!(
                "difficulty     one hit in {:.0} attempts",
                log.attempts_per_hit
            );
            println!("mineable       {} chunks", log.mineable_chunks);
        }
    }
    if let Some(node) = &report.node_miner {
        println!(
            "this node      mines as 0x{}: {:.0} attempts/s, {} attempts ({} on held chunks)",
            node.account, node.attempts_per_second, node.attempts, node.held
        );
        println!(
            "proofs         {} found, {} accepted, {} refused; {} chunks sealed",
            node.hits, node.accepted, node.refused, node.sealed_chunks
        );
    }
    if let Some(miner) = &report.miner {
        match &miner.beneficiary {
            None => println!("miner          0x{}: not registered", miner.account),
            Some(to) => println!(
                "miner          0x{} credits 0x{to}: {} earned",
                miner.account, miner.rewards
            ),
        }
    }
}
