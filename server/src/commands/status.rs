//! `ordo status`: a node's role and progress.

use crate::commands::retention::{RetentionJson, describe_policy};
use clap::Args;
use ordo_proto::v1::GetStatusResponse;
use serde::Serialize;

/// Options of commands that talk to a node but need no key.
#[derive(Debug, Args)]
pub struct EndpointArgs {
    /// The node to talk to: `host:port` or `http://host:port`.
    #[arg(long, env = "ORDO_ENDPOINT", default_value = ordo_client::DEFAULT_ENDPOINT)]
    pub endpoint: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The status, as `--json` prints it.
#[derive(Debug, Serialize)]
struct StatusJson {
    version: String,
    role: String,
    log_tail: u64,
    applied_seq: u64,
    applied_version: u64,
    replay_lag: u64,
    data_shards: u32,
    parity_shards: u32,
    /// Shards the node's gateway waits to find durable before ordering an
    /// entry (0: it takes no commits to a cluster).
    write_quorum: u32,
    /// Hex.
    state_digest: String,
    /// The node's account, 0x hex.
    node_address: String,
    /// The log's id, hex (empty before its first entry).
    log_id: String,
    /// Present when a chain orders the log.
    #[serde(skip_serializing_if = "Option::is_none")]
    chain: Option<ChainJson>,
    /// Present when the node reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    retention: Option<RetentionJson>,
}

/// The chain's part of `--json`.
#[derive(Debug, Serialize)]
struct ChainJson {
    head_block: u64,
    confirmed_block: u64,
    pending_appends: u64,
    transactions: u64,
    gas_used: u64,
}

/// Prints the node's status.
pub async fn status(args: EndpointArgs) -> anyhow::Result<()> {
    let client = ordo_client::Client::connect(&args.endpoint).await?;
    let status = client.status().await?;
    if args.json {
        return crate::commands::json::print(&StatusJson::of(status));
    }
    print_status(status);
    Ok(())
}

impl StatusJson {
    /// The status as `ordo status --json` prints it.
    fn of(status: GetStatusResponse) -> Self {
        Self {
            version: status.version,
            role: status.role,
            log_tail: status.log_tail,
            applied_seq: status.applied_seq,
            applied_version: status.applied_version,
            replay_lag: status.replay_lag,
            data_shards: status.data_shards,
            parity_shards: status.parity_shards,
            write_quorum: status.write_quorum,
            state_digest: ordo_txn::ids::hex(&status.state_digest),
            node_address: format!("0x{}", ordo_txn::ids::hex(&status.node_address)),
            log_id: ordo_txn::ids::hex(&status.log_id),
            retention: status.retention.as_ref().map(RetentionJson::of),
            chain: status.chain.map(|c| ChainJson {
                head_block: c.head_block,
                confirmed_block: c.confirmed_block,
                pending_appends: c.pending_appends,
                transactions: c.transactions,
                gas_used: c.gas_used,
            }),
        }
    }
}

/// The status as aligned lines for a person.
fn print_status(status: GetStatusResponse) {
    println!("version        {}", status.version);
    println!("role           {}", status.role);
    println!(
        "node address   0x{}",
        ordo_txn::ids::hex(&status.node_address)
    );
    println!("log id         {}", ordo_txn::ids::hex(&status.log_id));
    println!("log tail       {}", status.log_tail);
    println!(
        "applied        {} entries, version {}",
        status.applied_seq, status.applied_version
    );
    println!("replay lag     {} entries", status.replay_lag);
    println!(
        "state digest   {}",
        ordo_txn::ids::hex(&status.state_digest)
    );
    println!(
        "coding         {}+{} shards",
        status.data_shards, status.parity_shards
    );
    if status.write_quorum > 0 {
        println!(
            "write quorum   {} shards durable before an entry is ordered",
            status.write_quorum
        );
    }
    if let Some(retention) = &status.retention {
        println!(
            "retention      horizon {}; {}",
            retention.horizon,
            describe_policy(retention)
        );
    }
    if let Some(chain) = status.chain {
        println!(
            "chain          head block {}, confirmed block {}",
            chain.head_block, chain.confirmed_block
        );
        println!(
            "chain appends  {} pending, {} transactions, {} gas",
            chain.pending_appends, chain.transactions, chain.gas_used
        );
    }
}
