//! Data availability's commitments, per core: committing a segment
//! (126,976 payload bytes, one KZG blob) and a whole MiB, opening a
//! segment (its 64 data cells' proofs, which come out together), checking
//! one cell's opening, and checking a whole MiB against its commitment.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ordo_bench as _; // links the benchmarks' allocator (jemalloc, as in the ordo binary)
use ordo_da::limits::SEGMENT_PAYLOAD_BYTES;
use ordo_da::{commit, open_segment, verify_opening};
use ordo_txn::testkit::XorShift;
use std::hint::black_box;

fn random_bytes(size: usize) -> Vec<u8> {
    let mut rng = XorShift::new(17);
    (0..size).map(|_| rng.next_u64() as u8).collect()
}

fn kzg(c: &mut Criterion) {
    let segment = random_bytes(SEGMENT_PAYLOAD_BYTES);
    let mib = random_bytes(1 << 20);
    let mut group = c.benchmark_group("da");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(SEGMENT_PAYLOAD_BYTES as u64));
    group.bench_function("commit/segment", |b| {
        b.iter(|| black_box(commit(&segment).expect("commits")))
    });
    group.bench_function("open/segment", |b| {
        b.iter(|| black_box(open_segment(&segment, 0).expect("opens")))
    });
    let committed = commit(&segment).expect("commits");
    let opening = open_segment(&segment, 0).expect("opens").swap_remove(7);
    group.throughput(Throughput::Bytes(1984));
    group.bench_function("verify/one_cell", |b| {
        b.iter(|| black_box(verify_opening(&committed, &opening).expect("holds")))
    });
    group.throughput(Throughput::Bytes(1 << 20));
    group.bench_function("commit/1_mib", |b| {
        b.iter(|| black_box(commit(&mib).expect("commits")))
    });
    let committed = commit(&mib).expect("commits");
    group.bench_function("verify/1_mib", |b| {
        b.iter(|| assert!(committed.matches(&mib).expect("checks")))
    });
    group.finish();
}

criterion_group!(benches, kzg);
criterion_main!(benches);
