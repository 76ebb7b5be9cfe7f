//! A local chain for the EVM sequencer's tests: anvil from npm (installed
//! under `evm/node_modules` by `scripts/setup.sh`), started on loopback on
//! a port of its own, stopped when dropped; and the `OrdoLog` contract
//! deployed on it.

#![allow(dead_code)]

use alloy::network::EthereumWallet;
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use ordo_evm::EvmSettings;
use ordo_evm::contract::OrdoLog;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long anvil may take to say it listens.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// anvil's first and second dev accounts (from its published test mnemonic).
pub const DEV_KEYS: [&str; 2] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
];

/// anvil's chain id unless told otherwise.
pub const CHAIN_ID: u64 = 31337;

/// A running anvil.
pub struct Anvil {
    child: Child,
    /// Its JSON-RPC endpoint.
    pub url: String,
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn anvil_binary() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    assert!(
        path.exists(),
        "no anvil at {}: run `bash scripts/setup.sh` (it installs anvil from npm)",
        path.display()
    );
    path
}

impl Anvil {
    /// Starts anvil with `args` (for example `["--block-time", "1"]`);
    /// automining when none.
    pub fn start(args: &[&str]) -> Self {
        let child = Command::new(anvil_binary())
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("anvil starts");
        // Owned at once, so that any failure below still stops it.
        let mut anvil = Self {
            child,
            url: String::new(),
        };
        let stdout = anvil.child.stdout.take().expect("stdout");
        let (lines, received) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    return;
                }
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = received
                .recv_timeout(left)
                .expect("anvil says where it listens");
            if let Some(address) = line.strip_prefix("Listening on ") {
                anvil.url = format!("http://{}", address.trim());
                return anvil;
            }
        }
    }

    /// A signer for dev account `index`.
    pub fn signer(index: usize) -> PrivateKeySigner {
        DEV_KEYS[index].parse().expect("a dev key")
    }

    /// Deploys a fresh `OrdoLog` with dev account 0; returns settings for
    /// it (one confirmation, polled every 50 ms).
    pub async fn deploy(&self) -> EvmSettings {
        let provider = ProviderBuilder::new()
            .wallet(EthereumWallet::from(Self::signer(0)))
            .connect_http(self.url.parse().expect("url"));
        let receipt = OrdoLog::deploy_builder(&provider)
            .send()
            .await
            .expect("deploy sent")
            .get_receipt()
            .await
            .expect("deployed");
        let contract = receipt.contract_address.expect("a contract address");
        let block = receipt.block_number.expect("a block");
        assert!(
            !provider
                .get_code_at(contract)
                .await
                .expect("code")
                .is_empty()
        );
        EvmSettings {
            rpc_url: self.url.clone(),
            contract,
            chain_id: CHAIN_ID,
            from_block: block,
            confirmations: 1,
            poll_interval: Duration::from_millis(50),
        }
    }
}

impl Anvil {
    /// A provider for anvil's own RPC methods (mining, reorgs).
    pub fn provider(&self) -> alloy::providers::DynProvider {
        ProviderBuilder::new()
            .connect_http(self.url.parse().expect("url"))
            .erased()
    }

    /// Mines one block.
    pub async fn mine(&self) {
        let mined: serde_json::Value = (self.provider())
            .raw_request("evm_mine".into(), ())
            .await
            .expect("evm_mine");
        assert!(!mined.is_null());
    }

    /// Replaces the newest `depth` blocks with as many empty ones; their
    /// transactions are dropped.
    pub async fn reorg(&self, depth: u64) {
        let pairs: Vec<(serde_json::Value, u64)> = Vec::new();
        let _: serde_json::Value = (self.provider())
            .raw_request("anvil_reorg".into(), (depth, pairs))
            .await
            .expect("anvil_reorg");
    }

    /// How many transactions block `number` holds.
    pub async fn transactions_in(&self, number: u64) -> usize {
        let block = self.provider().get_block_by_number(number.into()).await;
        let block = block.expect("the chain answers").expect("the block exists");
        block.transactions.len()
    }

    /// The chain's head.
    pub async fn head(&self) -> u64 {
        self.provider().get_block_number().await.expect("head")
    }

    /// Pauses (SIGSTOP) or resumes (SIGCONT) the anvil process: an
    /// endpoint that stops answering, then comes back.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal}");
    }
}

/// Mines a block every `interval` while `on` is set, until dropped.
pub struct Miner {
    pub on: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Miner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Miner {
    /// Starts mining on `anvil` every `interval`.
    pub fn start(anvil: &Anvil, interval: Duration) -> Self {
        let on = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (flag, provider) = (on.clone(), anvil.provider());
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                if flag.load(std::sync::atomic::Ordering::SeqCst) {
                    let mined: Result<serde_json::Value, _> =
                        provider.raw_request("evm_mine".into(), ()).await;
                    mined.expect("evm_mine");
                }
            }
        });
        Self { on, task }
    }
}
