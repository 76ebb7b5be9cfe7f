//! The retention part of the suite: writes interleaved with raises of the
//! horizon and collections, then every read against a model of every
//! version written, and the rows left against what the horizon needs.

use super::harness::{EngineHarness, run, small_key};
use super::history::{History, Rows, STREAMS, VersionWrite, scan_all, stage_version};
use crate::{Column, Engine, MvccError, MvccStore};
use proptest::prelude::*;
use std::cell::RefCell;
use std::collections::BTreeSet;

/// One step: a version's writes, then perhaps a raise of the horizon to
/// that fraction (of 255) of the newest version, then perhaps a collection.
type Step = (Vec<VersionWrite>, Option<u8>, bool);

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let value = proptest::option::weighted(0.7, proptest::collection::vec(any::<u8>(), 0..6));
    let write = (0..STREAMS.len(), small_key(), value);
    let step = (
        proptest::collection::vec(write, 1..4),
        proptest::option::weighted(0.3, any::<u8>()),
        proptest::bool::weighted(0.2),
    );
    proptest::collection::vec(step, 1..14)
}

/// What a read at `at >= horizon` must answer: the newest version at or
/// below `at`, but a tombstone at or below the horizon reads as absence.
pub(super) fn expected(
    history: &History,
    key: &(crate::StreamId, Vec<u8>),
    at: u64,
    horizon: u64,
) -> Option<(u64, Option<Vec<u8>>)> {
    let versions = history.get(key)?;
    let found = versions.iter().rev().find(|(v, _)| *v <= at).cloned()?;
    (found.1.is_some() || found.0 > horizon).then_some(found)
}

/// Writes the steps, raising the horizon and collecting as they say, into
/// the store and the history; returns the history and the final horizon.
fn write_steps<E: Engine>(
    store: &MvccStore<E>,
    steps: &[Step],
) -> Result<(History, u64), TestCaseError> {
    let mut history = History::new();
    for (version, (writes, raise, collect)) in (1u64..).zip(steps) {
        let mut batch = stage_version(&mut history, version, writes);
        batch.put(Column::Changes, version.to_be_bytes().to_vec(), vec![1]);
        store.engine().write(batch, false).map_err(fail)?;
        if let Some(fraction) = raise {
            store.advance_horizon(version * u64::from(*fraction) / 255);
        }
        if *collect {
            store.engine().collect().map_err(fail)?;
        }
    }
    Ok((history, store.horizon()))
}

fn fail(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

/// Reads below the horizon are refused naming it; reads at or above it
/// answer as the model says, points and scans.
pub(super) fn check_reads<E: Engine>(
    store: &MvccStore<E>,
    history: &History,
    horizon: u64,
    last: u64,
) -> Result<(), TestCaseError> {
    for at in 0..horizon {
        let refused = store.get(Column::Data, &STREAMS[0], b"k", at);
        prop_assert_eq!(
            refused,
            Err(MvccError::Compacted {
                asked: at,
                oldest: horizon
            })
        );
        let refused = store.scan(&STREAMS[0], b"", None, at, 10, 1 << 20);
        prop_assert_eq!(
            refused,
            Err(MvccError::Compacted {
                asked: at,
                oldest: horizon
            })
        );
    }
    for at in horizon..=last {
        for key in history.keys() {
            let got = store.get(Column::Data, &key.0, &key.1, at).map_err(fail)?;
            let got = got.map(|v| (v.version, v.value));
            prop_assert_eq!(
                got,
                expected(history, key, at, horizon),
                "{:?} at {}",
                key,
                at
            );
        }
        for stream in &STREAMS {
            let want: Rows = history
                .keys()
                .filter(|(s, _)| s == stream)
                .filter_map(|k| Some((k.1.clone(), expected(history, k, at, horizon)?.1?)))
                .collect();
            prop_assert_eq!(scan_all(store, stream, at)?, want, "scan at {}", at);
        }
    }
    Ok(())
}

/// The rows a full collection at `horizon` leaves: each key's versions
/// above the horizon, and its newest at or below it unless a tombstone.
fn rows_needed(history: &History, horizon: u64) -> BTreeSet<Vec<u8>> {
    let mut needed = BTreeSet::new();
    for ((stream, key), versions) in history {
        let at_horizon = versions.iter().rev().find(|(v, _)| *v <= horizon);
        for (version, value) in versions {
            let visible = at_horizon.is_some_and(|(v, _)| v == version) && value.is_some();
            if *version > horizon || visible {
                needed.insert(crate::keys::encode_versioned(stream, key, *version));
            }
        }
    }
    needed
}

fn stored_keys(engine: &impl Engine, column: Column) -> Result<Vec<Vec<u8>>, TestCaseError> {
    let mut keys = Vec::new();
    engine
        .scan_from(column, &[], &mut |k, _| {
            keys.push(k.to_vec());
            true
        })
        .map_err(fail)?;
    Ok(keys)
}

/// After a full collection the engine holds exactly the rows reads at or
/// above the horizon need, and counts the rest as collected.
fn check_collected(
    engine: &impl Engine,
    history: &History,
    horizon: u64,
    last: u64,
) -> Result<(), TestCaseError> {
    engine.collect().map_err(fail)?;
    let data = stored_keys(engine, Column::Data)?;
    let needed: Vec<_> = rows_needed(history, horizon).into_iter().collect();
    prop_assert_eq!(&data, &needed, "data rows left at horizon {}", horizon);
    let changes = stored_keys(engine, Column::Changes)?;
    let kept: Vec<_> = (horizon.max(1)..=last)
        .map(|v| v.to_be_bytes().to_vec())
        .collect();
    prop_assert_eq!(
        &changes,
        &kept,
        "change records left at horizon {}",
        horizon
    );
    let written: usize = history.values().map(Vec::len).sum::<usize>() + last as usize;
    let removed = (written - data.len() - changes.len()) as u64;
    prop_assert_eq!(
        engine.collected_rows(),
        removed,
        "rows counted as collected"
    );
    Ok(())
}

/// Collection, whenever it runs, never changes an answer at or above the
/// horizon; reads below it are refused with the oldest readable version;
/// a full collection leaves only what those answers need (and the files
/// say so after a reopen).
pub fn collection_keeps_every_answer_at_or_above_the_horizon<H: EngineHarness>(
    harness: &RefCell<H>,
) {
    run(
        "collection keeps every answer at or above the horizon",
        steps(),
        |steps| {
            let store = MvccStore::new(harness.borrow_mut().fresh());
            let (history, horizon) = write_steps(&store, &steps)?;
            let last = steps.len() as u64;
            check_reads(&store, &history, horizon, last)?;
            check_collected(store.engine(), &history, horizon, last)?;
            check_reads(&store, &history, horizon, last)?;
            if let Some(engine) = harness.borrow_mut().reopen(store.into_engine()) {
                let store = MvccStore::new(engine);
                store.advance_horizon(horizon);
                check_reads(&store, &history, horizon, last)?;
            }
            Ok(())
        },
    );
}

/// Versions the sweep must have removed: every version at or below each
/// delete the horizon reached.
fn swept_rows(history: &History, horizon: u64) -> BTreeSet<Vec<u8>> {
    let mut swept = BTreeSet::new();
    for ((stream, key), versions) in history {
        let deleted = versions
            .iter()
            .filter(|(v, value)| *v <= horizon && value.is_none());
        let Some(newest_delete) = deleted.map(|(v, _)| *v).max() else {
            continue;
        };
        for (version, _) in versions.iter().filter(|(v, _)| *v <= newest_delete) {
            swept.insert(crate::keys::encode_versioned(stream, key, *version));
        }
    }
    swept
}

/// A sweep removes every version a delete at or below the horizon
/// shadows, and the delete's own record, without changing an answer at or
/// above the horizon; deletes above it wait.
pub fn sweeping_removes_what_each_delete_the_horizon_passed_shadows<H: EngineHarness>(
    harness: &RefCell<H>,
) {
    run(
        "sweeping removes what each delete the horizon passed shadows",
        steps(),
        |steps| {
            let store = MvccStore::new(harness.borrow_mut().fresh());
            let (history, horizon) = write_steps(&store, &steps)?;
            let last = steps.len() as u64;
            while store.sweep_deletes(3).map_err(fail)? > 0 {}
            check_reads(&store, &history, horizon, last)?;
            let data: BTreeSet<_> = stored_keys(store.engine(), Column::Data)?
                .into_iter()
                .collect();
            let left: Vec<_> = swept_rows(&history, horizon)
                .intersection(&data)
                .cloned()
                .collect();
            prop_assert!(left.is_empty(), "rows a swept delete shadows: {:?}", left);
            for record in stored_keys(store.engine(), Column::Deletes)? {
                let version = u64::from_be_bytes(record[..8].try_into().expect("8 bytes"));
                prop_assert!(version > horizon, "a delete at {} is left", version);
            }
            Ok(())
        },
    );
}

/// A deleted key with a history longer than
/// [`crate::mvcc::SWEEP_POINT_DELETES`] is swept too (by a range
/// deletion), and a neighbour key with the same prefix keeps its rows.
pub fn a_deleted_key_with_a_long_history_is_swept_whole<H: EngineHarness>(harness: &mut H) {
    let store = MvccStore::new(harness.fresh());
    let depth = crate::mvcc::SWEEP_POINT_DELETES as u64 * 2;
    let mut batch = crate::WriteBatch::default();
    for version in 1..=depth {
        crate::mvcc::stage_write(
            &mut batch,
            Column::Data,
            &STREAMS[0],
            b"k",
            version,
            Some(b"v"),
        );
        crate::mvcc::stage_write(
            &mut batch,
            Column::Data,
            &STREAMS[0],
            b"k\0",
            version,
            Some(b"n"),
        );
    }
    crate::mvcc::stage_write(&mut batch, Column::Data, &STREAMS[0], b"k", depth + 1, None);
    store.engine().write(batch, false).expect("writes");
    store.advance_horizon(depth + 1);
    assert_eq!(store.sweep_deletes(10).expect("sweeps"), 1);
    let rows = stored_keys(store.engine(), Column::Data).expect("scans");
    let neighbour = crate::keys::encode_key_prefix(&STREAMS[0], b"k\0");
    assert_eq!(
        rows.len() as u64,
        depth,
        "only the neighbour's versions are left"
    );
    assert!(rows.iter().all(|row| row.starts_with(&neighbour)));
    let got = store
        .get(Column::Data, &STREAMS[0], b"k", depth + 1)
        .expect("reads");
    assert_eq!(got, None);
}
