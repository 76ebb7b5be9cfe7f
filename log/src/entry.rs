//! Entries: how a payload becomes erasure-coded shards under one commitment.
//!
//! # Layout
//!
//! A payload of `L` bytes is cut into `k` data shards of `shard_len` bytes
//! each (the last one zero-padded) and `m` parity shards of the same length
//! are computed with a systematic Reed-Solomon code, so data shards are plain
//! slices of the payload and any `k` of the `k + m` shards rebuild it.
//!
//! Each shard is cut into chunks of `chunk_size` bytes (its last chunk may be
//! short). The Merkle tree's leaves are the chunks of shard 0, then shard 1,
//! and so on; every shard's leaves are padded with [`PAD_LEAF`] up to a power
//! of two, so each shard is a complete subtree and its root is an ordinary
//! node of the entry's tree. That one choice gives all three kinds of proof
//! from one verifier: a chunk, a contiguous run of chunks, and a whole shard
//! checked on its own against the commitment.
//!
//! # Commitment
//!
//! The commitment is a keyed BLAKE3 hash of the [`Geometry`] and the tree's
//! root, so a commitment fixes the payload length, chunk size and shard counts
//! too: a verifier never has to trust a header's geometry separately.

use crate::merkle::{self, MerkleTree, PAD_LEAF};
use crate::{Hash, LogError, limits::*};
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

const COMMIT_KEY: [u8; 32] = *b"ordo/log/entry/commitment/v1....";

/// The shape of an entry: everything needed to map bytes to shards, chunks and leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Geometry {
    /// Payload length in bytes.
    pub payload_len: u64,
    /// Merkle leaf size in bytes (a power of two).
    pub chunk_size: u32,
    /// Data shards (k).
    pub data_shards: u16,
    /// Parity shards (m).
    pub parity_shards: u16,
}

impl Geometry {
    /// A checked geometry.
    pub fn new(
        payload_len: u64,
        chunk_size: u32,
        data_shards: u16,
        parity_shards: u16,
    ) -> Result<Self, LogError> {
        let geometry = Self {
            payload_len,
            chunk_size,
            data_shards,
            parity_shards,
        };
        geometry.validate()?;
        Ok(geometry)
    }

    /// Checks every field against the limits in [`crate::limits`].
    pub fn validate(&self) -> Result<(), LogError> {
        if self.payload_len > MAX_PAYLOAD_BYTES {
            return Err(LogError::PayloadTooLarge {
                len: self.payload_len,
                max: MAX_PAYLOAD_BYTES,
            });
        }
        if !self.chunk_size.is_power_of_two()
            || !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&self.chunk_size)
        {
            return Err(LogError::BadChunkSize(self.chunk_size));
        }
        let (k, m) = (self.data_shards, self.parity_shards);
        if !(1..=MAX_DATA_SHARDS).contains(&k) || !(1..=MAX_PARITY_SHARDS).contains(&m) {
            return Err(LogError::BadShardCounts { k, m });
        }
        Ok(())
    }

    /// All shards, data and parity.
    pub fn total_shards(&self) -> u16 {
        self.data_shards + self.parity_shards
    }

    /// Bytes in every shard: the payload's share per data shard, rounded up to
    /// [`SHARD_ALIGN`] (and never zero, so an empty payload still has shards).
    pub fn shard_len(&self) -> usize {
        let share = self.payload_len.div_ceil(u64::from(self.data_shards)) as usize;
        share.div_ceil(SHARD_ALIGN).max(1) * SHARD_ALIGN
    }

    /// Real chunks in one shard.
    pub fn chunks_per_shard(&self) -> u64 {
        (self.shard_len() as u64).div_ceil(u64::from(self.chunk_size))
    }

    /// Leaves per shard subtree: chunks padded up to a power of two.
    pub fn leaves_per_shard(&self) -> u64 {
        self.chunks_per_shard().next_power_of_two()
    }

    /// Tree level at which each node is the root of one shard.
    pub fn shard_level(&self) -> u32 {
        self.leaves_per_shard().trailing_zeros()
    }

    /// Leaves in the entry's tree.
    pub fn leaf_count(&self) -> u64 {
        u64::from(self.total_shards()) * self.leaves_per_shard()
    }

    /// Position in the tree of chunk `chunk` of shard `shard`.
    pub fn leaf_index(&self, shard: u16, chunk: u64) -> u64 {
        u64::from(shard) * self.leaves_per_shard() + chunk
    }

    /// Length of chunk `chunk` of any shard (the last one may be short).
    pub fn chunk_len(&self, chunk: u64) -> usize {
        let start = chunk as usize * self.chunk_size as usize;
        (self.shard_len() - start).min(self.chunk_size as usize)
    }

    /// Whether a leaf holds a real chunk (not padding).
    fn is_real_leaf(&self, leaf: u64) -> bool {
        leaf % self.leaves_per_shard() < self.chunks_per_shard()
    }

    /// Canonical bytes of the geometry, as bound into the commitment.
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.payload_len.to_le_bytes());
        out[8..12].copy_from_slice(&self.chunk_size.to_le_bytes());
        out[12..14].copy_from_slice(&self.data_shards.to_le_bytes());
        out[14..].copy_from_slice(&self.parity_shards.to_le_bytes());
        out
    }

    /// Parses [`Geometry::to_bytes`]'s form, checking the limits.
    pub fn from_bytes(bytes: &[u8; 16]) -> Result<Self, LogError> {
        let field = |range: std::ops::Range<usize>| &bytes[range];
        let u64_at = u64::from_le_bytes(field(0..8).try_into().expect("8 bytes"));
        let u32_at = u32::from_le_bytes(field(8..12).try_into().expect("4 bytes"));
        let k = u16::from_le_bytes(field(12..14).try_into().expect("2 bytes"));
        let m = u16::from_le_bytes(field(14..16).try_into().expect("2 bytes"));
        Self::new(u64_at, u32_at, k, m)
    }

    /// The commitment to an entry of this geometry whose tree has root `root`.
    pub fn commitment(&self, root: &Hash) -> Hash {
        let mut hasher = blake3::Hasher::new_keyed(&COMMIT_KEY);
        hasher.update(&self.to_bytes());
        hasher.update(root);
        *hasher.finalize().as_bytes()
    }

    /// Leaf hashes of one shard's subtree, padding included: what a holder
    /// of one shard builds that shard's part of the tree from.
    pub fn shard_leaves(&self, bytes: &[u8]) -> Vec<Hash> {
        let mut leaves: Vec<Hash> = bytes
            .chunks(self.chunk_size as usize)
            .map(merkle::leaf_hash)
            .collect();
        leaves.resize(self.leaves_per_shard() as usize, *PAD_LEAF);
        leaves
    }
}

/// One shard with the proof that ties it to its entry's commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// Position among the entry's shards: `0..k` data, `k..k+m` parity.
    pub index: u16,
    /// The shard's bytes (exactly [`Geometry::shard_len`]).
    pub bytes: Vec<u8>,
    /// Sibling hashes from the shard's subtree root up to the tree root.
    pub proof: Vec<Hash>,
}

/// A contiguous run of leaves with the proof that ties them to a commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRangeProof {
    /// First leaf of the run (see [`Geometry::leaf_index`]).
    pub first_leaf: u64,
    /// Last leaf of the run, inclusive.
    pub last_leaf: u64,
    /// Sibling hashes from the run up to the tree root.
    pub siblings: Vec<Hash>,
}

/// A coded entry: its geometry, commitment, shards and Merkle tree.
#[derive(Debug, Clone)]
pub struct EncodedEntry {
    /// The entry's shape.
    pub geometry: Geometry,
    /// What the sequencer orders and every reader verifies against.
    pub commitment: Hash,
    /// All `k + m` shards in index order, each with its proof.
    pub shards: Vec<Shard>,
    tree: MerkleTree,
}

impl EncodedEntry {
    /// Proof for the leaves `first_leaf..=last_leaf`.
    pub fn prove_chunks(
        &self,
        first_leaf: u64,
        last_leaf: u64,
    ) -> Result<ChunkRangeProof, LogError> {
        let total = self.tree.leaf_count();
        if first_leaf > last_leaf || last_leaf >= total {
            return Err(LogError::BadChunkRange {
                first: first_leaf,
                last: last_leaf,
                total,
            });
        }
        let siblings = self.tree.prove(0, first_leaf, last_leaf);
        Ok(ChunkRangeProof {
            first_leaf,
            last_leaf,
            siblings,
        })
    }

    /// The chunk at `leaf`, or `None` for a padding leaf or one out of range.
    pub fn chunk(&self, leaf: u64) -> Option<&[u8]> {
        let g = &self.geometry;
        if leaf >= g.leaf_count() || !g.is_real_leaf(leaf) {
            return None;
        }
        let shard = &self.shards[(leaf / g.leaves_per_shard()) as usize];
        let chunk = leaf % g.leaves_per_shard();
        let start = chunk as usize * g.chunk_size as usize;
        Some(&shard.bytes[start..start + g.chunk_len(chunk)])
    }
}

/// Checks one shard on its own against an entry's commitment.
pub fn verify_shard(commitment: &Hash, geometry: &Geometry, shard: &Shard) -> Result<(), LogError> {
    geometry.validate()?;
    if shard.index >= geometry.total_shards() {
        return Err(LogError::ShardIndexOutOfRange {
            index: shard.index,
            total: geometry.total_shards(),
        });
    }
    if shard.bytes.len() != geometry.shard_len() {
        return Err(LogError::WrongLength {
            what: "shard",
            got: shard.bytes.len(),
            expected: geometry.shard_len(),
        });
    }
    let shard_root = merkle::root_of(&geometry.shard_leaves(&shard.bytes));
    let root = merkle::fold_range(
        geometry.leaf_count(),
        geometry.shard_level(),
        u64::from(shard.index),
        &[shard_root],
        &shard.proof,
    )?;
    check_commitment(commitment, geometry, &root)
}

/// Proof for chunk `chunk` of `shard`, made from that shard alone (its
/// bytes and its proof up from the shard's root): what a storage member
/// holding one shard of an entry needs to prove a single chunk of it, as a
/// miner does. Checked with [`verify_chunks`] like any other run.
pub fn prove_chunk_in_shard(
    geometry: &Geometry,
    shard: &Shard,
    chunk: u64,
) -> Result<ChunkRangeProof, LogError> {
    let chunks = geometry.chunks_per_shard();
    if chunk >= chunks {
        return Err(LogError::BadChunkRange {
            first: chunk,
            last: chunk,
            total: chunks,
        });
    }
    if shard.bytes.len() != geometry.shard_len() {
        return Err(LogError::WrongLength {
            what: "shard",
            got: shard.bytes.len(),
            expected: geometry.shard_len(),
        });
    }
    let tree = MerkleTree::new(geometry.shard_leaves(&shard.bytes));
    let mut siblings = tree.prove(0, chunk, chunk);
    siblings.extend_from_slice(&shard.proof);
    let leaf = geometry.leaf_index(shard.index, chunk);
    Ok(ChunkRangeProof {
        first_leaf: leaf,
        last_leaf: leaf,
        siblings,
    })
}

/// Checks a run of chunks against an entry's commitment. `chunks` holds the
/// real chunks of the run in order; padding leaves inside the run are implied.
pub fn verify_chunks(
    commitment: &Hash,
    geometry: &Geometry,
    proof: &ChunkRangeProof,
    chunks: &[&[u8]],
) -> Result<(), LogError> {
    geometry.validate()?;
    let total = geometry.leaf_count();
    let (first, last) = (proof.first_leaf, proof.last_leaf);
    if first > last || last >= total {
        return Err(LogError::BadChunkRange { first, last, total });
    }
    let mut chunks = chunks.iter();
    let mut leaves = Vec::with_capacity((last - first + 1) as usize);
    for leaf in first..=last {
        if !geometry.is_real_leaf(leaf) {
            leaves.push(*PAD_LEAF);
            continue;
        }
        let chunk = chunks.next().ok_or(LogError::WrongLength {
            what: "chunk run",
            got: leaves.len(),
            expected: leaves.len() + 1,
        })?;
        let expected = geometry.chunk_len(leaf % geometry.leaves_per_shard());
        if chunk.len() != expected {
            return Err(LogError::WrongLength {
                what: "chunk",
                got: chunk.len(),
                expected,
            });
        }
        leaves.push(merkle::leaf_hash(chunk));
    }
    if chunks.next().is_some() {
        return Err(LogError::WrongLength {
            what: "chunk run",
            got: leaves.len() + 1,
            expected: leaves.len(),
        });
    }
    let root = merkle::fold_range(total, 0, first, &leaves, &proof.siblings)?;
    check_commitment(commitment, geometry, &root)
}

fn check_commitment(commitment: &Hash, geometry: &Geometry, root: &Hash) -> Result<(), LogError> {
    if &geometry.commitment(root) == commitment {
        Ok(())
    } else {
        Err(LogError::ProofMismatch {
            commitment: *commitment,
        })
    }
}

/// Erasure coder with reusable work space.
///
/// Reed-Solomon set-up allocates and fills tables; keeping one `Coder` per
/// thread and reusing it is several times faster than one-shot coding.
#[derive(Default)]
pub struct Coder {
    encoder: Option<ReedSolomonEncoder>,
    decoder: Option<ReedSolomonDecoder>,
}

impl std::fmt::Debug for Coder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coder").finish_non_exhaustive()
    }
}

fn coding_error(e: reed_solomon_simd::Error) -> LogError {
    LogError::Coding(e.to_string())
}

impl Coder {
    /// A coder with no work space yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Codes `payload` into `k + m` shards and commits to them.
    pub fn encode(
        &mut self,
        payload: &[u8],
        chunk_size: u32,
        k: u16,
        m: u16,
    ) -> Result<EncodedEntry, LogError> {
        let geometry = Geometry::new(payload.len() as u64, chunk_size, k, m)?;
        let mut shard_bytes = split_payload(&geometry, payload);
        shard_bytes.extend(self.parity(&geometry, &shard_bytes)?);
        let leaves: Vec<Hash> = shard_bytes
            .iter()
            .flat_map(|bytes| geometry.shard_leaves(bytes))
            .collect();
        let tree = MerkleTree::new(leaves);
        let commitment = geometry.commitment(&tree.root());
        let level = geometry.shard_level();
        let shards = shard_bytes
            .into_iter()
            .zip(0u16..)
            .map(|(bytes, index)| Shard {
                index,
                proof: tree.prove(level, u64::from(index), u64::from(index)),
                bytes,
            })
            .collect();
        Ok(EncodedEntry {
            geometry,
            commitment,
            shards,
            tree,
        })
    }

    fn parity(&mut self, geometry: &Geometry, data: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, LogError> {
        let (k, m, len) = (
            geometry.data_shards as usize,
            geometry.parity_shards as usize,
            geometry.shard_len(),
        );
        let encoder = match &mut self.encoder {
            Some(encoder) => {
                encoder.reset(k, m, len).map_err(coding_error)?;
                encoder
            }
            slot => slot.insert(ReedSolomonEncoder::new(k, m, len).map_err(coding_error)?),
        };
        for shard in data {
            encoder.add_original_shard(shard).map_err(coding_error)?;
        }
        let result = encoder.encode().map_err(coding_error)?;
        Ok(result.recovery_iter().map(<[u8]>::to_vec).collect())
    }

    /// Rebuilds the payload from verified shards (any `k` distinct ones will do).
    /// Callers must verify shards first; this trusts what it is given.
    pub fn rebuild(
        &mut self,
        commitment: &Hash,
        geometry: &Geometry,
        shards: &[&Shard],
    ) -> Result<Vec<u8>, LogError> {
        let k = geometry.data_shards as usize;
        let mut data: Vec<Option<&[u8]>> = vec![None; k];
        let mut parity = Vec::new();
        for shard in shards {
            match data.get_mut(shard.index as usize) {
                Some(slot) => *slot = Some(&shard.bytes),
                None => parity.push(*shard),
            }
        }
        let have = data.iter().flatten().count();
        if have + parity.len() < k {
            return Err(LogError::NotEnoughShards {
                commitment: *commitment,
                have: have + parity.len(),
                need: k,
            });
        }
        let restored = if have < k {
            self.restore_missing(geometry, &data, &parity)?
        } else {
            Vec::new()
        };
        let mut payload = Vec::with_capacity(k * geometry.shard_len());
        for (index, slot) in data.iter().enumerate() {
            let bytes = slot
                .or_else(|| {
                    restored
                        .iter()
                        .find(|(i, _)| *i == index)
                        .map(|(_, b)| b.as_slice())
                })
                .ok_or_else(|| {
                    LogError::Coding(format!("decoder did not restore data shard {index}"))
                })?;
            payload.extend_from_slice(bytes);
        }
        payload.truncate(geometry.payload_len as usize);
        Ok(payload)
    }

    /// Recomputes the missing data shards from the present data and parity shards.
    fn restore_missing(
        &mut self,
        geometry: &Geometry,
        data: &[Option<&[u8]>],
        parity: &[&Shard],
    ) -> Result<Vec<(usize, Vec<u8>)>, LogError> {
        let (k, m, len) = (
            geometry.data_shards as usize,
            geometry.parity_shards as usize,
            geometry.shard_len(),
        );
        let decoder = match &mut self.decoder {
            Some(decoder) => {
                decoder.reset(k, m, len).map_err(coding_error)?;
                decoder
            }
            slot => slot.insert(ReedSolomonDecoder::new(k, m, len).map_err(coding_error)?),
        };
        for (index, bytes) in data.iter().enumerate() {
            if let Some(bytes) = bytes {
                decoder
                    .add_original_shard(index, bytes)
                    .map_err(coding_error)?;
            }
        }
        for shard in parity {
            decoder
                .add_recovery_shard(shard.index as usize - k, &shard.bytes)
                .map_err(coding_error)?;
        }
        let result = decoder.decode().map_err(coding_error)?;
        Ok(result
            .restored_original_iter()
            .map(|(i, b)| (i, b.to_vec()))
            .collect())
    }
}

/// Cuts the payload into `k` data shards of `shard_len` bytes, zero-padding the tail.
fn split_payload(geometry: &Geometry, payload: &[u8]) -> Vec<Vec<u8>> {
    let len = geometry.shard_len();
    (0..geometry.data_shards as usize)
        .map(|i| {
            let start = (i * len).min(payload.len());
            let end = ((i + 1) * len).min(payload.len());
            let mut shard = Vec::with_capacity(len);
            shard.extend_from_slice(&payload[start..end]);
            shard.resize(len, 0);
            shard
        })
        .collect()
}

/// A payload read back from shards, with what had to be worked around.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPayload {
    /// The payload; its shards matched the commitment.
    pub payload: Vec<u8>,
    /// Shards that were not found.
    pub missing: Vec<u16>,
    /// Shards that were found but failed verification, and were not used.
    pub rejected: Vec<u16>,
}
