//! Typed errors of the log layer.

use crate::Hash;

/// Why an entry's parameters, bytes or proofs were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// The payload is larger than [`crate::limits::MAX_PAYLOAD_BYTES`].
    #[error("payload of {len} bytes exceeds the limit of {max} bytes")]
    PayloadTooLarge {
        /// Length of the refused payload.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The chunk size is not a power of two within the allowed bounds.
    #[error("chunk size {0} is not a power of two between {min} and {max}", min = crate::limits::MIN_CHUNK_SIZE, max = crate::limits::MAX_CHUNK_SIZE)]
    BadChunkSize(u32),
    /// The shard counts are outside the allowed bounds.
    #[error("shard counts k={k}, m={m} are outside 1..={max_k} data and 1..={max_m} parity shards", max_k = crate::limits::MAX_DATA_SHARDS, max_m = crate::limits::MAX_PARITY_SHARDS)]
    BadShardCounts {
        /// Data shards asked for.
        k: u16,
        /// Parity shards asked for.
        m: u16,
    },
    /// Too many tags on one entry.
    #[error("{count} tags exceed the limit of {max}")]
    TooManyTags {
        /// Tags given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Encoded bytes ended before the structure did.
    #[error("truncated {what}: needed {needed} more bytes")]
    Truncated {
        /// What was being decoded.
        what: &'static str,
        /// How many more bytes were needed.
        needed: usize,
    },
    /// Encoded bytes went on after the structure ended.
    #[error("{extra} trailing bytes after {what}")]
    TrailingBytes {
        /// What was being decoded.
        what: &'static str,
        /// How many bytes were left over.
        extra: usize,
    },
    /// The encoding names a version this build does not know.
    #[error("unknown {what} encoding version {version}")]
    UnknownVersion {
        /// What was being decoded.
        what: &'static str,
        /// The version byte found.
        version: u8,
    },
    /// The checksum over encoded bytes does not match: they were altered or torn.
    #[error("checksum mismatch in {what}")]
    ChecksumMismatch {
        /// What was being decoded.
        what: &'static str,
    },
    /// A shard index is not below `k + m`.
    #[error("shard index {index} out of range for {total} shards")]
    ShardIndexOutOfRange {
        /// The index given.
        index: u16,
        /// Shards the entry has.
        total: u16,
    },
    /// A chunk range is empty, reversed or beyond the entry's chunks.
    #[error("chunk range {first}..={last} is not within the entry's {total} leaves")]
    BadChunkRange {
        /// First leaf asked for.
        first: u64,
        /// Last leaf asked for.
        last: u64,
        /// Leaves in the entry's tree.
        total: u64,
    },
    /// Bytes given to a verifier have the wrong length for the geometry.
    #[error("{what} has {got} bytes, expected {expected}")]
    WrongLength {
        /// What was checked.
        what: &'static str,
        /// Length found.
        got: usize,
        /// Length the geometry requires.
        expected: usize,
    },
    /// A proof does not lead to the commitment: the data or the proof is wrong.
    #[error("proof does not match commitment {}", crate::hex(.commitment))]
    ProofMismatch {
        /// The commitment checked against.
        commitment: Hash,
    },
    /// A proof has more or fewer sibling hashes than the tree needs.
    #[error("proof has the wrong number of hashes")]
    MalformedProof,
    /// Fewer than k verified shards could be found.
    #[error("entry {} has {have} verified shards, needs {need}", crate::hex(.commitment))]
    NotEnoughShards {
        /// The entry's commitment.
        commitment: Hash,
        /// Verified shards found.
        have: usize,
        /// Shards needed (k).
        need: usize,
    },
    /// The erasure code refused its input (a bug if it happens: geometry is checked first).
    #[error("erasure code: {0}")]
    Coding(String),
}
