//! Commitment plus erasure coding throughput, and the two Reed-Solomon crates
//! side by side.
//!
//! `encode` is the whole write-side cost of an entry in ordo: split, parity,
//! leaf hashing, Merkle tree, shard proofs. `parity/*` is the Reed-Solomon
//! step alone in each crate. Single-threaded throughout: figures are per core.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ordo_bench::{baseline::ErasureBaseline, payload};
use ordo_log::{Coder, limits::DEFAULT_CHUNK_SIZE};
use reed_solomon_simd::ReedSolomonEncoder;
use std::hint::black_box;

const SIZES: [(usize, &str); 2] = [(64 * 1024, "64KiB"), (1024 * 1024, "1MiB")];
const CODES: [(u16, u16); 2] = [(4, 2), (8, 4)];

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for (len, size) in SIZES {
        let data = payload(len, 42);
        group.throughput(Throughput::Bytes(len as u64));
        for (k, m) in CODES {
            let mut coder = Coder::new();
            group.bench_with_input(
                BenchmarkId::new(format!("{k}+{m}"), size),
                &data,
                |b, data| {
                    b.iter(|| {
                        black_box(
                            coder
                                .encode(data, DEFAULT_CHUNK_SIZE, k, m)
                                .expect("valid geometry"),
                        )
                    })
                },
            );
        }
    }
    group.finish();
}

fn rebuild(c: &mut Criterion) {
    let mut group = c.benchmark_group("rebuild_two_data_shards_lost");
    for (len, size) in SIZES {
        let data = payload(len, 43);
        group.throughput(Throughput::Bytes(len as u64));
        for (k, m) in CODES {
            let encoded = Coder::new()
                .encode(&data, DEFAULT_CHUNK_SIZE, k, m)
                .expect("valid geometry");
            let survivors: Vec<&ordo_log::Shard> = encoded.shards.iter().skip(2).collect();
            let mut coder = Coder::new();
            group.bench_function(BenchmarkId::new(format!("{k}+{m}"), size), |b| {
                b.iter(|| {
                    for shard in &survivors {
                        ordo_log::verify_shard(&encoded.commitment, &encoded.geometry, shard)
                            .expect("verifies");
                    }
                    black_box(
                        coder
                            .rebuild(&encoded.commitment, &encoded.geometry, &survivors)
                            .expect("rebuilds"),
                    )
                })
            });
        }
    }
    group.finish();
}

fn shards_of(len: usize, k: usize, m: usize) -> Vec<Vec<u8>> {
    let shard_len = (len / k).div_ceil(64) * 64;
    (0..k + m)
        .map(|i| {
            if i < k {
                payload(shard_len, i as u64 + 1)
            } else {
                vec![0; shard_len]
            }
        })
        .collect()
}

fn parity(c: &mut Criterion) {
    let mut group = c.benchmark_group("parity");
    for (len, size) in SIZES {
        group.throughput(Throughput::Bytes(len as u64));
        for (k, m) in CODES {
            let (k, m) = (k as usize, m as usize);
            let mut shards = shards_of(len, k, m);
            let erasure = ErasureBaseline::new(k, m).expect("valid code");
            group.bench_function(
                BenchmarkId::new(format!("reed-solomon-erasure/{k}+{m}"), size),
                |b| b.iter(|| erasure.encode(black_box(&mut shards)).expect("encodes")),
            );
            let shard_len = shards[0].len();
            let mut encoder = ReedSolomonEncoder::new(k, m, shard_len).expect("valid code");
            group.bench_function(
                BenchmarkId::new(format!("reed-solomon-simd/{k}+{m}"), size),
                |b| {
                    b.iter(|| {
                        encoder.reset(k, m, shard_len).expect("valid code");
                        for shard in &shards[..k] {
                            encoder.add_original_shard(shard).expect("right size");
                        }
                        let result = encoder.encode().expect("encodes");
                        black_box(result.recovery(0).map(|r| r[0]));
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, encode, rebuild, parity);
criterion_main!(benches);
