//! Helpers shared by the replay tests: deterministic accounts, signing, and
//! a one-call way to push a batch through the same path a node uses
//! (encode, stateless check, ordered apply).
#![allow(dead_code, unused_imports)] // each test binary uses some of these

use ordo_kv::{Engine, StreamId};
pub use ordo_txn::testkit::{blank, txn_id};
use ordo_txn::{
    Address, Outcome, Replayer, SignedTransaction, SigningKey, Transaction, address_of,
    check_entry, encode_batch,
};

/// The signing key of test account `i`.
pub fn account(i: usize) -> SigningKey {
    ordo_txn::testkit::signing_key(u8::try_from(i + 1).expect("few test accounts"))
}

/// The address of test account `i`.
pub fn address(i: usize) -> Address {
    address_of(&account(i))
}

/// `tx` signed by account `i`.
pub fn signed_by(i: usize, tx: Transaction) -> SignedTransaction {
    ordo_txn::testkit::signed(tx, &account(i))
}

/// Appends one entry holding `txs` as log entry `seq` and returns the outcomes.
pub fn apply<E: Engine>(replayer: &mut Replayer<E>, txs: &[SignedTransaction]) -> Vec<Outcome> {
    let seq = replayer.applied().next_seq;
    let checked = check_entry(&encode_batch(txs));
    replayer.apply_entry(seq, checked).expect("apply")
}

/// A replayer over `engine` whose log starts with a genesis record (the
/// log ordered by its members) naming account `admin` and the accounts
/// `gateways`.
pub fn founded<E: Engine>(engine: E, admin: usize, gateways: &[usize]) -> Replayer<E> {
    let mut replayer = Replayer::open(engine).expect("opens");
    let genesis = ordo_txn::attest::Genesis {
        admin: address(admin),
        gateways: gateways.iter().map(|&g| address(g)).collect(),
        ordering: ordo_txn::attest::Ordering::Members,
    };
    let outcomes = replayer
        .apply_entry(0, check_entry(&genesis.encode()))
        .expect("applies");
    assert_eq!(outcomes, vec![Outcome::Committed { version: 0 }]);
    replayer
}

/// A stream id that account `creator` makes with `name`.
pub fn stream_of(creator: usize, name: &[u8]) -> StreamId {
    ordo_txn::stream_id(&address(creator), name)
}

/// A replaying node in miniature, for concurrency tests: clients submit
/// signed transactions from many threads; one applier thread packs whatever
/// is queued into an entry (as a node's batcher would), replays it, and
/// answers each client with its outcome. Clients read snapshots from the
/// same store while it applies.
pub struct Node {
    reads: ordo_kv::MvccStore<std::sync::Arc<ordo_kv::RocksEngine>>,
    applied: std::sync::Arc<std::sync::atomic::AtomicU64>,
    submit: Option<std::sync::mpsc::Sender<Submission>>,
    applier: Option<std::thread::JoinHandle<()>>,
}

type Submission = (SignedTransaction, std::sync::mpsc::Sender<Outcome>);

/// Most transactions the miniature node packs into one entry.
const NODE_BATCH: usize = 64;

impl Node {
    /// Starts a node whose store lives in `dir`.
    pub fn start(dir: &std::path::Path) -> Self {
        use std::sync::atomic::Ordering;
        let engine = std::sync::Arc::new(ordo_kv::RocksEngine::open(dir).expect("open store"));
        let mut replayer = Replayer::open(engine.clone()).expect("open replayer");
        let applied = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(
            replayer.applied().version,
        ));
        let (submit, queue) = std::sync::mpsc::channel::<Submission>();
        let published = applied.clone();
        let applier = std::thread::spawn(move || {
            while let Ok(first) = queue.recv() {
                let mut batch = vec![first];
                while batch.len() < NODE_BATCH {
                    match queue.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let txs: Vec<SignedTransaction> = batch.iter().map(|(tx, _)| tx.clone()).collect();
                let outcomes = apply(&mut replayer, &txs);
                published.store(replayer.applied().version, Ordering::Release);
                for ((_, reply), outcome) in batch.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
        });
        Node {
            reads: ordo_kv::MvccStore::new(engine),
            applied,
            submit: Some(submit),
            applier: Some(applier),
        }
    }

    /// The newest applied version: a consistent snapshot to read at.
    pub fn snapshot(&self) -> u64 {
        self.applied.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The value of `key` at version `at`.
    pub fn read(&self, stream: &StreamId, key: &[u8], at: u64) -> Option<Vec<u8>> {
        let found = self
            .reads
            .get(ordo_kv::Column::Data, stream, key, at)
            .expect("read");
        found.and_then(|v| v.value)
    }

    /// The store, for scans.
    pub fn store(&self) -> &ordo_kv::MvccStore<std::sync::Arc<ordo_kv::RocksEngine>> {
        &self.reads
    }

    /// Submits a transaction and waits for its outcome.
    pub fn submit(&self, tx: SignedTransaction) -> Outcome {
        let (reply, outcome) = std::sync::mpsc::channel();
        self.submit
            .as_ref()
            .expect("running")
            .send((tx, reply))
            .expect("applier alive");
        outcome.recv().expect("applier answers")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.submit.take();
        if let Some(applier) = self.applier.take() {
            let _ = applier.join();
        }
    }
}
