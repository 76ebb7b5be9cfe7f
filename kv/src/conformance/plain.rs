//! The plain checks: an engine as a sorted map, seeking scans, and MVCC
//! reads at every version.

use super::harness::{EngineHarness, run, small_key};
use super::history::{History, STREAMS, scan_all, value_at, versions, write_versions};
use crate::mvcc::stage_write;
use crate::{Column, Engine, MvccStore, Next, WriteBatch};
use proptest::prelude::*;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// `Engine::scan_seeking` visits in key order, jumps forward to the first
/// key at or after a seek's target (present or not), and stops when told.
pub fn a_seeking_scan_moves_forward_as_its_visitor_says<H: EngineHarness>(harness: &mut H) {
    let engine = harness.fresh();
    let mut batch = WriteBatch::default();
    for k in [0u8, 1, 2, 5, 7, 8, 9] {
        batch.put(Column::Meta, vec![k], vec![k]);
    }
    engine.write(batch, false).expect("write");
    let mut seen = Vec::new();
    engine
        .scan_seeking(Column::Meta, &[1], &mut |k, v| {
            assert_eq!(k, v, "each key with its own value");
            seen.push(k[0]);
            match k[0] {
                2 => Next::Seek(vec![3]),
                5 => Next::Seek(vec![7]),
                8 => Next::Stop,
                _ => Next::Continue,
            }
        })
        .expect("scan");
    assert_eq!(
        seen,
        [1, 2, 5, 7, 8],
        "seeks land on the first key at or after the target"
    );
}

type Model = BTreeMap<(Column, Vec<u8>), Vec<u8>>;

/// A put or delete: (column index, key, value or None to delete).
type Op = (usize, Vec<u8>, Option<Vec<u8>>);

fn batches() -> impl Strategy<Value = Vec<Vec<Op>>> {
    let value = proptest::option::weighted(0.75, proptest::collection::vec(any::<u8>(), 0..8));
    let op = (0..Column::ALL.len(), small_key(), value);
    proptest::collection::vec(proptest::collection::vec(op, 0..12), 1..8)
}

fn apply(engine: &impl Engine, model: &mut Model, batch: &[Op]) -> Result<(), TestCaseError> {
    let mut wb = WriteBatch::default();
    for (c, key, value) in batch {
        let column = Column::ALL[*c];
        match value {
            Some(v) => {
                wb.put(column, key.clone(), v.clone());
                model.insert((column, key.clone()), v.clone());
            }
            None => {
                wb.delete(column, key.clone());
                model.remove(&(column, key.clone()));
            }
        }
    }
    engine
        .write(wb, false)
        .map_err(|e| TestCaseError::fail(format!("write failed: {e}")))
}

/// Every read agrees with the model: point gets, batched gets in request
/// order, and ordered scans from any key that stop when told.
fn check_reads(
    engine: &impl Engine,
    model: &Model,
    probes: &[Vec<u8>],
) -> Result<(), TestCaseError> {
    let failed = |e: crate::EngineError| TestCaseError::fail(format!("read failed: {e}"));
    for column in Column::ALL {
        let wanted: Vec<_> = probes
            .iter()
            .map(|p| model.get(&(column, p.clone())).cloned())
            .collect();
        let batched = engine.get_many(column, probes).map_err(failed)?;
        prop_assert_eq!(batched, wanted, "get_many must answer in request order");
        for probe in probes {
            let want = model.get(&(column, probe.clone())).cloned();
            prop_assert_eq!(
                engine.get(column, probe).map_err(failed)?,
                want,
                "get of {:?}",
                probe
            );
            let mut got = Vec::new();
            let mut visit = |k: &[u8], v: &[u8]| {
                got.push((k.to_vec(), v.to_vec()));
                got.len() < 3
            };
            engine
                .scan_from(column, probe, &mut visit)
                .map_err(failed)?;
            let want: Vec<_> = model
                .range((column, probe.clone())..)
                .take_while(|((c, _), _)| *c == column)
                .take(3)
                .map(|((_, k), v)| (k.clone(), v.clone()))
                .collect();
            prop_assert_eq!(
                got,
                want,
                "scan of {:?} from {:?} must follow key order",
                column,
                probe
            );
        }
    }
    Ok(())
}

fn probes(batches: &[Vec<Op>]) -> Vec<Vec<u8>> {
    let mut probes = vec![vec![], vec![0], vec![0xFF, 0xFF]];
    probes.extend(batches.iter().flatten().map(|(_, key, _)| key.clone()));
    probes
}

/// Random batches read back as a sorted map would, and again after a
/// reopen where the engine keeps its files.
pub fn batches_read_back_like_a_sorted_map<H: EngineHarness>(harness: &RefCell<H>) {
    run(
        "batches read back like a sorted map",
        batches(),
        |batches| {
            let mut model = Model::new();
            let engine = harness.borrow_mut().fresh();
            for batch in &batches {
                apply(&engine, &mut model, batch)?;
            }
            check_reads(&engine, &model, &probes(&batches))?;
            if let Some(reopened) = harness.borrow_mut().reopen(engine) {
                check_reads(&reopened, &model, &probes(&batches))?;
            }
            Ok(())
        },
    );
}

/// Over the engine, MVCC reads at every version see exactly what was
/// written by then, and paged scans return each live key once, in order.
pub fn mvcc_reads_match_every_version_written<H: EngineHarness>(harness: &RefCell<H>) {
    run(
        "MVCC reads match every version written",
        versions(),
        |versions| {
            let engine = harness.borrow_mut().fresh();
            let history = write_versions(&engine, &versions)?;
            let last = versions.len() as u64;
            let store = MvccStore::new(engine);
            check_every_version(&store, &history, last)?;
            // Again from files, where an engine may filter by key prefix.
            let reopened = harness.borrow_mut().reopen(store.into_engine());
            if let Some(engine) = reopened {
                check_every_version(&MvccStore::new(engine), &history, last)?;
            }
            Ok(())
        },
    );
}

/// Every key of `history` at every version up to `last` (and a key next to
/// each, never written), and every stream's scan, as the model says.
fn check_every_version<E: Engine>(
    store: &MvccStore<E>,
    history: &History,
    last: u64,
) -> Result<(), TestCaseError> {
    for at in 0..=last {
        for (stream, key) in history.keys() {
            let got = store
                .get(Column::Data, stream, key, at)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let got = got.map(|v| (v.version, v.value));
            prop_assert_eq!(
                got,
                value_at(history, stream, key, at),
                "{:?} at {}",
                key,
                at
            );
            let mut neighbour = key.clone();
            neighbour.push(0);
            if !history.contains_key(&(*stream, neighbour.clone())) {
                let got = store
                    .get(Column::Data, stream, &neighbour, at)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(got.is_none(), "{:?} was never written", neighbour);
            }
        }
        for stream in &STREAMS {
            let want: Vec<_> = history
                .keys()
                .filter(|(s, _)| s == stream)
                .filter_map(|(s, k)| value_at(history, s, k, at)?.1.map(|v| (k.clone(), v)))
                .collect();
            prop_assert_eq!(scan_all(store, stream, at)?, want, "scan at {}", at);
        }
    }
    Ok(())
}

/// A scan page stops before passing its byte bound, but always returns
/// at least one row, and an end key bounds it.
pub fn scan_pages_respect_the_byte_bound_but_always_progress<H: EngineHarness>(harness: &mut H) {
    let store = MvccStore::new(harness.fresh());
    let mut batch = WriteBatch::default();
    for k in 0u8..5 {
        stage_write(
            &mut batch,
            Column::Data,
            &STREAMS[0],
            &[k],
            1,
            Some(&[k; 100]),
        );
    }
    store.engine().write(batch, false).expect("write");
    let page = store
        .scan(&STREAMS[0], &[], None, 1, 100, 150)
        .expect("scan");
    assert_eq!(
        page.rows.len(),
        1,
        "a second 101-byte row would pass 150 bytes"
    );
    assert_eq!(
        page.resume_from,
        Some(vec![1]),
        "the page must say where to resume"
    );
    let page = store.scan(&STREAMS[0], &[], None, 1, 100, 1).expect("scan");
    assert_eq!(
        page.rows.len(),
        1,
        "one row even when it alone is over the bound"
    );
    let page = store
        .scan(&STREAMS[0], &[1], Some(&[3]), 1, 100, 1 << 20)
        .expect("scan");
    let keys: Vec<_> = page.rows.iter().map(|r| r.key.clone()).collect();
    assert_eq!(keys, vec![vec![1], vec![2]], "the end key is exclusive");
    assert_eq!(
        page.resume_from, None,
        "a finished range has no resume point"
    );
}
