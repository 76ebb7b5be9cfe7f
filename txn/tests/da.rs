//! Blob parts and records in replay: who may record what, and what
//! strangers, forgers and replayers get.

mod common;

use common::*;
use ordo_kv::{Column, MemEngine};
use ordo_log::{Coder, EntryDescriptor, EntryHeader};
use ordo_txn::attest::{Genesis, Item, Ordering, SYSTEM_STREAM, encode_attested};
use ordo_txn::da::{BlobRecord, DaOp, part_of, part_tags, record_key};
use ordo_txn::{
    AclOp, EntryBody, Outcome, Replayer, Transaction, Write, check_entry, encode_batch,
};

/// Account 0 is the log's admin, 1 its gateway, 2 a stranger, 3 a blob
/// owner.
const ADMIN: usize = 0;
const GATEWAY: usize = 1;
const STRANGER: usize = 2;
const OWNER: usize = 3;
const BLOB: [u8; 32] = [0xb1; 32];
const EXPIRES: u64 = 2_000_000_000;

/// A log applied header by header, as a node applies it.
struct BlobLog {
    replayer: Replayer<MemEngine>,
    next_id: u64,
    /// Every entry applied: its header and payload.
    entries: Vec<(EntryHeader, Vec<u8>)>,
}

impl BlobLog {
    fn new() -> Self {
        let mut log = Self {
            replayer: Replayer::open(MemEngine::new()).expect("opens"),
            next_id: 1,
            entries: vec![],
        };
        let genesis = Genesis {
            admin: address(ADMIN),
            gateways: vec![address(GATEWAY)],
            ordering: Ordering::Members,
        };
        log.append(genesis.encode(), vec![], ADMIN);
        log
    }

    /// Appends an entry holding `payload` with `tags`, submitted by
    /// `submitter`; returns its seq and outcomes (`None`: passed unread).
    fn append(
        &mut self,
        payload: Vec<u8>,
        tags: Vec<[u8; 32]>,
        submitter: usize,
    ) -> (u64, Option<Vec<Outcome>>) {
        let seq = self.replayer.applied().next_seq;
        let entry = Coder::new().encode(&payload, 256, 4, 2).expect("encodes");
        let header = EntryHeader {
            seq,
            entry: EntryDescriptor::of(&entry, tags, address(submitter)),
        };
        let body = EntryBody::Read(check_entry(&payload));
        let outcomes = self.replayer.apply_header(&header, body).expect("applies");
        self.entries.push((header, payload));
        (seq, outcomes)
    }

    /// Appends a part of `blob` holding `bytes`, submitted by `submitter`.
    fn part(&mut self, blob: [u8; 32], bytes: &[u8], submitter: usize) -> u64 {
        let (seq, outcomes) = self.append(bytes.to_vec(), part_tags(blob), submitter);
        assert_eq!(outcomes, Some(vec![]), "a part decides nothing");
        seq
    }

    fn transaction(&mut self, sender: usize, op: DaOp) -> Transaction {
        self.next_id += 1;
        Transaction {
            sender: address(sender),
            acl: vec![AclOp::Da(op)],
            ..blank(txn_id(1000 + self.next_id), 0)
        }
    }

    /// Applies `tx` attested by `by` (submitted by it too).
    fn attested(&mut self, tx: Transaction, by: usize) -> Outcome {
        let payload = encode_attested(&[Item::Attested(tx)], &account(by)).expect("signs");
        self.append(payload, vec![], by).1.expect("read").remove(0)
    }

    /// Applies `tx` signed by its sender `by`, submitted by `by`.
    fn signed(&mut self, tx: Transaction, by: usize) -> Outcome {
        let payload = encode_batch(&[signed_by(by, tx)]);
        self.append(payload, vec![], by).1.expect("read").remove(0)
    }

    fn record_row(&self, blob: [u8; 32], owner: usize) -> Option<BlobRecord> {
        let found = self
            .replayer
            .store()
            .get(
                Column::Data,
                &SYSTEM_STREAM,
                &record_key(&blob, &address(owner)),
                self.replayer.applied().version,
            )
            .expect("reads");
        found
            .and_then(|f| f.value)
            .map(|bytes| BlobRecord::decode(&bytes).expect("a record"))
    }
}

fn record(parts: Vec<u64>, size: u64) -> DaOp {
    DaOp::Record {
        id: BLOB,
        size,
        expires_at: EXPIRES,
        commitment: b"ODC1 claimed".to_vec(),
        parts,
    }
}

fn refused(outcome: &Outcome, why: &str) -> bool {
    matches!(outcome, Outcome::DaRefused { reason } if reason.contains(why))
}

/// A log holding two parts of [`BLOB`] (3 + 2 bytes) submitted by the
/// gateway.
fn two_parts() -> (BlobLog, Vec<u64>) {
    let mut log = BlobLog::new();
    let parts = vec![
        log.part(BLOB, b"abc", GATEWAY),
        log.part(BLOB, b"de", GATEWAY),
    ];
    (log, parts)
}

#[test]
fn a_gateway_records_a_blob_for_its_owner_and_the_row_names_every_part() {
    let (mut log, parts) = two_parts();
    let tx = log.transaction(OWNER, record(parts.clone(), 5));
    let outcome = log.attested(tx, GATEWAY);
    assert!(outcome.is_committed(), "{outcome}");
    let row = log.record_row(BLOB, OWNER).expect("recorded");
    assert_eq!(row.owner, address(OWNER));
    assert_eq!((row.size, row.expires_at), (5, EXPIRES));
    assert_eq!(row.parts.iter().map(|p| p.seq).collect::<Vec<_>>(), parts);
    assert_eq!(row.parts.iter().map(|p| p.len).collect::<Vec<_>>(), [3, 2]);
    assert_eq!(row.recorded_in, parts[1] + 1);
    assert_eq!(row.commitment, b"ODC1 claimed");
}

#[test]
fn an_owner_records_parts_it_submitted_itself_with_its_own_signature() {
    let mut log = BlobLog::new();
    let parts = vec![log.part(BLOB, b"xyz", OWNER)];
    let tx = log.transaction(OWNER, record(parts, 3));
    assert!(log.signed(tx, OWNER).is_committed());
    assert!(log.record_row(BLOB, OWNER).is_some());
}

#[test]
fn a_stranger_cannot_claim_parts_a_gateway_stored_for_someone_else() {
    let (mut log, parts) = two_parts();
    let tx = log.transaction(STRANGER, record(parts, 5));
    let outcome = log.signed(tx, STRANGER);
    assert!(
        refused(&outcome, "neither the owner nor the gateway"),
        "{outcome}"
    );
    assert!(log.record_row(BLOB, STRANGER).is_none());
}

#[test]
fn a_forged_attestation_by_an_account_without_the_gateway_role_records_nothing() {
    let (mut log, parts) = two_parts();
    let tx = log.transaction(OWNER, record(parts, 5));
    let outcome = log.attested(tx, STRANGER);
    assert_eq!(
        outcome,
        Outcome::NotAGateway {
            gateway: address(STRANGER)
        }
    );
    assert!(log.record_row(BLOB, OWNER).is_none());
}

#[test]
fn a_replayed_record_is_a_duplicate_and_a_second_record_of_the_same_blob_is_refused() {
    let (mut log, parts) = two_parts();
    let tx = log.transaction(OWNER, record(parts.clone(), 5));
    assert!(log.attested(tx.clone(), GATEWAY).is_committed());
    let again = log.attested(tx, GATEWAY);
    assert!(matches!(again, Outcome::Duplicate { .. }), "{again}");
    let other = log.transaction(OWNER, record(parts, 5));
    assert!(refused(&log.attested(other, GATEWAY), "already holds"));
}

#[test]
fn records_whose_parts_do_not_carry_the_blob_are_refused() {
    let (mut log, parts) = two_parts();
    let other_blob = log.part([0xb2; 32], b"fg", GATEWAY);
    let blank_tx = log_blank(&mut log);
    let plain = log.signed(blank_tx, OWNER);
    assert!(plain.is_committed());
    let not_a_part = log.replayer.applied().next_seq - 1;
    let future = log.replayer.applied().next_seq + 5;
    let cases = [
        (record(parts.clone(), 4), "carry 5 bytes"),
        (record(vec![parts[1], parts[0]], 5), "strictly increasing"),
        (record(vec![parts[0], parts[0]], 6), "strictly increasing"),
        (record(vec![parts[0], other_blob], 5), "is a part of blob"),
        (record(vec![parts[0], not_a_part], 5), "is not a blob part"),
        (record(vec![parts[0], future], 5), "earlier entries"),
        (record(vec![], 0), "at least one part"),
        (record(parts.clone(), (128 << 20) + 1), "at most"),
    ];
    for (op, why) in cases {
        let tx = log.transaction(OWNER, op);
        let outcome = log.attested(tx, GATEWAY);
        assert!(refused(&outcome, why), "{why}: {outcome}");
    }
    assert!(log.record_row(BLOB, OWNER).is_none());
}

fn log_blank(log: &mut BlobLog) -> Transaction {
    log.next_id += 1;
    Transaction {
        sender: address(OWNER),
        ..blank(txn_id(1000 + log.next_id), 0)
    }
}

#[test]
fn a_tagged_part_is_never_decided_whatever_its_bytes_hold() {
    let mut log = BlobLog::new();
    let stream = stream_of(OWNER, b"s");
    let create = ordo_txn::testkit::create_stream(txn_id(1), 0, b"s");
    let payload = encode_batch(&[signed_by(OWNER, create)]);
    let (_, outcomes) = log.append(payload, part_tags(BLOB), GATEWAY);
    assert_eq!(outcomes, Some(vec![]));
    let write = Transaction {
        sender: address(OWNER),
        writes: vec![Write {
            stream,
            key: b"k".to_vec(),
            value: Some(b"v".to_vec()),
        }],
        ..blank(txn_id(2), 0)
    };
    let outcome = log.signed(write, OWNER);
    assert!(
        matches!(outcome, Outcome::UnknownStream { .. }),
        "the stream the part's bytes would create does not exist: {outcome}"
    );
}

#[test]
fn only_the_owner_deletes_a_record() {
    let (mut log, parts) = two_parts();
    let tx = log.transaction(OWNER, record(parts, 5));
    assert!(log.attested(tx, GATEWAY).is_committed());
    let theft = log.transaction(STRANGER, DaOp::Delete { id: BLOB });
    assert!(refused(&log.signed(theft, STRANGER), "holds no record"));
    assert!(log.record_row(BLOB, OWNER).is_some());
    let delete = log.transaction(OWNER, DaOp::Delete { id: BLOB });
    assert!(log.signed(delete, OWNER).is_committed());
    assert!(log.record_row(BLOB, OWNER).is_none());
    let again = log.transaction(OWNER, DaOp::Delete { id: BLOB });
    assert!(refused(&log.signed(again, OWNER), "holds no record"));
}

#[test]
fn only_a_gateway_expires_a_record_and_only_once_its_expiry_has_come() {
    let (mut log, parts) = two_parts();
    let tx = log.transaction(OWNER, record(parts, 5));
    assert!(log.attested(tx, GATEWAY).is_committed());
    let expire = |now| DaOp::Expire {
        id: BLOB,
        owner: address(OWNER),
        now,
    };
    let by_stranger = log.transaction(STRANGER, expire(EXPIRES));
    let outcome = log.signed(by_stranger, STRANGER);
    assert!(
        matches!(outcome, Outcome::PermissionDenied { .. }),
        "{outcome}"
    );
    let early = log.transaction(GATEWAY, expire(EXPIRES - 1));
    assert!(refused(&log.signed(early, GATEWAY), "not yet"));
    assert!(log.record_row(BLOB, OWNER).is_some());
    let due = log.transaction(GATEWAY, expire(EXPIRES));
    assert!(log.signed(due, GATEWAY).is_committed());
    assert!(log.record_row(BLOB, OWNER).is_none());
}

#[test]
fn a_record_and_its_deletion_in_one_entry_see_each_other() {
    let (mut log, parts) = two_parts();
    let record_tx = log.transaction(OWNER, record(parts, 5));
    let delete_tx = log.transaction(OWNER, DaOp::Delete { id: BLOB });
    let payload = encode_attested(
        &[Item::Attested(record_tx), Item::Attested(delete_tx)],
        &account(GATEWAY),
    )
    .expect("signs");
    let outcomes = log.append(payload, vec![], GATEWAY).1.expect("read");
    assert!(outcomes.iter().all(Outcome::is_committed), "{outcomes:?}");
    assert!(log.record_row(BLOB, OWNER).is_none());
}

#[test]
fn replicas_that_read_parts_and_replicas_that_do_not_reach_one_digest() {
    let (mut log, parts) = two_parts();
    let tx = log.transaction(OWNER, record(parts, 5));
    assert!(log.attested(tx, GATEWAY).is_committed());
    // The log above was handed each part's bytes; this replica gets every
    // part unread, as the node's replica does.
    let mut other = Replayer::open(MemEngine::new()).expect("opens");
    for (header, payload) in &log.entries {
        let body = match part_of(&header.entry.tags) {
            Some(_) => EntryBody::Unread,
            None => EntryBody::Read(check_entry(payload)),
        };
        other.apply_header(header, body).expect("applies");
    }
    assert_eq!(other.applied(), log.replayer.applied());
}

#[test]
fn a_record_and_its_deletion_in_one_transaction_see_each_other() {
    let (mut log, parts) = two_parts();
    let mut tx = log.transaction(OWNER, record(parts, 5));
    tx.acl.push(AclOp::Da(DaOp::Delete { id: BLOB }));
    assert!(log.attested(tx.clone(), GATEWAY).is_committed());
    assert!(log.record_row(BLOB, OWNER).is_none());
    let mut twice = log.transaction(OWNER, DaOp::Delete { id: BLOB });
    twice.acl.push(AclOp::Da(DaOp::Delete { id: BLOB }));
    assert!(refused(&log.signed(twice, OWNER), "holds no record"));
}
