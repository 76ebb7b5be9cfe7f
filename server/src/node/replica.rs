//! Following the log into MVCC state: the replica role.
//!
//! A replica reads each committed entry through the log crate (shards
//! verified against the entry's commitment, rebuilt from any `k` of them),
//! checks its transactions' signatures, and hands them to the deterministic
//! [`Replayer`], which writes the entry's effects and the new applied
//! position in one atomic batch. Because the position is stored with the
//! effects, a replica that dies at any moment resumes at exactly the next
//! entry: nothing is applied twice and nothing is skipped.
//!
//! Blob parts (`ordo_txn::da`) are never read either: replay needs only
//! their headers, and the blobs are fetched by whoever retrieves them.
//!
//! On a log a chain orders (`ordo_txn::attest::Ordering::Chain`), an entry
//! whose header names a submitter that may not write the log is passed
//! over unread: its shards are never fetched, so a stranger's header for
//! data that exists nowhere cannot stall the replica. Whether a submitter
//! may write is decided by replay at the entry's position; reading ahead
//! only guesses from the state applied so far, and an entry guessed wrong
//! (its submitter made a gateway by an entry just before it) is read when
//! its turn comes.

use crate::node::metrics::Metrics;
use crate::node::own_entries::OwnEntries;
use ordo_kv::{EngineError, RocksEngine};
use ordo_log::{EntryError, EntryHeader, EntryReader};
use ordo_txn::attest::Ordering;
use ordo_txn::{
    Address, Applied, Checked, DecodedEntry, EntryBody, KnownSignatures, NoneKnown, Outcome,
    ReplayError, Replayer, TxnId,
};
use std::path::Path;
use std::sync::Arc;

/// Why a replica stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The state store could not be opened.
    #[error("opening replica state: {0}")]
    Open(#[from] EngineError),
    /// State of an older format could not be cleared for rebuilding.
    #[error("clearing {state} to rebuild it from the log: {reason}")]
    Rebuild {
        /// The state directory.
        state: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// An entry could not be read or verified.
    #[error("reading log entry {seq}: {source}")]
    Log {
        /// The entry.
        seq: u64,
        /// What went wrong.
        source: EntryError,
    },
    /// Replay refused to go on.
    #[error("replaying log entry {seq}: {source}")]
    Replay {
        /// The entry.
        seq: u64,
        /// What went wrong.
        source: ReplayError,
    },
    /// The sequencer failed or closed.
    #[error("following the log: {0}")]
    Sequencer(#[from] ordo_log::SequencerError),
    /// The signature-checking task failed.
    #[error("checking entry {seq}: {reason}")]
    Check {
        /// The entry.
        seq: u64,
        /// What went wrong.
        reason: String,
    },
    /// The log's genesis record names another ordering than the one this
    /// node follows it by: a log founded on another chain or contract, or
    /// by raft members, replayed here would take headers' submitters for
    /// what they are not.
    #[error(
        "this log says it is ordered by {found}, but this node follows it by {expected}; \
         point the node at the log's own sequencer"
    )]
    Ordering {
        /// What this node orders the log by.
        expected: Ordering,
        /// What the log's genesis record says.
        found: Ordering,
    },
}

/// MVCC state fed from the log.
pub struct Replica {
    replayer: Replayer<Arc<RocksEngine>>,
    engine: Arc<RocksEngine>,
    reader: EntryReader,
    /// Signatures this node already verified or made (none known unless
    /// told, [`Replica::with_verified`]).
    known: Arc<dyn KnownSignatures + Send + Sync>,
    /// Entries this node attested, already decoded (none unless told,
    /// [`Replica::with_own_entries`]).
    own: Option<Arc<OwnEntries>>,
    metrics: Option<Arc<Metrics>>,
    /// What the node orders the log by, which the log's genesis must say
    /// (unchecked when `None`: `ordo replay` of a local log).
    expected: Option<Ordering>,
}

/// Opens the state store in `state_dir` and replay state over it.
fn open_state(
    state_dir: &Path,
) -> Result<(Arc<RocksEngine>, Replayer<Arc<RocksEngine>>), ReplicaError> {
    let engine = Arc::new(RocksEngine::open(state_dir)?);
    let replayer = Replayer::open_cached(engine.clone(), ordo_kv::NewestLimits::default())
        .map_err(|source| ReplicaError::Replay { seq: 0, source })?;
    Ok((engine, replayer))
}

/// An entry on its way from the log to replay.
enum Reading {
    /// Being read and checked on a task of its own.
    Task(tokio::task::JoinHandle<Result<(EntryHeader, Vec<Checked>), ReplicaError>>),
    /// Read and checked.
    Done(EntryHeader, Vec<Checked>),
    /// Only its header read: its submitter may not write the log, as far as
    /// the state applied so far tells.
    Unread(EntryHeader),
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("applied", &self.replayer.applied())
            .finish_non_exhaustive()
    }
}

impl Replica {
    /// Opens (creating if needed) replica state in `state_dir`, reading entries through `reader`.
    ///
    /// State built by an older format of replay is rebuilt from the log:
    /// it is only ever a function of the log, so the directory is emptied
    /// and replay starts again from the first entry.
    pub fn open(state_dir: &Path, reader: EntryReader) -> Result<Self, ReplicaError> {
        let (engine, replayer) = match open_state(state_dir) {
            Err(ReplicaError::Replay {
                source: source @ ordo_txn::ReplayError::OldFormat { .. },
                ..
            }) => {
                tracing::warn!(state = %state_dir.display(), %source, "rebuilding the state from the log");
                std::fs::remove_dir_all(state_dir).map_err(|e| ReplicaError::Rebuild {
                    state: state_dir.to_path_buf(),
                    reason: e.to_string(),
                })?;
                open_state(state_dir)?
            }
            opened => opened?,
        };
        Ok(Self {
            replayer,
            engine,
            reader,
            known: Arc::new(NoneKnown),
            own: None,
            metrics: None,
            expected: None,
        })
    }

    /// Requires the log's genesis record to say it is ordered by
    /// `ordering`; checked now if the genesis is applied, else once it is.
    pub fn expecting(mut self, ordering: Ordering) -> Result<Self, ReplicaError> {
        self.expected = Some(ordering);
        if self.replayer.applied().next_seq > 0 {
            self.check_ordering()?;
        }
        Ok(self)
    }

    /// Whether the log's ordering is the expected one.
    fn check_ordering(&self) -> Result<(), ReplicaError> {
        let found = self.replayer.ordering();
        match self.expected {
            Some(expected) if expected != found => Err(ReplicaError::Ordering { expected, found }),
            _ => Ok(()),
        }
    }

    /// Lets the signature check skip recovery for transactions this node
    /// already verified (see [`crate::node::verified`]).
    pub fn with_verified(
        mut self,
        verified: Arc<crate::node::verified::VerifiedSignatures>,
    ) -> Self {
        self.known = verified;
        self
    }

    /// Lets the replica take the entries this node attests already decoded
    /// instead of decoding them (see [`crate::node::own_entries`]).
    pub fn with_own_entries(mut self, own: Arc<OwnEntries>) -> Self {
        self.own = Some(own);
        self
    }

    /// Counts the signatures the replica recovers in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// How far the state has got.
    pub fn applied(&self) -> Applied {
        self.replayer.applied()
    }

    /// The state's engine.
    pub fn engine(&self) -> &Arc<RocksEngine> {
        &self.engine
    }

    /// The state, for readers: it shares replay's cache of each key's
    /// newest version, which replay keeps coherent.
    pub fn store(&self) -> ordo_kv::MvccStore<Arc<RocksEngine>> {
        self.replayer.store().clone()
    }

    /// Applies every entry below `tail` not yet applied, in order, calling
    /// `on_applied` after each one is in the state store, with the entry's
    /// transactions (sender and id, when it had a valid signature) and
    /// their outcomes.
    ///
    /// Reading, verifying and signature-checking run up to
    /// [`CHECK_AHEAD`] entries ahead of the ordered apply, on the blocking
    /// pool, so every core helps; only the apply itself is sequential.
    pub async fn catch_up(
        &mut self,
        tail: u64,
        mut on_applied: impl FnMut(&AppliedEntry<'_>),
    ) -> Result<(), ReplicaError> {
        let mut next_to_check = self.replayer.applied().next_seq;
        // One entry, the usual case under light load: nothing to read
        // ahead, so no task to hand it to.
        let inline = next_to_check + 1 == tail;
        let mut ahead = std::collections::VecDeque::new();
        while self.replayer.applied().next_seq < tail {
            while next_to_check < tail && ahead.len() < CHECK_AHEAD {
                ahead.push_back(self.start_reading(next_to_check, inline).await?);
                next_to_check += 1;
            }
            let seq = self.replayer.applied().next_seq;
            let Some(reading) = ahead.pop_front() else {
                break;
            };
            let (header, body) = self.finish_reading(seq, reading).await?;
            self.apply(&header, body, &mut on_applied)?;
        }
        Ok(())
    }

    /// Starts reading entry `seq`: on its own task unless `inline`; not at
    /// all, past its header, when its submitter may not write the log.
    /// (`&mut self` because the replayer is not `Sync`: a shared borrow held
    /// across an await would make the future not `Send`.)
    async fn start_reading(&mut self, seq: u64, inline: bool) -> Result<Reading, ReplicaError> {
        let checker = self.checker();
        if !self.replayer.ordering().authenticates_submitters() {
            return Ok(match inline {
                true => {
                    let (header, checked) = read_and_check(checker, seq).await?;
                    Reading::Done(header, checked)
                }
                false => Reading::Task(tokio::spawn(read_and_check(checker, seq))),
            });
        }
        let header =
            (self.reader.header(seq).await).map_err(|source| ReplicaError::Log { seq, source })?;
        let replay = |source| ReplicaError::Replay { seq, source };
        if !self
            .replayer
            .reads_entries_of(&header.entry.submitter)
            .map_err(replay)?
        {
            return Ok(Reading::Unread(header));
        }
        Ok(Reading::Task(tokio::spawn(check_payload(checker, header))))
    }

    /// Waits for entry `seq`'s reading, reading it now if it was passed
    /// over but its submitter may write the log after all.
    async fn finish_reading(
        &mut self,
        seq: u64,
        reading: Reading,
    ) -> Result<(EntryHeader, EntryBody), ReplicaError> {
        let (header, checked) = match reading {
            Reading::Done(header, checked) => (header, checked),
            Reading::Task(task) => task.await.map_err(|e| ReplicaError::Check {
                seq,
                reason: e.to_string(),
            })??,
            Reading::Unread(header) => {
                let submitter = header.entry.submitter;
                let replay = |source| ReplicaError::Replay { seq, source };
                if !self.replayer.reads_entries_of(&submitter).map_err(replay)? {
                    return Ok((header, EntryBody::Unread));
                }
                check_payload(self.checker(), header).await?
            }
        };
        Ok((header, EntryBody::Read(checked)))
    }

    /// What reading and checking an entry needs, for a task of its own.
    fn checker(&self) -> Checker {
        Checker {
            reader: self.reader.clone(),
            known: self.known.clone(),
            own: self.own.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// Applies the entry `header` orders and reports it to `on_applied`
    /// (with no transactions when it was skipped unread).
    fn apply(
        &mut self,
        header: &EntryHeader,
        body: EntryBody,
        on_applied: &mut impl FnMut(&AppliedEntry<'_>),
    ) -> Result<(), ReplicaError> {
        let seq = header.seq;
        let ids: Vec<Option<(Address, TxnId)>> = match &body {
            EntryBody::Read(checked) => checked.iter().map(Checked::id).collect(),
            EntryBody::Unread => Vec::new(),
        };
        let outcomes = self
            .replayer
            .apply_header(header, body)
            .map_err(|source| ReplicaError::Replay { seq, source })?;
        if seq == 0 {
            self.check_ordering()?;
        }
        let (ids, outcomes) = match &outcomes {
            Some(outcomes) => (&ids[..], &outcomes[..]),
            None => {
                if let Some(metrics) = &self.metrics {
                    metrics.record_skipped_entry();
                }
                (&[][..], &[][..])
            }
        };
        on_applied(&AppliedEntry {
            seq,
            applied: self.replayer.applied(),
            ids,
            outcomes,
        });
        Ok(())
    }
}

/// What applying one entry produced, as reported to [`Replica::catch_up`]'s callback.
#[derive(Debug)]
pub struct AppliedEntry<'a> {
    /// The entry.
    pub seq: u64,
    /// The position after it.
    pub applied: Applied,
    /// Each transaction's (sender, id), `None` where its signature failed.
    pub ids: &'a [Option<(Address, TxnId)>],
    /// Each transaction's outcome, in the same order.
    pub outcomes: &'a [Outcome],
}

/// Follows the log for as long as it runs: applies every committed entry
/// and publishes the new position on `applied` after each one. Returns only
/// on an error (including the sequencer closing at shutdown).
pub async fn follow(
    mut replica: Replica,
    sequencer: std::sync::Arc<dyn ordo_log::Sequencer>,
    applied: tokio::sync::watch::Sender<Applied>,
    mut on_entry: impl FnMut(&AppliedEntry<'_>),
) -> Result<(), ReplicaError> {
    let mut failures = 0u64;
    loop {
        let next = replica.applied().next_seq;
        let caught_up = match sequencer.wait_beyond(next).await {
            Ok(tail) => {
                replica
                    .catch_up(tail, |entry| {
                        // Published first: whoever learns of a decision can
                        // then read its effects at once (read-your-writes).
                        applied.send_replace(entry.applied);
                        on_entry(entry);
                    })
                    .await
            }
            Err(e) => Err(ReplicaError::Sequencer(e)),
        };
        match caught_up {
            Ok(()) => failures = 0,
            Err(e) if e.is_transient() => {
                failures += 1;
                if failures % TRANSIENT_REPORT_EVERY == 1 {
                    tracing::warn!(error = %e, failures, "the replica waits for the log to be readable again");
                }
                tokio::time::sleep(TRANSIENT_RETRY_PAUSE).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Pause before a replica tries again after a failure another member may
/// mend (a voter or storage member down, a lagging voter).
pub const TRANSIENT_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);

/// A replica retrying a transient failure logs it once every this many
/// attempts.
const TRANSIENT_REPORT_EVERY: u64 = 25;

impl ReplicaError {
    /// Whether the failure is one that other members mend with time (a
    /// shard or header read that found too few members, or a voter that
    /// lags), so the replica should try again; anything else (a failed
    /// write of its own state, an entry that does not verify, replay
    /// refusing) stops it.
    pub fn is_transient(&self) -> bool {
        use ordo_log::SequencerError;
        match self {
            ReplicaError::Log { source, .. } => matches!(
                source,
                EntryError::NotCommitted { .. }
                    | EntryError::Spread(_)
                    | EntryError::Sequencer(SequencerError::Io(_))
            ),
            ReplicaError::Sequencer(SequencerError::Io(_)) => true,
            _ => false,
        }
    }
}

/// How many entries a replica reads and checks ahead of the one it applies.
pub const CHECK_AHEAD: usize = 8;

/// Largest entry the replica decodes (and hashes) on its own task: a few
/// dozen microseconds of Keccak at most, about what a hand-off to the
/// blocking pool costs. Larger entries (a busy node's groups of hundreds
/// of transactions) go to the blocking pool whole, where their hashing
/// runs beside the runtime on another core instead of delaying its tasks.
pub const INLINE_DECODE_BYTES: usize = 16 * 1024;

/// Most signature recoveries (about 25 µs each) the replica makes on its
/// own task; an entry that needs more has them made on the blocking pool.
/// An entry this node attested needs none: the node knows its own
/// signature and those it verified at ingress.
pub const INLINE_RECOVERIES: usize = 2;

/// Reads entry `seq` (shards verified) and checks its transactions.
///
/// Checking on the blocking pool costs two thread hand-offs per entry,
/// which at a few transactions per entry cost more than the check itself
/// (they were a tenth of the replica's time in a 16-client SQL insert
/// profile), so only the recoveries of an entry that needs several go
/// there.
async fn read_and_check(
    checker: Checker,
    seq: u64,
) -> Result<(EntryHeader, Vec<Checked>), ReplicaError> {
    let header = checker.reader.header(seq).await;
    check_payload(
        checker,
        header.map_err(|source| ReplicaError::Log { seq, source })?,
    )
    .await
}

/// Reads the payload of the entry `header` describes (shards verified) and
/// checks its transactions; with the header.
async fn check_payload(
    checker: Checker,
    header: EntryHeader,
) -> Result<(EntryHeader, Vec<Checked>), ReplicaError> {
    let seq = header.seq;
    if ordo_txn::da::part_of(&header.entry.tags).is_some() {
        // A blob part: replay notes its header and never reads its bytes,
        // so a replica does not fetch every blob.
        return Ok((header, Vec::new()));
    }
    let (header, entry) = checker
        .reader
        .payload(header)
        .await
        .map_err(|source| ReplicaError::Log { seq, source })?;
    check_transactions(checker, seq, entry)
        .await
        .map(|checked| (header, checked))
}

/// Checks the transactions of entry `seq`'s verified payload.
async fn check_transactions(
    checker: Checker,
    seq: u64,
    entry: ordo_log::VerifiedPayload,
) -> Result<Vec<Checked>, ReplicaError> {
    let (known, own, metrics) = (checker.known, checker.own, checker.metrics);
    let count = move |recoveries: usize| {
        if let Some(metrics) = &metrics {
            metrics.record_recoveries(recoveries);
        }
    };
    let vouched = match entry.payload.len() <= INLINE_DECODE_BYTES {
        true => decode(&entry.payload, own.as_deref()).vouch(known.as_ref()),
        false => {
            let check = move || {
                let vouched = decode(&entry.payload, own.as_deref()).vouch(known.as_ref());
                count(vouched.recoveries());
                vouched.check()
            };
            return on_blocking_pool(seq, check).await;
        }
    };
    let recoveries = vouched.recoveries();
    count(recoveries);
    if recoveries <= INLINE_RECOVERIES {
        return Ok(vouched.check());
    }
    on_blocking_pool(seq, move || vouched.check()).await
}

/// `payload` decoded: handed over by `own` if this node attested exactly
/// these bytes, else decoded here.
fn decode(payload: &[u8], own: Option<&OwnEntries>) -> DecodedEntry {
    match own.and_then(|own| own.take(payload)) {
        Some(decoded) => DecodedEntry::Attested(decoded),
        None => DecodedEntry::decode(payload),
    }
}

/// What reading and checking one entry needs.
struct Checker {
    reader: EntryReader,
    known: Arc<dyn KnownSignatures + Send + Sync>,
    own: Option<Arc<OwnEntries>>,
    metrics: Option<Arc<Metrics>>,
}

/// Runs a check of entry `seq` on the blocking pool.
async fn on_blocking_pool(
    seq: u64,
    check: impl FnOnce() -> Vec<Checked> + Send + 'static,
) -> Result<Vec<Checked>, ReplicaError> {
    tokio::task::spawn_blocking(check)
        .await
        .map_err(|e| ReplicaError::Check {
            seq,
            reason: e.to_string(),
        })
}
