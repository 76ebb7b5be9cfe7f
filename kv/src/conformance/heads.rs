//! The heads part of the suite (see [`crate::heads`]): writes through the
//! store interleaved with passes, raises of the horizon and collections;
//! scans, whole and bounded, against the model at every version the store
//! answers; then a store opened again over the same engine, which rebuilds
//! the heads unless they covered every write.

use super::harness::{EngineHarness, run, small_key};
use super::history::{History, STREAMS, VersionWrite, stage_version};
use super::retention::{check_reads, expected};
use crate::heads::{HeadsPhase, HeadsStep};
use crate::{Engine, MvccStore, NewestLimits};
use proptest::prelude::*;
use std::cell::RefCell;
use std::sync::Arc;

/// One step: a version's writes, then perhaps a raise of the horizon to
/// that fraction (of 255) of the newest version, a collection, a pass.
type Step = (Vec<VersionWrite>, Option<u8>, bool, bool);

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let value = proptest::option::weighted(0.7, proptest::collection::vec(any::<u8>(), 0..6));
    let write = (0..STREAMS.len(), small_key(), value);
    let step = (
        proptest::collection::vec(write, 1..4),
        proptest::option::weighted(0.2, any::<u8>()),
        proptest::bool::weighted(0.2),
        proptest::bool::weighted(0.5),
    );
    proptest::collection::vec(step, 1..14)
}

fn fail(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

/// Bounded scans at `at`, each from one key of the history to the next
/// one, against the model.
fn check_bounded_scans<E: Engine>(
    store: &MvccStore<E>,
    history: &History,
    at: u64,
    horizon: u64,
) -> Result<(), TestCaseError> {
    let keys: Vec<_> = history.keys().collect();
    for pair in keys.windows(2).filter(|w| w[0].0 == w[1].0) {
        let (stream, start, end) = (&pair[0].0, &pair[0].1, &pair[1].1);
        let page = store
            .scan(stream, start, Some(end), at, 100, 1 << 20)
            .map_err(fail)?;
        let got: Vec<_> = page.rows.into_iter().map(|r| (r.key, r.value)).collect();
        let want: Vec<_> = expected(history, pair[0], at, horizon)
            .and_then(|(_, value)| Some((start.clone(), value?)))
            .into_iter()
            .collect();
        prop_assert_eq!(got, want, "scan [{:?}, {:?}) at {}", start, end, at);
    }
    Ok(())
}

/// Runs a pass until nothing is pending; returns the covered version.
fn settle<E: Engine>(store: &MvccStore<E>) -> Result<u64, TestCaseError> {
    while store.maintain_heads().map_err(fail)? != HeadsStep::Idle {}
    let heads = store.heads().expect("a cached store keeps heads");
    match heads.stats().phase {
        HeadsPhase::Ready { covered } => Ok(covered),
        other => Err(fail(format!("heads {other:?} after settling"))),
    }
}

/// Writes the steps through the store, checking the scans the heads serve
/// after every pass; returns the history.
fn write_steps<E: Engine>(store: &MvccStore<E>, steps: &[Step]) -> Result<History, TestCaseError> {
    let mut history = History::new();
    for (version, (writes, raise, collect, pass)) in (1u64..).zip(steps) {
        let batch = stage_version(&mut history, version, writes);
        store.write(batch, false).map_err(fail)?;
        if let Some(fraction) = raise {
            store.advance_horizon(version * u64::from(*fraction) / 255);
        }
        if *collect {
            store.engine().collect().map_err(fail)?;
        }
        if *pass {
            store.maintain_heads().map_err(fail)?;
        }
        // At the newest version the heads serve, pending notes or not.
        check_bounded_scans(store, &history, version, store.horizon())?;
    }
    Ok(history)
}

/// Scans through the heads answer like scans of the data column, at every
/// version at or above the horizon, whatever the passes, the collections
/// and the rebuild of a store opened again have done.
pub fn scans_through_the_heads_match_the_model<H: EngineHarness>(harness: &RefCell<H>) {
    run(
        "scans through the heads match the model",
        steps(),
        |steps| {
            let engine = Arc::new(harness.borrow_mut().fresh());
            let store = MvccStore::cached(engine.clone(), NewestLimits::default(), 0);
            let history = write_steps(&store, &steps)?;
            let (last, horizon) = (steps.len() as u64, store.horizon());
            check_reads(&store, &history, horizon, last)?;
            prop_assert_eq!(settle(&store)?, last, "a settled pass covers every write");
            check_reads(&store, &history, horizon, last)?;
            store.engine().collect().map_err(fail)?;
            check_reads(&store, &history, horizon, last)?;
            // Opened again over the same engine, as after a restart, and
            // told the newest write is one further on than any pass saw:
            // the notes of that write would be lost, so the heads rebuild.
            let reopened = MvccStore::cached(engine, NewestLimits::default(), last + 1);
            reopened.advance_horizon(horizon);
            let stats = reopened.heads().expect("heads").stats();
            prop_assert_eq!(stats.phase, HeadsPhase::Stale);
            check_reads(&reopened, &history, horizon, last + 1)?;
            prop_assert_eq!(
                settle(&reopened)?,
                last + 1,
                "a rebuild covers the newest write"
            );
            check_reads(&reopened, &history, horizon, last + 1)?;
            Ok(())
        },
    );
}
