//! Durability of acknowledged commits: clients commit against the real
//! `ordo dev`, which is killed with SIGKILL while commits are in flight, 20
//! times over. Every commit the node acknowledged must be readable
//! afterwards with its value, and no transaction may be half-applied:
//! scanned through the state's heads column once the restarted node
//! rebuilt it (a kill -9 between a write and the heads' next pass leaves
//! them stale), and read the same way before.
#![allow(clippy::unwrap_used)]

mod common;

use common::{DevNode, channel, metric, scrape};
use ordo_proto::v1::kv_client::KvClient;
use ordo_proto::v1::txn_client::TxnClient;
use ordo_proto::v1::{CommitRequest, GetRequest, ScanRequest};
use ordo_txn::testkit::{XorShift, blank, signing_key, txn_id};
use ordo_txn::{AclOp, SigningKey, Transaction, Write};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use tonic::transport::Channel;

const CYCLES: u64 = 20;
const CLIENTS: u64 = 4;

fn owner() -> SigningKey {
    signing_key(9)
}

fn stream() -> [u8; 32] {
    ordo_txn::stream_id(&ordo_txn::address_of(&owner()), b"crash")
}

fn signed(id: u64, acl: Vec<AclOp>, writes: Vec<Write>) -> Vec<u8> {
    let tx = Transaction {
        writes,
        acl,
        ..blank(txn_id(id), 0)
    };
    ordo_txn::testkit::signed(tx, &owner()).encode()
}

/// Transaction `n` of the run writes `a/n` and `b/n`, both to `n`.
fn pair(n: u64) -> Vec<Write> {
    ["a", "b"]
        .iter()
        .map(|side| Write {
            stream: stream(),
            key: format!("{side}/{n:08}").into_bytes(),
            value: Some(n.to_be_bytes().to_vec()),
        })
        .collect()
}

/// Acknowledged commits (n, version), and their count to wait on.
#[derive(Default)]
struct Acks {
    list: Mutex<Vec<(u64, u64)>>,
    count: tokio::sync::watch::Sender<usize>,
}

impl Acks {
    fn record(&self, n: u64, version: u64) {
        self.list.lock().unwrap().push((n, version));
        self.count.send_modify(|c| *c += 1);
    }

    /// Waits (bounded) until at least `target` commits are acknowledged.
    async fn wait_for(&self, target: usize) {
        let mut count = self.count.subscribe();
        let reached = count.wait_for(|c| *c >= target);
        tokio::time::timeout(std::time::Duration::from_secs(60), reached)
            .await
            .expect("commits keep being acknowledged")
            .unwrap();
    }
}

/// Commits until the node goes away; records what was acknowledged.
async fn client(mut txn: TxnClient<Channel>, first: u64, acked: Arc<Acks>) {
    for n in (first..).step_by(CLIENTS as usize) {
        let Ok(response) = txn
            .commit(CommitRequest {
                transaction: signed(n, vec![], pair(n)),
            })
            .await
        else {
            return;
        };
        let response = response.into_inner();
        assert_eq!(response.outcome, "committed", "{response:?}");
        acked.record(n, response.version);
    }
}

/// Every `side/n` key of the stream, by n.
async fn scan_side(kv: &mut KvClient<Channel>, side: &str, at: u64) -> BTreeSet<u64> {
    let mut found = BTreeSet::new();
    let first = ScanRequest {
        stream: stream().to_vec(),
        prefix: Some(format!("{side}/").into_bytes()),
        min_version: at,
        ..Default::default()
    };
    let mut request = first.clone();
    loop {
        let page = kv.scan(request).await.unwrap().into_inner();
        for row in page.rows {
            let n = u64::from_be_bytes(row.value.try_into().unwrap());
            assert_eq!(
                row.key,
                format!("{side}/{n:08}").into_bytes(),
                "value matches its key"
            );
            found.insert(n);
        }
        if page.continuation.is_empty() {
            return found;
        }
        request = ScanRequest {
            continuation: page.continuation,
            ..first.clone()
        };
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_commits_survive_kill_9_and_none_is_half_applied() {
    let data = tempfile::tempdir().unwrap();
    let acked = Arc::new(Acks::default());
    let mut rng = XorShift::new(0x2545_F491);
    for cycle in 0..CYCLES {
        let node = DevNode::start(data.path());
        let channel = channel(&node.endpoint).await;
        let mut txn = TxnClient::new(channel);
        if cycle == 0 {
            let create = signed(
                u64::MAX,
                vec![AclOp::CreateStream {
                    name: b"crash".to_vec(),
                }],
                vec![],
            );
            let created = txn
                .commit(CommitRequest {
                    transaction: create,
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(created.outcome, "committed");
        }
        let before = *acked.count.borrow();
        let base = cycle * 1_000_000;
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| tokio::spawn(client(txn.clone(), base + c, acked.clone())))
            .collect();
        // Kill once a random number of further commits has been acknowledged,
        // with the clients still committing.
        acked.wait_for(before + 1 + rng.below(40) as usize).await;
        node.kill();
        for c in clients {
            c.await.unwrap();
        }
    }

    let node = DevNode::start(data.path());
    let mut kv = KvClient::new(channel(&node.endpoint).await);
    let acked = acked.list.lock().unwrap().clone();
    assert!(
        acked.len() as u64 > CYCLES,
        "commits were acknowledged in every cycle"
    );
    let newest = acked.iter().map(|(_, v)| *v).max().unwrap();
    for &(n, version) in &acked {
        let key = format!("a/{n:08}").into_bytes();
        let read = kv
            .get(GetRequest {
                stream: stream().to_vec(),
                key,
                version: 0,
                min_version: newest,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            read.found,
            "acknowledged commit {n} (version {version}) was lost"
        );
        assert_eq!(read.value_version, version);
    }
    let (a, b) = (
        scan_side(&mut kv, "a", newest).await,
        scan_side(&mut kv, "b", newest).await,
    );
    assert_eq!(a, b, "every transaction wrote both of its keys or neither");
    heads_cover(&node, newest).await;
    assert_eq!(
        scan_side(&mut kv, "a", newest).await,
        a,
        "through the heads"
    );
    assert_eq!(
        scan_side(&mut kv, "b", newest).await,
        b,
        "through the heads"
    );
    assert!(node.terminate().success());
}

/// Waits (bounded) until the node's heads column covers `version`.
async fn heads_cover(node: &DevNode, version: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let page = scrape(&node.metrics).await;
        if metric(&page, "ordo_heads_covered_version") >= version {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "heads: {page}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
