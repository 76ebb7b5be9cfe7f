//! Fixtures for the tests and benchmarks of every crate: deterministic
//! signing keys, blank transactions, signing, and a small deterministic
//! random source. Built for this crate's own tests and, elsewhere, only
//! with the `testkit` feature: nothing on a node's path uses it.

use crate::record::{SignedTransaction, Transaction, TxnId};
use crate::sign::{SigningKey, sign};

/// The signing key whose secret scalar is 32 copies of `byte`: a valid
/// key for every byte but 0, the same on every run.
pub fn signing_key(byte: u8) -> SigningKey {
    assert_ne!(byte, 0, "the zero scalar is not a valid key");
    SigningKey::from_slice(&[byte; 32]).expect("32 equal non-zero bytes make a valid scalar")
}

/// A transaction id from a counter.
pub fn txn_id(n: u64) -> TxnId {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    id
}

/// A transaction that reads, writes and changes nothing: the base that
/// tests fill in with struct update syntax.
pub fn blank(id: TxnId, read_version: u64) -> Transaction {
    Transaction::new(id, read_version)
}

/// A transaction that creates the stream `name`.
pub fn create_stream(id: TxnId, read_version: u64, name: &[u8]) -> Transaction {
    Transaction::create_stream(id, read_version, name.to_vec())
}

/// `tx` signed by `key` (which also sets its sender).
pub fn signed(tx: Transaction, key: &SigningKey) -> SignedTransaction {
    sign(tx, key).expect("test keys sign")
}

/// Marsaglia's xorshift64: a fast, deterministic stream of numbers for
/// workloads and fault schedules. Not for anything secret.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A stream from `seed` (0 is replaced: xorshift never leaves 0).
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`n` > 0; the slight modulo bias does not matter
    /// for workloads).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// `n` bytes of the stream (test blobs, payloads).
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(n + 8);
        while bytes.len() < n {
            bytes.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        bytes.truncate(n);
        bytes
    }
}
