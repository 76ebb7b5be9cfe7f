//! ECDSA signatures whose nonce is prepared before the message is known.
//!
//! A node signs every attested entry it appends, on the commit path of
//! every transaction in it: about 30 µs of one core here
//! (`docs/BENCHMARKS.md`, the journal round's profile), most of it the
//! nonce: an HMAC-SHA-256 derivation (RFC 6979) and the point `k·G`.
//! Neither needs the message when the nonce is random instead of derived
//! from it, so the node prepares nonces while it waits on the disk
//! ([`Presignature::prepare`]) and finishes a signature in about a
//! microsecond once the entry is ready: `s = k⁻¹ (z + r·d)`
//! ([`Presignature::sign`]).
//!
//! # Why this is safe
//!
//! - A nonce signs one message only: [`Presignature::sign`] consumes it,
//!   and a `Presignature` is neither `Clone` nor `Copy`. (Two messages
//!   signed with one nonce would give away the key.)
//! - Each nonce is `keccak256(domain || d || 32 bytes of the thread's
//!   CSPRNG, seeded by the OS || a process-wide counter)` reduced mod n:
//!   unpredictable to anyone without the key, and distinct while the
//!   generator's output or the counter is.
//! - The result is an ordinary low-s recoverable signature: verifiers
//!   cannot tell how its nonce was chosen, and [`crate::sign::recover_canonical`]
//!   accepts it (a property test checks it against alloy's recovery).
//! - The nonce's parts live in memory until used; so does the key itself.

use crate::sign::{SIGNER, SignatureError, SigningKey};
use k256::elliptic_curve::PrimeField;
use k256::elliptic_curve::ops::Reduce;
use k256::elliptic_curve::scalar::IsHigh;
use k256::{FieldBytes, Scalar, U256};
use std::sync::atomic::{AtomicU64, Ordering};

/// Domain of the nonce derivation.
const NONCE_DOMAIN: &[u8] = b"ordo/presign-nonce/v1\0";

/// Counts nonces made by this process, so two never share their input.
static NONCES_MADE: AtomicU64 = AtomicU64::new(0);

/// One nonce, ready to sign one message: `k⁻¹`, `r` (the x coordinate of
/// `k·G`, reduced mod n) and the parity of `k·G`'s y coordinate.
pub struct Presignature {
    k_inverse: Scalar,
    r: Scalar,
    y_is_odd: bool,
}

impl std::fmt::Debug for Presignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the nonce.
        f.write_str("Presignature")
    }
}

fn secret_of(key: &SigningKey) -> Scalar {
    *key.credential().as_nonzero_scalar().as_ref()
}

/// A fresh nonce for `key` (see the module documentation).
fn fresh_nonce(key: &SigningKey) -> Scalar {
    let random: [u8; 32] = rand::random();
    let count = NONCES_MADE.fetch_add(1, Ordering::Relaxed);
    let mut hasher = alloy_primitives::Keccak256::new();
    hasher.update(NONCE_DOMAIN);
    hasher.update(secret_of(key).to_bytes());
    hasher.update(random);
    hasher.update(count.to_le_bytes());
    let digest = hasher.finalize().0;
    <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(digest))
}

impl Presignature {
    /// Prepares a nonce for signing with `key` (about as costly as a
    /// signature; nothing about the message is needed).
    pub fn prepare(key: &SigningKey) -> Self {
        loop {
            if let Some(prepared) = Self::try_prepare(fresh_nonce(key)) {
                return prepared;
            }
        }
    }

    /// The presignature of nonce `k`, or `None` for the few nonces that
    /// cannot sign: zero, or an `x` at or above n (which a recovery byte
    /// of 27 or 28 cannot name), each with a chance near 2^-128.
    fn try_prepare(k: Scalar) -> Option<Self> {
        // `k·G` with libsecp256k1's precomputed tables: about a third of
        // what k256's generic multiplication costs here.
        let secret = secp256k1::SecretKey::from_byte_array(k.to_repr().into()).ok()?;
        let point = secp256k1::PublicKey::from_secret_key(&SIGNER, &secret).serialize();
        let x_bytes: [u8; 32] = point[1..].try_into().ok()?;
        let x = FieldBytes::from(x_bytes);
        let r = <Scalar as Reduce<U256>>::reduce_bytes(&x);
        if r.to_repr() != x || bool::from(r.is_zero()) {
            return None;
        }
        Some(Self {
            k_inverse: Option::<Scalar>::from(k.invert())?,
            r,
            y_is_odd: point[0] == 0x03,
        })
    }

    /// Signs the 32-byte `hash` with `key`, using up this nonce: the same
    /// 65 bytes (`r || s || v`, low s, v 27 or 28) as [`crate::sign::sign_hash`]
    /// would give for some other nonce.
    pub fn sign(self, hash: [u8; 32], key: &SigningKey) -> Result<[u8; 65], SignatureError> {
        let z = <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(hash));
        let mut s = self.k_inverse * (z + self.r * secret_of(key));
        if bool::from(s.is_zero()) {
            return Err(SignatureError::Signing(
                "the prepared nonce gives s = 0".into(),
            ));
        }
        let mut y_is_odd = self.y_is_odd;
        if bool::from(s.is_high()) {
            s = -s;
            y_is_odd = !y_is_odd;
        }
        let mut signature = [0u8; 65];
        signature[..32].copy_from_slice(&self.r.to_repr());
        signature[32..64].copy_from_slice(&s.to_repr());
        signature[64] = 27 + u8::from(y_is_odd);
        Ok(signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::{address_of, recover_canonical};
    use proptest::prelude::*;

    fn key_from(seed: [u8; 32]) -> Option<SigningKey> {
        SigningKey::from_slice(&seed).ok()
    }

    proptest! {
        #[test]
        fn presigned_signatures_recover_to_the_signer(
            seed in any::<[u8; 32]>(),
            hash in any::<[u8; 32]>(),
        ) {
            let Some(key) = key_from(seed) else { return Ok(()) };
            let signature = Presignature::prepare(&key).sign(hash, &key).unwrap();
            prop_assert_eq!(recover_canonical(&signature, hash).unwrap(), address_of(&key));
        }
    }

    #[test]
    fn two_presignatures_never_share_a_nonce() {
        let key = SigningKey::random();
        let hash = [7; 32];
        let first = Presignature::prepare(&key).sign(hash, &key).unwrap();
        let second = Presignature::prepare(&key).sign(hash, &key).unwrap();
        assert_ne!(first[..32], second[..32], "distinct r, so distinct nonces");
    }

    #[test]
    fn a_presigned_signature_of_another_hash_does_not_recover_to_the_signer() {
        let key = SigningKey::random();
        let signature = Presignature::prepare(&key).sign([1; 32], &key).unwrap();
        let other = recover_canonical(&signature, [2; 32]);
        assert!(other.is_err() || other.unwrap() != address_of(&key));
    }
}
