//! A write-ahead journal of preallocated segments: how the joint log on
//! RocksDB ([`crate::RocksLog`]) makes a group durable with one cheap sync.
//!
//! # Why not RocksDB's own write-ahead log
//!
//! RocksDB appends to a growing file, so every synced write also changes
//! the file's size and `fdatasync` must write the inode as well as the
//! data. On this project's machines (ext4, virtio) that is 125-150 µs per
//! sync against 90-105 µs for the same bytes written into a file whose
//! blocks and size are already final (`docs/BENCHMARKS.md`, "One sync on a
//! file that does not grow"). RocksDB can reuse old log files, but only in
//! recovery modes that drop every record after a damaged one without an
//! error. The journal keeps the sync cheap and the error loud: segments are
//! zero-filled and synced before first use (by a keeper thread, ahead of
//! need) and reused after, records are checksummed frames, and recovery
//! tells a torn last record from damage in the middle.
//!
//! # The protocol
//!
//! The owner writes each record to the journal first (one synchronous
//! write, see `direct`), then applies the same bytes to its store
//! *without* the store's own log; only then is the write acknowledged. What the store holds in memory is
//! therefore always also in the journal, and:
//!
//! - **Retirement.** When a segment fills, the writer seals it (a synced
//!   seal frame) and moves to the next; the keeper asks the store to make
//!   everything durable (a flush of its memtables), then keeps the oldest
//!   retired segment as the spare that becomes a later segment and removes
//!   the others.
//! - **Recovery.** On open, every record in the journal is applied again,
//!   in order ([`recover`]). Records are whole store batches (puts and
//!   deletes of fixed keys), so applying a run of them again over a store
//!   that already holds some is harmless: each key ends at the value of
//!   its last write, and every write since the last retirement is in the
//!   run. The owner then makes the store durable and starts a fresh
//!   segment ([`Journal::start`]), reusing two old ones (as the first
//!   segment and the spare) and removing the rest. Every segment is read
//!   twice on open, once to check the damage rules and once to apply:
//!   nothing is applied from a journal that fails the check.
//! - **Damage.** Only the last record can be torn by a crash, and every
//!   segment but the last ends in its seal; a broken frame with a whole
//!   one after it, or a later segment after an unsealed one, is
//!   [`JournalError::Corrupt`], never skipped.
//!
//! # Layout
//!
//! - `direct`: frames written with `O_DIRECT | O_DSYNC`, block by block.
//! - `format`: segment names, the frame of a record, the scan of a segment.
//! - `recover`: which segments count, which damage is allowed, replay.
//! - `writer`: [`Journal`]: appends, rotation, and the keeper thread.

mod direct;
mod format;
mod recover;
mod writer;

pub use format::JournalError;
pub(crate) use recover::recover;
pub use recover::{SegmentSummary, inspect};
pub(crate) use writer::{Journal, MakeDurable};
