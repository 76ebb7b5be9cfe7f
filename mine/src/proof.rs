//! A mining proof, its canonical bytes, and its verification against what
//! the log says about the epoch and the recalled entry.
//!
//! # Bytes (`OMP1`)
//!
//! `"OMP1"`, epoch (u64 LE), miner (20 bytes), nonce (u64 LE), the recalled
//! entry's seq (u64 LE), the sealed chunk's length (u32 LE) and bytes, the
//! number of path hashes (u8) and the hashes (32 bytes each). Nothing may
//! follow. Every length is bounded by [`crate::limits`].

use crate::challenge::{Target, attempt_seed, mineable_chunks, quality, recall};
use crate::limits::{MAX_PATH_HASHES, MAX_PROOF_BYTES, MAX_SEALED_CHUNK_BYTES};
use crate::seal::{SealError, SealPlace, unseal};
use ordo_log::{Address, ChunkRangeProof, Geometry, Hash, LogError, verify_chunks};

const MAGIC: &[u8; 4] = b"OMP1";

/// A claim that `miner`'s attempt `nonce` in `epoch` hit: the sealed chunk
/// it recalled and the chunk's Merkle path to its entry's commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiningProof {
    /// The epoch whose challenge the attempt answers.
    pub epoch: u64,
    /// The miner, whose seal the chunk carries (and who must sign or
    /// submit the transaction carrying the proof).
    pub miner: Address,
    /// The attempt.
    pub nonce: u64,
    /// The entry the attempt recalled.
    pub seq: u64,
    /// The recalled chunk, sealed with the miner's id.
    pub sealed: Vec<u8>,
    /// Sibling hashes from the chunk up to the entry's commitment.
    pub path: Vec<Hash>,
}

/// What the log says about one mineable entry: its place among all
/// mineable chunks, and what it committed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinedEntry {
    /// The entry's seq.
    pub seq: u64,
    /// Mineable chunks of all entries before it.
    pub first_chunk: u64,
    /// Its commitment.
    pub commitment: Hash,
    /// Its geometry.
    pub geometry: Geometry,
}

impl MinedEntry {
    /// Its mineable chunks.
    pub fn chunks(&self) -> u64 {
        mineable_chunks(&self.geometry)
    }

    /// Whether recalled chunk `recalled` is one of its own.
    pub fn holds(&self, recalled: u64) -> bool {
        recalled >= self.first_chunk && recalled - self.first_chunk < self.chunks()
    }

    /// The (shard, chunk) of recalled chunk `recalled`, one it holds.
    pub fn place_of(&self, recalled: u64) -> (u16, u64) {
        let offset = recalled - self.first_chunk;
        let per_shard = self.geometry.chunks_per_shard();
        ((offset / per_shard) as u16, offset % per_shard)
    }
}

/// What the log says about one epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochContext {
    /// The epoch.
    pub epoch: u64,
    /// Its challenge.
    pub challenge: Hash,
    /// Mineable chunks of the entries ordered before it.
    pub mineable: u64,
    /// Its target.
    pub target: Target,
}

/// Why a proof is refused.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// The bytes are not a proof.
    #[error("malformed mining proof: {0}")]
    Malformed(&'static str),
    /// The proof answers another epoch than the one it is checked against.
    #[error("the proof answers epoch {proof}, not epoch {expected}")]
    WrongEpoch {
        /// The proof's epoch.
        proof: u64,
        /// The epoch checked against.
        expected: u64,
    },
    /// Nothing was mineable when the epoch began.
    #[error("epoch {0} has nothing to mine")]
    NothingToMine(u64),
    /// The attempt recalled a chunk outside the entry the proof names.
    #[error("the attempt recalls chunk {recalled}, not one of entry {seq}")]
    WrongEntry {
        /// The recalled chunk.
        recalled: u64,
        /// The entry the proof named.
        seq: u64,
    },
    /// The attempt's quality does not meet the epoch's target.
    #[error("the attempt's quality does not meet the epoch's target")]
    AboveTarget,
    /// The sealed chunk does not unseal with the miner's seal.
    #[error("the sealed chunk is not the miner's seal of a chunk: {0}")]
    Seal(#[from] SealError),
    /// The unsealed chunk is not the entry's chunk at the recalled place.
    #[error("the chunk does not prove against the entry's commitment: {0}")]
    Path(#[source] LogError),
}

impl MiningProof {
    /// The proof's canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.epoch.to_le_bytes());
        out.extend_from_slice(&self.miner);
        out.extend_from_slice(&self.nonce.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&(self.sealed.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.sealed);
        out.push(self.path.len() as u8);
        for hash in &self.path {
            out.extend_from_slice(hash);
        }
        out
    }

    fn encoded_len(&self) -> usize {
        4 + 8 + 20 + 8 + 8 + 4 + self.sealed.len() + 1 + 32 * self.path.len()
    }

    /// Parses canonical bytes, refusing anything else.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProofError> {
        if bytes.len() > MAX_PROOF_BYTES {
            return Err(ProofError::Malformed("longer than any proof"));
        }
        let mut r = Reader(bytes);
        if r.take(4)? != MAGIC {
            return Err(ProofError::Malformed("not an OMP1 proof"));
        }
        let (epoch, miner, nonce, seq) = (r.u64()?, r.array()?, r.u64()?, r.u64()?);
        let sealed_len = u32::from_le_bytes(r.array()?) as usize;
        if sealed_len > MAX_SEALED_CHUNK_BYTES {
            return Err(ProofError::Malformed(
                "sealed chunk longer than any mined chunk",
            ));
        }
        let sealed = r.take(sealed_len)?.to_vec();
        let hashes = usize::from(r.take(1)?[0]);
        if hashes > MAX_PATH_HASHES {
            return Err(ProofError::Malformed("path longer than any proof"));
        }
        let path = (0..hashes).map(|_| r.array()).collect::<Result<_, _>>()?;
        if !r.0.is_empty() {
            return Err(ProofError::Malformed("bytes after the proof"));
        }
        Ok(Self {
            epoch,
            miner,
            nonce,
            seq,
            sealed,
            path,
        })
    }
}

/// Reads a proof's fields in order.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProofError> {
        if self.0.len() < n {
            return Err(ProofError::Malformed("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ProofError> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }

    fn u64(&mut self) -> Result<u64, ProofError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
}

/// Checks `proof` against its epoch and the entry it names, both as the log
/// says; returns the attempt's quality. The checks a replica makes beyond
/// these (the miner signed the transaction, the epoch is still open, one
/// reward per attempt, the epoch's proof cap) need replay's state.
pub fn verify(
    proof: &MiningProof,
    epoch: &EpochContext,
    entry: &MinedEntry,
) -> Result<Target, ProofError> {
    if proof.epoch != epoch.epoch {
        return Err(ProofError::WrongEpoch {
            proof: proof.epoch,
            expected: epoch.epoch,
        });
    }
    if epoch.mineable == 0 {
        return Err(ProofError::NothingToMine(epoch.epoch));
    }
    let seed = attempt_seed(&epoch.challenge, &proof.miner, proof.nonce);
    let recalled = recall(&seed, epoch.mineable);
    if proof.seq != entry.seq || !entry.holds(recalled) {
        return Err(ProofError::WrongEntry {
            recalled,
            seq: proof.seq,
        });
    }
    // The cheap check first: a junk proof costs one hash.
    let quality = quality(&seed, &proof.sealed);
    if !quality.meets(epoch.target) {
        return Err(ProofError::AboveTarget);
    }
    let (shard, chunk) = entry.place_of(recalled);
    let place = SealPlace {
        miner: proof.miner,
        commitment: entry.commitment,
        shard,
        chunk,
    };
    let data = unseal(&place, &proof.sealed, entry.geometry.chunk_len(chunk))?;
    let leaf = entry.geometry.leaf_index(shard, chunk);
    let run = ChunkRangeProof {
        first_leaf: leaf,
        last_leaf: leaf,
        siblings: proof.path.clone(),
    };
    verify_chunks(&entry.commitment, &entry.geometry, &run, &[&data]).map_err(ProofError::Path)?;
    Ok(quality)
}
