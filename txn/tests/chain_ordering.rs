//! A log a chain orders (`Ordering::Chain` in its genesis record): each
//! header's submitter is the account the chain authenticated, so replay
//! reads only entries a gateway or an admin submitted, and a gateway's
//! unsigned items need no signature of its own. Strangers, forgers and
//! replayers are refused here as on a log its members order.

mod common;

use common::*;
use ordo_kv::MemEngine;
use ordo_txn::attest::{Genesis, Item, Ordering, encode_submitted};
use ordo_txn::{
    AclOp, Address, EntryBody, Outcome, ReplayError, Replayer, Transaction, Write, check_entry,
    encode_batch,
};
use std::sync::Arc;

/// Account 0 is the log's admin, account 1 its gateway, account 2 a
/// stranger with a key, account 3 a client.
const ADMIN: usize = 0;
const GATEWAY: usize = 1;
const STRANGER: usize = 2;
const CLIENT: usize = 3;

const CHAIN: Ordering = Ordering::Chain {
    chain_id: 31337,
    contract: [0xc0; 20],
};

type Log = Replayer<Arc<MemEngine>>;

/// A log founded by the admin on the chain, whose client has created
/// stream "data" (in an entry the gateway submitted).
fn chain_log(engine: Arc<MemEngine>) -> Log {
    let mut replayer = Replayer::open(engine).expect("opens");
    let genesis = Genesis {
        admin: address(ADMIN),
        gateways: vec![address(GATEWAY)],
        ordering: CHAIN,
    };
    let outcomes = submit(&mut replayer, &genesis.encode(), ADMIN).expect("read");
    assert_eq!(outcomes, vec![Outcome::Committed { version: 0 }]);
    assert_eq!(replayer.ordering(), CHAIN);
    let create = ordo_txn::testkit::create_stream(txn_id(1), 0, b"data");
    let batch = encode_batch(&[signed_by(CLIENT, create)]);
    let created = submit(&mut replayer, &batch, GATEWAY).expect("read");
    assert!(created[0].is_committed(), "{created:?}");
    replayer
}

/// Applies `payload` as the next entry, submitted by account `by`; `None`
/// when replay passed it over unread.
fn submit(replayer: &mut Log, payload: &[u8], by: usize) -> Option<Vec<Outcome>> {
    let seq = replayer.applied().next_seq;
    let body = EntryBody::Read(check_entry(payload));
    replayer
        .apply_submitted(seq, address(by), body)
        .expect("applies")
}

/// The client's unsigned write of `key`, with id `n`.
fn unsigned_write(n: u64, key: &[u8]) -> Transaction {
    Transaction {
        sender: address(CLIENT),
        writes: vec![Write {
            stream: stream_of(CLIENT, b"data"),
            key: key.to_vec(),
            value: Some(b"v".to_vec()),
        }],
        ..blank(txn_id(n), 0)
    }
}

fn value(replayer: &Log, key: &[u8]) -> Option<Vec<u8>> {
    let version = replayer.applied().version;
    let stream = stream_of(CLIENT, b"data");
    let read = replayer
        .store()
        .get(ordo_kv::Column::Data, &stream, key, version)
        .expect("reads");
    read.and_then(|r| r.value)
}

fn gateway_op(op: fn(Address) -> AclOp, who: usize, id: u64) -> Vec<u8> {
    let tx = Transaction {
        acl: vec![op(address(who))],
        ..blank(txn_id(id), 0)
    };
    encode_batch(&[signed_by(ADMIN, tx)])
}

fn grant(account: Address) -> AclOp {
    AclOp::GrantGateway { account }
}

fn revoke(account: Address) -> AclOp {
    AclOp::RevokeGateway { account }
}

#[test]
fn a_gateway_s_submitted_entry_applies_its_unsigned_items_without_a_signature() {
    let mut replayer = chain_log(Arc::default());
    let items = [
        Item::Attested(unsigned_write(10, b"a")),
        Item::Signed(signed_by(CLIENT, unsigned_write(11, b"b"))),
    ];
    let outcomes = submit(&mut replayer, &encode_submitted(&items), GATEWAY).expect("read");
    assert!(outcomes.iter().all(Outcome::is_committed), "{outcomes:?}");
    assert_eq!(value(&replayer, b"a"), Some(b"v".to_vec()));
    assert_eq!(
        replayer.outcome(&address(CLIENT), &txn_id(10)).unwrap(),
        Some(outcomes[0].clone()),
        "the id is recorded under its sender"
    );
}

#[test]
fn a_stranger_s_entry_is_passed_over_unread_and_every_replica_agrees() {
    let (mut read, mut unread) = (chain_log(Arc::default()), chain_log(Arc::default()));
    let signed = encode_batch(&[signed_by(CLIENT, unsigned_write(20, b"signed"))]);
    assert_eq!(
        submit(&mut read, &signed, STRANGER),
        None,
        "not even signed items"
    );
    let seq = unread.applied().next_seq;
    let skipped = unread.apply_submitted(seq, address(STRANGER), EntryBody::Unread);
    assert_eq!(skipped, Ok(None));
    assert_eq!(
        read.applied(),
        unread.applied(),
        "read or not, the same state"
    );
    assert_eq!(read.applied().next_seq, seq + 1, "the position moves on");
    assert_eq!(value(&read, b"signed"), None);
    assert_eq!(
        read.outcome(&address(CLIENT), &txn_id(20)).unwrap(),
        None,
        "no id burnt"
    );
}

#[test]
fn an_entry_a_gateway_submitted_must_be_read_before_it_is_applied() {
    let mut replayer = chain_log(Arc::default());
    let seq = replayer.applied().next_seq;
    let unread = replayer.apply_submitted(seq, address(GATEWAY), EntryBody::Unread);
    assert_eq!(unread, Err(ReplayError::NotRead { seq }));
    assert!(replayer.reads_entries_of(&address(ADMIN)).unwrap());
    assert!(!replayer.reads_entries_of(&address(STRANGER)).unwrap());
}

#[test]
fn a_chain_ordered_log_refuses_entries_offered_without_their_submitter() {
    let mut replayer = chain_log(Arc::default());
    let seq = replayer.applied().next_seq;
    let refused = replayer.apply_entry(seq, check_entry(&encode_batch(&[])));
    assert!(
        matches!(refused, Err(ReplayError::SubmitterNeeded { .. })),
        "{refused:?}"
    );
}

#[test]
fn a_submitted_entry_on_a_log_its_members_order_applies_nothing_unsigned() {
    let mut replayer = Replayer::open(MemEngine::new()).expect("opens");
    let genesis = Genesis {
        admin: address(ADMIN),
        gateways: vec![address(GATEWAY)],
        ordering: Ordering::Members,
    };
    let body = EntryBody::Read(check_entry(&genesis.encode()));
    replayer
        .apply_submitted(0, address(ADMIN), body)
        .expect("applies");
    let create = ordo_txn::testkit::create_stream(txn_id(1), 0, b"data");
    assert!(apply(&mut replayer, &[signed_by(CLIENT, create)])[0].is_committed());
    // A member could name any submitter: the gateway's name proves nothing.
    let forged = encode_submitted(&[Item::Attested(unsigned_write(30, b"x"))]);
    let body = EntryBody::Read(check_entry(&forged));
    let outcomes = replayer
        .apply_submitted(2, address(GATEWAY), body)
        .expect("applies")
        .expect("read: members' logs read every entry");
    assert!(
        matches!(outcomes[0], Outcome::BadSignature { .. }),
        "{outcomes:?}"
    );
}

#[test]
fn a_revoked_gateway_s_later_entries_are_passed_over_and_a_granted_one_s_are_read() {
    let mut replayer = chain_log(Arc::default());
    let entry = |n, key: &[u8]| encode_submitted(&[Item::Attested(unsigned_write(n, key))]);
    let revoked = submit(&mut replayer, &gateway_op(revoke, GATEWAY, 40), ADMIN);
    assert!(revoked.expect("read")[0].is_committed());
    assert_eq!(submit(&mut replayer, &entry(41, b"after"), GATEWAY), None);
    assert_eq!(value(&replayer, b"after"), None);
    let granted = submit(&mut replayer, &gateway_op(grant, STRANGER, 42), ADMIN);
    assert!(granted.expect("read")[0].is_committed());
    let outcomes = submit(&mut replayer, &entry(43, b"new"), STRANGER).expect("read");
    assert!(outcomes[0].is_committed(), "{outcomes:?}");
}

#[test]
fn an_admin_that_is_no_gateway_writes_signed_transactions_but_vouches_for_none() {
    let mut replayer = chain_log(Arc::default());
    let items = [
        Item::Attested(unsigned_write(50, b"vouched")),
        Item::Signed(signed_by(CLIENT, unsigned_write(51, b"signed"))),
    ];
    let outcomes = submit(&mut replayer, &encode_submitted(&items), ADMIN).expect("read");
    assert_eq!(
        outcomes[0],
        Outcome::NotAGateway {
            gateway: address(ADMIN)
        }
    );
    assert!(outcomes[1].is_committed(), "{outcomes:?}");
}

#[test]
fn a_captured_entry_resubmitted_applies_nothing_twice() {
    let mut replayer = chain_log(Arc::default());
    let payload = encode_submitted(&[Item::Attested(unsigned_write(60, b"once"))]);
    assert!(submit(&mut replayer, &payload, GATEWAY).expect("read")[0].is_committed());
    let version = replayer.applied().version;
    assert_eq!(
        submit(&mut replayer, &payload, STRANGER),
        None,
        "a stranger's copy is passed over"
    );
    let again = submit(&mut replayer, &payload, GATEWAY).expect("read");
    assert!(matches!(again[0], Outcome::Duplicate { .. }), "{again:?}");
    assert_eq!(replayer.applied().version, version, "nothing applied twice");
}

#[test]
fn the_ordering_is_kept_with_the_state_and_found_again_on_reopen() {
    let engine = Arc::new(MemEngine::new());
    let before = chain_log(engine.clone()).applied();
    let reopened = Replayer::open(engine).expect("reopens");
    assert_eq!(reopened.ordering(), CHAIN);
    assert_eq!(reopened.applied(), before);
    assert!(!reopened.reads_entries_of(&address(STRANGER)).unwrap());
}
