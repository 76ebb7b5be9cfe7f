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
    /// Queues `shards` under `entry.commitment` for the next seq, and
    /// returns once the write is queued: entries submitted one after the
    /// other get seqs in that order. The returned [`PendingHeader`] resolves
    /// once the write is durable. The write itself is one atomic durable
    /// write: after a crash either both are there or neither is. Errors are
    /// the sequencer's: a failed write poisons the log until it is reopened.
    async fn submit_with_shards(
        &self,
        entry: EntryDescriptor,
        shards: Vec<Shard>,
    ) -> Result<PendingHeader, SequencerError>;

    /// [`JointLog::submit_with_shards`], then the wait for durability.
    async fn append_with_shards(
        &self,
        entry: EntryDescriptor,
        shards: Vec<Shard>,
    ) -> Result<EntryHeader, SequencerError> {
        self.submit_with_shards(entry, shards)
            .await?
            .durable()
            .await
    }
}

/// The header of an entry submitted to a [`JointLog`], once it is durable.
#[derive(Debug)]
pub struct PendingHeader(tokio::sync::oneshot::Receiver<Result<EntryHeader, SequencerError>>);

impl PendingHeader {
    /// Wraps the receiving end of the writer's answer.
    pub fn new(
        answer: tokio::sync::oneshot::Receiver<Result<EntryHeader, SequencerError>>,
    ) -> Self {
        Self(answer)
    }

    /// Waits until the entry is durable (or its write failed).
    pub async fn durable(self) -> Result<EntryHeader, SequencerError> {
        self.0.await.map_err(|_| SequencerError::Closed)?
    }
}
