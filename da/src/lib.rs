//! # ordo-da: blobs a holder of a small commitment can check piece by piece
//!
//! The commitments and certificates of ordo's data availability: a blob becomes
//! segments of field elements (no padding beyond its last segment), each
//! segment gets a KZG commitment with Ethereum's trusted setup, and the
//! blob id hashes them with the size. Anyone holding the commitment checks
//! the whole blob ([`BlobCommitment::matches`]) or a single cell of 1,984
//! bytes with its proof ([`verify_opening`]) without the rest of the blob.
//!
//! ## Layout
//!
//! - [`limits`]: every bound, with its reason.
//! - [`pack`]: bytes as field elements and segments, and back.
//! - [`commit`](mod@commit): [`BlobCommitment`], its `ODC1` bytes and the blob id.
//! - [`opening`]: [`CellOpening`]s of a segment and their check.
//! - [`certificate`]: a dispersed blob's [`Certificate`] and [`verify`],
//!   which checks it trusting only the keys its caller names.
//!
//! Certificates know log headers (`ordo-log` without RocksDB) and
//! secp256k1 signatures (`ordo-txn`'s wire half); nothing here has a
//! store or a network.
//!
//! ## Invariants
//!
//! - Every packed element is below the field's modulus by construction
//!   (a zero byte, then 31), so committing never fails on user data.
//! - Nothing here reads a clock, randomness, the network or a setting; the
//!   trusted setup is compiled in.
//! - A decoded commitment or opening is checked in full (magic, counts,
//!   lengths; points where the library uses them) before anything is
//!   believed: they come from strangers.

pub mod certificate;
pub mod commit;
pub mod limits;
pub mod opening;
pub mod pack;

pub use certificate::{
    Certificate, CertificateError, ChainInclusion, EventRef, Trust, Verified, verify,
};
pub use commit::{BlobCommitment, commit};
pub use opening::{CellOpening, open_segment, verify_opening};

/// Why a blob could not be committed, or a commitment or opening checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DaError {
    /// The blob is larger than [`limits::MAX_BLOB_BYTES`].
    #[error("a blob of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The KZG library refused an input (a point or element that is not
    /// canonical) or failed.
    #[error("KZG: {0}")]
    Kzg(String),
    /// Commitment bytes that are not a commitment.
    #[error("malformed blob commitment: {0}")]
    BadCommitment(String),
    /// An opening that does not prove what it claims.
    #[error("opening refused: {0}")]
    BadOpening(String),
}
