//! Property tests of coding, commitments and proofs on random payloads.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use ordo_log::{Coder, Geometry, LogError, Shard, verify_chunks, verify_shard};
use proptest::prelude::*;

/// Random payload with a random but valid code and chunk size.
fn entry() -> impl Strategy<Value = (Vec<u8>, u32, u16, u16)> {
    (
        prop::collection::vec(any::<u8>(), 0..20_000),
        8u32..=12,
        1u16..=8,
        1u16..=4,
    )
        .prop_map(|(payload, log_chunk, k, m)| (payload, 1 << log_chunk, k, m))
}

/// Chooses which `k` of `k + m` shards survive, from a random permutation.
fn survivors(shards: &[Shard], k: u16, order: &[usize]) -> Vec<Shard> {
    let mut indices: Vec<usize> = (0..shards.len()).collect();
    for (i, &o) in order.iter().enumerate().take(indices.len()) {
        let j = i + o % (indices.len() - i);
        indices.swap(i, j);
    }
    indices.truncate(k as usize);
    indices.into_iter().map(|i| shards[i].clone()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_k_shards_rebuild_the_payload((payload, chunk, k, m) in entry(), order in prop::collection::vec(any::<usize>(), 12)) {
        let mut coder = Coder::new();
        let encoded = coder.encode(&payload, chunk, k, m).unwrap();
        let kept = survivors(&encoded.shards, k, &order);
        let refs: Vec<&Shard> = kept.iter().collect();
        prop_assert_eq!(coder.rebuild(&encoded.commitment, &encoded.geometry, &refs).unwrap(), payload);
        if k > 1 {
            let too_few = &refs[..k as usize - 1];
            let is_not_enough = matches!(coder.rebuild(&encoded.commitment, &encoded.geometry, too_few), Err(LogError::NotEnoughShards { .. }));
            prop_assert!(is_not_enough);
        }
    }

    #[test]
    fn every_shard_verifies_and_any_flipped_bit_is_caught((payload, chunk, k, m) in entry(), pick in any::<prop::sample::Index>(), bit in 0usize..8, proof_pick in any::<prop::sample::Index>()) {
        let encoded = Coder::new().encode(&payload, chunk, k, m).unwrap();
        for shard in &encoded.shards {
            prop_assert!(verify_shard(&encoded.commitment, &encoded.geometry, shard).is_ok());
        }
        let shard = &encoded.shards[pick.index(encoded.shards.len())];
        let mut flipped = shard.clone();
        let at = pick.index(flipped.bytes.len());
        flipped.bytes[at] ^= 1 << bit;
        prop_assert!(verify_shard(&encoded.commitment, &encoded.geometry, &flipped).is_err());
        if !shard.proof.is_empty() {
            let mut bad_proof = shard.clone();
            let p = proof_pick.index(bad_proof.proof.len());
            bad_proof.proof[p][at % 32] ^= 1 << bit;
            prop_assert!(verify_shard(&encoded.commitment, &encoded.geometry, &bad_proof).is_err());
        }
        // A shard presented at another index must fail, unless that index
        // really holds the same bytes (e.g. an all-zero payload).
        let mut moved = shard.clone();
        moved.index = (moved.index + 1) % encoded.geometry.total_shards();
        if encoded.shards[moved.index as usize].bytes != shard.bytes {
            prop_assert!(verify_shard(&encoded.commitment, &encoded.geometry, &moved).is_err());
        }
        let mut other_geometry = encoded.geometry;
        other_geometry.payload_len ^= 1;
        if other_geometry.shard_len() == encoded.geometry.shard_len() {
            prop_assert!(verify_shard(&encoded.commitment, &other_geometry, shard).is_err());
        }
    }

    #[test]
    fn chunk_ranges_prove_and_wrong_chunks_fail((payload, chunk, k, m) in entry(), a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>(), bit in 0usize..8) {
        let encoded = Coder::new().encode(&payload, chunk, k, m).unwrap();
        let g = encoded.geometry;
        let leaves = g.leaf_count() as usize;
        let (first, last) = {
            let (x, y) = (a.index(leaves) as u64, b.index(leaves) as u64);
            (x.min(y), x.max(y))
        };
        let proof = encoded.prove_chunks(first, last).unwrap();
        let chunks: Vec<&[u8]> = (first..=last).filter_map(|leaf| encoded.chunk(leaf)).collect();
        prop_assert!(verify_chunks(&encoded.commitment, &g, &proof, &chunks).is_ok());

        if let Some(victim) = chunks.first() {
            let mut altered = victim.to_vec();
            altered[0] ^= 1 << bit;
            let mut wrong = chunks.clone();
            wrong[0] = &altered;
            prop_assert!(verify_chunks(&encoded.commitment, &g, &proof, &wrong).is_err());
            prop_assert!(verify_chunks(&encoded.commitment, &g, &proof, &chunks[1..]).is_err());
        }
        if !proof.siblings.is_empty() {
            let mut bad = proof.clone();
            bad.siblings[0][0] ^= 1 << bit;
            prop_assert!(verify_chunks(&encoded.commitment, &g, &bad, &chunks).is_err());
        }
        // The same chunks claimed one leaf further on must fail, unless the
        // data there really is the same.
        let shifted_chunks: Vec<&[u8]> = (first + 1..=last + 1).filter_map(|leaf| encoded.chunk(leaf)).collect();
        if shifted_chunks != chunks {
            let mut shifted = proof.clone();
            shifted.first_leaf += 1;
            shifted.last_leaf += 1;
            prop_assert!(verify_chunks(&encoded.commitment, &g, &shifted, &chunks).is_err());
        }
    }
}

#[test]
fn geometry_limits_are_typed_errors() {
    assert!(matches!(
        Geometry::new(0, 100, 4, 2),
        Err(LogError::BadChunkSize(100))
    ));
    assert!(matches!(
        Geometry::new(0, 4096, 0, 2),
        Err(LogError::BadShardCounts { .. })
    ));
    assert!(matches!(
        Geometry::new(0, 4096, 4, 0),
        Err(LogError::BadShardCounts { .. })
    ));
    assert!(matches!(
        Geometry::new(u64::MAX, 4096, 4, 2),
        Err(LogError::PayloadTooLarge { .. })
    ));
    let too_big = vec![0u8; ordo_log::limits::MAX_PAYLOAD_BYTES as usize + 1];
    assert!(matches!(
        Coder::new().encode(&too_big, 4096, 4, 2),
        Err(LogError::PayloadTooLarge { .. })
    ));
}

#[test]
fn empty_payload_codes_and_rebuilds() {
    let mut coder = Coder::new();
    let encoded = coder.encode(&[], 4096, 4, 2).unwrap();
    let refs: Vec<&Shard> = encoded.shards.iter().skip(2).collect();
    assert_eq!(
        coder
            .rebuild(&encoded.commitment, &encoded.geometry, &refs)
            .unwrap(),
        Vec::<u8>::new()
    );
}

#[test]
fn geometry_bytes_parse_back_and_out_of_limit_bytes_are_refused() {
    let geometry = Geometry::new(12_345, 4096, 4, 2).unwrap();
    assert_eq!(
        Geometry::from_bytes(&geometry.to_bytes()).unwrap(),
        geometry
    );
    let mut bad_chunk = geometry.to_bytes();
    bad_chunk[8..12].copy_from_slice(&100u32.to_le_bytes());
    assert!(matches!(
        Geometry::from_bytes(&bad_chunk),
        Err(LogError::BadChunkSize(100))
    ));
    let mut no_data = geometry.to_bytes();
    no_data[12..14].copy_from_slice(&0u16.to_le_bytes());
    assert!(matches!(
        Geometry::from_bytes(&no_data),
        Err(LogError::BadShardCounts { .. })
    ));
}
