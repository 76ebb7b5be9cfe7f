//! Every size limit of the log layer, in one place.
//!
//! Each limit is checked where bytes enter the crate (encoding a payload,
//! decoding a header, opening a sequencer file) and reported as a typed error.
//! They are deliberately generous for real use and small enough that one bad
//! request cannot make a node allocate without bound.

/// Largest payload one entry may carry. A batch of transactions or one data
/// blob fits comfortably; bigger objects are split by the caller. The payload
/// and its shards are held in memory while an entry is coded, so this bounds
/// the memory one append may take (about `(k + m) / k` times this).
pub const MAX_PAYLOAD_BYTES: u64 = 64 * 1024 * 1024;

/// Smallest chunk (Merkle leaf) size. Smaller chunks make proofs finer but the
/// tree larger; below this the tree costs more than the data.
pub const MIN_CHUNK_SIZE: u32 = 256;

/// Largest chunk (Merkle leaf) size.
pub const MAX_CHUNK_SIZE: u32 = 1024 * 1024;

/// Chunk size used when a log does not choose one. 4 KiB leaves let BLAKE3 use
/// its SIMD lanes within each leaf while keeping proofs fine-grained.
pub const DEFAULT_CHUNK_SIZE: u32 = 4096;

/// Most data shards (k) an entry may be split into.
pub const MAX_DATA_SHARDS: u16 = 128;

/// Most parity shards (m) an entry may carry.
pub const MAX_PARITY_SHARDS: u16 = 128;

/// Data shards used when a log does not choose: 4 + 2 survives the loss of any
/// two shards at 1.5x storage.
pub const DEFAULT_DATA_SHARDS: u16 = 4;

/// Parity shards used when a log does not choose.
pub const DEFAULT_PARITY_SHARDS: u16 = 2;

/// Shard lengths are rounded up to a multiple of this. The Reed-Solomon code
/// works on even lengths; 64 also keeps shards aligned for SIMD.
pub const SHARD_ALIGN: usize = 64;

/// Most tags (stream ids) one entry may carry.
pub const MAX_TAGS: usize = 32;

/// Most header appends the local sequencer makes durable with one fsync.
pub const MAX_GROUP_COMMIT_ENTRIES: usize = 4096;

/// Most shard bytes one group write of a joint log (`RocksLog`) carries.
/// One entry may exceed it alone (it is then written alone); beyond it the
/// rest of the queue waits for the next group, so one sync never has to
/// carry more than a few large entries.
pub const MAX_GROUP_COMMIT_BYTES: usize = 64 * 1024 * 1024;

/// Bytes of each segment of the joint log's journal (`RocksLog`). A filled
/// segment costs one flush of the database's memtables, which RocksDB would
/// make at about this much data anyway; a segment is zero-filled ahead of
/// use by a background thread (tens of milliseconds here). A group larger
/// than a segment gets a segment of its own size.
pub const DEFAULT_JOURNAL_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// Bytes of each journal segment of a cluster member's stores (a storage
/// member's shards, a voter's raft log). Smaller than the joint log's: a
/// member holds a share of each entry (one shard, or a header), a cluster
/// on one machine runs many members, and each member's journal is two
/// segments on disk from its first start (zero-filled, then reused). A
/// filled segment flushes the store's memtables, which at this size stay
/// cheap.
pub const MEMBER_JOURNAL_SEGMENT_BYTES: u64 = 16 * 1024 * 1024;

/// Smallest journal segment a `RocksLog` accepts: small segments are for
/// tests that want many rotations; below this each rotation would carry
/// less than a few groups.
pub const MIN_JOURNAL_SEGMENT_BYTES: u64 = 64 * 1024;

/// Most appends that may wait for the local sequencer's writer at once.
/// Appenders beyond this wait for a place (back-pressure), they are not
/// queued without bound.
pub const APPEND_QUEUE_CAPACITY: usize = 8192;

/// Most headers one `Sequencer::read` call returns.
pub const MAX_READ_BATCH: usize = 4096;

/// Most sibling hashes a proof may carry. A tree over the most leaves an
/// entry can have is far shallower than this; a longer proof is malformed.
pub const MAX_PROOF_HASHES: usize = 64;

/// Most payloads a writer hands its reader in memory (`RecentPayloads`):
/// entries just appended, which the replica of the same process reads next.
pub const MAX_RECENT_PAYLOADS: usize = 64;

/// Most payload bytes `RecentPayloads` holds; past it the oldest go (they
/// are read back from their shards instead).
pub const MAX_RECENT_PAYLOAD_BYTES: usize = 64 * 1024 * 1024;

/// Largest payload a writer codes on the calling task instead of the
/// blocking pool: coding a few KiB takes microseconds, less than the two
/// thread hand-offs the pool costs, and small entries are what a lone
/// client's commits make.
pub const INLINE_CODING_BYTES: usize = 16 * 1024;
