//! What every sequencer is: the [`Sequencer`] trait, its error, and the
//! switch that injects a failed write (see the module documentation of
//! [`crate::sequencer`] for the promises).

use crate::{EntryDescriptor, EntryHeader, LogError};
use std::sync::atomic::{AtomicBool, Ordering};

/// Why a sequencer operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SequencerError {
    /// The descriptor breaks a limit; nothing was ordered.
    #[error("invalid entry: {0}")]
    Invalid(#[from] LogError),
    /// An earlier write or fsync failed. The sequencer refuses further appends
    /// until it is reopened, because after a failed fsync the file's contents
    /// are unknown; reopening re-reads what really reached the disk.
    #[error("sequencer stopped after a failed write ({0}); reopen it")]
    Poisoned(String),
    /// The sequencer was closed.
    #[error("sequencer is closed")]
    Closed,
    /// Another process (or another handle) holds the log.
    #[error("log at {0} is locked by another process")]
    Locked(String),
    /// Reading or opening the log failed.
    #[error("sequencer I/O: {0}")]
    Io(String),
    /// The log on disk is damaged somewhere other than its torn tail.
    #[error("log file is corrupt at byte {offset}: {reason}")]
    Corrupt {
        /// Byte offset of the damaged frame.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A stored header is damaged or missing below the tail.
    #[error("stored header of seq {seq} is corrupt: {reason}")]
    CorruptHeader {
        /// The seq whose header is damaged.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
}

impl From<std::io::Error> for SequencerError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e.to_string())
    }
}

/// A switch that makes a sequencer's next durable write fail, as a full
/// disk or a failed fsync would: how the conformance suite checks that a
/// failed write stops the sequencer. Nodes never arm it.
#[derive(Debug, Default)]
pub struct WriteFault(AtomicBool);

impl WriteFault {
    /// The next write fails.
    pub fn arm(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether this write must fail (disarming the switch).
    pub fn take(&self) -> bool {
        self.0.swap(false, Ordering::SeqCst)
    }
}

/// Orders entry headers. See the module documentation for the promises.
#[async_trait::async_trait]
pub trait Sequencer: Send + Sync {
    /// Gives the entry the next seq. Returns once the header is durable.
    async fn append(&self, entry: EntryDescriptor) -> Result<EntryHeader, SequencerError>;

    /// Committed headers from seq `from`, at most `max` (capped at
    /// [`crate::limits::MAX_READ_BATCH`]); empty when `from` is at or past the tail.
    async fn read(&self, from: u64, max: usize) -> Result<Vec<EntryHeader>, SequencerError>;

    /// Number of committed entries: the seq the next entry will get.
    fn tail(&self) -> u64;

    /// Waits until the tail is beyond `seq` (entry `seq` is committed) and
    /// returns the tail. Callers bound the wait with their own timeout.
    async fn wait_beyond(&self, seq: u64) -> Result<u64, SequencerError>;
}
