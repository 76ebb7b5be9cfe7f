//! Helpers shared by the replay tests: deterministic accounts, signing, and
//! a one-call way to push a batch through the same path a node uses
//! (encode, stateless check, ordered apply).
#![allow(dead_code)]

use alloy_primitives::B256;
use ordo_kv::{Engine, StreamId};
use ordo_txn::{
    Address, Outcome, Replayer, SignedTransaction, SigningKey, Transaction, TxnId, address_of,
    check_entry, encode_batch, sign,
};

/// The signing key of test account `i` (a fixed, valid secp256k1 scalar).
pub fn account(i: usize) -> SigningKey {
    let byte = u8::try_from(i + 1).expect("few test accounts");
    SigningKey::from_bytes(&B256::from([byte; 32])).expect("valid scalar")
}

/// The address of test account `i`.
pub fn address(i: usize) -> Address {
    address_of(&account(i))
}

/// A transaction id from a counter.
pub fn txn_id(n: u64) -> TxnId {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    id
}

/// An empty transaction of `sender` reading at `read_version`.
pub fn blank(id: TxnId, read_version: u64) -> Transaction {
    Transaction {
        id,
        sender: [0; 20],
        read_version,
        reads: vec![],
        writes: vec![],
        acl: vec![],
    }
}

/// `tx` signed by account `i`.
pub fn signed_by(i: usize, tx: Transaction) -> SignedTransaction {
    sign(tx, &account(i)).expect("test keys sign")
}

/// Appends one entry holding `txs` as log entry `seq` and returns the outcomes.
pub fn apply<E: Engine>(replayer: &mut Replayer<E>, txs: &[SignedTransaction]) -> Vec<Outcome> {
    let seq = replayer.applied().next_seq;
    let checked = check_entry(&encode_batch(txs));
    replayer.apply_entry(seq, checked).expect("apply")
}

/// A stream id that account `creator` makes with `name`.
pub fn stream_of(creator: usize, name: &[u8]) -> StreamId {
    ordo_txn::stream_id(&address(creator), name)
}
