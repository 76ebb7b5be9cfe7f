//! The miner's side: the index of mineable chunks, a shard sealed with a
//! miner's id, and the search over nonces.

use crate::challenge::{attempt_seed, mineable_chunks, quality, recall};
use crate::proof::{EpochContext, MinedEntry, MiningProof};
use crate::seal::{SealPlace, seal};
use ordo_log::merkle::MerkleTree;
use ordo_log::{Address, Geometry, Hash, Shard};
use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

/// Every mineable entry in log order, with its place among mineable chunks:
/// what a miner needs to turn a recalled chunk into an entry, shard and
/// chunk. Replay keeps the same numbers in its own store.
#[derive(Debug, Default, Clone)]
pub struct RecallIndex {
    entries: Vec<MinedEntry>,
    total: u64,
}

impl RecallIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds entry `seq`, the next in log order; entries with nothing to
    /// mine are left out. Returns the entry as indexed.
    pub fn push(&mut self, seq: u64, commitment: Hash, geometry: Geometry) -> Option<MinedEntry> {
        debug_assert!(self.entries.last().is_none_or(|last| last.seq < seq));
        let chunks = mineable_chunks(&geometry);
        if chunks == 0 {
            return None;
        }
        let entry = MinedEntry {
            seq,
            first_chunk: self.total,
            commitment,
            geometry,
        };
        self.entries.push(entry);
        self.total += chunks;
        Some(entry)
    }

    /// Mineable chunks of the entries before seq `seq`.
    pub fn mineable_before(&self, seq: u64) -> u64 {
        let after = self.entries.partition_point(|e| e.seq < seq);
        self.entries
            .get(after)
            .map_or(self.total, |e| e.first_chunk)
    }

    /// Indexed entry `seq`, if it has anything to mine.
    pub fn locate_seq(&self, seq: u64) -> Option<&MinedEntry> {
        let at = self.entries.partition_point(|e| e.seq < seq);
        self.entries.get(at).filter(|e| e.seq == seq)
    }

    /// The entry holding recalled chunk `recalled`.
    pub fn locate(&self, recalled: u64) -> Option<&MinedEntry> {
        let after = self.entries.partition_point(|e| e.first_chunk <= recalled);
        self.entries[..after].last().filter(|e| e.holds(recalled))
    }
}

/// One shard of one entry sealed with one miner's id, with what it takes to
/// prove any of its chunks: the plain chunks' leaf hashes and the shard's
/// own proof up to the commitment.
#[derive(Debug, Clone)]
pub struct SealedShard {
    sealed: Vec<Vec<u8>>,
    tree: MerkleTree,
    proof: Vec<Hash>,
}

impl SealedShard {
    /// Seals every chunk of `shard` (of the entry committed to by
    /// `commitment`) with `miner`'s id: the slow step a miner pays once.
    pub fn seal(miner: &Address, commitment: &Hash, geometry: &Geometry, shard: &Shard) -> Self {
        let size = geometry.chunk_size as usize;
        let sealed = shard
            .bytes
            .chunks(size)
            .enumerate()
            .map(|(chunk, bytes)| {
                let place = SealPlace {
                    miner: *miner,
                    commitment: *commitment,
                    shard: shard.index,
                    chunk: chunk as u64,
                };
                seal(&place, bytes)
            })
            .collect();
        Self {
            sealed,
            tree: MerkleTree::new(geometry.shard_leaves(&shard.bytes)),
            proof: shard.proof.clone(),
        }
    }

    /// Sealed chunk `chunk`.
    pub fn sealed(&self, chunk: u64) -> Option<&[u8]> {
        self.sealed.get(chunk as usize).map(Vec::as_slice)
    }

    /// Chunk `chunk`'s path to the commitment.
    pub fn path(&self, chunk: u64) -> Vec<Hash> {
        let mut path = self.tree.prove(0, chunk, chunk);
        path.extend_from_slice(&self.proof);
        path
    }
}

/// What a search found.
#[derive(Debug, Default)]
pub struct Search {
    /// Attempts made.
    pub attempts: u64,
    /// Attempts that recalled a chunk the miner holds.
    pub held: u64,
    /// Hits, as proofs ready to submit.
    pub proofs: Vec<MiningProof>,
}

/// Where a search finds a miner's chunks: the sealed chunk at a recalled
/// entry's shard and chunk, if the miner holds it, and (asked for hits
/// only) that chunk's path to the entry's commitment.
pub struct Holdings<S, P> {
    /// The sealed chunk, if held.
    pub sealed: S,
    /// Its path; `None` if it cannot be proven after all.
    pub path: P,
}

/// Holdings in memory: shards sealed whole, by (seq, shard index).
// The return type only names the two closures `Holdings` carries.
#[allow(clippy::type_complexity)]
pub fn held_in<'a>(
    held: &'a HashMap<(u64, u16), SealedShard>,
) -> Holdings<
    impl FnMut(&MinedEntry, u16, u64) -> Option<Cow<'a, [u8]>> + 'a,
    impl FnMut(&MinedEntry, u16, u64) -> Option<Vec<Hash>> + 'a,
> {
    Holdings {
        sealed: move |entry: &MinedEntry, shard: u16, chunk: u64| {
            let sealed = held.get(&(entry.seq, shard))?.sealed(chunk)?;
            Some(Cow::Borrowed(sealed))
        },
        path: move |entry: &MinedEntry, shard: u16, chunk: u64| {
            Some(held.get(&(entry.seq, shard))?.path(chunk))
        },
    }
}

/// Tries `nonces` for `miner` in `epoch`. Attempts that recall a chunk the
/// miner does not hold cost one hash and end there.
pub fn search<'a, S, P>(
    miner: &Address,
    epoch: &EpochContext,
    index: &RecallIndex,
    nonces: Range<u64>,
    mut holdings: Holdings<S, P>,
) -> Search
where
    S: FnMut(&MinedEntry, u16, u64) -> Option<Cow<'a, [u8]>>,
    P: FnMut(&MinedEntry, u16, u64) -> Option<Vec<Hash>>,
{
    let mut found = Search::default();
    if epoch.mineable == 0 {
        return found;
    }
    for nonce in nonces {
        found.attempts += 1;
        let seed = attempt_seed(&epoch.challenge, miner, nonce);
        let recalled = recall(&seed, epoch.mineable);
        let Some(entry) = index.locate(recalled) else {
            continue;
        };
        let (shard, chunk) = entry.place_of(recalled);
        let Some(sealed) = (holdings.sealed)(entry, shard, chunk) else {
            continue;
        };
        found.held += 1;
        if !quality(&seed, &sealed).meets(epoch.target) {
            continue;
        }
        if let Some(path) = (holdings.path)(entry, shard, chunk) {
            found.proofs.push(MiningProof {
                epoch: epoch.epoch,
                miner: *miner,
                nonce,
                seq: entry.seq,
                sealed: sealed.into_owned(),
                path,
            });
        }
    }
    found
}
