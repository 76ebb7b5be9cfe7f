//! A [`Store`] inside the process: a replayer over a local engine, with each
//! commit applied as its own log entry.
//!
//! It runs the very decision code every ordo replica runs (conflicts,
//! duplicates, access control), minus the network and the shared log. Tests
//! and benchmarks of the SQL layer use it; so can a program that embeds
//! ordo's SQL over a private store. Its transactions never leave the
//! process, so it takes them as signed by its own address rather than
//! spending a signature on each.

use crate::error::SqlError;
use crate::store::{Commit, ScanPage, Space, Store, mvcc_get, mvcc_scan};
use ordo_kv::Engine;
use ordo_txn::{Checked, Outcome, Replayer, StreamId, Transaction};
use std::sync::Mutex;

/// The address the local store writes as.
pub const LOCAL_SENDER: [u8; 20] = [0x5c; 20];
/// The name of the stream SQL data lives in.
pub const LOCAL_STREAM_NAME: &[u8] = b"sql";

/// An in-process store over a replayer.
#[derive(Debug)]
pub struct LocalStore<E> {
    replayer: Mutex<Replayer<E>>,
    stream: StreamId,
}

fn store_error(e: impl std::fmt::Display) -> SqlError {
    SqlError::Store(e.to_string())
}

impl<E: Engine> LocalStore<E> {
    /// Opens the store on `engine`, creating its stream on first use.
    pub fn open(engine: E) -> Result<Self, SqlError> {
        let replayer = Replayer::open(engine).map_err(store_error)?;
        let store = Self {
            stream: ordo_txn::stream_id(&LOCAL_SENDER, LOCAL_STREAM_NAME),
            replayer: Mutex::new(replayer),
        };
        let create = Transaction {
            sender: LOCAL_SENDER,
            ..Transaction::create_stream([0; 16], 0, LOCAL_STREAM_NAME.to_vec())
        };
        match store.apply(|_| create)? {
            Outcome::Committed { .. } | Outcome::Duplicate { .. } => Ok(store),
            other => Err(SqlError::Store(format!(
                "creating the SQL stream: {}",
                other.kind()
            ))),
        }
    }

    /// The stream holding the SQL data.
    pub fn stream(&self) -> StreamId {
        self.stream
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Replayer<E>> {
        self.replayer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies the transaction `build` makes from the entry's position,
    /// under one lock, so concurrent commits get distinct positions.
    fn apply(&self, build: impl FnOnce(u64) -> Transaction) -> Result<Outcome, SqlError> {
        let mut replayer = self.lock();
        let seq = replayer.applied().next_seq;
        let mut outcomes = replayer
            .apply_entry(seq, vec![Checked::valid(build(seq))])
            .map_err(store_error)?;
        outcomes
            .pop()
            .ok_or_else(|| SqlError::Store("replay returned no outcome".into()))
    }
}

impl<E: Engine> Store for LocalStore<E> {
    fn latest_version(&self) -> Result<u64, SqlError> {
        Ok(self.lock().applied().version)
    }

    fn get(&self, key: &[u8], at: u64) -> Result<Option<Vec<u8>>, SqlError> {
        mvcc_get(self.lock().store(), &self.stream, key, at)
    }

    fn scan(
        &self,
        space: Space,
        range: (&[u8], Option<&[u8]>),
        at: u64,
        limit: usize,
    ) -> Result<ScanPage, SqlError> {
        let stream = space.stream(self.stream);
        mvcc_scan(self.lock().store(), &stream, range, at, limit)
    }

    fn commit(&self, commit: Commit) -> Result<Outcome, SqlError> {
        let stream = self.stream;
        // One commit per entry, so the entry's position is a unique id.
        self.apply(move |seq| {
            commit.into_transaction(u128::from(seq).to_be_bytes(), LOCAL_SENDER, stream)
        })
    }
}
