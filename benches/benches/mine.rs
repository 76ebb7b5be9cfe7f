//! Storage mining, per core: attempts per second (the miner's hash rate),
//! sealing and unsealing, and proofs verified per second (replay's cost).
//!
//! The log: 16 entries of 64 KiB at 4+2 with 4 KiB chunks (ordo's
//! default), sealed by one miner. `attempt/held` is an attempt that recalls
//! a chunk the miner holds (seed, recall, quality over the sealed chunk,
//! reading from memory); `attempt/not_held` one that recalls a chunk it
//! does not (seed and recall only). `replay/entry_of_512_proofs` applies
//! an entry of 512 proof transactions as a replica does (their signatures
//! checked beforehand, as the replica's check stage does on other cores):
//! each proof's rows read, verified, rewarded and written.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ordo_bench::payload;
use ordo_kv::MemEngine;
use ordo_log::{Coder, EncodedEntry, limits::DEFAULT_CHUNK_SIZE};
use ordo_log::{EntryDescriptor, EntryHeader};
use ordo_mine::header_hash;
use ordo_mine::seal::{SealPlace, seal, unseal};
use ordo_mine::{
    EpochContext, Holdings, MinedEntry, RecallIndex, SealedShard, Target, epoch_challenge, held_in,
    search, verify,
};
use ordo_txn::attest::{Genesis, Ordering};
use ordo_txn::{AclOp, EntryBody, MiningOp, Replayer, address_of};
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

/// A log as replay sees it, up to the entry that carries the proofs.
struct ReplayFixture {
    prefix: Vec<(EntryHeader, Vec<u8>)>,
    proofs: (EntryHeader, Vec<ordo_txn::Checked>),
}

/// One entry in the log: coded, ordered at `seq`, with its payload.
fn ordered(
    seq: u64,
    payload: Vec<u8>,
    submitter: [u8; 20],
) -> (EntryHeader, Vec<u8>, EncodedEntry) {
    let entry = Coder::new()
        .encode(&payload, DEFAULT_CHUNK_SIZE, 4, 2)
        .expect("encodes");
    let header = EntryHeader {
        seq,
        entry: EntryDescriptor::of(&entry, vec![], submitter),
    };
    (header, payload, entry)
}

/// A log with mining configured (every attempt a hit, a cap above the
/// proofs), the miner registered, epoch 1 open over 64 KiB entries, and an
/// entry of `count` proofs, each in a transaction the miner signed.
fn replay_fixture(count: u64) -> ReplayFixture {
    use ordo_txn::testkit::{signed, signing_key, txn_id};
    let (admin, miner) = (signing_key(1), signing_key(2));
    let tx = |n: u64, key: &ordo_txn::SigningKey, op: MiningOp| {
        let tx = ordo_txn::Transaction {
            acl: vec![AclOp::Mining(op)],
            ..ordo_txn::Transaction::new(txn_id(n), 0)
        };
        ordo_txn::encode_batch(&[signed(tx, key)])
    };
    let genesis = Genesis {
        admin: address_of(&admin),
        gateways: vec![],
        ordering: Ordering::Members,
    };
    let configure = MiningOp::Configure {
        epoch_entries: 8,
        target_proofs: 4096,
        initial_target: Target::MAX.to_bytes(),
        reward_per_proof: 1,
    };
    let register = MiningOp::RegisterMiner {
        beneficiary: [0xbe; 20],
    };
    let mut payloads = vec![
        genesis.encode(),
        tx(1, &admin, configure),
        tx(2, &miner, register),
    ];
    payloads.extend((3..8).map(|i| payload(64 * 1024, i)));
    let mut index = RecallIndex::new();
    let (mut prefix, mut held) = (Vec::new(), HashMap::new());
    for (seq, payload) in payloads.into_iter().enumerate() {
        let (header, payload, entry) = ordered(seq as u64, payload, address_of(&admin));
        index.push(header.seq, entry.commitment, entry.geometry);
        for shard in &entry.shards {
            let sealed = SealedShard::seal(
                &address_of(&miner),
                &entry.commitment,
                &entry.geometry,
                shard,
            );
            held.insert((header.seq, shard.index), sealed);
        }
        prefix.push((header, payload));
    }
    let ctx = EpochContext {
        epoch: 1,
        challenge: epoch_challenge(1, &header_hash(&prefix[7].0)),
        mineable: index.mineable_before(8),
        target: Target::MAX,
    };
    let found = search(&address_of(&miner), &ctx, &index, 0..count, held_in(&held));
    let txs: Vec<_> = (found.proofs.iter().enumerate())
        .map(|(i, proof)| {
            let op = MiningOp::SubmitProof {
                proof: proof.encode(),
            };
            let tx = ordo_txn::Transaction {
                acl: vec![AclOp::Mining(op)],
                ..ordo_txn::Transaction::new(txn_id(100 + i as u64), 0)
            };
            signed(tx, &miner)
        })
        .collect();
    let (header, payload, _) = ordered(8, ordo_txn::encode_batch(&txs), address_of(&admin));
    ReplayFixture {
        prefix,
        proofs: (header, ordo_txn::check_entry(&payload)),
    }
}

fn replaying(c: &mut Criterion) {
    const PROOFS: u64 = 512;
    let fixture = replay_fixture(PROOFS);
    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(PROOFS));
    group.bench_function("entry_of_512_proofs", |b| {
        b.iter_batched(
            || {
                let mut replayer = Replayer::open(MemEngine::new()).expect("opens");
                for (header, payload) in &fixture.prefix {
                    let body = EntryBody::Read(ordo_txn::check_entry(payload));
                    replayer.apply_header(header, body).expect("applies");
                }
                (replayer, fixture.proofs.1.clone())
            },
            |(mut replayer, checked)| {
                let outcomes = replayer
                    .apply_header(&fixture.proofs.0, EntryBody::Read(checked))
                    .expect("applies")
                    .expect("read");
                assert!(
                    outcomes.iter().all(|o| o.is_committed()),
                    "{:?}",
                    outcomes.first()
                );
                outcomes.len()
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, attempts, sealing, verifying, replaying);
criterion_main!(benches);
