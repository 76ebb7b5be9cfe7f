//! The Rust client against the real `ordo dev`: `transact` retries lost
//! races until every increment lands, and a stranger's write is refused
//! with a typed error.
#![allow(clippy::unwrap_used)]

mod common;

use common::DevNode;
use ordo_client::{Client, ClientError};
use ordo_proto::v1::AclQuery;
use ordo_proto::v1::acl_client::AclClient;
use ordo_txn::testkit::signing_key as key;
use ordo_txn::{AclOp, SigningKey};

const INCREMENTS_PER_CLIENT: u64 = 20;

/// Adds one to the counter, read-modify-write.
async fn increment(client: &Client, signer: &SigningKey, stream: [u8; 32]) -> u64 {
    let (_, version) = client
        .transact(signer, async |tx| {
            let now = tx
                .get(stream, b"counter")
                .await?
                .map_or(0, |v| u64::from_be_bytes(v.try_into().unwrap()));
            tx.put(stream, b"counter", &(now + 1).to_be_bytes());
            Ok(())
        })
        .await
        .unwrap();
    version
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_read_modify_writes_all_land_and_strangers_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start(data.path());
    let (owner, writer, stranger) = (key(1), key(2), key(3));
    let stream = ordo_txn::stream_id(&ordo_txn::address_of(&owner), b"counters");
    let client = Client::connect(&node.endpoint).await.unwrap();
    let writer_address = ordo_txn::address_of(&writer);
    client
        .transact(&owner, async |tx| {
            tx.acl(AclOp::CreateStream {
                name: b"counters".to_vec(),
            });
            Ok(())
        })
        .await
        .unwrap();
    client
        .transact(&owner, async |tx| {
            tx.acl(AclOp::GrantWriter {
                stream,
                account: writer_address,
            });
            Ok(())
        })
        .await
        .unwrap();

    // Both clients run at once (joined on this task: their commits are in
    // flight together, so they race for the counter).
    let run = |signer: SigningKey| {
        let client = client.clone();
        async move {
            for _ in 0..INCREMENTS_PER_CLIENT {
                increment(&client, &signer, stream).await;
            }
        }
    };
    tokio::join!(run(owner.clone()), run(writer.clone()));
    let counter = client.get(stream, b"counter").await.unwrap().unwrap();
    assert_eq!(
        u64::from_be_bytes(counter.try_into().unwrap()),
        2 * INCREMENTS_PER_CLIENT,
        "no increment lost"
    );

    let denied = client
        .transact(&stranger, async |tx| {
            tx.put(stream, b"counter", b"mine");
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&denied, ClientError::Aborted { outcome, .. } if outcome == "permission_denied"),
        "{denied}"
    );

    // The roles, as the Acl service reports them; a stranger's stream of
    // the same name is a different stream, and gives no rights on this one.
    client
        .transact(&stranger, async |tx| {
            tx.acl(AclOp::CreateStream {
                name: b"counters".to_vec(),
            });
            Ok(())
        })
        .await
        .unwrap();
    let mut acl = AclClient::new(common::channel(&node.endpoint).await);
    let ask = |account: &SigningKey, key: &[u8]| AclQuery {
        stream: stream.to_vec(),
        account: ordo_txn::address_of(account).to_vec(),
        key: key.to_vec(),
        ..Default::default()
    };
    let holds = |answer: tonic::Response<ordo_proto::v1::AclAnswer>| answer.into_inner().holds;
    assert!(holds(acl.stream_exists(ask(&owner, b"")).await.unwrap()));
    assert!(holds(acl.is_admin(ask(&owner, b"")).await.unwrap()));
    assert!(!holds(acl.is_admin(ask(&stranger, b"")).await.unwrap()));
    assert!(holds(acl.is_writer(ask(&writer, b"")).await.unwrap()));
    assert!(holds(
        acl.can_write(ask(&writer, b"counter")).await.unwrap()
    ));
    assert!(!holds(
        acl.can_write(ask(&stranger, b"counter")).await.unwrap()
    ));
    assert!(!holds(
        acl.is_special_key(ask(&owner, b"counter")).await.unwrap()
    ));
    let bad = AclQuery {
        account: vec![1; 3],
        ..ask(&owner, b"")
    };
    assert_eq!(
        acl.is_admin(bad).await.unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
    assert!(node.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_commits_aborts_latency_batches_and_lag() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start(data.path());
    let client = Client::connect(&node.endpoint).await.unwrap();
    let owner = key(1);
    let stream = ordo_txn::stream_id(&ordo_txn::address_of(&owner), b"m");
    client
        .transact(&owner, async |tx| {
            tx.acl(AclOp::CreateStream {
                name: b"m".to_vec(),
            });
            Ok(())
        })
        .await
        .unwrap();
    for _ in 0..5 {
        increment(&client, &owner, stream).await;
    }
    let denied = client
        .transact(&key(3), async |tx| {
            tx.put(stream, b"counter", b"x");
            Ok(())
        })
        .await;
    assert!(denied.is_err());
    let page = common::scrape(&node.metrics).await;
    for needle in [
        "ordo_commits_total 6\n",
        "ordo_aborts_total{reason=\"permission_denied\"} 1\n",
        "ordo_commit_latency_seconds_count 7\n",
        "# TYPE ordo_fsync_latency_seconds histogram",
        "# TYPE ordo_batch_transactions histogram",
        "ordo_replay_lag_entries ",
        "ordo_applied_version 6\n",
        // Session commits: the node attested every entry itself, so the
        // replica recovers no signature.
        "ordo_replica_signature_recoveries_total 0\n",
    ] {
        assert!(page.contains(needle), "{needle:?} missing from\n{page}");
    }
    assert!(node.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_pages_scans_reads_its_writes_and_watches() {
    let data = tempfile::tempdir().unwrap();
    let node = DevNode::start(data.path());
    let client = Client::connect(&node.endpoint).await.unwrap();
    let owner = key(1);
    let stream = ordo_txn::stream_id(&ordo_txn::address_of(&owner), b"pages");
    client
        .transact(&owner, async |tx| {
            tx.acl(AclOp::CreateStream {
                name: b"pages".to_vec(),
            });
            Ok(())
        })
        .await
        .unwrap();
    let mut watch = client.watch(stream, b"row/", 0).await.unwrap();
    let (_, version) = client
        .transact(&owner, async |tx| {
            for i in 0..25u8 {
                tx.put(stream, format!("row/{i:02}").as_bytes(), &[i]);
            }
            Ok(())
        })
        .await
        .unwrap();
    // Read your writes: ask for the commit's version.
    let read = client.get_at(stream, b"row/07", version).await.unwrap();
    assert_eq!((read.found, read.value.as_slice()), (true, &[7u8][..]));
    let (rows, at) = client.scan_all(stream, b"row/", 4).await.unwrap();
    assert_eq!(at, version);
    let keys: Vec<String> = rows
        .iter()
        .map(|r| String::from_utf8_lossy(&r.key).into_owned())
        .collect();
    let want: Vec<String> = (0..25).map(|i| format!("row/{i:02}")).collect();
    assert_eq!(keys, want, "seven pages of four, every row once, in order");
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(
        (first.version, first.key.as_slice()),
        (version, &b"row/00"[..])
    );
    assert!(node.terminate().success());
}
