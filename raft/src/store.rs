//! Raft's durable state and the header log it applies into, in one
//! RocksDB instance per voter.
//!
//! Column families:
//!
//! - `raft_log`: raft entries by index (big-endian, so keys sort by index),
//!   postcard-encoded;
//! - `raft_meta`: the vote, the last known committed log id, the last
//!   purged log id;
//! - `headers`: the header log, seq (big-endian) to the canonical header
//!   encoding: what [`crate::RaftSequencer`] reads;
//! - `machine`: the state machine's position (last applied log id,
//!   membership, next seq) and the current snapshot.
//!
//! Durability: raft's log appends, votes, truncations and snapshots are
//! synced through the database's journal ([`ordo_log::journaled`]: one
//! `fdatasync` on a file that never grows) before openraft is told they are
//! done. The state machine's writes take no log at all: they are a function
//! of the committed raft log, and openraft re-applies the entries after the
//! machine's stored position when it starts. Flushes are atomic across the
//! families, so the machine's position and its headers reach the disk
//! together, and a snapshot is stored only after a flush has made the
//! machine state it covers durable (the log below it is purged next).

use crate::types::{Assigned, HeaderBatch, Node, NodeId, TypeConfig};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    AnyError, Entry, EntryPayload, LogId, OptionalSend, RaftLogReader, RaftSnapshotBuilder,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership, Vote,
};
use ordo_log::journaled::JournaledDb;
use ordo_log::limits::MEMBER_JOURNAL_SEGMENT_BYTES;
use ordo_log::{EntryHeader, WriteFault};
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::io::Cursor;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;

const CF_LOG: &str = "raft_log";
const CF_META: &str = "raft_meta";
const CF_HEADERS: &str = "headers";
const CF_MACHINE: &str = "machine";
const COLUMNS: [&str; 4] = [CF_LOG, CF_META, CF_HEADERS, CF_MACHINE];

const VOTE_KEY: &[u8] = b"vote";
const COMMITTED_KEY: &[u8] = b"committed";
const PURGED_KEY: &[u8] = b"purged";
const APPLIED_KEY: &[u8] = b"applied";
const SNAPSHOT_KEY: &[u8] = b"snapshot";

type StorageResult<T> = Result<T, StorageError<NodeId>>;

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// RocksDB refused to open the directory.
    #[error("opening the raft store at {path}: {reason}")]
    Rocks {
        /// The directory.
        path: String,
        /// RocksDB's message.
        reason: String,
    },
    /// The stored machine position does not decode.
    #[error("the raft store's machine position is corrupt: {0}")]
    Corrupt(String),
}

/// The RocksDB instance shared by the log store and the state machine.
pub(crate) struct RaftDb {
    db: JournaledDb,
    fault: Option<Arc<WriteFault>>,
}

fn io_error(message: impl std::fmt::Display) -> AnyError {
    AnyError::error(message.to_string())
}

fn encode(value: &impl Serialize) -> Result<Vec<u8>, AnyError> {
    postcard::to_allocvec(value).map_err(io_error)
}

impl RaftDb {
    fn open(path: &Path, fault: Option<Arc<WriteFault>>) -> Result<Self, OpenError> {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        // Logs written before the journal existed are still read on open; a
        // write cut short by a crash was never acknowledged: drop it.
        options.set_wal_recovery_mode(rocksdb::DBRecoveryMode::TolerateCorruptedTailRecords);
        // Unlogged machine writes reach the disk only by flushes: every
        // family at once, so a position never lands without its headers.
        options.set_atomic_flush(true);
        let failed = |reason: String| OpenError::Rocks {
            path: path.display().to_string(),
            reason,
        };
        let db =
            rocksdb::DB::open_cf(&options, path, COLUMNS).map_err(|e| failed(e.into_string()))?;
        let db = JournaledDb::start(db, &COLUMNS, MEMBER_JOURNAL_SEGMENT_BYTES)
            .map_err(|e| failed(e.to_string()))?;
        Ok(Self { db, fault })
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        // Every column is created at open.
        self.db
            .db()
            .cf_handle(name)
            .expect("column family created at open")
    }

    fn get(&self, cf: &str, key: &[u8]) -> Result<Option<Vec<u8>>, AnyError> {
        self.db.db().get_cf(self.cf(cf), key).map_err(io_error)
    }

    fn get_decoded<T: for<'de> Deserialize<'de>>(
        &self,
        cf: &str,
        key: &[u8],
    ) -> Result<Option<T>, AnyError> {
        match self.get(cf, key)? {
            None => Ok(None),
            Some(bytes) => postcard::from_bytes(&bytes).map(Some).map_err(io_error),
        }
    }

    /// Writes `batch`: journaled and synced when `sync`, else unlogged
    /// (see the module's documentation). The armed fault, if any, fails it.
    fn write(&self, batch: rocksdb::WriteBatch, sync: bool) -> Result<(), AnyError> {
        if self.fault.as_ref().is_some_and(|fault| fault.take()) {
            return Err(io_error("injected write fault"));
        }
        match sync {
            true => self.db.write_synced(batch).map_err(io_error),
            false => self.db.write_unlogged(batch).map_err(io_error),
        }
    }

    /// Makes every write so far durable, unlogged ones included.
    fn flush(&self) -> Result<(), AnyError> {
        self.db.flush().map_err(io_error)
    }

    fn put(
        &self,
        cf: &str,
        key: &[u8],
        value: &impl Serialize,
        sync: bool,
    ) -> Result<(), AnyError> {
        let bytes = encode(value)?;
        let mut batch = rocksdb::WriteBatch::default();
        batch.put_cf(self.cf(cf), key, bytes);
        self.write(batch, sync)
    }

    /// Every row of `cf` from `start` while `keep` holds.
    fn scan(
        &self,
        cf: &str,
        start: &[u8],
        mut keep: impl FnMut(&[u8], &[u8]) -> Result<bool, AnyError>,
    ) -> Result<(), AnyError> {
        let mut iter = self.db.db().raw_iterator_cf(self.cf(cf));
        iter.seek(start);
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            if !keep(key, value)? {
                return Ok(());
            }
            iter.next();
        }
        iter.status().map_err(io_error)
    }

    /// The header log from seq `from`, at most `max` headers.
    pub(crate) fn headers(&self, from: u64, max: usize) -> Result<Vec<EntryHeader>, AnyError> {
        let mut headers = Vec::new();
        self.scan(CF_HEADERS, &from.to_be_bytes(), |_, value| {
            if headers.len() >= max {
                return Ok(false);
            }
            headers.push(EntryHeader::decode(value).map_err(io_error)?);
            Ok(true)
        })?;
        Ok(headers)
    }
}

/// Opens (creating if needed) a voter's store in `path`: raft's log, the
/// header machine, and the machine's applied tail, which the sequencer
/// watches. `fault`, when given, fails the next write it is armed for.
pub fn open_store(
    path: &Path,
    fault: Option<Arc<WriteFault>>,
) -> Result<(LogStore, HeaderMachine), OpenError> {
    let db = Arc::new(RaftDb::open(path, fault)?);
    let position: MachinePosition = db
        .get_decoded(CF_MACHINE, APPLIED_KEY)
        .map_err(|e| OpenError::Corrupt(e.to_string()))?
        .unwrap_or_default();
    let (tail, _) = watch::channel(position.next_seq);
    let held = Arc::new(());
    let machine = HeaderMachine {
        db: db.clone(),
        position,
        tail: Arc::new(tail),
        held: held.clone(),
    };
    Ok((LogStore { db, _held: held }, machine))
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// Raft's log, vote and committed position: openraft's `RaftLogStorage`.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<RaftDb>,
    /// Counts raft's handles on the store (see [`HeaderMachine::raft_handles`]).
    _held: Arc<()>,
}

impl LogStore {
    fn last_entry_id(&self) -> Result<Option<LogId<NodeId>>, AnyError> {
        let mut iter = self.db.db.db().raw_iterator_cf(self.db.cf(CF_LOG));
        iter.seek_to_last();
        match iter.value() {
            Some(bytes) => {
                let entry: Entry<TypeConfig> = postcard::from_bytes(bytes).map_err(io_error)?;
                Ok(Some(entry.log_id))
            }
            None => iter.status().map(|()| None).map_err(io_error),
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let mut entries = Vec::new();
        self.db
            .scan(CF_LOG, &index_key(start), |key, value| {
                let index = u64::from_be_bytes(key.try_into().map_err(io_error)?);
                if !range.contains(&index) {
                    return Ok(false);
                }
                entries.push(postcard::from_bytes(value).map_err(io_error)?);
                Ok(true)
            })
            .map_err(StorageIOError::read_logs)?;
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let last_purged_log_id = self
            .db
            .get_decoded(CF_META, PURGED_KEY)
            .map_err(StorageIOError::read_logs)?;
        let last_log_id = self
            .last_entry_id()
            .map_err(StorageIOError::read_logs)?
            .or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StorageResult<()> {
        self.db
            .put(CF_META, VOTE_KEY, vote, true)
            .map_err(StorageIOError::write_vote)?;
        Ok(())
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<NodeId>>> {
        Ok(self
            .db
            .get_decoded(CF_META, VOTE_KEY)
            .map_err(StorageIOError::read_vote)?)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> StorageResult<()> {
        // Not synced: a lost committed id is learnt again from the leader.
        self.db
            .put(CF_META, COMMITTED_KEY, &committed, false)
            .map_err(StorageIOError::write)?;
        Ok(())
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<NodeId>>> {
        let stored: Option<Option<LogId<NodeId>>> = self
            .db
            .get_decoded(CF_META, COMMITTED_KEY)
            .map_err(StorageIOError::read)?;
        Ok(stored.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = rocksdb::WriteBatch::default();
        for entry in entries {
            let bytes = postcard::to_allocvec(&entry)
                .map_err(|e| StorageIOError::write_logs(io_error(e)))?;
            batch.put_cf(self.db.cf(CF_LOG), index_key(entry.log_id.index), bytes);
        }
        // On failure the callback is dropped, which stops raft: after a
        // failed sync the log's contents are unknown.
        self.db
            .write(batch, true)
            .map_err(StorageIOError::write_logs)?;
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        let mut batch = rocksdb::WriteBatch::default();
        batch.delete_range_cf(
            self.db.cf(CF_LOG),
            index_key(log_id.index),
            index_key(u64::MAX),
        );
        self.db
            .write(batch, true)
            .map_err(StorageIOError::write_logs)?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        // The purged id first: entries at or below it are ignored from then
        // on, so a crash between the two writes leaves nothing inconsistent.
        self.db
            .put(CF_META, PURGED_KEY, &log_id, true)
            .map_err(StorageIOError::write_logs)?;
        let mut batch = rocksdb::WriteBatch::default();
        let end = index_key(log_id.index.saturating_add(1));
        batch.delete_range_cf(self.db.cf(CF_LOG), index_key(0), end);
        self.db
            .write(batch, false)
            .map_err(StorageIOError::write_logs)?;
        Ok(())
    }
}

/// The state machine's position, stored with every applied batch.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct MachinePosition {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, Node>,
    /// The seq the next descriptor gets: the header log's tail.
    next_seq: u64,
}

/// A snapshot's body: the position and the whole header log.
#[derive(Serialize, Deserialize)]
struct SnapshotBody {
    position: MachinePosition,
    headers: Vec<Vec<u8>>,
}

/// A stored snapshot: its meta and body.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, Node>,
    body: Vec<u8>,
}

/// The header log as raft's state machine: applying a batch gives its
/// descriptors the next seqs, gap-free, whatever raft indexes they came at
/// (raft's own blank and membership entries take indexes but no seqs).
pub struct HeaderMachine {
    db: Arc<RaftDb>,
    position: MachinePosition,
    tail: Arc<watch::Sender<u64>>,
    held: Arc<()>,
}

impl HeaderMachine {
    /// A count of the handles raft holds on the store (the log store, its
    /// readers, this machine, snapshot builders) plus this one: once raft
    /// is shut down and this is the only one left, raft has let go of the
    /// store, and only readers keep it open.
    pub fn raft_handles(&self) -> Arc<()> {
        self.held.clone()
    }

    /// The applied tail: the seq the next descriptor will get, as a watch.
    pub fn tail(&self) -> watch::Receiver<u64> {
        self.tail.subscribe()
    }

    /// A reader of the applied header log.
    pub fn reader(&self) -> HeaderReader {
        HeaderReader {
            db: self.db.clone(),
            tail: self.tail.clone(),
        }
    }

    fn stage_entry(
        &mut self,
        entry: Entry<TypeConfig>,
        batch: &mut rocksdb::WriteBatch,
    ) -> Assigned {
        let first = self.position.next_seq;
        self.position.last_applied = Some(entry.log_id);
        match entry.payload {
            EntryPayload::Blank => {}
            EntryPayload::Normal(HeaderBatch { descriptors }) => {
                for entry in descriptors {
                    let seq = self.position.next_seq;
                    let header = EntryHeader { seq, entry };
                    batch.put_cf(self.db.cf(CF_HEADERS), seq.to_be_bytes(), header.encode());
                    self.position.next_seq += 1;
                }
            }
            EntryPayload::Membership(membership) => {
                self.position.membership = StoredMembership::new(Some(entry.log_id), membership);
            }
        }
        Assigned {
            first,
            count: (self.position.next_seq - first) as u32,
        }
    }

    fn read_snapshot(&self) -> Result<Option<StoredSnapshot>, AnyError> {
        self.db.get_decoded(CF_MACHINE, SNAPSHOT_KEY)
    }
}

/// Reads the header log a [`HeaderMachine`] applied, from any task.
#[derive(Clone)]
pub struct HeaderReader {
    db: Arc<RaftDb>,
    tail: Arc<watch::Sender<u64>>,
}

/// A [`HeaderReader`] that does not keep the store open: long-lived
/// followers hold this between reads, so a stopped voter's store closes.
#[derive(Clone)]
pub struct WeakHeaderReader {
    db: std::sync::Weak<RaftDb>,
    tail: std::sync::Weak<watch::Sender<u64>>,
}

impl WeakHeaderReader {
    /// The reader, while the store is open.
    pub fn upgrade(&self) -> Option<HeaderReader> {
        Some(HeaderReader {
            db: self.db.upgrade()?,
            tail: self.tail.upgrade()?,
        })
    }
}

impl HeaderReader {
    /// A handle that does not keep the store open.
    pub fn downgrade(&self) -> WeakHeaderReader {
        WeakHeaderReader {
            db: Arc::downgrade(&self.db),
            tail: Arc::downgrade(&self.tail),
        }
    }

    /// The applied tail.
    pub fn tail(&self) -> u64 {
        *self.tail.borrow()
    }

    /// A watch of the applied tail.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.tail.subscribe()
    }

    /// Applied headers from `from`, at most `max`.
    pub fn read(&self, from: u64, max: usize) -> Result<Vec<EntryHeader>, String> {
        let tail = self.tail();
        let max = max.min(tail.saturating_sub(from) as usize);
        if max == 0 {
            return Ok(Vec::new());
        }
        self.db.headers(from, max).map_err(|e| e.to_string())
    }
}

impl RaftStateMachine<TypeConfig> for HeaderMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> StorageResult<(Option<LogId<NodeId>>, StoredMembership<NodeId, Node>)> {
        Ok((self.position.last_applied, self.position.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<Assigned>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = rocksdb::WriteBatch::default();
        let assigned: Vec<Assigned> = entries
            .into_iter()
            .map(|entry| self.stage_entry(entry, &mut batch))
            .collect();
        let position = postcard::to_allocvec(&self.position)
            .map_err(|e| StorageIOError::write_state_machine(io_error(e)))?;
        batch.put_cf(self.db.cf(CF_MACHINE), APPLIED_KEY, position);
        self.db
            .write(batch, false)
            .map_err(StorageIOError::write_state_machine)?;
        self.tail.send_replace(self.position.next_seq);
        Ok(assigned)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            db: self.db.clone(),
            position: self.position.clone(),
            _held: self.held.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Node>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StorageResult<()> {
        let signature = Some(meta.signature());
        let bytes = snapshot.into_inner();
        let body: SnapshotBody = postcard::from_bytes(&bytes)
            .map_err(|e| StorageIOError::read_snapshot(signature.clone(), io_error(e)))?;
        let mut batch = rocksdb::WriteBatch::default();
        let headers = self.db.cf(CF_HEADERS);
        batch.delete_range_cf(headers, 0u64.to_be_bytes(), u64::MAX.to_be_bytes());
        for (seq, header) in body.headers.iter().enumerate() {
            batch.put_cf(headers, (seq as u64).to_be_bytes(), header);
        }
        let stored = StoredSnapshot {
            meta: meta.clone(),
            body: bytes,
        };
        let position = encode(&body.position)
            .map_err(|e| StorageIOError::write_snapshot(signature.clone(), e))?;
        let stored =
            encode(&stored).map_err(|e| StorageIOError::write_snapshot(signature.clone(), e))?;
        batch.put_cf(self.db.cf(CF_MACHINE), APPLIED_KEY, position);
        batch.put_cf(self.db.cf(CF_MACHINE), SNAPSHOT_KEY, stored);
        self.db
            .write(batch, true)
            .map_err(|e| StorageIOError::write_snapshot(signature, e))?;
        self.position = body.position;
        self.tail.send_replace(self.position.next_seq);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        let stored = self
            .read_snapshot()
            .map_err(|e| StorageIOError::read_snapshot(None, e))?;
        Ok(stored.map(|stored| Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.body)),
        }))
    }
}

/// Builds a snapshot: the machine's position and its whole header log.
pub struct SnapshotBuilder {
    db: Arc<RaftDb>,
    position: MachinePosition,
    _held: Arc<()>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let next = self.position.next_seq;
        let headers = self
            .db
            .headers(0, next as usize)
            .map_err(StorageIOError::read_state_machine)?;
        let body = SnapshotBody {
            position: self.position.clone(),
            headers: headers.iter().map(EntryHeader::encode).collect(),
        };
        let body = postcard::to_allocvec(&body)
            .map_err(|e| StorageIOError::read_state_machine(io_error(e)))?;
        let last = self.position.last_applied;
        let meta = SnapshotMeta {
            last_log_id: last,
            last_membership: self.position.membership.clone(),
            snapshot_id: match last {
                Some(id) => format!("{}-{}-{next}", id.leader_id, id.index),
                None => format!("empty-{next}"),
            },
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            body,
        };
        // The log below this snapshot may be purged once it is stored: the
        // machine state it covers must be on disk first.
        self.db
            .flush()
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), e))?;
        self.db
            .put(CF_MACHINE, SNAPSHOT_KEY, &stored, true)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), e))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(stored.body)),
        })
    }
}
