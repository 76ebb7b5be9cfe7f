//! Signing and verifying transactions, Ethereum style.
//!
//! A sender is a secp256k1 key; its identity is the 20-byte address derived
//! from the public key, as on Ethereum. The signature is recoverable, so the
//! verifier learns the address from it and compares it with the claimed
//! sender: a transaction can never be attributed to anyone but its signer.
//! The signed hash is Keccak-256 over a domain tag and the canonical
//! encoding, so an ordo signature can never be replayed as an Ethereum
//! transaction or message signature, nor the other way round.

use crate::record::{Address, SignedTransaction, Transaction};
use alloy_primitives::{B256, Signature, keccak256};
use alloy_signer::SignerSync;

pub use alloy_signer_local::PrivateKeySigner as SigningKey;

const DOMAIN: &[u8] = b"ordo/txn/v1\0";

/// The domain of raw log appends' signatures (docs/PROTOCOL.md), distinct
/// from transactions' so one can never pass for the other.
const APPEND_DOMAIN: &[u8] = b"ordo/log-append/v1\0";

/// The domain of session proofs (docs/PROTOCOL.md).
const SESSION_DOMAIN: &[u8] = b"ordo/session/v1\0";

/// The hash a client signs to open a session:
/// `keccak256("ordo/session/v1\0" || node[20] || nonce[32] || expires_unix_ms u64 LE)`.
pub fn session_proof_hash(node: &Address, nonce: &[u8; 32], expires_unix_ms: u64) -> [u8; 32] {
    let mut hasher = alloy_primitives::Keccak256::new();
    hasher.update(SESSION_DOMAIN);
    hasher.update(node);
    hasher.update(nonce);
    hasher.update(expires_unix_ms.to_le_bytes());
    hasher.finalize().0
}

/// The domain of dispersal requests (docs/PROTOCOL.md).
const DISPERSE_DOMAIN: &[u8] = b"ordo/da-disperse/v1\0";

/// What a blob's owner signs to disperse it through a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispersalRequest {
    /// The node asked (its address).
    pub node: Address,
    /// The blob's owner.
    pub owner: Address,
    /// The blob's length.
    pub size: u64,
    /// BLAKE3 of the blob.
    pub content_hash: [u8; 32],
    /// Seconds to keep it (0: the node's default).
    pub ttl_secs: u64,
    /// Refused after this time (Unix milliseconds).
    pub deadline_unix_ms: u64,
}

impl DispersalRequest {
    /// The hash the owner signs: `keccak256("ordo/da-disperse/v1\0" ||
    /// node[20] || owner[20] || size u64 LE || content_hash[32] || ttl_secs
    /// u64 LE || deadline_unix_ms u64 LE)`.
    pub fn hash(&self) -> [u8; 32] {
        let mut hasher = alloy_primitives::Keccak256::new();
        hasher.update(DISPERSE_DOMAIN);
        hasher.update(self.node);
        hasher.update(self.owner);
        hasher.update(self.size.to_le_bytes());
        hasher.update(self.content_hash);
        hasher.update(self.ttl_secs.to_le_bytes());
        hasher.update(self.deadline_unix_ms.to_le_bytes());
        hasher.finalize().0
    }
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The 65 bytes are not a valid recoverable signature.
    #[error("malformed signature: {0}")]
    Malformed(String),
    /// The signature is valid but was made by someone other than the sender.
    #[error("signed by {}, but the transaction claims sender {}", hex(.signer), hex(.claimed))]
    WrongSigner {
        /// Address recovered from the signature.
        signer: Address,
        /// Address the transaction names.
        claimed: Address,
    },
    /// The signing key refused to sign.
    #[error("signing failed: {0}")]
    Signing(String),
}

fn hex(bytes: &[u8]) -> String {
    format!("0x{}", crate::ids::hex(bytes))
}

/// The hash a sender signs for `tx`.
pub fn signing_hash(tx: &Transaction) -> [u8; 32] {
    signing_hash_of_encoded(&tx.encode())
}

/// [`signing_hash`] of a transaction given as its canonical encoding (what
/// a decoder that refuses every other encoding just read), without
/// encoding it again.
pub fn signing_hash_of_encoded(encoded: &[u8]) -> [u8; 32] {
    let mut hasher = alloy_primitives::Keccak256::new();
    hasher.update(DOMAIN);
    hasher.update(encoded);
    hasher.finalize().0
}

/// The hash an appender signs for a raw log append:
/// `keccak256("ordo/log-append/v1\0" || nonce u64 LE || tag count u32 LE ||
/// tags || payload)`.
pub fn append_hash(nonce: u64, tags: &[[u8; 32]], payload: &[u8]) -> [u8; 32] {
    // Incremental: a payload of up to 64 MiB is hashed where it lies, not
    // copied behind the domain first.
    let mut hasher = alloy_primitives::Keccak256::new();
    hasher.update(APPEND_DOMAIN);
    hasher.update(nonce.to_le_bytes());
    hasher.update((tags.len() as u32).to_le_bytes());
    tags.iter().for_each(|tag| hasher.update(tag));
    hasher.update(payload);
    hasher.finalize().0
}

/// The signing context of libsecp256k1, made once (its tables cost more
/// to build than many signatures).
pub(crate) static SIGNER: std::sync::LazyLock<secp256k1::Secp256k1<secp256k1::SignOnly>> =
    std::sync::LazyLock::new(secp256k1::Secp256k1::signing_only);

/// Signs a 32-byte hash: `r || s || v`, `v` 27 or 28, `s` low.
///
/// With libsecp256k1, several times faster than alloy's k256 (figures in
/// docs/BENCHMARKS.md, `signatures/sign_*`). Both use RFC 6979 nonces, so
/// they make the very same signature (a property test below checks it, and
/// that k256 recovers the signer from it), and the protocol's test vectors
/// hold either way.
pub fn sign_hash(hash: [u8; 32], key: &SigningKey) -> Result<[u8; 65], SignatureError> {
    let secret = secp256k1::SecretKey::from_byte_array(key.to_bytes().0)
        .map_err(|e| SignatureError::Signing(e.to_string()))?;
    let message = secp256k1::Message::from_digest(hash);
    let (recovery, compact) = SIGNER
        .sign_ecdsa_recoverable(message, &secret)
        .serialize_compact();
    let mut signature = [0u8; 65];
    signature[..64].copy_from_slice(&compact);
    signature[64] = 27 + u8::try_from(i32::from(recovery)).unwrap_or(0);
    Ok(signature)
}

/// [`sign_hash`] with alloy's k256: the reference the fast signer is
/// checked against, and the benchmark's baseline.
pub fn sign_hash_with_k256(hash: [u8; 32], key: &SigningKey) -> Result<[u8; 65], SignatureError> {
    let signature = key
        .sign_hash_sync(&B256::from(hash))
        .map_err(|e| SignatureError::Signing(e.to_string()))?;
    Ok(signature.as_bytes())
}

/// The address that made `signature` over `hash`, accepting only the
/// canonical form (see [`verify`]).
pub fn recover_canonical(signature: &[u8; 65], hash: [u8; 32]) -> Result<Address, SignatureError> {
    let v = signature[64];
    if v != 27 && v != 28 {
        return Err(SignatureError::Malformed(format!(
            "recovery byte is {v}; it must be 27 or 28"
        )));
    }
    let parsed =
        Signature::from_raw(signature).map_err(|e| SignatureError::Malformed(e.to_string()))?;
    if parsed.normalize_s().is_some() {
        return Err(SignatureError::Malformed(
            "s is in the upper half of the curve order".into(),
        ));
    }
    recover(signature, hash)
}

/// The address of a signing key.
pub fn address_of(key: &SigningKey) -> Address {
    key.address().0.0
}

/// Signs `tx` with `key`. The transaction's sender must be the key's address
/// for the signature to verify; [`sign`] sets it.
pub fn sign(mut tx: Transaction, key: &SigningKey) -> Result<SignedTransaction, SignatureError> {
    tx.sender = address_of(key);
    let signature = sign_hash(signing_hash(&tx), key)?;
    Ok(SignedTransaction { tx, signature })
}

/// Checks that the signature was made by the transaction's sender.
///
/// Only the canonical form is accepted: `v` is 27 or 28 and `s` is in the
/// lower half of the curve order (as the signer produces it). Otherwise one
/// signature would have several valid byte strings, and a relayer could
/// change a transaction's bytes without its sender.
pub fn verify(signed: &SignedTransaction) -> Result<(), SignatureError> {
    verify_hash(signed).map(|_| ())
}

/// [`verify`], returning the signed hash (a commitment to the transaction
/// that replay reuses instead of encoding it again).
pub fn verify_hash(signed: &SignedTransaction) -> Result<[u8; 32], SignatureError> {
    let hash = signing_hash(&signed.tx);
    verify_signed_hash(signed, hash).map(|()| hash)
}

/// [`verify`] for a caller that already computed the transaction's
/// [`signing_hash`].
pub fn verify_signed_hash(
    signed: &SignedTransaction,
    hash: [u8; 32],
) -> Result<(), SignatureError> {
    let signer = recover_canonical(&signed.signature, hash)?;
    if signer == signed.tx.sender {
        Ok(())
    } else {
        Err(SignatureError::WrongSigner {
            signer,
            claimed: signed.tx.sender,
        })
    }
}

/// The verify-only libsecp256k1 context, made once (making one costs more
/// than many recoveries).
static VERIFIER: std::sync::LazyLock<secp256k1::Secp256k1<secp256k1::VerifyOnly>> =
    std::sync::LazyLock::new(secp256k1::Secp256k1::verification_only);

/// The address that made `signature` (`r || s || v`, `v` 27 or 28) over
/// `hash`.
///
/// Recovery uses libsecp256k1 (Bitcoin Core's C library) rather than the
/// pure-Rust k256 that alloy signs with: it is several times faster, and
/// every transaction is recovered at ingress and again by every replica
/// (`benches/benches/replay.rs` measures both; figures in
/// docs/BENCHMARKS.md). The two agree on every input (a property test
/// below checks it).
pub fn recover(signature: &[u8; 65], hash: [u8; 32]) -> Result<Address, SignatureError> {
    let malformed = |e: secp256k1::Error| SignatureError::Malformed(e.to_string());
    let recovery_id =
        secp256k1::ecdsa::RecoveryId::try_from(i32::from(signature[64]) - 27).map_err(malformed)?;
    let recoverable =
        secp256k1::ecdsa::RecoverableSignature::from_compact(&signature[..64], recovery_id)
            .map_err(malformed)?;
    let key = VERIFIER
        .recover_ecdsa(secp256k1::Message::from_digest(hash), &recoverable)
        .map_err(malformed)?;
    let digest = keccak256(&key.serialize_uncompressed()[1..]);
    let mut address = [0u8; 20];
    address.copy_from_slice(&digest[12..]);
    Ok(address)
}

/// Recovery with k256 (alloy's own), kept as the reference the fast path
/// is checked against and as the benchmark's baseline.
pub fn recover_with_k256(signature: &[u8; 65], hash: [u8; 32]) -> Result<Address, SignatureError> {
    let parsed =
        Signature::from_raw(signature).map_err(|e| SignatureError::Malformed(e.to_string()))?;
    parsed
        .recover_address_from_prehash(&B256::from(hash))
        .map(|a| a.0.0)
        .map_err(|e| SignatureError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::signing_key as key;

    fn tx() -> Transaction {
        crate::testkit::blank([1; 16], 7)
    }

    #[test]
    fn signed_transactions_verify_and_name_their_signer() {
        let signed = sign(tx(), &key(1)).expect("signs");
        assert_eq!(signed.tx.sender, address_of(&key(1)));
        assert_eq!(verify(&signed), Ok(()));
    }

    proptest::proptest! {
        /// libsecp256k1 and k256 recover the same signer from every
        /// signature, and refuse the same malformed ones.
        #[test]
        fn fast_recovery_agrees_with_k256(
            secret in 1u8..=0xfe,
            read_version in proptest::prelude::any::<u64>(),
            flip in proptest::option::of((0usize..65, 1u8..=255)),
        ) {
            let mut t = tx();
            t.read_version = read_version;
            let mut signed = sign(t, &key(secret)).expect("signs");
            if let Some((at, bits)) = flip {
                signed.signature[at] ^= bits;
            }
            let hash = signing_hash(&signed.tx);
            let fast = recover(&signed.signature, hash).ok();
            let reference = recover_with_k256(&signed.signature, hash).ok();
            if signed.signature[64] == 27 || signed.signature[64] == 28 {
                proptest::prop_assert_eq!(fast, reference);
            } else {
                proptest::prop_assert_eq!(fast, None);
            }
        }
    }

    proptest::proptest! {
        /// libsecp256k1 signs exactly as k256 does (RFC 6979 both), and
        /// alloy's k256 recovery accepts every signature it makes.
        #[test]
        fn fast_signatures_equal_k256_and_k256_recovers_them(
            secret in 1u8..=0xfe,
            read_version in proptest::prelude::any::<u64>(),
        ) {
            let mut t = tx();
            t.read_version = read_version;
            t.sender = address_of(&key(secret));
            let hash = signing_hash(&t);
            let fast = sign_hash(hash, &key(secret)).expect("signs");
            proptest::prop_assert_eq!(fast, sign_hash_with_k256(hash, &key(secret)).expect("signs"));
            proptest::prop_assert_eq!(recover_with_k256(&fast, hash), Ok(t.sender));
        }
    }

    #[test]
    fn the_append_hash_is_the_documented_concatenation() {
        let tags = [[1u8; 32], [2u8; 32]];
        let mut input = b"ordo/log-append/v1\0".to_vec();
        input.extend_from_slice(&7u64.to_le_bytes());
        input.extend_from_slice(&2u32.to_le_bytes());
        tags.iter().for_each(|t| input.extend_from_slice(t));
        input.extend_from_slice(b"payload");
        assert_eq!(append_hash(7, &tags, b"payload"), keccak256(&input).0);
    }

    #[test]
    fn tampering_or_claiming_another_sender_fails() {
        let signed = sign(tx(), &key(1)).expect("signs");
        let mut changed = signed.clone();
        changed.tx.read_version += 1;
        assert!(
            verify(&changed).is_err(),
            "a changed transaction must not verify"
        );
        let mut spoofed = signed.clone();
        spoofed.tx.sender = address_of(&key(2));
        assert!(matches!(
            verify(&spoofed),
            Err(SignatureError::WrongSigner { .. })
        ));
        let mut garbage = signed;
        garbage.signature = [0xff; 65];
        assert!(verify(&garbage).is_err());
    }
}
