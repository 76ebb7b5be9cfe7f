//! End-to-end: transactions appended to a running `ordo dev` are replayed
//! by its replica and readable over gRPC, survive `kill -9`, and bad
//! requests get the right status codes while the node keeps serving.
#![allow(clippy::unwrap_used)]

mod common;

use common::{DevNode, channel};
use ordo_proto::v1::kv_client::KvClient;
use ordo_proto::v1::log_client::LogClient;
use ordo_proto::v1::{AppendRequest, GetRequest, ReadRequest};
use ordo_txn::testkit::{blank, signed, signing_key};
use ordo_txn::{AclOp, SigningKey, Transaction, Write};
use tonic::transport::Channel;

fn owner() -> SigningKey {
    signing_key(7)
}

fn stream() -> [u8; 32] {
    ordo_txn::stream_id(&ordo_txn::address_of(&owner()), b"e2e")
}

fn tx(
    id: u8,
    read_version: u64,
    acl: Vec<AclOp>,
    writes: Vec<Write>,
) -> ordo_txn::SignedTransaction {
    let tx = Transaction {
        writes,
        acl,
        ..blank([id; 16], read_version)
    };
    signed(tx, &owner())
}

/// A node on which the owner may append raw entries.
fn appender_node(data: &std::path::Path) -> DevNode {
    let owner = format!("0x{}", ordo_txn::ids::hex(&ordo_txn::address_of(&owner())));
    DevNode::start_with(data, &["--no-cli-key", "--log-appender", &owner])
}

/// A raw append signed by `key` with `nonce`.
fn signed_append(
    key: &SigningKey,
    nonce: u64,
    payload: Vec<u8>,
    tags: Vec<[u8; 32]>,
) -> AppendRequest {
    let hash = ordo_txn::sign::append_hash(nonce, &tags, &payload);
    let signature = ordo_txn::sign::sign_hash(hash, key).unwrap();
    AppendRequest {
        payload,
        tags: tags.iter().map(|t| t.to_vec()).collect(),
        nonce,
        signature: signature.to_vec(),
    }
}

async fn clients(endpoint: &str) -> (LogClient<Channel>, KvClient<Channel>) {
    let channel = channel(endpoint).await;
    (LogClient::new(channel.clone()), KvClient::new(channel))
}

/// A fresh node on which the owner has created the test stream (version 1).
async fn node_with_stream() -> (
    DevNode,
    tempfile::TempDir,
    ordo_proto::v1::txn_client::TxnClient<Channel>,
    KvClient<Channel>,
) {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start(data.path());
    let channel = channel(&node.endpoint).await;
    let mut txn = ordo_proto::v1::txn_client::TxnClient::new(channel.clone());
    let create = tx(
        1,
        0,
        vec![AclOp::CreateStream {
            name: b"e2e".to_vec(),
        }],
        vec![],
    );
    let request = ordo_proto::v1::CommitRequest {
        transaction: create.encode(),
    };
    assert_eq!(txn.commit(request).await.unwrap().into_inner().version, 1);
    (node, data, txn, KvClient::new(channel))
}

fn get(key: &[u8], min_version: u64) -> GetRequest {
    GetRequest {
        stream: stream().to_vec(),
        key: key.to_vec(),
        version: 0,
        min_version,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appended_transactions_are_applied_read_back_and_survive_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let node = appender_node(data.path());
    let (mut log, mut kv) = clients(&node.endpoint).await;

    // One entry: create the stream (version 1), then put a key (version 2).
    let create = tx(
        1,
        0,
        vec![AclOp::CreateStream {
            name: b"e2e".to_vec(),
        }],
        vec![],
    );
    let put = tx(
        2,
        0,
        vec![],
        vec![Write {
            stream: stream(),
            key: b"k".to_vec(),
            value: Some(b"v1".to_vec()),
        }],
    );
    let payload = ordo_txn::encode_batch(&[create, put]);
    let appended = log
        .append(signed_append(&owner(), 1, payload.clone(), vec![stream()]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(appended.seq, 1, "after the genesis record");

    // The entry reads back with a proof that its first chunk is in the commitment.
    let read = log
        .read(ReadRequest {
            seq: 1,
            first_leaf: Some(0),
            last_leaf: Some(0),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (read.payload.as_slice(), read.commitment.as_slice()),
        (payload.as_slice(), appended.commitment.as_slice())
    );
    let geometry = ordo_log::Geometry {
        payload_len: read.payload_len,
        chunk_size: read.chunk_size,
        data_shards: read.data_shards as u16,
        parity_shards: read.parity_shards as u16,
    };
    let proof = ordo_log::ChunkRangeProof {
        first_leaf: 0,
        last_leaf: 0,
        siblings: read
            .proof_siblings
            .iter()
            .map(|h| h.as_slice().try_into().unwrap())
            .collect(),
    };
    let commitment: [u8; 32] = read.commitment.as_slice().try_into().unwrap();
    let chunks: Vec<&[u8]> = read.chunks.iter().map(Vec::as_slice).collect();
    ordo_log::verify_chunks(&commitment, &geometry, &proof, &chunks).expect("the proof verifies");
    let mut forged = read.chunks[0].clone();
    forged[0] ^= 1;
    assert!(ordo_log::verify_chunks(&commitment, &geometry, &proof, &[forged.as_slice()]).is_err());
    let missing = log
        .read(ReadRequest {
            seq: 7,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let too_wide = ReadRequest {
        seq: 1,
        first_leaf: Some(0),
        last_leaf: Some(5000),
    };
    assert_eq!(
        log.read(too_wide).await.unwrap_err().code(),
        tonic::Code::InvalidArgument
    );

    let read = kv.get(get(b"k", 2)).await.unwrap().into_inner();
    assert!(read.found);
    assert_eq!((read.value.as_slice(), read.value_version), (&b"v1"[..], 2));
    let old = kv
        .get(GetRequest {
            version: 1,
            ..get(b"k", 0)
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!old.found, "at version 1 the key was not written yet");

    // Acknowledged, then killed: after a restart the state is back.
    node.kill();
    let node = DevNode::start(data.path());
    let (_, mut kv) = clients(&node.endpoint).await;
    let read = kv.get(get(b"k", 2)).await.unwrap().into_inner();
    assert_eq!(read.value, b"v1");
    assert!(node.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_appends_are_refused_to_strangers_forgers_and_replayers() {
    let data = tempfile::tempdir().unwrap();
    let node = appender_node(data.path());
    let (mut log, _) = clients(&node.endpoint).await;
    let refusal = |status: tonic::Status| (status.code(), status.message().to_string());

    let unsigned = AppendRequest {
        payload: b"junk".to_vec(),
        ..Default::default()
    };
    let (code, message) = refusal(log.append(unsigned).await.unwrap_err());
    assert_eq!(code, tonic::Code::PermissionDenied, "{message}");
    assert_eq!(
        message,
        "raw appends must carry a 65-byte signature of an appender"
    );

    let stranger = signing_key(8);
    let (code, message) = refusal(
        log.append(signed_append(&stranger, 1, b"junk".to_vec(), vec![]))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, tonic::Code::PermissionDenied);
    let stranger_hex = ordo_txn::ids::hex(&ordo_txn::address_of(&stranger));
    assert_eq!(
        message,
        format!(
            "account 0x{stranger_hex} may not append raw entries to this node's log (see `log_appenders`)"
        )
    );

    // The owner's signature on other bytes recovers to someone else.
    let mut forged = signed_append(&owner(), 1, b"what the owner signed".to_vec(), vec![]);
    forged.payload = b"what the forger sends".to_vec();
    assert_eq!(
        log.append(forged).await.unwrap_err().code(),
        tonic::Code::PermissionDenied
    );

    let genuine = signed_append(&owner(), 7, b"genuine".to_vec(), vec![]);
    assert_eq!(
        log.append(genuine.clone()).await.unwrap().into_inner().seq,
        1
    );
    let (code, message) = refusal(log.append(genuine).await.unwrap_err());
    assert_eq!(code, tonic::Code::PermissionDenied);
    assert_eq!(
        message,
        "nonce 7 is not above the last one this appender used (7): a replayed or reordered append"
    );
    let read = log
        .read(ReadRequest {
            seq: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        read.submitter,
        ordo_txn::address_of(&owner()).to_vec(),
        "the appender is the submitter"
    );
    assert_eq!(
        log.tail(ordo_proto::v1::TailRequest {})
            .await
            .unwrap()
            .into_inner()
            .tail,
        2,
        "only the genesis record and the genuine append are in the log"
    );
    assert!(node.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_typed_errors_and_the_node_keeps_serving() {
    let data = tempfile::tempdir().unwrap();
    let node = appender_node(data.path());
    let (mut log, mut kv) = clients(&node.endpoint).await;

    let short_stream = GetRequest {
        stream: vec![1; 5],
        ..get(b"k", 0)
    };
    assert_eq!(
        kv.get(short_stream).await.unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
    let long_key = get(&vec![b'x'; ordo_txn::limits::MAX_KEY_BYTES + 1], 0);
    assert_eq!(
        kv.get(long_key).await.unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
    let future = GetRequest {
        version: 99,
        ..get(b"k", 0)
    };
    assert_eq!(
        kv.get(future).await.unwrap_err().code(),
        tonic::Code::OutOfRange
    );
    let bad_tag = AppendRequest {
        tags: vec![vec![0; 3]],
        ..signed_append(&owner(), 1, b"x".to_vec(), vec![])
    };
    assert_eq!(
        log.append(bad_tag).await.unwrap_err().code(),
        tonic::Code::InvalidArgument
    );

    // A garbage entry is ordered but decides nothing; the node goes on.
    let garbage = log
        .append(signed_append(&owner(), 2, b"not a batch".to_vec(), vec![]))
        .await
        .unwrap();
    assert_eq!(garbage.into_inner().seq, 1, "after the genesis record");
    let create = tx(
        1,
        0,
        vec![AclOp::CreateStream {
            name: b"e2e".to_vec(),
        }],
        vec![],
    );
    log.append(signed_append(
        &owner(),
        3,
        ordo_txn::encode_batch(&[create]),
        vec![],
    ))
    .await
    .unwrap();
    let read = kv.get(get(b"k", 1)).await.unwrap().into_inner();
    assert!(!read.found);
    assert_eq!(
        read.read_version, 1,
        "the create committed at version 1 after the garbage entry"
    );
    assert!(node.terminate().success());
}

mod commits {
    use super::*;
    use ordo_proto::v1::txn_client::TxnClient;
    use ordo_proto::v1::{BeginRequest, CommitRequest, CommitResponse};
    use ordo_txn::Read;

    async fn commit(
        txn: &mut TxnClient<Channel>,
        signed: &ordo_txn::SignedTransaction,
    ) -> CommitResponse {
        txn.commit(CommitRequest {
            transaction: signed.encode(),
        })
        .await
        .unwrap()
        .into_inner()
    }

    /// Reads `k` and writes it: the shape of a read-modify-write.
    fn rmw(id: u8, read_version: u64, value: &[u8]) -> ordo_txn::SignedTransaction {
        let mut signed = tx(
            id,
            read_version,
            vec![],
            vec![Write {
                stream: stream(),
                key: b"k".to_vec(),
                value: Some(value.to_vec()),
            }],
        );
        signed.tx.reads = vec![Read::Key {
            stream: stream(),
            key: b"k".to_vec(),
        }];
        ordo_txn::sign(signed.tx, &owner()).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commits_conflict_retry_dedupe_and_read_their_writes() {
        let data = tempfile::tempdir().unwrap();
        let node = DevNode::start(data.path());
        let channel = channel(&node.endpoint).await;
        let (mut txn, mut kv) = (TxnClient::new(channel.clone()), KvClient::new(channel));

        let create = tx(
            1,
            0,
            vec![AclOp::CreateStream {
                name: b"e2e".to_vec(),
            }],
            vec![],
        );
        let created = commit(&mut txn, &create).await;
        assert_eq!(
            (created.outcome.as_str(), created.version),
            ("committed", 1)
        );

        // Two clients read k at the same snapshot and both write it.
        let snapshot = txn
            .begin(BeginRequest {})
            .await
            .unwrap()
            .into_inner()
            .version;
        let (a, b) = (rmw(2, snapshot, b"a"), rmw(3, snapshot, b"b"));
        let (mut ta, mut tb) = (txn.clone(), txn.clone());
        let first = commit(&mut ta, &a).await;
        let second = commit(&mut tb, &b).await;
        assert_eq!(first.outcome, "committed");
        assert_eq!(second.outcome, "conflict", "{second:?}");
        assert_eq!(second.key, b"k");

        // The loser retries at a fresh snapshot (new id) and wins.
        let snapshot = txn
            .begin(BeginRequest {})
            .await
            .unwrap()
            .into_inner()
            .version;
        let retried = commit(&mut txn, &rmw(4, snapshot, b"b")).await;
        assert_eq!(retried.outcome, "committed");

        // Read your writes: wait for the commit's version, see the value.
        let read = kv
            .get(get(b"k", retried.version))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (read.value.as_slice(), read.value_version),
            (&b"b"[..], retried.version)
        );

        // Resubmitting is idempotent: the original outcome, nothing applied twice.
        let again = commit(&mut txn, &rmw(4, snapshot, b"b")).await;
        assert_eq!(
            (again.outcome.as_str(), again.version),
            ("duplicate", retried.version)
        );
        let after = txn
            .begin(BeginRequest {})
            .await
            .unwrap()
            .into_inner()
            .version;
        assert_eq!(after, retried.version, "the duplicate committed nothing");

        // Concurrent commits are batched into shared entries and all decided.
        let many: Vec<_> = (10..40u8)
            .map(|id| {
                let mut client = txn.clone();
                let put = tx(
                    id,
                    after,
                    vec![],
                    vec![Write {
                        stream: stream(),
                        key: vec![id],
                        value: Some(vec![id]),
                    }],
                );
                tokio::spawn(async move { commit(&mut client, &put).await })
            })
            .collect();
        let mut seqs = std::collections::BTreeSet::new();
        for handle in many {
            let decided = handle.await.unwrap();
            assert_eq!(decided.outcome, "committed");
            seqs.insert(decided.seq);
        }
        assert!(!seqs.is_empty());
        assert!(node.terminate().success());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unsigned_forged_or_malformed_commits_are_refused_at_the_door() {
        let data = tempfile::tempdir().unwrap();
        let node = DevNode::start(data.path());
        let channel = channel(&node.endpoint).await;
        let (mut txn, mut kv) = (TxnClient::new(channel.clone()), KvClient::new(channel));

        let refused = |bytes: Vec<u8>| {
            let mut txn = txn.clone();
            async move {
                txn.commit(CommitRequest { transaction: bytes })
                    .await
                    .unwrap_err()
            }
        };
        let garbage = refused(b"garbage".to_vec()).await;
        assert_eq!(garbage.code(), tonic::Code::InvalidArgument);
        assert!(
            garbage.message().contains("malformed"),
            "{}",
            garbage.message()
        );

        let mut forged = tx(
            1,
            0,
            vec![AclOp::CreateStream {
                name: b"x".to_vec(),
            }],
            vec![],
        );
        forged.tx.sender = [9; 20];
        let forged = refused(forged.encode()).await;
        assert_eq!(forged.code(), tonic::Code::InvalidArgument);
        assert!(
            forged.message().contains("bad signature"),
            "{}",
            forged.message()
        );

        let mut unsigned = tx(2, 0, vec![], vec![]);
        unsigned.signature = [0; 65];
        assert_eq!(
            refused(unsigned.encode()).await.code(),
            tonic::Code::InvalidArgument
        );

        // Over the value limit: refused with the limit named.
        let huge = vec![0u8; ordo_txn::limits::MAX_VALUE_BYTES + 1];
        let oversized = tx(
            3,
            0,
            vec![],
            vec![Write {
                stream: stream(),
                key: b"k".to_vec(),
                value: Some(huge),
            }],
        );
        let oversized = refused(oversized.encode()).await;
        assert_eq!(oversized.code(), tonic::Code::InvalidArgument);
        assert!(
            oversized.message().contains("value"),
            "{}",
            oversized.message()
        );
        // Far over the transaction limit: refused before it is even decoded.
        let absurd = refused(vec![0u8; 3 * ordo_txn::limits::MAX_TXN_BYTES]).await;
        assert!(
            matches!(
                absurd.code(),
                tonic::Code::ResourceExhausted
                    | tonic::Code::OutOfRange
                    | tonic::Code::InvalidArgument
            ),
            "{absurd:?}"
        );
        // Reads of a stream nobody created: NOT_FOUND.
        assert_eq!(
            kv.get(get(b"k", 0)).await.unwrap_err().code(),
            tonic::Code::NotFound
        );

        // Nothing reached the log, and the node still serves.
        let version = txn
            .begin(BeginRequest {})
            .await
            .unwrap()
            .into_inner()
            .version;
        assert_eq!(version, 0);
        assert!(node.terminate().success());
    }
}

mod scans {
    use super::*;
    use ordo_proto::v1::{BatchGetRequest, CommitRequest, ScanRequest};

    fn key(i: u32) -> Vec<u8> {
        format!("p/{i:02}").into_bytes()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scans_page_through_one_snapshot_and_batch_gets_read_many() {
        let (node, _data, mut txn, mut kv) = node_with_stream().await;
        let mut writes: Vec<Write> = (0..25)
            .map(|i| Write {
                stream: stream(),
                key: key(i),
                value: Some(vec![1]),
            })
            .collect();
        writes.push(Write {
            stream: stream(),
            key: b"q/0".to_vec(),
            value: Some(vec![1]),
        });
        let fill = tx(2, 1, vec![], writes);
        let filled = txn
            .commit(CommitRequest {
                transaction: fill.encode(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(filled.outcome, "committed");

        let first = ScanRequest {
            stream: stream().to_vec(),
            prefix: Some(b"p/".to_vec()),
            limit_rows: 10,
            min_version: filled.version,
            ..Default::default()
        };
        let mut request = first.clone();
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let page = kv.scan(request.clone()).await.unwrap().into_inner();
            assert_eq!(
                page.read_version, filled.version,
                "every page reads the same snapshot"
            );
            seen.extend(page.rows.iter().map(|r| (r.key.clone(), r.value.clone())));
            pages += 1;
            if pages == 1 {
                // A write between pages must not show up in this scan.
                let change = tx(
                    3,
                    filled.version,
                    vec![],
                    vec![Write {
                        stream: stream(),
                        key: key(20),
                        value: Some(vec![2]),
                    }],
                );
                let changed = txn
                    .commit(CommitRequest {
                        transaction: change.encode(),
                    })
                    .await
                    .unwrap()
                    .into_inner();
                assert_eq!(changed.outcome, "committed");
            }
            if page.continuation.is_empty() {
                break;
            }
            request = ScanRequest {
                continuation: page.continuation,
                ..first.clone()
            };
        }
        assert_eq!(pages, 3);
        let want: Vec<_> = (0..25).map(|i| (key(i), vec![1])).collect();
        assert_eq!(
            seen, want,
            "every key of the prefix once, in order, as of the snapshot"
        );

        let batch = BatchGetRequest {
            stream: stream().to_vec(),
            keys: vec![key(20), b"q/0".to_vec(), b"nope".to_vec()],
            ..Default::default()
        };
        let results = kv.batch_get(batch).await.unwrap().into_inner().results;
        let found: Vec<_> = results.iter().map(|r| (r.found, r.value.clone())).collect();
        assert_eq!(
            found,
            vec![(true, vec![2]), (true, vec![1]), (false, vec![])]
        );

        let absurd = ScanRequest {
            limit_rows: u32::MAX,
            ..first.clone()
        };
        assert_eq!(
            kv.scan(absurd).await.unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        let forged = ScanRequest {
            continuation: b"garbage".to_vec(),
            ..first
        };
        assert_eq!(
            kv.scan(forged).await.unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        assert!(node.terminate().success());
    }
}

mod watch {
    use super::*;
    use ordo_proto::v1::{CommitRequest, WatchEvent, WatchRequest};
    use std::time::Duration;

    async fn next(events: &mut tonic::Streaming<WatchEvent>) -> WatchEvent {
        tokio::time::timeout(Duration::from_secs(10), events.message())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .expect("the stream stays open")
    }

    fn summary(event: &WatchEvent) -> (u64, String, Vec<u8>, bool) {
        (
            event.version,
            String::from_utf8_lossy(&event.key).into_owned(),
            event.value.clone(),
            event.deleted,
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn watch_streams_changes_in_order_and_resumes_from_a_version() {
        let (node, _data, mut txn, mut kv) = node_with_stream().await;

        let watch = WatchRequest {
            stream: stream().to_vec(),
            prefix: b"w/".to_vec(),
            after_version: 0,
        };
        let mut events = kv.watch(watch.clone()).await.unwrap().into_inner();
        let put = |key: &str, value: Option<&[u8]>| Write {
            stream: stream(),
            key: key.as_bytes().to_vec(),
            value: value.map(<[u8]>::to_vec),
        };
        let commits = [
            tx(2, 1, vec![], vec![put("w/a", Some(b"1"))]),
            tx(
                3,
                1,
                vec![],
                vec![put("w/b", Some(b"2")), put("x/other", Some(b"3"))],
            ),
            tx(4, 1, vec![], vec![put("w/a", None)]),
        ];
        for signed in &commits {
            let decided = txn
                .commit(CommitRequest {
                    transaction: signed.encode(),
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(decided.outcome, "committed");
        }
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(summary(&next(&mut events).await));
        }
        assert_eq!(
            seen,
            vec![
                (2, "w/a".into(), b"1".to_vec(), false),
                (3, "w/b".into(), b"2".to_vec(), false),
                (4, "w/a".into(), vec![], true),
            ],
            "in commit order, only under the prefix"
        );

        // Resuming after version 3 replays exactly what came later.
        let mut resumed = kv
            .watch(WatchRequest {
                after_version: 3,
                ..watch
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            summary(&next(&mut resumed).await),
            (4, "w/a".into(), vec![], true)
        );

        // A stopping node ends its open watches, saying why, instead of
        // holding its shutdown open for them.
        let stopped = tokio::task::spawn_blocking(move || node.terminate());
        let ended = events.message().await.unwrap_err();
        assert_eq!(ended.code(), tonic::Code::Unavailable, "{ended}");
        assert!(ended.message().contains("stopping"), "{ended}");
        assert!(stopped.await.unwrap().success());
    }
}
