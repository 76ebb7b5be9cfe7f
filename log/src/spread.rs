//! Entries whose shards live on other machines: the cluster's storage
//! members, reached over the network.
//!
//! A [`ShardStore`](crate::ShardStore) keeps single shards on this machine
//! and answers at once; an entry spread over storage members is written and
//! read as a whole, because what counts is how many of its shards became
//! durable (a write quorum) and whether any `k` of them verify, not where
//! each one went. [`SpreadShards`] is that whole-entry view; the log's
//! [`EntryWriter`](crate::EntryWriter) and [`EntryReader`](crate::EntryReader)
//! use it in place of a local store (`EntryWriter::spread`,
//! `EntryReader::spread`), so the commit path and replay do not know
//! whether the log is local or shared.

use crate::{EncodedEntry, EntryHeader, VerifiedPayload};

/// Why the shards of an entry could not be written or read where they
/// live. The cause is kept whole: the log layer does not know the
/// network's errors.
pub type SpreadError = Box<dyn std::error::Error + Send + Sync>;

/// How long a spread log's writes take, in microseconds: the two network
/// round trips every entry pays, one after the other.
#[derive(Debug)]
pub struct SpreadTimings {
    /// Storing the entry's shards until the write quorum is durable.
    pub store: crate::stats::Histogram,
    /// Ordering its header, until the sequencer answered with its seq.
    pub order: crate::stats::Histogram,
}

impl Default for SpreadTimings {
    fn default() -> Self {
        use crate::stats::{Histogram, LATENCY_BOUNDS_MICROS};
        Self {
            store: Histogram::new(LATENCY_BOUNDS_MICROS),
            order: Histogram::new(LATENCY_BOUNDS_MICROS),
        }
    }
}

/// Where the shards of whole entries are kept, across machines.
#[async_trait::async_trait]
pub trait SpreadShards: Send + Sync {
    /// Makes enough of `entry`'s shards durable that the entry survives the
    /// losses the implementation promises to survive (a write quorum of
    /// distinct members). Only after it returns may the entry be ordered.
    async fn store_entry(&self, entry: &EncodedEntry) -> Result<(), SpreadError>;

    /// The payload of the committed entry `header` names, rebuilt from
    /// shards that verify against its commitment. Never returns bytes that
    /// did not verify.
    async fn load_entry(&self, header: &EntryHeader) -> Result<VerifiedPayload, SpreadError>;
}
