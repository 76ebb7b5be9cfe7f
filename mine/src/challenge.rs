//! Epochs, challenges, recall positions and the quality of an attempt: the
//! arithmetic a miner searches with and a replica checks with, all pure
//! functions of the log.
//!
//! # Epochs from the log, not the clock
//!
//! Epoch `e` is the run of entries `e * E .. (e + 1) * E` for the log's
//! epoch length `E`. Its challenge hashes `e` and the closing header of
//! epoch `e - 1` (the header at seq `e * E - 1`), so a replica computes it
//! from the log prefix alone and no miner knows it before that header is
//! ordered. Epoch 0 has no challenge: nothing precedes it.
//!
//! # Recall
//!
//! An attempt is a `(miner, nonce)` pair. Its seed hashes the challenge,
//! the miner and the nonce; the seed picks one chunk, uniformly, among all
//! mineable chunks of the entries ordered before the epoch (the data a
//! miner can have sealed before the challenge existed). A miner can answer
//! only if it holds that chunk, sealed with its own id, so the share of
//! attempts it can finish is the share of the log it stores: mining power
//! follows the data held, with no placement or membership consulted. Its
//! quality hashes the seed with the sealed chunk; the attempt is a hit when
//! the quality, read as a 256-bit big-endian number, is at most the
//! epoch's target.

use crate::limits::MAX_MINED_CHUNK_BYTES;
use alloy_primitives::U256;
use ordo_log::{Address, EntryHeader, Geometry, Hash};

const HEADER_KEY: [u8; 32] = *b"ordo/mine/header/v1.............";
const CHALLENGE_KEY: [u8; 32] = *b"ordo/mine/challenge/v1..........";
const RECALL_KEY: [u8; 32] = *b"ordo/mine/recall/v1.............";
const QUALITY_KEY: [u8; 32] = *b"ordo/mine/quality/v1............";

/// The epoch entry `seq` belongs to, for epochs of `epoch_entries` entries.
pub fn epoch_of(seq: u64, epoch_entries: u64) -> u64 {
    seq / epoch_entries
}

/// The seq of the header whose hash makes epoch `epoch`'s challenge, or
/// `None` for epoch 0.
pub fn closing_seq(epoch: u64, epoch_entries: u64) -> Option<u64> {
    epoch.checked_mul(epoch_entries)?.checked_sub(1)
}

/// A header's hash as challenges use it: keyed BLAKE3 of its canonical bytes.
pub fn header_hash(header: &EntryHeader) -> Hash {
    *blake3::keyed_hash(&HEADER_KEY, &header.encode()).as_bytes()
}

/// Epoch `epoch`'s challenge, from the hash of its closing header.
pub fn challenge(epoch: u64, closing_header: &Hash) -> Hash {
    let mut hasher = blake3::Hasher::new_keyed(&CHALLENGE_KEY);
    hasher.update(&epoch.to_le_bytes());
    hasher.update(closing_header);
    *hasher.finalize().as_bytes()
}

/// The seed of one attempt.
pub fn attempt_seed(challenge: &Hash, miner: &Address, nonce: u64) -> Hash {
    let mut hasher = blake3::Hasher::new_keyed(&RECALL_KEY);
    hasher.update(challenge);
    hasher.update(miner);
    hasher.update(&nonce.to_le_bytes());
    *hasher.finalize().as_bytes()
}

/// The chunk an attempt recalls among `mineable` chunks (`mineable > 0`):
/// the seed's first eight bytes scaled onto the range (a multiply and a
/// shift; the bias is below 2^-64 per chunk, and there is no division).
pub fn recall(seed: &Hash, mineable: u64) -> u64 {
    let draw = u64::from_le_bytes(seed[..8].try_into().expect("8 bytes"));
    ((u128::from(draw) * u128::from(mineable)) >> 64) as u64
}

/// An attempt's quality over the sealed chunk it recalled.
pub fn quality(seed: &Hash, sealed: &[u8]) -> Target {
    let mut hasher = blake3::Hasher::new_keyed(&QUALITY_KEY);
    hasher.update(seed);
    hasher.update(sealed);
    Target::from_bytes(*hasher.finalize().as_bytes())
}

/// Chunks of an entry that mining recalls: every real chunk of every shard,
/// data and parity, or none when its chunks are too large to prove.
pub fn mineable_chunks(geometry: &Geometry) -> u64 {
    if geometry.chunk_size > MAX_MINED_CHUNK_BYTES {
        return 0;
    }
    u64::from(geometry.total_shards()) * geometry.chunks_per_shard()
}

/// A 256-bit threshold (or a quality measured against one): bigger is easier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target(pub U256);

impl Target {
    /// The easiest target: every attempt is a hit.
    pub const MAX: Target = Target(U256::MAX);

    /// From 32 big-endian bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(U256::from_be_bytes(bytes))
    }

    /// As 32 big-endian bytes.
    pub fn to_bytes(self) -> [u8; 32] {
        self.0.to_be_bytes()
    }

    /// The target at which one attempt in `attempts` is a hit on average.
    pub fn one_in(attempts: u64) -> Self {
        Self(U256::MAX / U256::from(attempts.max(1)))
    }

    /// Whether a quality of `self` wins against `target`.
    pub fn meets(self, target: Target) -> bool {
        self <= target
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_close_on_the_header_before_them_and_epoch_zero_has_none() {
        assert_eq!(closing_seq(0, 16), None);
        assert_eq!(closing_seq(1, 16), Some(15));
        assert_eq!(closing_seq(3, 16), Some(47));
        assert_eq!(epoch_of(47, 16), 2);
        assert_eq!(epoch_of(48, 16), 3);
        assert_eq!(closing_seq(u64::MAX, 16), None);
    }

    #[test]
    fn a_challenge_changes_with_its_epoch_and_with_every_field_of_the_closing_header() {
        let header = |seq, submitter| EntryHeader {
            seq,
            entry: ordo_log::EntryDescriptor {
                commitment: [3; 32],
                geometry: Geometry::new(100, 256, 2, 1).expect("valid"),
                tags: vec![],
                submitter,
            },
        };
        let base = header_hash(&header(15, [1; 20]));
        assert_ne!(base, header_hash(&header(15, [2; 20])));
        assert_ne!(base, header_hash(&header(16, [1; 20])));
        assert_ne!(challenge(1, &base), challenge(2, &base));
        assert_eq!(
            challenge(1, &base),
            challenge(1, &header_hash(&header(15, [1; 20])))
        );
    }

    #[test]
    fn recall_stays_in_range_and_spreads_over_it() {
        let mut counts = [0u32; 8];
        for nonce in 0..8_000 {
            let r = recall(&attempt_seed(&[1; 32], &[2; 20], nonce), 8);
            counts[r as usize] += 1;
        }
        // 1,000 expected per bucket; 5 sigma is about 150.
        assert!(
            counts.iter().all(|&c| (850..1150).contains(&c)),
            "{counts:?}"
        );
        assert_eq!(recall(&[0xff; 32], 1), 0);
    }

    #[test]
    fn a_quality_meets_targets_at_or_above_it() {
        let q = Target::one_in(4);
        assert!(q.meets(q));
        assert!(q.meets(Target::MAX));
        assert!(!Target::MAX.meets(q));
        assert_eq!(Target::from_bytes(q.to_bytes()), q);
    }
}
