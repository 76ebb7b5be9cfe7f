//! Data availability against a real `ordo dev`: blobs round-trip byte for
//! byte with certificates the stand-alone verifier accepts; strangers,
//! forgers and replayers of a dispersal are refused; quotas hold; a
//! dispersal a kill -9 interrupts is reported, never lost.
#![allow(clippy::unwrap_used)]

mod common;

use common::{DISPERSAL_BOUND, DevNode, blob_of, disperse_and_wait, ordo, stdout};
use ordo_da::certificate::{Certificate, Trust, verify};
use ordo_proto::v1::da_client::DaClient;
use ordo_proto::v1::{BlobState, BlobStatus, DisperseRequest, DisperseStart, disperse_request};
use ordo_txn::sign::DispersalRequest;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

async fn node_trust(client: &ordo_client::Client) -> Trust {
    let status = client.status().await.unwrap();
    Trust {
        signers: vec![status.node_address.try_into().unwrap()],
        threshold: 1,
        log: Some(status.log_id.try_into().unwrap()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_of_one_byte_a_mebibyte_and_a_hundred_mebibytes_round_trip_with_certificates() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start(data.path());
    let client = ordo_client::Client::connect(&node.endpoint).await.unwrap();
    let key = ordo_txn::testkit::signing_key(41);
    let trust = node_trust(&client).await;
    for (size, seed) in [(1, 1), (1 << 20, 2), (100 << 20, 3)] {
        let blob = blob_of(size, seed);
        let id = disperse_and_wait(&client, &key, &blob).await;
        let back = client.retrieve(id, None, |_, _| {}).await.unwrap();
        assert!(back == *blob, "{size} bytes came back different");
        let (bytes, _) = client.certificate(id, None).await.unwrap();
        let certificate = Certificate::decode(&bytes).unwrap();
        let verified = verify(&certificate, &trust).unwrap();
        assert_eq!(verified.parts.len(), size.div_ceil(16 << 20));
        assert_eq!(certificate.owner, ordo_txn::address_of(&key));
        if size <= 1 << 20 {
            certificate.check_blob(&back).unwrap();
        }
    }
    node.terminate();
}

fn hex(bytes: &[u8]) -> String {
    ordo_client::hex(bytes)
}

#[test]
fn the_cli_puts_gets_and_verifies_a_blob_and_its_record_reads_through_kv_and_sql() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start_with(data.path(), &[]);
    let endpoint = node.endpoint.as_str();
    let key = data.path().join("cli.key");
    let file = data.path().join("blob.bin");
    std::fs::write(&file, blob_of(1 << 20, 9).as_slice()).unwrap();
    let put = stdout(&ordo(&[
        "da",
        "put",
        file.to_str().unwrap(),
        "--endpoint",
        endpoint,
        "--key",
        key.to_str().unwrap(),
        "--json",
    ]));
    let put: serde_json::Value = serde_json::from_str(put.trim()).unwrap();
    assert_eq!(put["state"], "finalized", "{put}");
    let id = put["blob_id"].as_str().unwrap().to_string();
    let cert = data.path().join("blob.bin.ordo-cert");
    let back = data.path().join("back.bin");
    let cert_arg = cert.to_str().unwrap();
    stdout(&ordo(&[
        "da",
        "get",
        &id,
        "-o",
        back.to_str().unwrap(),
        "--endpoint",
        endpoint,
        "--cert",
        cert_arg,
    ]));
    assert!(std::fs::read(&back).unwrap() == std::fs::read(&file).unwrap());
    let status: serde_json::Value = serde_json::from_str(&stdout(&ordo(&[
        "status",
        "--endpoint",
        endpoint,
        "--json",
    ])))
    .unwrap();
    let (signer, log) = (
        status["node_address"].as_str().unwrap(),
        status["log_id"].as_str().unwrap(),
    );
    let verified = stdout(&ordo(&[
        "da",
        "verify",
        cert_arg,
        "--signer",
        signer,
        "--log",
        log,
        "--blob",
        file.to_str().unwrap(),
        "--json",
    ]));
    let verified: serde_json::Value = serde_json::from_str(verified.trim()).unwrap();
    assert_eq!(
        (
            verified["valid"].as_bool(),
            verified["blob_checked"].as_bool()
        ),
        (Some(true), Some(true))
    );
    let stranger = format!("0x{}", hex(&[7; 20]));
    let refused = ordo(&["da", "verify", cert_arg, "--signer", &stranger]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("0 of the trusted keys signed"));
    let rows = stdout(&ordo(&[
        "sql",
        "--endpoint",
        endpoint,
        "-c",
        "SELECT blob_id, size FROM da_blobs",
    ]));
    assert!(rows.contains(&id) && rows.contains("1048576"), "{rows}");
    node.terminate();
}

/// Where each state stands in a dispersal's course.
fn rank(state: BlobState) -> u8 {
    match state {
        BlobState::Queued => 1,
        BlobState::Stored => 2,
        BlobState::Ordered => 3,
        BlobState::Finalized => 4,
        BlobState::Failed | BlobState::Unspecified => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispersal_moves_forward_through_its_states_to_finalized() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start(data.path());
    let client = ordo_client::Client::connect(&node.endpoint).await.unwrap();
    let key = ordo_txn::testkit::signing_key(43);
    let sent = Arc::new(AtomicU64::new(0));
    let blob = blob_of(40 << 20, 12);
    let accepted = client.disperse(&key, blob, 0, sent).await.unwrap();
    assert_eq!(accepted.state(), BlobState::Queued);
    assert_eq!(accepted.parts, 3, "40 MiB in parts of 16 MiB");
    let id: [u8; 32] = accepted.blob_id.try_into().unwrap();
    let mut seen = vec![BlobState::Queued];
    let owner = Some(ordo_txn::address_of(&key));
    let done = client
        .wait_for_blob(id, owner, DISPERSAL_BOUND, |status| {
            seen.push(status.state())
        })
        .await
        .unwrap();
    assert_eq!(done.state(), BlobState::Finalized, "{}", done.reason);
    let ranks: Vec<u8> = seen.iter().map(|s| rank(*s)).collect();
    assert!(
        ranks.windows(2).all(|w| w[0] <= w[1]),
        "states go forward: {seen:?}"
    );
    assert_eq!(
        (done.parts, done.parts_done, done.part_seqs.len()),
        (3, 3, 3)
    );
    node.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_record_reads_through_a_kv_scan_of_the_system_stream() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start(data.path());
    let client = ordo_client::Client::connect(&node.endpoint).await.unwrap();
    let key = ordo_txn::testkit::signing_key(42);
    let id = disperse_and_wait(&client, &key, &blob_of(1000, 4)).await;
    let rows = client
        .scan_prefix(
            ordo_txn::attest::SYSTEM_STREAM,
            ordo_txn::da::BLOB_PREFIX,
            10,
        )
        .await
        .unwrap();
    let (blob, owner) = ordo_txn::da::parse_record_key(&rows[0].key).unwrap();
    assert_eq!((blob, owner), (id, ordo_txn::address_of(&key)));
    let record = ordo_txn::da::BlobRecord::decode(&rows[0].value).unwrap();
    assert_eq!(record.size, 1000);
    node.terminate();
}

/// A dispersal's start for `blob` signed by `signer`, claiming `owner`,
/// addressed to `node`, good until `deadline_unix_ms`.
fn signed_start(
    signer: &ordo_txn::SigningKey,
    owner: ordo_txn::Address,
    node: ordo_txn::Address,
    blob: &[u8],
    ttl_secs: u64,
    deadline_unix_ms: u64,
) -> DisperseStart {
    let request = DispersalRequest {
        node,
        owner,
        size: blob.len() as u64,
        content_hash: *blake3::hash(blob).as_bytes(),
        ttl_secs,
        deadline_unix_ms,
    };
    let signature = ordo_txn::sign::sign_hash(request.hash(), signer).unwrap();
    DisperseStart {
        owner: owner.to_vec(),
        size: request.size,
        content_hash: request.content_hash.to_vec(),
        ttl_secs,
        deadline_unix_ms,
        signature: signature.to_vec(),
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Sends `start` then `bytes` as one dispersal; the node's answer.
async fn send(
    endpoint: &str,
    start: DisperseStart,
    bytes: &[u8],
) -> Result<BlobStatus, tonic::Status> {
    let mut messages = vec![DisperseRequest {
        message: Some(disperse_request::Message::Start(start)),
    }];
    messages.extend(bytes.chunks(1 << 20).map(|chunk| DisperseRequest {
        message: Some(disperse_request::Message::Chunk(chunk.to_vec())),
    }));
    let mut da = DaClient::new(common::channel(endpoint).await);
    let answer = da.disperse(tokio_stream::iter(messages)).await?;
    Ok(answer.into_inner().status.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_forgers_and_replayers_of_a_dispersal_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start(data.path());
    let endpoint = node.endpoint.as_str();
    let client = ordo_client::Client::connect(endpoint).await.unwrap();
    let node_address: ordo_txn::Address = client
        .status()
        .await
        .unwrap()
        .node_address
        .try_into()
        .unwrap();
    let (owner_key, other_key) = (
        ordo_txn::testkit::signing_key(50),
        ordo_txn::testkit::signing_key(51),
    );
    let owner = ordo_txn::address_of(&owner_key);
    let blob = blob_of(5000, 5);
    let deadline = now_ms() + 60_000;
    let start = |signer, to, deadline| signed_start(signer, owner, to, &blob, 0, deadline);
    let code = |r: Result<BlobStatus, tonic::Status>| r.expect_err("refused").code();
    // A stranger: no valid signature at all.
    let stranger = DisperseStart {
        signature: vec![1; 65],
        ..start(&owner_key, node_address, deadline)
    };
    assert_eq!(
        code(send(endpoint, stranger, &blob).await),
        tonic::Code::Unauthenticated
    );
    // A forger: another key signs in the owner's name.
    let forged = start(&other_key, node_address, deadline);
    assert_eq!(
        code(send(endpoint, forged, &blob).await),
        tonic::Code::Unauthenticated
    );
    // Replayers: a real start sent to another node, after its deadline,
    // or with other bytes than the owner signed.
    let elsewhere = start(&owner_key, [9; 20], deadline);
    assert_eq!(
        code(send(endpoint, elsewhere, &blob).await),
        tonic::Code::Unauthenticated
    );
    let stale = start(&owner_key, node_address, now_ms() - 1);
    assert_eq!(
        code(send(endpoint, stale, &blob).await),
        tonic::Code::Unauthenticated
    );
    let genuine = start(&owner_key, node_address, deadline);
    let other_bytes = blob_of(5000, 6);
    assert_eq!(
        code(send(endpoint, genuine.clone(), &other_bytes).await),
        tonic::Code::InvalidArgument
    );
    let short = send(endpoint, genuine.clone(), &blob[..4000]).await;
    assert_eq!(code(short), tonic::Code::InvalidArgument);
    // The genuine request, then the same request replayed: one record,
    // nothing stored twice.
    let first = send(endpoint, genuine.clone(), &blob).await.unwrap();
    let id: [u8; 32] = first.blob_id.clone().try_into().unwrap();
    let done = client
        .wait_for_blob(id, Some(owner), DISPERSAL_BOUND, |_| {})
        .await
        .unwrap();
    assert_eq!(done.state(), BlobState::Finalized, "{}", done.reason);
    let tail = client.status().await.unwrap().log_tail;
    let again = send(endpoint, genuine, &blob).await.unwrap();
    assert_eq!(
        (again.state(), again.blob_id.clone()),
        (BlobState::Finalized, id.to_vec())
    );
    assert_eq!(
        client.status().await.unwrap().log_tail,
        tail,
        "nothing appended for the replay"
    );
    node.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_past_its_hourly_bytes_is_refused_and_others_are_not() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("ordo.toml");
    std::fs::write(&config, "da_account_bytes_per_hour = 1500000\n").unwrap();
    let node = DevNode::start_with(
        data.path(),
        &["--no-cli-key", "--config", config.to_str().unwrap()],
    );
    let client = ordo_client::Client::connect(&node.endpoint).await.unwrap();
    let (first, second) = (
        ordo_txn::testkit::signing_key(60),
        ordo_txn::testkit::signing_key(61),
    );
    disperse_and_wait(&client, &first, &blob_of(1 << 20, 7)).await;
    let sent = Arc::new(AtomicU64::new(0));
    let refused = client
        .disperse(&first, blob_of(1 << 20, 8), 0, sent.clone())
        .await;
    match refused {
        Err(ordo_client::ClientError::Status(status)) => {
            assert_eq!(status.code(), tonic::Code::ResourceExhausted);
            assert!(
                status.message().contains("per hour"),
                "{}",
                status.message()
            );
        }
        other => panic!("expected the quota to refuse, got {other:?}"),
    }
    disperse_and_wait(&client, &second, &blob_of(1 << 20, 8)).await;
    node.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispersal_cut_by_kill_9_is_reported_recorded_or_failed_never_lost() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start(data.path());
    let client = ordo_client::Client::connect(&node.endpoint).await.unwrap();
    let key = ordo_txn::testkit::signing_key(70);
    let owner = Some(ordo_txn::address_of(&key));
    let blob = blob_of(40 << 20, 10);
    let sent = Arc::new(AtomicU64::new(0));
    let accepted = client.disperse(&key, blob.clone(), 0, sent).await.unwrap();
    node.kill();
    let id: [u8; 32] = accepted.blob_id.try_into().unwrap();
    let node = DevNode::start(data.path());
    let client = ordo_client::Client::connect(&node.endpoint).await.unwrap();
    let status = client.blob_status(id, owner).await.unwrap();
    match status.state() {
        BlobState::Finalized => {
            let back = client.retrieve(id, owner, |_, _| {}).await.unwrap();
            assert!(back == *blob);
        }
        BlobState::Failed => {
            assert!(
                status.reason.contains("stopped during this dispersal"),
                "{}",
                status.reason
            );
            let missing = client.retrieve(id, owner, |_, _| {}).await;
            assert!(
                matches!(missing, Err(ordo_client::ClientError::Status(s)) if s.code() == tonic::Code::NotFound)
            );
            // Dispersed again, it is recorded.
            disperse_and_wait(&client, &key, &blob).await;
        }
        other => panic!("after a restart a dispersal is recorded or failed, not {other:?}"),
    }
    node.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_blob_is_dropped_through_the_log() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start(data.path());
    let client = ordo_client::Client::connect(&node.endpoint).await.unwrap();
    let key = ordo_txn::testkit::signing_key(80);
    let owner = Some(ordo_txn::address_of(&key));
    let sent = Arc::new(AtomicU64::new(0));
    let accepted = client
        .disperse(&key, blob_of(100, 11), 1, sent)
        .await
        .unwrap();
    let id: [u8; 32] = accepted.blob_id.try_into().unwrap();
    let done = client
        .wait_for_blob(id, owner, DISPERSAL_BOUND, |_| {})
        .await
        .unwrap();
    assert_eq!(done.state(), BlobState::Finalized);
    let runtime = tokio::runtime::Handle::current();
    let client2 = client.clone();
    let gone = tokio::task::spawn_blocking(move || {
        common::eventually(
            Duration::from_secs(60),
            "the expirer drops the record",
            || match runtime.block_on(client.blob_status(id, owner)) {
                Err(ordo_client::ClientError::Status(s)) if s.code() == tonic::Code::NotFound => {
                    Some(s.message().to_string())
                }
                Ok(status) => {
                    assert_eq!(status.state(), BlobState::Finalized, "until it expires");
                    None
                }
                Err(e) => panic!("{e}"),
            },
        )
    })
    .await
    .unwrap();
    assert!(gone.contains("knows no dispersal"), "{gone}");
    let missing = client2.retrieve(id, owner, |_, _| {}).await;
    assert!(
        matches!(missing, Err(ordo_client::ClientError::Status(s)) if s.code() == tonic::Code::NotFound)
    );
    let rows = stdout(&ordo(&[
        "sql",
        "--endpoint",
        &node.endpoint,
        "-c",
        "SELECT count(*) FROM da_blobs",
    ]));
    assert!(rows.contains(" 0"), "{rows}");
    node.terminate();
}
