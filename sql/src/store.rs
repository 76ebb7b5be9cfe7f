//! The seam between SQL and the transactional key-value store, and the
//! transaction buffer that sits on it.
//!
//! [`Store`] is all SQL needs: snapshot reads of one stream at a version and
//! an optimistic commit of a read set and a write set. The server implements
//! it over its replica and commit path; [`crate::local::LocalStore`]
//! implements it over an in-process replayer. [`Txn`] buffers one
//! transaction's writes (so it reads its own writes) and records everything
//! it read, which is what makes the commit serializable.

use crate::encoding::prefix_end;
use crate::error::SqlError;
use ordo_txn::Outcome;
use ordo_txn::limits::{MAX_READS, MAX_WRITES};
use std::collections::BTreeMap;

/// Rows a store returns per scan call; [`Txn::scan`] pages through.
pub const SCAN_PAGE_ROWS: usize = 1000;

/// A stored key and its value.
pub type KvPair = (Vec<u8>, Vec<u8>);

/// A key or key range a transaction read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadSpan {
    /// One key.
    Key(Vec<u8>),
    /// `start <= key < end` (no end: every key from `start`).
    Range {
        /// First key, inclusive.
        start: Vec<u8>,
        /// Last key, exclusive.
        end: Option<Vec<u8>>,
    },
}

/// What a transaction asks the store to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// The snapshot every read was made at.
    pub read_version: u64,
    /// Everything read.
    pub reads: Vec<ReadSpan>,
    /// Keys to set (`Some`) or delete (`None`), in key order.
    pub writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Commit {
    /// The ordo transaction that carries this commit, with every read and
    /// write in `stream`, sent by `sender` under id `id`.
    pub fn into_transaction(
        self,
        id: ordo_txn::TxnId,
        sender: ordo_txn::Address,
        stream: ordo_txn::StreamId,
    ) -> ordo_txn::Transaction {
        ordo_txn::Transaction {
            id,
            sender,
            read_version: self.read_version,
            reads: self
                .reads
                .into_iter()
                .map(|read| match read {
                    ReadSpan::Key(key) => ordo_txn::Read::Key { stream, key },
                    ReadSpan::Range { start, end } => ordo_txn::Read::Range { stream, start, end },
                })
                .collect(),
            writes: self
                .writes
                .into_iter()
                .map(|(key, value)| ordo_txn::Write { stream, key, value })
                .collect(),
            acl: vec![],
        }
    }
}

/// Up to a page of live rows, and where the next page starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanPage {
    /// `(key, value)` in key order.
    pub rows: Vec<KvPair>,
    /// The key to continue from, when the range has more rows.
    pub resume: Option<Vec<u8>>,
}

impl From<ordo_kv::mvcc::ScanPage> for ScanPage {
    /// A page of the MVCC store, as SQL reads it (versions dropped).
    fn from(page: ordo_kv::mvcc::ScanPage) -> Self {
        ScanPage {
            rows: page.rows.into_iter().map(|r| (r.key, r.value)).collect(),
            resume: page.resume_from,
        }
    }
}

/// The reads of a [`Store`] kept in an MVCC store: the value of `key` in
/// `stream` at version `at`.
pub fn mvcc_get<E: ordo_kv::Engine>(
    state: &ordo_kv::MvccStore<E>,
    stream: &ordo_txn::StreamId,
    key: &[u8],
    at: u64,
) -> Result<Option<Vec<u8>>, SqlError> {
    let found = state.get(ordo_kv::Column::Data, stream, key, at);
    Ok(found.map_err(read_error)?.and_then(|v| v.value))
}

/// The SQL error of a failed read of the store: below the retention
/// horizon, `72000 snapshot too old` (PostgreSQL's code for it).
fn read_error(e: ordo_kv::MvccError) -> SqlError {
    match e {
        ordo_kv::MvccError::Compacted { asked, oldest } => {
            SqlError::SnapshotTooOld { asked, oldest }
        }
        e => SqlError::Store(e.to_string()),
    }
}

/// [`Store::scan`] over an MVCC store (see [`mvcc_get`]), pages bounded by
/// the store's largest scan.
pub fn mvcc_scan<E: ordo_kv::Engine>(
    state: &ordo_kv::MvccStore<E>,
    stream: &ordo_txn::StreamId,
    (start, end): (&[u8], Option<&[u8]>),
    at: u64,
    limit: usize,
) -> Result<ScanPage, SqlError> {
    let bytes = ordo_kv::mvcc::MAX_SCAN_BYTES;
    let page = state.scan(stream, start, end, at, limit, bytes);
    Ok(page.map_err(read_error)?.into())
}

/// The stream a scan reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// The store's own stream: the tables.
    Own,
    /// The log's system stream, read only: what the views of
    /// [`crate::system`] show.
    System,
}

impl Space {
    /// The stream id of this space for a store whose own stream is `own`.
    pub fn stream(self, own: ordo_txn::StreamId) -> ordo_txn::StreamId {
        match self {
            Space::Own => own,
            Space::System => ordo_txn::attest::SYSTEM_STREAM,
        }
    }
}

/// Snapshot reads and optimistic commits on one stream.
pub trait Store {
    /// The newest committed version readers can see.
    fn latest_version(&self) -> Result<u64, SqlError>;
    /// The value of `key` at version `at`.
    fn get(&self, key: &[u8], at: u64) -> Result<Option<Vec<u8>>, SqlError>;
    /// Live rows of `space` whose keys lie in `range` (`start <= key <
    /// end`, no end: to the end of the stream) at version `at`, at most
    /// `limit`.
    fn scan(
        &self,
        space: Space,
        range: (&[u8], Option<&[u8]>),
        at: u64,
        limit: usize,
    ) -> Result<ScanPage, SqlError>;
    /// Submits a transaction and waits for the log's decision.
    fn commit(&self, commit: Commit) -> Result<Outcome, SqlError>;
}

impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn latest_version(&self) -> Result<u64, SqlError> {
        (**self).latest_version()
    }
    fn get(&self, key: &[u8], at: u64) -> Result<Option<Vec<u8>>, SqlError> {
        (**self).get(key, at)
    }
    fn scan(
        &self,
        space: Space,
        range: (&[u8], Option<&[u8]>),
        at: u64,
        limit: usize,
    ) -> Result<ScanPage, SqlError> {
        (**self).scan(space, range, at, limit)
    }
    fn commit(&self, commit: Commit) -> Result<Outcome, SqlError> {
        (**self).commit(commit)
    }
}

/// One transaction in progress: a snapshot, its reads and buffered writes.
#[derive(Debug, Clone)]
pub struct Txn {
    version: u64,
    reads: Vec<ReadSpan>,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Whether reads are recorded (off for AS OF reads, which never commit).
    track: bool,
}

impl Txn {
    /// A transaction reading at `version`.
    pub fn new(version: u64) -> Self {
        Self {
            version,
            reads: Vec::new(),
            writes: BTreeMap::new(),
            track: true,
        }
    }

    /// A read-only view of version `version` that records nothing.
    pub fn read_only(version: u64) -> Self {
        Self {
            track: false,
            ..Self::new(version)
        }
    }

    /// The snapshot version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Whether anything was written.
    pub fn has_writes(&self) -> bool {
        !self.writes.is_empty()
    }

    /// The value of `key`: this transaction's own write, or the snapshot's.
    pub fn get(&mut self, store: &impl Store, key: &[u8]) -> Result<Option<Vec<u8>>, SqlError> {
        if let Some(written) = self.writes.get(key) {
            return Ok(written.clone());
        }
        if self.track {
            self.reads.push(ReadSpan::Key(key.to_vec()));
        }
        store.get(key, self.version)
    }

    /// Every live row with `start <= key < end`, own writes included, in
    /// key order. The whole range joins the read set, so a row another
    /// transaction inserts into it later is a conflict (no phantoms).
    pub fn scan(
        &mut self,
        store: &impl Store,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Result<Vec<KvPair>, SqlError> {
        if self.track {
            self.reads.push(ReadSpan::Range {
                start: start.to_vec(),
                end: end.map(<[u8]>::to_vec),
            });
        }
        let mut rows: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut from = start.to_vec();
        loop {
            let page = store.scan(Space::Own, (&from, end), self.version, SCAN_PAGE_ROWS)?;
            rows.extend(page.rows);
            match page.resume {
                Some(next) if next > from => from = next,
                _ => break,
            }
        }
        let upper = end.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        for (key, value) in self
            .writes
            .range::<[u8], _>((std::ops::Bound::Included(start), upper))
        {
            match value {
                Some(v) => rows.insert(key.clone(), v.clone()),
                None => rows.remove(key),
            };
        }
        Ok(rows.into_iter().collect())
    }

    /// Every live row whose key starts with `prefix`.
    pub fn scan_prefix(
        &mut self,
        store: &impl Store,
        prefix: &[u8],
    ) -> Result<Vec<KvPair>, SqlError> {
        self.scan(store, prefix, prefix_end(prefix).as_deref())
    }

    /// Buffers a write of `key`.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), SqlError> {
        self.buffer(key, Some(value))
    }

    /// Buffers a delete of `key`.
    pub fn delete(&mut self, key: Vec<u8>) -> Result<(), SqlError> {
        self.buffer(key, None)
    }

    fn buffer(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) -> Result<(), SqlError> {
        if !self.track {
            return Err(SqlError::InvalidTransactionState(
                "cannot write in a read-only (AS OF) view".into(),
            ));
        }
        if self.writes.len() >= MAX_WRITES && !self.writes.contains_key(&key) {
            return Err(SqlError::LimitExceeded(format!(
                "a transaction writes at most {MAX_WRITES} keys (rows plus index entries); split the work into smaller transactions"
            )));
        }
        self.writes.insert(key, value);
        Ok(())
    }

    /// The commit request: reads (coarsened to whole tables when there are
    /// more than the transaction limit allows) and writes.
    pub fn into_commit(self) -> Result<Commit, SqlError> {
        let reads = coarsen(self.reads);
        if reads.len() > MAX_READS {
            return Err(SqlError::LimitExceeded(format!(
                "a transaction reads at most {MAX_READS} separate keys or ranges"
            )));
        }
        Ok(Commit {
            read_version: self.version,
            reads,
            writes: self.writes.into_iter().collect(),
        })
    }
}

/// Length of the key prefix that names a table or index (prefix byte, table
/// id, and for index keys the index id).
fn object_prefix(key: &[u8]) -> &[u8] {
    let len = match key.first() {
        Some(&crate::encoding::INDEX) => 9,
        Some(&crate::encoding::ROWS) => 5,
        _ => 2,
    };
    &key[..len.min(key.len())]
}

/// Drops repeated spans and, past [`MAX_READS`], replaces single-key reads
/// by one range over their whole table or index. A wider read set can only
/// add conflicts, never hide one, so this keeps the commit serializable.
fn coarsen(reads: Vec<ReadSpan>) -> Vec<ReadSpan> {
    let mut unique: Vec<ReadSpan> = Vec::with_capacity(reads.len());
    let mut seen = std::collections::HashSet::new();
    for read in reads {
        if seen.insert(read.clone()) {
            unique.push(read);
        }
    }
    if unique.len() <= MAX_READS {
        return unique;
    }
    let mut prefixes = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for read in unique {
        match read {
            ReadSpan::Key(key) => {
                prefixes.insert(object_prefix(&key).to_vec());
            }
            range => out.push(range),
        }
    }
    out.extend(prefixes.into_iter().map(|prefix| ReadSpan::Range {
        end: prefix_end(&prefix),
        start: prefix,
    }));
    out
}

impl std::hash::Hash for ReadSpan {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            ReadSpan::Key(k) => (0u8, k).hash(state),
            ReadSpan::Range { start, end } => (1u8, start, end).hash(state),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_key_reads_become_table_ranges() {
        let reads: Vec<ReadSpan> = (0..MAX_READS as u32 + 10)
            .map(|i| {
                let mut key = crate::encoding::rows_prefix(7);
                key.extend_from_slice(&i.to_be_bytes());
                ReadSpan::Key(key)
            })
            .collect();
        let coarse = coarsen(reads);
        assert_eq!(
            coarse,
            vec![ReadSpan::Range {
                start: crate::encoding::rows_prefix(7),
                end: Some(crate::encoding::rows_prefix(8)),
            }]
        );
    }
}
