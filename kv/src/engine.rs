//! The storage seam: an ordered key-value engine with columns and atomic batches.
//!
//! Everything MVCC-specific lives above this trait, in [`crate::mvcc`], and is
//! written once. Below it sit [`MemEngine`] (tests, and the model that
//! RocksDB is checked against) and `RocksEngine` (`crate::rocks`, feature
//! `rocksdb`). Neither the trait nor its
//! callers name a RocksDB type.

use crate::retention::{Collected, Collector};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The separate keyspaces of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Column {
    /// Versioned user values: `keys::encode_versioned(stream, key, version)`.
    Data,
    /// Versioned access-control facts, encoded like data.
    Acl,
    /// What each commit version wrote: the change feed and the conflict window.
    Changes,
    /// Transaction outcomes by (sender, id).
    Outcomes,
    /// Small singletons: applied position, digest, format version.
    Meta,
    /// Each versioned delete, remembered until the horizon passes it and
    /// the versions it shadows are swept (see [`crate::retention`]).
    Deletes,
    /// Each data key's newest version up to a covered version, for scans
    /// that skip history (see [`crate::heads`]).
    Heads,
}

impl Column {
    /// Every column, in a fixed order.
    pub const ALL: [Column; 7] = [
        Column::Data,
        Column::Acl,
        Column::Changes,
        Column::Outcomes,
        Column::Meta,
        Column::Deletes,
        Column::Heads,
    ];

    /// Whether every key of the column is a versioned key
    /// (`keys::encode_versioned`).
    pub fn is_versioned(self) -> bool {
        matches!(self, Column::Data | Column::Acl)
    }

    /// What collection removes from the column (see [`crate::retention`]):
    /// shadowed versions from the versioned columns, old records from the
    /// change log, tombstones the horizon passed from the heads, nothing
    /// from the rest.
    pub fn collected(self) -> Collected {
        match self {
            Column::Data | Column::Acl => Collected::Versions,
            Column::Changes => Collected::ChangeRecords,
            Column::Heads => Collected::HeadTombstones,
            Column::Outcomes | Column::Meta | Column::Deletes => Collected::Never,
        }
    }

    /// The column's name on disk.
    pub fn name(self) -> &'static str {
        match self {
            Column::Data => "data",
            Column::Acl => "acl",
            Column::Changes => "changes",
            Column::Outcomes => "outcomes",
            Column::Meta => "meta",
            Column::Deletes => "deletes",
            Column::Heads => "heads",
        }
    }
}

/// Why the engine failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The storage engine reported an error (I/O, corruption it detected, ...).
    #[error("storage engine: {0}")]
    Backend(String),
}

/// One change in a [`WriteBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOp {
    /// Set `key` to `value` in the column.
    Put(Column, Vec<u8>, Vec<u8>),
    /// Remove `key` from the column.
    Delete(Column, Vec<u8>),
    /// Remove every key `from <= key < to` from the column.
    DeleteRange(Column, Vec<u8>, Vec<u8>),
}

impl BatchOp {
    /// The (column, key) the change touches.
    pub fn order_key(&self) -> (Column, &[u8]) {
        match self {
            BatchOp::Put(c, k, _) | BatchOp::Delete(c, k) | BatchOp::DeleteRange(c, k, _) => {
                (*c, k)
            }
        }
    }
}

/// Changes applied all together or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    /// The changes, applied in order.
    pub ops: Vec<BatchOp>,
}

impl WriteBatch {
    /// An empty batch with room for `ops` changes.
    pub fn with_capacity(ops: usize) -> Self {
        Self {
            ops: Vec::with_capacity(ops),
        }
    }

    /// Adds a put.
    pub fn put(&mut self, column: Column, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push(BatchOp::Put(column, key, value));
    }

    /// Adds a delete.
    pub fn delete(&mut self, column: Column, key: Vec<u8>) {
        self.ops.push(BatchOp::Delete(column, key));
    }

    /// Adds the removal of every key `from <= key < to`.
    pub fn delete_range(&mut self, column: Column, from: Vec<u8>, to: Vec<u8>) {
        self.ops.push(BatchOp::DeleteRange(column, from, to));
    }
}

/// What a seeking scan's visitor wants after an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The next entry.
    Continue,
    /// Nothing more.
    Stop,
    /// The first entry at or after this key, which sorts after the entry
    /// just visited.
    Seek(Vec<u8>),
}

/// One stored entry: its key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// An ordered key-value engine: byte keys sorted bytewise, per column.
pub trait Engine: Send + Sync {
    /// The value at `key`, if any.
    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError>;

    /// The values at each of `keys`, in the same order.
    ///
    /// One call for many point reads lets an engine batch the work (RocksDB
    /// probes each file's filter for all keys at once); the default reads
    /// them one by one.
    fn get_many(
        &self,
        column: Column,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<Vec<u8>>>, EngineError> {
        keys.iter().map(|key| self.get(column, key)).collect()
    }

    /// Calls `visit` with each entry whose key is `>= from` in ascending key
    /// order, until it returns `false` or the column ends.
    fn scan_from(
        &self,
        column: Column,
        from: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), EngineError>;

    /// Calls `visit` with each entry whose key is `>= from` in ascending
    /// key order, moving on as it says: to the next entry, forward to a
    /// later key, or nowhere. An engine should seek within one pass (a new
    /// pass per seek, the default, costs a fresh iterator each time).
    fn scan_seeking(
        &self,
        column: Column,
        from: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> Next,
    ) -> Result<(), EngineError> {
        let mut from = from.to_vec();
        loop {
            let mut seek = None;
            self.scan_from(column, &from, &mut |k, v| match visit(k, v) {
                Next::Continue => true,
                Next::Stop => false,
                Next::Seek(target) => {
                    seek = Some(target);
                    false
                }
            })?;
            match seek {
                Some(target) => from = target,
                None => return Ok(()),
            }
        }
    }

    /// The first entry at or after `from` whose key starts with the first
    /// `prefix_len` bytes of `from`, if any.
    ///
    /// An MVCC point read asks exactly this (`from` a versioned key, the
    /// prefix its key part: the answer is the newest version at or below
    /// the one asked), so an engine may answer it without looking past the
    /// prefix: RocksDB skips every file whose prefix filter rules the key
    /// out. The default walks [`Engine::scan_from`].
    fn seek_in_prefix(
        &self,
        column: Column,
        from: &[u8],
        prefix_len: usize,
    ) -> Result<Option<Entry>, EngineError> {
        let prefix = &from[..prefix_len.min(from.len())];
        let mut found = None;
        self.scan_from(column, from, &mut |k, v| {
            if k.starts_with(prefix) {
                found = Some((k.to_vec(), v.to_vec()));
            }
            false
        })?;
        Ok(found)
    }

    /// Applies the batch atomically. With `sync`, it is on disk when this returns.
    fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), EngineError>;

    /// From now on the engine may remove every row that no read at or
    /// above `horizon` sees (the rule is [`crate::retention`]'s). A lower
    /// horizon than one already set changes nothing. The default keeps
    /// everything, which is always correct, only larger.
    fn set_collection_horizon(&self, horizon: u64) {
        let _ = horizon;
    }

    /// Removes now everything the collection horizon gave up, tombstones
    /// included: a full pass over the versioned columns and the change
    /// records. Engines that collect in the background also collect
    /// without it; this is for operators, tests and benchmarks.
    fn collect(&self) -> Result<(), EngineError> {
        Ok(())
    }

    /// Rows removed by collection since the engine was opened.
    fn collected_rows(&self) -> u64 {
        0
    }

    /// About how many rows `column` holds (an engine may estimate: RocksDB
    /// counts what its files and memtables say, before compaction merges
    /// them). For metrics, never for decisions. The default, 0, says
    /// "unknown".
    fn estimated_rows(&self, column: Column) -> u64 {
        let _ = column;
        0
    }
}

/// Shared engines: a replayer writes while readers read the same store.
impl<E: Engine + ?Sized> Engine for std::sync::Arc<E> {
    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        (**self).get(column, key)
    }

    fn get_many(
        &self,
        column: Column,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<Vec<u8>>>, EngineError> {
        (**self).get_many(column, keys)
    }

    fn scan_from(
        &self,
        column: Column,
        from: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), EngineError> {
        (**self).scan_from(column, from, visit)
    }

    fn scan_seeking(
        &self,
        column: Column,
        from: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> Next,
    ) -> Result<(), EngineError> {
        (**self).scan_seeking(column, from, visit)
    }

    fn seek_in_prefix(
        &self,
        column: Column,
        from: &[u8],
        prefix_len: usize,
    ) -> Result<Option<Entry>, EngineError> {
        (**self).seek_in_prefix(column, from, prefix_len)
    }

    fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), EngineError> {
        (**self).write(batch, sync)
    }

    fn set_collection_horizon(&self, horizon: u64) {
        (**self).set_collection_horizon(horizon)
    }

    fn collect(&self) -> Result<(), EngineError> {
        (**self).collect()
    }

    fn collected_rows(&self) -> u64 {
        (**self).collected_rows()
    }

    fn estimated_rows(&self, column: Column) -> u64 {
        (**self).estimated_rows(column)
    }
}

/// One column's rows, in key order.
type Rows = BTreeMap<Vec<u8>, Vec<u8>>;

/// An engine in memory, for tests and as the reference the RocksDB engine is checked against.
#[derive(Debug, Default)]
pub struct MemEngine {
    columns: RwLock<BTreeMap<Column, Rows>>,
    /// The collection horizon (see [`Engine::set_collection_horizon`]).
    horizon: AtomicU64,
    /// Rows [`Engine::collect`] removed.
    collected: AtomicU64,
}

impl MemEngine {
    /// An empty engine.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Engine for MemEngine {
    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        let columns = self.columns.read().unwrap_or_else(|p| p.into_inner());
        Ok(columns.get(&column).and_then(|c| c.get(key)).cloned())
    }

    fn scan_from(
        &self,
        column: Column,
        from: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), EngineError> {
        let columns = self.columns.read().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = columns.get(&column) {
            for (k, v) in c.range::<[u8], _>((Bound::Included(from), Bound::Unbounded)) {
                if !visit(k, v) {
                    break;
                }
            }
        }
        Ok(())
    }

    fn write(&self, batch: WriteBatch, _sync: bool) -> Result<(), EngineError> {
        // Holding the write lock for the whole batch makes it atomic to readers.
        let mut columns = self.columns.write().unwrap_or_else(|p| p.into_inner());
        for op in batch.ops {
            match op {
                BatchOp::Put(c, k, v) => {
                    columns.entry(c).or_default().insert(k, v);
                }
                BatchOp::Delete(c, k) => {
                    columns.entry(c).or_default().remove(&k);
                }
                BatchOp::DeleteRange(c, from, to) => {
                    let rows = columns.entry(c).or_default();
                    let mut doomed = rows.split_off(&from);
                    let mut kept = doomed.split_off(&to);
                    rows.append(&mut kept);
                }
            }
        }
        Ok(())
    }

    fn set_collection_horizon(&self, horizon: u64) {
        self.horizon.fetch_max(horizon, Ordering::SeqCst);
    }

    fn collect(&self) -> Result<(), EngineError> {
        let horizon = self.horizon.load(Ordering::SeqCst);
        let mut columns = self.columns.write().unwrap_or_else(|p| p.into_inner());
        for (&column, rows) in columns.iter_mut() {
            let mut collector = Collector::new(horizon, true);
            let before = rows.len();
            rows.retain(|k, v| !collector.removes(column.collected(), k, v));
            let removed = (before - rows.len()) as u64;
            self.collected.fetch_add(removed, Ordering::Relaxed);
        }
        Ok(())
    }

    fn collected_rows(&self) -> u64 {
        self.collected.load(Ordering::Relaxed)
    }

    fn estimated_rows(&self, column: Column) -> u64 {
        let columns = self.columns.read().unwrap_or_else(|p| p.into_inner());
        columns.get(&column).map_or(0, |rows| rows.len() as u64)
    }
}
