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

/// Writes every key `VERSIONS` times, version after version, in batches.
fn load(store: &MvccStore<RocksEngine>) -> u64 {
    let value = [0xAB; 100];
    let mut version = 0;
    for _ in 0..VERSIONS {
        for start in (0..KEYS).step_by(LOAD_BATCH as usize) {
            let mut batch = WriteBatch::with_capacity(LOAD_BATCH as usize);
            for n in start..(start + LOAD_BATCH).min(KEYS) {
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
    let newest = load(&store);
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

criterion_group!(benches, mvcc_reads);
criterion_main!(benches);
