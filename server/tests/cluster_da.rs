//! Data availability on a cluster of separate processes: blobs of 1 B,
//! 1 MiB and 100 MiB dispersed through a gateway come back byte for byte
//! from a read replica, with certificates a majority of the raft voters
//! signed after checking them against their own order; retrieval goes on
//! with any two storage members lost (down, or holding damaged shards,
//! which are detected and never served); a voter refuses to sign a header
//! it did not order.
#![allow(clippy::unwrap_used)]

mod common;

use common::cluster::{client_member, start_log};
use common::{blob_of, disperse_and_wait};
use ordo_client::Client;
use ordo_da::certificate::{Certificate, Trust, verify};
use ordo_proto::cluster::v1::{SignStatementRequest, attest_client::AttestClient};
use std::time::Duration;

/// How long a replica may take to apply a record the gateway made.
const CATCH_UP_BOUND: Duration = Duration::from_secs(120);
/// Retrievals tried until the member holding damaged shards was asked.
const DAMAGE_RETRIEVALS: usize = 8;

/// The voters' node keys' addresses: the keys that sign certificates.
fn voter_keys(log: &[common::cluster::MemberProcess]) -> Vec<ordo_txn::Address> {
    log[..3]
        .iter()
        .map(|voter| {
            let key = ordo_client::keyfile::load(&voter.data_dir.join("node.key")).unwrap();
            ordo_txn::address_of(&key)
        })
        .collect()
}

/// Damages every shard of `certificate`'s parts the stopped storage member
/// at `data_dir` holds (one bit each, the store's own checksum intact).
fn damage_parts(data_dir: &std::path::Path, certificate: &Certificate) -> usize {
    use ordo_log::ShardStore;
    let store = ordo_log::RocksShardStore::open(data_dir.join("shards")).unwrap();
    let mut damaged = 0;
    for header in certificate.parts().unwrap() {
        let commitment = &header.entry.commitment;
        for index in store.list(commitment).unwrap() {
            let mut shard = store.get(commitment, index).unwrap().unwrap();
            shard.bytes[0] ^= 1;
            store.put(commitment, &shard).unwrap();
            damaged += 1;
        }
    }
    damaged
}

async fn retrieve_same(reader: &Client, id: [u8; 32], blob: &[u8]) {
    let back = reader.retrieve(id, None, |_, _| {}).await.unwrap();
    assert!(back == blob, "{} bytes came back different", blob.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_on_a_cluster_come_back_from_a_replica_with_voter_signed_certificates_despite_two_storage_faults()
 {
    let dir = tempfile::tempdir().unwrap();
    let mut log = start_log(dir.path(), 6, false).await;
    let mut gateway = client_member(7, dir.path(), &["gateway", "replica"], &log);
    gateway.start();
    let mut replica = client_member(8, dir.path(), &["replica"], &log);
    replica.start();
    let writer = Client::connect(gateway.endpoint.as_ref().unwrap())
        .await
        .unwrap();
    let reader = Client::connect(replica.endpoint.as_ref().unwrap())
        .await
        .unwrap();
    let key = ordo_txn::testkit::signing_key(90);
    let status = reader.status().await.unwrap();
    let listed = common::cluster::cluster_status(&log[0], dir.path());
    let signs_as: Vec<String> = (listed["members"].as_array().unwrap().iter())
        .filter_map(|m| m["signs_as"].as_str().map(str::to_string))
        .collect();
    let keys: Vec<String> = (voter_keys(&log).iter())
        .map(|k| format!("0x{}", ordo_client::hex(k)))
        .collect();
    assert_eq!(
        signs_as, keys,
        "ordo cluster status names the voters' signing keys"
    );
    let trust = Trust {
        signers: voter_keys(&log),
        threshold: 2,
        log: Some(status.log_id.try_into().unwrap()),
    };
    let mut kept = Vec::new();
    for (size, seed) in [(1, 1), (1 << 20, 2), (100 << 20, 3)] {
        let blob = blob_of(size, seed);
        let id = disperse_and_wait(&writer, &key, &blob).await;
        let owner = Some(ordo_txn::address_of(&key));
        let applied = reader
            .wait_for_blob(id, owner, CATCH_UP_BOUND, |_| {})
            .await
            .unwrap();
        assert_eq!(applied.state(), ordo_proto::v1::BlobState::Finalized);
        retrieve_same(&reader, id, &blob).await;
        let (bytes, signed_by) = reader.certificate(id, None).await.unwrap();
        assert!(signed_by.len() >= 2, "a majority of the voters signed");
        let certificate = Certificate::decode(&bytes).unwrap();
        verify(&certificate, &trust).unwrap();
        kept.push((id, blob, certificate));
    }
    let (id, blob, certificate) = &kept[1];
    // Two storage members down.
    log[4].kill();
    log[5].kill();
    retrieve_same(&reader, *id, blob).await;
    // One down, one holding damaged shards.
    log[4].start();
    log[5].start();
    log[3].stop();
    assert!(damage_parts(&log[3].data_dir, certificate) > 0);
    log[3].start();
    log[4].kill();
    // The reader asks every home at once and keeps the first four that
    // verify, so one retrieval may finish before the restarted member is
    // even asked; each retrieval must come back whole, and within a few
    // the member must have been asked and found its shards damaged.
    let mut page = String::new();
    for _ in 0..DAMAGE_RETRIEVALS {
        retrieve_same(&reader, *id, blob).await;
        page = common::scrape(&log[3].metrics).await;
        if !page.contains("ordo_storage_shards_damaged_total 0\n") {
            break;
        }
    }
    assert!(
        !page.contains("ordo_storage_shards_damaged_total 0\n"),
        "the damaged shards were detected: {page}"
    );
    // A voter signs nothing it did not order.
    let mut forged = certificate.signed();
    let mut header = ordo_log::EntryHeader::decode(&forged.headers[0]).unwrap();
    header.entry.commitment[0] ^= 1;
    forged.headers[0] = header.encode();
    let tls = ordo_raft::PeerTls::load(&dir.path().join("certs"), "admin").unwrap();
    let channel = tls.endpoint(&log[0].addr).unwrap().connect().await.unwrap();
    let refused = AttestClient::new(channel)
        .sign_statement(SignStatementRequest {
            statement: forged.encode(),
        })
        .await
        .expect_err("a header this voter did not order");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
}
