//! The conformance suites of the log's storage traits.
//!
//! Every implementation of a trait runs its trait's suite from its tests;
//! each check panics with a message naming the rule it found broken.
//! Keeping the rules here, next to the traits, means a new backend (a
//! remote storage node, a raft or chain sequencer) is held to exactly the
//! same promises as the existing ones.
//!
//! ## Layout
//!
//! - [`shards`]: [`shard_store`], the suite of [`crate::ShardStore`].
//! - [`sequencers`]: [`sequencer`], the suite of [`crate::Sequencer`], and
//!   [`SequencerHarness`], how the suite opens, stops and damages one.

pub mod sequencers;
pub mod shards;

pub use sequencers::{SequencerHarness, sequencer};
pub use shards::shard_store;
