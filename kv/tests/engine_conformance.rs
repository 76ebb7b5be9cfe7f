//! One conformance suite for every `Engine`: random batches of puts and
//! deletes over every column, then every read the engine offers, compared
//! with a plain `BTreeMap` model. Run against `MemEngine` and `RocksEngine`
//! (the latter across a reopen, so what it returns came from disk).
//! The MVCC layer on top is checked the same way: reads at every version
//! and paged scans against a model of every version ever written.
#![allow(clippy::unwrap_used)]

use ordo_kv::mvcc::stage_write;
use ordo_kv::{Column, Engine, MemEngine, MvccStore, RocksEngine, StreamId, WriteBatch};
use proptest::prelude::*;
use std::collections::BTreeMap;

type Model = BTreeMap<(Column, Vec<u8>), Vec<u8>>;

#[derive(Debug, Clone)]
enum Op {
    Put(usize, Vec<u8>, Vec<u8>),
    Delete(usize, Vec<u8>),
}

fn small_key() -> impl Strategy<Value = Vec<u8>> {
    // Few distinct keys, so that overwrites and deletes hit existing ones;
    // zero bytes and prefixes included.
    proptest::collection::vec(
        prop_oneof![Just(0u8), Just(1u8), Just(0xFFu8), any::<u8>()],
        0..4,
    )
}

fn op() -> impl Strategy<Value = Op> {
    let column = 0..Column::ALL.len();
    prop_oneof![
        3 => (column.clone(), small_key(), proptest::collection::vec(any::<u8>(), 0..8)).prop_map(|(c, k, v)| Op::Put(c, k, v)),
        1 => (column, small_key()).prop_map(|(c, k)| Op::Delete(c, k)),
    ]
}

fn batches() -> impl Strategy<Value = Vec<Vec<Op>>> {
    proptest::collection::vec(proptest::collection::vec(op(), 0..12), 1..8)
}

fn apply(engine: &impl Engine, model: &mut Model, batch: &[Op]) {
    let mut wb = WriteBatch::default();
    for op in batch {
        match op {
            Op::Put(c, k, v) => {
                wb.put(Column::ALL[*c], k.clone(), v.clone());
                model.insert((Column::ALL[*c], k.clone()), v.clone());
            }
            Op::Delete(c, k) => {
                wb.delete(Column::ALL[*c], k.clone());
                model.remove(&(Column::ALL[*c], k.clone()));
            }
        }
    }
    engine.write(wb, false).unwrap();
}

fn check(engine: &impl Engine, model: &Model, probes: &[Vec<u8>]) -> Result<(), TestCaseError> {
    for column in Column::ALL {
        let wanted: Vec<_> = probes
            .iter()
            .map(|probe| model.get(&(column, probe.clone())).cloned())
            .collect();
        prop_assert_eq!(engine.get_many(column, probes).unwrap(), wanted);
        for probe in probes {
            let want = model.get(&(column, probe.clone())).cloned();
            prop_assert_eq!(engine.get(column, probe).unwrap(), want);
            let mut got = Vec::new();
            engine
                .scan_from(column, probe, &mut |k, v| {
                    got.push((k.to_vec(), v.to_vec()));
                    got.len() < 3
                })
                .unwrap();
            let want: Vec<_> = model
                .range((column, probe.clone())..)
                .take_while(|((c, _), _)| *c == column)
                .take(3)
                .map(|((_, k), v)| (k.clone(), v.clone()))
                .collect();
            prop_assert_eq!(got, want, "scan of {:?} from {:?}", column, probe);
        }
    }
    Ok(())
}

fn probes(batches: &[Vec<Op>]) -> Vec<Vec<u8>> {
    let mut probes = vec![vec![], vec![0], vec![0xFF, 0xFF]];
    for op in batches.iter().flatten() {
        let (Op::Put(_, k, _) | Op::Delete(_, k)) = op;
        probes.push(k.clone());
    }
    probes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn mem_engine_conforms(batches in batches()) {
        let (engine, mut model) = (MemEngine::new(), Model::new());
        for batch in &batches {
            apply(&engine, &mut model, batch);
        }
        check(&engine, &model, &probes(&batches))?;
    }

    #[test]
    fn rocks_engine_conforms_across_a_reopen(batches in batches()) {
        let dir = tempfile::tempdir().unwrap();
        let mut model = Model::new();
        {
            let engine = RocksEngine::open(dir.path()).unwrap();
            for batch in &batches {
                apply(&engine, &mut model, batch);
            }
            check(&engine, &model, &probes(&batches))?;
        }
        let engine = RocksEngine::open(dir.path()).unwrap();
        check(&engine, &model, &probes(&batches))?;
    }
}

// ---------------------------------------------------------------- MVCC

const STREAMS: [StreamId; 2] = [[1; 32], [2; 32]];

/// Every version ever written, by (stream, key).
type History = BTreeMap<(StreamId, Vec<u8>), Vec<(u64, Option<Vec<u8>>)>>;

fn value_at(
    history: &History,
    stream: &StreamId,
    key: &[u8],
    at: u64,
) -> Option<(u64, Option<Vec<u8>>)> {
    history
        .get(&(*stream, key.to_vec()))?
        .iter()
        .rev()
        .find(|(v, _)| *v <= at)
        .cloned()
}

/// A write of one version: (stream index, key, value or None to delete).
type VersionWrite = (usize, Vec<u8>, Option<Vec<u8>>);

fn versions() -> impl Strategy<Value = Vec<Vec<VersionWrite>>> {
    let write = (
        0..STREAMS.len(),
        small_key(),
        proptest::option::weighted(0.75, proptest::collection::vec(any::<u8>(), 0..6)),
    );
    proptest::collection::vec(proptest::collection::vec(write, 1..4), 1..10)
}

fn check_mvcc<E: Engine>(engine: E, versions: &[Vec<VersionWrite>]) -> Result<(), TestCaseError> {
    let mut history = History::new();
    for (i, writes) in versions.iter().enumerate() {
        let version = i as u64 + 1;
        let mut batch = WriteBatch::default();
        for (s, key, value) in writes {
            stage_write(
                &mut batch,
                Column::Data,
                &STREAMS[*s],
                key,
                version,
                value.as_deref(),
            );
            let h = history.entry((STREAMS[*s], key.clone())).or_default();
            if h.last().is_some_and(|(v, _)| *v == version) {
                h.pop();
            }
            h.push((version, value.clone()));
        }
        engine.write(batch, false).unwrap();
    }
    let store = MvccStore::new(engine);
    let keys: Vec<(StreamId, Vec<u8>)> = history.keys().cloned().collect();
    for at in 0..=versions.len() as u64 {
        for (stream, key) in &keys {
            let got = store
                .get(Column::Data, stream, key, at)
                .unwrap()
                .map(|v| (v.version, v.value));
            prop_assert_eq!(
                got,
                value_at(&history, stream, key, at),
                "{:?} at {}",
                key,
                at
            );
        }
        for stream in &STREAMS {
            // Page through with a tiny page size: every live key exactly once, in order.
            let mut rows = Vec::new();
            let mut from = Vec::new();
            loop {
                let page = store.scan(stream, &from, None, at, 2, 1 << 20).unwrap();
                rows.extend(page.rows.into_iter().map(|r| (r.key, r.value)));
                match page.resume_from {
                    Some(next) => from = next,
                    None => break,
                }
            }
            let want: Vec<_> = keys
                .iter()
                .filter(|(s, _)| s == stream)
                .filter_map(|(s, k)| {
                    value_at(&history, s, k, at)
                        .and_then(|(_, v)| v)
                        .map(|v| (k.clone(), v))
                })
                .collect();
            prop_assert_eq!(rows, want, "scan at {}", at);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn mvcc_reads_match_history_in_memory(versions in versions()) {
        check_mvcc(MemEngine::new(), &versions)?;
    }

    #[test]
    fn mvcc_reads_match_history_on_rocksdb(versions in versions()) {
        let dir = tempfile::tempdir().unwrap();
        check_mvcc(RocksEngine::open(dir.path()).unwrap(), &versions)?;
    }
}

#[test]
fn scan_pages_respect_the_byte_bound_but_always_make_progress() {
    let store = MvccStore::new(MemEngine::new());
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
    store.engine().write(batch, false).unwrap();
    let page = store.scan(&STREAMS[0], &[], None, 1, 100, 150).unwrap();
    assert_eq!(
        page.rows.len(),
        1,
        "a second 101-byte row would pass 150 bytes"
    );
    assert_eq!(page.resume_from, Some(vec![1]));
    let page = store.scan(&STREAMS[0], &[], None, 1, 100, 1).unwrap();
    assert_eq!(
        page.rows.len(),
        1,
        "one row even when it alone is over the bound"
    );
    let page = store
        .scan(&STREAMS[0], &[1], Some(&[3]), 1, 100, 1 << 20)
        .unwrap();
    assert_eq!(
        page.rows.iter().map(|r| r.key.clone()).collect::<Vec<_>>(),
        vec![vec![1], vec![2]]
    );
    assert_eq!(page.resume_from, None);
}
