//! The shard store on RocksDB (feature `rocksdb`, on by default): every
//! write journaled and synced before it returns ([`JournaledDb`]).

use crate::journaled::{JournaledDb, JournaledDbError};
use crate::limits::MEMBER_JOURNAL_SEGMENT_BYTES;
use crate::shard_store::{ShardStore, StoreError, decode_value, encode_value, shard_key};
use crate::{Hash, Shard};
use std::path::Path;

/// How RocksDB stores shard bytes, here and in the joint log's shard
/// column ([`crate::RocksLog`]): uncompressed.
///
/// Shards are written once and never change, but at random keys (their
/// entry's commitment), so RocksDB's compactions rewrite every shard once
/// or more after its flush, and with LZ4 each rewrite decompressed and
/// compressed it again. Under sustained writes that made `ordo dev` slower
/// on one core: after 20-25 s of 16-client puts, 64 clients ran 52.4-58.7
/// K puts/s with shards uncompressed against 49.2-56.5 K with LZ4, faster
/// in each of five alternated pairs (docs/BENCHMARKS.md, "Shards stored
/// uncompressed"). The price is disk: parity shards do not compress, but
/// data shards hold the payload as it is, and that log database took 819
/// MB against 491-586 MB. On the two cores this is tuned on, CPU is
/// scarcer than disk. (The state, `ordo_kv`, keeps LZ4 for reasons and
/// figures of its own.)
pub(crate) const SHARD_COMPRESSION: rocksdb::DBCompressionType = rocksdb::DBCompressionType::None;

/// Level-0 files the shard column gathers before they are compacted into
/// the level below, instead of RocksDB's 4.
///
/// For the reason [`SHARD_COMPRESSION`] gives: every level-0 compaction
/// merges flushed shards into the whole key range below, and merging twice
/// as many files at once rewrites that range half as often. Measured with
/// the state's own setting (`ordo_kv::rocks::LEVEL0_FILES_BEFORE_COMPACTION`)
/// in docs/BENCHMARKS.md, "Fewer, larger compactions": 8 ran as fast as 16
/// and keeps fewer files for a shard read to probe.
pub const SHARD_LEVEL0_FILES_BEFORE_COMPACTION: i32 = 8;

/// The RocksDB options of a column (or database) of shards keyed by
/// commitment: a storage member's store, and the joint log's shards written
/// outside an append (those appended with their header are keyed by seq,
/// see [`crate::rocks_log`]).
pub(crate) fn shard_options() -> rocksdb::Options {
    let mut options = rocksdb::Options::default();
    options.set_compression_type(SHARD_COMPRESSION);
    options.set_level_zero_file_num_compaction_trigger(SHARD_LEVEL0_FILES_BEFORE_COMPACTION);
    options
}

/// A shard store on RocksDB; every write is synced to disk before it returns.
#[derive(Debug)]
pub struct RocksShardStore {
    db: JournaledDb,
}

fn backend(e: rocksdb::Error) -> StoreError {
    StoreError::Backend(e.into_string())
}

fn journaled(e: JournaledDbError) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl RocksShardStore {
    /// Opens (creating if needed) a store in directory `path`, with journal
    /// segments of [`MEMBER_JOURNAL_SEGMENT_BYTES`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, MEMBER_JOURNAL_SEGMENT_BYTES)
    }

    /// Opens a store whose journal segments hold `segment_bytes` (tests use
    /// small ones, to rotate often).
    pub fn open_with(path: impl AsRef<Path>, segment_bytes: u64) -> Result<Self, StoreError> {
        let mut options = shard_options();
        options.create_if_missing(true);
        // Logs written before the journal existed are still read on open; a
        // crash can leave only their last batch incomplete.
        options.set_wal_recovery_mode(rocksdb::DBRecoveryMode::TolerateCorruptedTailRecords);
        let db = rocksdb::DB::open(&options, path).map_err(backend)?;
        let db = JournaledDb::start(db, &[], segment_bytes).map_err(journaled)?;
        Ok(Self { db })
    }

    /// About how many shards the store holds (RocksDB's estimate: exact
    /// after a compaction, close otherwise), for reports and status.
    pub fn estimated_shards(&self) -> u64 {
        let property = self.db.db().property_int_value("rocksdb.estimate-num-keys");
        property.ok().flatten().unwrap_or(0)
    }
}

impl ShardStore for RocksShardStore {
    fn put(&self, commitment: &Hash, shard: &Shard) -> Result<(), StoreError> {
        self.put_entry(commitment, std::slice::from_ref(shard))
    }

    fn put_entry(&self, commitment: &Hash, shards: &[Shard]) -> Result<(), StoreError> {
        let mut batch = rocksdb::WriteBatch::default();
        for shard in shards {
            batch.put(shard_key(commitment, shard.index), encode_value(shard));
        }
        self.db.write_synced(batch).map_err(journaled)
    }

    fn get(&self, commitment: &Hash, index: u16) -> Result<Option<Shard>, StoreError> {
        let value = (self.db.db())
            .get_pinned(shard_key(commitment, index))
            .map_err(backend)?;
        value
            .map(|v| decode_value(commitment, index, &v))
            .transpose()
    }

    fn has(&self, commitment: &Hash, index: u16) -> Result<bool, StoreError> {
        Ok((self.db.db())
            .get_pinned(shard_key(commitment, index))
            .map_err(backend)?
            .is_some())
    }

    fn delete(&self, commitment: &Hash, index: u16) -> Result<(), StoreError> {
        let mut batch = rocksdb::WriteBatch::default();
        batch.delete(shard_key(commitment, index));
        self.db.write_synced(batch).map_err(journaled)
    }

    fn list(&self, commitment: &Hash) -> Result<Vec<u16>, StoreError> {
        let start = shard_key(commitment, 0);
        let mode = rocksdb::IteratorMode::From(&start, rocksdb::Direction::Forward);
        let mut indices = Vec::new();
        for item in self.db.db().iterator(mode) {
            let (key, _) = item.map_err(backend)?;
            if key.len() != 34 || key[..32] != commitment[..] {
                break;
            }
            indices.push(u16::from_be_bytes([key[32], key[33]]));
        }
        Ok(indices)
    }
}
