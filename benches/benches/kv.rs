//! MVCC reads on the RocksDB engine, as a node's `Kv.Get` and `Kv.Scan`
//! make them.
//!
//! The store holds `KEYS` keys of one stream, each written in `VERSIONS`
//! versions (16-byte keys, 100-byte values, as in `ordo-bench`'s default
//! workload), spread over the memtable and flushed files the way replay
//! leaves them.
//!
//! - `mvcc/get_newest`: the newest version of a random key, at the newest
//!   version (what a read at the applied version asks).
//! - `mvcc/get_missing`: a key never written (a miss must be as cheap).
//! - `mvcc/scan_page_100`: a page of 100 live rows from a random key.
//! - `history/*`: ten keys with 1, 1,000 or 100,000 versions each: a scan
//!   of the ten at the newest version, and a point read of one.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ordo_bench as _; // links the benchmarks' allocator (jemalloc, as in the ordo binary)
use ordo_kv::mvcc::stage_write;
use ordo_kv::{Column, Engine, MvccStore, RocksEngine, WriteBatch};
use ordo_txn::testkit::XorShift;

const KEYS: u64 = 100_000;
const VERSIONS: u64 = 3;
const STREAM: [u8; 32] = [7; 32];
/// Keys per write batch while loading, about one replayed entry's worth.
const LOAD_BATCH: u64 = 1_000;

fn key(n: u64) -> Vec<u8> {
    format!("key-{n:012}").into_bytes()
}

/// Writes keys `0..keys` `versions` times, version after version, in
/// batches of `batch_keys`; returns the newest version.
fn load(store: &MvccStore<RocksEngine>, keys: u64, versions: u64, batch_keys: u64) -> u64 {
    let value = [0xAB; 100];
    let mut version = 0;
    for _ in 0..versions {
        for start in (0..keys).step_by(batch_keys as usize) {
            let mut batch = WriteBatch::with_capacity(batch_keys as usize);
            for n in start..(start + batch_keys).min(keys) {
                version += 1;
                stage_write(
                    &mut batch,
                    Column::Data,
                    &STREAM,
                    &key(n),
                    version,
                    Some(&value),
                );
            }
            store.engine().write(batch, false).expect("load");
        }
    }
    version
}

fn mvcc_reads(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let store = MvccStore::new(RocksEngine::open(dir.path()).expect("open"));
    let newest = load(&store, KEYS, VERSIONS, LOAD_BATCH);
    let mut group = c.benchmark_group("mvcc");
    group.throughput(Throughput::Elements(1));
    let mut rng = XorShift::new(11);
    group.bench_function("get_newest", |b| {
        b.iter(|| {
            let found = store.get(Column::Data, &STREAM, &key(rng.below(KEYS)), newest);
            assert!(found.expect("read").is_some());
        })
    });
    group.bench_function("get_missing", |b| {
        b.iter(|| {
            let found = store.get(Column::Data, &STREAM, &key(KEYS + rng.below(KEYS)), newest);
            assert!(found.expect("read").is_none());
        })
    });
    group.throughput(Throughput::Elements(100));
    group.bench_function("scan_page_100", |b| {
        b.iter(|| {
            let start = key(rng.below(KEYS - 100));
            let page = store.scan(&STREAM, &start, None, newest, 100, 1 << 20);
            assert_eq!(page.expect("scan").rows.len(), 100);
        })
    });
    group.finish();
}

/// Ten hot keys, each written `versions` times, in a store of their own.
fn hot_keys(versions: u64) -> (tempfile::TempDir, MvccStore<RocksEngine>, u64) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let store = MvccStore::new(RocksEngine::open(dir.path()).expect("open"));
    let newest = load(&store, 10, versions, 10);
    (dir, store, newest)
}

/// Scans and point reads of ten keys whose history is 1, 1,000 or 100,000
/// versions deep: the cost should follow the rows, not the versions.
fn history(c: &mut Criterion) {
    let mut group = c.benchmark_group("history");
    group.sample_size(20);
    for versions in [1, 1_000, 100_000] {
        let (_dir, store, newest) = hot_keys(versions);
        group.throughput(Throughput::Elements(10));
        group.bench_function(format!("scan_10_keys/{versions}_versions"), |b| {
            b.iter(|| {
                let page = store.scan(&STREAM, b"", None, newest, 100, 1 << 20);
                assert_eq!(page.expect("scan").rows.len(), 10);
            })
        });
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("get/{versions}_versions"), |b| {
            b.iter(|| {
                let found = store.get(Column::Data, &STREAM, &key(3), newest);
                assert!(found.expect("read").is_some());
            })
        });
    }
    group.finish();
}

criterion_group!(benches, mvcc_reads, history);
criterion_main!(benches);
