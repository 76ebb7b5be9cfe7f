//! Sessions against the real `ordo dev`: a client proves its key once and
//! commits unsigned transactions that the node attests; strangers, forgers
//! and replayers of a session get nothing; a node whose gateway role was
//! revoked stops offering sessions, and its SQL commits fall back to
//! signatures.
#![allow(clippy::unwrap_used)]

mod common;

use common::DevNode;
use ordo_client::{Client, ClientError};
use ordo_proto::v1::txn_client::TxnClient;
use ordo_proto::v1::{SessionOpen, SessionRequest, session_request, session_response};
use ordo_txn::testkit::signing_key as key;
use ordo_txn::{AclOp, Transaction, Write};

fn put(stream: [u8; 32], key: &[u8]) -> Transaction {
    Transaction {
        writes: vec![Write {
            stream,
            key: key.to_vec(),
            value: Some(b"v".to_vec()),
        }],
        ..Transaction::new(ordo_client::txn::fresh_id(), 0)
    }
}

fn code(error: ClientError) -> tonic::Code {
    match error {
        ClientError::Status(status) => status.code(),
        other => panic!("expected a status, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_commits_as_its_account_and_never_as_another() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start(data.path());
    let client = Client::connect(&node.endpoint).await.unwrap();
    let (alice, bob) = (key(1), key(2));
    let session = client.open_session(&alice).await.unwrap();
    let create = Transaction::create_stream(ordo_client::txn::fresh_id(), 0, b"s".to_vec());
    assert_eq!(session.commit(create).await.unwrap().outcome, "committed");
    let stream = ordo_txn::stream_id(&ordo_txn::address_of(&alice), b"s");
    let committed = session.commit(put(stream, b"k")).await.unwrap();
    assert_eq!(committed.outcome, "committed", "{}", committed.message);
    assert_eq!(client.get(stream, b"k").await.unwrap(), Some(b"v".to_vec()));

    // The session sets the sender to its own account, so a transaction
    // naming Bob has to be sent raw to try it.
    let mut as_bob = put(stream, b"bob");
    as_bob.sender = ordo_txn::address_of(&bob);
    let refused = raw_commit_on_fresh_session(&client, &alice, as_bob).await;
    assert_eq!(
        refused.0,
        tonic::Code::PermissionDenied as u32,
        "{}",
        refused.1
    );
    assert_eq!(client.get(stream, b"bob").await.unwrap(), None);
    drop((session, client));
    assert!(node.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_commit_sent_before_the_client_closes_its_side_is_answered() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start(data.path());
    let client = Client::connect(&node.endpoint).await.unwrap();
    let alice = key(1);
    let create = Transaction::create_stream(ordo_client::txn::fresh_id(), 0, b"s".to_vec());
    let created = client.commit(create, &alice).await.unwrap();
    assert_eq!(created.outcome, "committed", "{}", created.message);
    let stream = ordo_txn::stream_id(&ordo_txn::address_of(&alice), b"s");

    let (requests, mut inbound) = raw_session(&mut TxnClient::new(client.channel())).await;
    requests
        .send(answer(&mut inbound, &alice, None).await)
        .await
        .unwrap();
    inbound.message().await.unwrap().unwrap(); // opened
    const SENT: u64 = 40;
    let sender = tokio::spawn(async move {
        for id in 0..SENT {
            let mut tx = put(stream, format!("k{id}").as_bytes());
            tx.sender = ordo_txn::address_of(&key(1));
            let commit = ordo_proto::v1::SessionCommit {
                request_id: id,
                transaction: tx.encode(),
            };
            let request = session_request::Request::Commit(commit);
            requests
                .send(SessionRequest {
                    request: Some(request),
                })
                .await
                .unwrap();
        }
        // `requests` drops here: the client's side of the stream closes
        // with commits still being decided.
    });
    let mut answered = std::collections::BTreeSet::new();
    while let Some(response) = inbound.message().await.unwrap() {
        let Some(session_response::Response::Committed(c)) = response.response else {
            panic!("expected a commit answer");
        };
        assert_eq!(c.error_code, 0, "{}", c.error);
        assert_eq!(c.response.unwrap().outcome, "committed");
        assert!(
            answered.insert(c.request_id),
            "answered twice: {}",
            c.request_id
        );
    }
    sender.await.unwrap();
    assert_eq!(answered, (0..SENT).collect());
    for id in 0..SENT {
        let key = format!("k{id}");
        assert_eq!(
            client.get(stream, key.as_bytes()).await.unwrap(),
            Some(b"v".to_vec())
        );
    }
    drop(client);
    assert!(node.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_node_ends_its_open_sessions_and_sql_sessions_instead_of_waiting_out_the_grace()
 {
    let data = tempfile::tempdir().unwrap();
    let log_path = data.path().join("node.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_ordo"));
    let node_data = data.path().join("node");
    let node =
        ordo_client::dev::DevProcess::start(binary, &node_data, &["--no-cli-key"], log.into())
            .unwrap();
    let client = Client::connect(&node.endpoint).await.unwrap();
    let session = client.open_session(&key(1)).await.unwrap();
    let create = Transaction::create_stream(ordo_client::txn::fresh_id(), 0, b"s".to_vec());
    assert_eq!(session.commit(create).await.unwrap().outcome, "committed");
    let mut sql = client.sql_session().await.unwrap();
    sql.run("BEGIN").await.unwrap();

    // The sessions, a commit session and an SQL one inside a block, stay
    // open (and the client keeps answering the connection's pings) while
    // the node stops.
    let stopped = tokio::task::spawn_blocking(move || node.terminate())
        .await
        .unwrap()
        .unwrap();
    assert!(stopped.success());
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("stopped"), "{log}");
    assert!(
        !log.contains("after the grace period"),
        "an open session held the shutdown open: {log}"
    );
    let after = session.commit(put([0; 32], b"k")).await;
    assert!(after.is_err(), "the session ended with the node");
    assert!(
        sql.run("COMMIT").await.is_err(),
        "the SQL session ended too"
    );
}

/// Opens a session as `signer` on a raw stream, commits `tx` exactly as
/// given, and returns the per-commit error code and message.
async fn raw_commit_on_fresh_session(
    client: &Client,
    signer: &ordo_txn::SigningKey,
    tx: Transaction,
) -> (u32, String) {
    let (requests, mut inbound) = raw_session(&mut TxnClient::new(client.channel())).await;
    requests
        .send(answer(&mut inbound, signer, None).await)
        .await
        .unwrap();
    inbound.message().await.unwrap().unwrap(); // opened
    let commit = ordo_proto::v1::SessionCommit {
        request_id: 9,
        transaction: tx.encode(),
    };
    requests
        .send(SessionRequest {
            request: Some(session_request::Request::Commit(commit)),
        })
        .await
        .unwrap();
    let Some(session_response::Response::Committed(c)) =
        inbound.message().await.unwrap().unwrap().response
    else {
        panic!("expected a commit answer");
    };
    (c.error_code, c.error)
}

type Responses = tonic::Streaming<ordo_proto::v1::SessionResponse>;

/// A session stream driven by hand: what the test sends, what it receives.
async fn raw_session(
    txn: &mut TxnClient<tonic::transport::Channel>,
) -> (tokio::sync::mpsc::Sender<SessionRequest>, Responses) {
    let (requests, outbound) = tokio::sync::mpsc::channel(4);
    let inbound = txn
        .session(tokio_stream::wrappers::ReceiverStream::new(outbound))
        .await
        .unwrap()
        .into_inner();
    (requests, inbound)
}

/// The Open message answering the challenge on `inbound`, signed by
/// `signer`, claiming `claimed` (default: the signer's own account).
async fn answer(
    inbound: &mut Responses,
    signer: &ordo_txn::SigningKey,
    claimed: Option<[u8; 20]>,
) -> SessionRequest {
    let Some(session_response::Response::Challenge(c)) =
        inbound.message().await.unwrap().unwrap().response
    else {
        panic!("expected a challenge");
    };
    let hash = ordo_txn::sign::session_proof_hash(
        &c.node.try_into().unwrap(),
        &c.nonce.try_into().unwrap(),
        c.expires_unix_ms,
    );
    let open = SessionOpen {
        account: claimed.unwrap_or(ordo_txn::address_of(signer)).to_vec(),
        signature: ordo_txn::sign::sign_hash(hash, signer).unwrap().to_vec(),
    };
    SessionRequest {
        request: Some(session_request::Request::Open(open)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_replayed_and_unopened_sessions_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start(data.path());
    let client = Client::connect(&node.endpoint).await.unwrap();
    let mut txn = TxnClient::new(client.channel());

    // A forger claims Bob's account with Alice's signature.
    let (requests, mut inbound) = raw_session(&mut txn).await;
    let forged = answer(&mut inbound, &key(1), Some(ordo_txn::address_of(&key(2)))).await;
    requests.send(forged).await.unwrap();
    let refused = inbound.message().await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused}");

    // A replayer reuses a proof captured from another stream.
    let (first_requests, mut first) = raw_session(&mut txn).await;
    let captured = answer(&mut first, &key(1), None).await;
    drop(first_requests);
    let (requests, mut inbound) = raw_session(&mut txn).await;
    inbound.message().await.unwrap().unwrap(); // this stream's challenge, ignored
    requests.send(captured).await.unwrap();
    let refused = inbound.message().await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused}");

    // A stream that commits without opening a session gets nothing.
    let (requests, mut inbound) = raw_session(&mut txn).await;
    inbound.message().await.unwrap().unwrap();
    let commit = ordo_proto::v1::SessionCommit {
        request_id: 1,
        transaction: put([0; 32], b"k").encode(),
    };
    let request = SessionRequest {
        request: Some(session_request::Request::Commit(commit)),
    };
    requests.send(request).await.unwrap();
    let refused = inbound.message().await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused}");
    drop(client);
    assert!(node.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_with_its_stream() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start(data.path());
    let client = Client::connect(&node.endpoint).await.unwrap();
    let session = client.open_session(&key(1)).await.unwrap();
    let create = Transaction::create_stream(ordo_client::txn::fresh_id(), 0, b"s".to_vec());
    assert_eq!(session.commit(create).await.unwrap().outcome, "committed");
    assert!(node.terminate().success());
    let after = session.commit(put([0; 32], b"k")).await;
    assert!(after.is_err(), "a session does not outlive its stream");
    assert!(session.is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_gateway_role_is_revoked_offers_no_sessions_and_signs_sql() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start(data.path());
    let client = Client::connect(&node.endpoint).await.unwrap();
    let node_key = ordo_client::keyfile::load(&data.path().join("node.key")).unwrap();
    let revoke = Transaction {
        acl: vec![AclOp::RevokeGateway {
            account: ordo_txn::address_of(&node_key),
        }],
        ..Transaction::new(ordo_client::txn::fresh_id(), 0)
    };
    let revoked = client.commit(revoke, &node_key).await.unwrap();
    assert_eq!(revoked.outcome, "committed", "{}", revoked.message);
    let refused = client.open_session(&key(1)).await.unwrap_err();
    assert_eq!(code(refused), tonic::Code::FailedPrecondition);
    let mut sql = client.sql_session().await.unwrap();
    let script = "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1); SELECT id FROM t";
    let outcome = sql.run(script).await.unwrap();
    assert!(outcome.failure.is_none(), "{:?}", outcome.failure);
    let rows = &outcome.results.last().unwrap().rows;
    assert_eq!(rows.len(), 1, "SQL still commits, signed");
    drop(client);
    assert!(node.terminate().success());
}
