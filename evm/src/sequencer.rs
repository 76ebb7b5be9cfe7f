//! [`EvmSequencer`]: ordo's [`Sequencer`] over the `OrdoLog` contract.
//!
//! Appends queue and leave in chain transactions of up to
//! [`MAX_HEADERS_PER_TRANSACTION`] headers, one transaction at a time (one
//! account, one nonce sequence). An append returns once the follower has
//! taken its header from a block `confirmations` deep. The follower polls
//! the chain every `poll_interval`: the head, then the `Appended` events of
//! the blocks newly confirmed, in chain order. It keeps the headers in
//! memory, so `read` and `tail` never wait for the chain; after a restart
//! it reads the events again from the contract's first block.

use crate::contract::{OrdoLog, contract_header, ordo_header};
use alloy::network::EthereumWallet;
use alloy::primitives::{Address as ChainAddress, B256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::Filter;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use ordo_log::limits::MAX_READ_BATCH;
use ordo_log::{EntryDescriptor, EntryHeader, Sequencer, SequencerError, WriteFault};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// Most headers one chain transaction carries: the contract's own limit
/// (`MAX_HEADERS_PER_CALL`).
pub const MAX_HEADERS_PER_TRANSACTION: usize = 256;

/// Most confirmations asked for: 64 blocks is two epochs of Ethereum's
/// beacon chain, past which a block is final there; more only delays every
/// append.
pub const MAX_CONFIRMATIONS: u64 = 64;

/// Appends waiting for a transaction beyond this make `append` wait for
/// room.
pub const MAX_QUEUED_APPENDS: usize = 4096;

/// Longest a transaction may take to be mined before the append fails
/// (its outcome unknown: the follower still finds its headers if it was).
pub const RECEIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// Most blocks one `eth_getLogs` call spans: public endpoints refuse wide
/// ranges.
pub const MAX_LOG_RANGE: u64 = 1000;

/// Where and how to reach the contract.
#[derive(Clone, Debug)]
pub struct EvmSettings {
    /// The chain's JSON-RPC endpoint (`http://...`).
    pub rpc_url: String,
    /// The `OrdoLog` contract.
    pub contract: ChainAddress,
    /// The chain the endpoint must serve (checked at open).
    pub chain_id: u64,
    /// The block the contract was deployed in: events are read from it.
    pub from_block: u64,
    /// How deep a block must be before its headers are used (1: the head).
    pub confirmations: u64,
    /// How often the chain is polled for new blocks.
    pub poll_interval: Duration,
}

/// Why an [`EvmSequencer`] could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum EvmError {
    /// The settings are out of range.
    #[error("invalid EVM settings: {0}")]
    Settings(String),
    /// The endpoint did not answer, or answered an error.
    #[error("the chain's RPC endpoint {url}: {reason}")]
    Rpc {
        /// The endpoint.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The endpoint serves another chain than the settings name.
    #[error("the endpoint serves chain {served}, not chain {expected}")]
    WrongChain {
        /// Asked for.
        expected: u64,
        /// Served.
        served: u64,
    },
    /// No contract code at the address.
    #[error("no contract at {0}")]
    NoContract(ChainAddress),
    /// The chain's events could not be followed.
    #[error(transparent)]
    Follow(#[from] SequencerError),
}

/// The headers taken from confirmed blocks, and the last such block (its
/// hash is checked on every poll: a change is a reorg past the
/// confirmations).
#[derive(Default)]
struct Followed {
    headers: Vec<EntryHeader>,
    /// The last block scanned for events.
    scanned: Option<u64>,
    /// The newest block headers were taken from, and its hash.
    anchor: Option<(u64, B256)>,
}

/// One queued append.
struct Queued {
    entry: EntryDescriptor,
    reply: oneshot::Sender<Result<u64, SequencerError>>,
}

/// The log's order on an EVM chain. See the module documentation.
pub struct EvmSequencer {
    followed: Arc<RwLock<Followed>>,
    tail: watch::Receiver<u64>,
    /// Set when following stopped for good (a deep reorg, a gap).
    stopped: Arc<Mutex<Option<String>>>,
    /// `None` for a reader without a key.
    appends: Option<mpsc::Sender<Queued>>,
    fault: Arc<WriteFault>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for EvmSequencer {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|task| task.abort());
    }
}

fn rpc_error(settings: &EvmSettings, e: impl std::fmt::Display) -> EvmError {
    EvmError::Rpc {
        url: settings.rpc_url.clone(),
        reason: e.to_string(),
    }
}

impl EvmSettings {
    fn check(&self) -> Result<(), EvmError> {
        if !(1..=MAX_CONFIRMATIONS).contains(&self.confirmations) {
            return Err(EvmError::Settings(format!(
                "confirmations must be 1..={MAX_CONFIRMATIONS}, not {}",
                self.confirmations
            )));
        }
        if self.poll_interval.is_zero() {
            return Err(EvmError::Settings("poll_interval must not be zero".into()));
        }
        Ok(())
    }

    /// A provider for the endpoint, signing with `signer` when given. The
    /// nonce is asked of the chain for every transaction (a cached one goes
    /// wrong after a failed send, a restart or a reorg).
    fn provider(&self, signer: Option<PrivateKeySigner>) -> Result<DynProvider, EvmError> {
        let url = self.rpc_url.parse().map_err(|e| rpc_error(self, e))?;
        let builder = ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .with_chain_id(self.chain_id);
        Ok(match signer {
            Some(signer) => builder
                .wallet(EthereumWallet::from(signer))
                .connect_http(url)
                .erased(),
            None => builder.connect_http(url).erased(),
        })
    }
}

impl EvmSequencer {
    /// Opens the sequencer: checks the chain and the contract, reads every
    /// confirmed header, and starts following. With `signer`, it appends
    /// as that account; without, it only reads.
    pub async fn open(
        settings: EvmSettings,
        signer: Option<PrivateKeySigner>,
    ) -> Result<Self, EvmError> {
        settings.check()?;
        let provider = settings.provider(signer.clone())?;
        let served = (provider.get_chain_id().await).map_err(|e| rpc_error(&settings, e))?;
        if served != settings.chain_id {
            return Err(EvmError::WrongChain {
                expected: settings.chain_id,
                served,
            });
        }
        let code =
            (provider.get_code_at(settings.contract).await).map_err(|e| rpc_error(&settings, e))?;
        if code.is_empty() {
            return Err(EvmError::NoContract(settings.contract));
        }
        let followed = Arc::new(RwLock::new(Followed::default()));
        let stopped = Arc::new(Mutex::new(None));
        let (tail_sender, tail) = watch::channel(0);
        let follower = Follower {
            provider: provider.clone(),
            settings: settings.clone(),
            followed: followed.clone(),
            tail: tail_sender,
            stopped: stopped.clone(),
        };
        follower.poll().await?;
        let mut tasks = vec![tokio::spawn(follower.run())];
        let fault = Arc::new(WriteFault::default());
        let appends = signer.map(|_| {
            let (sender, queue) = mpsc::channel(MAX_QUEUED_APPENDS);
            let submitter = Submitter {
                contract: OrdoLog::new(settings.contract, provider.clone()),
                fault: fault.clone(),
                poisoned: None,
            };
            tasks.push(tokio::spawn(submitter.run(queue)));
            sender
        });
        Ok(Self {
            followed,
            tail,
            stopped,
            appends,
            fault,
            tasks,
        })
    }

    /// The switch that makes the next transaction fail, for the
    /// conformance suite (a node never arms it).
    pub fn write_fault(&self) -> Arc<WriteFault> {
        self.fault.clone()
    }

    fn check_following(&self) -> Result<(), SequencerError> {
        match &*self.stopped.lock().expect("stopped lock") {
            Some(reason) => Err(SequencerError::Poisoned(reason.clone())),
            None => Ok(()),
        }
    }
}

/// Follows the contract's events into [`Followed`].
struct Follower {
    provider: DynProvider,
    settings: EvmSettings,
    followed: Arc<RwLock<Followed>>,
    tail: watch::Sender<u64>,
    stopped: Arc<Mutex<Option<String>>>,
}

impl Follower {
    async fn run(self) {
        loop {
            tokio::time::sleep(self.settings.poll_interval).await;
            match self.poll().await {
                Ok(()) => {}
                Err(SequencerError::Poisoned(reason)) => {
                    tracing::error!(%reason, "stopped following the chain");
                    *self.stopped.lock().expect("stopped lock") = Some(reason);
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "polling the chain failed; trying again"),
            }
        }
    }

    /// One poll: checks the anchor block is still canonical, then takes
    /// the headers of every newly confirmed block.
    async fn poll(&self) -> Result<(), SequencerError> {
        let io = |e: alloy::transports::TransportError| SequencerError::Io(e.to_string());
        self.check_anchor().await?;
        let head = self.provider.get_block_number().await.map_err(io)?;
        let Some(confirmed) = (head + 1).checked_sub(self.settings.confirmations) else {
            return Ok(());
        };
        loop {
            let from = match self.followed.read().expect("followed lock").scanned {
                Some(scanned) => scanned + 1,
                None => self.settings.from_block,
            };
            if from > confirmed {
                return Ok(());
            }
            let to = confirmed.min(from + MAX_LOG_RANGE - 1);
            let filter = Filter::new()
                .address(self.settings.contract)
                .event_signature(OrdoLog::Appended::SIGNATURE_HASH)
                .from_block(from)
                .to_block(to);
            let logs = self.provider.get_logs(&filter).await.map_err(io)?;
            self.take(&logs, to)?;
        }
    }

    /// A reorg deeper than the confirmations replaced a block headers were
    /// taken from: nothing applied may change, so following stops.
    async fn check_anchor(&self) -> Result<(), SequencerError> {
        let anchor = self.followed.read().expect("followed lock").anchor;
        let Some((number, hash)) = anchor else {
            return Ok(());
        };
        let block = (self.provider.get_block_by_number(number.into()).await)
            .map_err(|e| SequencerError::Io(e.to_string()))?;
        match block {
            Some(block) if block.header.hash == hash => Ok(()),
            _ => Err(SequencerError::Poisoned(format!(
                "block {number} ({hash}), which confirmed headers came from, is no longer on the chain: a reorg deeper than {} confirmations",
                self.settings.confirmations
            ))),
        }
    }

    /// Takes the headers of `logs` (blocks up to `to`, in chain order).
    fn take(&self, logs: &[alloy::rpc::types::Log], to: u64) -> Result<(), SequencerError> {
        let mut followed = self.followed.write().expect("followed lock");
        for log in logs {
            let decoded = log.log_decode::<OrdoLog::Appended>().map_err(|e| {
                SequencerError::Io(format!("an Appended event that does not decode: {e}"))
            })?;
            let event = &decoded.inner.data;
            let expected = followed.headers.len() as u64;
            if event.first != expected {
                return Err(SequencerError::Poisoned(format!(
                    "the contract's events jump from seq {expected} to {}",
                    event.first
                )));
            }
            for (offset, header) in event.headers.iter().enumerate() {
                let seq = event.first + offset as u64;
                let header = ordo_header(seq, header, event.submitter).map_err(|e| {
                    SequencerError::CorruptHeader {
                        seq,
                        reason: e.to_string(),
                    }
                })?;
                followed.headers.push(header);
            }
            if let (Some(number), Some(hash)) = (log.block_number, log.block_hash) {
                followed.anchor = Some((number, hash));
            }
        }
        followed.scanned = Some(to);
        let tail = followed.headers.len() as u64;
        drop(followed);
        self.tail
            .send_if_modified(|now| std::mem::replace(now, tail) != tail);
        Ok(())
    }
}

/// Sends queued appends as transactions, one at a time.
struct Submitter {
    contract: OrdoLog::OrdoLogInstance<DynProvider>,
    fault: Arc<WriteFault>,
    /// Why sending stopped: after a failed send the account's nonce and
    /// whether the transaction landed are unknown until reopened.
    poisoned: Option<String>,
}

impl Submitter {
    async fn run(mut self, mut queue: mpsc::Receiver<Queued>) {
        while let Some(first) = queue.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_HEADERS_PER_TRANSACTION {
                match queue.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            let result = self.send(&batch).await;
            for (offset, queued) in batch.into_iter().enumerate() {
                let _ = queued
                    .reply
                    .send(result.clone().map(|first| first + offset as u64));
            }
        }
    }

    /// Sends one transaction with `batch`'s headers; returns the first seq.
    async fn send(&mut self, batch: &[Queued]) -> Result<u64, SequencerError> {
        if let Some(reason) = &self.poisoned {
            return Err(SequencerError::Poisoned(reason.clone()));
        }
        let sent = self.try_send(batch).await;
        if let Err(reason) = &sent {
            self.poisoned = Some(reason.clone());
        }
        sent.map_err(SequencerError::Poisoned)
    }

    async fn try_send(&self, batch: &[Queued]) -> Result<u64, String> {
        if self.fault.take() {
            return Err("injected write fault".into());
        }
        let headers = batch.iter().map(|q| contract_header(&q.entry)).collect();
        let pending = (self.contract.append(headers).send().await)
            .map_err(|e| format!("sending the append: {e}"))?;
        let receipt = pending
            .with_timeout(Some(RECEIPT_TIMEOUT))
            .get_receipt()
            .await
            .map_err(|e| format!("waiting for the append's receipt: {e}"))?;
        if !receipt.status() {
            return Err(format!(
                "the append reverted in transaction {}",
                receipt.transaction_hash
            ));
        }
        let event = receipt.decoded_log::<OrdoLog::Appended>().ok_or_else(|| {
            format!(
                "no Appended event in transaction {}",
                receipt.transaction_hash
            )
        })?;
        Ok(event.data.first)
    }
}

#[async_trait::async_trait]
impl Sequencer for EvmSequencer {
    async fn append(&self, entry: EntryDescriptor) -> Result<EntryHeader, SequencerError> {
        entry.validate()?;
        self.check_following()?;
        let Some(appends) = &self.appends else {
            return Err(SequencerError::Io(
                "this EVM sequencer has no key to append with".into(),
            ));
        };
        let (reply, answer) = oneshot::channel();
        (appends.send(Queued { entry, reply }).await).map_err(|_| SequencerError::Closed)?;
        let seq = answer.await.map_err(|_| SequencerError::Closed)??;
        self.wait_beyond(seq).await?;
        let headers = self.read(seq, 1).await?;
        headers
            .into_iter()
            .next()
            .ok_or_else(|| SequencerError::Io(format!("header {seq} not followed")))
    }

    async fn read(&self, from: u64, max: usize) -> Result<Vec<EntryHeader>, SequencerError> {
        let followed = self.followed.read().expect("followed lock");
        let from = usize::try_from(from)
            .unwrap_or(usize::MAX)
            .min(followed.headers.len());
        let max = max.min(MAX_READ_BATCH);
        Ok(followed.headers[from..].iter().take(max).cloned().collect())
    }

    fn tail(&self) -> u64 {
        *self.tail.borrow()
    }

    async fn wait_beyond(&self, seq: u64) -> Result<u64, SequencerError> {
        let mut tail = self.tail.clone();
        loop {
            self.check_following()?;
            if *tail.borrow_and_update() > seq {
                return Ok(*tail.borrow());
            }
            // The follower may stop without moving the tail: look again
            // at least every second.
            let _ = tokio::time::timeout(Duration::from_secs(1), tail.changed()).await;
        }
    }
}
