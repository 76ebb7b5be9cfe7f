//! The shard store on RocksDB (feature `rocksdb`, on by default): every
//! write synced before it returns.

use crate::shard_store::{ShardStore, StoreError, decode_value, encode_value, shard_key};
use crate::{Hash, Shard};
use std::path::Path;

/// A shard store on RocksDB; every write is synced to disk before it returns.
pub struct RocksShardStore {
    db: rocksdb::DB,
}

impl std::fmt::Debug for RocksShardStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksShardStore")
            .field("path", &self.db.path())
            .finish()
    }
}

fn backend(e: rocksdb::Error) -> StoreError {
    StoreError::Backend(e.into_string())
}

impl RocksShardStore {
    /// Opens (creating if needed) a store in directory `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        // Shard bytes are erasure-coded payload: mostly incompressible, so LZ4
        // (cheap when it fails) rather than zstd.
        options.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let db = rocksdb::DB::open(&options, path).map_err(backend)?;
        Ok(Self { db })
    }

    /// About how many shards the store holds (RocksDB's estimate: exact
    /// after a compaction, close otherwise), for reports and status.
    pub fn estimated_shards(&self) -> u64 {
        let property = self.db.property_int_value("rocksdb.estimate-num-keys");
        property.ok().flatten().unwrap_or(0)
    }

    fn synced() -> rocksdb::WriteOptions {
        let mut options = rocksdb::WriteOptions::default();
        options.set_sync(true);
        options
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
        self.db.write_opt(batch, &Self::synced()).map_err(backend)
    }

    fn get(&self, commitment: &Hash, index: u16) -> Result<Option<Shard>, StoreError> {
        let value = self
            .db
            .get_pinned(shard_key(commitment, index))
            .map_err(backend)?;
        value
            .map(|v| decode_value(commitment, index, &v))
            .transpose()
    }

    fn has(&self, commitment: &Hash, index: u16) -> Result<bool, StoreError> {
        Ok(self
            .db
            .get_pinned(shard_key(commitment, index))
            .map_err(backend)?
            .is_some())
    }

    fn delete(&self, commitment: &Hash, index: u16) -> Result<(), StoreError> {
        self.db
            .delete_opt(shard_key(commitment, index), &Self::synced())
            .map_err(backend)
    }

    fn list(&self, commitment: &Hash) -> Result<Vec<u16>, StoreError> {
        let start = shard_key(commitment, 0);
        let mode = rocksdb::IteratorMode::From(&start, rocksdb::Direction::Forward);
        let mut indices = Vec::new();
        for item in self.db.iterator(mode) {
            let (key, _) = item.map_err(backend)?;
            if key.len() != 34 || key[..32] != commitment[..] {
                break;
            }
            indices.push(u16::from_be_bytes([key[32], key[33]]));
        }
        Ok(indices)
    }
}
