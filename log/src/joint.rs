//! Logs whose shard store and sequencer share one disk, and so one sync.
//!
//! In a cluster the shards of an entry live on storage nodes and its header
//! on the sequencers: two durable writes on different machines, made one
//! after the other so that an ordered header never names missing data. On
//! one machine that order costs two syncs per entry for nothing: if the
//! shards and the header reach the disk in one atomic write, the header can
//! never be durable without its shards either. [`JointLog`] is that one
//! write; [`crate::EntryWriter::joint`] uses it.
//!
//! A joint log is still a [`ShardStore`] and a [`Sequencer`], and passes
//! both suites: readers, the log service and replay see nothing different.

use crate::{EntryDescriptor, EntryHeader, Sequencer, SequencerError, Shard, ShardStore};

/// A shard store and a sequencer that make an entry's shards and its
/// header durable in one write.
#[async_trait::async_trait]
pub trait JointLog: ShardStore + Sequencer {
    /// Stores `shards` under `entry.commitment` and gives the entry the next
    /// seq, in one atomic durable write: after a crash either both are there
    /// or neither is. Returns once the write is durable. Errors are the
    /// sequencer's: a failed write poisons the log until it is reopened.
    async fn append_with_shards(
        &self,
        entry: EntryDescriptor,
        shards: Vec<Shard>,
    ) -> Result<EntryHeader, SequencerError>;

    /// [`JointLog::append_with_shards`] on the calling thread, which it
    /// blocks through the sync: for a caller that owns its thread, to
    /// which a hand-off to the log's own writer and back would cost two
    /// wake-ups. Never call it from an async worker thread.
    fn append_with_shards_blocking(
        &self,
        entry: EntryDescriptor,
        shards: Vec<Shard>,
    ) -> Result<EntryHeader, SequencerError>;
}
