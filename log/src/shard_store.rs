//! Shard stores: where a node keeps the shards it holds.
//!
//! [`ShardStore`] is the seam; it knows nothing of RocksDB. [`MemShardStore`]
//! backs tests, `RocksShardStore` (feature `rocksdb`) backs real nodes, and
//! [`crate::conformance`] holds the suite both must pass.
//!
//! Shards are keyed by their entry's commitment, not by seq: a writer stores
//! shards *before* the sequencer gives the entry a place, so that an ordered
//! header never points at data that was not stored.

use crate::{Hash, Shard, limits::MAX_PROOF_HASHES};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Why a shard store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage engine failed (I/O, corruption it detected, ...).
    #[error("shard store backend: {0}")]
    Backend(String),
    /// A stored value could not be decoded: the store's bytes are damaged.
    #[error("stored shard {index} of entry {} is malformed: {reason}", crate::hex(.commitment))]
    Corrupt {
        /// The entry.
        commitment: Hash,
        /// The shard.
        index: u16,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A place to keep shards, keyed by (entry commitment, shard index).
///
/// Stores do not verify shards: callers verify what they read against the
/// commitment (see [`crate::verify_shard`]), because a store can be damaged
/// under it. `put_entry` and `put` are durable when they return.
pub trait ShardStore: Send + Sync {
    /// Stores one shard, replacing any shard with the same key.
    fn put(&self, commitment: &Hash, shard: &Shard) -> Result<(), StoreError>;

    /// Stores several shards of one entry at once, durably.
    fn put_entry(&self, commitment: &Hash, shards: &[Shard]) -> Result<(), StoreError> {
        shards
            .iter()
            .try_for_each(|shard| self.put(commitment, shard))
    }

    /// The shard, if held.
    fn get(&self, commitment: &Hash, index: u16) -> Result<Option<Shard>, StoreError>;

    /// Whether the shard is held.
    fn has(&self, commitment: &Hash, index: u16) -> Result<bool, StoreError>;

    /// Forgets the shard; forgetting a shard not held is not an error.
    fn delete(&self, commitment: &Hash, index: u16) -> Result<(), StoreError>;

    /// Indices of the entry's shards held here, ascending.
    fn list(&self, commitment: &Hash) -> Result<Vec<u16>, StoreError>;
}

/// Key of a shard: the commitment, then the index big-endian so that one
/// entry's shards sort together and in order.
pub(crate) fn shard_key(commitment: &Hash, index: u16) -> [u8; 34] {
    let mut key = [0u8; 34];
    key[..32].copy_from_slice(commitment);
    key[32..].copy_from_slice(&index.to_be_bytes());
    key
}

const VALUE_VERSION: u8 = 1;

/// Stored value: version, proof length, proof hashes, shard bytes.
pub(crate) fn encode_value(shard: &Shard) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + 32 * shard.proof.len() + shard.bytes.len());
    out.push(VALUE_VERSION);
    out.push(shard.proof.len() as u8);
    for hash in &shard.proof {
        out.extend_from_slice(hash);
    }
    out.extend_from_slice(&shard.bytes);
    out
}

pub(crate) fn decode_value(
    commitment: &Hash,
    index: u16,
    value: &[u8],
) -> Result<Shard, StoreError> {
    let corrupt = |reason| StoreError::Corrupt {
        commitment: *commitment,
        index,
        reason,
    };
    let [version, proof_len, rest @ ..] = value else {
        return Err(corrupt("shorter than its header"));
    };
    if *version != VALUE_VERSION {
        return Err(corrupt("unknown value version"));
    }
    let proof_bytes = 32 * *proof_len as usize;
    if *proof_len as usize > MAX_PROOF_HASHES || rest.len() < proof_bytes {
        return Err(corrupt("proof longer than the value"));
    }
    let (proof, bytes) = rest.split_at(proof_bytes);
    let proof = proof
        .chunks_exact(32)
        .map(|h| h.try_into().unwrap_or([0; 32]))
        .collect();
    Ok(Shard {
        index,
        bytes: bytes.to_vec(),
        proof,
    })
}

/// An in-memory shard store for tests and single-process experiments.
#[derive(Debug, Default)]
pub struct MemShardStore {
    shards: Mutex<BTreeMap<[u8; 34], Vec<u8>>>,
}

impl MemShardStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<[u8; 34], Vec<u8>>> {
        // A panic while holding the lock cannot leave the map half-changed
        // (each operation is one map call), so a poisoned lock is still sound.
        self.shards
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ShardStore for MemShardStore {
    fn put(&self, commitment: &Hash, shard: &Shard) -> Result<(), StoreError> {
        self.map()
            .insert(shard_key(commitment, shard.index), encode_value(shard));
        Ok(())
    }

    fn get(&self, commitment: &Hash, index: u16) -> Result<Option<Shard>, StoreError> {
        let map = self.map();
        map.get(&shard_key(commitment, index))
            .map(|v| decode_value(commitment, index, v))
            .transpose()
    }

    fn has(&self, commitment: &Hash, index: u16) -> Result<bool, StoreError> {
        Ok(self.map().contains_key(&shard_key(commitment, index)))
    }

    fn delete(&self, commitment: &Hash, index: u16) -> Result<(), StoreError> {
        self.map().remove(&shard_key(commitment, index));
        Ok(())
    }

    fn list(&self, commitment: &Hash) -> Result<Vec<u16>, StoreError> {
        let range = shard_key(commitment, 0)..=shard_key(commitment, u16::MAX);
        Ok(self
            .map()
            .range(range)
            .map(|(k, _)| u16::from_be_bytes([k[32], k[33]]))
            .collect())
    }
}
