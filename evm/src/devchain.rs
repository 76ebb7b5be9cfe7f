//! A local development chain: anvil (from npm, installed under
//! `evm/node_modules` by `scripts/setup.sh`) started on loopback on a port
//! of its own and stopped when dropped, its dev accounts, and deploying the
//! `OrdoLog` contract. The tests of the EVM sequencer and of the members
//! that use it run on it, and `ordo evm deploy` deploys with [`deploy`].

use crate::EvmSettings;
use crate::contract::OrdoLog;
use alloy::network::EthereumWallet;
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
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
    /// Its home directory. anvil keeps the states of past blocks under
    /// `$HOME/.foundry/anvil/tmp` and removes them only when it exits
    /// cleanly; anvils stopped by SIGKILL left about 100 MB each there
    /// (27 GB after a day of test runs). Removed after the process.
    _home: tempfile::TempDir,
    /// Its JSON-RPC endpoint.
    pub url: String,
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where `npm ci --prefix evm` puts anvil, under the repository at `root`.
pub fn npm_anvil(root: &std::path::Path) -> PathBuf {
    root.join("evm/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
}

impl Anvil {
    /// Starts the anvil at `binary` with `args` (for example
    /// `["--block-time", "1"]`); automining when none. Panics when it does
    /// not start: a test fixture.
    pub fn start(binary: &std::path::Path, args: &[&str]) -> Self {
        assert!(
            binary.exists(),
            "no anvil at {}: run `bash scripts/setup.sh` (it installs anvil from npm)",
            binary.display()
        );
        let home = tempfile::tempdir().expect("a home directory for anvil");
        let child = Command::new(binary)
            .env("HOME", home.path())
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("anvil starts");
        // Owned at once, so that any failure below still stops it.
        let mut anvil = Self {
            child,
            _home: home,
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
        let (contract, from_block) = deploy(&self.url, Self::signer(0)).await.expect("deploys");
        self.settings(contract, from_block)
    }

    /// Settings for the contract at `contract`, deployed in `from_block`:
    /// one confirmation, polled every 50 ms.
    pub fn settings(&self, contract: alloy::primitives::Address, from_block: u64) -> EvmSettings {
        EvmSettings {
            rpc_url: self.url.clone(),
            contract,
            chain_id: CHAIN_ID,
            rpc_timeout: crate::sequencer::RPC_CALL_TIMEOUT,
            saved_dir: None,
            ca_file: None,
            from_block,
            confirmations: 1,
            poll_interval: Duration::from_millis(50),
        }
    }
}

fn rpc_error(url: &str, reason: String) -> crate::EvmError {
    crate::EvmError::Rpc {
        url: url.to_string(),
        reason,
    }
}

/// A provider at `url` whose transactions `signer` signs and pays for,
/// with alloy's fillers (nonce, gas, fees, chain id).
fn paying_provider(
    url: &str,
    signer: PrivateKeySigner,
) -> Result<alloy::providers::DynProvider, crate::EvmError> {
    let endpoint = crate::http::Endpoint::plain(url);
    let wallet = EthereumWallet::from(signer);
    (endpoint.signing_provider(wallet)).map_err(|e| rpc_error(url, e.to_string()))
}

/// Deploys a fresh `OrdoLog` at the endpoint `url`, paid for by `signer`;
/// returns its address and the block it was deployed in (where readers
/// start).
pub async fn deploy(
    url: &str,
    signer: PrivateKeySigner,
) -> Result<(alloy::primitives::Address, u64), crate::EvmError> {
    let rpc = |reason: String| rpc_error(url, reason);
    let provider = paying_provider(url, signer)?;
    let sent = OrdoLog::deploy_builder(&provider).send().await;
    let pending = sent.map_err(|e| rpc(format!("sending the deployment: {e}")))?;
    let receipt = pending.get_receipt().await;
    let receipt = receipt.map_err(|e| rpc(format!("waiting for the deployment: {e}")))?;
    let contract = receipt.contract_address;
    let contract = contract.ok_or_else(|| rpc("the deployment made no contract".into()))?;
    let block = receipt.block_number;
    let block = block.ok_or_else(|| rpc("the deployment's receipt names no block".into()))?;
    Ok((contract, block))
}

impl Anvil {
    /// A provider for anvil's own RPC methods (mining, reorgs).
    /// Its calls may take up to [`crate::sequencer::MAX_RPC_TIMEOUT`]:
    /// mining thousands of blocks at once is slow on a busy machine.
    pub fn provider(&self) -> alloy::providers::DynProvider {
        let endpoint = crate::http::Endpoint {
            timeout: crate::sequencer::MAX_RPC_TIMEOUT,
            ..crate::http::Endpoint::plain(&self.url)
        };
        endpoint.provider().expect("anvil's url")
    }

    /// Mines one block.
    pub async fn mine(&self) {
        let mined: serde_json::Value = (self.provider())
            .raw_request("evm_mine".into(), ())
            .await
            .expect("evm_mine");
        assert!(!mined.is_null());
    }

    /// Mines `count` empty blocks at once.
    pub async fn mine_many(&self, count: u64) {
        let _: serde_json::Value = (self.provider())
            .raw_request("anvil_mine".into(), (count,))
            .await
            .expect("anvil_mine");
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

    /// Turns mining a block per transaction on or off (off: blocks only
    /// when [`Anvil::mine`] is called).
    pub async fn set_automine(&self, on: bool) {
        let _: serde_json::Value = (self.provider())
            .raw_request("evm_setAutomine".into(), (on,))
            .await
            .expect("evm_setAutomine");
    }

    /// Transactions waiting in anvil's pool.
    pub async fn pool_pending(&self) -> u64 {
        let status: serde_json::Value = (self.provider())
            .raw_request("txpool_status".into(), ())
            .await
            .expect("txpool_status");
        let pending = status["pending"].as_str().expect("a hex count");
        u64::from_str_radix(pending.trim_start_matches("0x"), 16).expect("hex")
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
    /// Mines while set.
    pub on: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Held while a block is being mined, so that [`Miner::pause`] can wait
    /// for one under way.
    mining: std::sync::Arc<tokio::sync::Mutex<()>>,
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
        let mining = std::sync::Arc::new(tokio::sync::Mutex::new(()));
        let (flag, held, provider) = (on.clone(), mining.clone(), anvil.provider());
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let _mining = held.lock().await;
                if flag.load(std::sync::atomic::Ordering::SeqCst) {
                    let mined: Result<serde_json::Value, _> =
                        provider.raw_request("evm_mine".into(), ()).await;
                    mined.expect("evm_mine");
                }
            }
        });
        Self { on, mining, task }
    }

    /// Stops mining, and returns once a block the miner had under way, if
    /// any, has been mined: no block comes from it after this returns.
    pub async fn pause(&self) {
        self.on.store(false, std::sync::atomic::Ordering::SeqCst);
        drop(self.mining.lock().await);
    }
}

/// Sends `wei` from `signer`'s account to `to` at the endpoint `url` and
/// waits for it to be mined: a member's node key needs gas before its
/// gateway appends.
pub async fn fund(
    url: &str,
    signer: PrivateKeySigner,
    to: alloy::primitives::Address,
    wei: alloy::primitives::U256,
) -> Result<(), crate::EvmError> {
    use alloy::network::TransactionBuilder;
    let rpc = |reason: String| rpc_error(url, reason);
    let provider = paying_provider(url, signer)?;
    let request = alloy::rpc::types::TransactionRequest::default()
        .with_to(to)
        .with_value(wei);
    let sent = provider.send_transaction(request).await;
    let pending = sent.map_err(|e| rpc(format!("sending the transfer: {e}")))?;
    let receipt = pending.get_receipt().await;
    receipt.map_err(|e| rpc(format!("waiting for the transfer: {e}")))?;
    Ok(())
}
