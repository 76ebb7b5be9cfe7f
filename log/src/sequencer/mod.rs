//! Sequencers: who decides the order of entries.
//!
//! A sequencer orders entry *headers* (never payloads) and hands out seqs
//! gap-free from 0. [`Sequencer`] is shaped for three backends:
//!
//! - [`LocalSequencer`]: one process, a durable file with group commit (here);
//!   [`MemSequencer`] is its in-memory twin for tests;
//! - a Raft cluster: `append` proposes the header and returns once a quorum
//!   has it, `tail` is the commit index, `read` serves the applied log;
//! - an EVM contract: `append` submits a transaction and returns once it is
//!   final, `tail` follows finalized events.
//!
//! What all three share, and what the trait promises: `append` returns only
//! when the header is durable (it survives a crash of this process), every
//! seq below [`Sequencer::tail`] is readable forever and never changes, and
//! seqs have no gaps and no duplicates.

mod api;
mod local;
mod memory;
pub(crate) mod writer_thread;

pub use api::{Sequencer, SequencerError, WriteFault};
pub use local::{LocalSequencer, LocalSequencerOptions};
pub use memory::{MemLog, MemSequencer};
