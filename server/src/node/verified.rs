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

use ordo_txn::{Address, SignedTransaction};
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
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner
            .by_signature
            .insert(signed.signature, (hash, signed.tx.sender))
            .is_none()
        {
            inner.order.push_back(signed.signature);
        }
        while inner.order.len() > MAX_VERIFIED {
            if let Some(old) = inner.order.pop_front() {
                inner.by_signature.remove(&old);
            }
        }
    }

    /// Whether `signed` was verified here over `hash` (and forgets it: each
    /// transaction comes back from the log once).
    pub fn take(&self, signed: &SignedTransaction, hash: &[u8; 32]) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match inner.by_signature.get(&signed.signature) {
            Some((h, sender)) if h == hash && *sender == signed.tx.sender => {
                inner.by_signature.remove(&signed.signature);
                true
            }
            _ => false,
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
        assert!(!cache.take(&other_sender, &hash));
        assert!(!cache.take(&s, &[0; 32]), "another hash");
        assert!(cache.take(&s, &hash));
        assert!(!cache.take(&s, &hash), "used once");
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
