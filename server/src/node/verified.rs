//! Signatures this node has already checked, so its replica need not
//! recover them a second time.
//!
//! Every transaction is verified at ingress (`Txn.Commit`) or signed here
//! (SQL); recovering the signer again when the entry comes back from the log
//! doubled the CPU spent per commit (secp256k1 recovery dominates a node's
//! profile under write load). The cache maps a signature to the hash and
//! sender it was verified for; a replica entry whose signature, hash and
//! sender all match is valid without recovery, since recovery is a pure
//! function of the signature and the hash. Replay's result cannot change:
//! a miss (evicted, or an entry written by another node) just recovers.
//!
//! The batcher also remembers each attested entry it signs (signature, the
//! hash it signs, the node's address): one recovery per entry saved on
//! the commit path, about 40 µs of a single client's commit.

use ordo_txn::{Address, KnownSignatures, SignedTransaction};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Signatures remembered at most; the oldest is forgotten first. A commit
/// normally reaches the replica within milliseconds, so this covers far
/// more than the commits in flight.
pub const MAX_VERIFIED: usize = 65_536;

/// A bounded map from signature to what it was verified for.
#[derive(Debug, Default)]
pub struct VerifiedSignatures {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    by_signature: HashMap<[u8; 65], ([u8; 32], Address)>,
    order: VecDeque<[u8; 65]>,
}

impl VerifiedSignatures {
    /// Remembers that `signed` verified, over `hash`.
    pub fn remember(&self, signed: &SignedTransaction, hash: [u8; 32]) {
        self.remember_signature(signed.signature, hash, signed.tx.sender);
    }

    /// Remembers that `signature` over `hash` is `signer`'s: checked here,
    /// or made here with `signer`'s key.
    pub fn remember_signature(&self, signature: [u8; 65], hash: [u8; 32], signer: Address) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner
            .by_signature
            .insert(signature, (hash, signer))
            .is_none()
        {
            inner.order.push_back(signature);
        }
        while inner.order.len() > MAX_VERIFIED {
            if let Some(old) = inner.order.pop_front() {
                inner.by_signature.remove(&old);
            }
        }
    }

    /// Signatures remembered now.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .by_signature
            .len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl KnownSignatures for VerifiedSignatures {
    /// The signer remembered for `signature` over `hash`, forgotten as it
    /// is told: each signature comes back from the log once. (A transaction
    /// whose sender differs has a different signing hash, so the hash
    /// alone tells them apart.)
    fn signer(&self, signature: &[u8; 65], hash: &[u8; 32]) -> Option<Address> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match inner.by_signature.get(signature) {
            Some(&(remembered, signer)) if remembered == *hash => {
                inner.by_signature.remove(signature);
                Some(signer)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_txn::testkit::{blank, signed as sign, signing_key};

    fn signed(id: u8) -> SignedTransaction {
        sign(blank([id; 16], 0), &signing_key(7))
    }

    #[test]
    fn only_the_same_signature_hash_and_sender_pass_once() {
        let cache = VerifiedSignatures::default();
        let s = signed(1);
        let hash = ordo_txn::sign::signing_hash(&s.tx);
        cache.remember(&s, hash);
        let mut other_sender = s.clone();
        other_sender.tx.sender = [9; 20];
        let other_hash = ordo_txn::sign::signing_hash(&other_sender.tx);
        assert_eq!(cache.signer(&other_sender.signature, &other_hash), None);
        assert_eq!(cache.signer(&s.signature, &[0; 32]), None, "another hash");
        assert_eq!(cache.signer(&s.signature, &hash), Some(s.tx.sender));
        assert_eq!(cache.signer(&s.signature, &hash), None, "used once");
    }

    #[test]
    fn a_made_signature_names_its_signer_once_and_only_over_its_hash() {
        let cache = VerifiedSignatures::default();
        let (signature, hash, node) = ([5; 65], [6; 32], [7; 20]);
        cache.remember_signature(signature, hash, node);
        assert_eq!(cache.signer(&signature, &[0; 32]), None, "another hash");
        assert_eq!(cache.signer(&[4; 65], &hash), None, "another signature");
        assert_eq!(cache.signer(&signature, &hash), Some(node));
        assert_eq!(cache.signer(&signature, &hash), None, "used once");
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = VerifiedSignatures::default();
        let s = signed(2);
        for i in 0..(MAX_VERIFIED + 10) as u32 {
            let mut t = s.clone();
            t.signature[..4].copy_from_slice(&i.to_le_bytes());
            cache.remember(&t, [0; 32]);
        }
        assert_eq!(cache.len(), MAX_VERIFIED);
    }
}
