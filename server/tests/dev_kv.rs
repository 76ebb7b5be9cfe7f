//! End-to-end: transactions appended to a running `ordo dev` are replayed
//! by its replica and readable over gRPC, survive `kill -9`, and bad
//! requests get the right status codes while the node keeps serving.
#![allow(clippy::unwrap_used)]

mod common;

use common::DevNode;
use ordo_proto::v1::kv_client::KvClient;
use ordo_proto::v1::log_client::LogClient;
use ordo_proto::v1::{AppendRequest, GetRequest};
use ordo_txn::{AclOp, SigningKey, Transaction, Write};
use tonic::transport::Channel;

fn owner() -> SigningKey {
    SigningKey::from_slice(&[7; 32]).unwrap()
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
        id: [id; 16],
        sender: [0; 20],
        read_version,
        reads: vec![],
        writes,
        acl,
    };
    ordo_txn::sign(tx, &owner()).unwrap()
}

async fn clients(endpoint: &str) -> (LogClient<Channel>, KvClient<Channel>) {
    let channel = Channel::from_shared(endpoint.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    (LogClient::new(channel.clone()), KvClient::new(channel))
}

fn get(key: &[u8], min_version: u64) -> GetRequest {
    GetRequest {
        stream: stream().to_vec(),
        key: key.to_vec(),
        version: 0,
        min_version,
    }
}

#[tokio::test]
async fn appended_transactions_are_applied_read_back_and_survive_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start(data.path());
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
        .append(AppendRequest {
            payload,
            tags: vec![stream().to_vec()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(appended.seq, 0);

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

#[tokio::test]
async fn bad_requests_get_typed_errors_and_the_node_keeps_serving() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start(data.path());
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
        payload: b"x".to_vec(),
        tags: vec![vec![0; 3]],
    };
    assert_eq!(
        log.append(bad_tag).await.unwrap_err().code(),
        tonic::Code::InvalidArgument
    );

    // A garbage entry is ordered but decides nothing; the node goes on.
    let garbage = log
        .append(AppendRequest {
            payload: b"not a batch".to_vec(),
            tags: vec![],
        })
        .await
        .unwrap();
    assert_eq!(garbage.into_inner().seq, 0);
    let create = tx(
        1,
        0,
        vec![AclOp::CreateStream {
            name: b"e2e".to_vec(),
        }],
        vec![],
    );
    log.append(AppendRequest {
        payload: ordo_txn::encode_batch(&[create]),
        tags: vec![],
    })
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
