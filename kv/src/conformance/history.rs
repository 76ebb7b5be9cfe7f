//! The model of versioned writes the MVCC checks compare against: every
//! version written, by key.

use super::harness::small_key;
use crate::mvcc::stage_write;
use crate::{Column, Engine, MvccStore, StreamId, WriteBatch};
use proptest::prelude::*;
use std::collections::BTreeMap;

pub(super) const STREAMS: [StreamId; 2] = [[1; 32], [2; 32]];

/// Every version ever written, by (stream, key).
pub(super) type History = BTreeMap<(StreamId, Vec<u8>), Vec<(u64, Option<Vec<u8>>)>>;

/// A write of one version: (stream index, key, value or None to delete).
pub(super) type VersionWrite = (usize, Vec<u8>, Option<Vec<u8>>);

pub(super) fn versions() -> impl Strategy<Value = Vec<Vec<VersionWrite>>> {
    let value = proptest::option::weighted(0.75, proptest::collection::vec(any::<u8>(), 0..6));
    let write = (0..STREAMS.len(), small_key(), value);
    proptest::collection::vec(proptest::collection::vec(write, 1..4), 1..10)
}

pub(super) fn value_at(
    history: &History,
    stream: &StreamId,
    key: &[u8],
    at: u64,
) -> Option<(u64, Option<Vec<u8>>)> {
    let versions = history.get(&(*stream, key.to_vec()))?;
    versions.iter().rev().find(|(v, _)| *v <= at).cloned()
}

/// Writes each batch of `versions` as the next version, into the engine
/// and the history.
pub(super) fn write_versions(
    engine: &impl Engine,
    versions: &[Vec<VersionWrite>],
) -> Result<History, TestCaseError> {
    let mut history = History::new();
    for (version, writes) in (1u64..).zip(versions) {
        let batch = stage_version(&mut history, version, writes);
        engine
            .write(batch, false)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    Ok(history)
}

/// `writes` as version `version`: a batch, and the history told of them.
pub(super) fn stage_version(
    history: &mut History,
    version: u64,
    writes: &[VersionWrite],
) -> WriteBatch {
    let mut batch = WriteBatch::default();
    for (s, key, value) in writes {
        let stream = &STREAMS[*s];
        stage_write(
            &mut batch,
            Column::Data,
            stream,
            key,
            version,
            value.as_deref(),
        );
        let h = history.entry((*stream, key.clone())).or_default();
        if h.last().is_some_and(|(v, _)| *v == version) {
            h.pop();
        }
        h.push((version, value.clone()));
    }
    batch
}

/// Live (key, value) rows.
pub(super) type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// Pages through `stream` at `at` two rows at a time.
pub(super) fn scan_all<E: Engine>(
    store: &MvccStore<E>,
    stream: &StreamId,
    at: u64,
) -> Result<Rows, TestCaseError> {
    let mut rows = Vec::new();
    let mut from = Vec::new();
    loop {
        let page = store
            .scan(stream, &from, None, at, 2, 1 << 20)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        rows.extend(page.rows.into_iter().map(|r| (r.key, r.value)));
        match page.resume_from {
            Some(next) => from = next,
            None => return Ok(rows),
        }
    }
}
