//! The replayer: turns ordered log entries into MVCC state, deterministically.
//!
//! For each entry, in log order:
//!
//! 1. [`check_entry`] decodes the batch and verifies every signature. It
//!    reads nothing but the payload, so it can run ahead on other cores.
//! 2. [`Replayer::apply_entry`] decides each transaction in order (duplicate,
//!    read version, conflicts, access control), then writes the entry's
//!    effects, outcomes, change log, new applied position and state digest in
//!    one atomic batch. The batch is not synced: the log is the durable
//!    record, and a state write lost in a crash is replayed again on open.
//!
//! Decisions read only the log and the state the log produced: no clock, no
//! randomness, no node setting. Two replicas that apply the same entries hold
//! the same state and the same [`Applied::digest`].

use crate::acl::{AclView, Fact, FactCache, FactChange, FactMap};
use crate::attest::{
    ATTESTED_MAGIC, ATTESTED_MAGIC_V1, DecodedAttested, DecodedItem, GENESIS_MAGIC,
    GENESIS_MAGIC_CHAIN, Genesis, Item, Ordering, SUBMITTED_MAGIC, SYSTEM_STREAM, decode_attested,
    decode_submitted,
};
use crate::changes::{self, ChangeRecord, Changes};
use crate::codec::{Reader, Writer};
use crate::da::{self, DaOp, PartRow};
use crate::limits::CONFLICT_WINDOW;
use crate::mining::{Deciding, Mining, MiningEffects, MiningPlan};
use crate::record::{
    AclOp, Address, MiningOp, RetentionOp, SignedTransaction, Transaction, TxnId, Write,
    decode_batch,
};
use crate::retention::{Retention, Rights};
use crate::window::ConflictWindow;
use crate::{FastMap, FastSet};
use crate::{Outcome, sign};
use ordo_kv::mvcc::stage_write;
use ordo_kv::{Column, Engine, EngineError, MvccError, MvccStore, StreamId, WriteBatch};
use ordo_log::EntryHeader;

const APPLIED_KEY: &[u8] = b"applied";
/// Where the log's [`Ordering`] is kept once its genesis record applied
/// (absent: ordered by its members).
const ORDERING_KEY: &[u8] = b"ordering";
/// Folded into the digest for an entry skipped unread (its submitter may
/// not write this log, see [`Ordering::Chain`]).
const SKIPPED_MARK: &[u8] = b"skipped: submitter may not write";
/// Folded into the digest for a blob part (see [`crate::da`]), with its
/// blob id: its payload is never read, its header noted.
const PART_MARK: &[u8] = b"blob part";
const DIGEST_KEY: [u8; 32] = *b"ordo/txn/state-digest/v1........";
/// Where the state's format is recorded, with the first entry applied.
const FORMAT_KEY: &[u8] = b"format";
/// The state's format: 1 keeps the storage-mining index from the first
/// entry on. A store without it cannot index entries it applied before,
/// so replicas would recall differently: it must be rebuilt.
pub const STATE_FORMAT: u8 = 1;

/// Most (sender, stream) pairs the writer memo keeps before it starts over
/// (about 4 MB at most).
const WRITER_MEMO_PAIRS: usize = 1 << 16;

/// How far replay has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Applied {
    /// The next log seq to apply.
    pub next_seq: u64,
    /// The newest commit version (0 before the first commit).
    pub version: u64,
    /// Hash chain over every applied entry's decisions and effects.
    pub digest: [u8; 32],
}

impl Applied {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u64(self.next_seq).u64(self.version).fixed(&self.digest);
        w.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, ReplayError> {
        let mut r = Reader::new(bytes);
        let corrupt =
            |e: crate::codec::DecodeError| ReplayError::Corrupt(format!("applied position: {e}"));
        let applied = Self {
            next_seq: r.u64("next seq").map_err(corrupt)?,
            version: r.u64("version").map_err(corrupt)?,
            digest: r.fixed("digest").map_err(corrupt)?,
        };
        r.finish().map_err(corrupt)?;
        Ok(applied)
    }
}

/// Why replay could not go on. Every one of these stops replay: the state is
/// left at the last fully applied entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// The entry is not the next one in the log.
    #[error("entry {got} is out of order: the next entry to apply is {expected}")]
    OutOfOrder {
        /// The seq that must come next.
        expected: u64,
        /// The seq that was offered.
        got: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] MvccError),
    /// Stored replay state could not be decoded.
    #[error("corrupt replay state: {0}")]
    Corrupt(String),
    /// An entry was offered unread although its submitter may write the
    /// log: the caller must read and check it ([`Replayer::reads_entries_of`]).
    #[error("entry {seq} must be read: its submitter may write this log")]
    NotRead {
        /// The entry.
        seq: u64,
    },
    /// An entry of a log a chain orders was offered without its submitter,
    /// which decides whether it is read at all.
    #[error("entry {seq} of a log ordered by {ordering} needs its header's submitter")]
    SubmitterNeeded {
        /// The entry.
        seq: u64,
        /// The log's ordering.
        ordering: Ordering,
    },
    /// A write failed earlier; the in-memory state may be ahead of the store.
    #[error("replayer stopped after a failed write; reopen it")]
    Poisoned,
    /// The store was built by an ordo whose replay kept no storage-mining
    /// index, so its state cannot go on from where it stopped: state is a
    /// function of the log, so rebuild it by replaying the log from the
    /// start (into an empty state directory).
    #[error(
        "this state was built without the storage-mining index (format {found}, replay writes {expected}); rebuild it from the log"
    )]
    OldFormat {
        /// The format found (0: none recorded).
        found: u8,
        /// The format this replay writes.
        expected: u8,
    },
}

impl From<EngineError> for ReplayError {
    fn from(e: EngineError) -> Self {
        ReplayError::Store(MvccError::Engine(e))
    }
}

/// A transaction after the stateless checks: valid and signed by its sender,
/// vouched for by the entry's gateway, or already rejected; or the genesis
/// record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// Decoded and signed by `tx.sender`; with the hash that was signed.
    Valid(Transaction, [u8; 32]),
    /// Decoded, unsigned, in an entry signed by `gateway`; with the hash its
    /// sender would have signed (the idempotency check compares it). It
    /// applies only if `gateway` holds the gateway role when it is decided.
    Attested {
        /// The transaction.
        tx: Transaction,
        /// Its signing hash.
        hash: [u8; 32],
        /// Who signed the entry.
        gateway: Address,
    },
    /// Decoded, unsigned, in a submitted entry: vouched for by the header's
    /// submitter, which counts only on a log a chain orders and only while
    /// the submitter holds the gateway role.
    Submitted {
        /// The transaction.
        tx: Transaction,
        /// Its signing hash.
        hash: [u8; 32],
    },
    /// Rejected before replay looked at state (bad signature, malformed).
    Rejected(Outcome),
    /// The genesis record (only valid as entry 0).
    Genesis(Genesis),
}

impl Checked {
    /// A transaction taken as valid without a signature check, with its
    /// signing hash (for callers that verified it another way, and benchmarks).
    pub fn valid(tx: Transaction) -> Self {
        let hash = sign::signing_hash(&tx);
        Checked::Valid(tx, hash)
    }

    /// The transaction's (sender, id), for one that names them with
    /// authority (signed or attested).
    pub fn id(&self) -> Option<(Address, TxnId)> {
        match self {
            Checked::Valid(tx, _)
            | Checked::Attested { tx, .. }
            | Checked::Submitted { tx, .. } => Some((tx.sender, tx.id)),
            Checked::Rejected(_) | Checked::Genesis(_) => None,
        }
    }
}

/// Signatures a node has already checked, or made itself, so that checking
/// an entry from the log need not recover them a second time.
///
/// Recovery is a pure function of (signature, hash), so an answer from
/// here gives exactly the result recovery would: only the work is saved.
/// An implementation must name only signers it verified or signed as. It
/// may forget a signature once it has named it (each comes back from the
/// log once), so callers ask once per signature ([`DecodedEntry::vouch`]).
pub trait KnownSignatures {
    /// The account whose `signature` over `hash` this node verified or
    /// made, if it knows one.
    fn signer(&self, signature: &[u8; 65], hash: &[u8; 32]) -> Option<Address>;
}

/// Knows no signature: every one is recovered.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoneKnown;

impl KnownSignatures for NoneKnown {
    fn signer(&self, _: &[u8; 65], _: &[u8; 32]) -> Option<Address> {
        None
    }
}

/// Decodes an entry's payload and verifies each signature. A payload that is
/// not a batch at all yields one `Malformed` rejection.
pub fn check_entry(payload: &[u8]) -> Vec<Checked> {
    check_entry_with(payload, &NoneKnown)
}

/// [`check_entry`], skipping signature recovery where `known` already
/// names the signer (this node checked the signature at ingress, or made
/// it as the entry's gateway).
pub fn check_entry_with(payload: &[u8], known: &dyn KnownSignatures) -> Vec<Checked> {
    DecodedEntry::decode(payload).vouch(known).check()
}

/// An entry's payload decoded, each transaction with its signing hash, its
/// signatures not yet checked: the cheap half of [`check_entry`]. Once
/// vouched ([`DecodedEntry::vouch`]) it tells what the expensive half
/// (recoveries) will cost before paying it.
#[derive(Debug)]
pub enum DecodedEntry {
    /// An attested entry.
    Attested(DecodedAttested),
    /// A submitted entry (no signature of its own).
    Submitted(Vec<DecodedItem>),
    /// The genesis record.
    Genesis(Genesis),
    /// A batch of signed transactions, each with its signing hash.
    Signed(Vec<Result<(SignedTransaction, [u8; 32]), crate::codec::DecodeError>>),
    /// Not an entry at all.
    Malformed(crate::codec::DecodeError),
}

impl DecodedEntry {
    /// Decodes `payload` and hashes each transaction in it.
    pub fn decode(payload: &[u8]) -> Self {
        let decoded = match payload.get(..4) {
            Some(magic) if magic == ATTESTED_MAGIC || magic == ATTESTED_MAGIC_V1 => {
                decode_attested(payload).map(DecodedEntry::Attested)
            }
            Some(magic) if magic == GENESIS_MAGIC || magic == GENESIS_MAGIC_CHAIN => {
                Genesis::decode(payload).map(DecodedEntry::Genesis)
            }
            Some(magic) if magic == SUBMITTED_MAGIC => {
                decode_submitted(payload).map(DecodedEntry::Submitted)
            }
            _ => decode_batch(payload).map(|txs| {
                let hashed = txs.into_iter().map(|decoded| {
                    decoded.map(|signed| {
                        let hash = sign::signing_hash(&signed.tx);
                        (signed, hash)
                    })
                });
                DecodedEntry::Signed(hashed.collect())
            }),
        };
        decoded.unwrap_or_else(DecodedEntry::Malformed)
    }

    /// Looks up, once per signature, what `known` can name, so that
    /// counting the recoveries and checking ask it nothing more. (A
    /// [`KnownSignatures`] may forget a signature as it names it: each comes
    /// back from the log once. Asking it twice turned the node's saved
    /// recovery of its own attestation into one paid on every entry.)
    pub fn vouch(self, known: &dyn KnownSignatures) -> VouchedEntry {
        let (gateway, vouched) = match &self {
            DecodedEntry::Attested(entry) => {
                let items = entry.items.iter().map(|item| {
                    matches!(item, Ok((Item::Signed(signed), hash)) if vouched(known, signed, hash))
                });
                (known.signer(&entry.signature, &entry.hash), items.collect())
            }
            DecodedEntry::Submitted(items) => {
                let items = items.iter().map(|item| {
                    matches!(item, Ok((Item::Signed(signed), hash)) if vouched(known, signed, hash))
                });
                (None, items.collect())
            }
            DecodedEntry::Signed(txs) => {
                let txs = txs
                    .iter()
                    .map(|tx| matches!(tx, Ok((signed, hash)) if vouched(known, signed, hash)));
                (None, txs.collect())
            }
            DecodedEntry::Genesis(_) | DecodedEntry::Malformed(_) => (None, Vec::new()),
        };
        VouchedEntry {
            entry: self,
            gateway,
            vouched,
        }
    }
}

/// A decoded entry with the signatures a [`KnownSignatures`] named looked
/// up ([`DecodedEntry::vouch`]): it tells what checking will cost
/// ([`VouchedEntry::recoveries`]) before [`VouchedEntry::check`] pays it.
#[derive(Debug)]
pub struct VouchedEntry {
    entry: DecodedEntry,
    /// The signer named for an attested entry's own signature.
    gateway: Option<Address>,
    /// Per item (attested entry) or transaction (batch): whether its
    /// signature was named for its sender.
    vouched: Vec<bool>,
}

impl VouchedEntry {
    /// How many signatures [`VouchedEntry::check`] will recover: those not
    /// vouched for.
    pub fn recoveries(&self) -> usize {
        let unvouched = |is_signed: bool, vouched: &bool| is_signed && !*vouched;
        match &self.entry {
            DecodedEntry::Attested(entry) => {
                let items = entry
                    .items
                    .iter()
                    .zip(&self.vouched)
                    .filter(|(item, v)| unvouched(matches!(item, Ok((Item::Signed(_), _))), v));
                usize::from(self.gateway.is_none()) + items.count()
            }
            DecodedEntry::Submitted(items) => items
                .iter()
                .zip(&self.vouched)
                .filter(|(item, v)| unvouched(matches!(item, Ok((Item::Signed(_), _))), v))
                .count(),
            DecodedEntry::Signed(txs) => txs
                .iter()
                .zip(&self.vouched)
                .filter(|(tx, v)| unvouched(tx.is_ok(), v))
                .count(),
            DecodedEntry::Genesis(_) | DecodedEntry::Malformed(_) => 0,
        }
    }

    /// Verifies every signature not vouched for: the transactions as
    /// replay takes them.
    pub fn check(self) -> Vec<Checked> {
        let malformed = |e: crate::codec::DecodeError| {
            Checked::Rejected(Outcome::Malformed {
                reason: e.to_string(),
            })
        };
        match self.entry {
            DecodedEntry::Attested(entry) => check_attested(entry, self.gateway, self.vouched),
            DecodedEntry::Submitted(items) => check_submitted(items, self.vouched),
            DecodedEntry::Genesis(genesis) => vec![Checked::Genesis(genesis)],
            DecodedEntry::Signed(txs) => txs
                .into_iter()
                .zip(self.vouched)
                .map(|(tx, vouched)| match tx {
                    Ok((signed, hash)) => check_signed(signed, hash, vouched),
                    Err(e) => malformed(e),
                })
                .collect(),
            DecodedEntry::Malformed(e) => vec![malformed(e)],
        }
    }
}

/// The items of a submitted entry: signed ones checked on their own,
/// unsigned ones left to the header's submitter, which replay judges.
fn check_submitted(items: Vec<DecodedItem>, vouched: Vec<bool>) -> Vec<Checked> {
    check_items(items, vouched, |tx, hash| Checked::Submitted { tx, hash })
}

/// An entry's items checked: undecodable ones `Malformed`, signed ones on
/// their own signature, unsigned ones as `unsigned` makes them.
fn check_items(
    items: Vec<DecodedItem>,
    vouched: Vec<bool>,
    unsigned: impl Fn(Transaction, [u8; 32]) -> Checked,
) -> Vec<Checked> {
    items
        .into_iter()
        .zip(vouched)
        .map(|(item, vouched)| match item {
            Err(e) => Checked::Rejected(Outcome::Malformed {
                reason: e.to_string(),
            }),
            Ok((Item::Signed(signed), hash)) => check_signed(signed, hash, vouched),
            Ok((Item::Attested(tx), hash)) => unsigned(tx, hash),
        })
        .collect()
}

/// The items of an attested entry: signed ones checked on their own,
/// unsigned ones bound to the entry's signer (named already, or recovered;
/// or rejected with the reason the entry's signature failed).
fn check_attested(
    entry: DecodedAttested,
    gateway: Option<Address>,
    vouched: Vec<bool>,
) -> Vec<Checked> {
    let gateway = match gateway {
        Some(signer) => Ok(signer),
        None => entry.gateway(),
    };
    check_items(entry.items, vouched, |tx, hash| match &gateway {
        Ok(gateway) => Checked::Attested {
            hash,
            tx,
            gateway: *gateway,
        },
        Err(e) => Checked::Rejected(Outcome::BadSignature {
            reason: format!("the entry's attestation: {e}"),
        }),
    })
}

/// Whether `known` already names `signed`'s sender as the signer of
/// `hash`, so its signature need not be recovered.
fn vouched(known: &dyn KnownSignatures, signed: &SignedTransaction, hash: &[u8; 32]) -> bool {
    known.signer(&signed.signature, hash) == Some(signed.tx.sender)
}

/// A signed transaction whose signing hash is `hash`: valid if its
/// signature was vouched for, or recovers to its sender.
fn check_signed(signed: SignedTransaction, hash: [u8; 32], vouched: bool) -> Checked {
    if vouched {
        return Checked::Valid(signed.tx, hash);
    }
    match sign::verify_signed_hash(&signed, hash) {
        Ok(()) => Checked::Valid(signed.tx, hash),
        Err(e) => Checked::Rejected(Outcome::BadSignature {
            reason: e.to_string(),
        }),
    }
}

/// Replays entries into an MVCC store.
#[derive(Debug)]
pub struct Replayer<E> {
    store: MvccStore<E>,
    applied: Applied,
    window: ConflictWindow,
    conflict_window: u64,
    facts: FactCache,
    /// (sender, stream) pairs known to write every key of the stream
    /// (see [`AclView::may_write_every_key`]): a write by them needs one
    /// lookup here instead of several fact lookups. Filled only from
    /// committed state and emptied whenever an ACL fact changes, so it never
    /// changes a decision.
    writers: std::cell::RefCell<FastSet<(Address, StreamId)>>,
    /// What orders the log (from its genesis record).
    ordering: Ordering,
    /// Storage mining: the recall index's size, parameters, open epoch.
    mining: Mining,
    /// The retention policy and horizon.
    retention: Retention,
    poisoned: bool,
}

/// An entry as offered to [`Replayer::apply_submitted`].
#[derive(Debug)]
pub enum EntryBody {
    /// Read and checked ([`check_entry`]).
    Read(Vec<Checked>),
    /// Not read: its submitter may not write the log, as
    /// [`Replayer::reads_entries_of`] said.
    Unread,
}

/// Rebuilds the conflict window from the change log of the last
/// `conflict_window` versions up to `version`.
///
/// The change log holds one record per entry that committed anything, keyed
/// by the entry's last version, listing the keys each version wrote. (One
/// record per entry rather than per transaction: every row costs a memtable
/// insert on the replay path.)
fn rebuild_window<E: Engine>(
    store: &MvccStore<E>,
    version: u64,
    conflict_window: u64,
) -> Result<ConflictWindow, ReplayError> {
    let mut window = ConflictWindow::new();
    // Below the horizon the change records may be collected, and no
    // snapshot older than it is checked (`Retention::oldest_checkable`).
    let after = version
        .saturating_sub(conflict_window)
        .max(store.horizon().saturating_sub(1));
    for (version, keys) in changes_after(store, after, usize::MAX)? {
        window.record(version, keys.iter().map(|(s, k)| (s, k.as_slice())));
    }
    Ok(window)
}

/// What deciding one entry produced, before it is written.
struct EntryEffects {
    batch: WriteBatch,
    changes: ChangeRecord,
    acl: FactMap,
    /// ACL facts staged so far in this entry (a fact staged twice counts
    /// twice), so that an answer derived from the facts can tell whether
    /// it is still current.
    acl_staged: usize,
    /// The last gateway asked about in this entry: who, at which
    /// `acl_staged`, and the answer. Every unsigned transaction of an
    /// attested entry asks about the same signer.
    gateway_asked: Option<(Address, usize, bool)>,
    outcomes: FastMap<(Address, TxnId), Decided>,
    /// The log's ordering, when this entry is its genesis record.
    ordering: Option<Ordering>,
    /// The entry's seq.
    seq: u64,
    /// What its committed mining operations changed.
    mining: MiningEffects,
    /// The retention state its committed retention operations left.
    retention: Option<Retention>,
    /// Blob rows its committed blob operations wrote (None: deleted).
    da: FastMap<Vec<u8>, Option<Vec<u8>>>,
}

/// What a transaction that passed every check does when it commits.
#[derive(Debug, Default)]
struct Approved {
    /// Access-control facts it changes.
    changes: Vec<FactChange>,
    /// What its mining operations do.
    mining: Vec<MiningPlan>,
    /// The retention state its retention operations leave.
    retention: Option<Retention>,
    /// The blob rows its blob operations write.
    da: Vec<Write>,
}

/// Why an entry's payload is not read.
enum Passed {
    /// Its submitter may not write the log.
    Skipped(Address),
    /// It is a blob part.
    Part(PartRow),
}

/// A transaction whose sender is established, with its signing hash and
/// the gateway that vouched for it (None: signed by its sender).
struct Vouched {
    tx: Transaction,
    hash: [u8; 32],
    by: Option<Address>,
}

/// What deciding one blob operation of a transaction needs from replay.
struct DaDeciding<'a> {
    tx: &'a Transaction,
    vouched_by: Option<Address>,
    effects: &'a EntryEffects,
    /// Blob rows earlier operations of the same transaction write.
    pending: &'a [Write],
    version: u64,
}

/// What settles a checked transaction without a decision against state.
enum Settled {
    /// Refused with this outcome.
    Outcome(Outcome),
    /// The genesis record, applied on its own terms.
    Genesis(Genesis),
}

/// An id's decision as stored: the signing hash of the transaction decided
/// under it (so a resend can be told from a different transaction reusing
/// the id) and its outcome.
#[derive(Debug, Clone)]
struct Decided {
    hash: [u8; 32],
    outcome: Outcome,
}

impl Decided {
    /// The stored row: the hash, then the outcome's canonical encoding.
    fn row(hash: &[u8; 32], encoded_outcome: &[u8]) -> Vec<u8> {
        let mut row = Vec::with_capacity(32 + encoded_outcome.len());
        row.extend_from_slice(hash);
        row.extend_from_slice(encoded_outcome);
        row
    }

    fn decode(row: &[u8]) -> Result<Self, ReplayError> {
        let (hash, outcome) = row
            .split_first_chunk::<32>()
            .ok_or_else(|| ReplayError::Corrupt("outcome row shorter than its hash".into()))?;
        Ok(Self {
            hash: *hash,
            outcome: decode_outcome(outcome)?,
        })
    }

    /// What a transaction with signing hash `hash` gets when its id was
    /// already decided as `self`.
    fn again(&self, hash: &[u8; 32]) -> Outcome {
        match self.hash == *hash {
            true => Outcome::Duplicate {
                original: Box::new(self.outcome.clone()),
            },
            false => Outcome::IdReused,
        }
    }
}

impl EntryEffects {
    /// Room for everything `txs` can produce if all commit, so that
    /// building the entry's batch and change record never regrows a buffer.
    fn sized_for(seq: u64, txs: &[Checked]) -> Self {
        let (mut writes, mut key_bytes) = (0, 0);
        for checked in txs {
            if let Checked::Valid(tx, _) = checked {
                writes += tx.writes.len();
                key_bytes += tx.writes.iter().map(|w| w.key.len()).sum::<usize>();
            }
        }
        let mut outcomes = FastMap::default();
        outcomes.reserve(txs.len());
        Self {
            batch: WriteBatch::with_capacity(writes + txs.len() + 2),
            changes: ChangeRecord::with_capacity(writes, key_bytes),
            acl: FactMap::default(),
            acl_staged: 0,
            gateway_asked: None,
            outcomes,
            ordering: None,
            seq,
            mining: MiningEffects::default(),
            retention: None,
            da: FastMap::default(),
        }
    }
}

fn outcome_key(sender: &Address, id: &TxnId) -> Vec<u8> {
    let mut key = Vec::with_capacity(36);
    key.extend_from_slice(sender);
    key.extend_from_slice(id);
    key
}

/// The log's ordering stored in `engine` (its members', before a genesis
/// record said otherwise).
fn stored_ordering<E: Engine>(engine: &E) -> Result<Ordering, ReplayError> {
    let Some(bytes) = engine.get(Column::Meta, ORDERING_KEY)? else {
        return Ok(Ordering::Members);
    };
    let genesis = Genesis::decode(&bytes)
        .map_err(|e| ReplayError::Corrupt(format!("stored ordering: {e}")))?;
    Ok(genesis.ordering)
}

/// Refuses a store that applied entries without recording the format this
/// replay writes (see [`STATE_FORMAT`]).
fn check_format<E: Engine>(engine: &E, applied: &Applied) -> Result<(), ReplayError> {
    if applied.next_seq == 0 {
        return Ok(());
    }
    let found = engine
        .get(Column::Meta, FORMAT_KEY)?
        .and_then(|bytes| bytes.first().copied())
        .unwrap_or(0);
    match found == STATE_FORMAT {
        true => Ok(()),
        false => Err(ReplayError::OldFormat {
            found,
            expected: STATE_FORMAT,
        }),
    }
}

/// The applied position stored in `engine` (the start, for a new store).
fn stored_applied<E: Engine>(engine: &E) -> Result<Applied, ReplayError> {
    match engine.get(Column::Meta, APPLIED_KEY)? {
        Some(bytes) => Applied::decode(&bytes),
        None => Ok(Applied::default()),
    }
}

fn decode_outcome(bytes: &[u8]) -> Result<Outcome, ReplayError> {
    Outcome::decode(bytes).map_err(|e| ReplayError::Corrupt(format!("outcome: {e}")))
}

impl<E: Engine> Replayer<E> {
    /// Opens replay state on `engine` with the standard conflict window,
    /// [`CONFLICT_WINDOW`]: the applied position, and the window rebuilt from
    /// the change log.
    pub fn open(engine: E) -> Result<Self, ReplayError> {
        Self::open_with_window(engine, CONFLICT_WINDOW)
    }

    /// Opens replay state with a conflict window of `conflict_window`
    /// versions.
    ///
    /// The window decides outcomes (`TooOld`), so it is a parameter of the
    /// whole log, not of one replica: every replica of a log must use the
    /// same value, and reopen a store with the value it was built with.
    /// ordo's nodes always use [`CONFLICT_WINDOW`]; tests use small windows
    /// to reach the `TooOld` path.
    pub fn open_with_window(engine: E, conflict_window: u64) -> Result<Self, ReplayError> {
        let applied = stored_applied(&engine)?;
        Self::open_store(MvccStore::new(engine), applied, conflict_window)
    }

    /// Opens replay state (standard window) over a store that caches each
    /// key's newest version within `limits` (see [`ordo_kv::newest`]).
    /// Readers share the cache through clones of [`Replayer::store`]; replay
    /// writes through it before it publishes each new version.
    pub fn open_cached(engine: E, limits: ordo_kv::NewestLimits) -> Result<Self, ReplayError> {
        let applied = stored_applied(&engine)?;
        let store = MvccStore::cached(engine, limits, applied.version);
        Self::open_store(store, applied, CONFLICT_WINDOW)
    }

    /// Replay state over `store`, whose stored position is `applied`.
    fn open_store(
        store: MvccStore<E>,
        applied: Applied,
        conflict_window: u64,
    ) -> Result<Self, ReplayError> {
        check_format(store.engine(), &applied)?;
        let retention = Retention::load(store.engine())?;
        store.advance_horizon(retention.horizon);
        let window = rebuild_window(&store, applied.version, conflict_window)?;
        let ordering = stored_ordering(store.engine())?;
        let mining = Mining::load(store.engine())?;
        Ok(Self {
            store,
            applied,
            window,
            conflict_window,
            facts: FactCache::new(),
            writers: Default::default(),
            ordering,
            mining,
            retention,
            poisoned: false,
        })
    }

    /// What orders the log, as its genesis record said ([`Ordering::Members`]
    /// before one applied, and for logs without one).
    pub fn ordering(&self) -> Ordering {
        self.ordering
    }

    /// Whether the next entry is read if `submitter` submitted it: always on
    /// a log its members order; on one a chain orders, only if `submitter`
    /// is a gateway or an admin of the log at this position.
    pub fn reads_entries_of(&self, submitter: &Address) -> Result<bool, ReplayError> {
        if !self.ordering.authenticates_submitters() {
            return Ok(true);
        }
        let overlay = FastMap::default();
        let view = AclView::new(
            &self.store,
            &overlay,
            Some(&self.facts),
            self.applied.version,
        );
        let gateway = view.holds(&SYSTEM_STREAM, &Fact::Gateway(*submitter))?;
        Ok(gateway || view.holds(&SYSTEM_STREAM, &Fact::Admin(*submitter))?)
    }

    /// Decides and applies entry `seq`, whose header names `submitter`:
    /// skipped (nothing decided, its position and a mark folded into the
    /// digest) when the submitter may not write the log, else as
    /// [`Replayer::apply_entry`] with unsigned items of a submitted entry
    /// vouched for by the submitter. `None` when it was skipped.
    ///
    /// The entry's header stays unseen: mining cannot index it, and no
    /// epoch opens after it. Nodes apply [`Replayer::apply_header`].
    pub fn apply_submitted(
        &mut self,
        seq: u64,
        submitter: Address,
        body: EntryBody,
    ) -> Result<Option<Vec<Outcome>>, ReplayError> {
        self.apply_ordered(seq, submitter, None, body)
    }

    /// Decides and applies the entry `header` orders, as
    /// [`Replayer::apply_submitted`] does, and shows storage mining the
    /// header: the entry joins the recall index, and an epoch opens after
    /// the header that closes one.
    pub fn apply_header(
        &mut self,
        header: &EntryHeader,
        body: EntryBody,
    ) -> Result<Option<Vec<Outcome>>, ReplayError> {
        self.apply_ordered(header.seq, header.entry.submitter, Some(header), body)
    }

    fn apply_ordered(
        &mut self,
        seq: u64,
        submitter: Address,
        header: Option<&EntryHeader>,
        body: EntryBody,
    ) -> Result<Option<Vec<Outcome>>, ReplayError> {
        self.check_next(seq)?;
        if !self.reads_entries_of(&submitter)? {
            let passed = Passed::Skipped(submitter);
            return self.pass_entry(seq, header, passed).map(|()| None);
        }
        if let Some(header) = header
            && let Some(blob) = da::part_of(&header.entry.tags)
        {
            let part = PartRow {
                blob,
                commitment: header.entry.commitment,
                len: header.entry.geometry.payload_len,
                submitter,
            };
            return self
                .pass_entry(seq, Some(header), Passed::Part(part))
                .map(|()| Some(Vec::new()));
        }
        let txs = match body {
            EntryBody::Unread => return Err(ReplayError::NotRead { seq }),
            EntryBody::Read(txs) => txs,
        };
        self.apply_checked(seq, Some(submitter), header, txs)
            .map(Some)
    }

    /// Moves past entry `seq` without reading its payload: skipped, or a
    /// blob part whose header is noted.
    fn pass_entry(
        &mut self,
        seq: u64,
        header: Option<&EntryHeader>,
        passed: Passed,
    ) -> Result<(), ReplayError> {
        let mut digest = blake3::Hasher::new_keyed(&DIGEST_KEY);
        digest.update(&self.applied.digest);
        digest.update(&seq.to_le_bytes());
        let mut batch = WriteBatch::with_capacity(3);
        // A skipped entry's data may be nowhere: never recalled by mining.
        // A part's data is stored like any entry's.
        let indexed = match &passed {
            Passed::Skipped(submitter) => {
                digest.update(SKIPPED_MARK);
                digest.update(submitter);
                false
            }
            Passed::Part(part) => {
                digest.update(PART_MARK);
                digest.update(&part.blob);
                part.stage(seq, &mut batch);
                true
            }
        };
        let mining = self.mining.after_entry(
            header,
            indexed,
            MiningEffects::default(),
            &mut batch,
            &mut digest,
        );
        let next = Applied {
            next_seq: seq + 1,
            digest: *digest.finalize().as_bytes(),
            ..self.applied
        };
        if seq == 0 {
            batch.put(Column::Meta, FORMAT_KEY.to_vec(), vec![STATE_FORMAT]);
        }
        batch.put(Column::Meta, APPLIED_KEY.to_vec(), next.encode());
        if let Err(e) = self.store.write(batch, false) {
            self.poisoned = true;
            return Err(e.into());
        }
        self.applied = next;
        self.mining = mining;
        Ok(())
    }

    /// Refuses to apply anything but the next entry, or after a failed write.
    fn check_next(&self, seq: u64) -> Result<(), ReplayError> {
        if self.poisoned {
            return Err(ReplayError::Poisoned);
        }
        if seq != self.applied.next_seq {
            return Err(ReplayError::OutOfOrder {
                expected: self.applied.next_seq,
                got: seq,
            });
        }
        Ok(())
    }

    /// How far replay has got.
    pub fn applied(&self) -> Applied {
        self.applied
    }

    /// The MVCC store, for reads.
    pub fn store(&self) -> &MvccStore<E> {
        &self.store
    }

    /// The outcome recorded for `(sender, id)`, if it was decided.
    pub fn outcome(&self, sender: &Address, id: &TxnId) -> Result<Option<Outcome>, ReplayError> {
        let row = self
            .store
            .engine()
            .get(Column::Outcomes, &outcome_key(sender, id))?;
        Ok(row
            .map(|row| Decided::decode(&row))
            .transpose()?
            .map(|d| d.outcome))
    }

    /// Decides and applies entry `seq`, whose transactions went through
    /// [`check_entry`], on a log its members order (whose headers' submitters
    /// count for nothing). Returns one outcome per transaction, in order.
    pub fn apply_entry(
        &mut self,
        seq: u64,
        txs: Vec<Checked>,
    ) -> Result<Vec<Outcome>, ReplayError> {
        self.check_next(seq)?;
        if self.ordering.authenticates_submitters() {
            let ordering = self.ordering;
            return Err(ReplayError::SubmitterNeeded { seq, ordering });
        }
        self.apply_checked(seq, None, None, txs)
    }

    /// Storage mining's state: parameters, mineable chunks, open epoch.
    pub fn mining(&self) -> &Mining {
        &self.mining
    }

    /// The retention policy and horizon as of the applied position.
    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// Decides and applies checked entry `seq`, the next one.
    fn apply_checked(
        &mut self,
        seq: u64,
        submitter: Option<Address>,
        header: Option<&EntryHeader>,
        txs: Vec<Checked>,
    ) -> Result<Vec<Outcome>, ReplayError> {
        let stored = self.stored_outcomes(&txs)?;
        let mut effects = EntryEffects::sized_for(seq, &txs);
        let mut next = self.applied;
        let mut digest = blake3::Hasher::new_keyed(&DIGEST_KEY);
        digest.update(&self.applied.digest);
        digest.update(&seq.to_le_bytes());
        let mut outcomes = Vec::with_capacity(txs.len());
        for (checked, stored) in txs.into_iter().zip(stored) {
            let vouched = match self.vouched_for(checked, submitter, &mut effects, &next)? {
                Ok(valid) => valid,
                Err(Settled::Outcome(outcome)) => {
                    outcomes.push(settled(outcome, &mut digest));
                    continue;
                }
                Err(Settled::Genesis(genesis)) => {
                    let outcome = self.apply_genesis(seq, &genesis, &mut effects, &mut digest);
                    outcomes.push(settled(outcome, &mut digest));
                    continue;
                }
            };
            let outcome =
                self.decide_and_record(&vouched, stored, &mut effects, &mut next, &mut digest)?;
            outcomes.push(outcome);
        }
        self.write_entry(seq, header, effects, next, digest)?;
        Ok(outcomes)
    }

    /// A checked transaction whose sender is established (signed, or
    /// vouched for by a gateway), or what settles it without a decision.
    fn vouched_for(
        &self,
        checked: Checked,
        submitter: Option<Address>,
        effects: &mut EntryEffects,
        next: &Applied,
    ) -> Result<Result<Vouched, Settled>, ReplayError> {
        let refused = |outcome| Ok(Err(Settled::Outcome(outcome)));
        let gateway = match checked {
            Checked::Valid(tx, hash) => return Ok(Ok(Vouched { tx, hash, by: None })),
            Checked::Rejected(outcome) => return refused(outcome),
            Checked::Genesis(genesis) => return Ok(Err(Settled::Genesis(genesis))),
            Checked::Attested { tx, hash, gateway } => (gateway, (tx, hash)),
            Checked::Submitted { tx, hash } => match submitter {
                Some(by) if self.ordering.authenticates_submitters() => (by, (tx, hash)),
                _ => {
                    return refused(Outcome::BadSignature {
                        reason: format!(
                            "an unsigned item of an entry without an attestation counts only \
                             on a log whose ordering authenticates submitters; this log is \
                             ordered by {}",
                            self.ordering
                        ),
                    });
                }
            },
        };
        let (by, (tx, hash)) = gateway;
        match self.is_gateway(&by, effects, next.version)? {
            true => Ok(Ok(Vouched {
                tx,
                hash,
                by: Some(by),
            })),
            false => refused(Outcome::NotAGateway { gateway: by }),
        }
    }

    /// Writes a decided entry's effects, position and digest in one batch.
    fn write_entry(
        &mut self,
        seq: u64,
        header: Option<&EntryHeader>,
        mut effects: EntryEffects,
        mut next: Applied,
        mut digest: blake3::Hasher,
    ) -> Result<(), ReplayError> {
        let mined = std::mem::take(&mut effects.mining);
        let mining = self
            .mining
            .after_entry(header, true, mined, &mut effects.batch, &mut digest);
        if let Some(record) = effects.changes.finish() {
            effects
                .batch
                .put(Column::Changes, next.version.to_be_bytes().to_vec(), record);
        }
        if let Some(retention) = &effects.retention {
            retention.stage(&mut effects.batch, &mut digest);
        }
        next.next_seq = seq + 1;
        next.digest = *digest.finalize().as_bytes();
        if seq == 0 {
            effects
                .batch
                .put(Column::Meta, FORMAT_KEY.to_vec(), vec![STATE_FORMAT]);
        }
        effects
            .batch
            .put(Column::Meta, APPLIED_KEY.to_vec(), next.encode());
        // Not synced: the log is the durable record. If the machine loses
        // this write, the store reopens at the last write it kept (batches
        // are atomic) and replay applies the lost entries again, reaching
        // the same state. A process crash loses nothing either way.
        if let Err(e) = self.store.write(effects.batch, false) {
            self.poisoned = true;
            return Err(e.into());
        }
        if !effects.acl.is_empty() {
            self.writers.borrow_mut().clear();
        }
        self.facts.merge(effects.acl);
        if let Some(ordering) = effects.ordering {
            self.ordering = ordering;
        }
        self.mining = mining;
        if let Some(retention) = effects.retention {
            self.retention = retention;
            self.store.advance_horizon(retention.horizon);
        }
        self.applied = next;
        Ok(())
    }

    /// The stored outcome of each valid transaction's id (None for rejected
    /// transactions and ids never decided), read in one batch: nearly every
    /// id is new, and a batched miss is cheaper than one lookup at a time.
    fn stored_outcomes(&self, txs: &[Checked]) -> Result<Vec<Option<Decided>>, ReplayError> {
        let keys: Vec<Vec<u8>> = txs
            .iter()
            .filter_map(|checked| checked.id().map(|(sender, id)| outcome_key(&sender, &id)))
            .collect();
        let mut found = self
            .store
            .engine()
            .get_many(Column::Outcomes, &keys)?
            .into_iter();
        txs.iter()
            .map(|checked| match checked.id() {
                None => Ok(None),
                Some(_) => found
                    .next()
                    .flatten()
                    .map(|row| Decided::decode(&row))
                    .transpose(),
            })
            .collect()
    }

    /// Decides a transaction whose sender is established (signed, or
    /// attested by a gateway), folds the outcome into the digest and stages
    /// it under its id (a second use of an id stores nothing: the id keeps
    /// its original).
    fn decide_and_record(
        &mut self,
        vouched: &Vouched,
        stored: Option<Decided>,
        effects: &mut EntryEffects,
        next: &mut Applied,
        digest: &mut blake3::Hasher,
    ) -> Result<Outcome, ReplayError> {
        let (tx, hash) = (&vouched.tx, &vouched.hash);
        let outcome = self.decide(vouched, stored, effects, next)?;
        if outcome.is_committed() {
            // The signed hash commits to the whole transaction.
            digest.update(hash);
        }
        // Encoded once: for the digest, then as the stored row.
        let encoded = outcome.encode();
        digest.update(&encoded);
        if !matches!(outcome, Outcome::Duplicate { .. } | Outcome::IdReused) {
            let key = outcome_key(&tx.sender, &tx.id);
            let row = Decided::row(hash, &encoded);
            effects.batch.put(Column::Outcomes, key, row);
        }
        Ok(outcome)
    }

    /// Whether `who` holds the gateway role, as of the state this decision
    /// is made against (earlier transactions of the entry included). Asked
    /// once per entry and signer while no ACL fact changes in between.
    fn is_gateway(
        &self,
        who: &Address,
        effects: &mut EntryEffects,
        version: u64,
    ) -> Result<bool, ReplayError> {
        let staged = effects.acl_staged;
        if let Some((asked, at, answer)) = effects.gateway_asked
            && asked == *who
            && at == staged
        {
            return Ok(answer);
        }
        let view = AclView::new(&self.store, &effects.acl, Some(&self.facts), version);
        let answer = view.holds(&SYSTEM_STREAM, &Fact::Gateway(*who))?;
        effects.gateway_asked = Some((*who, staged, answer));
        Ok(answer)
    }

    /// Applies the genesis record if this is the log's first entry: the
    /// system stream exists from version 0, administered by the genesis
    /// admin, with the listed gateways. Anywhere else it is refused.
    fn apply_genesis(
        &mut self,
        seq: u64,
        genesis: &Genesis,
        effects: &mut EntryEffects,
        digest: &mut blake3::Hasher,
    ) -> Outcome {
        if seq != 0 {
            return Outcome::Malformed {
                reason: format!(
                    "a genesis record counts only as the log's first entry, not entry {seq}"
                ),
            };
        }
        let mut facts = vec![
            (SYSTEM_STREAM, Fact::Exists, true),
            (SYSTEM_STREAM, Fact::Admin(genesis.admin), true),
        ];
        facts.extend(
            genesis
                .gateways
                .iter()
                .map(|g| (SYSTEM_STREAM, Fact::Gateway(*g), true)),
        );
        self.stage_facts(facts, effects, 0);
        let encoded = genesis.encode();
        digest.update(&encoded);
        if genesis.ordering != Ordering::Members {
            // Kept as the whole record: one decoder for both.
            effects
                .batch
                .put(Column::Meta, ORDERING_KEY.to_vec(), encoded);
            effects.ordering = Some(genesis.ordering);
        }
        Outcome::Committed { version: 0 }
    }

    /// Decides one valid transaction against the current state plus the
    /// effects of earlier transactions in the same entry, and stages its
    /// effects if it commits (the caller stores the outcome). `hash` is its
    /// signing hash; `stored` is its id's decision from before the entry, if
    /// any.
    fn decide(
        &mut self,
        vouched: &Vouched,
        stored: Option<Decided>,
        effects: &mut EntryEffects,
        next: &mut Applied,
    ) -> Result<Outcome, ReplayError> {
        let (tx, hash) = (&vouched.tx, &vouched.hash);
        let id_key = (tx.sender, tx.id);
        if let Some(earlier) = effects.outcomes.get(&id_key).or(stored.as_ref()) {
            return Ok(earlier.again(hash));
        }
        let outcome = self.validate(tx, vouched.by, effects, next.version)?;
        let outcome = match outcome {
            Err(abort) => abort,
            Ok(approved) => {
                next.version += 1;
                self.commit_approved(tx, approved, effects, next.version);
                Outcome::Committed {
                    version: next.version,
                }
            }
        };
        let decided = Decided {
            hash: *hash,
            outcome: outcome.clone(),
        };
        effects.outcomes.insert(id_key, decided);
        Ok(outcome)
    }

    /// Stages an approved transaction's writes (its own, then those of its
    /// mining operations) and fact changes, and takes its mining effects.
    fn commit_approved(
        &mut self,
        tx: &Transaction,
        approved: Approved,
        effects: &mut EntryEffects,
        version: u64,
    ) {
        let mut extra: Vec<Write> = approved
            .mining
            .iter()
            .filter_map(MiningPlan::write)
            .collect();
        for row in approved.da {
            effects.da.insert(row.key.clone(), row.value.clone());
            extra.push(row);
        }
        if extra.is_empty() {
            self.stage_commit(&tx.writes, approved.changes, effects, version);
        } else {
            let writes: Vec<Write> = tx.writes.iter().cloned().chain(extra).collect();
            self.stage_commit(&writes, approved.changes, effects, version);
        }
        for plan in approved.mining {
            effects.mining.apply(plan);
        }
        if let Some(retention) = approved.retention {
            effects.retention = Some(retention);
        }
    }

    /// Version, conflict and permission checks. `Ok(approved)` to commit.
    fn validate(
        &self,
        tx: &Transaction,
        vouched_by: Option<Address>,
        effects: &EntryEffects,
        version: u64,
    ) -> Result<Result<Approved, Outcome>, ReplayError> {
        if let Some(abort) = self.check_snapshot(tx, effects, version) {
            return Ok(Err(abort));
        }
        let view = AclView::new(&self.store, &effects.acl, Some(&self.facts), version);
        let approved = match self.approve_ops(tx, vouched_by, effects, version, &view)? {
            Ok(approved) => approved,
            Err(abort) => return Ok(Err(abort)),
        };
        // With ACL changes pending in this entry the memo may be stale: skip it.
        match self.check_writes(tx, &view, effects.acl.is_empty())? {
            Some(abort) => Ok(Err(abort)),
            None => Ok(Ok(approved)),
        }
    }

    /// The read version's checks: not in the future, not older than what
    /// can be checked, and nothing read written since.
    fn check_snapshot(
        &self,
        tx: &Transaction,
        effects: &EntryEffects,
        version: u64,
    ) -> Option<Outcome> {
        if tx.read_version > version {
            return Some(Outcome::FutureVersion {
                read_version: tx.read_version,
                applied: version,
            });
        }
        // A transaction that read nothing has nothing to check against the
        // window, so its snapshot may be as old as it likes (a blind write
        // at version 0 keeps working however long the log grows).
        let oldest = effects
            .retention
            .unwrap_or(self.retention)
            .oldest_checkable(version, self.conflict_window);
        if !tx.reads.is_empty() && tx.read_version < oldest {
            return Some(Outcome::TooOld {
                read_version: tx.read_version,
                oldest,
            });
        }
        let conflict =
            (tx.reads.iter()).find_map(|read| self.window.conflict(read, tx.read_version));
        conflict.map(|(stream, key)| Outcome::Conflict { stream, key })
    }

    /// Decides every operation of `tx` in order; the first refusal wins.
    fn approve_ops(
        &self,
        tx: &Transaction,
        vouched_by: Option<Address>,
        effects: &EntryEffects,
        version: u64,
        view: &AclView<'_, E>,
    ) -> Result<Result<Approved, Outcome>, ReplayError> {
        let mut approved = Approved::default();
        for op in &tx.acl {
            let verdict = match op {
                AclOp::Mining(op) => self
                    .decide_mining(tx, op, view, effects, version)?
                    .map(|plan| approved.mining.push(plan)),
                AclOp::Retention(op) => {
                    let current = approved
                        .retention
                        .or(effects.retention)
                        .unwrap_or(self.retention);
                    decide_retention(&current, tx, op, view, version)?
                        .map(|state| approved.retention = Some(state))
                }
                AclOp::Da(op) => {
                    let deciding = DaDeciding {
                        tx,
                        vouched_by,
                        effects,
                        pending: &approved.da,
                        version,
                    };
                    self.decide_da(&deciding, op, view)?
                        .map(|row| approved.da.push(row))
                }
                op => view
                    .check_op(&tx.sender, op)?
                    .map(|more| approved.changes.extend(more)),
            };
            if let Err(abort) = verdict {
                return Ok(Err(abort));
            }
        }
        Ok(Ok(approved))
    }

    /// Whether the sender may write each key it writes; `memo` says the
    /// writer memo may be used (no ACL change pending in the entry).
    fn check_writes(
        &self,
        tx: &Transaction,
        view: &AclView<'_, E>,
        memo: bool,
    ) -> Result<Option<Outcome>, ReplayError> {
        for write in &tx.writes {
            let pair = (tx.sender, write.stream);
            if memo && self.writers.borrow().contains(&pair) {
                continue;
            }
            if let Some(abort) = view.check_write(&tx.sender, write)? {
                return Ok(Some(abort));
            }
            if memo && view.may_write_every_key(&tx.sender, &write.stream)? {
                let mut writers = self.writers.borrow_mut();
                if writers.len() >= WRITER_MEMO_PAIRS {
                    writers.clear();
                }
                writers.insert(pair);
            }
        }
        Ok(None)
    }

    /// Decides one blob operation by the blob rules (`crate::da`).
    fn decide_da(
        &self,
        at: &DaDeciding<'_>,
        op: &DaOp,
        view: &AclView<'_, E>,
    ) -> Result<Result<Write, Outcome>, ReplayError> {
        let sender_is_gateway = matches!(op, DaOp::Expire { .. })
            && view.holds(&SYSTEM_STREAM, &Fact::Gateway(at.tx.sender))?;
        let deciding = da::Deciding {
            store: &self.store,
            staged: &at.effects.da,
            pending: at.pending,
            sender: at.tx.sender,
            vouched_by: at.vouched_by,
            sender_is_gateway,
            seq: at.effects.seq,
            version: at.version,
        };
        Ok(deciding.decide(op)?)
    }

    /// Decides one mining operation of `tx` by the mining rules.
    fn decide_mining(
        &self,
        tx: &Transaction,
        op: &MiningOp,
        view: &AclView<'_, E>,
        effects: &EntryEffects,
        version: u64,
    ) -> Result<Result<MiningPlan, Outcome>, ReplayError> {
        let log_admin = matches!(op, MiningOp::Configure { .. })
            && view.holds(&SYSTEM_STREAM, &Fact::Admin(tx.sender))?;
        let at = Deciding {
            store: &self.store,
            staged: &effects.mining,
            sender: tx.sender,
            seq: effects.seq,
            version,
            log_admin,
        };
        Ok(self.mining.decide(&at, op)?)
    }

    /// Stages a committing transaction's writes and ACL changes.
    fn stage_commit(
        &mut self,
        writes: &[Write],
        changes: Vec<FactChange>,
        effects: &mut EntryEffects,
        version: u64,
    ) {
        for write in writes {
            stage_write(
                &mut effects.batch,
                Column::Data,
                &write.stream,
                &write.key,
                version,
                write.value.as_deref(),
            );
        }
        self.stage_facts(changes, effects, version);
        effects.changes.add_version(version, writes);
        self.window.record(
            version,
            writes.iter().map(|w| (&w.stream, w.key.as_slice())),
        );
        self.window
            .evict_through(version.saturating_sub(self.conflict_window));
    }
}

impl<E: Engine> Replayer<E> {
    /// Stages ACL fact changes at `version`.
    fn stage_facts(&mut self, changes: Vec<FactChange>, effects: &mut EntryEffects, version: u64) {
        for (stream, fact, holds) in changes {
            let key = fact.key();
            stage_write(
                &mut effects.batch,
                Column::Acl,
                &stream,
                &key,
                version,
                holds.then_some(&[1u8][..]),
            );
            effects.acl.insert((stream, key), holds);
            effects.acl_staged += 1;
        }
    }
}

/// Decides one retention operation of `tx` against `current`.
fn decide_retention<E: Engine>(
    current: &Retention,
    tx: &Transaction,
    op: &RetentionOp,
    view: &AclView<'_, E>,
    version: u64,
) -> Result<crate::retention::Decision, ReplayError> {
    let rights = Rights {
        log_admin: view.holds(&SYSTEM_STREAM, &Fact::Admin(tx.sender))?,
        gateway: view.holds(&SYSTEM_STREAM, &Fact::Gateway(tx.sender))?,
    };
    Ok(current.decide(op, rights, version))
}

/// An outcome that stores nothing (no id it could be recorded under),
/// folded into the entry's digest.
fn settled(outcome: Outcome, digest: &mut blake3::Hasher) -> Outcome {
    digest.update(&outcome.encode());
    outcome
}

/// Whether `fact` holds for `stream` at `version` (for ACL queries).
pub fn fact_holds<E: Engine>(
    store: &MvccStore<E>,
    stream: &StreamId,
    fact: &Fact,
    version: u64,
) -> Result<bool, MvccError> {
    AclView::new(store, &FastMap::default(), None, version).holds(stream, fact)
}

/// The keys written by each committed version after `after`, in version
/// order, from at most `max_entries` entries' change records: the feed that
/// watchers follow. Every committed version appears, with an empty key list
/// if it wrote nothing.
///
/// Refused ([`MvccError::Compacted`]) when versions after `after` lie
/// below the horizon: their records may be collected, and a feed with a
/// silent gap would be worse than none. The oldest `after` accepted is
/// one below the horizon.
pub fn changes_after<E: Engine>(
    store: &MvccStore<E>,
    after: u64,
    max_entries: usize,
) -> Result<Changes, ReplayError> {
    let first = after.saturating_add(1);
    store.check_retained(first)?;
    let mut changes = Vec::new();
    let mut entries = 0;
    let mut failure = None;
    store
        .engine()
        .scan_from(
            Column::Changes,
            &first.to_be_bytes(),
            &mut |_, v| match changes::decode(v) {
                Ok(record) => {
                    changes.extend(record.into_iter().filter(|(version, _)| *version > after));
                    entries += 1;
                    entries < max_entries
                }
                Err(e) => {
                    failure = Some(ReplayError::Corrupt(format!("change log record: {e}")));
                    false
                }
            },
        )?;
    store.check_retained(first)?;
    failure.map_or(Ok(changes), Err)
}

#[cfg(test)]
mod check_tests {
    use super::*;
    use crate::record::encode_batch;

    fn signed(id: u8) -> SignedTransaction {
        use crate::testkit::{blank, signed, signing_key};
        signed(blank([id; 16], 0), &signing_key(3))
    }

    /// Knows one (signature, hash) pair as made by `signer`.
    struct KnowsOne([u8; 65], [u8; 32], Address);

    impl KnownSignatures for KnowsOne {
        fn signer(&self, signature: &[u8; 65], hash: &[u8; 32]) -> Option<Address> {
            (*signature == self.0 && *hash == self.1).then_some(self.2)
        }
    }

    #[test]
    fn vouched_transactions_skip_recovery_with_the_same_result() {
        let good = signed(1);
        let mut forged = signed(2);
        forged.tx.read_version = 5; // the signature no longer matches
        let payload = encode_batch(&[good.clone(), forged]);
        let plain = check_entry(&payload);
        let nothing_known = check_entry_with(&payload, &NoneKnown);
        assert_eq!(plain, nothing_known);
        let good_hash = sign::signing_hash(&good.tx);
        let knows_good = check_entry_with(
            &payload,
            &KnowsOne(good.signature, good_hash, good.tx.sender),
        );
        assert_eq!(plain, knows_good);
        assert!(matches!(
            plain[1],
            Checked::Rejected(Outcome::BadSignature { .. })
        ));
    }

    #[test]
    fn an_attested_entry_its_gateway_made_checks_alike_without_recovery() {
        use crate::attest::{Item, attest};
        use crate::testkit::{blank, signing_key};
        let gateway = signing_key(9);
        let mut tx = blank([4; 16], 0);
        tx.sender = [7; 20];
        let made = attest(&[Item::Attested(tx)], &gateway).unwrap();
        let plain = check_entry(&made.payload);
        let known = KnowsOne(made.signature, made.hash, crate::address_of(&gateway));
        assert_eq!(check_entry_with(&made.payload, &known), plain);
        assert!(
            matches!(plain[0], Checked::Attested { gateway: g, .. } if g == crate::address_of(&gateway))
        );
    }

    #[test]
    fn a_vouched_entry_counts_exactly_the_recoveries_its_check_will_make() {
        use crate::attest::{Item, attest};
        use crate::testkit::{blank, signing_key};
        let gateway = signing_key(9);
        let (good, other) = (signed(1), signed(2));
        let good_hash = sign::signing_hash(&good.tx);
        let knows_good = KnowsOne(good.signature, good_hash, good.tx.sender);
        let batch = encode_batch(&[good.clone(), other.clone()]);
        let recoveries = |payload: &[u8], known: &dyn KnownSignatures| {
            DecodedEntry::decode(payload).vouch(known).recoveries()
        };
        assert_eq!(recoveries(&batch, &NoneKnown), 2);
        assert_eq!(recoveries(&batch, &knows_good), 1);

        let mut unsigned = blank([4; 16], 0);
        unsigned.sender = [7; 20];
        let items = [Item::Attested(unsigned), Item::Signed(other)];
        let made = attest(&items, &gateway).unwrap();
        let knows_entry = KnowsOne(made.signature, made.hash, crate::address_of(&gateway));
        // The entry's own signature, then its one signed item.
        assert_eq!(recoveries(&made.payload, &NoneKnown), 2);
        let vouched = DecodedEntry::decode(&made.payload).vouch(&knows_entry);
        assert_eq!(vouched.recoveries(), 1);
        assert_eq!(vouched.check(), check_entry(&made.payload));

        // A signature known for a different sender is recovered anyway.
        let liar = KnowsOne(good.signature, good_hash, [9; 20]);
        assert_eq!(recoveries(&batch, &liar), 2);
        for nothing_to_recover in [&b"no entry at all"[..], &[]] {
            let vouched = DecodedEntry::decode(nothing_to_recover).vouch(&NoneKnown);
            assert_eq!(vouched.recoveries(), 0);
            assert!(matches!(
                vouched.check()[..],
                [Checked::Rejected(Outcome::Malformed { .. })]
            ));
        }
    }

    /// What a signature was told to be over, and by whom.
    type Told = FastMap<[u8; 65], ([u8; 32], Address)>;

    /// Names each signature it was told once, then forgets it, as the
    /// node's cache of verified signatures does; counts the questions.
    struct ForgetsWhenAsked {
        told: std::sync::Mutex<Told>,
        asked: std::sync::atomic::AtomicUsize,
    }

    impl KnownSignatures for ForgetsWhenAsked {
        fn signer(&self, signature: &[u8; 65], hash: &[u8; 32]) -> Option<Address> {
            self.asked
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut told = self.told.lock().unwrap();
            let (remembered, signer) = told.remove(signature)?;
            (remembered == *hash).then_some(signer)
        }
    }

    #[test]
    fn counting_then_checking_asks_the_known_signatures_once_per_signature() {
        use crate::attest::{Item, attest};
        use crate::testkit::{blank, signing_key};
        let gateway = signing_key(9);
        let other = signed(2);
        let other_hash = sign::signing_hash(&other.tx);
        let mut unsigned = blank([4; 16], 0);
        unsigned.sender = [7; 20];
        let made = attest(
            &[Item::Attested(unsigned), Item::Signed(other.clone())],
            &gateway,
        )
        .unwrap();
        // Told a signer that is not the key's, so a recovery would show:
        // the check must take the answer it was given, not recover.
        let named = [5; 20];
        let mut told = FastMap::default();
        told.insert(made.signature, (made.hash, named));
        told.insert(other.signature, (other_hash, other.tx.sender));
        let known = ForgetsWhenAsked {
            told: std::sync::Mutex::new(told),
            asked: Default::default(),
        };
        let vouched = DecodedEntry::decode(&made.payload).vouch(&known);
        assert_eq!(vouched.recoveries(), 0);
        let checked = vouched.check();
        assert!(matches!(checked[0], Checked::Attested { gateway, .. } if gateway == named));
        assert!(matches!(checked[1], Checked::Valid(ref tx, _) if tx.sender == other.tx.sender));
        assert_eq!(known.asked.load(std::sync::atomic::Ordering::Relaxed), 2);
    }
}
