//! The heads column (`ordo_kv::heads`) under concurrency: one writer, one
//! maintainer running passes, rebuilds and sweeps, and readers scanning at
//! the newest published version, every scan checked against a model.

use ordo_kv::mvcc::stage_write;
use ordo_kv::{
    Column, Engine, HeadsPhase, MemEngine, MvccError, MvccStore, NewestLimits, RocksEngine,
    StreamId, WriteBatch,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const STREAM: StreamId = [9; 32];
const KEYS: u64 = 64;
const VERSIONS: u64 = 1_500;
/// Versions written before the store with heads opens: they were never
/// noted, so its heads start stale and rebuild while the writer goes on.
const UNNOTED: u64 = 300;

/// What version `v` writes: a put of one key, and every fifth version a
/// delete of another.
fn writes_of(v: u64) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let mut writes = vec![(key(v * 7 % KEYS), Some(v.to_be_bytes().to_vec()))];
    if v.is_multiple_of(5) {
        writes.push((key(v * 3 % KEYS + 1), None));
    }
    writes
}

fn key(n: u64) -> Vec<u8> {
    format!("key-{n:03}").into_bytes()
}

fn write_version(store: &MvccStore<impl Engine>, v: u64) {
    let mut batch = WriteBatch::default();
    for (key, value) in writes_of(v) {
        stage_write(&mut batch, Column::Data, &STREAM, &key, v, value.as_deref());
    }
    store.write(batch, false).expect("write");
}

/// A live row: key, version, value.
type Live = (Vec<u8>, u64, Vec<u8>);

/// Live rows at `at`, by replaying the schedule.
fn model_at(at: u64) -> Vec<Live> {
    let mut state = BTreeMap::new();
    for v in 1..=at {
        for (key, value) in writes_of(v) {
            state.insert(key, value.map(|value| (v, value)));
        }
    }
    let live = state.into_iter().filter_map(|(k, found)| Some((k, found?)));
    live.map(|(k, (v, value))| (k, v, value)).collect()
}

/// Every row at `at`, paging 16 rows at a time; `None` if the horizon
/// passed `at` meanwhile.
fn scan_at(store: &MvccStore<impl Engine>, at: u64) -> Option<Vec<Live>> {
    let (mut rows, mut from) = (Vec::new(), Vec::new());
    loop {
        match store.scan(&STREAM, &from, None, at, 16, 1 << 20) {
            Ok(page) => {
                rows.extend(page.rows.into_iter().map(|r| (r.key, r.version, r.value)));
                match page.resume_from {
                    Some(next) => from = next,
                    None => return Some(rows),
                }
            }
            Err(MvccError::Compacted { .. }) => return None,
            Err(e) => panic!("scan at {at}: {e}"),
        }
    }
}

fn run_against<E: Engine + 'static>(engine: E) {
    let engine = Arc::new(engine);
    let unnoted = MvccStore::new(engine.clone());
    (1..=UNNOTED).for_each(|v| write_version(&unnoted, v));
    let store = MvccStore::cached(engine, NewestLimits::default(), UNNOTED);
    assert_eq!(
        store.heads().expect("heads").stats().phase,
        HeadsPhase::Stale
    );
    let published = Arc::new(AtomicU64::new(UNNOTED));
    let done = Arc::new(AtomicBool::new(false));
    let checks = Arc::new(AtomicU64::new(0));
    let writer = {
        let (store, published, done) = (store.clone(), published.clone(), done.clone());
        let checks = checks.clone();
        std::thread::spawn(move || {
            for v in UNNOTED + 1..=VERSIONS {
                write_version(&store, v);
                published.store(v, Ordering::SeqCst);
                if v.is_multiple_of(100) {
                    store.advance_horizon(v - 60);
                }
                if v.is_multiple_of(50) {
                    wait_for_a_check(&checks);
                }
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let maintainer = {
        let (store, done) = (store.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                store.maintain_heads().expect("pass");
                store.sweep_deletes(64).expect("sweep");
            }
        })
    };
    while !done.load(Ordering::SeqCst) {
        let at = published.load(Ordering::SeqCst);
        if let Some(rows) = scan_at(&store, at) {
            assert_eq!(rows, model_at(at), "scan at {at}");
            checks.fetch_add(1, Ordering::SeqCst);
        }
    }
    writer.join().expect("writer");
    maintainer.join().expect("maintainer");
    while store.maintain_heads().expect("pass") != ordo_kv::HeadsStep::Idle {}
    let stats = store.heads().expect("heads").stats();
    assert_eq!(stats.phase, HeadsPhase::Ready { covered: VERSIONS });
    // More than once if a write in flight when a rebuild began had
    // skipped its note (the rebuild then ends stale, and the next starts).
    assert!(stats.rebuilds >= 1, "the stale heads were rebuilt");
    assert!(stats.passes > 0, "no pass ran beside the writer");
    assert_eq!(scan_at(&store, VERSIONS), Some(model_at(VERSIONS)));
    assert!(checks.load(Ordering::SeqCst) >= (VERSIONS - UNNOTED) / 50);
}

/// Lets the reader check at least once more before the writer goes on, so
/// that scans meet every stage of the run (bounded: 10 s).
fn wait_for_a_check(checks: &AtomicU64) {
    let seen = checks.load(Ordering::SeqCst);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while checks.load(Ordering::SeqCst) == seen {
        assert!(
            std::time::Instant::now() < deadline,
            "the reader stopped checking"
        );
        std::thread::yield_now();
    }
}

#[test]
fn scans_through_the_heads_stay_right_while_writes_passes_rebuilds_and_sweeps_run_on_the_in_memory_engine()
 {
    run_against(MemEngine::new());
}

#[test]
fn scans_through_the_heads_stay_right_while_writes_passes_rebuilds_and_sweeps_run_on_rocksdb() {
    let dir = tempfile::tempdir().expect("temp dir");
    run_against(RocksEngine::open(dir.path()).expect("open"));
}
