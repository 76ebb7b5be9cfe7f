//! The cache of newest versions answers every read exactly as the engine
//! would, whatever the interleaving of writes, reads at old snapshots,
//! late fills and evictions.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use ordo_kv::mvcc::stage_write;
use ordo_kv::{Column, MemEngine, MvccStore, NewestLimits, StreamId, WriteBatch};
use proptest::prelude::*;

const STREAM: StreamId = [7; 32];

/// What a test does next.
#[derive(Debug, Clone)]
enum Step {
    /// Writes (or with `None`, deletes) a key at the next version.
    Write(u8, Option<u8>),
    /// Reads a key `back` versions before the newest (through the cache).
    Read(u8, u8),
    /// A reader that read the engine `back` versions ago offers what it
    /// found only now, after newer writes may have gone through.
    LateFill(u8, u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..6u8, proptest::option::of(any::<u8>())).prop_map(|(k, v)| Step::Write(k, v)),
        (0..6u8, 0..4u8).prop_map(|(k, b)| Step::Read(k, b)),
        (0..6u8, 0..4u8).prop_map(|(k, b)| Step::LateFill(k, b)),
    ]
}

fn key(k: u8) -> Vec<u8> {
    vec![b'k', k]
}

fn write(store: &MvccStore<MemEngine>, k: u8, version: u64, value: Option<u8>) {
    write_value(store, k, version, value.map(|v| vec![v; 3]).as_deref());
}

/// Writes `value` (a delete for `None`) to key `k` at `version`.
fn write_value<E: ordo_kv::Engine>(
    store: &MvccStore<E>,
    k: u8,
    version: u64,
    value: Option<&[u8]>,
) {
    let mut batch = WriteBatch::default();
    stage_write(&mut batch, Column::Data, &STREAM, &key(k), version, value);
    store.write(batch, false).unwrap();
}

/// The stored prefix of key `k` (the stored key without its version).
fn prefix(k: u8) -> Vec<u8> {
    ordo_kv::keys::encode_key_prefix(&STREAM, &key(k))
}

fn run(steps: Vec<Step>, limits: NewestLimits) {
    let cached = MvccStore::cached(MemEngine::new(), limits, 0);
    let reference = MvccStore::new(MemEngine::new());
    let mut version = 0u64;
    for step in steps {
        match step {
            Step::Write(k, value) => {
                version += 1;
                write(&cached, k, version, value);
                write(&reference, k, version, value);
            }
            Step::Read(k, back) => {
                let at = version.saturating_sub(u64::from(back));
                let want = reference.get(Column::Data, &STREAM, &key(k), at).unwrap();
                let got = cached.get(Column::Data, &STREAM, &key(k), at).unwrap();
                assert_eq!(got, want, "key {k} at {at} (newest {version})");
            }
            Step::LateFill(k, back) => {
                let at = version.saturating_sub(u64::from(back));
                let found = reference.get(Column::Data, &STREAM, &key(k), at).unwrap();
                let newest = cached.newest().unwrap();
                newest.fill(Column::Data, &prefix(k), at, &found);
            }
        }
    }
    for k in 0..6 {
        for at in 0..=version {
            let want = reference.get(Column::Data, &STREAM, &key(k), at).unwrap();
            let got = cached.get(Column::Data, &STREAM, &key(k), at).unwrap();
            assert_eq!(got, want, "key {k} at {at} after the run");
        }
    }
}

proptest! {
    #[test]
    fn cached_reads_equal_engine_reads(steps in proptest::collection::vec(step(), 1..200)) {
        run(steps, NewestLimits::default());
    }

    #[test]
    fn cached_reads_equal_engine_reads_while_evicting(
        steps in proptest::collection::vec(step(), 1..200),
    ) {
        // Room for about one key per shard: entries come and go constantly.
        run(steps, NewestLimits { entries: 32, bytes: 32 * 200 });
    }
}

#[test]
fn a_fill_read_before_a_newer_write_is_refused() {
    // 200 bytes per shard: a key with a 300-byte value is never held.
    let limits = NewestLimits {
        entries: 1 << 10,
        bytes: 32 * 200,
    };
    let store = MvccStore::cached(MemEngine::new(), limits, 0);
    write(&store, 1, 1, Some(10));
    write_value(&store, 1, 2, Some(&[20; 300]));
    let newest = store.newest().unwrap();
    assert!(newest.is_empty(), "the big version was not held");
    // A reader at version 1 found version 1, and offers it only now.
    let stale = Some(ordo_kv::Versioned {
        version: 1,
        value: Some(vec![10; 3]),
    });
    newest.fill(Column::Data, &prefix(1), 1, &stale);
    assert!(newest.is_empty(), "the late fill was not taken");
    let read = store
        .get(Column::Data, &STREAM, &key(1), 2)
        .unwrap()
        .unwrap();
    assert_eq!((read.version, read.value), (2, Some(vec![20; 300])));
}

#[test]
fn a_fill_older_than_the_stores_newest_write_is_refused_after_a_reopen() {
    let engine = std::sync::Arc::new(MemEngine::new());
    let before = MvccStore::new(engine.clone());
    for (version, value) in [(1, 10), (5, 50)] {
        write_value(&before, 1, version, Some(&[value]));
    }
    // A cache opened over a store whose newest write is version 5 hears of
    // no write before it: a read at 3 must not be taken as the newest.
    let reopened = MvccStore::cached(engine, NewestLimits::default(), 5);
    let old = reopened
        .get(Column::Data, &STREAM, &key(1), 3)
        .unwrap()
        .unwrap();
    assert_eq!(old.version, 1);
    assert!(reopened.newest().unwrap().is_empty(), "not filled");
    let newest = reopened
        .get(Column::Data, &STREAM, &key(1), 5)
        .unwrap()
        .unwrap();
    assert_eq!((newest.version, newest.value), (5, Some(vec![50])));
    assert_eq!(reopened.newest().unwrap().len(), 1, "filled at the newest");
}

#[test]
fn the_cache_stays_within_its_limits() {
    let limits = NewestLimits {
        entries: 64,
        bytes: 1 << 20,
    };
    let store = MvccStore::cached(MemEngine::new(), limits, 0);
    for k in 0..=255u8 {
        write(&store, k, u64::from(k) + 1, Some(k));
        store.get(Column::Data, &STREAM, &key(k), 256).unwrap();
    }
    let held = store.newest().unwrap().len();
    assert!((1..=64).contains(&held), "{held} keys held");
}

#[test]
fn a_held_key_takes_each_new_write_and_an_older_snapshot_reads_the_engine() {
    let store = MvccStore::cached(MemEngine::new(), NewestLimits::default(), 0);
    write(&store, 1, 1, Some(10));
    let first = store
        .get(Column::Data, &STREAM, &key(1), 1)
        .unwrap()
        .unwrap();
    write(&store, 1, 2, Some(20));
    let newest = store
        .get(Column::Data, &STREAM, &key(1), 2)
        .unwrap()
        .unwrap();
    let older = store
        .get(Column::Data, &STREAM, &key(1), 1)
        .unwrap()
        .unwrap();
    assert_eq!((first.version, newest.version, older.version), (1, 2, 1));
    assert_eq!(
        newest.value,
        Some(vec![20; 3]),
        "the write reached the held entry"
    );
    let stats = store.newest().unwrap().stats();
    assert_eq!(
        (stats.hits, stats.misses, stats.entries),
        (2, 1, 1),
        "taken in by the first write, updated by the second; the older snapshot went to the engine"
    );
}
