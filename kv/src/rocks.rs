//! The engine on RocksDB (feature `rocksdb`, on by default): one column
//! family per [`Column`], small memtables for the random-key columns.

use crate::engine::{BatchOp, Column, Engine, EngineError, Entry, Next, WriteBatch};
use crate::keys::VERSION_BYTES;
use crate::retention::Collector;
use std::ffi::CStr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// An engine on RocksDB, one column family per [`Column`].
pub struct RocksEngine {
    db: rocksdb::DB,
    collection: Arc<Collection>,
}

/// What the compaction filters share with the engine.
#[derive(Debug, Default)]
struct Collection {
    /// See [`Engine::set_collection_horizon`].
    horizon: AtomicU64,
    /// Rows the filters removed.
    removed: AtomicU64,
}

/// Makes one [`CollectingFilter`] per compaction of a collected column.
struct CollectingFactory {
    column: Column,
    collection: Arc<Collection>,
    name: &'static CStr,
}

impl rocksdb::compaction_filter_factory::CompactionFilterFactory for CollectingFactory {
    type Filter = CollectingFilter;

    fn create(
        &mut self,
        context: rocksdb::compaction_filter_factory::CompactionFilterContext,
    ) -> CollectingFilter {
        // The horizon is read once: one compaction judges by one horizon.
        let horizon = self.collection.horizon.load(Ordering::SeqCst);
        CollectingFilter {
            collected: self.column.collected(),
            collector: Collector::new(horizon, context.is_full_compaction),
            collection: self.collection.clone(),
            name: self.name,
        }
    }

    fn name(&self) -> &CStr {
        self.name
    }
}

/// Removes, inside a compaction, what the retention horizon gave up (see
/// [`crate::retention`]). RocksDB hands it one compaction's rows in key
/// order, from one thread.
struct CollectingFilter {
    /// What collection does with the column's rows.
    collected: crate::retention::Collected,
    collector: Collector,
    collection: Arc<Collection>,
    name: &'static CStr,
}

impl rocksdb::compaction_filter::CompactionFilter for CollectingFilter {
    fn filter(&mut self, _level: u32, key: &[u8], value: &[u8]) -> rocksdb::CompactionDecision {
        match self.collector.removes(self.collected, key, value) {
            true => {
                self.collection.removed.fetch_add(1, Ordering::Relaxed);
                rocksdb::CompactionDecision::Remove
            }
            false => rocksdb::CompactionDecision::Keep,
        }
    }

    fn name(&self) -> &CStr {
        self.name
    }
}

/// Whether compactions of `column` collect (see [`crate::retention`]).
fn is_collected(column: Column) -> bool {
    column.collected() != crate::retention::Collected::Never
}

impl std::fmt::Debug for RocksEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksEngine")
            .field("path", &self.db.path())
            .finish()
    }
}

/// Size of one memtable of the columns written at random keys (data, ACL
/// facts, outcomes, heads).
///
/// Every row replay writes is an insert into a memtable skiplist, and an
/// insert at a random key walks the list from top to bottom, one likely
/// cache miss per step. A list that fits in a core's cache costs far less
/// per step: on the benchmark machine (4 MiB L2 per core), 2,000 sorted
/// random-key rows per batch went in 3x faster with 8 MiB memtables than
/// with RocksDB's default of 64 MiB in an exploratory probe (figures and the
/// whole-path benchmark, `benches/benches/replay.rs`, in docs/BENCHMARKS.md).
/// The price is more, smaller flushes, which run on background threads.
pub const MEMTABLE_BYTES: usize = 8 << 20;

/// Memtables a random-key column may hold (one being written, the rest
/// waiting for flush) before writes stall: small memtables fill fast, so
/// more of them may queue while a flush runs.
pub const MEMTABLES: i32 = 4;

/// Level-0 files a growing column (data, outcomes) gathers before they
/// are compacted into the level below, instead of RocksDB's 4.
///
/// Both columns gain a row at a random key with every commit (a version, an
/// outcome) and lose few, so each level-0 compaction merges its files into
/// the whole range below. While the state is smaller than one level
/// (RocksDB's level base, 256 MiB), that range is all of it, and each
/// compaction rewrites the column once more: under sustained puts on one
/// core, compactions took 21-30% of the server's CPU. Merging four times as
/// many flushed files at once rewrites the range below a quarter as often:
/// after 20 s of load, pinned `ordo dev` puts ran 58-60 K/s at 64 clients
/// and 82-85 K/s at 256 against 50-55 K and 69-71 K, and compactions took
/// 9-14% of the core (docs/BENCHMARKS.md, "Fewer, larger compactions").
/// The price is reads: a point read probes up to this many more files'
/// filters (bloom and prefix filters make a probe of a file without the key
/// cost no block read).
pub const LEVEL0_FILES_BEFORE_COMPACTION: i32 = 16;

/// Level-0 files of a growing column at which RocksDB slows writes down,
/// and at which it stops them, until compactions catch up: RocksDB's
/// defaults (20, 36) moved up with [`LEVEL0_FILES_BEFORE_COMPACTION`], so
/// that one compaction's worth of files in waiting does not slow writes.
pub const LEVEL0_FILES_BEFORE_SLOWDOWN: i32 = 2 * LEVEL0_FILES_BEFORE_COMPACTION;
/// See [`LEVEL0_FILES_BEFORE_SLOWDOWN`].
pub const LEVEL0_FILES_BEFORE_STOP: i32 = 3 * LEVEL0_FILES_BEFORE_COMPACTION;

/// Name of the prefix extractor of the versioned columns. RocksDB records
/// it in every file it builds, and uses a file's prefix filter only when
/// the name matches: change it whenever [`versioned_key_prefix`] changes.
const VERSIONED_PREFIX_EXTRACTOR: &str = "ordo.versioned-key-prefix.v1";

/// The key prefix of a versioned key: all but its version.
fn versioned_key_prefix(key: &[u8]) -> &[u8] {
    &key[..key.len() - VERSION_BYTES]
}

/// Whether `key` is long enough to have a version (every key of a
/// versioned column is; RocksDB also asks about seek targets).
fn has_version(key: &[u8]) -> bool {
    key.len() >= VERSION_BYTES
}

/// Options of one column family (or the database defaults, for `None`).
///
/// The outcomes column is read once per transaction (is this id already
/// decided?) and almost always misses, so it gets bloom filters in the
/// memtable and in its files: a miss then costs no block read.
///
/// The versioned columns (data, ACL facts) are read by seeking to a key's
/// newest version at or below the snapshot. Their files carry a bloom
/// filter over key prefixes (the key without its version), so such a seek
/// ([`Engine::seek_in_prefix`]) skips every file that never held the key
/// instead of seeking in each: with a few files per level, that cut a
/// point read by more than half (`mvcc/*` in `benches/benches/kv.rs`,
/// docs/BENCHMARKS.md). Their memtables get no prefix filter: replay
/// inserts into them on every write, and the filter's hashing would cost
/// replay more than it saves a read.
fn column_options(column: Option<Column>) -> rocksdb::Options {
    let mut options = rocksdb::Options::default();
    // LZ4 at every level, the last included. With dynamic level sizes
    // nearly every compaction writes the last level, so zstd there was the
    // compression of almost every byte compacted: `ordo dev` puts at 256
    // clients ran 4-10% faster with LZ4 (docs/BENCHMARKS.md, 2026-11-27),
    // at the cost of larger files where values compress (zstd packs them
    // tighter). On the two cores this is tuned on, CPU is scarcer than disk.
    options.set_compression_type(rocksdb::DBCompressionType::Lz4);
    if matches!(
        column,
        Some(Column::Data | Column::Acl | Column::Outcomes | Column::Heads)
    ) {
        options.set_write_buffer_size(MEMTABLE_BYTES);
        options.set_max_write_buffer_number(MEMTABLES);
    }
    if matches!(column, Some(Column::Data | Column::Outcomes)) {
        options.set_level_zero_file_num_compaction_trigger(LEVEL0_FILES_BEFORE_COMPACTION);
        options.set_level_zero_slowdown_writes_trigger(LEVEL0_FILES_BEFORE_SLOWDOWN);
        options.set_level_zero_stop_writes_trigger(LEVEL0_FILES_BEFORE_STOP);
    }
    if column == Some(Column::Outcomes) {
        let mut table = rocksdb::BlockBasedOptions::default();
        table.set_bloom_filter(10.0, false);
        options.set_block_based_table_factory(&table);
        options.set_memtable_prefix_bloom_ratio(0.02);
        options.set_memtable_whole_key_filtering(true);
    }
    if column.is_some_and(Column::is_versioned) {
        options.set_prefix_extractor(rocksdb::SliceTransform::create(
            VERSIONED_PREFIX_EXTRACTOR,
            versioned_key_prefix,
            Some(has_version),
        ));
        let mut table = rocksdb::BlockBasedOptions::default();
        table.set_bloom_filter(10.0, false);
        // Versioned keys are only ever sought by prefix, never read whole.
        table.set_whole_key_filtering(false);
        options.set_block_based_table_factory(&table);
    }
    options
}

/// Read options for an iterator that walks across key prefixes: with a
/// prefix extractor configured, RocksDB would otherwise be free to use the
/// seek target's prefix filter and skip files holding later prefixes.
fn total_order() -> rocksdb::ReadOptions {
    let mut options = rocksdb::ReadOptions::default();
    options.set_total_order_seek(true);
    options
}

/// Bytes RocksDB's batch representation needs for `ops`, so the batch is
/// allocated once instead of doubling its buffer while it fills (the
/// regrowth copies showed as about a tenth of replay's write time).
///
/// The representation is a 12-byte header, then per change a tag byte, the
/// column id, the key length and the value length (varints, at most five
/// bytes each) and the key and value bytes.
fn rocks_batch_bytes(ops: &[BatchOp]) -> usize {
    const HEADER: usize = 12;
    const PER_OP_OVERHEAD: usize = 1 + 3 * 5;
    let payload: usize = ops
        .iter()
        .map(|op| match op {
            BatchOp::Put(_, k, v) => k.len() + v.len(),
            BatchOp::Delete(_, k) => k.len(),
            BatchOp::DeleteRange(_, from, to) => from.len() + to.len(),
        })
        .sum();
    HEADER + payload + ops.len() * PER_OP_OVERHEAD
}

fn backend(e: rocksdb::Error) -> EngineError {
    EngineError::Backend(e.into_string())
}

impl RocksEngine {
    /// Opens (creating if needed) the engine in directory `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, EngineError> {
        let mut options = column_options(None);
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        let collection = Arc::new(Collection::default());
        let columns = Column::ALL.iter().map(|&c| {
            let mut options = column_options(Some(c));
            if is_collected(c) {
                options.set_compaction_filter_factory(CollectingFactory {
                    column: c,
                    collection: collection.clone(),
                    name: c"ordo.retention",
                });
            }
            rocksdb::ColumnFamilyDescriptor::new(c.name(), options)
        });
        let db = rocksdb::DB::open_cf_descriptors(&options, path, columns).map_err(backend)?;
        Ok(Self { db, collection })
    }

    fn cf(&self, column: Column) -> Result<&rocksdb::ColumnFamily, EngineError> {
        self.db
            .cf_handle(column.name())
            .ok_or_else(|| EngineError::Backend(format!("column family {} missing", column.name())))
    }

    /// RocksDB's form of `ops`, taken in the order of the positions in
    /// `order`.
    fn rocks_batch(
        &self,
        ops: &[BatchOp],
        order: &[usize],
    ) -> Result<rocksdb::WriteBatch, EngineError> {
        let mut rocks = rocksdb::WriteBatch::with_capacity_bytes(rocks_batch_bytes(ops));
        for op in order.iter().map(|&i| &ops[i]) {
            match op {
                BatchOp::Put(c, k, v) => rocks.put_cf(self.cf(*c)?, k, v),
                BatchOp::Delete(c, k) => rocks.delete_cf(self.cf(*c)?, k),
                BatchOp::DeleteRange(c, from, to) => rocks.delete_range_cf(self.cf(*c)?, from, to),
            }
        }
        Ok(rocks)
    }
}

impl Engine for RocksEngine {
    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.db.get_cf(self.cf(column)?, key).map_err(backend)
    }

    fn get_many(
        &self,
        column: Column,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<Vec<u8>>>, EngineError> {
        // RocksDB wants the keys in order and would sort them itself, with a
        // comparator call through a virtual function per comparison; sorting
        // positions here is cheaper, and the answers go back in the caller's
        // order.
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_unstable_by(|&a, &b| keys[a].cmp(&keys[b]));
        let sorted: Vec<&[u8]> = order.iter().map(|&i| keys[i].as_slice()).collect();
        let found = self.db.batched_multi_get_cf(self.cf(column)?, sorted, true);
        let mut values = vec![None; keys.len()];
        for (&i, value) in order.iter().zip(found) {
            values[i] = value.map_err(backend)?.map(|v| v.to_vec());
        }
        Ok(values)
    }

    fn scan_from(
        &self,
        column: Column,
        from: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), EngineError> {
        // A seeking scan that never seeks.
        self.scan_seeking(column, from, &mut |k, v| match visit(k, v) {
            true => Next::Continue,
            false => Next::Stop,
        })
    }

    fn scan_seeking(
        &self,
        column: Column,
        from: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> Next,
    ) -> Result<(), EngineError> {
        // One raw iterator for the whole walk: it lends each entry instead
        // of copying it into two fresh boxes, and a seek moves it, where a
        // new iterator would cost a merge set-up over every memtable and
        // file.
        let mut iter = self.db.raw_iterator_cf_opt(self.cf(column)?, total_order());
        iter.seek(from);
        while let (Some(k), Some(v)) = (iter.key(), iter.value()) {
            match visit(k, v) {
                Next::Continue => iter.next(),
                Next::Stop => return Ok(()),
                Next::Seek(target) => {
                    debug_assert!(target.as_slice() > k, "a seek moves forward");
                    iter.seek(&target);
                }
            }
        }
        iter.status().map_err(backend)
    }

    fn seek_in_prefix(
        &self,
        column: Column,
        from: &[u8],
        prefix_len: usize,
    ) -> Result<Option<Entry>, EngineError> {
        // The prefix filters answer only for the extractor's prefix; any
        // other prefix walks in total order.
        let extractor_prefix =
            column.is_versioned() && has_version(from) && prefix_len == from.len() - VERSION_BYTES;
        let options = match extractor_prefix {
            true => {
                let mut options = rocksdb::ReadOptions::default();
                options.set_prefix_same_as_start(true);
                options
            }
            false => total_order(),
        };
        let mut iter = self.db.raw_iterator_cf_opt(self.cf(column)?, options);
        iter.seek(from);
        let prefix = &from[..prefix_len.min(from.len())];
        match (iter.key(), iter.value()) {
            (Some(k), Some(v)) if k.starts_with(prefix) => Ok(Some((k.to_vec(), v.to_vec()))),
            _ => iter.status().map(|()| None).map_err(backend),
        }
    }

    fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), EngineError> {
        // Inserting keys in order lets each memtable skiplist insert start
        // its search where the previous one ended instead of at the top.
        // Positions are sorted rather than the changes themselves (a change
        // is 56 bytes to move, a position 8), and ties keep their order, so
        // two changes to one key keep theirs; changes to different keys
        // commute inside an atomic batch.
        let ops = batch.ops;
        let mut order: Vec<usize> = (0..ops.len()).collect();
        order.sort_unstable_by(|&a, &b| {
            (ops[a].order_key().cmp(&ops[b].order_key())).then(a.cmp(&b))
        });
        let rocks = self.rocks_batch(&ops, &order)?;
        let mut options = rocksdb::WriteOptions::default();
        options.set_sync(sync);
        self.db.write_opt(rocks, &options).map_err(backend)
    }

    fn set_collection_horizon(&self, horizon: u64) {
        self.collection.horizon.fetch_max(horizon, Ordering::SeqCst);
    }

    fn collect(&self) -> Result<(), EngineError> {
        // A manual compaction of the whole column moves every file down to
        // the last level and then rewrites that level on its own: the last
        // step takes in every file, so its filter may drop tombstones.
        let mut options = rocksdb::CompactOptions::default();
        options.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
        // The delete records too: sweeping removes them one by one, and
        // their removals are worth compacting away with the rest.
        let swept = |c: Column| is_collected(c) || c == Column::Deletes;
        for column in Column::ALL.into_iter().filter(|&c| swept(c)) {
            self.db
                .compact_range_cf_opt(self.cf(column)?, None::<&[u8]>, None::<&[u8]>, &options);
        }
        Ok(())
    }

    fn collected_rows(&self) -> u64 {
        self.collection.removed.load(Ordering::Relaxed)
    }

    fn estimated_rows(&self, column: Column) -> u64 {
        let Ok(cf) = self.cf(column) else { return 0 };
        let estimate = self
            .db
            .property_int_value_cf(cf, rocksdb::properties::ESTIMATE_NUM_KEYS);
        estimate.ok().flatten().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size estimate must cover the real batch, or the batch regrows
    /// while it fills (and the estimate should not be wildly above it).
    #[test]
    fn rocks_batch_estimate_covers_the_batch() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = RocksEngine::open(dir.path()).expect("open");
        let mut ops = Vec::new();
        for i in 0..300u32 {
            let key = vec![7; (i % 200) as usize];
            ops.push(BatchOp::Put(
                Column::Data,
                key.clone(),
                vec![1; (i * 3) as usize],
            ));
            ops.push(BatchOp::Delete(Column::Outcomes, key));
        }
        let estimate = rocks_batch_bytes(&ops);
        let actual = engine
            .rocks_batch(&ops, &(0..ops.len()).collect::<Vec<_>>())
            .expect("batch")
            .size_in_bytes();
        assert!(actual <= estimate, "actual {actual} > estimate {estimate}");
        assert!(
            estimate < actual * 2,
            "estimate {estimate} vs actual {actual}"
        );
    }

    /// The value of `option` in the section of column `column` of the
    /// OPTIONS file RocksDB wrote in `dir` (the newest, if several).
    fn stored_column_option(dir: &Path, column: &str, option: &str) -> Option<String> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("OPTIONS-"))
            })
            .collect();
        files.sort();
        let text = std::fs::read_to_string(files.last()?).expect("read options");
        let section = format!("[CFOptions \"{column}\"]");
        let body = text.split(&section).nth(1)?.split("\n[").next()?;
        body.lines()
            .filter_map(|line| line.trim().split_once('='))
            .find(|(name, _)| *name == option)
            .map(|(_, value)| value.to_string())
    }

    /// The growing columns gather more level-0 files than RocksDB's default
    /// before compacting; the others keep the default.
    #[test]
    fn growing_columns_compact_level_zero_files_in_larger_groups() {
        let dir = tempfile::tempdir().expect("temp dir");
        drop(RocksEngine::open(dir.path()).expect("open"));
        let trigger =
            |column| stored_column_option(dir.path(), column, "level0_file_num_compaction_trigger");
        let expected = LEVEL0_FILES_BEFORE_COMPACTION.to_string();
        assert_eq!(trigger("data"), Some(expected.clone()));
        assert_eq!(trigger("outcomes"), Some(expected));
        assert_eq!(trigger("heads"), Some("4".to_string()));
        let stop = stored_column_option(dir.path(), "data", "level0_stop_writes_trigger");
        assert_eq!(stop, Some(LEVEL0_FILES_BEFORE_STOP.to_string()));
    }
}
