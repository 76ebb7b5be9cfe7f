//! Every limit of a transaction, as a named constant.
//!
//! Checked when a record is decoded (so a replica never allocates more than
//! these for a forged record) and reported as typed errors.

/// Longest user key.
pub const MAX_KEY_BYTES: usize = 4096;

/// Longest value.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;

/// Longest stream name (the creator-chosen part of a stream id).
pub const MAX_STREAM_NAME_BYTES: usize = 256;

/// Most read-set items (keys and ranges) in one transaction.
pub const MAX_READS: usize = 4096;

/// Most writes in one transaction.
pub const MAX_WRITES: usize = 4096;

/// Most access-control operations in one transaction.
pub const MAX_ACL_OPS: usize = 256;

/// Longest mining proof an operation may carry: above the longest proof
/// the mining scheme makes (one sealed chunk of at most 64 KiB and its
/// path, about 68 KiB; a test in replay holds the two together).
pub const MAX_MINING_PROOF_BYTES: usize = 72 * 1024;

/// Largest encoded transaction.
pub const MAX_TXN_BYTES: usize = 4 * 1024 * 1024;

/// Most bytes one transaction of an entry may take as the entry carries
/// it: a transaction at its limit plus a signed one's length prefix and
/// signature (69 bytes), with room to spare. An entry holding a longer one
/// does not decode at all; every transaction that decodes on its own fits.
pub const MAX_ITEM_BYTES: usize = MAX_TXN_BYTES + 100;

/// Most transactions in one batch (one log entry).
pub const MAX_BATCH_TXNS: usize = 16_384;

/// How many versions back a transaction may read and still be validated.
///
/// The replayer remembers which keys each of the last `CONFLICT_WINDOW`
/// commit versions wrote; a transaction whose read version is older than
/// that cannot be checked for conflicts and aborts with `TooOld`. At about
/// 100 bytes per remembered write this bounds the window near 10-20 MB for
/// typical transactions, and at 100k commits/s it still gives a client a
/// second between reading and committing.
pub const CONFLICT_WINDOW: u64 = 100_000;

/// Most parts a record may name: 128 MiB in parts of at least 2 MiB. The
/// node cuts blobs into parts of `PART_BYTES` (16 MiB), far below it.
pub const MAX_BLOB_PARTS: usize = 64;

/// Largest blob a record may describe: 128 MiB, the size `ordo-da` commits
/// to (`ordo_da::limits::MAX_BLOB_BYTES`; a test in `ordo-da` holds the
/// two equal).
pub const MAX_DA_BLOB_BYTES: u64 = 128 << 20;

/// Longest KZG commitment a record may carry: `ODC1` for a blob of
/// [`MAX_DA_BLOB_BYTES`] is 16 + 1,058 x 48 = 50,800 bytes.
pub const MAX_DA_COMMITMENT_BYTES: usize = 64 * 1024;
