//! A node's miner (docs/MINING.md): seals the shards this node stores with
//! its own id, searches each open epoch's attempts with a bounded share of
//! one core, and submits its hits as transactions of its node key.
//!
//! It learns everything from the node's replica, never from the network:
//! the recall index (replay's own rows, so the miner recalls exactly what
//! replay will check), the open epoch's challenge and target, and whether
//! it is registered. Sealed chunks live on disk under `DATA_DIR/sealed`
//! (one row per chunk), so a restart does not seal again; a hit's path is
//! made from the plain shard, read only then.
//!
//! The loop, each turn: register (once), index and seal new entries, then
//! one round of [`ATTEMPTS_PER_ROUND`] attempts on a blocking thread,
//! followed by a rest that keeps its share of a core at `cpu_share`.

use crate::node::handles::{Commits, Snapshots};
use anyhow::Context;
use ordo_kv::{Column, Engine, RocksEngine, WriteBatch};
use ordo_log::{Hash, ShardStore};
use ordo_mine::limits::PROOF_WINDOW_EPOCHS;
use ordo_mine::seal::{SealPlace, seal};
use ordo_mine::{EpochContext, Holdings, MinedEntry, MiningProof, RecallIndex, search};
use ordo_txn::mining::{MINER_PREFIX, Mining};
use ordo_txn::{AclOp, Address, MiningOp};
use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Attempts per round: about a millisecond of hashing when nothing is held,
/// short enough that a new epoch is noticed at once.
pub const ATTEMPTS_PER_ROUND: u64 = 4096;

/// The least and most of a core the miner may take.
pub const MIN_CPU_SHARE: f64 = 0.01;
/// See [`MIN_CPU_SHARE`].
pub const MAX_CPU_SHARE: f64 = 1.0;
/// What `ordo dev --mine-beneficiary` takes unless told: serving comes first.
pub const DEFAULT_CPU_SHARE: f64 = 0.25;

/// How long the miner waits when there is nothing to mine.
const IDLE_WAIT: Duration = Duration::from_millis(200);

/// Entries indexed (and sealed) per turn, so a long log does not starve
/// the search of the current epoch.
const ENTRIES_PER_TURN: usize = 64;

/// Directory of the sealed chunks inside a data directory.
pub const SEALED_DIR: &str = "sealed";

/// How a node mines.
#[derive(Debug, Clone, Copy)]
pub struct MinerSettings {
    /// Who is credited with the node's rewards.
    pub beneficiary: Address,
    /// The share of one core the search may take, `MIN_CPU_SHARE..=MAX_CPU_SHARE`.
    pub cpu_share: f64,
}

impl MinerSettings {
    /// Checks the share.
    pub fn check(&self) -> Result<(), String> {
        if (MIN_CPU_SHARE..=MAX_CPU_SHARE).contains(&self.cpu_share) {
            Ok(())
        } else {
            Err(format!(
                "the miner's cpu share must be {MIN_CPU_SHARE}..={MAX_CPU_SHARE}, not {}",
                self.cpu_share
            ))
        }
    }
}

/// What the miner did, for metrics and status.
#[derive(Debug, Default)]
pub struct MinerStats {
    /// The miner's account (the node key's).
    pub account: Address,
    /// Attempts per second over the last round, rest included, in
    /// thousandths.
    pub rate_milli: AtomicU64,
    /// Attempts made.
    pub attempts: AtomicU64,
    /// Attempts that recalled a chunk this node holds.
    pub held: AtomicU64,
    /// Proofs found and submitted.
    pub hits: AtomicU64,
    /// Submitted proofs replay accepted, and refused.
    pub accepted: AtomicU64,
    /// See [`MinerStats::accepted`].
    pub refused: AtomicU64,
    /// Chunks sealed.
    pub sealed_chunks: AtomicU64,
}

/// Appends the miner's counters (a node that mines).
pub fn render_miner(stats: &MinerStats, out: &mut String) {
    let counters = [
        (
            "ordo_mining_attempts_total",
            "Mining attempts made.",
            &stats.attempts,
        ),
        (
            "ordo_mining_held_total",
            "Attempts that recalled a chunk this node holds.",
            &stats.held,
        ),
        (
            "ordo_mining_hits_total",
            "Proofs found and submitted.",
            &stats.hits,
        ),
        (
            "ordo_mining_proofs_accepted_total",
            "Submitted proofs replay accepted.",
            &stats.accepted,
        ),
        (
            "ordo_mining_proofs_refused_total",
            "Submitted proofs replay refused.",
            &stats.refused,
        ),
        (
            "ordo_mining_sealed_chunks_total",
            "Chunks sealed with this node's id.",
            &stats.sealed_chunks,
        ),
    ];
    for (name, help, value) in counters {
        crate::node::metrics::counter(out, name, help, value.load(Relaxed));
    }
}

/// A metrics page: the text format, rendered on each scrape.
pub type Page = Arc<dyn Fn() -> String + Send + Sync>;

/// `page` followed by the miner's counters.
pub fn with_miner_page(page: Page, stats: Arc<MinerStats>) -> Page {
    Arc::new(move || {
        let mut text = page();
        render_miner(&stats, &mut text);
        text
    })
}

/// Opens a miner over `shards` and the replica and commit path of
/// `handles` (submitting through `remote` instead, when given), and starts
/// it on its own task.
pub fn spawn(
    settings: MinerSettings,
    data_dir: &Path,
    shards: Arc<dyn ShardStore>,
    (snapshots, commits): (Snapshots, Commits),
    remote: Option<RemoteGateway>,
) -> anyhow::Result<(tokio::task::JoinHandle<()>, Arc<MinerStats>)> {
    let miner = Miner::open(settings, data_dir, shards, snapshots, commits, remote)?;
    let stats = miner.stats();
    tracing::info!(
        cpu_share = settings.cpu_share,
        "mining with the shards this node stores"
    );
    Ok((tokio::spawn(miner.run()), stats))
}

/// A gateway of another member, connected on first use (it may start
/// after this member) and again after a failed turn.
pub struct RemoteGateway {
    /// Its client address.
    pub endpoint: String,
    client: tokio::sync::OnceCell<ordo_client::Client>,
}

impl RemoteGateway {
    /// The gateway at `endpoint`, not connected yet.
    pub fn new(endpoint: String) -> Self {
        Self {
            endpoint,
            client: tokio::sync::OnceCell::new(),
        }
    }
}

/// What replay decided for one of the miner's transactions.
struct Decided {
    committed: bool,
    /// The decision, for people.
    said: String,
}

/// A running miner's parts.
pub struct Miner {
    settings: MinerSettings,
    shards: Arc<dyn ShardStore>,
    sealed: Arc<RocksEngine>,
    snapshots: Snapshots,
    commits: Commits,
    /// Another member's gateway the miner submits through, when this
    /// member runs none (its own commit path refuses commits).
    remote: Option<RemoteGateway>,
    stats: Arc<MinerStats>,
    index: RecallIndex,
    /// Next seq to look for in replay's index.
    next_seq: u64,
    /// The epoch searched, and the next nonce to try in it.
    epoch: Option<(EpochContext, u64)>,
}

impl Miner {
    /// A miner over this node's `shards` and replica, sealing under `data_dir`.
    pub fn open(
        settings: MinerSettings,
        data_dir: &Path,
        shards: Arc<dyn ShardStore>,
        snapshots: Snapshots,
        commits: Commits,
        remote: Option<RemoteGateway>,
    ) -> anyhow::Result<Self> {
        settings.check().map_err(anyhow::Error::msg)?;
        let sealed =
            RocksEngine::open(data_dir.join(SEALED_DIR)).context("opening sealed chunks")?;
        let account = commits.node.address;
        Ok(Self {
            settings,
            shards,
            sealed: Arc::new(sealed),
            snapshots,
            commits,
            remote,
            stats: Arc::new(MinerStats {
                account,
                ..MinerStats::default()
            }),
            index: RecallIndex::new(),
            next_seq: 0,
            epoch: None,
        })
    }

    /// Its counters.
    pub fn stats(&self) -> Arc<MinerStats> {
        self.stats.clone()
    }

    /// Mines until the task is dropped; failures are logged and retried.
    pub async fn run(mut self) {
        let mut registered = false;
        loop {
            let rest = match self.turn(&mut registered).await {
                Ok(rest) => rest,
                Err(error) => {
                    tracing::warn!(%error, "miner: turn failed; retrying");
                    IDLE_WAIT
                }
            };
            tokio::time::sleep(rest).await;
        }
    }

    /// One turn; returns how long to rest after it.
    async fn turn(&mut self, registered: &mut bool) -> anyhow::Result<Duration> {
        let mining = Mining::load(self.snapshots.state.engine().as_ref())?;
        let Some(open) = mining.open else {
            return Ok(IDLE_WAIT);
        };
        if !*registered {
            *registered = self.register().await?;
        }
        // Sealing counts toward the share too.
        let started = Instant::now();
        self.index_and_seal().await?;
        let Some(epoch) =
            ordo_txn::mining::epoch_row(self.snapshots.state.engine().as_ref(), open.epoch)?
        else {
            return Ok(IDLE_WAIT);
        };
        let epoch = EpochContext {
            target: open.target,
            ..epoch
        };
        let proofs = self.search_round(epoch).await?;
        let busy = started.elapsed();
        let rest = rest_after(busy, self.settings.cpu_share);
        let rate = ATTEMPTS_PER_ROUND as f64 / (busy + rest).as_secs_f64().max(1e-9);
        self.stats.rate_milli.store((rate * 1000.0) as u64, Relaxed);
        self.submit_all(proofs).await?;
        Ok(rest)
    }

    /// Registers the node's account with its beneficiary unless the ledger
    /// already says so; whether it is registered now.
    async fn register(&self) -> anyhow::Result<bool> {
        let me = self.commits.node.address;
        let key = [MINER_PREFIX, me.as_slice()].concat();
        let at = self.snapshots.position().version;
        let row =
            self.snapshots
                .state
                .get(Column::Data, &ordo_txn::attest::SYSTEM_STREAM, &key, at)?;
        if row.and_then(|r| r.value).as_deref() == Some(&self.settings.beneficiary[..]) {
            return Ok(true);
        }
        let op = MiningOp::RegisterMiner {
            beneficiary: self.settings.beneficiary,
        };
        let decided = self.commit(op).await?;
        tracing::info!(decided = %decided.said, "miner: registering");
        Ok(decided.committed)
    }

    /// Indexes the entries replay indexed since the last turn and seals the
    /// shards of them this node stores.
    async fn index_and_seal(&mut self) -> anyhow::Result<()> {
        let engine = self.snapshots.state.engine().clone();
        let rows = ordo_txn::mining::entry_rows(engine.as_ref(), self.next_seq, ENTRIES_PER_TURN)?;
        for row in rows {
            let indexed = self.index.push(row.seq, row.commitment, row.geometry);
            anyhow::ensure!(
                indexed.map(|e| e.first_chunk) == Some(row.first_chunk),
                "the miner's recall index disagrees with replay's at entry {}",
                row.seq
            );
            let (shards, sealed, stats) =
                (self.shards.clone(), self.sealed.clone(), self.stats.clone());
            let me = self.commits.node.address;
            tokio::task::spawn_blocking(move || {
                seal_entry(&me, &row, shards.as_ref(), &sealed, &stats)
            })
            .await??;
            self.next_seq = row.seq + 1;
        }
        Ok(())
    }

    /// One round of attempts in `epoch` on a blocking thread.
    async fn search_round(&mut self, epoch: EpochContext) -> anyhow::Result<Vec<MiningProof>> {
        let first = match self.epoch {
            Some((current, next)) if current == epoch => next,
            _ => 0,
        };
        let nonces = first..first + ATTEMPTS_PER_ROUND;
        self.epoch = Some((epoch, nonces.end));
        let (index, shards, sealed) =
            (self.index.clone(), self.shards.clone(), self.sealed.clone());
        let me = self.commits.node.address;
        let found = tokio::task::spawn_blocking(move || {
            let holdings = Holdings {
                sealed: |entry: &MinedEntry, shard: u16, chunk: u64| {
                    let key = sealed_key(&entry.commitment, shard, chunk);
                    sealed
                        .get(Column::Data, &key)
                        .ok()
                        .flatten()
                        .map(Cow::Owned)
                },
                path: |entry: &MinedEntry, shard: u16, chunk: u64| {
                    let shard = shards.get(&entry.commitment, shard).ok()??;
                    let run =
                        ordo_log::prove_chunk_in_shard(&entry.geometry, &shard, chunk).ok()?;
                    Some(run.siblings)
                },
            };
            search(&me, &epoch, &index, nonces, holdings)
        })
        .await?;
        self.stats.attempts.fetch_add(found.attempts, Relaxed);
        self.stats.held.fetch_add(found.held, Relaxed);
        self.stats
            .hits
            .fetch_add(found.proofs.len() as u64, Relaxed);
        Ok(found.proofs)
    }

    /// Submits a round's proofs all at once, so that they share entries:
    /// only those whose epoch replay still accepts, and no more than the
    /// open epoch's cap leaves room for. Counts what replay decided.
    async fn submit_all(&self, mut proofs: Vec<MiningProof>) -> anyhow::Result<()> {
        let mining = Mining::load(self.snapshots.state.engine().as_ref())?;
        let (Some(params), Some(open)) = (mining.params, mining.open) else {
            return Ok(());
        };
        proofs.retain(|p| p.epoch + PROOF_WINDOW_EPOCHS >= open.epoch);
        proofs.truncate(params.proof_cap().saturating_sub(open.accepted) as usize);
        let via = self.via().await?;
        let mut sent = tokio::task::JoinSet::new();
        for proof in proofs {
            let (epoch, nonce) = (proof.epoch, proof.nonce);
            let op = MiningOp::SubmitProof {
                proof: proof.encode(),
            };
            let tx = self.transaction(op);
            let (via, key) = (via.clone(), self.commits.node.key.clone());
            sent.spawn(async move { (epoch, nonce, via.commit(tx, &key).await) });
        }
        while let Some(done) = sent.join_next().await {
            let (epoch, nonce, decided) = done?;
            let decided = decided?;
            let counter = match decided.committed {
                true => &self.stats.accepted,
                false => &self.stats.refused,
            };
            counter.fetch_add(1, Relaxed);
            tracing::debug!(epoch, nonce, decided = %decided.said, "miner: proof decided");
        }
        Ok(())
    }

    /// Commits one mining operation signed by the node key.
    async fn commit(&self, op: MiningOp) -> anyhow::Result<Decided> {
        let tx = self.transaction(op);
        self.via().await?.commit(tx, &self.commits.node.key).await
    }

    /// A transaction of `op` alone, read at the applied version.
    fn transaction(&self, op: MiningOp) -> ordo_txn::Transaction {
        let at = self.snapshots.position().version;
        ordo_txn::Transaction {
            acl: vec![AclOp::Mining(op)],
            ..ordo_txn::Transaction::new(ordo_client::txn::fresh_id(), at)
        }
    }

    /// Where the miner's transactions go: another member's gateway
    /// (connected on first use), else this node's own commit path.
    async fn via(&self) -> anyhow::Result<Via> {
        match &self.remote {
            None => Ok(Via::Local(self.commits.clone())),
            Some(remote) => {
                let connect = || ordo_client::Client::connect(&remote.endpoint);
                let client = remote.client.get_or_try_init(connect).await?;
                Ok(Via::Remote(client.clone()))
            }
        }
    }
}

/// Where a miner's transactions go.
#[derive(Clone)]
enum Via {
    /// This node's own commit path.
    Local(Commits),
    /// Another member's gateway.
    Remote(ordo_client::Client),
}

impl Via {
    /// Signs `tx` with `key`, commits it, and says what replay decided.
    async fn commit(
        self,
        tx: ordo_txn::Transaction,
        key: &ordo_txn::SigningKey,
    ) -> anyhow::Result<Decided> {
        match self {
            Via::Remote(gateway) => {
                let response = gateway.commit(tx, key).await?;
                Ok(Decided {
                    committed: response.outcome == "committed",
                    said: response.message,
                })
            }
            Via::Local(commits) => {
                let outcome = commits.commit_signed(tx, key).await?.outcome;
                Ok(Decided {
                    committed: outcome.is_committed(),
                    said: outcome.to_string(),
                })
            }
        }
    }
}

/// How long to rest after `busy` of search so that the search takes
/// `share` of one core: busy / (busy + rest) = share.
fn rest_after(busy: Duration, share: f64) -> Duration {
    busy.mul_f64((1.0 - share) / share)
}

/// Seals every chunk of every shard of `entry` this node stores and has not
/// sealed yet.
fn seal_entry(
    miner: &Address,
    entry: &MinedEntry,
    shards: &dyn ShardStore,
    sealed: &RocksEngine,
    stats: &MinerStats,
) -> anyhow::Result<()> {
    for index in shards.list(&entry.commitment)? {
        if sealed
            .get(Column::Data, &sealed_key(&entry.commitment, index, 0))?
            .is_some()
        {
            continue;
        }
        let Some(shard) = shards.get(&entry.commitment, index)? else {
            continue;
        };
        let mut batch = WriteBatch::default();
        let size = entry.geometry.chunk_size as usize;
        for (chunk, bytes) in shard.bytes.chunks(size).enumerate() {
            let place = SealPlace {
                miner: *miner,
                commitment: entry.commitment,
                shard: index,
                chunk: chunk as u64,
            };
            let key = sealed_key(&entry.commitment, index, chunk as u64);
            batch.put(Column::Data, key, seal(&place, bytes));
        }
        let chunks = batch.ops.len() as u64;
        sealed.write(batch, false)?;
        stats.sealed_chunks.fetch_add(chunks, Relaxed);
    }
    Ok(())
}

/// Where a sealed chunk is kept: commitment, shard, chunk.
fn sealed_key(commitment: &Hash, shard: u16, chunk: u64) -> Vec<u8> {
    [
        commitment.as_slice(),
        &shard.to_be_bytes(),
        &chunk.to_be_bytes(),
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rest_after_a_round_keeps_the_search_to_its_share_of_a_core() {
        let busy = Duration::from_millis(10);
        for share in [MIN_CPU_SHARE, 0.25, 0.5, DEFAULT_CPU_SHARE, MAX_CPU_SHARE] {
            let rest = rest_after(busy, share);
            let taken = busy.as_secs_f64() / (busy + rest).as_secs_f64();
            assert!((taken - share).abs() < 1e-6, "{share}: {taken}");
        }
        assert_eq!(rest_after(busy, 1.0), Duration::ZERO);
    }

    #[test]
    fn a_share_outside_its_bounds_is_refused() {
        let settings = |cpu_share| MinerSettings {
            beneficiary: [1; 20],
            cpu_share,
        };
        assert!(settings(DEFAULT_CPU_SHARE).check().is_ok());
        for bad in [0.0, 0.001, 1.01, f64::NAN] {
            assert!(settings(bad).check().is_err(), "{bad}");
        }
    }
}
