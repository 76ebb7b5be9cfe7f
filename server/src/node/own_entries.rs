//! Attested entries this node just packed, handed to its own replica
//! already decoded.
//!
//! The batcher holds every transaction of an entry it attests, decoded and
//! hashed; reading the entry back, the replica decoded each transaction and
//! took its Keccak signing hash again (3.4% of the server's samples in a
//! pinned 64-client put profile; docs/BENCHMARKS.md, "Attested entries
//! handed to the replica decoded"). Here the batcher leaves the decoded form
//! ([`ordo_txn::attest::attest_canonical`]) beside a copy of the payload,
//! and the replica takes it instead of decoding, but only for a payload
//! equal byte for byte to the one it was made from: the decoded form is
//! what decoding those bytes gives (a property test in `ordo_txn` holds
//! them equal), so replay's result cannot change. A payload that differs
//! in any byte, was pushed out, or was never packed here is decoded as
//! usual.
//!
//! Found by the entry's signature (its last 65 bytes: entries of different
//! items never share one), then compared in full: a stranger who copied
//! the signature onto other bytes gets those bytes decoded.

use ordo_txn::attest::DecodedAttested;
use std::collections::VecDeque;
use std::sync::Mutex;

/// Most entries held. The replica normally takes an entry within a
/// millisecond of its append; more are held only when appends fail (they
/// never come back) or the replica falls behind (it then decodes).
pub const MAX_OWN_ENTRIES: usize = 256;

/// Most payload bytes held (each entry's decoded form takes about as much
/// again): with [`MAX_OWN_ENTRIES`], a bound on the memory this costs.
pub const MAX_OWN_ENTRY_BYTES: usize = 32 * 1024 * 1024;

/// The signature's length at the end of an attested payload.
const SIGNATURE_BYTES: usize = 65;

/// Entries packed here, oldest first, until the replica takes them.
#[derive(Debug, Default)]
pub struct OwnEntries {
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    entries: VecDeque<OwnEntry>,
    bytes: usize,
}

#[derive(Debug)]
struct OwnEntry {
    payload: Vec<u8>,
    decoded: DecodedAttested,
}

impl OwnEntries {
    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        // Each change is one push or removal: a panic elsewhere cannot
        // leave the queue half-changed.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers that `payload` decodes to `decoded`, which the caller
    /// made from the same items ([`ordo_txn::attest::attest_canonical`]).
    pub fn remember(&self, payload: &[u8], decoded: DecodedAttested) {
        if payload.len() > MAX_OWN_ENTRY_BYTES || payload.len() < SIGNATURE_BYTES {
            return;
        }
        let entry = OwnEntry {
            payload: payload.to_vec(),
            decoded,
        };
        let mut held = self.held();
        held.bytes += entry.payload.len();
        held.entries.push_back(entry);
        while held.entries.len() > MAX_OWN_ENTRIES || held.bytes > MAX_OWN_ENTRY_BYTES {
            let Some(old) = held.entries.pop_front() else {
                break;
            };
            held.bytes -= old.payload.len();
        }
    }

    /// The decoded form of `payload`, if this node packed exactly these
    /// bytes and has not handed them over yet; each is handed over once.
    pub fn take(&self, payload: &[u8]) -> Option<DecodedAttested> {
        let signature = payload.len().checked_sub(SIGNATURE_BYTES)?;
        let signature = &payload[signature..];
        let mut held = self.held();
        let at = held
            .entries
            .iter()
            .position(|entry| entry.payload.ends_with(signature))?;
        if held.entries[at].payload != payload {
            return None;
        }
        let entry = held.entries.remove(at)?;
        held.bytes -= entry.payload.len();
        Some(entry.decoded)
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.held().entries.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_txn::attest::{CanonicalItem, Item, attest_canonical};
    use ordo_txn::testkit::{blank, signing_key, txn_id};

    /// An attested entry of one transaction numbered `n`, and its decoded form.
    fn entry(n: u64) -> (Vec<u8>, DecodedAttested) {
        let item = CanonicalItem::new(Item::Attested(blank(txn_id(n), 0))).unwrap();
        let gateway = signing_key(9);
        let sign = |hash| ordo_txn::sign::sign_hash(hash, &gateway);
        let (attested, decoded) = attest_canonical(vec![item], sign).unwrap();
        (attested.payload, decoded)
    }

    #[test]
    fn the_same_bytes_get_their_decoded_form_once() {
        let own = OwnEntries::default();
        let (payload, decoded) = entry(1);
        let expected = ordo_txn::attest::decode_attested(&payload).unwrap();
        own.remember(&payload, decoded);
        assert_eq!(own.take(&payload), Some(expected));
        assert_eq!(own.take(&payload), None, "handed over once");
        assert!(own.is_empty());
    }

    #[test]
    fn other_bytes_under_the_same_signature_are_decoded_as_usual() {
        let own = OwnEntries::default();
        let (payload, decoded) = entry(1);
        own.remember(&payload, decoded);
        let (other, _) = entry(2);
        let mut forged = other[..other.len() - SIGNATURE_BYTES].to_vec();
        forged.extend_from_slice(&payload[payload.len() - SIGNATURE_BYTES..]);
        assert_eq!(
            own.take(&forged),
            None,
            "a copied signature hands nothing over"
        );
        assert_eq!(own.take(&payload[..10]), None, "a shorter payload neither");
        assert_eq!(own.take(&[]), None);
        assert_eq!(own.len(), 1, "the real entry is still held");
    }

    #[test]
    fn entries_never_taken_are_pushed_out_past_the_bound() {
        let own = OwnEntries::default();
        let (first, decoded) = entry(0);
        own.remember(&first, decoded);
        for n in 1..=MAX_OWN_ENTRIES as u64 {
            let (payload, decoded) = entry(n);
            own.remember(&payload, decoded);
        }
        assert_eq!(own.len(), MAX_OWN_ENTRIES);
        assert_eq!(own.take(&first), None, "the oldest went first");
    }
}
