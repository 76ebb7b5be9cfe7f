//! Every limit of the mining scheme, with the reason for its value.

/// Largest chunk an entry may have and still be mined. A proof carries one
/// whole sealed chunk, so this bounds a proof's size (about 66 KiB sealed,
/// plus its path); entries with larger chunks (bulk blobs coded for
/// throughput) are stored and served like any other but earn nothing.
pub const MAX_MINED_CHUNK_BYTES: u32 = 64 * 1024;

/// Data bytes per sealed word: 31 bytes always fit below the field's prime
/// (2^256 - 2^32 - 977), so every data word is a field element.
pub const DATA_WORD_BYTES: usize = 31;

/// Bytes per sealed word: one canonical field element.
pub const SEALED_WORD_BYTES: usize = 32;

/// Largest sealed chunk, from [`MAX_MINED_CHUNK_BYTES`].
pub const MAX_SEALED_CHUNK_BYTES: usize =
    (MAX_MINED_CHUNK_BYTES as usize).div_ceil(DATA_WORD_BYTES) * SEALED_WORD_BYTES;

/// Most sibling hashes in a proof's path: the log's own bound on proofs.
pub const MAX_PATH_HASHES: usize = ordo_log::limits::MAX_PROOF_HASHES;

/// Largest encoded proof.
pub const MAX_PROOF_BYTES: usize =
    4 + 8 + 20 + 8 + 8 + 4 + MAX_SEALED_CHUNK_BYTES + 1 + 32 * MAX_PATH_HASHES;

/// Fewest entries in an epoch. An epoch of one entry would let the
/// submitter of each closing header pick the next challenge with every
/// header it writes; a few dozen entries spread that influence over many
/// submitters and give miners time to search.
pub const MIN_EPOCH_ENTRIES: u64 = 4;

/// Most entries in an epoch: at a thousand entries a second, about 12 days.
pub const MAX_EPOCH_ENTRIES: u64 = 1 << 30;

/// Most proofs per epoch the difficulty may steer toward. Every proof is
/// verified by every replica, so this bounds replay's mining work.
pub const MAX_TARGET_PROOFS: u32 = 4096;

/// An epoch accepts at most this many times its target number of proofs;
/// the rest are refused (typed) so a lucky or cheap epoch cannot flood replay.
pub const PROOFS_PER_EPOCH_FACTOR: u32 = 2;

/// The difficulty's target changes by at most this factor per epoch, up or
/// down, so one odd epoch cannot swing it.
pub const MAX_TARGET_STEP: u64 = 2;

/// Epochs after its own during which a proof is still accepted: a proof
/// found late in epoch `e` may be ordered early in `e + 1`.
pub const PROOF_WINDOW_EPOCHS: u64 = 1;
