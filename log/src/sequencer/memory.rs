//! An in-memory sequencer: the second implementation of [`Sequencer`],
//! for tests and for holding the conformance suite to more than one
//! backend.
//!
//! Its "durable" state is a [`MemLog`], which outlives the sequencers
//! opened over it (not the process): closing a sequencer and opening
//! another over the same log is what a restart is for the file-backed one.
//! The log can be told to leave a torn write behind or to fail its next
//! write, so that the suite can check the crash and failure rules.

use super::api::{Sequencer, SequencerError};
use crate::limits::MAX_READ_BATCH;
use crate::{EntryDescriptor, EntryHeader};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// The state an in-memory sequencer keeps across reopening.
#[derive(Debug, Default)]
pub struct MemLog {
    state: Mutex<MemLogState>,
}

#[derive(Debug, Default)]
struct MemLogState {
    /// Acknowledged headers, seq = position.
    headers: Vec<EntryHeader>,
    /// An append that was cut short: never acknowledged, dropped on open.
    torn: Option<EntryDescriptor>,
    /// The next write fails (as a full disk or a failed fsync would).
    fail_next_write: bool,
    /// A sequencer is open over the log.
    open: bool,
}

impl MemLog {
    /// An empty log.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn state(&self) -> MutexGuard<'_, MemLogState> {
        // Every change is one assignment or push: a panic elsewhere while the
        // lock was held cannot leave the state half-changed.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Leaves an append cut short at the end of the log, as a crash in the
    /// middle of a write would. The next open must drop it.
    pub fn tear_tail(&self, torn: EntryDescriptor) {
        self.state().torn = Some(torn);
    }

    /// Makes the next write fail.
    pub fn fail_next_write(&self) {
        self.state().fail_next_write = true;
    }
}

/// A sequencer over a [`MemLog`]; see the module documentation.
#[derive(Debug)]
pub struct MemSequencer {
    log: Arc<MemLog>,
    tail: watch::Sender<u64>,
    /// Set by a failed write: appends are refused until reopened, as for
    /// the file-backed sequencer.
    poisoned: Mutex<Option<String>>,
    closed: std::sync::atomic::AtomicBool,
}

impl MemSequencer {
    /// Opens a sequencer over `log`, dropping a torn tail. Fails while
    /// another sequencer is open over the same log.
    pub fn open(log: Arc<MemLog>) -> Result<Self, SequencerError> {
        let tail = {
            let mut state = log.state();
            if state.open {
                return Err(SequencerError::Locked("in-memory log".into()));
            }
            state.open = true;
            state.torn = None;
            state.headers.len() as u64
        };
        Ok(Self {
            log,
            tail: watch::Sender::new(tail),
            poisoned: Mutex::new(None),
            closed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Stops taking appends and lets another sequencer open the log.
    pub fn close(&self) {
        use std::sync::atomic::Ordering;
        if !self.closed.swap(true, Ordering::SeqCst) {
            self.log.state().open = false;
        }
    }

    fn poisoned(&self) -> MutexGuard<'_, Option<String>> {
        self.poisoned.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for MemSequencer {
    fn drop(&mut self) {
        self.close();
    }
}

#[async_trait::async_trait]
impl Sequencer for MemSequencer {
    async fn append(&self, entry: EntryDescriptor) -> Result<EntryHeader, SequencerError> {
        entry.validate()?;
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(SequencerError::Closed);
        }
        if let Some(reason) = self.poisoned().clone() {
            return Err(SequencerError::Poisoned(reason));
        }
        let mut state = self.log.state();
        if std::mem::take(&mut state.fail_next_write) {
            let reason = "write failed (injected)".to_string();
            *self.poisoned() = Some(reason.clone());
            return Err(SequencerError::Poisoned(reason));
        }
        let header = EntryHeader {
            seq: state.headers.len() as u64,
            entry,
        };
        state.headers.push(header.clone());
        self.tail.send_replace(state.headers.len() as u64);
        Ok(header)
    }

    async fn read(&self, from: u64, max: usize) -> Result<Vec<EntryHeader>, SequencerError> {
        let state = self.log.state();
        let start =
            usize::try_from(from).map_or(state.headers.len(), |f| f.min(state.headers.len()));
        let end = start
            .saturating_add(max.min(MAX_READ_BATCH))
            .min(state.headers.len());
        Ok(state.headers[start..end].to_vec())
    }

    fn tail(&self) -> u64 {
        *self.tail.borrow()
    }

    async fn wait_beyond(&self, seq: u64) -> Result<u64, SequencerError> {
        let mut tail = self.tail.subscribe();
        let reached = tail
            .wait_for(|t| *t > seq)
            .await
            .map_err(|_| SequencerError::Closed)?;
        Ok(*reached)
    }
}
