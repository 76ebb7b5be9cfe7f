//! # ordo-txn: transactions and the deterministic replayer
//!
//! Transactions are recorded in the log and decided only when the log is
//! replayed, identically on every replica: serializable optimistic
//! concurrency control (read set unchanged since the read version, ranges
//! included), access control, and idempotency by transaction id.
//!
//! ## Layout
//!
//! - [`limits`]: every limit of a transaction.
//! - [`codec`]: the bounded canonical byte reader and writer.
//! - [`record`]: [`Transaction`], its read and write sets, ACL operations,
//!   signed transactions and batches, with their encodings.
//! - [`da`]: blob parts and records (data availability): the wire half,
//!   and with feature `replay` the rules replay decides them by.
//! - [`attest`]: attested entries (transactions a gateway vouches for,
//!   one signature per entry) and the genesis record.
//! - [`sign`](mod@sign): secp256k1 signing and sender recovery (Ethereum addresses).
//! - [`presign`]: signatures whose nonce is prepared before the message,
//!   which a node signs its attested entries with (feature `presign`).
//! - [`ids`]: stream ids, bound to their creator.
//! - [`acl`]: the access-control rules and facts (feature `replay`).
//! - [`window`]: the conflict window of recent writes (feature `replay`).
//! - [`changes`]: the per-entry record of written keys that rebuilds the
//!   window and feeds watchers (feature `replay`).
//! - [`outcome`]: what replay decides, [`Outcome`].
//! - [`mining`]: storage mining in replay: the recall index, epochs, and
//!   decisions on mining operations, over `ordo-mine`'s scheme (feature
//!   `replay`).
//! - [`retention`]: the retention policy and horizon in replay, and
//!   decisions on retention operations (feature `replay`).
//! - [`replay`]: `check_entry` (stateless, parallelisable) and `Replayer`
//!   (ordered decisions and atomic apply) (feature `replay`).
//! - `testkit`: fixtures for tests and benchmarks in every crate (feature
//!   `testkit`, and this crate's own tests).
//!
//! Without default features only the wire half is built (records,
//! signatures, limits, outcomes, stream ids), free of the store and RocksDB:
//! that is what clients use.

#[cfg(feature = "replay")]
pub mod acl;
pub mod attest;
#[cfg(feature = "replay")]
pub mod changes;
pub mod codec;
pub mod da;
pub mod ids;
pub mod limits;
#[cfg(feature = "replay")]
pub mod mining;
pub mod outcome;
#[cfg(feature = "presign")]
pub mod presign;
pub mod record;
#[cfg(feature = "replay")]
pub mod replay;
#[cfg(feature = "replay")]
pub mod retention;
pub mod sign;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
#[cfg(feature = "replay")]
pub mod window;

/// The hash map of replay's per-transaction lookups.
///
/// foldhash instead of the standard SipHash: those lookups hash every key a
/// transaction reads or writes, and SipHash was a tenth of replay's time.
/// Its per-process random seed keeps crafted keys from colliding on purpose,
/// and no decision depends on iteration order, so the seed cannot leak into
/// results.
#[cfg(feature = "replay")]
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// The hash set of replay's per-transaction lookups (see [`FastMap`]).
#[cfg(feature = "replay")]
pub(crate) type FastSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;

/// A 32-byte stream id (the same type as `ordo_kv::StreamId`).
pub type StreamId = [u8; 32];

#[cfg(feature = "replay")]
pub use acl::Fact;
pub use ids::stream_id;
pub use outcome::Outcome;
pub use record::{
    AclOp, Address, MiningOp, Read, RetentionOp, SignedTransaction, Transaction, TxnId, Write,
    decode_batch, encode_batch, encode_encoded_batch,
};
#[cfg(feature = "replay")]
pub use replay::{
    Applied, Checked, DecodedEntry, EntryBody, KnownSignatures, NoneKnown, ReplayError, Replayer,
    VouchedEntry, check_entry, check_entry_with,
};
pub use sign::{SigningKey, address_of, sign, verify};
