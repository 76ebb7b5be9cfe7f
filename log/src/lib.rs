//! # ordo-log: the verifiable, erasure-coded shared log
//!
//! The log is ordo's only source of truth: an append-only sequence of
//! entries, each a payload with tags (stream ids) and a submitter. This crate
//! turns payloads into entries and back, and keeps their order.
//!
//! ## Layout
//!
//! - [`limits`]: every size limit, as named constants.
//! - [`merkle`]: keyed-BLAKE3 Merkle trees and range proofs.
//! - [`entry`]: [`Geometry`], Reed-Solomon coding ([`Coder`]), the entry
//!   commitment, and proofs for chunks, chunk runs and whole shards.
//! - [`header`]: [`EntryHeader`], what the sequencer orders, and its
//!   canonical versioned encoding.
//! - [`shard_store`]: the [`ShardStore`] trait and an in-memory store;
//!   `rocks_shards` holds the RocksDB store (feature `rocksdb`, on by
//!   default; off, the crate builds without any C++, e.g. for fuzzing).
//! - [`sequencer`]: the [`Sequencer`] trait, [`LocalSequencer`] (a
//!   durable file with group commit) and [`MemSequencer`] (in memory, for
//!   tests).
//! - [`joint`]: [`JointLog`], a shard store and sequencer on one disk that
//!   make an entry's shards and header durable with one sync;
//!   `rocks_log` holds [`RocksLog`], the one on RocksDB (feature `rocksdb`)
//!   that `ordo dev` runs on.
//! - `journal` (feature `rocksdb`): a write-ahead journal of preallocated,
//!   reused segments, which makes a `RocksLog` write durable with one
//!   synchronous (direct) write on a file that does not grow; `journaled` puts it in
//!   front of any RocksDB database (`JournaledDb`: the shard store of
//!   storage members, the raft voters' log store).
//! - [`placement`]: which storage member holds which shard, a pure
//!   function of the commitment and the members.
//! - [`spread`]: [`SpreadShards`], whole entries whose shards live on a
//!   cluster's storage members (written to a quorum, read from any `k`
//!   that verify).
//! - [`conformance`]: the suites every [`ShardStore`] and every
//!   [`Sequencer`] must pass.
//! - [`io`]: [`EntryWriter`] (code, store, then order) and [`EntryReader`]
//!   (verify each shard, rebuild from any `k`); `wait_here` (private)
//!   waits for a future on the calling thread, for the writer's blocking
//!   append.
//!
//! ## Invariants
//!
//! - A header is ordered only after its shards are durably stored.
//! - A shard is used only after it verifies against the commitment.
//! - Seqs are gap-free from 0; a committed header never changes.
//! - The crate knows nothing of transactions, gRPC or SQL: payloads are bytes.

pub mod conformance;
pub mod entry;
mod error;
pub mod header;
pub mod io;
pub mod joint;
#[cfg(feature = "rocksdb")]
pub mod journal;
#[cfg(feature = "rocksdb")]
pub mod journaled;
pub mod limits;
pub mod merkle;
pub mod placement;
#[cfg(feature = "rocksdb")]
pub mod rocks_log;
#[cfg(feature = "rocksdb")]
pub mod rocks_shards;
pub mod sequencer;
pub mod shard_store;
pub mod spread;
pub mod stats;
pub mod stress;
mod wait_here;

pub use entry::{
    ChunkRangeProof, Coder, EncodedEntry, Geometry, Shard, VerifiedPayload, prove_chunk_in_shard,
    verify_chunks, verify_shard,
};
pub use error::LogError;
pub use header::{Address, EntryDescriptor, EntryHeader, StreamId};
pub use io::{CodingParams, EntryError, EntryReader, EntryWriter, RecentPayloads, load_payload};
pub use joint::JointLog;
#[cfg(feature = "rocksdb")]
pub use rocks_log::{RocksLog, RocksLogOptions};
#[cfg(feature = "rocksdb")]
pub use rocks_shards::RocksShardStore;
pub use sequencer::{
    LocalSequencer, LocalSequencerOptions, MemLog, MemSequencer, Sequencer, SequencerError,
    WriteFault,
};
pub use shard_store::{MemShardStore, ShardStore, StoreError};
pub use spread::{SpreadError, SpreadShards, SpreadTimings};

/// A 32-byte BLAKE3 hash.
pub type Hash = [u8; 32];

/// Lower-case hex of a hash, for messages.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
