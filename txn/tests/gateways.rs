//! Attested entries and the gateway role: who may vouch for unsigned
//! transactions, and what happens to strangers, forgers and replayers.

mod common;

use common::*;
use ordo_kv::MemEngine;
use ordo_txn::attest::{Genesis, Item, Ordering, SYSTEM_STREAM, encode_attested};
use ordo_txn::{AclOp, Outcome, Replayer, Transaction, Write, check_entry};

/// Account 0 is the log's admin, account 1 its gateway, account 2 a
/// stranger with a key, account 3 a client.
const ADMIN: usize = 0;
const GATEWAY: usize = 1;
const STRANGER: usize = 2;
const CLIENT: usize = 3;

/// A replayer whose log starts with a genesis record naming the admin and
/// the gateway, and whose client has created stream "data".
fn genesis_log() -> Replayer<MemEngine> {
    let mut replayer = founded(MemEngine::new(), ADMIN, &[GATEWAY]);
    let create = ordo_txn::testkit::create_stream(txn_id(1), 0, b"data");
    assert!(apply(&mut replayer, &[signed_by(CLIENT, create)])[0].is_committed());
    replayer
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

/// Applies an entry of `items` attested by account `by`.
fn apply_attested(replayer: &mut Replayer<MemEngine>, items: &[Item], by: usize) -> Vec<Outcome> {
    let payload = encode_attested(items, &account(by)).expect("signs");
    apply_payload(replayer, &payload)
}

fn apply_payload(replayer: &mut Replayer<MemEngine>, payload: &[u8]) -> Vec<Outcome> {
    let seq = replayer.applied().next_seq;
    replayer
        .apply_entry(seq, check_entry(payload))
        .expect("applies")
}

fn value(replayer: &Replayer<MemEngine>, key: &[u8]) -> Option<Vec<u8>> {
    let version = replayer.applied().version;
    let stream = stream_of(CLIENT, b"data");
    let read = replayer
        .store()
        .get(ordo_kv::Column::Data, &stream, key, version)
        .expect("reads");
    read.and_then(|r| r.value)
}

fn grant_gateway(replayer: &mut Replayer<MemEngine>, by: usize, who: usize, id: u64) -> Outcome {
    let tx = Transaction {
        acl: vec![AclOp::GrantGateway {
            account: address(who),
        }],
        ..blank(txn_id(id), 0)
    };
    apply(replayer, &[signed_by(by, tx)]).remove(0)
}

#[test]
fn a_gateway_s_attested_transactions_apply_with_one_signature_per_entry() {
    let mut replayer = genesis_log();
    let items = [
        Item::Attested(unsigned_write(10, b"a")),
        Item::Attested(unsigned_write(11, b"b")),
    ];
    let outcomes = apply_attested(&mut replayer, &items, GATEWAY);
    assert!(outcomes.iter().all(Outcome::is_committed), "{outcomes:?}");
    assert_eq!(value(&replayer, b"a"), Some(b"v".to_vec()));
    assert_eq!(
        replayer.outcome(&address(CLIENT), &txn_id(10)).unwrap(),
        Some(outcomes[0].clone()),
        "the id is recorded under its sender"
    );
}

#[test]
fn a_stranger_s_attested_entry_applies_nothing_unsigned_and_burns_no_id() {
    let mut replayer = genesis_log();
    let signed_item = Item::Signed(signed_by(CLIENT, unsigned_write(21, b"signed")));
    let items = [Item::Attested(unsigned_write(20, b"forged")), signed_item];
    let outcomes = apply_attested(&mut replayer, &items, STRANGER);
    assert_eq!(
        outcomes[0],
        Outcome::NotAGateway {
            gateway: address(STRANGER)
        }
    );
    assert!(
        outcomes[1].is_committed(),
        "signed items stand on their own"
    );
    assert_eq!(value(&replayer, b"forged"), None);
    assert_eq!(
        replayer.outcome(&address(CLIENT), &txn_id(20)).unwrap(),
        None
    );
    let real = signed_by(CLIENT, unsigned_write(20, b"real"));
    assert!(
        apply(&mut replayer, &[real])[0].is_committed(),
        "the client's id 20 is still free"
    );
}

#[test]
fn a_forged_attestation_applies_nothing_unsigned() {
    let mut replayer = genesis_log();
    let mut payload = encode_attested(
        &[Item::Attested(unsigned_write(30, b"x"))],
        &account(GATEWAY),
    )
    .unwrap();
    let last = payload.len() - 2;
    payload[last] ^= 0x55;
    let outcomes = apply_payload(&mut replayer, &payload);
    assert!(
        matches!(
            outcomes[0],
            Outcome::NotAGateway { .. } | Outcome::BadSignature { .. }
        ),
        "{outcomes:?}"
    );
    assert_eq!(value(&replayer, b"x"), None);
}

#[test]
fn a_gateway_revoked_at_version_v_has_nothing_applied_after_v() {
    let mut replayer = genesis_log();
    let revoke = Transaction {
        acl: vec![AclOp::RevokeGateway {
            account: address(GATEWAY),
        }],
        ..blank(txn_id(40), 0)
    };
    let items = [
        Item::Attested(unsigned_write(41, b"before")),
        Item::Signed(signed_by(ADMIN, revoke)),
        Item::Attested(unsigned_write(42, b"after")),
    ];
    let outcomes = apply_attested(&mut replayer, &items, GATEWAY);
    assert!(outcomes[0].is_committed() && outcomes[1].is_committed());
    assert!(
        matches!(outcomes[2], Outcome::NotAGateway { .. }),
        "{outcomes:?}"
    );
    let later = apply_attested(
        &mut replayer,
        &[Item::Attested(unsigned_write(43, b"later"))],
        GATEWAY,
    );
    assert!(matches!(later[0], Outcome::NotAGateway { .. }));
    assert_eq!(value(&replayer, b"after"), None);
    assert_eq!(value(&replayer, b"later"), None);
}

#[test]
fn a_resubmitted_attested_entry_applies_nothing_twice() {
    let mut replayer = genesis_log();
    let items = [Item::Attested(unsigned_write(50, b"once"))];
    let payload = encode_attested(&items, &account(GATEWAY)).unwrap();
    assert!(apply_payload(&mut replayer, &payload)[0].is_committed());
    let version = replayer.applied().version;
    let again = apply_payload(&mut replayer, &payload);
    assert!(matches!(again[0], Outcome::Duplicate { .. }), "{again:?}");
    assert_eq!(replayer.applied().version, version, "nothing applied twice");
    let signed_resend = signed_by(CLIENT, unsigned_write(50, b"once"));
    let resent = apply(&mut replayer, &[signed_resend]);
    assert!(
        matches!(resent[0], Outcome::Duplicate { .. }),
        "the signed form of the same transaction is the same transaction"
    );
}

#[test]
fn only_the_log_s_admin_grants_gateways() {
    let mut replayer = genesis_log();
    let denied = grant_gateway(&mut replayer, STRANGER, STRANGER, 60);
    assert!(
        matches!(&denied, Outcome::PermissionDenied { op, stream, .. } if op == "grant_gateway" && *stream == SYSTEM_STREAM),
        "{denied:?}"
    );
    assert!(grant_gateway(&mut replayer, ADMIN, STRANGER, 61).is_committed());
    let items = [Item::Attested(unsigned_write(62, b"granted"))];
    assert!(apply_attested(&mut replayer, &items, STRANGER)[0].is_committed());
}

#[test]
fn a_log_without_genesis_has_no_gateways_and_no_admin() {
    let mut replayer = Replayer::open(MemEngine::new()).expect("opens");
    let create = ordo_txn::testkit::create_stream(txn_id(1), 0, b"data");
    assert!(apply(&mut replayer, &[signed_by(CLIENT, create)])[0].is_committed());
    let unknown = grant_gateway(&mut replayer, ADMIN, GATEWAY, 70);
    assert!(
        matches!(unknown, Outcome::UnknownStream { .. }),
        "{unknown:?}"
    );
    let items = [Item::Attested(unsigned_write(71, b"x"))];
    assert!(matches!(
        apply_attested(&mut replayer, &items, GATEWAY)[0],
        Outcome::NotAGateway { .. }
    ));
}

#[test]
fn a_genesis_record_after_the_first_entry_is_refused() {
    let mut replayer = genesis_log();
    let late = Genesis {
        admin: address(STRANGER),
        gateways: vec![address(STRANGER)],
        ordering: Ordering::Members,
    };
    let outcomes = apply_payload(&mut replayer, &late.encode());
    assert!(
        matches!(outcomes[0], Outcome::Malformed { .. }),
        "{outcomes:?}"
    );
    let items = [Item::Attested(unsigned_write(80, b"x"))];
    assert!(matches!(
        apply_attested(&mut replayer, &items, STRANGER)[0],
        Outcome::NotAGateway { .. }
    ));
}

#[test]
fn two_replicas_of_a_log_with_refused_entries_agree() {
    let run = || {
        let mut replayer = genesis_log();
        apply_attested(
            &mut replayer,
            &[Item::Attested(unsigned_write(90, b"a"))],
            GATEWAY,
        );
        apply_attested(
            &mut replayer,
            &[Item::Attested(unsigned_write(91, b"b"))],
            STRANGER,
        );
        replayer.applied()
    };
    assert_eq!(run(), run());
}
