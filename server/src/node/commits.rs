//! Commits: server-side batching and the wait for the log's decision.
//!
//! A commit is checked at ingress (decodes, within limits, signed by its
//! sender), then queued. One batcher, on a thread of its own (see
//! [`crate::node::own_thread`]), packs whatever is queued into a
//! single log entry, up to [`MAX_BATCH_TXNS`] transactions and
//! [`MAX_BATCH_BYTES`], and appends it; commits that arrive while an append
//! is in flight form the next batch, so batches grow with load and a lone
//! commit waits for no timer. The caller then waits until the replica has
//! applied the entry and reports the transaction's outcome. The server
//! never retries: a conflict goes back to the client, which owns the retry.

pub use crate::node::gather::{DEFAULT_GATHER_WAIT, MAX_GATHER_WAIT};
use crate::node::gather::{Gatherer, Pulled};
use crate::node::own_entries::OwnEntries;
use crate::node::own_thread::OwnThread;
use crate::node::replica::AppliedEntry;
use crate::node::verified::VerifiedSignatures;
use ordo_log::EntryWriter;
use ordo_txn::attest::CanonicalItem;
use ordo_txn::{Address, Outcome, SigningKey, TxnId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Most commits queued for the batcher; beyond it commits are refused
/// (RESOURCE_EXHAUSTED) rather than queued without bound.
pub const MAX_QUEUED_COMMITS: usize = 16_384;

/// Most transactions in one log entry.
pub const MAX_BATCH_TXNS: usize = ordo_txn::limits::MAX_BATCH_TXNS;

/// Most encoded transaction bytes in one log entry.
pub const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// Longest a commit waits for its decision once queued. Past it the caller
/// gets DEADLINE_EXCEEDED; the transaction may still be decided, and
/// resubmitting it (same id) returns its outcome without applying it twice.
pub const COMMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Most entries a gateway may be told to keep in flight at once on a
/// cluster's log (`appends_in_flight`). An entry there waits on two
/// network round trips (shards to the write quorum, then the header to the
/// sequencer), during which a batcher that appends one entry at a time
/// leaves storage members and voters on other machines idle. On one
/// machine the opposite holds: every member syncs the same disk, and more
/// entries in flight mean more, smaller syncs (a release run at 16
/// clients: 513 puts/s with one in flight, 332 with eight; docs/BENCHMARKS.md),
/// so the default is one. On a local log one append at a time is the
/// group commit, whatever is asked.
pub const MAX_APPENDS_IN_FLIGHT: usize = 64;

/// Longest a batcher may be told to linger for more commits.
pub const MAX_BATCH_LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// How the batcher packs commits into entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most transactions per entry (at most [`MAX_BATCH_TXNS`]).
    pub max_transactions: usize,
    /// Most encoded transaction bytes per entry (at most the log's payload limit).
    pub max_bytes: usize,
    /// After the first commit of a batch, how long to wait for more (zero:
    /// append at once; commits arriving during an append form the next batch
    /// anyway).
    pub linger: std::time::Duration,
    /// On a local log with no linger, the longest a batch waits for the
    /// commits recent batches suggest are coming (zero: never; at most
    /// [`MAX_GATHER_WAIT`]; see [`crate::node::gather`]).
    pub gather: std::time::Duration,
    /// Entries in flight at once on a cluster's log (1..=[`MAX_APPENDS_IN_FLIGHT`]);
    /// a local log appends one at a time.
    pub appends_in_flight: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            max_transactions: MAX_BATCH_TXNS,
            max_bytes: MAX_BATCH_BYTES,
            linger: std::time::Duration::ZERO,
            gather: DEFAULT_GATHER_WAIT,
            appends_in_flight: 1,
        }
    }
}

impl BatchLimits {
    /// Checks the limits against the hard maxima.
    pub fn check(&self) -> Result<(), String> {
        let max_payload = ordo_log::limits::MAX_PAYLOAD_BYTES as usize - 1024;
        if !(1..=MAX_BATCH_TXNS).contains(&self.max_transactions) {
            return Err(format!(
                "batch_max_transactions must be 1..={MAX_BATCH_TXNS}, not {}",
                self.max_transactions
            ));
        }
        if !(1..=max_payload).contains(&self.max_bytes) {
            return Err(format!(
                "batch_max_bytes must be 1..={max_payload}, not {}",
                self.max_bytes
            ));
        }
        if !(1..=MAX_APPENDS_IN_FLIGHT).contains(&self.appends_in_flight) {
            return Err(format!(
                "appends_in_flight must be 1..={MAX_APPENDS_IN_FLIGHT}, not {}",
                self.appends_in_flight
            ));
        }
        if self.gather > MAX_GATHER_WAIT {
            return Err(format!(
                "batch_gather_us must be at most {}",
                MAX_GATHER_WAIT.as_micros()
            ));
        }
        if self.linger > MAX_BATCH_LINGER {
            return Err(format!(
                "batch_linger_ms must be at most {}",
                MAX_BATCH_LINGER.as_millis()
            ));
        }
        Ok(())
    }
}

/// What the log decided for a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    /// The entry that carried it.
    pub seq: u64,
    /// The decision.
    pub outcome: Outcome,
}

/// Why a commit got no decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    /// The queue is full.
    #[error("too many commits queued ({MAX_QUEUED_COMMITS}); retry later")]
    Overloaded,
    /// The entry could not be appended; the transaction was not ordered.
    #[error("appending to the log failed: {0}")]
    Append(String),
    /// The node is stopping.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// This member is a read replica: it takes no commits.
    #[error(
        "this member is a read replica and takes no commits; send them to a member with the gateway role"
    )]
    ReadOnly,
    /// The log is ordered by a chain, and this node's account is neither a
    /// gateway nor an admin of it: replay would pass over its entries.
    #[error(
        "this node (0x{}) may not write its log: on a log a chain orders, replicas read only entries a gateway or an admin of the log submitted; ask the log's admin to grant this node the gateway role",
        ordo_txn::ids::hex(node)
    )]
    NotAWriter {
        /// The node's account.
        node: Address,
    },
    /// The state could not be read to tell whether this node may write.
    #[error("reading whether this node may write its log: {0}")]
    State(String),
    /// No decision within [`COMMIT_TIMEOUT`].
    #[error(
        "no decision within {COMMIT_TIMEOUT:?}; resubmit the same transaction to learn its outcome"
    )]
    TimedOut,
}

type TxKey = (Address, TxnId);

/// Commits waiting for their decision, by (sender, id).
#[derive(Debug, Default)]
pub struct Waiters {
    waiting: Mutex<HashMap<TxKey, Vec<oneshot::Sender<Decided>>>>,
}

impl Waiters {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TxKey, Vec<oneshot::Sender<Decided>>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn register(&self, key: TxKey) -> oneshot::Receiver<Decided> {
        let (send, receive) = oneshot::channel();
        self.lock().entry(key).or_default().push(send);
        receive
    }

    fn forget(&self, key: &TxKey) {
        self.lock().remove(key);
    }

    /// Hands an applied entry's outcomes to the commits waiting for them.
    pub fn deliver(&self, entry: &AppliedEntry<'_>) {
        let mut waiting = self.lock();
        if waiting.is_empty() {
            return;
        }
        for (id, outcome) in entry.ids.iter().zip(entry.outcomes) {
            let Some(senders) = id.as_ref().and_then(|key| waiting.remove(key)) else {
                continue;
            };
            for sender in senders {
                let _ = sender.send(Decided {
                    seq: entry.seq,
                    outcome: outcome.clone(),
                });
            }
        }
    }
}

struct Pending {
    item: CanonicalItem,
    failed: oneshot::Sender<CommitError>,
}

/// A commit of a batch being appended, as the batcher tells it that the
/// append failed.
struct Waiting {
    key: TxKey,
    failed: oneshot::Sender<CommitError>,
}

/// What the batcher leaves for the node's replica beside each entry it
/// attests: the entry's signature (so replay need not recover it) and the
/// entry decoded (so replay need not decode it).
#[derive(Debug, Clone, Default)]
pub struct ForReplica {
    /// Signatures the batcher made.
    pub made: Arc<VerifiedSignatures>,
    /// Entries the batcher attested, decoded.
    pub own: Arc<OwnEntries>,
}

/// Work that shares the batcher's thread: on a local log, the replica's
/// follower (see [`Committer::start`]).
pub type Companion = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// The commit path of a node: queue, batcher, waiters.
#[derive(Debug, Clone)]
pub struct Committer {
    /// `None` on a read replica, which refuses every commit.
    queue: Option<mpsc::Sender<Pending>>,
    waiters: Arc<Waiters>,
    /// On a log a chain orders: whether this node may write it.
    writers: Option<Arc<WriterCheck>>,
}

/// Whether a node may write a log a chain orders, asked before each commit:
/// replay passes over entries whose chain-authenticated submitter is
/// neither a gateway nor an admin of the log
/// (`ordo_txn::attest::Ordering::Chain`), so such a node refuses commits
/// at once instead of appending entries no replica reads, whose commits
/// would only time out. (A role revoked between this check and the entry's
/// position still leaves that entry unread: its commits time out.)
pub struct WriterCheck {
    /// The replicated state.
    pub state: ordo_kv::MvccStore<Arc<ordo_kv::RocksEngine>>,
    /// How far the replica has applied the log.
    pub applied: tokio::sync::watch::Receiver<ordo_txn::Applied>,
    /// The node's account, the submitter the chain records.
    pub node: Address,
}

impl std::fmt::Debug for WriterCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterCheck")
            .field("node", &ordo_txn::ids::hex(&self.node))
            .finish_non_exhaustive()
    }
}

impl WriterCheck {
    /// Refuses unless the node is a gateway or an admin of the log as of
    /// the state applied so far.
    fn check(&self) -> Result<(), CommitError> {
        use ordo_txn::attest::SYSTEM_STREAM;
        let version = self.applied.borrow().version;
        let holds = |fact| {
            ordo_txn::replay::fact_holds(&self.state, &SYSTEM_STREAM, &fact, version)
                .map_err(|e| CommitError::State(e.to_string()))
        };
        let node = self.node;
        match holds(ordo_txn::Fact::Gateway(node))? || holds(ordo_txn::Fact::Admin(node))? {
            true => Ok(()),
            false => Err(CommitError::NotAWriter { node }),
        }
    }
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("bytes", &self.item.encoded_len())
            .finish_non_exhaustive()
    }
}

/// How a gateway vouches for the senders of the unsigned (session)
/// transactions in its entries, which follows from what orders the log
/// (`ordo_txn::attest::Ordering`).
#[derive(Clone)]
pub enum Vouch {
    /// By signing each such entry with the node's key (an attested entry):
    /// on a log its members order, a header's submitter proves nothing.
    Signature(SigningKey),
    /// By submitting the entry: on a log a chain orders, the chain
    /// authenticates the node's account as the header's submitter, so the
    /// entry needs no signature of its own.
    Submission,
}

impl std::fmt::Debug for Vouch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.write_str(match self {
            Vouch::Signature(_) => "Vouch::Signature",
            Vouch::Submission => "Vouch::Submission",
        })
    }
}

impl Committer {
    /// Starts the batcher, appending through `writer`; entries holding
    /// unsigned (session) transactions are vouched for as `vouch` says.
    /// Outcomes arrive through `waiters`, which the replica feeds.
    ///
    /// A `companion` runs on the batcher's thread as a task beside it, and
    /// the batcher lets it run after each append. On a local log the
    /// follower belongs there: the append's end wakes it on the same
    /// thread, so it applies the entry at once, where a follower on the
    /// node's runtime was woken 90-150 µs after the append, on two cores
    /// busy with serving (docs/BENCHMARKS.md, "The follower beside the
    /// batcher"). The batcher's next entry then gathers what arrived while
    /// the last one was applied.
    pub fn start(
        writer: EntryWriter,
        vouch: Vouch,
        limits: BatchLimits,
        waiters: Arc<Waiters>,
        metrics: Arc<crate::node::metrics::Metrics>,
        for_replica: ForReplica,
        companion: Option<Companion>,
    ) -> std::io::Result<(Self, OwnThread)> {
        let (queue, receiver) = mpsc::channel(MAX_QUEUED_COMMITS);
        let presigns = match &vouch {
            Vouch::Signature(key) => Some(crate::node::presigns::Presigns::start(key.clone())?),
            Vouch::Submission => None,
        };
        let appender = Appender {
            writer,
            vouch,
            presigns,
            made: for_replica.made,
            own: for_replica.own,
            waiters: waiters.clone(),
        };
        let yields = companion.is_some();
        let batching = async move {
            if let Some(companion) = companion {
                // On this thread's runtime: dropped with it when the batcher ends.
                tokio::spawn(companion);
            }
            run_batcher(appender, limits, receiver, metrics, yields).await;
        };
        let batcher = OwnThread::spawn("ordo-batcher", batching)?;
        let queue = Some(queue);
        let writers = None;
        Ok((
            Self {
                queue,
                waiters,
                writers,
            },
            batcher,
        ))
    }

    /// This commit path, refusing every commit while `check` says the node
    /// may not write its log (a log a chain orders).
    pub fn checking_writers(self, check: WriterCheck) -> Self {
        Self {
            writers: Some(Arc::new(check)),
            ..self
        }
    }

    /// The commit path of a read replica: every commit is refused with
    /// [`CommitError::ReadOnly`], before anything is queued.
    pub fn refusing() -> Self {
        Self {
            queue: None,
            waiters: Arc::default(),
            writers: None,
        }
    }

    /// Queues a checked transaction (signed by its sender, or unsigned from
    /// a session this node authenticated) and waits for the log's decision.
    /// Its encoding's length counts against [`BatchLimits::max_bytes`].
    pub async fn commit(&self, item: CanonicalItem) -> Result<Decided, CommitError> {
        let Some(queue) = &self.queue else {
            return Err(CommitError::ReadOnly);
        };
        if let Some(writers) = &self.writers {
            writers.check()?;
        }
        let key = (item.item().tx().sender, item.item().tx().id);
        // Registered before queueing, so a decision can never arrive first.
        let decided = self.waiters.register(key);
        let (failed_send, failed) = oneshot::channel();
        let pending = Pending {
            item,
            failed: failed_send,
        };
        if let Err(e) = queue.try_send(pending) {
            self.waiters.forget(&key);
            return Err(match e {
                mpsc::error::TrySendError::Full(_) => CommitError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => CommitError::ShuttingDown,
            });
        }
        let wait = async {
            let (mut decided, mut failed) = (decided, failed);
            tokio::select! {
                biased;
                result = &mut decided => return match result {
                    Ok(decided) => Ok(decided),
                    // Forgotten: the append failed (its reason comes next,
                    // if it has not come already) or the node is stopping.
                    Err(_) => Err(failed.await.unwrap_or(CommitError::ShuttingDown)),
                },
                failure = &mut failed => {
                    // An error means the append failed; a dropped sender means
                    // the entry is in the log and only the decision is left.
                    if let Ok(error) = failure {
                        return Err(error);
                    }
                }
            }
            decided.await.map_err(|_| CommitError::ShuttingDown)
        };
        let outcome = tokio::time::timeout(COMMIT_TIMEOUT, wait).await;
        if outcome.is_err() {
            self.waiters.forget(&key);
        }
        outcome.unwrap_or(Err(CommitError::TimedOut))
    }
}

/// What appends a batch: the log's writer, the key that attests entries
/// (and where the signatures and entries it makes are left for the
/// replica), and the waiters to release when an append fails.
struct Appender {
    writer: EntryWriter,
    vouch: Vouch,
    /// Nonces prepared ahead for `vouch`'s signatures (`None` when the node
    /// signs no entries).
    presigns: Option<crate::node::presigns::Presigns>,
    made: Arc<VerifiedSignatures>,
    own: Arc<OwnEntries>,
    waiters: Arc<Waiters>,
}

async fn run_batcher(
    appender: Appender,
    limits: BatchLimits,
    mut queue: mpsc::Receiver<Pending>,
    metrics: Arc<crate::node::metrics::Metrics>,
    yields: bool,
) {
    let appends = match appender.writer.is_spread() {
        true => limits.appends_in_flight,
        false => 1,
    };
    let in_flight = Arc::new(tokio::sync::Semaphore::new(appends));
    let appender = Arc::new(appender);
    let mut carried: Option<Pending> = None;
    // Gathering waits on the batcher's thread, which only a local log
    // leaves free (a cluster's appends run as tasks on it); an explicit
    // linger replaces it.
    let gather = match appender.writer.is_spread() || !limits.linger.is_zero() {
        true => std::time::Duration::ZERO,
        false => limits.gather,
    };
    let mut gatherer = Gatherer::new(gather);
    gatherer.tune_this_thread();
    loop {
        // The permit first: commits that queue while every append is in
        // flight join the next batch, so batches grow with the load.
        let permit = match appends {
            1 => None,
            _ => match in_flight.clone().acquire_owned().await {
                Ok(permit) => Some(permit),
                Err(_) => return,
            },
        };
        let Some(batch) = next_batch(&mut queue, &mut carried, &limits, &mut gatherer).await else {
            return;
        };
        metrics.record_batch(batch.len());
        let Some(permit) = permit else {
            let appended = appender.append(batch).await;
            if yields {
                // The companion (the follower) was woken by the append:
                // it applies the entry before the next batch is gathered.
                tokio::task::yield_now().await;
            }
            // Told only now that their entry is in the log: by then the
            // follower has answered them, and a commit whose thread is
            // woken for that news and again for its answer pays two
            // cross-core wake-ups per put instead of one.
            drop(appended);
            continue;
        };
        let appender = appender.clone();
        tokio::spawn(async move {
            drop(appender.append(batch).await);
            drop(permit);
        });
    }
}

/// The next batch: the commit carried over from the last one (or the next
/// to arrive), then whatever is queued, up to the limits, then what the
/// gatherer waits for; `None` once the queue is closed.
async fn next_batch(
    queue: &mut mpsc::Receiver<Pending>,
    carried: &mut Option<Pending>,
    limits: &BatchLimits,
    gatherer: &mut Gatherer,
) -> Option<Vec<Pending>> {
    let first = match carried.take() {
        Some(pending) => pending,
        None => queue.recv().await?,
    };
    let mut bytes = first.item.encoded_len();
    let mut batch = vec![first];
    let deadline = tokio::time::Instant::now() + limits.linger;
    loop {
        match pull_into(&mut batch, &mut bytes, queue, carried, limits) {
            Pulled::Took => continue,
            Pulled::Full => return Some(batch),
            Pulled::Empty if limits.linger.is_zero() => break,
            Pulled::Empty => match tokio::time::timeout_at(deadline, queue.recv()).await {
                Ok(Some(next)) => *carried = Some(next),
                Ok(None) | Err(_) => return Some(batch),
            },
        }
    }
    gatherer.gather(&mut batch, |batch| {
        pull_into(batch, &mut bytes, queue, carried, limits)
    });
    Some(batch)
}

/// Moves the carried commit, else the next queued one, into `batch`
/// (whose transactions' encoded bytes are `bytes`) unless the limits say
/// it is full (a commit that does not fit is carried to the next batch).
fn pull_into(
    batch: &mut Vec<Pending>,
    bytes: &mut usize,
    queue: &mut mpsc::Receiver<Pending>,
    carried: &mut Option<Pending>,
    limits: &BatchLimits,
) -> Pulled {
    if batch.len() >= limits.max_transactions {
        return Pulled::Full;
    }
    let next = match carried.take() {
        Some(next) => next,
        None => match queue.try_recv() {
            Ok(next) => next,
            Err(_) => return Pulled::Empty,
        },
    };
    if *bytes + next.item.encoded_len() > limits.max_bytes {
        *carried = Some(next);
        return Pulled::Full;
    }
    *bytes += next.item.encoded_len();
    batch.push(next);
    Pulled::Took
}

impl Appender {
    /// Appends one batch. On success the callers wait for the replica; on
    /// failure each is told, and nothing of the batch was ordered.
    /// Returns the commits of an appended entry: dropping them tells each
    /// that its entry is in the log.
    async fn append(&self, batch: Vec<Pending>) -> Vec<Waiting> {
        let tags = tags_of(&batch);
        let (items, waiting): (Vec<CanonicalItem>, Vec<Waiting>) = batch
            .into_iter()
            .map(|pending| {
                let tx = pending.item.item().tx();
                let key = (tx.sender, tx.id);
                let failed = pending.failed;
                (pending.item, Waiting { key, failed })
            })
            .unzip();
        let payload = match self.payload(items) {
            Ok(payload) => payload,
            Err(error) => {
                self.fail(waiting, &error);
                return Vec::new();
            }
        };
        // The batcher owns its thread, so on a local log it codes and syncs
        // the entry here: a queued append would wake the log's writer
        // thread and then be woken by it, two wake-ups on every commit
        // cycle. A cluster's log is reached over the network instead.
        let appended = self.writer.append_on_own_thread(payload, tags, [0; 20]);
        match appended.await {
            Ok(_) => waiting,
            Err(error) => {
                self.fail(waiting, &error.to_string());
                Vec::new()
            }
        }
    }

    /// The entry's payload: a plain batch when every transaction is signed,
    /// else an attested entry signed once with the node's key.
    fn payload(&self, items: Vec<CanonicalItem>) -> Result<Vec<u8>, String> {
        let all_signed = items.iter().all(|item| item.signed().is_some());
        match &self.vouch {
            _ if all_signed => Ok(ordo_txn::encode_encoded_batch(
                items.iter().map(CanonicalItem::bytes),
            )),
            Vouch::Submission => Ok(ordo_txn::attest::encode_submitted_canonical(&items)),
            Vouch::Signature(gateway) => Ok(self.attest(items, gateway)?),
        }
    }

    /// An attested entry of `items`, signed with a prepared nonce if one is
    /// ready; its signature and decoded form are left for the replica.
    fn attest(&self, items: Vec<CanonicalItem>, gateway: &SigningKey) -> Result<Vec<u8>, String> {
        let prepared = self.presigns.as_ref().and_then(|p| p.take());
        let sign = |hash| match prepared {
            Some(nonce) => nonce.sign(hash, gateway),
            None => ordo_txn::sign::sign_hash(hash, gateway),
        };
        let (attested, decoded) = ordo_txn::attest::attest_canonical(items, sign)
            .map_err(|e| format!("attesting the entry: {e}"))?;
        let address = ordo_txn::address_of(gateway);
        self.made
            .remember_signature(attested.signature, attested.hash, address);
        self.own.remember(&attested.payload, decoded);
        Ok(attested.payload)
    }

    fn fail(&self, waiting: Vec<Waiting>, error: &str) {
        tracing::error!(%error, transactions = waiting.len(), "appending a batch failed");
        for commit in waiting {
            self.waiters.forget(&commit.key);
            let _ = commit.failed.send(CommitError::Append(error.to_string()));
        }
    }
}

/// The entry's tags: every stream its transactions write, or none when
/// there are more than a header may carry.
fn tags_of(batch: &[Pending]) -> Vec<[u8; 32]> {
    let mut tags: Vec<[u8; 32]> = batch
        .iter()
        .flat_map(|p| p.item.item().tx().writes.iter().map(|w| w.stream))
        .collect();
    tags.sort_unstable();
    tags.dedup();
    if tags.len() > ordo_log::limits::MAX_TAGS {
        tags.clear();
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_txn::Transaction;
    use ordo_txn::attest::Item;

    #[test]
    fn decisions_reach_every_waiter_of_their_id_and_no_other() {
        let waiters = Waiters::default();
        let (a, b) = (([1; 20], [1; 16]), ([2; 20], [2; 16]));
        let mut first = waiters.register(a);
        let mut second = waiters.register(a);
        let mut other = waiters.register(b);
        let outcomes = [Outcome::Committed { version: 7 }];
        waiters.deliver(&AppliedEntry {
            seq: 3,
            applied: ordo_txn::Applied::default(),
            ids: &[Some(a)],
            outcomes: &outcomes,
        });
        let want = Decided {
            seq: 3,
            outcome: Outcome::Committed { version: 7 },
        };
        assert_eq!(first.try_recv().unwrap(), want);
        assert_eq!(second.try_recv().unwrap(), want);
        assert!(other.try_recv().is_err(), "b was not in the entry");
        waiters.forget(&b);
        assert!(matches!(
            other.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ));
    }

    /// A committer over a RocksDB log whose next write fails.
    fn committer_over_a_failing_log(dir: &std::path::Path) -> (Committer, OwnThread) {
        let fault = Arc::new(ordo_log::WriteFault::default());
        let options = ordo_log::RocksLogOptions {
            write_fault: Some(fault.clone()),
            ..ordo_log::RocksLogOptions::default()
        };
        let log = Arc::new(ordo_log::RocksLog::open(dir, options).expect("opens"));
        let writer = EntryWriter::joint(log, ordo_log::CodingParams::default()).expect("writer");
        fault.arm();
        let key = ordo_txn::testkit::signing_key(9);
        Committer::start(
            writer,
            Vouch::Signature(key),
            BatchLimits::default(),
            Arc::default(),
            Arc::default(),
            ForReplica::default(),
            None,
        )
        .expect("the batcher starts")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_append_reaches_every_commit_it_carried_and_every_later_one() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (committer, batcher) = committer_over_a_failing_log(dir.path());
        let sender = ordo_txn::address_of(&ordo_txn::testkit::signing_key(1));
        let mut commits = tokio::task::JoinSet::new();
        for n in 0..16 {
            let tx = Transaction {
                sender,
                ..ordo_txn::testkit::blank(ordo_txn::testkit::txn_id(n), 0)
            };
            let committer = committer.clone();
            let item = CanonicalItem::new(Item::Attested(tx)).expect("encodes");
            commits.spawn(async move { committer.commit(item).await });
        }
        while let Some(result) = commits.join_next().await {
            let result = result.expect("commit task");
            assert!(
                matches!(result, Err(CommitError::Append(_))),
                "the first write failed and poisoned the log: {result:?}"
            );
        }
        drop(committer);
        let ended = tokio::task::spawn_blocking(move || batcher.join());
        ended
            .await
            .expect("the batcher ends once its queue closes")
            .expect("without a panic");
    }

    /// A companion that reports, from its thread, each new log tail it sees.
    fn tail_watcher(
        sequencer: Arc<dyn ordo_log::Sequencer>,
        seen: mpsc::UnboundedSender<(Option<String>, u64)>,
    ) -> Companion {
        Box::pin(async move {
            let mut next = 0;
            while let Ok(tail) = sequencer.wait_beyond(next).await {
                let thread = std::thread::current().name().map(str::to_owned);
                if seen.send((thread, tail)).is_err() {
                    return;
                }
                next = tail;
            }
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_companion_runs_on_the_batchers_thread_after_every_append() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let options = ordo_log::RocksLogOptions::default();
        let log = Arc::new(ordo_log::RocksLog::open(dir.path(), options).expect("opens"));
        let writer =
            EntryWriter::joint(log.clone(), ordo_log::CodingParams::default()).expect("writer");
        let (seen_send, mut seen) = mpsc::unbounded_channel();
        let one_per_entry = BatchLimits {
            max_transactions: 1,
            ..BatchLimits::default()
        };
        let (committer, batcher) = Committer::start(
            writer,
            Vouch::Signature(ordo_txn::testkit::signing_key(9)),
            one_per_entry,
            Arc::default(),
            Arc::default(),
            ForReplica::default(),
            Some(tail_watcher(log, seen_send)),
        )
        .expect("the batcher starts");
        // Queued at once, faster than entries are synced: the batcher
        // always has the next one waiting, and must still let its
        // companion see each entry before it appends the next.
        const COMMITS: u64 = 24;
        let sender = ordo_txn::address_of(&ordo_txn::testkit::signing_key(1));
        let mut commits = tokio::task::JoinSet::new();
        for n in 0..COMMITS {
            let tx = Transaction {
                sender,
                ..ordo_txn::testkit::blank(ordo_txn::testkit::txn_id(n), 0)
            };
            let item = CanonicalItem::new(Item::Attested(tx)).expect("encodes");
            let committer = committer.clone();
            commits.spawn(async move { committer.commit(item).await });
        }
        for expected in 1..=COMMITS {
            let (thread, tail) = seen.recv().await.expect("the companion runs");
            assert_eq!(thread.as_deref(), Some("ordo-batcher"));
            assert_eq!(tail, expected, "the companion saw every entry on its own");
        }
        // Nothing applies these entries, so no commit is decided.
        commits.abort_all();
        drop(committer);
        tokio::task::spawn_blocking(move || batcher.stop())
            .await
            .expect("the batcher stops");
    }

    #[test]
    fn batch_limits_are_checked() {
        assert!(BatchLimits::default().check().is_ok());
        let zero = BatchLimits {
            max_transactions: 0,
            ..BatchLimits::default()
        };
        assert!(zero.check().is_err());
        let slow = BatchLimits {
            linger: MAX_BATCH_LINGER * 2,
            ..BatchLimits::default()
        };
        assert!(slow.check().is_err());
        let flooding = BatchLimits {
            appends_in_flight: MAX_APPENDS_IN_FLIGHT + 1,
            ..BatchLimits::default()
        };
        assert!(flooding.check().is_err());
    }
}
