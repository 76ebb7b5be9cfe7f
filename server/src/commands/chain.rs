//! `ordo chain deploy|fund`: putting a log's contract on an EVM chain and
//! giving a member's key gas, for a cluster whose members run with
//! `sequencer = "evm"` (`scripts/chain.sh` uses both on a local anvil).

use crate::commands::json;
use clap::{Args, Subcommand};
use ordo_client::keyfile;
use std::path::PathBuf;

/// Options of `ordo chain`.
#[derive(Debug, Args)]
pub struct ChainArgs {
    /// The chain's JSON-RPC endpoint.
    #[arg(long, env = "ORDO_CHAIN_RPC", default_value = "http://127.0.0.1:8545")]
    pub rpc_url: String,
    /// The key file of the account that pays (64 hex digits).
    #[arg(long)]
    pub key: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: ChainCommand,
}

/// The `ordo chain` subcommands.
#[derive(Debug, Subcommand)]
pub enum ChainCommand {
    /// Deploys a new `OrdoLog` contract; prints its address and the block
    /// it was deployed in (a member's `[evm]` `contract` and `from_block`).
    Deploy {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Sends ether to an account (a gateway's node key pays for its
    /// appends).
    Fund {
        /// The account, `0x` and 40 hex digits.
        #[arg(long)]
        to: String,
        /// How much, in wei.
        #[arg(long)]
        wei: u128,
    },
}

/// What `ordo chain deploy --json` prints.
#[derive(serde::Serialize)]
struct Deployed {
    contract: String,
    from_block: u64,
}

/// Runs an `ordo chain` command.
pub async fn run(args: ChainArgs) -> anyhow::Result<()> {
    let signer = keyfile::load(&args.key)?;
    match args.command {
        ChainCommand::Deploy { json } => {
            let (contract, from_block) = ordo_evm::devchain::deploy(&args.rpc_url, signer).await?;
            let deployed = Deployed {
                contract: contract.to_string(),
                from_block,
            };
            match json {
                true => json::print(&deployed)?,
                false => println!("contract {} from_block {}", deployed.contract, from_block),
            }
        }
        ChainCommand::Fund { to, wei } => {
            let to = (to.parse()).map_err(|e| anyhow::anyhow!("--to {to:?}: {e}"))?;
            let wei = alloy_primitives::U256::from(wei);
            ordo_evm::devchain::fund(&args.rpc_url, signer, to, wei).await?;
            println!("sent {wei} wei to {to}");
        }
    }
    Ok(())
}
