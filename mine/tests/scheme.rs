//! The mining scheme end to end on an in-memory log: honest miners' proofs
//! verify at the rate the target implies, a miner holding less wins less,
//! forged proofs are refused, and the difficulty finds its goal.

use ordo_log::{Address, Coder, EncodedEntry};
use ordo_mine::challenge::{attempt_seed, recall};
use ordo_mine::{
    EpochContext, MinedEntry, MiningProof, ProofError, RecallIndex, SealedShard, Target,
    epoch_challenge, held_in, next_target, search, verify,
};
use std::collections::HashMap;

const MINER_A: Address = [0xa1; 20];
const MINER_B: Address = [0xb2; 20];
const ENTRIES: u64 = 6;

/// A small log: entries of 2 KiB at 4+2 shards, 256-byte chunks.
fn log() -> Vec<EncodedEntry> {
    let mut coder = Coder::new();
    (0..ENTRIES)
        .map(|seq| {
            let payload: Vec<u8> = (0..2048u32)
                .map(|i| (i as u64 * 31 + seq * 7) as u8)
                .collect();
            coder.encode(&payload, 256, 4, 2).expect("encodes")
        })
        .collect()
}

fn index_of(log: &[EncodedEntry]) -> RecallIndex {
    let mut index = RecallIndex::new();
    for (seq, entry) in log.iter().enumerate() {
        index.push(seq as u64, entry.commitment, entry.geometry);
    }
    index
}

/// A miner's sealed shards, keyed by (seq, shard): those `keep` allows.
fn sealed_by(
    miner: &Address,
    log: &[EncodedEntry],
    keep: impl Fn(u64, u16) -> bool,
) -> HashMap<(u64, u16), SealedShard> {
    let mut held = HashMap::new();
    for (seq, entry) in log.iter().enumerate() {
        for shard in &entry.shards {
            if keep(seq as u64, shard.index) {
                let sealed = SealedShard::seal(miner, &entry.commitment, &entry.geometry, shard);
                held.insert((seq as u64, shard.index), sealed);
            }
        }
    }
    held
}

fn epoch(index: &RecallIndex, epoch: u64, target: Target) -> EpochContext {
    EpochContext {
        epoch,
        challenge: epoch_challenge(epoch, blake3::hash(&epoch.to_le_bytes()).as_bytes()),
        mineable: index.mineable_before(ENTRIES),
        target,
    }
}

fn mine(
    miner: &Address,
    ctx: &EpochContext,
    index: &RecallIndex,
    held: &HashMap<(u64, u16), SealedShard>,
    nonces: std::ops::Range<u64>,
) -> ordo_mine::Search {
    search(miner, ctx, index, nonces, held_in(held))
}

fn entry_of(index: &RecallIndex, proof: &MiningProof, ctx: &EpochContext) -> MinedEntry {
    let recalled = recall(
        &attempt_seed(&ctx.challenge, &proof.miner, proof.nonce),
        ctx.mineable,
    );
    *index.locate(recalled).expect("recalled inside the log")
}

#[test]
fn an_honest_miners_proofs_verify_and_hit_at_the_rate_the_target_implies() {
    let log = log();
    let index = index_of(&log);
    let held = sealed_by(&MINER_A, &log, |_, _| true);
    let ctx = epoch(&index, 1, Target::one_in(16));
    let found = mine(&MINER_A, &ctx, &index, &held, 0..16_000);
    assert_eq!(
        found.held, 16_000,
        "a miner holding everything finishes every attempt"
    );
    // Binomial(16,000, 1/16): mean 1,000, standard deviation 30.6; 5 sigma.
    let hits = found.proofs.len();
    assert!((847..=1153).contains(&hits), "{hits} hits");
    for proof in &found.proofs {
        let entry = entry_of(&index, proof, &ctx);
        let quality = verify(proof, &ctx, &entry).expect("an honest proof verifies");
        assert!(quality.meets(ctx.target));
        let bytes = proof.encode();
        assert_eq!(&MiningProof::decode(&bytes).expect("decodes"), proof);
    }
}

#[test]
fn a_miner_that_dropped_half_its_shards_wins_about_half_as_often_over_many_epochs() {
    let log = log();
    let index = index_of(&log);
    let whole = sealed_by(&MINER_A, &log, |_, _| true);
    let half = sealed_by(&MINER_B, &log, |_, shard| shard % 2 == 0);
    let (mut whole_hits, mut half_hits, mut half_held) = (0usize, 0usize, 0u64);
    for e in 1..=20 {
        let ctx = epoch(&index, e, Target::one_in(8));
        whole_hits += mine(&MINER_A, &ctx, &index, &whole, 0..800).proofs.len();
        let found = mine(&MINER_B, &ctx, &index, &half, 0..800);
        half_hits += found.proofs.len();
        half_held += found.held;
    }
    // 16,000 attempts each: the whole copy expects 2,000 hits (sd 42), the
    // half copy finishes about 8,000 attempts (sd 63) and expects 1,000 (sd 31).
    assert!((1790..=2210).contains(&whole_hits), "{whole_hits}");
    assert!((7680..=8320).contains(&half_held), "{half_held}");
    assert!((845..=1155).contains(&half_hits), "{half_hits}");
}

/// One honest proof at the easiest target, and what it was checked against.
fn honest_proof() -> (RecallIndex, EpochContext, MiningProof, Vec<EncodedEntry>) {
    let log = log();
    let index = index_of(&log);
    let held = sealed_by(&MINER_A, &log, |_, _| true);
    let ctx = epoch(&index, 3, Target::MAX);
    let proof = mine(&MINER_A, &ctx, &index, &held, 0..1).proofs.remove(0);
    (index, ctx, proof, log)
}

#[test]
fn a_proof_with_another_chunk_or_a_broken_path_is_refused() {
    let (index, ctx, proof, log) = honest_proof();
    let entry = entry_of(&index, &proof, &ctx);
    verify(&proof, &ctx, &entry).expect("the honest proof verifies");

    let mut other_chunk = proof.clone();
    let other = &log[((proof.seq + 1) % ENTRIES) as usize];
    let sealed = SealedShard::seal(
        &MINER_A,
        &other.commitment,
        &other.geometry,
        &other.shards[0],
    );
    other_chunk.sealed = sealed.sealed(0).expect("chunk 0").to_vec();
    assert!(matches!(
        verify(&other_chunk, &ctx, &entry),
        Err(ProofError::Path(_) | ProofError::Seal(_))
    ));

    let mut broken_path = proof.clone();
    broken_path.path[0][0] ^= 1;
    assert!(matches!(
        verify(&broken_path, &ctx, &entry),
        Err(ProofError::Path(_))
    ));
    let mut short_path = proof.clone();
    short_path.path.pop();
    assert!(matches!(
        verify(&short_path, &ctx, &entry),
        Err(ProofError::Path(_))
    ));
}

#[test]
fn a_proof_checked_against_another_epoch_or_entry_is_refused() {
    let (index, ctx, proof, _) = honest_proof();
    let entry = entry_of(&index, &proof, &ctx);
    let next = epoch(&index, ctx.epoch + 1, Target::MAX);
    assert!(matches!(
        verify(&proof, &next, &entry),
        Err(ProofError::WrongEpoch {
            proof: 3,
            expected: 4
        })
    ));
    let mut relabelled = proof.clone();
    relabelled.epoch = next.epoch;
    assert!(
        verify(&relabelled, &next, &entry).is_err(),
        "the next epoch's challenge recalls elsewhere"
    );
    let elsewhere = index
        .locate((entry.first_chunk + entry.chunks()) % ctx.mineable)
        .expect("another entry");
    let mut wrong_seq = proof.clone();
    wrong_seq.seq = elsewhere.seq;
    assert!(matches!(
        verify(&wrong_seq, &ctx, elsewhere),
        Err(ProofError::WrongEntry { .. })
    ));
    let hard = EpochContext {
        target: Target::one_in(u64::MAX),
        ..ctx
    };
    assert!(matches!(
        verify(&proof, &hard, &entry),
        Err(ProofError::AboveTarget)
    ));
}

#[test]
fn a_miner_cannot_prove_with_another_miners_seal() {
    let log = log();
    let index = index_of(&log);
    let sealed_by_a = sealed_by(&MINER_A, &log, |_, _| true);
    let ctx = epoch(&index, 2, Target::MAX);
    // B searches with A's sealed chunks: every attempt "hits" at this target.
    let found = mine(&MINER_B, &ctx, &index, &sealed_by_a, 0..50);
    assert_eq!(found.proofs.len(), 50);
    for proof in &found.proofs {
        let entry = entry_of(&index, proof, &ctx);
        assert!(
            matches!(
                verify(proof, &ctx, &entry),
                Err(ProofError::Seal(_) | ProofError::Path(_))
            ),
            "B passed A's seal off as its own"
        );
    }
}

#[test]
fn malformed_proof_bytes_are_refused_with_a_reason() {
    let (_, _, proof, _) = honest_proof();
    let bytes = proof.encode();
    for bad in [
        &bytes[..bytes.len() - 1],
        &[bytes.as_slice(), &[0]].concat(),
        &[b"OMP2".as_slice(), &bytes[4..]].concat(),
        &bytes[..10],
    ] {
        assert!(matches!(
            MiningProof::decode(bad),
            Err(ProofError::Malformed(_))
        ));
    }
    let huge = vec![0u8; ordo_mine::limits::MAX_PROOF_BYTES + 1];
    assert!(matches!(
        MiningProof::decode(&huge),
        Err(ProofError::Malformed(_))
    ));
}

#[test]
fn the_difficulty_steers_the_proofs_per_epoch_toward_the_goal() {
    const GOAL: u32 = 8;
    let log = log();
    let index = index_of(&log);
    let held = sealed_by(&MINER_A, &log, |_, _| true);
    let mut target = Target::one_in(4);
    let mut last_ten = Vec::new();
    for e in 1..=40u64 {
        let ctx = epoch(&index, e, target);
        let found = mine(&MINER_A, &ctx, &index, &held, 0..4_000).proofs.len() as u32;
        let accepted = found.min(GOAL * ordo_mine::limits::PROOFS_PER_EPOCH_FACTOR);
        if e > 30 {
            last_ten.push(accepted);
        }
        target = next_target(target, accepted, GOAL);
    }
    // Settled, the miner's 4,000 attempts at the goal's rate give Poisson(8)
    // per epoch: ten epochs average 8 with a deviation under 1.
    let mean = last_ten.iter().sum::<u32>() as f64 / 10.0;
    assert!((5.0..=11.5).contains(&mean), "{last_ten:?}");
}
