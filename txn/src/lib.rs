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
//! - [`sign`]: secp256k1 signing and sender recovery (Ethereum addresses).
//! - [`acl`]: stream ids and the access-control rules.
//! - [`window`]: the conflict window of recent writes.
//! - [`outcome`]: what replay decides, [`Outcome`].
//! - [`replay`]: [`check_entry`] (stateless, parallelisable) and
//!   [`Replayer`] (ordered decisions and atomic apply).

pub mod acl;
pub mod codec;
pub mod limits;
pub mod outcome;
pub mod record;
pub mod replay;
pub mod sign;
pub mod window;

pub use acl::{Fact, stream_id};
pub use outcome::Outcome;
pub use record::{
    AclOp, Address, Read, SignedTransaction, Transaction, TxnId, Write, decode_batch, encode_batch,
};
pub use replay::{Applied, Checked, ReplayError, Replayer, check_entry};
pub use sign::{SigningKey, address_of, sign, verify};
