//! Binary Merkle trees over BLAKE3, with proofs for contiguous ranges of nodes.
//!
//! Leaves and inner nodes are hashed with different BLAKE3 keys, so a leaf can
//! never be passed off as an inner node or the other way round (the classic
//! second-preimage trick on unkeyed trees). When a level has an odd number of
//! nodes, the last one is *promoted* unchanged to the next level rather than
//! hashed with itself: duplicating it would let two different leaf lists share
//! a root.
//!
//! Proofs cover a contiguous range of nodes at any level, which serves three
//! uses with one verifier: a single chunk (a range of one leaf), a run of
//! chunks, and a whole shard (one node at the level where shard subtrees end).

use crate::{Hash, LogError, limits::MAX_PROOF_HASHES};
use std::sync::LazyLock;

const LEAF_KEY: [u8; 32] = *b"ordo/log/merkle/leaf/v1.........";
const NODE_KEY: [u8; 32] = *b"ordo/log/merkle/node/v1.........";
const PAD_KEY: [u8; 32] = *b"ordo/log/merkle/pad/v1..........";

/// Hash of a padding leaf: fills a shard's subtree up to a power of two.
/// It is keyed apart from real leaves, so no chunk can hash to it.
pub static PAD_LEAF: LazyLock<Hash> =
    LazyLock::new(|| *blake3::keyed_hash(&PAD_KEY, b"").as_bytes());

/// Hashes one chunk of data into a leaf.
pub fn leaf_hash(chunk: &[u8]) -> Hash {
    *blake3::keyed_hash(&LEAF_KEY, chunk).as_bytes()
}

/// Hashes two children into their parent.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut both = [0u8; 64];
    both[..32].copy_from_slice(left);
    both[32..].copy_from_slice(right);
    *blake3::keyed_hash(&NODE_KEY, &both).as_bytes()
}

/// Number of nodes at each level above a level of `width` nodes: ceil halving.
fn parent_width(width: u64) -> u64 {
    width.div_ceil(2)
}

/// Width of level `level` in a tree of `leaves` leaves.
pub fn level_width(leaves: u64, level: u32) -> u64 {
    (0..level).fold(leaves, |w, _| parent_width(w))
}

/// Folds one level into its parent level.
fn parent_level(nodes: &[Hash]) -> Vec<Hash> {
    nodes
        .chunks(2)
        .map(|pair| match pair {
            [l, r] => node_hash(l, r),
            [lone] => *lone,
            _ => unreachable!("chunks(2) yields one or two items"),
        })
        .collect()
}

/// Root of the tree over `nodes` (which may themselves be inner nodes).
/// The root of a single node is that node.
pub fn root_of(nodes: &[Hash]) -> Hash {
    assert!(!nodes.is_empty(), "a Merkle tree needs at least one leaf");
    let mut level = nodes.to_vec();
    while level.len() > 1 {
        level = parent_level(&level);
    }
    level[0]
}

/// A whole tree with every level kept, so proofs can be cut from it.
#[derive(Debug, Clone)]
pub struct MerkleTree {
    /// `levels[0]` are the leaves, the last level is the root alone.
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// Builds the tree over `leaves` (at least one).
    pub fn new(leaves: Vec<Hash>) -> Self {
        assert!(!leaves.is_empty(), "a Merkle tree needs at least one leaf");
        let mut levels = vec![leaves];
        while levels[levels.len() - 1].len() > 1 {
            let next = parent_level(&levels[levels.len() - 1]);
            levels.push(next);
        }
        Self { levels }
    }

    /// The root hash.
    pub fn root(&self) -> Hash {
        self.levels[self.levels.len() - 1][0]
    }

    /// The nodes of one level (0 = leaves).
    pub fn level(&self, level: u32) -> &[Hash] {
        &self.levels[level as usize]
    }

    /// Index of the root's level (0 for a one-leaf tree).
    pub fn height(&self) -> u32 {
        (self.levels.len() - 1) as u32
    }

    /// Number of leaves.
    pub fn leaf_count(&self) -> u64 {
        self.levels[0].len() as u64
    }

    /// Proof for the nodes `first..=last` of `level`: the sibling hashes a
    /// verifier needs, level by level, left sibling before right.
    pub fn prove(&self, level: u32, first: u64, last: u64) -> Vec<Hash> {
        let (mut lo, mut hi) = (first as usize, last as usize);
        assert!(lo <= hi && hi < self.levels[level as usize].len());
        let mut siblings = Vec::new();
        for nodes in &self.levels[level as usize..self.levels.len() - 1] {
            if lo % 2 == 1 {
                siblings.push(nodes[lo - 1]);
            }
            if hi.is_multiple_of(2) && hi + 1 < nodes.len() {
                siblings.push(nodes[hi + 1]);
            }
            lo /= 2;
            hi /= 2;
        }
        siblings
    }
}

/// Checks that `nodes`, standing at positions `first..` of level `level` in a
/// tree of `leaves` leaves, lead to `root` through `siblings`.
pub fn verify_range(
    root: &Hash,
    leaves: u64,
    level: u32,
    first: u64,
    nodes: &[Hash],
    siblings: &[Hash],
) -> Result<(), LogError> {
    let computed = fold_range(leaves, level, first, nodes, siblings)?;
    if &computed == root {
        Ok(())
    } else {
        Err(LogError::ProofMismatch { commitment: *root })
    }
}

/// Recomputes the root from the nodes `first..` of `level` in a tree of
/// `leaves` leaves and the siblings around them. Fails if the range does not
/// fit the tree or the proof has too few or too many hashes.
pub fn fold_range(
    leaves: u64,
    level: u32,
    first: u64,
    nodes: &[Hash],
    siblings: &[Hash],
) -> Result<Hash, LogError> {
    if siblings.len() > MAX_PROOF_HASHES {
        return Err(LogError::MalformedProof);
    }
    let mut width = level_width(leaves, level);
    let count = nodes.len() as u64;
    let bad_range = || LogError::BadChunkRange {
        first,
        last: first + count.saturating_sub(1),
        total: width,
    };
    if count == 0 || first.checked_add(count).is_none_or(|end| end > width) {
        return Err(bad_range());
    }
    let mut siblings = siblings.iter();
    let mut current: Vec<Hash> = nodes.to_vec();
    let mut lo = first;
    while width > 1 {
        let hi = lo + current.len() as u64 - 1;
        if lo % 2 == 1 {
            current.insert(0, *siblings.next().ok_or(LogError::MalformedProof)?);
            lo -= 1;
        }
        if hi.is_multiple_of(2) && hi + 1 < width {
            current.push(*siblings.next().ok_or(LogError::MalformedProof)?);
        }
        current = parent_level(&current);
        lo /= 2;
        width = parent_width(width);
    }
    if siblings.next().is_some() {
        return Err(LogError::MalformedProof);
    }
    Ok(current[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(&(i as u64).to_le_bytes()))
            .collect()
    }

    #[test]
    fn odd_node_is_promoted_not_duplicated() {
        let l = leaves(3);
        let expected = node_hash(&node_hash(&l[0], &l[1]), &l[2]);
        assert_eq!(root_of(&l), expected);
        assert_ne!(root_of(&l), root_of(&[l[0], l[1], l[2], l[2]]));
    }

    #[test]
    fn leaf_and_node_hashes_are_domain_separated() {
        let l = leaves(2);
        let mut joined = l[0].to_vec();
        joined.extend_from_slice(&l[1]);
        assert_ne!(leaf_hash(&joined), node_hash(&l[0], &l[1]));
        assert_ne!(leaf_hash(b""), *PAD_LEAF);
    }

    proptest! {
        #[test]
        fn every_range_proves_and_wrong_data_fails(n in 1usize..70, a in 0usize..70, b in 0usize..70, level in 0u32..4) {
            let tree = MerkleTree::new(leaves(n));
            let level = level.min(tree.height());
            let width = tree.level(level).len();
            let (first, last) = ((a.min(b)) % width, (a.max(b)) % width);
            let (first, last) = (first.min(last), first.max(last));
            let nodes = &tree.level(level)[first..=last];
            let proof = tree.prove(level, first as u64, last as u64);
            prop_assert!(verify_range(&tree.root(), n as u64, level, first as u64, nodes, &proof).is_ok());

            let mut wrong = nodes.to_vec();
            wrong[0][0] ^= 1;
            prop_assert!(verify_range(&tree.root(), n as u64, level, first as u64, &wrong, &proof).is_err());
            if !proof.is_empty() {
                let mut bad = proof.clone();
                bad[0][31] ^= 0x80;
                prop_assert!(verify_range(&tree.root(), n as u64, level, first as u64, nodes, &bad).is_err());
                prop_assert!(verify_range(&tree.root(), n as u64, level, first as u64, nodes, &proof[1..]).is_err());
            }
            let mut long = proof.clone();
            long.push([7; 32]);
            prop_assert!(verify_range(&tree.root(), n as u64, level, first as u64, nodes, &long).is_err());
        }
    }
}
