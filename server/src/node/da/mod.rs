//! Data availability on a node: taking a blob from its owner, storing it
//! as log entries, recording it, and finding it again.
//!
//! A dispersal goes: the owner's signed start is checked (its signature,
//! this node's address, a near deadline, the owner's quota, room among the
//! bytes in flight); the bytes arrive and must hash to what the owner
//! signed; the KZG commitment names the blob (one commitment at a time: it
//! takes every core); then, on a task of its own, the blob is cut into
//! parts of [`PART_BYTES`], each appended as a log entry tagged as a part
//! of the blob, and the owner's record (`ordo_txn::da::DaOp::Record`) is
//! committed through the node's attested path. The caller learns the id
//! once the commitment is made and follows the rest with `Status`.
//!
//! Where a dispersal stands lives in memory while it runs, in the log once
//! recorded, and in the [`journal`] between: a dispersal a crash
//! interrupted is reported failed, never silently lost.
//!
//! ## Layout
//!
//! - [`quota`]: each account's bytes per hour.
//! - [`journal`]: the dispersals this node took, on disk.
//! - [`records`]: blob records in the state, and the blob's bytes read
//!   back from its parts.
//! - [`certify`]: who signs certificates (the node that orders its log,
//!   or a majority of the raft voters), and collecting their signatures.
//! - [`expirer`]: the gateway's task that expires records through the log.

pub mod certify;
pub mod expirer;
pub mod journal;
pub mod quota;
pub mod records;

use crate::node::handles::{Commits, Snapshots};
use journal::{Journal, Noted};
use ordo_log::EntryWriter;
use ordo_txn::da::{DaOp, part_tags};
use ordo_txn::{AclOp, Address, Outcome, Transaction};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The size of a blob's parts (the last may be shorter): 16 MiB keeps a
/// part's shards well inside one log entry's limits and one commit
/// group's bytes, and a 128 MiB blob in eight entries.
pub const PART_BYTES: usize = 16 << 20;

/// Largest message of a dispersal or a retrieval's bytes.
pub const CHUNK_BYTES: usize = 1 << 20;

/// How far ahead of this node's clock a dispersal's deadline may be: a
/// signed start is good for a few minutes at most.
pub const MAX_DEADLINE_AHEAD: std::time::Duration = std::time::Duration::from_secs(300);

/// Longest a blob may be kept: ten years.
pub const MAX_TTL_SECS: u64 = 10 * 365 * 24 * 3600;

/// Default time a blob is kept: 30 days.
pub const DEFAULT_TTL_SECS: u64 = 30 * 24 * 3600;

/// Default bytes an account may disperse per hour: 4 GiB.
pub const DEFAULT_ACCOUNT_BYTES_PER_HOUR: u64 = 4 << 30;

/// Default bytes of blobs a node holds in memory at once (being received,
/// committed or stored): 512 MiB. Past it, dispersals are refused until
/// room frees up, rather than queued without bound.
pub const DEFAULT_MAX_INFLIGHT_BYTES: u64 = 512 << 20;

/// The node's dispersal settings (`ordo dev`'s `da_*` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaLimits {
    /// Bytes each account may disperse per hour.
    pub account_bytes_per_hour: u64,
    /// Bytes of blobs held in memory at once.
    pub max_inflight_bytes: u64,
    /// How long a blob is kept when its owner does not say.
    pub default_ttl_secs: u64,
}

impl Default for DaLimits {
    fn default() -> Self {
        Self {
            account_bytes_per_hour: DEFAULT_ACCOUNT_BYTES_PER_HOUR,
            max_inflight_bytes: DEFAULT_MAX_INFLIGHT_BYTES,
            default_ttl_secs: DEFAULT_TTL_SECS,
        }
    }
}

impl DaLimits {
    /// Refuses settings under which no blob could be dispersed.
    pub fn check(&self) -> Result<(), String> {
        let max_blob = ordo_da::limits::MAX_BLOB_BYTES as u64;
        if self.max_inflight_bytes < max_blob {
            return Err(format!(
                "da_max_inflight_bytes must hold at least one blob of the largest size ({max_blob} bytes)"
            ));
        }
        if self.account_bytes_per_hour == 0 {
            return Err("da_account_bytes_per_hour must be at least 1".into());
        }
        if self.default_ttl_secs == 0 || self.default_ttl_secs > MAX_TTL_SECS {
            return Err(format!(
                "da_default_ttl_secs must be between 1 and {MAX_TTL_SECS}"
            ));
        }
        Ok(())
    }
}

/// Where a dispersal stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// Received, waiting to be stored.
    Queued,
    /// Parts being stored and ordered: this many done.
    Storing(u32),
    /// Every part ordered; the record being committed.
    Ordered,
}

/// A dispersal as `Status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The blob.
    pub blob: [u8; 32],
    /// Its owner.
    pub owner: Address,
    /// Its length.
    pub size: u64,
    /// Its parts.
    pub parts: u32,
    /// Where it stands.
    pub stage: Stage,
}

/// Why a dispersal was refused before its bytes were taken (the checks of
/// the owner's signed start are the service's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The request is malformed, out of bounds, or its bytes do not match.
    #[error("{0}")]
    Invalid(String),
    /// The owner's quota or the node's room is spent.
    #[error("{0}")]
    Exhausted(String),
}

/// A blob received whole, checked, with its commitment: ready to store.
pub struct Received {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Its owner.
    pub owner: Address,
    /// Its KZG commitment.
    pub commitment: ordo_da::BlobCommitment,
    /// When a gateway may expire it (Unix seconds).
    pub expires_at: u64,
    /// The room it holds among the bytes in flight, released when it is
    /// stored or fails.
    pub room: tokio::sync::OwnedSemaphorePermit,
}

/// The node's dispersals: limits, quota, room, journal and those running.
pub struct Dispersals {
    limits: DaLimits,
    quota: Mutex<quota::Quota>,
    room: Arc<tokio::sync::Semaphore>,
    /// One KZG commitment at a time: each uses every core.
    committing: tokio::sync::Semaphore,
    /// Bytes of blobs being retrieved, held in memory until sent.
    reading: Arc<tokio::sync::Semaphore>,
    journal: Journal,
    running: Mutex<HashMap<([u8; 32], Address), Progress>>,
    /// This run of the node.
    boot: String,
}

impl Dispersals {
    /// The dispersals of a node whose files live in `data_dir`.
    pub fn open(data_dir: &std::path::Path, limits: DaLimits) -> anyhow::Result<Self> {
        limits.check().map_err(anyhow::Error::msg)?;
        let journal = Journal::open(data_dir)?;
        journal.forget_failed_before(std::time::SystemTime::now() - journal::FAILED_KEPT)?;
        let room =
            usize::try_from(limits.max_inflight_bytes)?.min(tokio::sync::Semaphore::MAX_PERMITS);
        Ok(Self {
            limits,
            quota: Mutex::new(quota::Quota::new(limits.account_bytes_per_hour)),
            room: Arc::new(tokio::sync::Semaphore::new(room)),
            reading: Arc::new(tokio::sync::Semaphore::new(room)),
            committing: tokio::sync::Semaphore::new(1),
            journal,
            running: Mutex::default(),
            boot: ordo_log::hex(&rand::random::<[u8; 16]>()),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> DaLimits {
        self.limits
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// This run's id, as the journal records it.
    pub fn boot(&self) -> &str {
        &self.boot
    }

    /// Charges `size` bytes to `owner` and takes room for them, or
    /// refuses.
    pub fn admit(
        &self,
        owner: Address,
        size: u64,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, Refusal> {
        let permits = u32::try_from(size).map_err(|_| Refusal::Invalid("blob too large".into()))?;
        let room = self.room.clone().try_acquire_many_owned(permits).map_err(|_| {
            Refusal::Exhausted(format!(
                "this node holds {} bytes of blobs in flight at most and has no room for {size} more now; retry later",
                self.limits.max_inflight_bytes
            ))
        })?;
        let mut quota = self.quota.lock().unwrap_or_else(|p| p.into_inner());
        quota.take(owner, size, Instant::now()).map_err(|left| {
            Refusal::Exhausted(format!(
                "account 0x{} may disperse {} bytes per hour; {left} are left now, {size} asked",
                ordo_log::hex(&owner),
                self.limits.account_bytes_per_hour
            ))
        })?;
        Ok(room)
    }

    /// Room to hold a retrieved blob of `size` bytes until it is sent, or a
    /// refusal while other retrievals hold [`DaLimits::max_inflight_bytes`].
    pub fn reading_room(&self, size: u64) -> Result<tokio::sync::OwnedSemaphorePermit, Refusal> {
        let permits = u32::try_from(size).map_err(|_| Refusal::Invalid("blob too large".into()))?;
        self.reading.clone().try_acquire_many_owned(permits).map_err(|_| {
            Refusal::Exhausted(format!(
                "this node holds {} bytes of blobs being retrieved at most and has no room for {size} more now; retry later",
                self.limits.max_inflight_bytes
            ))
        })
    }

    /// Gives `size` bytes back to `owner`'s quota (its upload failed).
    pub fn refund(&self, owner: Address, size: u64) {
        let mut quota = self.quota.lock().unwrap_or_else(|p| p.into_inner());
        quota.refund(owner, size, Instant::now());
    }

    /// Commits to `bytes` on the blocking pool, one blob at a time.
    pub async fn commit(
        &self,
        bytes: Vec<u8>,
    ) -> Result<(Vec<u8>, ordo_da::BlobCommitment), String> {
        let _turn = self.committing.acquire().await.map_err(|e| e.to_string())?;
        tokio::task::spawn_blocking(move || {
            let commitment = ordo_da::commit(&bytes).map_err(|e| e.to_string())?;
            Ok((bytes, commitment))
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// The dispersal of `blob` by `owner` running here, if one is.
    pub fn running(&self, blob: &[u8; 32], owner: Option<&Address>) -> Option<Progress> {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running
            .values()
            .find(|p| p.blob == *blob && owner.is_none_or(|o| *o == p.owner))
            .cloned()
    }

    /// Starts storing `received` unless the same owner's dispersal of the
    /// same blob already runs; returns where it stands, and whether it
    /// started. The dispersal is in the journal before this returns, so a
    /// crash after the caller is answered leaves it reported as
    /// interrupted, never unknown.
    pub fn start(
        self: &Arc<Self>,
        received: Received,
        to: Storing,
    ) -> Result<(Progress, bool), String> {
        let blob = received.commitment.id();
        let key = (blob, received.owner);
        let progress = Progress {
            blob,
            owner: received.owner,
            size: received.bytes.len() as u64,
            parts: received.bytes.len().div_ceil(PART_BYTES) as u32,
            stage: Stage::Queued,
        };
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(already) = running.get(&key) {
                return Ok((already.clone(), false));
            }
            running.insert(key, progress.clone());
        }
        if let Err(error) = self.note(&progress, "queued", "") {
            self.running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
            return Err(error.to_string());
        }
        let dispersals = self.clone();
        tokio::spawn(async move { dispersals.store(received, to).await });
        Ok((progress, true))
    }

    fn set_stage(&self, blob: &[u8; 32], owner: &Address, stage: Stage) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(progress) = running.get_mut(&(*blob, *owner)) {
            progress.stage = stage;
        }
    }

    /// Notes `state` in the journal.
    fn note(
        &self,
        progress: &Progress,
        state: &str,
        reason: &str,
    ) -> Result<(), journal::JournalError> {
        let noted = Noted {
            blob: ordo_log::hex(&progress.blob),
            owner: ordo_log::hex(&progress.owner),
            size: progress.size,
            state: state.into(),
            reason: reason.into(),
            boot: self.boot.clone(),
        };
        self.journal.write(&progress.blob, &progress.owner, &noted)
    }

    /// Stores and records `received`; the outcome goes to the journal and
    /// the dispersal leaves the running set.
    async fn store(self: Arc<Self>, received: Received, to: Storing) {
        let blob = received.commitment.id();
        let owner = received.owner;
        let Some(progress) = self.running(&blob, Some(&owner)) else {
            return;
        };
        let result = self.store_and_record(received, &to).await;
        // A recorded blob's note goes: the log holds its record now.
        let noted = match &result {
            Ok(()) => self.journal.remove(&blob, &owner),
            Err(reason) => self.note(&progress, "failed", reason),
        };
        if let Err(error) = noted {
            // The record (or its absence) in the log still tells; the
            // journal's "queued" then reads as interrupted, and Status
            // looks in the log before saying so.
            tracing::error!(%error, "dispersal journal");
        }
        if let Err(reason) = result {
            tracing::warn!(blob = %ordo_log::hex(&blob), %reason, "dispersal failed");
            to.commits.metrics.count_da_failed();
        } else {
            to.commits.metrics.count_da_dispersed(progress.size);
        }
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.remove(&(blob, owner));
    }

    async fn store_and_record(&self, received: Received, to: &Storing) -> Result<(), String> {
        let Received {
            bytes,
            owner,
            commitment,
            expires_at,
            room,
        } = received;
        let blob = commitment.id();
        let mut parts = Vec::with_capacity(bytes.len().div_ceil(PART_BYTES));
        for (i, part) in bytes.chunks(PART_BYTES).enumerate() {
            self.set_stage(&blob, &owner, Stage::Storing(i as u32));
            let header = to
                .writer
                .append(part.to_vec(), part_tags(blob), to.commits.node.address)
                .await
                .map_err(|e| format!("storing part {i}: {e}"))?;
            parts.push(header.seq);
        }
        drop((bytes, room));
        self.set_stage(&blob, &owner, Stage::Ordered);
        let record = DaOp::Record {
            id: blob,
            size: commitment.size,
            expires_at,
            commitment: commitment.encode(),
            parts,
        };
        match record_for(owner, record, &to.commits).await? {
            Outcome::Committed { .. } => Ok(()),
            // Refused, yet the owner holds a record of this blob (made by an
            // earlier dispersal, or this very record decided before): the
            // blob stands. The commit returned after this node applied it.
            refused => match recorded(&to.snapshots, &blob, &owner)? {
                true => Ok(()),
                false => Err(format!("the log refused the record: {refused}")),
            },
        }
    }
}

/// Where a dispersal stores its parts and commits its record.
#[derive(Clone)]
pub struct Storing {
    /// Appends the parts.
    pub writer: EntryWriter,
    /// Commits the record.
    pub commits: Commits,
    /// Reads whether the node may record blobs.
    pub snapshots: Snapshots,
}

/// Whether `owner` holds a record of `blob` in the state applied so far.
fn recorded(snapshots: &Snapshots, blob: &[u8; 32], owner: &Address) -> Result<bool, String> {
    let at = snapshots.latest_version();
    Ok(!records::find(&snapshots.state, blob, Some(owner), at)?.is_empty())
}

/// Commits `op` as `owner`'s transaction, vouched for by this node.
async fn record_for(owner: Address, op: DaOp, commits: &Commits) -> Result<Outcome, String> {
    let DaOp::Record { id, parts, .. } = &op else {
        return Err("only records are committed for an owner".into());
    };
    let mut txn_id = [0u8; 16];
    let mut hasher = blake3::Hasher::new_derive_key("ordo/da/record-txn-id/v1");
    hasher.update(id);
    hasher.update(&parts.first().copied().unwrap_or(0).to_le_bytes());
    txn_id.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    let tx = Transaction {
        id: txn_id,
        sender: owner,
        read_version: 0,
        reads: vec![],
        writes: vec![],
        acl: vec![AclOp::Da(op)],
    };
    let item = ordo_txn::attest::CanonicalItem::new(ordo_txn::attest::Item::Attested(tx))
        .map_err(|e| format!("encoding the record: {e}"))?;
    commits
        .committer
        .commit(item)
        .await
        .map(|decided| decided.outcome)
        .map_err(|e| format!("committing the record: {e}"))
}

/// Seconds since the Unix epoch on this node's clock.
pub fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
