//! What a client is told about its commit, exactly: typed decisions, a
//! resend told apart from a reused id, the original decision of a resent
//! abort, and input that is refused at the door with counts named as
//! counts. Each case was once answered wrongly or ambiguously.
#![allow(clippy::unwrap_used)]

mod common;

use common::{DevNode, channel};
use ordo_proto::v1::txn_client::TxnClient;
use ordo_proto::v1::{CommitRequest, CommitResponse, OutcomeKind};
use ordo_txn::testkit::{blank, create_stream, signed, signing_key};
use ordo_txn::{AclOp, Read, SignedTransaction, Transaction, Write};
use tonic::transport::Channel;

fn stream() -> [u8; 32] {
    ordo_txn::stream_id(&ordo_txn::address_of(&signing_key(1)), b"out")
}

fn put(key: &[u8], value: &[u8]) -> Vec<Write> {
    let (stream, key, value) = (stream(), key.to_vec(), Some(value.to_vec()));
    vec![Write { stream, key, value }]
}

async fn commit(txn: &mut TxnClient<Channel>, signed: &SignedTransaction) -> CommitResponse {
    let request = CommitRequest {
        transaction: signed.encode(),
    };
    txn.commit(request).await.unwrap().into_inner()
}

/// A node where account 1 owns stream "out" (version 1).
async fn node() -> (DevNode, tempfile::TempDir, TxnClient<Channel>) {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start(data.path());
    let mut txn = TxnClient::new(channel(&node.endpoint).await);
    let create = signed(create_stream([1; 16], 0, b"out"), &signing_key(1));
    assert_eq!(commit(&mut txn, &create).await.version, 1);
    (node, data, txn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_is_a_duplicate_and_a_reused_id_is_its_own_outcome() {
    let (node, _data, mut txn) = node().await;
    let first = Transaction {
        writes: put(b"k", b"first"),
        ..blank([2; 16], 1)
    };
    let first = signed(first, &signing_key(1));
    let committed = commit(&mut txn, &first).await;
    assert_eq!(
        (committed.outcome.as_str(), committed.version),
        ("committed", 2)
    );

    let resent = commit(&mut txn, &first).await;
    assert_eq!((resent.outcome.as_str(), resent.version), ("duplicate", 2));
    let decision = resent.decision.unwrap();
    assert_eq!(decision.kind(), OutcomeKind::Duplicate);
    let original = resent.original.unwrap();
    assert_eq!(
        (original.kind(), original.version),
        (OutcomeKind::Committed, 2)
    );

    let other = Transaction {
        writes: put(b"k", b"second"),
        ..blank([2; 16], 2)
    };
    let reused = commit(&mut txn, &signed(other, &signing_key(1))).await;
    assert_eq!((reused.outcome.as_str(), reused.version), ("id_reused", 0));
    assert_eq!(reused.decision.unwrap().kind(), OutcomeKind::IdReused);
    assert!(reused.original.is_none());
    assert_eq!(
        reused.message,
        "id reused: this sender's id was already used by a different transaction; nothing was applied; use a fresh id"
    );
    assert!(node.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_abort_names_its_original_decision_in_fields_and_words() {
    let (node, _data, mut txn) = node().await;
    let stranger = Transaction {
        writes: put(b"k", b"x"),
        ..blank([3; 16], 1)
    };
    let stranger = signed(stranger, &signing_key(2));
    let denied = commit(&mut txn, &stranger).await;
    assert_eq!(denied.outcome, "permission_denied");
    let resent = commit(&mut txn, &stranger).await;
    assert_eq!((resent.outcome.as_str(), resent.version), ("duplicate", 0));
    let original = resent.original.unwrap();
    assert_eq!(original.kind(), OutcomeKind::PermissionDenied);
    assert_eq!(original.operation, "write");
    assert_eq!(original.stream, stream().to_vec());
    assert_eq!(original.key.as_deref(), Some(&b"k"[..]));
    let stream_hex = ordo_txn::ids::hex(&stream());
    assert_eq!(
        resent.message,
        format!(
            "duplicate: this transaction was decided before (permission denied: this sender may not write in stream {stream_hex} (key \"k\"))"
        )
    );
    assert!(node.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_names_its_stream_and_key_typed() {
    let (node, _data, mut txn) = node().await;
    let read = vec![Read::Key {
        stream: stream(),
        key: b"\xffbin".to_vec(),
    }];
    let writer = Transaction {
        writes: put(b"\xffbin", b"1"),
        ..blank([4; 16], 1)
    };
    assert_eq!(
        commit(&mut txn, &signed(writer, &signing_key(1)))
            .await
            .version,
        2
    );
    let stale = Transaction {
        reads: read,
        writes: put(b"other", b"1"),
        ..blank([5; 16], 1)
    };
    let conflict = commit(&mut txn, &signed(stale, &signing_key(1))).await;
    let decision = conflict.decision.unwrap();
    assert_eq!(decision.kind(), OutcomeKind::Conflict);
    assert_eq!(decision.key.as_deref(), Some(&b"\xffbin"[..]));
    assert!(
        conflict
            .message
            .starts_with("conflict: key 0xff62696e of stream "),
        "bytes that are not text are shown as hex: {}",
        conflict.message
    );
    assert!(node.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inverted_ranges_and_oversized_counts_are_refused_at_the_door() {
    let (node, _data, mut txn) = node().await;
    let inverted = Transaction {
        reads: vec![Read::Range {
            stream: stream(),
            start: b"b".to_vec(),
            end: Some(b"a".to_vec()),
        }],
        ..blank([6; 16], 1)
    };
    let request = CommitRequest {
        transaction: signed(inverted, &signing_key(1)).encode(),
    };
    let refused = txn.commit(request).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        refused.message(),
        "malformed transaction: range read ends before it starts"
    );

    // A read set count of 2^24 with nothing behind it: the count is named
    // as a count, not as bytes.
    let mut bytes = blank([7; 16], 1).encode();
    let reads_at = 1 + 16 + 20 + 8;
    bytes[reads_at..reads_at + 4].copy_from_slice(&(1u32 << 24).to_le_bytes());
    let mut wire = (bytes.len() as u32).to_le_bytes().to_vec();
    wire.extend_from_slice(&bytes);
    wire.extend_from_slice(&[0; 65]);
    let refused = txn
        .commit(CommitRequest { transaction: wire })
        .await
        .unwrap_err();
    assert_eq!(
        refused.message(),
        "malformed transaction: read set has 16777216 entries, over the limit of 4096"
    );
    let acl = Transaction {
        acl: vec![AclOp::RenounceAdmin { stream: stream() }; 300],
        ..blank([8; 16], 1)
    };
    let request = CommitRequest {
        transaction: signed(acl, &signing_key(1)).encode(),
    };
    let refused = txn.commit(request).await.unwrap_err();
    assert_eq!(
        refused.message(),
        format!(
            "malformed transaction: acl set has 300 entries, over the limit of {}",
            ordo_txn::limits::MAX_ACL_OPS
        )
    );
    assert!(node.terminate().success());
}
