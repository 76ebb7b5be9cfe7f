//! Retention in replay: the horizon rises only by a committed compaction
//! from the log's admin or a gateway, within the policy; reads and
//! snapshots below it are refused; replicas that collected different
//! amounts agree on every answer and on the digest; a reopened replica
//! keeps its horizon.

mod common;

use common::*;
use ordo_kv::{Column, Engine, MemEngine, MvccError, RocksEngine};
use ordo_txn::attest::SYSTEM_STREAM;
use ordo_txn::retention::{DEFAULT_KEEP_VERSIONS, KEEP_ALL_VERSIONS, MAX_KEEP_SECS};
use ordo_txn::{
    AclOp, Outcome, Read, Replayer, RetentionOp, SignedTransaction, Transaction, Write,
};

/// Account 0 administers the log, 1 is its gateway, 2 a stranger, 3 a
/// client that owns stream "data".
const ADMIN: usize = 0;
const GATEWAY: usize = 1;
const STRANGER: usize = 2;
const CLIENT: usize = 3;

/// Transaction ids: each test's transactions take the next one.
struct Ids(u64);

impl Ids {
    fn next(&mut self) -> ordo_txn::TxnId {
        self.0 += 1;
        txn_id(self.0)
    }
}

fn genesis<E: Engine>(engine: E) -> Replayer<E> {
    founded(engine, ADMIN, &[GATEWAY])
}

fn op(ids: &mut Ids, who: usize, op: RetentionOp) -> SignedTransaction {
    let tx = Transaction {
        acl: vec![AclOp::Retention(op)],
        ..blank(ids.next(), 0)
    };
    signed_by(who, tx)
}

fn policy(keep_versions: u64, keep_secs: u64) -> RetentionOp {
    RetentionOp::SetPolicy {
        keep_versions,
        keep_secs,
    }
}

fn put(ids: &mut Ids, key: &[u8], value: Option<&[u8]>) -> SignedTransaction {
    let tx = Transaction {
        writes: vec![Write {
            stream: stream_of(CLIENT, b"data"),
            key: key.to_vec(),
            value: value.map(<[u8]>::to_vec),
        }],
        ..blank(ids.next(), 0)
    };
    signed_by(CLIENT, tx)
}

/// A log with stream "data", a policy keeping 2 versions, and key "k"
/// written at versions 3..=12 ("k" holds its version's number).
fn written_log<E: Engine>(engine: E, ids: &mut Ids) -> Replayer<E> {
    let mut replayer = genesis(engine);
    let create = ordo_txn::testkit::create_stream(ids.next(), 0, b"data");
    assert!(apply(&mut replayer, &[signed_by(CLIENT, create)])[0].is_committed());
    let set = op(ids, ADMIN, policy(2, 0));
    assert!(apply(&mut replayer, &[set])[0].is_committed());
    for n in 3..=12u8 {
        assert!(apply(&mut replayer, &[put(ids, b"k", Some(&[n]))])[0].is_committed());
    }
    assert_eq!(replayer.applied().version, 12);
    replayer
}

fn read_k<E: Engine>(replayer: &Replayer<E>, at: u64) -> Result<Option<Vec<u8>>, MvccError> {
    let stream = stream_of(CLIENT, b"data");
    let found = replayer.store().get(Column::Data, &stream, b"k", at)?;
    Ok(found.and_then(|v| v.value))
}

#[test]
fn a_compaction_by_the_admin_refuses_reads_below_it_and_keeps_those_above() {
    let mut ids = Ids(0);
    let mut replayer = written_log(MemEngine::new(), &mut ids);
    let compact = op(&mut ids, ADMIN, RetentionOp::Compact { to: 8 });
    assert!(apply(&mut replayer, &[compact])[0].is_committed());
    assert_eq!(replayer.retention().horizon, 8);
    assert_eq!(
        read_k(&replayer, 7),
        Err(MvccError::Compacted {
            asked: 7,
            oldest: 8
        })
    );
    replayer.store().engine().collect().expect("collects");
    assert_eq!(read_k(&replayer, 8), Ok(Some(vec![8])));
    assert_eq!(read_k(&replayer, 12), Ok(Some(vec![12])));
}

#[test]
fn a_snapshot_below_the_horizon_is_too_old_but_a_blind_write_is_not() {
    let mut ids = Ids(0);
    let mut replayer = written_log(MemEngine::new(), &mut ids);
    let compact = op(&mut ids, GATEWAY, RetentionOp::Compact { to: 9 });
    assert!(apply(&mut replayer, &[compact])[0].is_committed());
    let stream = stream_of(CLIENT, b"data");
    let stale = Transaction {
        reads: vec![Read::Key {
            stream,
            key: b"k".to_vec(),
        }],
        ..put(&mut ids, b"k", Some(b"x")).tx
    };
    let outcome = apply(&mut replayer, &[signed_by(CLIENT, stale)]).remove(0);
    assert_eq!(
        outcome,
        Outcome::TooOld {
            read_version: 0,
            oldest: 9
        }
    );
    let blind = put(&mut ids, b"k", Some(b"y"));
    assert!(apply(&mut replayer, &[blind])[0].is_committed());
}

#[test]
fn a_stranger_a_forger_and_a_replayer_cannot_compact() {
    let mut ids = Ids(0);
    let mut replayer = written_log(MemEngine::new(), &mut ids);
    let stranger = op(&mut ids, STRANGER, RetentionOp::Compact { to: 5 });
    assert!(matches!(
        apply(&mut replayer, &[stranger])[0],
        Outcome::PermissionDenied { ref op, stream, .. } if op == "compact" && stream == SYSTEM_STREAM
    ));
    // The stranger signs a compaction that names the admin as its sender.
    let mut forged = op(&mut ids, STRANGER, RetentionOp::Compact { to: 5 });
    forged.tx.sender = address(ADMIN);
    assert!(matches!(
        apply(&mut replayer, &[forged])[0],
        Outcome::BadSignature { .. }
    ));
    let gateway_policy = op(&mut ids, GATEWAY, policy(0, 0));
    assert!(matches!(
        apply(&mut replayer, &[gateway_policy])[0],
        Outcome::PermissionDenied { .. }
    ));
    assert_eq!(replayer.retention().horizon, 0);
    let compact = op(&mut ids, ADMIN, RetentionOp::Compact { to: 5 });
    assert!(apply(&mut replayer, std::slice::from_ref(&compact))[0].is_committed());
    let again = apply(&mut replayer, &[compact]).remove(0);
    assert!(matches!(again, Outcome::Duplicate { .. }), "{again:?}");
    assert_eq!(replayer.retention().horizon, 5);
}

#[test]
fn the_policy_bounds_every_compaction_and_only_the_admin_moves_it() {
    let mut ids = Ids(0);
    let mut replayer = written_log(MemEngine::new(), &mut ids);
    let refused = |outcome: &Outcome, why: &str| matches!(outcome, Outcome::RetentionRefused { reason } if reason.contains(why));
    // Keeping 2 versions at version 12, the horizon may reach 10.
    let past_floor = op(&mut ids, ADMIN, RetentionOp::Compact { to: 11 });
    let outcome = apply(&mut replayer, &[past_floor]).remove(0);
    assert!(
        refused(&outcome, "keeps the newest 2 versions"),
        "{outcome:?}"
    );
    let future = op(&mut ids, ADMIN, RetentionOp::Compact { to: 99 });
    let outcome = apply(&mut replayer, &[future]).remove(0);
    assert!(refused(&outcome, "not committed yet"), "{outcome:?}");
    let compact = op(&mut ids, ADMIN, RetentionOp::Compact { to: 10 });
    assert!(apply(&mut replayer, &[compact])[0].is_committed());
    let lower = op(&mut ids, ADMIN, RetentionOp::Compact { to: 10 });
    let outcome = apply(&mut replayer, &[lower]).remove(0);
    assert!(refused(&outcome, "already compacted"), "{outcome:?}");
    let too_long = op(&mut ids, ADMIN, policy(2, MAX_KEEP_SECS + 1));
    let outcome = apply(&mut replayer, &[too_long]).remove(0);
    assert!(refused(&outcome, "at most"), "{outcome:?}");
    let keep_all = op(&mut ids, ADMIN, policy(KEEP_ALL_VERSIONS, 0));
    assert!(apply(&mut replayer, &[keep_all])[0].is_committed());
    let blocked = op(&mut ids, ADMIN, RetentionOp::Compact { to: 11 });
    let outcome = apply(&mut replayer, &[blocked]).remove(0);
    assert!(refused(&outcome, "may rise to 0"), "{outcome:?}");
}

#[test]
fn a_new_log_keeps_the_default_policy() {
    let replayer = genesis(MemEngine::new());
    assert_eq!(
        replayer.retention().policy.keep_versions,
        DEFAULT_KEEP_VERSIONS
    );
    assert_eq!(replayer.retention().horizon, 0);
}

/// Writes, deletes and compactions; after each entry, `collect` runs on
/// one replica only.
fn churn<E: Engine>(replayer: &mut Replayer<E>, ids: &mut Ids, collect: bool) {
    for round in 0..40u64 {
        let key = [b'a' + (round % 5) as u8];
        let value = (round % 7 != 3).then_some(&key[..]);
        assert!(apply(replayer, &[put(ids, &key, value)])[0].is_committed());
        if round % 9 == 8 {
            let to = replayer.applied().version - 2;
            let compact = op(ids, GATEWAY, RetentionOp::Compact { to });
            assert!(apply(replayer, &[compact])[0].is_committed());
        }
        if collect {
            replayer.store().engine().collect().expect("collects");
        }
    }
}

#[test]
fn replicas_that_collected_different_amounts_agree_on_every_answer_and_the_digest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut eager_ids, mut idle_ids) = (Ids(0), Ids(0));
    let mut eager = written_log(
        RocksEngine::open(dir.path()).expect("opens"),
        &mut eager_ids,
    );
    let mut idle = written_log(MemEngine::new(), &mut idle_ids);
    churn(&mut eager, &mut eager_ids, true);
    churn(&mut idle, &mut idle_ids, false);
    assert!(
        eager.store().engine().collected_rows() > 0,
        "something was collected"
    );
    assert_eq!(eager.applied(), idle.applied(), "same position and digest");
    let horizon = eager.retention().horizon;
    assert_eq!(horizon, idle.retention().horizon);
    let stream = stream_of(CLIENT, b"data");
    for at in horizon..=eager.applied().version {
        for key in [b"a", b"b", b"c", b"d", b"e"] {
            assert_eq!(
                eager.store().get(Column::Data, &stream, key, at),
                idle.store().get(Column::Data, &stream, key, at)
            );
        }
        assert_eq!(
            eager.store().scan(&stream, b"", None, at, 100, 1 << 20),
            idle.store().scan(&stream, b"", None, at, 100, 1 << 20),
            "scan at {at}"
        );
    }
}

#[test]
fn a_reopened_replica_keeps_its_horizon_and_its_conflict_checks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ids = Ids(0);
    let mut replayer = written_log(RocksEngine::open(dir.path()).expect("opens"), &mut ids);
    let compact = op(&mut ids, ADMIN, RetentionOp::Compact { to: 10 });
    assert!(apply(&mut replayer, &[compact])[0].is_committed());
    replayer.store().engine().collect().expect("collects");
    let before = replayer.applied();
    drop(replayer);
    let mut reopened = Replayer::open(RocksEngine::open(dir.path()).expect("reopens"))
        .expect("replay state opens");
    assert_eq!(reopened.applied(), before);
    assert_eq!(reopened.retention().horizon, 10);
    assert!(matches!(
        read_k(&reopened, 9),
        Err(MvccError::Compacted { oldest: 10, .. })
    ));
    // A snapshot at the horizon is still checked against the writes after it.
    let stream = stream_of(CLIENT, b"data");
    let stale = Transaction {
        reads: vec![Read::Key {
            stream,
            key: b"k".to_vec(),
        }],
        read_version: 10,
        ..put(&mut ids, b"k", Some(b"x")).tx
    };
    let outcome = apply(&mut reopened, &[signed_by(CLIENT, stale)]).remove(0);
    assert!(matches!(outcome, Outcome::Conflict { .. }), "{outcome:?}");
}
