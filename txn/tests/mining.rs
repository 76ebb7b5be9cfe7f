//! Storage mining in replay: proofs found by real miners over a real coded
//! log are rewarded once, forged and replayed proofs are refused, the
//! epoch's cap holds, the difficulty moves, and replicas agree.

mod common;

use common::*;
use ordo_kv::MemEngine;
use ordo_log::{Coder, EncodedEntry, EntryDescriptor, EntryHeader};
use ordo_mine::{
    EpochContext, MiningProof, RecallIndex, SealedShard, Target, epoch_challenge, header_hash,
    held_in, search,
};
use ordo_txn::attest::{Genesis, Ordering, SYSTEM_STREAM};
use ordo_txn::mining::{MINER_PREFIX, REWARD_PREFIX};
use ordo_txn::{
    AclOp, Address, EntryBody, MiningOp, Outcome, Replayer, SignedTransaction, Transaction,
    check_entry, encode_batch,
};
use std::collections::HashMap;

const ADMIN: usize = 0;
const MINER_A: usize = 1;
const MINER_B: usize = 2;
const STRANGER: usize = 3;
const BENEFICIARY: Address = [0xbe; 20];
const EPOCH: u64 = 8;
const REWARD: u64 = 10;

/// A log as a node sees it: every entry coded into shards, ordered by a
/// header, and applied with that header; plus the miners' index of it.
struct MinedLog {
    replayer: Replayer<MemEngine>,
    entries: Vec<EncodedEntry>,
    headers: Vec<EntryHeader>,
    payloads: Vec<Vec<u8>>,
    index: RecallIndex,
    next_id: u64,
}

impl MinedLog {
    /// A log its members order whose genesis names the admin, with
    /// nothing else in it.
    fn new() -> Self {
        Self::with_ordering(Ordering::Members)
    }

    /// A log ordered by `ordering` whose genesis names the admin.
    fn with_ordering(ordering: Ordering) -> Self {
        let mut log = Self {
            replayer: Replayer::open(MemEngine::new()).expect("opens"),
            entries: vec![],
            headers: vec![],
            payloads: vec![],
            index: RecallIndex::new(),
            next_id: 1,
        };
        let genesis = Genesis {
            admin: address(ADMIN),
            gateways: vec![],
            ordering,
        };
        log.append(genesis.encode());
        log
    }

    /// Appends one entry holding `payload`; returns its outcomes.
    fn append(&mut self, payload: Vec<u8>) -> Vec<Outcome> {
        let seq = self.headers.len() as u64;
        let entry = Coder::new().encode(&payload, 256, 4, 2).expect("encodes");
        let header = EntryHeader {
            seq,
            entry: EntryDescriptor::of(&entry, vec![], address(ADMIN)),
        };
        self.index.push(seq, entry.commitment, entry.geometry);
        let outcomes = self
            .replayer
            .apply_header(&header, EntryBody::Read(check_entry(&payload)))
            .expect("applies")
            .expect("read");
        self.entries.push(entry);
        self.headers.push(header);
        self.payloads.push(payload);
        outcomes
    }

    /// Appends filler data (1.5 KiB blobs) until entry `seq` is next.
    fn fill_to(&mut self, seq: u64) {
        while (self.headers.len() as u64) < seq {
            let n = self.headers.len() as u8;
            self.append(vec![n; 1536]);
        }
    }

    /// Appends one entry of one transaction by `who` doing `ops`.
    fn send(&mut self, who: usize, ops: Vec<AclOp>) -> Outcome {
        let tx = self.tx(who, ops);
        self.append(encode_batch(&[tx])).remove(0)
    }

    fn tx(&mut self, who: usize, ops: Vec<AclOp>) -> SignedTransaction {
        self.next_id += 1;
        let tx = Transaction {
            acl: ops,
            ..blank(txn_id(self.next_id), 0)
        };
        signed_by(who, tx)
    }

    /// Epoch `epoch`'s context as a miner computes it from the headers,
    /// at the target replay opened it with.
    fn epoch(&self, epoch: u64) -> EpochContext {
        let open = self.replayer.mining().open.expect("an epoch is open");
        assert_eq!(open.epoch, epoch, "tests mine the open epoch");
        let closing = &self.headers[(epoch * EPOCH - 1) as usize];
        EpochContext {
            epoch,
            challenge: epoch_challenge(epoch, &header_hash(closing)),
            mineable: self.index.mineable_before(epoch * EPOCH),
            target: open.target,
        }
    }

    /// Every shard of every entry, sealed by `who`.
    fn sealed_by(&self, who: usize) -> HashMap<(u64, u16), SealedShard> {
        let miner = address(who);
        let mut held = HashMap::new();
        for (seq, entry) in self.entries.iter().enumerate() {
            for shard in &entry.shards {
                let sealed = SealedShard::seal(&miner, &entry.commitment, &entry.geometry, shard);
                held.insert((seq as u64, shard.index), sealed);
            }
        }
        held
    }

    /// `miner`'s proofs among `nonces` in `epoch`, with the chunks `held`.
    fn mine(
        &self,
        miner: usize,
        epoch: u64,
        held: &HashMap<(u64, u16), SealedShard>,
        nonces: std::ops::Range<u64>,
    ) -> Vec<MiningProof> {
        let ctx = self.epoch(epoch);
        search(&address(miner), &ctx, &self.index, nonces, held_in(held)).proofs
    }

    /// A beneficiary's total rewards as the ledger says.
    fn rewards(&self, beneficiary: &Address) -> Option<String> {
        let key = [REWARD_PREFIX, beneficiary.as_slice()].concat();
        system_value(&self.replayer, &key).map(|v| String::from_utf8(v).expect("decimal"))
    }
}

fn system_value(replayer: &Replayer<MemEngine>, key: &[u8]) -> Option<Vec<u8>> {
    let version = replayer.applied().version;
    let read = replayer
        .store()
        .get(ordo_kv::Column::Data, &SYSTEM_STREAM, key, version)
        .expect("reads");
    read.and_then(|r| r.value)
}

fn configure(target: Target, goal: u64) -> AclOp {
    AclOp::Mining(MiningOp::Configure {
        epoch_entries: EPOCH,
        target_proofs: goal,
        initial_target: target.to_bytes(),
        reward_per_proof: REWARD,
    })
}

fn register() -> AclOp {
    AclOp::Mining(MiningOp::RegisterMiner {
        beneficiary: BENEFICIARY,
    })
}

fn submit(proof: &MiningProof) -> AclOp {
    AclOp::Mining(MiningOp::SubmitProof {
        proof: proof.encode(),
    })
}

fn refused(outcome: &Outcome, why: &str) -> bool {
    matches!(outcome, Outcome::MiningRefused { reason } if reason.contains(why))
}

/// A log with mining configured at `target` and `goal`, miner A
/// registered, and epoch 1 open (its entries next).
fn mining_log(target: Target, goal: u64) -> MinedLog {
    let mut log = MinedLog::new();
    assert!(
        log.send(ADMIN, vec![configure(target, goal)])
            .is_committed()
    );
    assert!(log.send(MINER_A, vec![register()]).is_committed());
    log.fill_to(EPOCH);
    assert_eq!(log.replayer.mining().open.map(|o| o.epoch), Some(1));
    log
}

#[test]
fn an_honest_proof_is_rewarded_once_and_a_second_replica_agrees() {
    let mut log = mining_log(Target::one_in(4), 4);
    let held = log.sealed_by(MINER_A);
    let proofs = log.mine(MINER_A, 1, &held, 0..64);
    assert!(!proofs.is_empty(), "64 attempts at one in four");
    let outcome = log.send(MINER_A, vec![submit(&proofs[0])]);
    assert!(outcome.is_committed(), "{outcome}");
    assert_eq!(log.rewards(&BENEFICIARY).as_deref(), Some("10"));
    let again = log.send(MINER_A, vec![submit(&proofs[0])]);
    assert!(refused(&again, "already rewarded"), "{again}");
    assert_eq!(log.rewards(&BENEFICIARY).as_deref(), Some("10"));
    let beneficiary = [MINER_PREFIX, address(MINER_A).as_slice()].concat();
    assert_eq!(
        system_value(&log.replayer, &beneficiary),
        Some(BENEFICIARY.to_vec())
    );

    // Another replica of the same log reaches the same state.
    let mut replica = Replayer::open(MemEngine::new()).expect("opens");
    for (header, payload) in log.headers.iter().zip(&log.payloads) {
        let body = EntryBody::Read(check_entry(payload));
        replica.apply_header(header, body).expect("applies");
    }
    assert_eq!(replica.applied(), log.replayer.applied());
    assert_eq!(replica.mining(), log.replayer.mining());
}

#[test]
fn a_proof_with_another_chunk_a_broken_path_or_another_miners_seal_is_refused() {
    let mut log = mining_log(Target::MAX, 64);
    let held = log.sealed_by(MINER_A);
    let honest = log.mine(MINER_A, 1, &held, 0..4);

    let mut other_chunk = honest[0].clone();
    let other = honest.iter().find(|p| p.sealed != honest[0].sealed);
    other_chunk.sealed = other
        .expect("four attempts recall two chunks")
        .sealed
        .clone();
    let mut broken_path = honest[0].clone();
    broken_path.path[0][0] ^= 1;
    assert!(log.send(MINER_B, vec![register()]).is_committed());
    // B searches with A's sealed chunks: at this target every attempt hits.
    let borrowed_seal = log.mine(MINER_B, 1, &held, 0..1).remove(0);
    for (proof, who) in [
        (other_chunk, MINER_A),
        (broken_path, MINER_A),
        (borrowed_seal, MINER_B),
    ] {
        let outcome = log.send(who, vec![submit(&proof)]);
        assert!(
            refused(&outcome, "sealed chunk") || refused(&outcome, "commitment"),
            "{outcome}"
        );
    }
    assert_eq!(log.rewards(&BENEFICIARY), None);
    assert!(log.send(MINER_A, vec![submit(&honest[2])]).is_committed());
}

#[test]
fn a_stranger_a_thief_and_an_unregistered_miner_are_refused() {
    let mut log = mining_log(Target::MAX, 64);
    let held = log.sealed_by(MINER_A);
    let proof = log.mine(MINER_A, 1, &held, 0..1).remove(0);
    // Someone else submitting A's proof, as if to take its reward.
    let stolen = log.send(STRANGER, vec![submit(&proof)]);
    assert!(refused(&stolen, "submitted by its miner"), "{stolen}");
    // B mines with seals of its own but never registered.
    let held_b = log.sealed_by(MINER_B);
    let unregistered = log.mine(MINER_B, 1, &held_b, 0..1).remove(0);
    let outcome = log.send(MINER_B, vec![submit(&unregistered)]);
    assert!(refused(&outcome, "not a registered miner"), "{outcome}");
    // Only the log's admin configures mining, and only once.
    let stranger = log.send(STRANGER, vec![configure(Target::MAX, 1)]);
    assert!(
        matches!(stranger, Outcome::PermissionDenied { .. }),
        "{stranger}"
    );
    let twice = log.send(ADMIN, vec![configure(Target::MAX, 1)]);
    assert!(refused(&twice, "already configured"), "{twice}");
    // Garbage in place of a proof.
    let garbage = AclOp::Mining(MiningOp::SubmitProof {
        proof: b"OMP1 not really".to_vec(),
    });
    assert!(refused(&log.send(MINER_A, vec![garbage]), "malformed"));
    assert_eq!(log.rewards(&BENEFICIARY), None);
}

#[test]
fn a_proof_is_accepted_only_while_its_epoch_is_open() {
    let mut log = mining_log(Target::MAX, 64);
    let held = log.sealed_by(MINER_A);
    let proofs = log.mine(MINER_A, 1, &held, 0..3);
    assert!(log.send(MINER_A, vec![submit(&proofs[0])]).is_committed());
    // Epoch 2's entries still take epoch 1's proofs; epoch 3's do not.
    log.fill_to(2 * EPOCH);
    assert!(log.send(MINER_A, vec![submit(&proofs[1])]).is_committed());
    log.fill_to(3 * EPOCH);
    let late = log.send(MINER_A, vec![submit(&proofs[2])]);
    assert!(refused(&late, "not open"), "{late}");
    // A proof for an epoch not yet opened names a challenge nobody knew.
    let mut early = proofs[2].clone();
    early.epoch = 4;
    assert!(refused(
        &log.send(MINER_A, vec![submit(&early)]),
        "not open"
    ));
    assert_eq!(log.rewards(&BENEFICIARY).as_deref(), Some("20"));
}

#[test]
fn mining_before_it_is_configured_is_refused() {
    let mut log = MinedLog::new();
    assert!(log.send(MINER_A, vec![register()]).is_committed());
    let proof = AclOp::Mining(MiningOp::SubmitProof { proof: vec![0; 8] });
    assert!(refused(&log.send(MINER_A, vec![proof]), "not configured"));
}

#[test]
fn an_epoch_accepts_at_most_twice_its_goal_and_the_next_target_halves() {
    let mut log = mining_log(Target::one_in(2), 2);
    let held = log.sealed_by(MINER_A);
    let proofs = log.mine(MINER_A, 1, &held, 0..64);
    assert!(proofs.len() >= 5);
    let txs: Vec<SignedTransaction> = proofs[..5]
        .iter()
        .map(|p| log.tx(MINER_A, vec![submit(p)]))
        .collect();
    let outcomes = log.append(encode_batch(&txs));
    let accepted = outcomes.iter().filter(|o| o.is_committed()).count();
    assert_eq!(accepted, 4, "{outcomes:?}");
    assert!(refused(&outcomes[4], "accepted its 4 proofs"));
    assert_eq!(log.rewards(&BENEFICIARY).as_deref(), Some("40"));
    let before = log.replayer.mining().open.expect("open").target;
    log.fill_to(2 * EPOCH);
    let open = log.replayer.mining().open.expect("open");
    let two = alloy_primitives::U256::from(2);
    assert_eq!((open.epoch, open.accepted), (2, 0));
    assert_eq!(open.target, Target(before.0 / two));
    // An epoch with no proof doubles it.
    log.fill_to(3 * EPOCH);
    let doubled = log.replayer.mining().open.expect("open").target;
    assert_eq!(doubled, Target(open.target.0 * two));
}

#[test]
fn an_entry_passed_over_unread_closes_an_epoch_but_is_never_recalled() {
    let ordering = Ordering::Chain {
        chain_id: 31337,
        contract: [0xc0; 20],
    };
    let mut log = MinedLog::with_ordering(ordering);
    assert!(
        log.send(ADMIN, vec![configure(Target::MAX, 8)])
            .is_committed()
    );
    log.fill_to(EPOCH - 1);
    let before = log.replayer.mining().mineable;
    // Entry 7 comes from a stranger: a chain-ordered log passes over it
    // unread (its shards may exist nowhere), yet it still closes epoch 0.
    let header = EntryHeader {
        seq: EPOCH - 1,
        entry: EntryDescriptor {
            commitment: [9; 32],
            geometry: ordo_log::Geometry::new(1536, 256, 4, 2).expect("valid"),
            tags: vec![],
            submitter: address(STRANGER),
        },
    };
    let skipped = log.replayer.apply_header(&header, EntryBody::Unread);
    assert_eq!(skipped.expect("applies"), None);
    assert_eq!(log.replayer.mining().open.map(|o| o.epoch), Some(1));
    assert_eq!(log.replayer.mining().mineable, before, "never recalled");
}

#[test]
fn a_store_that_applied_entries_without_recording_its_format_is_refused() {
    use ordo_kv::{Column, Engine, WriteBatch};
    use std::sync::Arc;
    let engine = Arc::new(MemEngine::new());
    let mut replayer = Replayer::open(engine.clone()).expect("opens");
    let genesis = Genesis {
        admin: address(ADMIN),
        gateways: vec![],
        ordering: Ordering::Members,
    };
    replayer
        .apply_entry(0, check_entry(&genesis.encode()))
        .expect("applies");
    drop(replayer);
    assert!(
        Replayer::open(engine.clone()).is_ok(),
        "the format is recorded"
    );
    let mut batch = WriteBatch::default();
    batch.delete(Column::Meta, b"format".to_vec());
    engine.write(batch, true).expect("writes");
    let Err(refused) = Replayer::open(engine) else {
        panic!("a store without its format opened");
    };
    assert_eq!(
        refused,
        ordo_txn::ReplayError::OldFormat {
            found: 0,
            expected: ordo_txn::replay::STATE_FORMAT
        }
    );
}
