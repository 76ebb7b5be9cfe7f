//! Storage mining, per core: attempts per second (the miner's hash rate),
//! sealing and unsealing, and proofs verified per second (replay's cost).
//!
//! The log: 16 entries of 64 KiB at 4+2 with 4 KiB chunks (ordo's
//! default), sealed by one miner. `attempt/held` is an attempt that recalls
//! a chunk the miner holds (seed, recall, quality over the sealed chunk,
//! reading from memory); `attempt/not_held` one that recalls a chunk it
//! does not (seed and recall only).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ordo_bench::payload;
use ordo_log::{Coder, EncodedEntry, limits::DEFAULT_CHUNK_SIZE};
use ordo_mine::seal::{SealPlace, seal, unseal};
use ordo_mine::{
    EpochContext, Holdings, MinedEntry, RecallIndex, SealedShard, Target, epoch_challenge, held_in,
    search, verify,
};
use std::borrow::Cow;
use std::collections::HashMap;
use std::hint::black_box;

const MINER: [u8; 20] = [0x11; 20];
const ENTRIES: usize = 16;

struct Fixture {
    index: RecallIndex,
    held: HashMap<(u64, u16), SealedShard>,
    ctx: EpochContext,
}

fn fixture(target: Target) -> Fixture {
    let mut coder = Coder::new();
    let log: Vec<EncodedEntry> = (0..ENTRIES)
        .map(|i| coder.encode(&payload(64 * 1024, i as u64), DEFAULT_CHUNK_SIZE, 4, 2))
        .collect::<Result<_, _>>()
        .expect("valid geometry");
    let mut index = RecallIndex::new();
    let mut held = HashMap::new();
    for (seq, entry) in log.iter().enumerate() {
        index.push(seq as u64, entry.commitment, entry.geometry);
        for shard in &entry.shards {
            let sealed = SealedShard::seal(&MINER, &entry.commitment, &entry.geometry, shard);
            held.insert((seq as u64, shard.index), sealed);
        }
    }
    let ctx = EpochContext {
        epoch: 1,
        challenge: epoch_challenge(1, &[7; 32]),
        mineable: index.mineable_before(ENTRIES as u64),
        target,
    };
    Fixture { index, held, ctx }
}

fn attempts(c: &mut Criterion) {
    let f = fixture(Target::one_in(1 << 40));
    let mut group = c.benchmark_group("attempt");
    group.throughput(Throughput::Elements(1_000));
    let mut next = 0u64;
    group.bench_function("held", |b| {
        b.iter(|| {
            next += 1_000;
            let found = search(
                &MINER,
                &f.ctx,
                &f.index,
                next..next + 1_000,
                held_in(&f.held),
            );
            black_box(found.held)
        })
    });
    group.bench_function("not_held", |b| {
        b.iter(|| {
            next += 1_000;
            let nothing = Holdings {
                sealed: |_: &MinedEntry, _, _| None::<Cow<'_, [u8]>>,
                path: |_: &MinedEntry, _, _| None,
            };
            let found = search(&MINER, &f.ctx, &f.index, next..next + 1_000, nothing);
            black_box(found.attempts)
        })
    });
    group.finish();
}

fn sealing(c: &mut Criterion) {
    let chunk = payload(DEFAULT_CHUNK_SIZE as usize, 9);
    let place = SealPlace {
        miner: MINER,
        commitment: [5; 32],
        shard: 1,
        chunk: 2,
    };
    let sealed = seal(&place, &chunk);
    let mut group = c.benchmark_group("seal_4KiB");
    group.throughput(Throughput::Bytes(chunk.len() as u64));
    group.bench_function("seal", |b| b.iter(|| black_box(seal(&place, &chunk))));
    group.bench_function("unseal", |b| {
        b.iter(|| black_box(unseal(&place, &sealed, chunk.len()).expect("unseals")))
    });
    group.finish();
}

fn verifying(c: &mut Criterion) {
    let f = fixture(Target::MAX);
    let found = search(&MINER, &f.ctx, &f.index, 0..256, held_in(&f.held));
    let proofs: Vec<_> = found
        .proofs
        .iter()
        .map(|p| (p, *f.index.locate_seq(p.seq).expect("indexed")))
        .collect();
    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(proofs.len() as u64));
    group.bench_function("proof_4KiB", |b| {
        b.iter(|| {
            for (proof, entry) in &proofs {
                black_box(verify(proof, &f.ctx, entry).expect("verifies"));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, attempts, sealing, verifying);
criterion_main!(benches);
