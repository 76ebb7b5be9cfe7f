//! A RocksDB database whose synced writes go through the journal
//! ([`crate::journal`]) instead of RocksDB's own write-ahead log: one
//! synchronous write on a file that never grows per write, so no inode
//! write with it. The storage members' shard store (`RocksShardStore`) and the raft
//! voters' log store run on it; the joint log of `ordo dev` (`RocksLog`)
//! uses the same recovery and start-up steps with its own writer.
//!
//! A synced write is journaled, then applied with RocksDB's log off, and
//! only then acknowledged; see the journal's documentation for retirement,
//! recovery and damage. Writes that need no sync of their own (a raft
//! voter's state machine, rebuilt from the synced raft log) may still take
//! RocksDB's log through [`JournaledDb::db`]: the two logs hold different
//! keys, and each is replayed on open.
//!
//! One writer at a time: a synced write holds the journal's lock for its
//! sync. The stores on it see one write at a time per entry (a gateway
//! keeps few entries in flight), so nothing waits there long; a failed
//! write poisons the database until it is reopened, since what the journal
//! holds past a failed sync is unknown.

use crate::journal::{Journal, JournalError, MakeDurable, recover};
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};

/// The journal's subdirectory of a database's directory.
pub const JOURNAL_DIR: &str = "journal";

/// Why a journaled database could not open or write.
#[derive(Debug, thiserror::Error)]
pub enum JournaledDbError {
    /// The journal could not be read, recovered or written.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// RocksDB refused an operation.
    #[error("rocksdb: {0}")]
    Rocks(String),
    /// An earlier write failed; nothing is written until the database is
    /// reopened (and recovered).
    #[error("an earlier write failed ({0}); reopen to recover")]
    Poisoned(String),
    /// The segment size is below [`crate::limits::MIN_JOURNAL_SEGMENT_BYTES`].
    #[error(
        "journal segments of {0} bytes are below the minimum of {min}",
        min = crate::limits::MIN_JOURNAL_SEGMENT_BYTES
    )]
    SegmentTooSmall(u64),
}

/// Writes that skip RocksDB's write-ahead log: the journal has them.
pub(crate) fn unlogged() -> rocksdb::WriteOptions {
    let mut options = rocksdb::WriteOptions::default();
    options.disable_wal(true);
    options
}

/// Flushes the memtables of `families` (every family of the database, or
/// the default one when empty) and waits: everything written before is
/// then on disk without the journal. With more than one family the
/// database must flush atomically (`set_atomic_flush`), so that the
/// families never disagree about which writes are on disk.
pub(crate) fn flush_all(db: &rocksdb::DB, families: &[&str]) -> Result<(), String> {
    let mut wait = rocksdb::FlushOptions::default();
    wait.set_wait(true);
    if families.is_empty() {
        return db.flush_opt(&wait).map_err(|e| e.into_string());
    }
    let handles: Vec<_> = (families.iter())
        .map(|name| {
            db.cf_handle(name)
                .ok_or_else(|| format!("column family {name} is not open"))
        })
        .collect::<Result<_, _>>()?;
    db.flush_cfs_opt(&handles, &wait)
        .map_err(|e| e.into_string())
}

/// Applies what the journal in `dir` holds to `db` and makes it durable
/// with `flush`; returns the segments found, for [`start_journal`].
pub(crate) fn recover_into(
    dir: &Path,
    db: &rocksdb::DB,
    flush: impl Fn() -> Result<(), String>,
) -> Result<Vec<u64>, JournaledDbError> {
    std::fs::create_dir_all(dir).map_err(JournalError::io(dir))?;
    let recovered = recover(dir, |bytes| {
        let batch = rocksdb::WriteBatch::from_data(bytes);
        db.write_opt(batch, &unlogged())
            .map_err(|e| e.into_string())
    })?;
    if !recovered.segments.is_empty() {
        flush().map_err(JournaledDbError::Rocks)?;
    }
    tracing::debug!(dir = %dir.display(), records = recovered.records, "journal recovered");
    Ok(recovered.segments)
}

/// Starts the journal in `dir` afresh after [`recover_into`], retiring the
/// `old` segments; `make_durable` flushes the store when a segment retires.
pub(crate) fn start_journal(
    dir: &Path,
    old: &[u64],
    segment_bytes: u64,
    make_durable: MakeDurable,
) -> Result<Journal, JournaledDbError> {
    Ok(Journal::start(dir, old, segment_bytes, make_durable)?)
}

/// Refuses segments below [`crate::limits::MIN_JOURNAL_SEGMENT_BYTES`];
/// checked before anything is opened or recovered.
pub(crate) fn check_segment_bytes(segment_bytes: u64) -> Result<(), JournaledDbError> {
    match segment_bytes < crate::limits::MIN_JOURNAL_SEGMENT_BYTES {
        true => Err(JournaledDbError::SegmentTooSmall(segment_bytes)),
        false => Ok(()),
    }
}

/// The journal and whether a write through it failed.
struct Writer {
    journal: Journal,
    poisoned: Option<String>,
}

/// A RocksDB database with its synced writes journaled (see the module's
/// documentation).
pub struct JournaledDb {
    db: Arc<rocksdb::DB>,
    families: &'static [&'static str],
    writer: Mutex<Writer>,
}

impl std::fmt::Debug for JournaledDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournaledDb")
            .field("path", &self.db.path())
            .finish()
    }
}

impl JournaledDb {
    /// Opens `db` (already open on `path`, the caller's options and
    /// families), replays the journal in `path/journal` into it, and starts
    /// the journal with segments of `segment_bytes`. `families` are the
    /// column families a flush covers (empty: the default one).
    pub fn start(
        db: rocksdb::DB,
        families: &'static [&'static str],
        segment_bytes: u64,
    ) -> Result<Self, JournaledDbError> {
        check_segment_bytes(segment_bytes)?;
        let dir = db.path().join(JOURNAL_DIR);
        let old = recover_into(&dir, &db, || flush_all(&db, families))?;
        let db = Arc::new(db);
        let weak: Weak<rocksdb::DB> = Arc::downgrade(&db);
        let make_durable: MakeDurable = Box::new(move || match weak.upgrade() {
            Some(db) => flush_all(&db, families),
            None => Err("the database is closed".into()),
        });
        let journal = start_journal(&dir, &old, segment_bytes, make_durable)?;
        Ok(Self {
            db,
            families,
            writer: Mutex::new(Writer {
                journal,
                poisoned: None,
            }),
        })
    }

    /// The database, for reads and for writes that need no sync.
    pub fn db(&self) -> &rocksdb::DB {
        &self.db
    }

    /// Applies `batch` without a sync and without RocksDB's log: it is
    /// lost in a crash unless a flush ([`JournaledDb::flush`], a segment's
    /// retirement, or RocksDB's own when a memtable fills) wrote it first.
    /// For state rebuilt from synced writes after a crash.
    pub fn write_unlogged(&self, batch: rocksdb::WriteBatch) -> Result<(), JournaledDbError> {
        (self.db.write_opt(batch, &unlogged()))
            .map_err(|e| JournaledDbError::Rocks(e.into_string()))
    }

    /// Writes every memtable to disk and waits: everything applied before,
    /// unlogged writes included, is then durable.
    pub fn flush(&self) -> Result<(), JournaledDbError> {
        flush_all(&self.db, self.families).map_err(JournaledDbError::Rocks)
    }

    /// Journals `batch` (synced), then applies it: durable once this
    /// returns. A failure poisons the database until it is reopened.
    pub fn write_synced(&self, batch: rocksdb::WriteBatch) -> Result<(), JournaledDbError> {
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(reason) = &writer.poisoned {
            return Err(JournaledDbError::Poisoned(reason.clone()));
        }
        let written = match writer.journal.append(batch.data()) {
            Ok(()) => (self.db.write_opt(batch, &unlogged())).map_err(|e| e.into_string()),
            Err(e) => Err(e.to_string()),
        };
        written.map_err(|reason| {
            tracing::error!(error = %reason, "journaled write failed; refusing writes until reopened");
            writer.poisoned = Some(reason.clone());
            JournaledDbError::Poisoned(reason)
        })
    }
}

impl Drop for JournaledDb {
    fn drop(&mut self) {
        let writer = self.writer.get_mut().unwrap_or_else(|p| p.into_inner());
        writer.journal.close();
    }
}
