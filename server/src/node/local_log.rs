//! The log of a node that keeps it on its own disk (`ordo dev`, `ordo
//! replay`).
//!
//! New data directories hold one RocksDB, `DATA_DIR/log-db`, for shards
//! and headers together ([`ordo_log::RocksLog`]): an entry costs one sync.
//! Directories made before that hold a header file (`DATA_DIR/log`) and a
//! shard store (`DATA_DIR/shards`) and keep them: a node opens what it
//! finds, so no committed entry is ever moved or rewritten, and such a node
//! pays a second sync per entry until its data is replayed into a new
//! directory.

use anyhow::Context;
use ordo_log::{
    CodingParams, EntryReader, EntryWriter, LocalSequencer, LocalSequencerOptions, RocksLog,
    RocksLogOptions, RocksShardStore, Sequencer, ShardStore,
};
use std::path::Path;
use std::sync::Arc;

/// Directory of the joint log inside a data directory.
pub const JOINT_DIR: &str = "log-db";
/// Directory of the header file in a data directory made before the joint log.
pub const HEADER_FILE_DIR: &str = "log";
/// Directory of the shard store in a data directory made before the joint log.
pub const SHARD_STORE_DIR: &str = "shards";

/// A node's log on its own disk, and the payloads its writers hand its
/// readers in memory. Cheap to clone.
#[derive(Clone)]
pub struct LocalLog {
    files: LogFiles,
    recent: Arc<ordo_log::RecentPayloads>,
}

/// Where a node's log lives.
#[derive(Clone)]
enum LogFiles {
    /// Shards and headers in one RocksDB, one sync per entry.
    Joint(Arc<RocksLog>),
    /// A header file and a shard store, as data directories made before
    /// the joint log have them.
    Separate {
        /// Orders headers.
        sequencer: Arc<LocalSequencer>,
        /// Holds shards.
        shards: Arc<RocksShardStore>,
    },
}

impl LocalLog {
    /// Opens the log in `data_dir` (creating the directory and a joint log
    /// if there is none). Fails if another process holds it.
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating data directory {}", data_dir.display()))?;
        let locked = || {
            format!(
                "opening the log in {} (is a node running on it?)",
                data_dir.display()
            )
        };
        if data_dir.join(HEADER_FILE_DIR).exists() {
            let sequencer = LocalSequencer::open(
                data_dir.join(HEADER_FILE_DIR),
                LocalSequencerOptions::default(),
            )
            .with_context(locked)?;
            let shards = RocksShardStore::open(data_dir.join(SHARD_STORE_DIR))
                .context("opening the shard store")?;
            tracing::info!(
                "log in the two-file layout of an older data directory (two syncs per entry)"
            );
            let files = LogFiles::Separate {
                sequencer: Arc::new(sequencer),
                shards: Arc::new(shards),
            };
            return Ok(Self::over(files));
        }
        let log = RocksLog::open(data_dir.join(JOINT_DIR), RocksLogOptions::default())
            .with_context(locked)?;
        Ok(Self::over(LogFiles::Joint(Arc::new(log))))
    }

    fn over(files: LogFiles) -> Self {
        Self {
            files,
            recent: Arc::default(),
        }
    }

    /// The log's sequencer.
    pub fn sequencer(&self) -> Arc<dyn Sequencer> {
        match &self.files {
            LogFiles::Joint(log) => log.clone(),
            LogFiles::Separate { sequencer, .. } => sequencer.clone(),
        }
    }

    /// The log's shard store.
    pub fn shards(&self) -> Arc<dyn ShardStore> {
        match &self.files {
            LogFiles::Joint(log) => log.clone(),
            LogFiles::Separate { shards, .. } => shards.clone(),
        }
    }

    /// A writer that codes, stores and orders entries with `coding`.
    pub fn writer(&self, coding: CodingParams) -> Result<EntryWriter, ordo_log::LogError> {
        let writer = match &self.files {
            LogFiles::Joint(log) => EntryWriter::joint(log.clone(), coding),
            LogFiles::Separate { .. } => EntryWriter::new(self.shards(), self.sequencer(), coding),
        };
        Ok(writer?.remembering(self.recent.clone()))
    }

    /// A reader of committed entries, verified.
    pub fn reader(&self) -> EntryReader {
        EntryReader::new(self.shards(), self.sequencer()).remembering(self.recent.clone())
    }

    /// How long the syncs that make entries durable took, in microseconds.
    pub fn fsync_latency(&self) -> ordo_log::stats::HistogramSnapshot {
        match &self.files {
            LogFiles::Joint(log) => log.fsync_latency(),
            LogFiles::Separate { sequencer, .. } => sequencer.fsync_latency(),
        }
    }

    /// Stops taking appends and lets the writer finish.
    pub fn close(&self) {
        match &self.files {
            LogFiles::Joint(log) => log.close(),
            LogFiles::Separate { sequencer, .. } => sequencer.close(),
        }
    }
}
