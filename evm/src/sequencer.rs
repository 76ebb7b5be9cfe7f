//! [`EvmSequencer`]: ordo's [`Sequencer`] over the `OrdoLog` contract.
//!
//! Appends queue and leave in chain transactions of up to
//! [`MAX_HEADERS_PER_TRANSACTION`] headers, up to
//! [`MAX_TRANSACTIONS_IN_FLIGHT`] at once with consecutive nonces of one
//! account. Each is broadcast again until one of its versions has a
//! receipt; a stuck one is signed again with higher fees
//! ([`FEE_BUMP_AFTER_POLLS`], [`MAX_FEE_BUMPS`]). An append returns once the follower has
//! taken its header from a block `confirmations` deep. The follower polls
//! the chain every `poll_interval`: the head, then the `Appended` events of
//! the blocks newly confirmed, in chain order. It keeps the headers in
//! memory, so `read` and `tail` never wait for the chain. With a
//! `saved_dir` it also keeps them on disk ([`crate::saved`]) and a restart
//! reads only the blocks after the last one scanned; without, it reads the
//! events again from the contract's first block.

use crate::contract::{OrdoLog, contract_header, ordo_header};
use crate::inclusion::{EventOrigin, FollowedEvent};
use crate::saved::SavedHeaders;
use alloy::eips::eip2718::Encodable2718;
use alloy::network::EthereumWallet;
use alloy::network::{NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Address as ChainAddress, B256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Filter, TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use alloy::sol_types::SolEvent;
use ordo_log::limits::MAX_READ_BATCH;
use ordo_log::{EntryDescriptor, EntryHeader, Sequencer, SequencerError, WriteFault};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// Most headers one chain transaction carries: the contract's own limit
/// (`MAX_HEADERS_PER_CALL`).
pub const MAX_HEADERS_PER_TRANSACTION: usize = 256;

/// The call deadlines live with the clients that enforce them.
pub use crate::http::{MAX_RPC_TIMEOUT, RPC_CALL_TIMEOUT};

/// Most confirmations asked for: 64 blocks is two epochs of Ethereum's
/// beacon chain, past which a block is final there; more only delays every
/// append.
pub const MAX_CONFIRMATIONS: u64 = 64;

/// Append transactions out at once, with consecutive nonces. Enough for
/// a block to carry the batches that queued during the last one, few
/// enough that one lost transaction does not leave a long run of later
/// nonces waiting behind it.
pub const MAX_TRANSACTIONS_IN_FLIGHT: usize = 16;

/// Appends waiting for a transaction beyond this make `append` wait for
/// room.
pub const MAX_QUEUED_APPENDS: usize = 4096;

/// Longest one transaction may take to land, its endpoint down or slow
/// meanwhile, before the append fails (its outcome unknown: the follower
/// still finds its headers if it landed).
pub const SEND_DEADLINE: Duration = Duration::from_secs(120);

/// Polls without a receipt after which a pending append is signed again
/// with higher fees: it is stuck, most likely underpriced (the base fee
/// rose past what it offers). The new version keeps the nonce, so only one
/// version can ever land; every version is watched for a receipt.
pub const FEE_BUMP_AFTER_POLLS: u32 = 10;

/// Most fee raises for one transaction: each raises both fees by at least
/// an eighth (nodes replace a pending transaction only for 10% more) or to
/// the endpoint's current estimate, whichever is higher; ten raises go to
/// at least 3.2 times the first offer. Past them the last version is
/// broadcast until [`SEND_DEADLINE`].
pub const MAX_FEE_BUMPS: usize = 10;

/// Most blocks one `eth_getLogs` call spans: public endpoints refuse wide
/// ranges.
pub const MAX_LOG_RANGE: u64 = 1000;

/// Where and how to reach the contract.
#[derive(Clone, Debug)]
pub struct EvmSettings {
    /// The chain's JSON-RPC endpoint (`http://...` or `https://...`).
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
    /// Longest one JSON-RPC call may take (default [`RPC_CALL_TIMEOUT`],
    /// at most [`MAX_RPC_TIMEOUT`]).
    pub rpc_timeout: Duration,
    /// A PEM file of extra certificates to trust for an `https` endpoint
    /// behind a private authority (the system's roots are always trusted).
    pub ca_file: Option<std::path::PathBuf>,
    /// Where followed headers are kept across restarts
    /// ([`crate::saved`]); `None`: in memory only, every event read again
    /// at open.
    pub saved_dir: Option<std::path::PathBuf>,
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
    /// The saved headers could not be read.
    #[error(transparent)]
    Saved(#[from] crate::saved::SavedError),
}

/// What an EVM sequencer counts, for metrics and status.
#[derive(Debug, Default)]
pub struct EvmStats {
    /// The chain's head at the last poll.
    pub chain_head: AtomicU64,
    /// The newest block whose events were taken (confirmed).
    pub confirmed_block: AtomicU64,
    /// Appends waiting to be sent or confirmed.
    pub pending_appends: AtomicU64,
    /// Append transactions that landed.
    pub transactions: AtomicU64,
    /// Headers those transactions carried.
    pub headers_sent: AtomicU64,
    /// Gas they used.
    pub gas_used: AtomicU64,
    /// What they cost, in gwei (gas used times the effective price).
    pub gwei_spent: AtomicU64,
    /// Pending transactions signed again with higher fees.
    pub fee_bumps: AtomicU64,
    /// `eth_getLogs` calls made to follow the contract.
    pub log_queries: AtomicU64,
}

/// The headers taken from confirmed blocks, and the last such block (its
/// hash is checked on every poll: a change is a reorg past the
/// confirmations). The same record the saved headers keep on disk.
type Followed = crate::saved::Progress;

/// One queued append.
struct Queued {
    entry: EntryDescriptor,
    reply: oneshot::Sender<Result<Landed, SequencerError>>,
}

/// Where an append landed: its transaction (kept to broadcast again if a
/// reorg drops it before it is confirmed) and its place in the batch.
struct Landed {
    signed: Arc<SignedAppend>,
    offset: u64,
}

/// The log's order on an EVM chain. See the module documentation.
pub struct EvmSequencer {
    stats: Arc<EvmStats>,
    provider: DynProvider,
    /// The contract, and the block the search for an old header's event
    /// starts from.
    contract: ChainAddress,
    from_block: u64,
    chain_id: u64,
    /// The events followed since this process started, in seq order.
    events: Arc<RwLock<Vec<FollowedEvent>>>,
    poll_interval: Duration,
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
        if self.rpc_timeout.is_zero() || self.rpc_timeout > MAX_RPC_TIMEOUT {
            return Err(EvmError::Settings(format!(
                "rpc_timeout must be above zero and at most {MAX_RPC_TIMEOUT:?}, not {:?}",
                self.rpc_timeout
            )));
        }
        Ok(())
    }

    /// A provider for the endpoint, with no fillers: the submitter fills
    /// and signs its transactions itself (the nonce asked of the chain each
    /// time, so a restart, a failed send or a reorg never leaves it wrong).
    /// Every call gets `rpc_timeout`: an endpoint that takes the
    /// connection and never answers fails the call, which is then retried
    /// on a new connection, instead of holding the follower or the
    /// submitter for ever.
    fn provider(&self) -> Result<DynProvider, EvmError> {
        let endpoint = crate::http::Endpoint {
            url: &self.rpc_url,
            timeout: self.rpc_timeout,
            ca_file: self.ca_file.as_deref(),
        };
        endpoint.provider().map_err(|e| rpc_error(self, e))
    }
}

/// Checks that `provider` serves the configured chain and that the log's
/// contract has code there: a wrong chain or an empty address is refused
/// before anything is read or sent.
async fn check_chain(settings: &EvmSettings, provider: &DynProvider) -> Result<(), EvmError> {
    let served = (provider.get_chain_id().await).map_err(|e| rpc_error(settings, e))?;
    if served != settings.chain_id {
        return Err(EvmError::WrongChain {
            expected: settings.chain_id,
            served,
        });
    }
    let code =
        (provider.get_code_at(settings.contract).await).map_err(|e| rpc_error(settings, e))?;
    if code.is_empty() {
        return Err(EvmError::NoContract(settings.contract));
    }
    Ok(())
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
        let provider = settings.provider()?;
        check_chain(&settings, &provider).await?;
        let (saved, progress) = match &settings.saved_dir {
            Some(dir) => {
                let (saved, progress) =
                    SavedHeaders::open(dir, settings.chain_id, settings.contract)?;
                (Some(Mutex::new(saved)), progress)
            }
            None => (None, Followed::default()),
        };
        let (tail_sender, tail) = watch::channel(progress.headers.len() as u64);
        let followed = Arc::new(RwLock::new(progress));
        let stats = Arc::new(EvmStats::default());
        let stopped = Arc::new(Mutex::new(None));
        let events = Arc::new(RwLock::new(Vec::new()));
        let follower = Follower {
            stats: stats.clone(),
            events: events.clone(),
            provider: provider.clone(),
            settings: settings.clone(),
            followed: followed.clone(),
            saved,
            tail: tail_sender,
            stopped: stopped.clone(),
        };
        follower.poll().await?;
        let mut tasks = vec![tokio::spawn(follower.run())];
        let fault = Arc::new(WriteFault::default());
        let appends = signer.map(|signer| {
            let (sender, queue) = mpsc::channel(MAX_QUEUED_APPENDS);
            let submitter = Submitter::new(signer, &settings, &provider, &stats, &fault);
            tasks.push(tokio::spawn(submitter.run(queue)));
            sender
        });
        Ok(Self {
            stats,
            provider,
            contract: settings.contract,
            from_block: settings.from_block,
            chain_id: settings.chain_id,
            events,
            poll_interval: settings.poll_interval,
            followed,
            tail,
            stopped,
            appends,
            fault,
            tasks,
        })
    }

    /// The chain's id and the log's contract.
    pub fn contract(&self) -> (u64, ChainAddress) {
        (self.chain_id, self.contract)
    }

    /// The event that carried header `seq`: one this process followed,
    /// else (a header from before a restart, taken from the saved file)
    /// found by scanning the contract's events from its first block, in
    /// windows of [`MAX_LOG_RANGE`] blocks.
    pub async fn origin_of(&self, seq: u64) -> Result<EventOrigin, EvmError> {
        {
            let events = self.events.read().expect("events lock");
            let after = events.partition_point(|e| e.first <= seq);
            if let Some(event) = after
                .checked_sub(1)
                .map(|i| events[i])
                .filter(|e| e.holds(seq))
            {
                return Ok(event.origin);
            }
        }
        let io = |e: alloy::transports::TransportError| {
            EvmError::Follow(SequencerError::Io(e.to_string()))
        };
        let head = self.provider.get_block_number().await.map_err(io)?;
        let mut from = self.from_block;
        while from <= head {
            let to = head.min(from + MAX_LOG_RANGE - 1);
            let filter = Filter::new()
                .address(self.contract)
                .event_signature(OrdoLog::Appended::SIGNATURE_HASH)
                .from_block(from)
                .to_block(to);
            for log in self.provider.get_logs(&filter).await.map_err(io)? {
                let Ok(decoded) = log.log_decode::<OrdoLog::Appended>() else {
                    continue;
                };
                let (first, count) = (decoded.inner.data.first, decoded.inner.data.headers.len());
                match FollowedEvent::of(&log, first, count as u64) {
                    Some(event) if event.holds(seq) => return Ok(event.origin),
                    _ => {}
                }
            }
            from = to + 1;
        }
        Err(EvmError::Follow(SequencerError::Io(format!(
            "no event of the contract carries entry {seq}"
        ))))
    }

    /// The switch that makes the next transaction fail, for the
    /// conformance suite (a node never arms it).
    pub fn write_fault(&self) -> Arc<WriteFault> {
        self.fault.clone()
    }

    /// Waits until `landed`'s header is in a confirmed block and taken by
    /// the follower; returns it as the chain recorded it. Its seq comes
    /// from the transaction's receipt each time: a reorg that drops the
    /// block before it is confirmed drops the receipt, the same signed
    /// transaction is broadcast again, and it may land at another seq.
    async fn confirm(
        &self,
        landed: &Landed,
        sent: &EntryDescriptor,
    ) -> Result<EntryHeader, SequencerError> {
        let deadline = tokio::time::Instant::now() + SEND_DEADLINE;
        loop {
            self.check_following()?;
            let fresh = self.poll_interval / 2;
            let receipt = land_shared(&self.provider, &landed.signed, fresh).await;
            if let Ok(Some(receipt)) = receipt {
                let seq = receipt.first + landed.offset;
                let header = self.read(seq, 1).await?.into_iter().next();
                if let Some(header) = header.filter(|h| same_header(&h.entry, sent)) {
                    return Ok(header);
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(SequencerError::Io(format!(
                    "transaction {} was not confirmed within {SEND_DEADLINE:?}; its outcome is unknown",
                    landed.signed.newest().hash
                )));
            }
            let mut tail = self.tail.clone();
            let _ = tokio::time::timeout(self.poll_interval, tail.changed()).await;
        }
    }

    /// What this sequencer counts.
    pub fn stats(&self) -> Arc<EvmStats> {
        self.stats.clone()
    }

    fn check_following(&self) -> Result<(), SequencerError> {
        match &*self.stopped.lock().expect("stopped lock") {
            Some(reason) => Err(SequencerError::Poisoned(reason.clone())),
            None => Ok(()),
        }
    }
}

/// Counts one append as pending while it lives.
struct Pending<'a>(&'a EvmStats);

impl<'a> Pending<'a> {
    fn count(stats: &'a EvmStats) -> Self {
        stats.pending_appends.fetch_add(1, Ordering::Relaxed);
        Self(stats)
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.0.pending_appends.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Follows the contract's events into [`Followed`].
struct Follower {
    stats: Arc<EvmStats>,
    /// Where each followed header came from.
    events: Arc<RwLock<Vec<FollowedEvent>>>,
    provider: DynProvider,
    settings: EvmSettings,
    followed: Arc<RwLock<Followed>>,
    /// Where what is followed is kept across restarts, if anywhere.
    saved: Option<Mutex<SavedHeaders>>,
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
        self.stats.chain_head.store(head, Ordering::Relaxed);
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
            self.stats.log_queries.fetch_add(1, Ordering::Relaxed);
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
            if let Some(origin) = FollowedEvent::of(log, event.first, event.headers.len() as u64) {
                self.events.write().expect("events lock").push(origin);
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
        if let Some(saved) = &self.saved {
            // Saved before the tail moves: a header is used only once it is
            // on disk, so a restart never forgets one a replica applied.
            let mut saved = saved.lock().expect("saved lock");
            saved
                .save(&followed)
                .map_err(|e| SequencerError::Io(e.to_string()))?;
        }
        self.stats.confirmed_block.store(to, Ordering::Relaxed);
        // The tail moves before readers can see the new headers: whoever
        // reads a header (an append confirming itself, a replica) finds
        // the tail already counting it.
        let tail = followed.headers.len() as u64;
        self.tail
            .send_if_modified(|now| std::mem::replace(now, tail) != tail);
        drop(followed);
        Ok(())
    }
}

/// Whether `recorded` (submitter from the chain) is `sent` (submitter as
/// the appender named it, which the chain replaces).
fn same_header(recorded: &EntryDescriptor, sent: &EntryDescriptor) -> bool {
    recorded.commitment == sent.commitment
        && recorded.geometry == sent.geometry
        && recorded.tags == sent.tags
}

/// Sends queued appends as transactions, up to
/// [`MAX_TRANSACTIONS_IN_FLIGHT`] at once.
///
/// Each batch becomes one transaction, signed here with the account's next
/// nonce (counted here after the first, asked of the chain again after any
/// failure), and that same signed transaction is broadcast again until it
/// has a receipt: a lost answer, an endpoint that is down or slow, or a
/// reorg that dropped it never makes a second transaction with the same
/// headers (which would order them twice). Several transactions out at
/// once, with consecutive nonces, let one block carry several batches:
/// with blocks on a timer, one at a time would confirm one batch every two
/// blocks. Only what waiting cannot mend (a revert, a signing failure, an
/// injected fault) stops the submitter until the sequencer is reopened.
struct Submitter {
    shared: Arc<Shared>,
    account: ChainAddress,
    contract: ChainAddress,
    chain_id: u64,
    fault: Arc<WriteFault>,
    /// The nonce the next transaction takes, once known.
    next_nonce: Option<u64>,
}

/// What the submitter and its landing tasks share.
struct Shared {
    stats: Arc<EvmStats>,
    /// Signs appends, and again with higher fees.
    wallet: EthereumWallet,
    provider: DynProvider,
    poll_interval: Duration,
    /// Why sending stopped.
    poisoned: Mutex<Option<String>>,
    /// Set when a transaction failed: the nonce is asked of the chain again.
    resync: std::sync::atomic::AtomicBool,
}

/// Why one transaction did not land: worth waiting out, or not.
enum SendFailure {
    /// The endpoint did not answer, or answered an error waiting mends.
    Transient(String),
    /// Waiting will not mend it.
    Fatal(String),
}

impl Submitter {
    /// A submitter sending as `signer` to the configured contract, its
    /// nonce read from the chain before its first transaction.
    fn new(
        signer: PrivateKeySigner,
        settings: &EvmSettings,
        provider: &DynProvider,
        stats: &Arc<EvmStats>,
        fault: &Arc<WriteFault>,
    ) -> Self {
        let account = signer.address();
        let shared = Shared {
            stats: stats.clone(),
            wallet: EthereumWallet::from(signer),
            provider: provider.clone(),
            poll_interval: settings.poll_interval,
            poisoned: Mutex::new(None),
            resync: Default::default(),
        };
        Self {
            shared: Arc::new(shared),
            account,
            contract: settings.contract,
            chain_id: settings.chain_id,
            fault: fault.clone(),
            next_nonce: None,
        }
    }

    async fn run(mut self, mut queue: mpsc::Receiver<Queued>) {
        let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_TRANSACTIONS_IN_FLIGHT));
        while let Some(first) = queue.recv().await {
            let Ok(permit) = in_flight.clone().acquire_owned().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_HEADERS_PER_TRANSACTION {
                match queue.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            match self.prepare(&batch).await {
                Ok(signed) => {
                    let shared = self.shared.clone();
                    tokio::spawn(async move {
                        let result = shared.land_until_receipt(&signed, batch.len()).await;
                        reply(batch, result.map(|()| Arc::new(signed)));
                        drop(permit);
                    });
                }
                Err(e) => reply(batch, Err(e)),
            }
        }
    }

    /// Signs `batch`'s transaction with the next nonce and broadcasts it
    /// once (its landing task broadcasts it again until it lands).
    async fn prepare(&mut self, batch: &[Queued]) -> Result<SignedAppend, SequencerError> {
        self.shared.check()?;
        if self.fault.take() {
            return Err(self.shared.poison("injected write fault".into()));
        }
        let deadline = tokio::time::Instant::now() + SEND_DEADLINE;
        loop {
            match self.sign(batch).await {
                Ok(signed) => {
                    broadcast(&self.shared.provider, &signed.newest()).await;
                    return Ok(signed);
                }
                Err(SendFailure::Fatal(reason)) => return Err(self.shared.poison(reason)),
                Err(SendFailure::Transient(reason)) => {
                    self.next_nonce = None;
                    self.shared.pause(deadline, &reason).await?;
                }
            }
        }
    }

    /// The nonce the next transaction takes: counted on from the last,
    /// unless a transaction failed since (then the chain's pending count).
    async fn nonce(&mut self) -> Result<u64, SendFailure> {
        let resync = self.shared.resync.swap(false, Ordering::SeqCst);
        if let (Some(next), false) = (self.next_nonce, resync) {
            return Ok(next);
        }
        let pending = self
            .shared
            .provider
            .get_transaction_count(self.account)
            .pending();
        pending
            .await
            .map_err(|e| SendFailure::Transient(e.to_string()))
    }

    /// The batch's transaction: the account's next nonce, gas and fees
    /// from the endpoint, signed here.
    async fn sign(&mut self, batch: &[Queued]) -> Result<SignedAppend, SendFailure> {
        let transient =
            |e: alloy::transports::TransportError| SendFailure::Transient(e.to_string());
        let headers = batch.iter().map(|q| contract_header(&q.entry)).collect();
        let request = TransactionRequest::default()
            .with_from(self.account)
            .with_to(self.contract)
            .with_input(OrdoLog::appendCall { headers }.abi_encode())
            .with_chain_id(self.chain_id);
        let nonce = self.nonce().await?;
        let provider = &self.shared.provider;
        let gas = match provider.estimate_gas(request.clone()).await {
            Ok(gas) => gas,
            // The endpoint ran the call and it reverted: a limit the queue
            // should have kept, or another contract at the address.
            Err(e) if e.as_error_resp().is_some() => {
                return Err(SendFailure::Fatal(format!("the append would revert: {e}")));
            }
            Err(e) => return Err(transient(e)),
        };
        let fees = provider.estimate_eip1559_fees().await.map_err(transient)?;
        let request = request.with_nonce(nonce).with_gas_limit(gas + gas / 5);
        let fees = (fees.max_fee_per_gas, fees.max_priority_fee_per_gas);
        let first = (self.shared.sign_version(&request, fees).await)
            .map_err(|e| SendFailure::Fatal(format!("signing the append: {e}")))?;
        self.next_nonce = Some(nonce + 1);
        Ok(SignedAppend {
            request,
            versions: Mutex::new(vec![first]),
            looked: Default::default(),
        })
    }
}

/// Tells each queued append of `batch` where its transaction landed.
fn reply(batch: Vec<Queued>, result: Result<Arc<SignedAppend>, SequencerError>) {
    for (offset, queued) in batch.into_iter().enumerate() {
        let landed = (result.clone()).map(|signed| Landed {
            signed,
            offset: offset as u64,
        });
        let _ = queued.reply.send(landed);
    }
}

impl Shared {
    fn check(&self) -> Result<(), SequencerError> {
        match &*self.poisoned.lock().expect("poisoned lock") {
            Some(reason) => Err(SequencerError::Poisoned(reason.clone())),
            None => Ok(()),
        }
    }

    fn poison(&self, reason: String) -> SequencerError {
        *self.poisoned.lock().expect("poisoned lock") = Some(reason.clone());
        SequencerError::Poisoned(reason)
    }

    /// Signs `request` (nonce and gas set) offering `fees` (max fee per
    /// gas, max priority fee per gas).
    async fn sign_version(
        &self,
        request: &TransactionRequest,
        (max_fee, tip): (u128, u128),
    ) -> Result<SignedVersion, String> {
        let request = (request.clone())
            .with_max_fee_per_gas(max_fee)
            .with_max_priority_fee_per_gas(tip);
        let envelope = (request.build(&self.wallet).await).map_err(|e| e.to_string())?;
        Ok(SignedVersion {
            hash: *envelope.tx_hash(),
            raw: envelope.encoded_2718().into(),
            fees: (max_fee, tip),
        })
    }

    /// Signs `signed` again, same nonce, offering more (see
    /// [`MAX_FEE_BUMPS`]), and broadcasts the new version. Does nothing
    /// past the limit or when the endpoint gives no estimate.
    async fn bump_fees(&self, signed: &SignedAppend) {
        let last = signed.newest();
        if signed.version_count() > MAX_FEE_BUMPS {
            return;
        }
        let Ok(now) = self.provider.estimate_eip1559_fees().await else {
            return;
        };
        let raise = |old: u128, now: u128| (old + old / 8 + 1).max(now);
        let tip = raise(last.fees.1, now.max_priority_fee_per_gas);
        let max_fee = raise(last.fees.0, now.max_fee_per_gas).max(tip);
        let version = match self.sign_version(&signed.request, (max_fee, tip)).await {
            Ok(version) => version,
            Err(e) => return tracing::warn!(error = %e, "signing an append again"),
        };
        tracing::info!(stuck = %last.hash, replacement = %version.hash, max_fee, tip, "an append is stuck: offering higher fees");
        broadcast(&self.provider, &version).await;
        signed.push(version);
        self.stats.fee_bumps.fetch_add(1, Ordering::Relaxed);
    }

    /// Broadcasts `signed` again until one of its versions has a receipt,
    /// raising its fees every [`FEE_BUMP_AFTER_POLLS`] polls without one.
    async fn land_until_receipt(
        &self,
        signed: &SignedAppend,
        headers: usize,
    ) -> Result<(), SequencerError> {
        let deadline = tokio::time::Instant::now() + SEND_DEADLINE;
        let mut polls_without_receipt = 0u32;
        loop {
            let failed = match land(&self.provider, signed).await {
                Ok(Some(landed)) => {
                    self.count(&landed, headers);
                    return Ok(());
                }
                Ok(None) => {
                    polls_without_receipt += 1;
                    if polls_without_receipt.is_multiple_of(FEE_BUMP_AFTER_POLLS) {
                        self.bump_fees(signed).await;
                    }
                    "no receipt yet".to_string()
                }
                Err(SendFailure::Fatal(reason)) => {
                    self.resync.store(true, Ordering::SeqCst);
                    return Err(self.poison(reason));
                }
                Err(SendFailure::Transient(reason)) => {
                    tracing::warn!(%reason, "the chain's endpoint failed; broadcasting again");
                    reason
                }
            };
            if let Err(e) = self.pause(deadline, &failed).await {
                self.resync.store(true, Ordering::SeqCst);
                return Err(e);
            }
        }
    }

    fn count(&self, landed: &LandedReceipt, headers: usize) {
        let stats = &self.stats;
        stats.transactions.fetch_add(1, Ordering::Relaxed);
        (stats.headers_sent).fetch_add(headers as u64, Ordering::Relaxed);
        stats.gas_used.fetch_add(landed.gas_used, Ordering::Relaxed);
        let gwei = u64::try_from(landed.wei / 1_000_000_000).unwrap_or(u64::MAX);
        stats.gwei_spent.fetch_add(gwei, Ordering::Relaxed);
    }

    /// Waits one poll interval, or fails once `deadline` has passed (the
    /// transaction's outcome is then unknown: the follower finds its
    /// headers if it landed).
    async fn pause(&self, deadline: tokio::time::Instant, why: &str) -> Result<(), SequencerError> {
        if tokio::time::Instant::now() >= deadline {
            return Err(SequencerError::Io(format!(
                "the append did not land within {SEND_DEADLINE:?} ({why}); its outcome is unknown"
            )));
        }
        tokio::time::sleep(self.poll_interval).await;
        Ok(())
    }
}

/// What a landed append's receipt says.
#[derive(Clone, Copy)]
struct LandedReceipt {
    /// The seq of the batch's first header.
    first: u64,
    gas_used: u64,
    /// Gas used times the effective price.
    wei: u128,
}

/// Broadcasts the newest version of `signed` (again, unless a version
/// already has a receipt); the receipt once one has.
async fn land(
    provider: &DynProvider,
    signed: &SignedAppend,
) -> Result<Option<LandedReceipt>, SendFailure> {
    if let Some(receipt) = any_receipt(provider, signed).await? {
        return first_seq(&receipt).map(Some);
    }
    broadcast(provider, &signed.newest()).await;
    match any_receipt(provider, signed).await? {
        Some(receipt) => first_seq(&receipt).map(Some),
        None => Ok(None),
    }
}

/// [`land`], shared by the appends of one transaction: a look younger
/// than `fresh` is reused, and appends that ask at once wait for one look.
/// (Each of up to [`MAX_HEADERS_PER_TRANSACTION`] appends asking on its
/// own made as many receipt calls per poll, a burden on a rate-limited
/// endpoint.)
async fn land_shared(
    provider: &DynProvider,
    signed: &SignedAppend,
    fresh: Duration,
) -> Result<Option<LandedReceipt>, SendFailure> {
    let mut looked = signed.looked.lock().await;
    if let Some((at, receipt)) = *looked
        && at.elapsed() < fresh
    {
        return Ok(receipt);
    }
    let receipt = land(provider, signed).await?;
    *looked = Some((tokio::time::Instant::now(), receipt));
    Ok(receipt)
}

/// Sends `version` to the endpoint. "Already known", "nonce too low" (an
/// earlier version was mined) or "underpriced" are answers too: only a
/// receipt decides, so a failure is logged and nothing more.
async fn broadcast(provider: &DynProvider, version: &SignedVersion) {
    if let Err(e) = provider.send_raw_transaction(&version.raw).await {
        tracing::debug!(error = %e, hash = %version.hash, "broadcasting the append");
    }
}

/// The receipt of whichever version of `signed` landed, newest first.
async fn any_receipt(
    provider: &DynProvider,
    signed: &SignedAppend,
) -> Result<Option<TransactionReceipt>, SendFailure> {
    for hash in signed.hashes().into_iter().rev() {
        if let Some(receipt) = receipt(provider, hash).await? {
            return Ok(Some(receipt));
        }
    }
    Ok(None)
}

async fn receipt(
    provider: &DynProvider,
    hash: B256,
) -> Result<Option<TransactionReceipt>, SendFailure> {
    (provider.get_transaction_receipt(hash).await)
        .map_err(|e| SendFailure::Transient(e.to_string()))
}

/// An append transaction, kept to broadcast again: every version signed
/// for its nonce (the first, then each fee raise), any of which may land.
struct SignedAppend {
    /// The transaction without fees: nonce, gas, call.
    request: TransactionRequest,
    /// Oldest first; never empty.
    versions: Mutex<Vec<SignedVersion>>,
    /// The last look for a receipt, and when (see [`land_shared`]).
    looked: tokio::sync::Mutex<Option<(tokio::time::Instant, Option<LandedReceipt>)>>,
}

/// One signed version of an append transaction.
#[derive(Clone)]
struct SignedVersion {
    hash: B256,
    raw: alloy::primitives::Bytes,
    /// (max fee per gas, max priority fee per gas), in wei.
    fees: (u128, u128),
}

impl SignedAppend {
    fn versions(&self) -> std::sync::MutexGuard<'_, Vec<SignedVersion>> {
        // Each change is one push: a panic elsewhere leaves it whole.
        self.versions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn newest(&self) -> SignedVersion {
        let versions = self.versions();
        versions
            .last()
            .cloned()
            .expect("an append has a first version")
    }

    fn hashes(&self) -> Vec<B256> {
        self.versions().iter().map(|v| v.hash).collect()
    }

    fn version_count(&self) -> usize {
        self.versions().len()
    }

    fn push(&self, version: SignedVersion) {
        self.versions().push(version);
    }
}

/// The first seq of the `Appended` event in `receipt`, and its cost.
fn first_seq(receipt: &TransactionReceipt) -> Result<LandedReceipt, SendFailure> {
    let hash = receipt.transaction_hash;
    if !receipt.status() {
        return Err(SendFailure::Fatal(format!(
            "the append reverted in transaction {hash}"
        )));
    }
    let event = receipt.decoded_log::<OrdoLog::Appended>();
    let event = event
        .ok_or_else(|| SendFailure::Fatal(format!("no Appended event in transaction {hash}")))?;
    Ok(LandedReceipt {
        first: event.data.first,
        gas_used: receipt.gas_used,
        wei: u128::from(receipt.gas_used).saturating_mul(receipt.effective_gas_price),
    })
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
        let _pending = Pending::count(&self.stats);
        let (reply, answer) = oneshot::channel();
        let queued = Queued {
            entry: entry.clone(),
            reply,
        };
        (appends.send(queued).await).map_err(|_| SequencerError::Closed)?;
        let landed = answer.await.map_err(|_| SequencerError::Closed)??;
        self.confirm(&landed, &entry).await
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
