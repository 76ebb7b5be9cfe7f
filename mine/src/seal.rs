//! Sealing: a miner's private, slow-to-make and quick-to-undo encoding of
//! the chunks it stores.
//!
//! # Why a permutation, not a keystream
//!
//! A seal exists so that one stored copy cannot serve two miner ids. A seal
//! that is a keystream XORed onto the data (cheap both ways) fails at that:
//! a miner holding one plain copy seals each candidate chunk on the fly for
//! whichever id it is mining as, for the price of one hash. ordo's seal is
//! instead built from the square-root permutation of the secp256k1 base
//! field (the "sloth" construction): each 31-byte data word, offset by a
//! keyed-BLAKE3 word bound to the miner, the entry, the shard and the chunk,
//! is replaced by a square root, which costs a full field exponentiation
//! (about 270 multiplications); undoing it is one squaring. The key of each
//! word also hashes the previous *sealed* word, so sealing a chunk is a
//! chain of exponentiations while unsealing its words is independent.
//!
//! What that buys, measured in the `mine` benchmark: sealing a 4 KiB chunk
//! costs a few hundred times what unsealing it (or the quality hash a
//! mining attempt needs) costs, so mining one copy as several ids means
//! paying that factor on every attempt that lands on the copy. It does not
//! make sealing on the fly impossible, only expensive; docs/MINING.md says
//! what that leaves an attacker.
//!
//! # Layout
//!
//! A chunk of `L` bytes is cut into `ceil(L / 31)` words (the last one
//! zero-padded); each becomes one canonical 32-byte big-endian field
//! element, so a sealed chunk is `32 * ceil(L / 31)` bytes.

use crate::limits::{DATA_WORD_BYTES, SEALED_WORD_BYTES};
use k256::FieldElement;
use k256::elliptic_curve::ff::PrimeField;
use ordo_log::{Address, Hash};

const SEAL_KEY: [u8; 32] = *b"ordo/mine/seal/key/v1...........";

/// Where a chunk sits and whose seal it carries: everything its keys hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealPlace {
    /// The miner whose seal this is.
    pub miner: Address,
    /// The entry's commitment.
    pub commitment: Hash,
    /// The shard's index in the entry.
    pub shard: u16,
    /// The chunk's index in the shard.
    pub chunk: u64,
}

impl SealPlace {
    /// The chunk's own key: every word key is derived from it.
    fn key(&self) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_keyed(&SEAL_KEY);
        hasher.update(&self.miner);
        hasher.update(&self.commitment);
        hasher.update(&self.shard.to_le_bytes());
        hasher.update(&self.chunk.to_le_bytes());
        *hasher.finalize().as_bytes()
    }
}

/// Why a sealed chunk does not unseal.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// The sealed bytes are not the length a chunk of this size seals to.
    #[error("a sealed chunk of a {chunk_len}-byte chunk has {expected} bytes, not {got}")]
    WrongLength {
        /// The chunk's length.
        chunk_len: usize,
        /// The sealed length it implies.
        expected: usize,
        /// What was given.
        got: usize,
    },
    /// A sealed word is not a canonical field element.
    #[error("sealed word {word} is not a canonical field element")]
    NotAFieldElement {
        /// The word's index.
        word: usize,
    },
    /// A word unsealed to a value no data word seals to.
    #[error("sealed word {word} does not unseal to a data word")]
    NotAData {
        /// The word's index.
        word: usize,
    },
}

/// Sealed length of a chunk of `chunk_len` bytes.
pub fn sealed_len(chunk_len: usize) -> usize {
    chunk_len.div_ceil(DATA_WORD_BYTES) * SEALED_WORD_BYTES
}

/// Seals `chunk` for `place`: the slow direction.
pub fn seal(place: &SealPlace, chunk: &[u8]) -> Vec<u8> {
    let key = place.key();
    let mut sealed = Vec::with_capacity(sealed_len(chunk.len()));
    let mut previous = [0u8; SEALED_WORD_BYTES];
    for (word, data) in chunk.chunks(DATA_WORD_BYTES).enumerate() {
        let offset = word_key(&key, word, &previous);
        let x = (data_element(data) + offset).normalize();
        previous = sloth_forward(&x).to_repr().into();
        sealed.extend_from_slice(&previous);
    }
    sealed
}

/// Unseals `sealed` back to the `chunk_len` bytes it was made from: the
/// quick direction, one squaring and one hash per word. Refuses anything
/// [`seal`] cannot have produced.
pub fn unseal(place: &SealPlace, sealed: &[u8], chunk_len: usize) -> Result<Vec<u8>, SealError> {
    let expected = sealed_len(chunk_len);
    if sealed.len() != expected {
        return Err(SealError::WrongLength {
            chunk_len,
            expected,
            got: sealed.len(),
        });
    }
    let key = place.key();
    let mut chunk = Vec::with_capacity(expected / SEALED_WORD_BYTES * DATA_WORD_BYTES);
    let mut previous = [0u8; SEALED_WORD_BYTES];
    for (word, bytes) in sealed.chunks(SEALED_WORD_BYTES).enumerate() {
        let bytes: [u8; SEALED_WORD_BYTES] = bytes.try_into().expect("whole words");
        let y = Option::<FieldElement>::from(FieldElement::from_repr(bytes.into()))
            .ok_or(SealError::NotAFieldElement { word })?;
        let x = (sloth_backward(&y) - word_key(&key, word, &previous)).normalize();
        let repr: [u8; 32] = x.to_repr().into();
        if repr[0] != 0 {
            return Err(SealError::NotAData { word });
        }
        chunk.extend_from_slice(&repr[1..]);
        previous = bytes;
    }
    // The last word's padding must be zeros: one chunk has one seal.
    if chunk[chunk_len..].iter().any(|&b| b != 0) {
        return Err(SealError::NotAData {
            word: expected / SEALED_WORD_BYTES - 1,
        });
    }
    chunk.truncate(chunk_len);
    Ok(chunk)
}

/// The field element of up to 31 data bytes (zero-padded at the end).
fn data_element(data: &[u8]) -> FieldElement {
    let mut repr = [0u8; 32];
    repr[1..1 + data.len()].copy_from_slice(data);
    Option::from(FieldElement::from_repr(repr.into())).expect("31 bytes are below the prime")
}

/// The offset added to word `word`: a hash of the chunk's key, the word's
/// index and the previous sealed word, cut to 31 bytes.
fn word_key(key: &[u8; 32], word: usize, previous: &[u8; SEALED_WORD_BYTES]) -> FieldElement {
    let mut hasher = blake3::Hasher::new_keyed(key);
    hasher.update(&(word as u64).to_le_bytes());
    hasher.update(previous);
    let hash = hasher.finalize();
    data_element(&hash.as_bytes()[..DATA_WORD_BYTES])
}

/// The square-root permutation: a root of `x` if `x` is a square (the even
/// one), else a root of `-x` (the odd one). Exactly one of `x`, `-x` is a
/// square for nonzero `x` because the prime is 3 mod 4, so the parity of the
/// result says which, and the map is a permutation.
fn sloth_forward(x: &FieldElement) -> FieldElement {
    let (root, want_odd) = match Option::<FieldElement>::from(x.sqrt()) {
        Some(root) => (root.normalize(), false),
        None => {
            let root: FieldElement =
                Option::from((-x).normalize().sqrt()).expect("-x is a square when x is not");
            (root.normalize(), true)
        }
    };
    if bool::from(root.is_odd()) == want_odd {
        root
    } else {
        (-root).normalize()
    }
}

/// The inverse of [`sloth_forward`]: one squaring and a sign from the
/// parity. `y` must be normalized (as parsed elements are).
fn sloth_backward(y: &FieldElement) -> FieldElement {
    let square = y.square().normalize();
    if bool::from(y.is_odd()) {
        (-square).normalize()
    } else {
        square
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn place(miner: u8) -> SealPlace {
        SealPlace {
            miner: [miner; 20],
            commitment: [7; 32],
            shard: 3,
            chunk: 9,
        }
    }

    proptest! {
        #[test]
        fn every_chunk_unseals_to_itself(chunk in proptest::collection::vec(any::<u8>(), 1..700)) {
            let sealed = seal(&place(1), &chunk);
            prop_assert_eq!(sealed.len(), sealed_len(chunk.len()));
            prop_assert_eq!(unseal(&place(1), &sealed, chunk.len()).unwrap(), chunk);
        }

        #[test]
        fn the_permutation_is_undone_by_its_inverse(bytes in any::<[u8; 31]>()) {
            let x = data_element(&bytes);
            prop_assert_eq!(sloth_backward(&sloth_forward(&x)), x);
        }
    }

    #[test]
    fn two_miners_seal_one_chunk_differently_and_neither_seal_unseals_as_the_other() {
        let chunk = vec![0x5a; 256];
        let (a, b) = (seal(&place(1), &chunk), seal(&place(2), &chunk));
        assert_ne!(a, b);
        assert_ne!(unseal(&place(2), &a, 256).ok(), Some(chunk.clone()));
        assert_ne!(unseal(&place(1), &b, 256).ok(), Some(chunk));
    }

    #[test]
    fn a_sealed_chunk_of_the_wrong_length_or_form_is_refused() {
        let sealed = seal(&place(1), &[1; 100]);
        assert_eq!(
            unseal(&place(1), &sealed[..96], 100),
            Err(SealError::WrongLength {
                chunk_len: 100,
                expected: 128,
                got: 96
            })
        );
        let mut above_prime = sealed.clone();
        above_prime[..32].copy_from_slice(&[0xff; 32]);
        assert_eq!(
            unseal(&place(1), &above_prime, 100),
            Err(SealError::NotAFieldElement { word: 0 })
        );
    }
}
