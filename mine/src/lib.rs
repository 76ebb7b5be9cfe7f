//! # ordo-mine: storage members prove, again and again, that they hold their shards
//!
//! Proof of random access over ordo's log: each epoch's challenge, drawn
//! from the log itself, makes every attempt of every miner recall one
//! chunk of the data ordered so far; a miner that holds the chunk, sealed
//! with its own id, computes the attempt's quality, and a quality under the
//! epoch's target is a proof any replica can check with no trust in the
//! miner. This crate is the scheme's arithmetic, pure and deterministic;
//! replay and the storage members use it.
//!
//! ## Layout
//!
//! - [`limits`]: every bound of the scheme, with its reason.
//! - [`seal`]: the per-miner seal (slow to make, quick to undo).
//! - [`challenge`]: epochs, challenges, recall, quality, [`Target`].
//! - [`difficulty`]: the next epoch's target.
//! - [`proof`]: [`MiningProof`], its bytes, and [`verify`].
//! - [`miner`]: the miner's index of mineable chunks, sealed shards and the
//!   search over nonces.
//!
//! ## Invariants
//!
//! - Nothing here reads a clock, randomness, the network or a setting:
//!   every result is a function of its arguments, so every replica agrees.
//! - A proof verifies only if its chunk, unsealed with the miner's seal,
//!   proves against the recalled entry's commitment at the recalled place.
//! - The crate knows the log's entries and commitments (ordo-log, without
//!   RocksDB), nothing of transactions, stores or networks.

pub mod challenge;
pub mod difficulty;
pub mod limits;
pub mod miner;
pub mod proof;
pub mod seal;

pub use challenge::{Target, challenge as epoch_challenge, closing_seq, epoch_of, header_hash};
pub use difficulty::next_target;
pub use miner::{Holdings, RecallIndex, SealedShard, Search, held_in, search};
pub use proof::{EpochContext, MinedEntry, MiningProof, ProofError, verify};
pub use seal::{SealError, SealPlace};
