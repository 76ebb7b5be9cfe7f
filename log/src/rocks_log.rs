//! A whole log on one RocksDB (feature `rocksdb`): the shard store and the
//! sequencer of a single machine, sharing one journal so that an entry's
//! shards and its header cost one sync together ([`JointLog`]).
//!
//! # Layout
//!
//! In the log's directory, a database with four column families:
//! - `headers`: key `seq` (big-endian u64), value the encoded
//!   [`EntryHeader`]. Seqs are gap-free from 0, so the tail is the last key
//!   plus one.
//! - `seq_shards`: the shards appended with their header, key `seq ||
//!   index` (big-endian), value as in [`crate::RocksShardStore`];
//! - `shard_seqs`: key `commitment`, value the seq (big-endian u64) whose
//!   shards `seq_shards` holds, for finding them by commitment;
//! - `shards`: shards written outside an append (a [`ShardStore`] put, by
//!   repair or a test; and every shard a log written before `seq_shards`
//!   existed holds), key `commitment || index` (big-endian).
//!
//! Shards are keyed by seq when they can be because seqs only grow: every
//! flush of `seq_shards` then holds keys above all earlier ones, and
//! RocksDB moves such files down the levels without rewriting them. Keyed
//! by commitment, a random key, each shard was rewritten by compactions
//! once or more after its flush, a tenth of a pinned server's CPU under
//! sustained puts (docs/BENCHMARKS.md, "Shards keyed by seq"). A shard is
//! looked for in `seq_shards` first, then in `shards`; a put outside an
//! append removes the `seq_shards` copy it replaces, so the newest write
//! is always the one found.
//!
//! and in its `journal/` subdirectory the write-ahead journal
//! (`crate::journal`): every write (a group, or a shard put or delete) is
//! a `WriteBatch` whose bytes are synced to the journal first and then
//! applied to the database without RocksDB's own write-ahead log. Flushes
//! are atomic across the column families, so the database on disk never
//! holds a header without its shards; the journal holds everything since
//! the last flush, and opening the log applies it again.
//!
//! # Group commit
//!
//! Appends go through one writer thread, as in [`crate::LocalSequencer`]:
//! it takes what is queued (up to [`MAX_GROUP_COMMIT_ENTRIES`] entries and
//! [`MAX_GROUP_COMMIT_BYTES`] of shards), gives the entries consecutive
//! seqs, and writes their shards and headers in one batch, one journal
//! record: after a crash either all of it is there or none of it is, so a
//! header is never durable without its shards and the torn record of an
//! unacknowledged group is dropped on open. Replies go out after the sync.
//!
//! A caller that owns a thread it may block (the node's batcher) can
//! instead write its entry there ([`JointLog::append_with_shards_blocking`]):
//! the same group write, for a group of one, under the same lock as the
//! writer thread's, so seqs stay gap-free and in order. It saves the two
//! thread hand-offs of a queued append (to the writer and back), each a
//! wake-up that costs tens of microseconds on a virtual machine.
//!
//! # Failure
//!
//! A failed write poisons the log until it is reopened, as every sequencer
//! must: after a failed sync the state of the disk is unknown.

use crate::header::EntryDescriptor;
use crate::joint::JointLog;
use crate::journal::{Journal, JournalError, MakeDurable};
use crate::journaled::{self, JournaledDbError, unlogged};
use crate::limits::{
    DEFAULT_JOURNAL_SEGMENT_BYTES, MAX_GROUP_COMMIT_BYTES, MAX_GROUP_COMMIT_ENTRIES, MAX_READ_BATCH,
};
use crate::sequencer::writer_thread::{WriterThread, wait_beyond};
use crate::sequencer::{Sequencer, SequencerError, WriteFault};
use crate::shard_store::{ShardStore, StoreError, decode_value, encode_value, shard_key};
use crate::{EntryHeader, Hash, Shard};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, oneshot, watch};

const SHARDS: &str = "shards";
const HEADERS: &str = "headers";
const SEQ_SHARDS: &str = "seq_shards";
const SHARD_SEQS: &str = "shard_seqs";
/// Every column family, for atomic flushes.
const FAMILIES: [&str; 4] = [HEADERS, SEQ_SHARDS, SHARD_SEQS, SHARDS];

/// Key of a shard appended with its header: its entry's seq, then the
/// index, big-endian, so that appends write keys in ascending order.
fn seq_shard_key(seq: u64, index: u16) -> [u8; 10] {
    let mut key = [0u8; 10];
    key[..8].copy_from_slice(&seq.to_be_bytes());
    key[8..].copy_from_slice(&index.to_be_bytes());
    key
}

/// The journal's subdirectory of the log's directory.
const JOURNAL_DIR: &str = "journal";

/// Options of a [`RocksLog`].
#[derive(Debug, Clone)]
pub struct RocksLogOptions {
    /// A switch that fails the next group write, for the conformance
    /// suite's failure checks; `None` on real nodes.
    pub write_fault: Option<Arc<WriteFault>>,
    /// Bytes of each journal segment, at least [`crate::limits::MIN_JOURNAL_SEGMENT_BYTES`];
    /// [`DEFAULT_JOURNAL_SEGMENT_BYTES`] unless a test wants rotations.
    pub journal_segment_bytes: u64,
}

impl Default for RocksLogOptions {
    fn default() -> Self {
        Self {
            write_fault: None,
            journal_segment_bytes: DEFAULT_JOURNAL_SEGMENT_BYTES,
        }
    }
}

struct Request {
    entry: EntryDescriptor,
    shards: Vec<Shard>,
    reply: oneshot::Sender<Result<EntryHeader, SequencerError>>,
}

impl Request {
    fn shard_bytes(&self) -> usize {
        self.shards.iter().map(|s| s.bytes.len()).sum()
    }
}

/// What the writer thread and readers share.
struct Shared {
    db: rocksdb::DB,
    tail: watch::Sender<u64>,
    fsync_micros: crate::stats::Histogram,
}

/// The log of one machine on one RocksDB: see the module documentation.
pub struct RocksLog {
    shared: Arc<Shared>,
    /// The writing state, locked by whoever writes a group.
    state: Arc<Mutex<Writer>>,
    writer: WriterThread<Request>,
    path: PathBuf,
}

impl std::fmt::Debug for RocksLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksLog")
            .field("path", &self.path)
            .field("tail", &Sequencer::tail(self))
            .finish()
    }
}

fn io(e: rocksdb::Error) -> SequencerError {
    SequencerError::Io(e.into_string())
}

fn backend(e: rocksdb::Error) -> StoreError {
    StoreError::Backend(e.into_string())
}

fn journal_error(e: JournalError) -> SequencerError {
    match e {
        JournalError::Corrupt {
            path,
            offset,
            reason,
        } => SequencerError::Corrupt {
            offset,
            reason: format!("journal segment {}: {reason}", path.display()),
        },
        other => SequencerError::Io(other.to_string()),
    }
}

fn open_db(path: &Path) -> Result<rocksdb::DB, SequencerError> {
    let mut options = rocksdb::Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    // Writes skip RocksDB's log, so what is on disk is what flushes wrote:
    // flushing every family at once keeps a header and its shards together.
    options.set_atomic_flush(true);
    // Logs written before the journal existed are still read on open; in
    // them a crash can leave only the last batch incomplete, and anything
    // damaged before it is an error, never silently dropped.
    options.set_wal_recovery_mode(rocksdb::DBRecoveryMode::TolerateCorruptedTailRecords);
    let mut seq_shards = rocksdb::Options::default();
    seq_shards.set_compression_type(crate::rocks_shards::SHARD_COMPRESSION);
    let mut shard_seqs = rocksdb::Options::default();
    let mut table = rocksdb::BlockBasedOptions::default();
    // Found by point reads of random commitments.
    table.set_bloom_filter(10.0, false);
    shard_seqs.set_block_based_table_factory(&table);
    let families = [
        rocksdb::ColumnFamilyDescriptor::new(HEADERS, rocksdb::Options::default()),
        rocksdb::ColumnFamilyDescriptor::new(SEQ_SHARDS, seq_shards),
        rocksdb::ColumnFamilyDescriptor::new(SHARD_SEQS, shard_seqs),
        rocksdb::ColumnFamilyDescriptor::new(SHARDS, crate::rocks_shards::shard_options()),
    ];
    rocksdb::DB::open_cf_descriptors(&options, path, families).map_err(|e| {
        let message = e.into_string();
        if message.contains("lock") {
            SequencerError::Locked(path.display().to_string())
        } else {
            SequencerError::Io(message)
        }
    })
}

impl Shared {
    fn family(&self, name: &str) -> &rocksdb::ColumnFamily {
        family(&self.db, name)
    }

    /// The seq whose append wrote `commitment`'s shards, if one did.
    fn seq_with_shards(&self, commitment: &Hash) -> Result<Option<u64>, StoreError> {
        let family = self.family(SHARD_SEQS);
        let Some(value) = self.db.get_pinned_cf(family, commitment).map_err(backend)? else {
            return Ok(None);
        };
        let bytes: [u8; 8] = value[..].try_into().map_err(|_| {
            StoreError::Backend(format!(
                "the seq of entry {} is stored in {} bytes",
                crate::hex(commitment),
                value.len()
            ))
        })?;
        Ok(Some(u64::from_be_bytes(bytes)))
    }

    /// The stored bytes of a shard: the copy its append wrote, else one
    /// written outside an append.
    fn shard_value(
        &self,
        commitment: &Hash,
        index: u16,
    ) -> Result<Option<rocksdb::DBPinnableSlice<'_>>, StoreError> {
        if let Some(seq) = self.seq_with_shards(commitment)? {
            let key = seq_shard_key(seq, index);
            let value = self.db.get_pinned_cf(self.family(SEQ_SHARDS), key);
            if let Some(value) = value.map_err(backend)? {
                return Ok(Some(value));
            }
        }
        let key = shard_key(commitment, index);
        self.db
            .get_pinned_cf(self.family(SHARDS), key)
            .map_err(backend)
    }

    /// A batch that removes the appended copy of each of `indices` of
    /// `commitment`, to which a write outside an append adds its change.
    fn unplacing(
        &self,
        commitment: &Hash,
        indices: impl Iterator<Item = u16>,
    ) -> Result<rocksdb::WriteBatch, StoreError> {
        let mut batch = rocksdb::WriteBatch::default();
        if let Some(seq) = self.seq_with_shards(commitment)? {
            let family = self.family(SEQ_SHARDS);
            for index in indices {
                batch.delete_cf(family, seq_shard_key(seq, index));
            }
        }
        Ok(batch)
    }

    /// Indices of `commitment`'s shards in the family `name`, whose keys
    /// are `prefix || index`.
    fn indices_under(&self, name: &str, prefix: &[u8]) -> Result<Vec<u16>, StoreError> {
        let mut start = prefix.to_vec();
        start.extend_from_slice(&0u16.to_be_bytes());
        let mode = rocksdb::IteratorMode::From(&start, rocksdb::Direction::Forward);
        let mut indices = Vec::new();
        for item in self.db.iterator_cf(self.family(name), mode) {
            let (key, _) = item.map_err(backend)?;
            if key.len() != prefix.len() + 2 || !key.starts_with(prefix) {
                break;
            }
            indices.push(u16::from_be_bytes([
                key[prefix.len()],
                key[prefix.len() + 1],
            ]));
        }
        Ok(indices)
    }

    /// The seq after the last stored header.
    fn recover_tail(&self) -> Result<u64, SequencerError> {
        let mut last = self
            .db
            .iterator_cf(self.family(HEADERS), rocksdb::IteratorMode::End);
        let Some(item) = last.next() else {
            return Ok(0);
        };
        let (key, value) = item.map_err(io)?;
        let seq = seq_of_key(&key)?;
        let header = decode_header(&value, seq)?;
        Ok(header.seq + 1)
    }
}

fn family<'a>(db: &'a rocksdb::DB, name: &str) -> &'a rocksdb::ColumnFamily {
    // Both families are created on open; a missing one is a bug here.
    db.cf_handle(name)
        .unwrap_or_else(|| panic!("column family {name} is opened with the database"))
}

/// Flushes every family's memtables (atomically, see `open_db`) and waits:
/// everything written before is then on disk without the journal.
fn flush_all(db: &rocksdb::DB) -> Result<(), String> {
    journaled::flush_all(db, &FAMILIES)
}

fn journaled_error(e: JournaledDbError) -> SequencerError {
    match e {
        JournaledDbError::Journal(e) => journal_error(e),
        other => SequencerError::Io(other.to_string()),
    }
}

/// Applies what the journal in `dir` holds to `db` and makes it durable;
/// returns the segments found, for [`start_journal`] to remove.
fn recover_journal(dir: &Path, db: &rocksdb::DB) -> Result<Vec<u64>, SequencerError> {
    journaled::recover_into(dir, db, || flush_all(db)).map_err(journaled_error)
}

/// Starts the journal afresh after [`recover_journal`]; it retires
/// segments by flushing the database of `shared`.
fn start_journal(
    dir: &Path,
    old: &[u64],
    segment_bytes: u64,
    shared: std::sync::Weak<Shared>,
) -> Result<Journal, SequencerError> {
    let make_durable: MakeDurable = Box::new(move || match shared.upgrade() {
        Some(shared) => flush_all(&shared.db),
        None => Err("the log is closed".into()),
    });
    journaled::start_journal(dir, old, segment_bytes, make_durable).map_err(journaled_error)
}

fn seq_of_key(key: &[u8]) -> Result<u64, SequencerError> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| SequencerError::CorruptHeader {
        seq: 0,
        reason: format!("header key of {} bytes", key.len()),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

/// A header absent although its seq is below the tail.
fn missing_header(seq: u64) -> SequencerError {
    SequencerError::CorruptHeader {
        seq,
        reason: "header missing below the tail".into(),
    }
}

fn decode_header(value: &[u8], seq: u64) -> Result<EntryHeader, SequencerError> {
    let corrupt = |reason: String| SequencerError::CorruptHeader { seq, reason };
    let header = EntryHeader::decode(value).map_err(|e| corrupt(e.to_string()))?;
    if header.seq != seq {
        return Err(corrupt(format!("holds seq {} at {seq}", header.seq)));
    }
    Ok(header)
}

impl RocksLog {
    /// Opens (creating if needed) the log in directory `path` and starts its
    /// writer thread. Fails with `Locked` if another process holds it.
    pub fn open(path: impl AsRef<Path>, options: RocksLogOptions) -> Result<Self, SequencerError> {
        let path = path.as_ref().to_path_buf();
        journaled::check_segment_bytes(options.journal_segment_bytes).map_err(journaled_error)?;
        let db = open_db(&path)?;
        let journal_dir = path.join(JOURNAL_DIR);
        let old_segments = recover_journal(&journal_dir, &db)?;
        let shared = Shared {
            db,
            tail: watch::Sender::new(0),
            fsync_micros: crate::stats::Histogram::new(crate::stats::LATENCY_BOUNDS_MICROS),
        };
        let tail = shared.recover_tail()?;
        shared.tail.send_replace(tail);
        let shared = Arc::new(shared);
        let journal = start_journal(
            &journal_dir,
            &old_segments,
            options.journal_segment_bytes,
            Arc::downgrade(&shared),
        )?;
        let state = Arc::new(Mutex::new(Writer {
            shared: shared.clone(),
            journal,
            next_seq: tail,
            poisoned: None,
            closed: false,
            write_fault: options.write_fault,
        }));
        let thread_state = state.clone();
        let writer = WriterThread::spawn("ordo-log-writer", move |requests| {
            run_writer(&thread_state, requests)
        })?;
        Ok(Self {
            shared,
            state,
            writer,
            path,
        })
    }

    /// How long the synced group writes took, in microseconds.
    pub fn fsync_latency(&self) -> crate::stats::HistogramSnapshot {
        self.shared.fsync_micros.snapshot()
    }

    /// Stops taking appends and waits for the writer to finish what it has.
    /// Appends after this fail with `Closed`; the database itself closes
    /// when the last handle is dropped.
    pub fn close(&self) {
        self.writer.close();
        // After the thread has written what was queued: from here on a
        // blocking append is refused like a queued one, and the journal's
        // keeper (which flushes the database) has stopped.
        let mut writer = lock(&self.state);
        writer.closed = true;
        writer.journal.close();
    }

    async fn enqueue(
        &self,
        entry: EntryDescriptor,
        shards: Vec<Shard>,
    ) -> Result<EntryHeader, SequencerError> {
        entry.validate()?;
        let (reply, answer) = oneshot::channel();
        let request = Request {
            entry,
            shards,
            reply,
        };
        self.writer.send(request).await?;
        answer.await.map_err(|_| SequencerError::Closed)?
    }

    /// The header of `seq`, below the tail, by a point read: a follower at
    /// the tail asks for one header at a time, and an iterator (built over
    /// every level's files) cost a lone commit more than the read itself.
    fn read_header(&self, seq: u64) -> Result<EntryHeader, SequencerError> {
        let family = self.shared.family(HEADERS);
        let value = self.shared.db.get_pinned_cf(family, seq.to_be_bytes());
        match value.map_err(io)? {
            Some(value) => decode_header(&value, seq),
            None => Err(missing_header(seq)),
        }
    }

    fn read_headers(&self, from: u64, max: usize) -> Result<Vec<EntryHeader>, SequencerError> {
        let tail = *self.shared.tail.borrow();
        let count = tail
            .saturating_sub(from)
            .min(max.min(MAX_READ_BATCH) as u64);
        if count == 0 {
            return Ok(Vec::new());
        }
        if count == 1 {
            return self.read_header(from).map(|header| vec![header]);
        }
        let start = from.to_be_bytes();
        let mode = rocksdb::IteratorMode::From(&start, rocksdb::Direction::Forward);
        let mut headers = Vec::with_capacity(count as usize);
        let family = self.shared.family(HEADERS);
        for (item, seq) in self
            .shared
            .db
            .iterator_cf(family, mode)
            .zip(from..from + count)
        {
            let (key, value) = item.map_err(io)?;
            if seq_of_key(&key)? != seq {
                return Err(missing_header(seq));
            }
            headers.push(decode_header(&value, seq)?);
        }
        if headers.len() as u64 != count {
            return Err(missing_header(from + headers.len() as u64));
        }
        Ok(headers)
    }
}

impl Drop for RocksLog {
    fn drop(&mut self) {
        self.close();
    }
}

#[async_trait::async_trait]
impl Sequencer for RocksLog {
    async fn append(&self, entry: EntryDescriptor) -> Result<EntryHeader, SequencerError> {
        self.enqueue(entry, Vec::new()).await
    }

    async fn read(&self, from: u64, max: usize) -> Result<Vec<EntryHeader>, SequencerError> {
        // At most MAX_READ_BATCH small headers, normally from the block
        // cache: cheap enough to read in place.
        self.read_headers(from, max)
    }

    fn tail(&self) -> u64 {
        *self.shared.tail.borrow()
    }

    async fn wait_beyond(&self, seq: u64) -> Result<u64, SequencerError> {
        wait_beyond(&self.shared.tail, seq).await
    }
}

#[async_trait::async_trait]
impl JointLog for RocksLog {
    async fn append_with_shards(
        &self,
        entry: EntryDescriptor,
        shards: Vec<Shard>,
    ) -> Result<EntryHeader, SequencerError> {
        self.enqueue(entry, shards).await
    }

    fn append_with_shards_blocking(
        &self,
        entry: EntryDescriptor,
        shards: Vec<Shard>,
    ) -> Result<EntryHeader, SequencerError> {
        entry.validate()?;
        let mut headers = lock(&self.state).write_group(&[(&entry, &shards)])?;
        // A group of one has one header.
        headers.pop().ok_or(SequencerError::Closed)
    }
}

impl ShardStore for RocksLog {
    fn put(&self, commitment: &Hash, shard: &Shard) -> Result<(), StoreError> {
        self.put_entry(commitment, std::slice::from_ref(shard))
    }

    fn put_entry(&self, commitment: &Hash, shards: &[Shard]) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        // Under the writer's lock, so no append moves the shards between
        // the read of their seq and this write.
        let mut batch = self
            .shared
            .unplacing(commitment, shards.iter().map(|s| s.index))?;
        let family = self.shared.family(SHARDS);
        for shard in shards {
            batch.put_cf(
                family,
                shard_key(commitment, shard.index),
                encode_value(shard),
            );
        }
        state.write_unsequenced(batch)
    }

    fn get(&self, commitment: &Hash, index: u16) -> Result<Option<Shard>, StoreError> {
        let value = self.shared.shard_value(commitment, index)?;
        value
            .map(|v| decode_value(commitment, index, &v))
            .transpose()
    }

    fn has(&self, commitment: &Hash, index: u16) -> Result<bool, StoreError> {
        Ok(self.shared.shard_value(commitment, index)?.is_some())
    }

    fn delete(&self, commitment: &Hash, index: u16) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        let mut batch = self.shared.unplacing(commitment, std::iter::once(index))?;
        batch.delete_cf(self.shared.family(SHARDS), shard_key(commitment, index));
        state.write_unsequenced(batch)
    }

    fn list(&self, commitment: &Hash) -> Result<Vec<u16>, StoreError> {
        let mut indices = self.shared.indices_under(SHARDS, commitment)?;
        if let Some(seq) = self.shared.seq_with_shards(commitment)? {
            indices.extend(self.shared.indices_under(SEQ_SHARDS, &seq.to_be_bytes())?);
            indices.sort_unstable();
            indices.dedup();
        }
        Ok(indices)
    }
}

/// What writing needs, locked by whoever writes a group: the writer thread
/// for queued appends, or a caller appending on its own thread.
struct Writer {
    shared: Arc<Shared>,
    journal: Journal,
    next_seq: u64,
    poisoned: Option<String>,
    /// Set once the log is closed (after the writer thread has finished).
    closed: bool,
    write_fault: Option<Arc<WriteFault>>,
}

fn lock(state: &Mutex<Writer>) -> MutexGuard<'_, Writer> {
    // A panic while holding the lock cannot leave a half-made group
    // behind (a batch is atomic), so the state is still whole.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// The writer thread: takes what is queued, in groups, and writes each.
fn run_writer(state: &Mutex<Writer>, mut requests: mpsc::Receiver<Request>) {
    let mut carried = None;
    while let Some(first) = carried.take().or_else(|| requests.blocking_recv()) {
        let mut bytes = first.shard_bytes();
        let mut group = vec![first];
        while group.len() < MAX_GROUP_COMMIT_ENTRIES {
            let Ok(next) = requests.try_recv() else { break };
            if bytes + next.shard_bytes() > MAX_GROUP_COMMIT_BYTES {
                carried = Some(next);
                break;
            }
            bytes += next.shard_bytes();
            group.push(next);
        }
        let entries: Vec<(&EntryDescriptor, &[Shard])> = group
            .iter()
            .map(|request| (&request.entry, request.shards.as_slice()))
            .collect();
        let written = lock(state).write_group(&entries);
        reply(group, written);
    }
}

/// Sends each request of a group its header, or the group's error.
fn reply(group: Vec<Request>, written: Result<Vec<EntryHeader>, SequencerError>) {
    match written {
        Ok(headers) => {
            for (request, header) in group.into_iter().zip(headers) {
                let _ = request.reply.send(Ok(header));
            }
        }
        Err(error) => {
            for request in group {
                let _ = request.reply.send(Err(error.clone()));
            }
        }
    }
}

impl Writer {
    /// Gives `group` the next seqs and makes its shards and headers durable
    /// in one synced batch; then moves the tail.
    fn write_group(
        &mut self,
        group: &[(&EntryDescriptor, &[Shard])],
    ) -> Result<Vec<EntryHeader>, SequencerError> {
        let headers: Vec<EntryHeader> = group
            .iter()
            .zip(self.next_seq..)
            .map(|((entry, _), seq)| EntryHeader {
                seq,
                entry: (*entry).clone(),
            })
            .collect();
        self.guarded(|writer| writer.write(group, &headers))?;
        self.next_seq += headers.len() as u64;
        self.shared.tail.send_replace(self.next_seq);
        Ok(headers)
    }

    fn write(
        &mut self,
        group: &[(&EntryDescriptor, &[Shard])],
        headers: &[EntryHeader],
    ) -> Result<(), String> {
        if self.write_fault.as_ref().is_some_and(|f| f.take()) {
            return Err("write failed (injected)".into());
        }
        // Looked up once per group, not once per shard.
        let shard_seqs = self.shared.family(SHARD_SEQS);
        let seq_shards = self.shared.family(SEQ_SHARDS);
        let header_family = self.shared.family(HEADERS);
        let mut batch = rocksdb::WriteBatch::default();
        for ((entry, entry_shards), header) in group.iter().zip(headers) {
            let seq = header.seq.to_be_bytes();
            if !entry_shards.is_empty() {
                batch.put_cf(shard_seqs, entry.commitment, seq);
            }
            for shard in entry_shards.iter() {
                let key = seq_shard_key(header.seq, shard.index);
                batch.put_cf(seq_shards, key, encode_value(shard));
            }
            batch.put_cf(header_family, seq, header.encode());
        }
        self.write_batch(batch)
    }

    /// Syncs `batch` to the journal, then applies it to the database.
    fn write_batch(&mut self, batch: rocksdb::WriteBatch) -> Result<(), String> {
        let started = std::time::Instant::now();
        self.journal
            .append(batch.data())
            .map_err(|e| e.to_string())?;
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.shared.fsync_micros.observe(micros);
        self.shared
            .db
            .write_opt(batch, &unlogged())
            .map_err(|e| e.into_string())
    }

    /// A shard store write outside any group: through the journal like a
    /// group, and refused once the log is poisoned or closed.
    fn write_unsequenced(&mut self, batch: rocksdb::WriteBatch) -> Result<(), StoreError> {
        self.guarded(|writer| writer.write_batch(batch))
            .map_err(|e| StoreError::Backend(e.to_string()))
    }

    /// Runs `write` unless the log is closed or poisoned; a failed write
    /// poisons it until it is reopened.
    fn guarded(
        &mut self,
        write: impl FnOnce(&mut Self) -> Result<(), String>,
    ) -> Result<(), SequencerError> {
        if self.closed {
            return Err(SequencerError::Closed);
        }
        if let Some(reason) = &self.poisoned {
            return Err(SequencerError::Poisoned(reason.clone()));
        }
        write(self).map_err(|reason| {
            tracing::error!(error = %reason, "log write failed; refusing writes until reopened");
            self.poisoned = Some(reason.clone());
            SequencerError::Poisoned(reason)
        })
    }
}
